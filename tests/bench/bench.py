#!/usr/bin/python3
"""make bench: expose measured beside references taken in the same run.

Everything listens on 127.0.0.1 and every load is bounded in time.  Started
here: an nginx origin (fixed files), nginx as a one-hop reverse proxy to it,
the Node test app (server-sent events), an upload sink (tests/bench/sink.c:
it drops what it is sent), and expose: the
broker, the edge under systemd-socket-activate --inetd -a, and clients.
For TLS, a throwaway CA (the openssl CLI) certifies tunnel.test and
*.tunnel.test, and an https edge (expose-edge-tls) and a plain one for
that domain share the broker's registry and tickets.key.  The floors:
the trivial handler (tests/bench/resp.c) and the same behind a GnuTLS
handshake (resp.c built with -DRESP_TLS) under the same launcher, and
bare relays (relay.c): one under the launcher in front of the origin, and
expose's shape (one under the launcher, two one-process relays) with
nothing in it.
Then wrk, curl and Python's ssl drive each, and one table is printed and written to
build/bench/<timestamp>.txt and .json (compare two runs with
tests/bench/compare.py A.json B.json).

Readiness is waited for (sd_notify, the launcher's "Listening" line, the
client's URL line, a relay's "listening" line, an HTTP 200 from nginx),
never slept for.  On exit,
normal or not, everything started here is stopped, edges included.

Settings (environment): BENCH_QUICK=1 (3 s loads, smaller counts),
BENCH_DURATION (s), BENCH_SSE (streams), BENCH_IDLE (e.g. "1000,5000"),
BENCH_SETUP_RUNS, BENCH_BULK_RUNS, BENCH_TLS_CONNS (sequential connections
per kind for the handshake cost), BENCH_ONLY (some of keepalive, newconn,
tls, bulk, sse, setup, idle, cluster), BENCH_CLUSTER_RUNS (registration
and failover runs, each), BENCH_OUT (directory), BENCH_RESP (the
trivial handler, built by run.sh), BENCH_RESP_TLS (the same behind TLS),
BENCH_RELAY (tests/bench/relay.c, the bare relay), BENCH_SINK
(tests/bench/sink.c, the upload sink), BENCH_KALAT
(tests/bench/kalat.c, the keep-alive latency probe, built by run.sh),
BENCH_KEEP=1 (keep the scratch directory),
EXPOSE_RELEASE_BIN (measure the programs in another directory than bin/).
"""
import asyncio
import datetime
import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402  (read-only use of the end-to-end helpers)

ROOT = harness.ROOT
BIN = harness.RELEASE_BIN
QUICK = os.environ.get("BENCH_QUICK") == "1"
DURATION_S = int(os.environ.get("BENCH_DURATION", "3" if QUICK else "10"))
SSE_STREAMS = int(os.environ.get("BENCH_SSE", "250" if QUICK else "1000"))
IDLE_STEPS = [int(x) for x in os.environ.get("BENCH_IDLE", "1000" if QUICK else "1000,5000").split(",") if x]
# How long the visitors' edges get to exit after the visitors close.
SSE_LINGER_S = 5 if QUICK else 10
SETUP_RUNS = int(os.environ.get("BENCH_SETUP_RUNS", "10"))
BULK_RUNS = int(os.environ.get("BENCH_BULK_RUNS", "1" if QUICK else "3"))
# TLS handshake cost: connections per kind (plain, full, resumed), one at a
# time, the kinds taking turns.
TLS_CONNS = int(os.environ.get("BENCH_TLS_CONNS", "100" if QUICK else "300"))
TLS_WARMUP = 10
# After the idle tunnels leave: when the broker's RSS is read again.
IDLE_SETTLE_S = 3
# Edge connections held idle on the broker beside a keep-alive load: what
# each wakeup of the broker's loop pays for them (a poll() loop passes over
# every socket; epoll, cmd/exposed/loop.c, over the ready ones).  Their load runs under the
# broker's 10 s wait for an edge's OPEN line (STREAM_PREAMBLE_TIMEOUT_S).
IDLE_EDGE_CONNS = 1000
IDLE_EDGE_LOAD_S = 3
TLS_DOMAIN = "tunnel.test"
# Some scenarios only, e.g. "keepalive,idle" (while working on one).
ONLY = [x for x in os.environ.get("BENCH_ONLY", "").split(",") if x]
OUT_DIR = os.environ.get("BENCH_OUT", os.path.join(ROOT, "build", "bench"))
RESP = os.environ.get("BENCH_RESP", os.path.join(ROOT, "build", "bench", "resp"))
KALAT = os.environ.get("BENCH_KALAT", os.path.join(ROOT, "build", "bench", "kalat"))
RELAY = os.environ.get("BENCH_RELAY", os.path.join(ROOT, "build", "bench", "relay"))
SINK = os.environ.get("BENCH_SINK", os.path.join(ROOT, "build", "bench", "sink"))
RESP_TLS = os.environ.get("BENCH_RESP_TLS", os.path.join(ROOT, "build", "bench", "resp_tls"))
LUA = os.path.join(HERE, "report.lua")

SMALL_BYTES = 1024
BULK_BYTES = 100 * 1024 * 1024
BULK_PARALLEL = (1, 8)
BULK_TIMEOUT_S = 120
WRK_CONNS = 50
# The open-loop latency row's rate: an eighth of what expose carries here,
# so it measures each hop's delay rather than a queue.
OPEN_LOOP_RATE = 1000
# Rounds of 1 s each for the open-loop row (its figures are their medians).
OPEN_LOOP_ROUNDS = 5 if QUICK else 11
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Idle clients are not started past this much MemAvailable left.
MEM_FLOOR_KIB = 2 * 1024 * 1024
SPAWN_BATCH = 50


# --- /proc ---------------------------------------------------------------

def cpu_seconds(pid):
    """(own utime+stime, reaped children's cutime+cstime) in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime is field 14.
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def status(pid):
    return harness.proc_status(pid)


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def ppid_map():
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                out[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return out


def children(pid):
    return [p for p, pp in ppid_map().items() if pp == pid]


def descendants(pid):
    pp = ppid_map()
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, q in pp.items() if q == parent]
        out += kids
        todo += kids
    return out


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# --- processes started here, and their cleanup -----------------------------

class Started:
    """Everything started here, stopped in reverse order on exit."""

    def __init__(self):
        self.items = []     # (name, Popen, stop signal, launcher?)

    def add(self, name, popen, sig=signal.SIGTERM, launcher=False):
        self.items.append((name, popen, sig, launcher))
        return popen

    def forget(self, popen):
        self.forget_many([popen])

    def forget_many(self, popens):
        gone = {id(p) for p in popens}
        self.items = [i for i in self.items if id(i[1]) not in gone]

    def stop_all(self):
        for name, p, sig, launcher in reversed(self.items):
            if p.poll() is not None:
                continue
            if launcher:    # its per-connection children first
                for kid in children(p.pid):
                    kill_quiet(kid, signal.SIGKILL)
            kill_quiet(p.pid, sig)
        deadline = time.monotonic() + 10
        for name, p, sig, launcher in reversed(self.items):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"bench: {name} did not stop; killing it", file=sys.stderr)
                p.kill()
                p.wait()
        self.items = []
        # Anything left below us (an edge, an nginx worker): ours, so killed.
        for pid in descendants(os.getpid()):
            kill_quiet(pid, signal.SIGKILL)
        for pid in children(os.getpid()):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def kill_quiet(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


STARTED = Started()


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


# --- servers -------------------------------------------------------------

def http_get(port, path, host="127.0.0.1", timeout=10):
    """(status, body) of one GET with Connection: close."""
    raw = harness.http_raw(port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
                                 f"Connection: close\r\n\r\n".encode(), timeout=timeout)
    head, _, body = raw.partition(b"\r\n\r\n")
    return harness.status_of(raw), body


def wait_http(port, path, host="127.0.0.1", what="server"):
    def ok():
        try:
            return http_get(port, path, host, timeout=2)[0] == 200
        except OSError:
            return False
    harness.wait_for(ok, what=f"{what} answering 200 on {path}")


NGINX_COMMON = """
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{body}
}}
"""

ORIGIN_BODY = """
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {www};
    }}
"""

# The one-hop reference: keepalive upstreams; /sink goes to the upload
# sink (tests/bench/sink.c), unbuffered, like the tunnel's uploads.
# proxy_max_temp_file_size 0 keeps 100 MiB responses in memory buffers
# instead of temp files on disk.
PROXY_BODY = """
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 64; }}
    upstream sink {{ server 127.0.0.1:{sink}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_max_temp_file_size 0;
        location / {{ proxy_pass http://origin; }}
        location /sink {{
            client_max_body_size 0;
            proxy_request_buffering off;
            proxy_pass http://sink;
        }}
    }}
"""


class Nginx:
    def __init__(self, name, tmp, body):
        self.name = name
        self.prefix = os.path.join(tmp, name)
        os.makedirs(self.prefix)
        os.chmod(self.prefix, 0o755)
        self.port = harness.free_port()
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_COMMON.format(prefix=self.prefix, body=body.format(port=self.port)))
        self.log = open(os.path.join(self.prefix, "stderr.log"), "ab")
        self.proc = STARTED.add(name, subprocess.Popen(
            ["nginx", "-e", "stderr", "-p", self.prefix, "-c", conf],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log), signal.SIGTERM)

    def worker(self):
        kids = children(self.proc.pid)
        return kids[0] if kids else None


def unit_nice():
    """The Nice= of units/exposed.service (0 if it sets none)."""
    with open(os.path.join(ROOT, "units", "exposed.service")) as f:
        for line in f:
            if line.startswith("Nice="):
                return int(line.split("=", 1)[1])
    return 0


class Launched:
    """A program under systemd-socket-activate --inetd -a, one per connection."""

    def __init__(self, name, tmp, argv, port=None):
        self.port = port or harness.free_port()
        self.log = os.path.join(tmp, f"{name}.log")
        self.proc = harness.Process(["systemd-socket-activate", "--inetd", "-a", "-l",
                                     f"127.0.0.1:{self.port}", *argv], self.log)
        STARTED.add(name, self.proc.proc, launcher=True)
        harness.wait_in_file(self.log, r"Listening on 127\.0\.0\.1:%d" % self.port)

    @property
    def pid(self):
        return self.proc.pid

    def kids(self):
        return children(self.pid)

    def wait_kids(self, timeout):
        """How many per-connection processes are left after waiting up to timeout for none."""
        deadline = time.monotonic() + timeout
        while True:
            left = len(self.kids())
            if left == 0 or time.monotonic() > deadline:
                return left
            time.sleep(0.05)

    def wait_kids_gone(self, timeout=30):
        """Seconds until every per-connection process has exited."""
        t0 = time.monotonic()
        harness.wait_for(lambda: not self.kids(), timeout, "per-connection processes to exit")
        return time.monotonic() - t0


class Sink:
    """tests/bench/sink.c: the app the upload rows send their bodies to."""

    def __init__(self, tmp):
        self.port = harness.free_port()
        self.log = os.path.join(tmp, "sink.log")
        self.proc = harness.Process([SINK, str(self.port)], self.log)
        STARTED.add("sink", self.proc.proc)
        harness.wait_in_file(self.log, r"sink: listening on 127\.0\.0\.1:%d" % self.port)


class RelayListen:
    """tests/bench/relay.c in its one-process mode, relaying every
    connection to 127.0.0.1:up, as the broker and the client stand in
    expose's path (each with a connection of its own upstream, not one
    multiplexed websocket)."""

    def __init__(self, name, tmp, up):
        self.port = harness.free_port()
        self.log = os.path.join(tmp, f"{name}.log")
        self.proc = harness.Process([RELAY, "listen", str(self.port), str(up)], self.log)
        STARTED.add(name, self.proc.proc)
        harness.wait_in_file(self.log, r"relay: listening on 127\.0\.0\.1:%d" % self.port)


def start_client(tmp, server, port, key_dir, name):
    c = harness.Client(tmp, server, port, key_dir=key_dir, bin_dir=BIN)
    STARTED.add(name, c.proc.proc, signal.SIGINT)
    return c


# --- load ----------------------------------------------------------------

def wrk(log, label, url, host=None, close=False, duration=None, connect_to=None):
    """connect_to: an address to connect to instead of the URL's host (see
    report.lua), which then stays the Host header and the TLS SNI."""
    duration = duration or DURATION_S
    argv = ["wrk", "-t2", f"-c{WRK_CONNS}", f"-d{duration}s", "--latency", "-s", LUA]
    if host:
        argv += ["-H", f"Host: {host}"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(url)
    env = dict(os.environ, BENCH_CONNECT_TO=connect_to or "")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, env=env)
    to = f"BENCH_CONNECT_TO={connect_to} " if connect_to else ""
    log.write(f"\n=== {label}: {to}{' '.join(argv)}\n{out.stdout}{out.stderr}")
    m = re.search(r"^BENCH_JSON (\{.*\})$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed for {label}: {out.stderr.strip() or out.stdout[-300:]}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors",
                                     "status_errors", "timeouts"))
    return r


def kalat(log, label, port, host, seconds, rate=None):
    """tests/bench/kalat.c: WRK_CONNS connections opened at once, each one's
    first response waited for, then `seconds` of keep-alive requests timed
    as they are.  wrk corrects its latencies for coordinated omission: a
    first request that waited for the launcher to spawn its process becomes
    hundreds of synthetic slow samples, so wrk's p99 through a process per
    connection is mostly the spawn queue.  This one keeps the two apart."""
    argv = [KALAT, str(port), host, "/1k", str(WRK_CONNS), str(seconds)] + \
        ([str(rate)] if rate else [])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    log.write(f"\n=== {label}: {' '.join(argv)}\n{out.stdout}{out.stderr}")
    m = re.search(r"^BENCH_JSON (\{.*\})$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"kalat failed for {label}: {out.stderr.strip() or out.stdout[-300:]}")
    return json.loads(m.group(1))


def curl_batch(n, url, host=None, upload=None, tmp=None):
    """n curls at once; MB/s (1e6 bytes) over the wall time of the batch."""
    procs = []
    t0 = time.monotonic()
    for i in range(n):
        argv = ["curl", "-sS", "--max-time", str(BULK_TIMEOUT_S),
                "-w", "%{http_code} %{size_download} %{size_upload}"]
        if host:
            argv += ["-H", f"Host: {host}"]
        if upload:
            out = os.path.join(tmp, f"upload-{i}.json")
            argv += ["-T", upload, "-H", "Expect:", "-H",
                     "Content-Type: application/octet-stream", "-o", out]
        else:
            argv += ["-o", "/dev/null"]
        procs.append(subprocess.Popen(argv + [url], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, stdin=subprocess.DEVNULL))
    outs = [p.communicate(timeout=BULK_TIMEOUT_S + 30) for p in procs]
    wall = time.monotonic() - t0
    for i, (o, e) in enumerate(outs):
        code, down, up = o.decode().split()
        if code != "200":
            raise RuntimeError(f"curl {url}: HTTP {code} {e.decode().strip()}")
        if upload:
            with open(os.path.join(tmp, f"upload-{i}.json")) as f:
                got = json.load(f)["length"]
            if int(up) != BULK_BYTES or got != BULK_BYTES:
                raise RuntimeError(f"upload {url}: sent {up}, sink got {got}")
        elif int(down) != BULK_BYTES:
            raise RuntimeError(f"download {url}: got {down} of {BULK_BYTES} bytes")
    return n * BULK_BYTES / wall / 1e6


# --- TLS ---------------------------------------------------------------------

def make_pki(d):
    """A throwaway CA and, signed by it, an ECDSA P-256 certificate for
    TLS_DOMAIN and *.TLS_DOMAIN (as tests/e2e/test_tls.py makes them).
    Returns (cert, key, ca) paths."""
    os.makedirs(d)

    def run(*args):
        out = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"openssl {args[0]}: {out.stderr.strip()[-300:]}")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=expose bench CA")
    run("req", *ec, "-keyout", "site.key", "-out", "site.csr", "-subj", f"/CN={TLS_DOMAIN}",
        "-addext", f"subjectAltName=DNS:{TLS_DOMAIN},DNS:*.{TLS_DOMAIN}")
    run("x509", "-req", "-in", "site.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-copy_extensions", "copy", "-out", "site.pem")
    return tuple(os.path.join(d, x) for x in ("site.pem", "site.key", "ca.pem"))


def visit(port, host, ctx=None, session=None, server_hostname=..., timeout=10):
    """One visitor's connection to 127.0.0.1:port: the TLS handshake (with
    ctx), GET /1k with Connection: close, read until the server closes.
    Returns (seconds from connect() to the body's last byte, TLS facts)."""
    req = f"GET /1k HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    t0 = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    # As browsers, curl and wrk: else Nagle holds the request back behind
    # the client's unacknowledged Finished until a delayed ACK (~40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    facts = {}
    try:
        if ctx is not None:
            sock = ctx.wrap_socket(sock, session=session,
                                   server_hostname=host if server_hostname is ... else server_hostname)
            facts.update(version=sock.version(), cipher=sock.cipher()[0])
        sock.sendall(req)
        buf, need, took = b"", None, None
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            if need is None and b"\r\n\r\n" in buf:
                head = buf.partition(b"\r\n\r\n")[0]
                m = re.search(rb"(?im)^content-length:[ \t]*(\d+)", head)
                need = len(head) + 4 + int(m.group(1)) if m else 0
            if took is None and need and len(buf) >= need:
                took = time.perf_counter() - t0
        code, body = harness.status_of(buf), buf.partition(b"\r\n\r\n")[2]
        if code != 200 or len(body) != SMALL_BYTES:
            raise RuntimeError(f"GET /1k via {host} on port {port}: HTTP {code}, {len(body)} bytes")
        if ctx is not None:
            facts.update(reused=sock.session_reused, session=sock.session)
    finally:
        sock.close()
    return took, facts


def sched_ns(pid):
    """CPU time a (single-threaded) process has run so far, in ns (schedstat)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def exits_not_zero(log):
    """The launcher's "Child N died with code C" lines with C != 0."""
    with open(log, errors="replace") as f:
        return [line.strip() for line in f
                if re.search(r"died with code (\d+)", line) and not line.rstrip().endswith("code 0")]


def tls_failures(log):
    """The edges' "tls handshake failed" reasons in a launcher's log, counted."""
    out = {}
    with open(log, errors="replace") as f:
        for line in f:
            m = re.search(r"tls handshake (failed .*reason=\"([^\"]*)\"|timed out)", line)
            if m:
                why = m.group(2) or "timed out"
                out[why] = out.get(why, 0) + 1
    return out


# --- the benchmark ---------------------------------------------------------

class Bench:
    def __init__(self, tmp, log):
        self.tmp = tmp
        self.log = log
        self.rows = []          # (section, metric, {column: text}, ratio, target)
        self.metrics = {}       # name -> {value, unit, better}
        self.notes = []
        self.failed = []
        self.procs = {}         # name -> pid of expose's processes, for the end

    # results
    def metric(self, name, value, unit, better):
        self.metrics[name] = {"value": value, "unit": unit, "better": better}

    def row(self, section, metric, ratio="", target="", **cols):
        self.rows.append((section, metric, cols, ratio, target))

    def as_unit_nice(self, pid):
        """Runs the broker at its unit's priority (Nice= in
        units/exposed.service), as systemd would; needs root to raise it."""
        nice = unit_nice()
        try:
            os.setpriority(os.PRIO_PROCESS, pid, nice)
            self.note(f"the broker runs at nice {nice}, as units/exposed.service sets it")
        except OSError as e:
            self.note(f"the broker runs at nice 0, not its unit's {nice} ({e.strerror}: run as root)")

    def note(self, text):
        self.notes.append(text)
        print(f"bench: {text}", file=sys.stderr, flush=True)

    def progress(self, text):
        print(f"bench: {text}", file=sys.stderr, flush=True)

    def scenario(self, name, fn):
        self.progress(f"--- {name}")
        t0 = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - report it, go on with the rest
            self.failed.append(name)
            self.note(f"FAILED {name}: {type(e).__name__}: {e}")
            self.row(name, "FAILED", expose=f"{type(e).__name__}")
        self.progress(f"    {name}: {time.monotonic() - t0:.1f} s")

    # the stack
    def start(self):
        tmp = self.tmp
        os.chmod(tmp, 0o755)    # nginx's workers run as nobody under root
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        os.chmod(www, 0o755)
        with open(os.path.join(www, "1k"), "wb") as f:
            f.write(b"x" * SMALL_BYTES)
        self.big = os.path.join(www, "100m")
        with open(self.big, "wb") as f:
            for _ in range(BULK_BYTES // (1024 * 1024)):
                f.write(os.urandom(1024 * 1024))
        for name in os.listdir(www):
            os.chmod(os.path.join(www, name), 0o644)

        self.progress("starting the origin (nginx), the Node app, the nginx proxy")
        self.origin = Nginx("nginx-origin", tmp, ORIGIN_BODY.replace("{www}", www))
        self.app = harness.App(tmp)
        STARTED.add("app", self.app.proc.proc)
        self.sink = Sink(tmp)
        self.proxy = Nginx("nginx-proxy", tmp, PROXY_BODY.replace("{origin}", str(self.origin.port))
                           .replace("{sink}", str(self.sink.port)))
        wait_http(self.origin.port, "/1k", what="nginx origin")
        wait_http(self.proxy.port, "/1k", what="nginx proxy")

        self.progress("starting expose: broker, edge, clients")
        edge_port = harness.free_port()   # in the URLs the broker hands out
        extra = broker_extra()
        if extra:
            self.note(f"brokers run with {' '.join(extra)}: every client comes from 127.0.0.1")
        self.broker = harness.Broker(tmp, public_port=edge_port, bin_dir=BIN, extra=extra)
        STARTED.add("exposed", self.broker.proc.proc)
        self.as_unit_nice(self.broker.proc.pid)
        self.edge = Launched("edge", tmp, [os.path.join(BIN, "expose-edge"), "--registry",
                                           self.broker.registry, "--domain", self.broker.domain],
                             port=edge_port)
        self.key_dir = os.path.join(tmp, "key")
        self.client = start_client(tmp, self.broker.server, self.origin.port, self.key_dir,
                                   "expose (origin)")
        self.client_app = start_client(tmp, self.broker.server, self.app.port, self.key_dir,
                                       "expose (app)")
        self.client_sink = start_client(tmp, self.broker.server, self.sink.port, self.key_dir,
                                        "expose (sink)")
        self.host = self.client.host
        self.app_host = self.client_app.host
        self.sink_host = self.client_sink.host
        code, body = http_get(self.edge.port, "/1k", self.host)
        if code != 200 or len(body) != SMALL_BYTES:
            raise RuntimeError(f"GET /1k through the tunnel: {code}, {len(body)} bytes")
        wait_http(self.edge.port, "/hello", self.app_host, what="tunnel to the app")
        self.edge.wait_kids_gone()

        self.progress("starting the trivial handler under the same launcher")
        self.trivial = Launched("trivial", tmp, [RESP])
        code, body = http_get(self.trivial.port, "/1k")
        if code != 200 or len(body) != SMALL_BYTES:
            raise RuntimeError(f"trivial handler: {code}, {len(body)} bytes")
        self.start_floor()
        self.procs = {"exposed (broker)": self.broker.proc.pid,
                      "expose (client -> nginx origin)": self.client.proc.pid,
                      "expose (client -> Node app)": self.client_app.proc.pid,
                      "expose (client -> upload sink)": self.client_sink.proc.pid}

    def start_floor(self):
        """The bare relays (tests/bench/relay.c): one under the same launcher
        in front of the origin (a process per connection, one hop), and
        expose's shape with nothing in it: one under the launcher, then two
        one-process relays, then the origin, as edge, broker and client."""
        self.progress("starting the bare relays: one hop, and expose's shape with nothing in it")
        self.hop, self.floor = self.bare_relays("origin", self.origin.port)
        self.sink_hop, self.sink_floor = self.bare_relays("sink", self.sink.port)
        for la in (self.hop, self.floor):
            code, body = http_get(la.port, "/1k")
            if code != 200 or len(body) != SMALL_BYTES:
                raise RuntimeError(f"GET /1k through the bare relays: {code}, {len(body)} bytes")
            la.wait_kids_gone()
        self.note("bare relays (tests/bench/relay.c: read/write, no parsing, framing or logging): 'trivial' in "
                  "the keep-alive and bulk rows is one under the same launcher in front of the origin; 'bare "
                  "shape' is one under the launcher, then two one-process relays, then the origin: expose's "
                  "hops (edge, broker, client) with nothing in them. They bound what any program in those "
                  "hops can reach on this machine")

    def bare_relays(self, name, up):
        """(one bare relay under the launcher, the bare shape), each to up;
        each one's .relays: the one-process relays after it."""
        client = RelayListen(f"relay-{name}-client", self.tmp, up)
        broker = RelayListen(f"relay-{name}-broker", self.tmp, client.port)
        hop = Launched(f"relay-{name}-hop", self.tmp, [RELAY, "inetd", str(up)])
        shape = Launched(f"relay-{name}-shape", self.tmp, [RELAY, "inetd", str(broker.port)])
        hop.relays, shape.relays = (), (broker, client)
        return hop, shape

    def wrk_cpu(self, label, url, launched, cpu, **kw):
        """wrk on url; then, once launched's per-connection processes have
        exited, r["cpu_us_per_req"]: what cpu() counts (CPU seconds so far,
        by name), per request."""
        before = cpu()
        r = wrk(self.log, label, url, **kw)
        launched.wait_kids_gone()
        after = cpu()
        r["cpu_us_per_req"] = {k: (after[k] - before[k]) * 1e6 / max(1, r["requests"]) for k in after}
        return r

    def bare_wrk(self, label, la):
        """wrk through bare relays; CPU per request of the relays la reaped
        ("edge"), then of each one-process relay after it."""
        def cpu():
            return dict(zip(("edge", "broker", "client"),
                            [cpu_seconds(la.pid)[1]] + [cpu_seconds(r.proc.pid)[0] for r in la.relays]))
        return self.wrk_cpu(label, f"http://127.0.0.1:{la.port}/1k", la, cpu)

    def expose_cpu(self, edge=None):
        """CPU seconds so far: the broker, the clients, the edges (reaped by the launcher)."""
        return {"broker": cpu_seconds(self.broker.proc.pid)[0],
                "client": sum(cpu_seconds(c.proc.pid)[0] for c in (self.client, self.client_app, self.client_sink)),
                "edges": cpu_seconds((edge or self.edge).pid)[1]}

    def expose_wrk(self, label, close):
        return self.wrk_cpu(label, f"http://127.0.0.1:{self.edge.port}/1k", self.edge, self.expose_cpu,
                            host=self.host, close=close)

    def cpu_row(self, section, key, r):
        c = r["cpu_us_per_req"]
        self.row(section, "expose CPU µs/req edge/broker/client",
                 expose=f"{c['edges']:.0f}/{c['broker']:.0f}/{c['client']:.0f}")
        for k, v in c.items():
            self.metric(f"{key}.expose.cpu_us_per_req.{k}", round(v, 1), "µs", "lower")

    # scenarios
    def keepalive(self):
        sec = f"small GET 1 KiB, keep-alive, wrk -t2 -c{WRK_CONNS} -d{DURATION_S}s"
        d = wrk(self.log, "keep-alive direct", f"http://127.0.0.1:{self.origin.port}/1k")
        n = wrk(self.log, "keep-alive nginx", f"http://127.0.0.1:{self.proxy.port}/1k")
        h = self.bare_wrk("keep-alive bare relay, one hop", self.hop)
        f = self.bare_wrk("keep-alive bare relays, expose's shape", self.floor)
        e = self.expose_wrk("keep-alive expose", close=False)
        ratio = e["rps"] / n["rps"]
        self.row(sec, "requests/s", f"{ratio:.0%} of nginx", ">= 60% of nginx " + met(ratio >= 0.6),
                 direct=num(d["rps"]), nginx=num(n["rps"]), trivial=num(h["rps"]), floor=num(f["rps"]),
                 expose=num(e["rps"]))
        self.row(sec, "  the same, % of nginx (trivial, bare shape: bare relays)",
                 f"{e['rps'] / f['rps']:.0%} of its bare shape",
                 trivial=f"{h['rps'] / n['rps']:.0%}", floor=f"{f['rps'] / n['rps']:.0%}", expose=f"{ratio:.0%}")
        self.errors_row(sec, trivial=h, floor=f)
        self.row(sec, "p50 latency ms", direct=ms(d["p50_us"]), nginx=ms(n["p50_us"]),
                 expose=ms(e["p50_us"]))
        self.row(sec, "p99 latency ms (wrk: incl. first requests)", direct=ms(d["p99_us"]),
                 nginx=ms(n["p99_us"]), expose=ms(e["p99_us"]))
        self.errors_row(sec, direct=d, nginx=n, expose=e)
        self.keepalive_established(sec)
        for col, r in (("relay_hop", h), ("floor", f)):
            self.metric(f"keepalive.{col}.rps", round(r["rps"]), "req/s", "higher")
        for col, r in (("direct", d), ("nginx", n), ("expose", e)):
            self.metric(f"keepalive.{col}.rps", round(r["rps"]), "req/s", "higher")
            self.metric(f"keepalive.{col}.p50_ms", r["p50_us"] / 1000, "ms", "lower")
            self.metric(f"keepalive.{col}.p99_ms", r["p99_us"] / 1000, "ms", "lower")
        self.metric("keepalive.ratio_expose_nginx", round(ratio, 3), "x", "higher")
        self.cpu_row(sec, "keepalive", e)
        self.row(sec, "  bare relays' CPU µs/req: in the edge's place (/broker's/client's)",
                 trivial=f"{h['cpu_us_per_req']['edge']:.0f}",
                 floor="/".join(f"{x:.0f}" for x in f["cpu_us_per_req"].values()))
        for col, r in (("relay_hop", h), ("floor", f)):
            for k, v in r["cpu_us_per_req"].items():
                self.metric(f"keepalive.{col}.cpu_us_per_req.{k}", round(v, 1), "µs", "lower")
        self.keepalive_idle_edges(sec)

    def keepalive_idle_edges(self, sec):
        """The same load for IDLE_EDGE_LOAD_S while IDLE_EDGE_CONNS Unix
        connections sit on the broker's edge socket saying nothing."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = IDLE_EDGE_CONNS + 256
        if soft < want and hard >= want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        idle = harness.open_idle(self.broker.socket, IDLE_EDGE_CONNS, self.broker.proc.pid)
        try:
            r = self.wrk_cpu("keep-alive expose, idle edges", f"http://127.0.0.1:{self.edge.port}/1k",
                             self.edge, self.expose_cpu, host=self.host,
                             duration=min(DURATION_S, IDLE_EDGE_LOAD_S))
        finally:
            for s in idle:
                s.close()
        c = r["cpu_us_per_req"]
        self.row(sec, f"with {IDLE_EDGE_CONNS} idle edge connections ({IDLE_EDGE_LOAD_S} s): requests/s; "
                 "expose CPU µs/req edge/broker/client",
                 expose=f"{num(r['rps'])}; {c['edges']:.0f}/{c['broker']:.0f}/{c['client']:.0f}")
        for k, v in c.items():
            self.metric(f"keepalive.idle_edges.expose.cpu_us_per_req.{k}", round(v, 1), "µs", "lower")

    def keepalive_established(self, sec):
        """p99 on established connections, and what the first requests of
        WRK_CONNS connections opened at once wait for (kalat)."""
        dur = max(1, DURATION_S // 2)
        k = {"direct": kalat(self.log, "established direct", self.origin.port, "127.0.0.1", dur),
             "nginx": kalat(self.log, "established nginx", self.proxy.port, "127.0.0.1", dur),
             "floor": kalat(self.log, "established bare shape", self.floor.port, "127.0.0.1", dur),
             "expose": kalat(self.log, "established expose", self.edge.port, self.host, dur)}
        self.edge.wait_kids_gone()
        self.floor.wait_kids_gone()
        t = kalat(self.log, "first responses trivial", self.trivial.port, "127.0.0.1", 0)
        self.trivial.wait_kids_gone()
        added = (k["expose"]["p99_us"] - k["direct"]["p99_us"]) / 1000
        bare = (k["floor"]["p99_us"] - k["direct"]["p99_us"]) / 1000
        self.row(sec, f"p99 latency ms, established (kalat {dur} s)",
                 f"+{added:.2f} ms vs direct (bare shape +{bare:.2f})",
                 "< 2 ms added " + met(added < 2), **{c: ms(r["p99_us"]) for c, r in k.items()})
        self.row(sec, f"{WRK_CONNS} connections at once: first response p50 / max ms",
                 **{c: f"{ms(r['first_p50_us'])} / {ms(r['first_max_us'])}"
                    for c, r in dict(k, trivial=t).items()})
        for c, r in dict(k, trivial=t).items():
            if c != "trivial":
                self.metric(f"keepalive.established.{c}.p99_ms", r["p99_us"] / 1000, "ms", "lower")
            self.metric(f"keepalive.first_response.{c}.max_ms", r["first_max_us"] / 1000, "ms", "lower")
        self.keepalive_open_loop(sec, OPEN_LOOP_ROUNDS)
        self.note("keep-alive p99: wrk's includes each connection's first request, which waits for the "
                  "launcher to spawn its process one at a time (see the first-response row: the trivial "
                  "handler waits as long), and wrk's coordinated-omission correction turns each such wait "
                  "into many synthetic samples; the established row (tests/bench/kalat.c) times only "
                  "requests on connections that had their first response; with every connection always "
                  "busy its p99 is mostly the queue (about 50 / throughput), and the open-loop row, at a "
                  "rate below saturation, is the delay the hops add")

    def keepalive_open_loop(self, sec, rounds):
        """p99 at a rate well below saturation: with every connection always
        busy, as above, a percentile is mostly the queue (by Little's law
        about WRK_CONNS / throughput), so it says how fast, not how much
        latency each hop adds.  Rounds of 1 s, the targets in turn,
        and each figure the median over the rounds: a stall of this shared
        machine spoils one round of one target, not the row."""
        targets = (("direct", self.origin.port, "127.0.0.1"),
                   ("nginx", self.proxy.port, "127.0.0.1"),
                   ("floor", self.floor.port, "127.0.0.1"),
                   ("expose", self.edge.port, self.host))
        runs = {c: [] for c, _, _ in targets}
        for i in range(rounds):
            for c, port, host in targets:
                runs[c].append(kalat(self.log, f"open loop {c} round {i + 1}", port, host, 1,
                                     OPEN_LOOP_RATE))
            self.edge.wait_kids_gone()
            self.floor.wait_kids_gone()
        k = {c: {p: statistics.median(r[p] for r in rs) for p in ("p50_us", "p99_us")}
             for c, rs in runs.items()}
        added = (k["expose"]["p99_us"] - k["direct"]["p99_us"]) / 1000
        bare = (k["floor"]["p99_us"] - k["direct"]["p99_us"]) / 1000
        spread = "-".join(ms(f(r["p99_us"] for r in runs["expose"])) for f in (min, max))
        self.row(sec, f"p50 / p99 latency ms at {num(OPEN_LOOP_RATE)} req/s (open loop, "
                      f"median of {rounds} rounds of 1 s)",
                 f"+{added:.2f} ms p99 vs direct (bare shape +{bare:.2f})", "< 2 ms added " + met(added < 2),
                 **{c: f"{ms(r['p50_us'])} / {ms(r['p99_us'])}" for c, r in k.items()})
        self.row(sec, "  expose's p99 over the rounds, lowest-highest ms", expose=spread)
        for c, r in k.items():
            self.metric(f"keepalive.open_loop.{c}.p99_ms", r["p99_us"] / 1000, "ms", "lower")

    def newconn(self):
        sec = f"small GET 1 KiB, new connection per request, -c{WRK_CONNS} -d{DURATION_S}s"
        d = wrk(self.log, "close direct", f"http://127.0.0.1:{self.origin.port}/1k", close=True)
        n = wrk(self.log, "close nginx", f"http://127.0.0.1:{self.proxy.port}/1k", close=True)
        t = wrk(self.log, "close trivial", f"http://127.0.0.1:{self.trivial.port}/1k", close=True)
        self.trivial.wait_kids_gone()
        e = self.expose_wrk("close expose", close=True)
        ratio = e["rps"] / t["rps"]
        self.row(sec, "connections/s", f"{ratio:.0%} of trivial",
                 ">= 75% of trivial " + met(ratio >= 0.75),
                 direct=num(d["rps"]), nginx=num(n["rps"]), trivial=num(t["rps"]), expose=num(e["rps"]))
        self.row(sec, "p50 / p99 latency ms",
                 direct=f"{ms(d['p50_us'])} / {ms(d['p99_us'])}",
                 nginx=f"{ms(n['p50_us'])} / {ms(n['p99_us'])}",
                 trivial=f"{ms(t['p50_us'])} / {ms(t['p99_us'])}",
                 expose=f"{ms(e['p50_us'])} / {ms(e['p99_us'])}")
        self.errors_row(sec, direct=d, nginx=n, trivial=t, expose=e)
        for col, r in (("direct", d), ("nginx", n), ("trivial", t), ("expose", e)):
            self.metric(f"newconn.{col}.cps", round(r["rps"]), "conn/s", "higher")
            self.metric(f"newconn.{col}.p99_ms", r["p99_us"] / 1000, "ms", "lower")
        self.metric("newconn.ratio_expose_trivial", round(ratio, 3), "x", "higher")
        self.cpu_row(sec, "newconn", e)

    def errors_row(self, sec, **runs):
        if any(r["errors"] for r in runs.values()):
            self.row(sec, "wrk errors conn/read/write/status/timeout",
                     **{k: "/".join(str(r[x]) for x in ("connect_errors", "read_errors", "write_errors",
                                                        "status_errors", "timeouts"))
                        for k, r in runs.items()})

    # TLS: the https edge against a plain one for the same domain
    def tls_start(self):
        """Once: the certificate, an https edge and a plain edge for TLS_DOMAIN
        on the broker's registry (so the same tunnels, reached as
        NAME.TLS_DOMAIN), each checked with one GET, and how SNI is handled."""
        if getattr(self, "tls_ready", False):
            return
        self.progress(f"making a CA and a certificate for *.{TLS_DOMAIN}; starting an https and a plain edge")
        cert, key, ca = make_pki(os.path.join(self.tmp, "pki"))
        tickets = os.path.join(os.path.dirname(self.broker.registry), "tickets.key")
        if not os.path.exists(tickets):
            raise RuntimeError(f"the broker made no {tickets}: edges could not resume each other's sessions")
        args = ["--registry", self.broker.registry, "--domain", TLS_DOMAIN]
        # As the units run them: expose-edge (no TLS library) for plain,
        # expose-edge-tls for https.
        self.tls_argv = {"plain": [os.path.join(BIN, "expose-edge"), *args],
                         "https": [os.path.join(BIN, "expose-edge-tls"), *args,
                                   "--cert", cert, "--key", key]}
        self.tls_ca = ca
        self.tls_ctx = ssl.create_default_context(cafile=ca)     # one context: sessions resume within it
        self.tls_host = f"{self.host.split('.')[0]}.{TLS_DOMAIN}"
        self.tls_plain_edge = Launched("edge-plain-tls-domain", self.tmp, self.tls_argv["plain"])
        self.tls_edge = Launched("edge-https", self.tmp, self.tls_argv["https"])
        self.trivial_tls = Launched("trivial-https", self.tmp, [RESP_TLS, cert, key])
        visit(self.trivial_tls.port, self.tls_host, self.tls_ctx)
        self.trivial_tls.wait_kids_gone()
        visit(self.tls_plain_edge.port, self.tls_host)
        _, facts = visit(self.tls_edge.port, self.tls_host, self.tls_ctx)
        self.tls_edge_cpu_s = 0.0     # the per-kind edges', reaped below
        self.note(f"TLS: {facts['version']} {facts['cipher']}, an ECDSA P-256 certificate for {TLS_DOMAIN} and "
                  f"*.{TLS_DOMAIN} from a throwaway CA (openssl CLI); visitors: Python's ssl ({ssl.OPENSSL_VERSION}, "
                  f"certificate verified, SNI = the tunnel's name) and wrk; tunnels reached as NAME.{TLS_DOMAIN} "
                  f"through edges started with --domain {TLS_DOMAIN} on the broker's registry")
        self.tls_sni_probe()
        self.tls_edge.wait_kids_gone()
        self.tls_plain_edge.wait_kids_gone()
        self.tls_ready = True

    def tls_sni_probe(self):
        """What the https edge does with the SNI wrk would send for
        https://127.0.0.1:PORT/ (the IP literal: wrk 4.1 hands its URL's host
        to SSL_set_tlsext_host_name, which does not filter IP literals), and
        with no SNI (what RFC 6066 clients send for an IP literal)."""
        port = self.tls_edge.port
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "127.0.0.1",
                              "-CAfile", self.tls_ca], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=20)
        text = out.stdout + out.stderr
        m = re.search(r"tlsv1 ([a-z ]+):[^\n]*SSL alert number (\d+)", text)
        if m:
            ip_sni = f"refused with alert {m.group(2)} ({m.group(1)})"
        elif re.search(r"^(New|Reused), TLS", text, re.M):
            ip_sni = "accepted"
        else:
            ip_sni = f"inconclusive (openssl s_client exit {out.returncode})"
        self.log.write(f"\n=== SNI 127.0.0.1 probe: openssl s_client -connect 127.0.0.1:{port} "
                       f"-servername 127.0.0.1\n{text}")
        no_sni_ctx = ssl.create_default_context(cafile=self.tls_ca)
        no_sni_ctx.check_hostname = False
        try:
            visit(port, self.tls_host, no_sni_ctx, server_hostname=None)
            no_sni = "served (HTTP 200)"
        except (OSError, RuntimeError) as e:
            no_sni = f"failed: {type(e).__name__}: {e}"
        self.note(f"https with wrk: wrk sends its URL's host as SNI, an IP literal too, and the https edge, given "
                  f"SNI 127.0.0.1, {ip_sni} (probe: openssl s_client -servername 127.0.0.1); with no SNI it "
                  f"{no_sni} (Host decides). So wrk gets https://NAME.{TLS_DOMAIN}:PORT/ and report.lua, given "
                  f"BENCH_CONNECT_TO=127.0.0.1, replaces wrk.resolve to connect to 127.0.0.1: SNI and Host are the "
                  f"tunnel's name, as from a browser, with no /etc/hosts entry; the plain rows use the same URL over http")

    def tls_handshakes(self):
        self.tls_start()
        n = TLS_CONNS
        sec = (f"TLS handshake cost per expose-edge process: {n} connections per kind, one at a time, "
               f"kinds in turn, GET 1 KiB, close")
        # Warm caches; the last full handshake's session is the one resumed below.
        session = None
        for _ in range(TLS_WARMUP):
            visit(self.tls_plain_edge.port, self.tls_host)
            session = visit(self.tls_edge.port, self.tls_host, self.tls_ctx)[1]["session"]
        self.tls_edge.wait_kids_gone()
        self.tls_plain_edge.wait_kids_gone()
        res = self.tls_kinds(n, session)
        p, f, r = (res[k]["cpu_us"] for k in ("plain", "full", "resumed"))

        def cell(x):
            return f"{x['cpu_us']:.0f}; {x['cps']:.0f}; {x['p50_ms']:.2f}"
        self.row(sec, "plain http: edge CPU µs/conn; conn/s; p50 ms", expose=cell(res["plain"]))
        self.row(sec, "https, full handshake: the same", f"+{f - p:.0f} µs CPU vs plain ({f / p:.2f}x)",
                 expose=cell(res["full"]))
        self.row(sec, "https, resumed (ticket): the same", f"+{r - p:.0f} µs vs plain, {r - f:+.0f} µs vs full",
                 expose=cell(res["resumed"]))
        rr = res["resumed"]
        self.row(sec, "resumed (session_reused); new tickets got", f"full handshakes resumed: {res['full']['reused']}",
                 expose=f"{rr['reused']} of {n}; {rr['fresh']}")
        for kind, x in res.items():
            self.metric(f"tls.handshake.{kind}.edge_cpu_us", round(x["cpu_us"], 1), "µs", "lower")
            self.metric(f"tls.handshake.{kind}.cps", round(x["cps"], 1), "conn/s", "higher")
            self.metric(f"tls.handshake.{kind}.p50_ms", round(x["p50_ms"], 3), "ms", "lower")
        self.metric("tls.handshake.full_extra_cpu_us", round(f - p, 1), "µs", "lower")
        self.metric("tls.handshake.resumed_extra_cpu_us", round(r - p, 1), "µs", "lower")
        self.note(f"TLS handshake cost: each kind ran on a launcher of its own (systemd-socket-activate --inetd -a "
                  f"with the same expose-edge arguments), the kinds taking turns, one connection at a time; "
                  f"edge CPU = the launcher's wait4() rusage (µs; it includes "
                  f"every edge process it reaped) minus the launcher's own CPU (/proc/PID/schedstat, ns), over {n} "
                  f"connections after {TLS_WARMUP} unmeasured ones. /proc/PID/stat cutime+cstime (10 ms ticks, so "
                  f"+-{10000 / n:.0f} µs/conn at this count) gave "
                  f"{'/'.join(str(round(x['ticks_us'])) for x in res.values())} µs for plain/full/resumed. conn/s and "
                  f"p50 (connect() to the body's last byte; conn/s is 1 / their mean) include the Python "
                  f"client's own work on the same cores")
        for kind, x in res.items():
            if x["bad_exits"]:
                self.note(f"TLS handshake cost, {kind}: edges exited non-zero: {x['bad_exits'][:3]}")
            if x["failures"]:
                self.note(f"TLS handshake cost, {kind}: the edges logged failed handshakes: {x['failures']}")
        if res["full"]["reused"]:
            raise RuntimeError(f"{res['full']['reused']} of {n} connections meant as full handshakes resumed")
        if rr["reused"] != n:
            raise RuntimeError(f"only {rr['reused']} of {n} connections offering a ticket resumed")
        if rr["fresh"] == 0:
            self.note(f"TLS: none of the {n} resumed connections got a new session ticket (the session after each "
                      f"was the one offered), so all reused the first one; a client that uses a TLS 1.3 ticket "
                      f"once (RFC 8446 C.4, as browsers do) gets a full handshake every other connection")

    def tls_kinds(self, n, session):
        """n connections of each kind (plain, full, resumed), each kind on a
        launcher of its own and the kinds taking turns, so that the
        machine's drift over the run falls on the three alike; the edges'
        CPU per connection from each launcher's wait4 rusage."""
        kinds = ("plain", "full", "resumed")
        las = {k: Launched(f"edge-{k}", self.tmp, self.tls_argv["plain" if k == "plain" else "https"])
               for k in kinds}
        got = {k: {"lat": [], "reused": 0, "fresh": 0} for k in kinds}
        total_ms = {}
        try:
            for _ in range(n):
                for k in kinds:
                    ctx = None if k == "plain" else self.tls_ctx
                    took, facts = visit(las[k].port, self.tls_host, ctx, session if k == "resumed" else None)
                    g = got[k]
                    g["lat"].append(took)
                    if ctx is not None:
                        g["reused"] += facts["reused"]
                    if k == "resumed":
                        g["fresh"] += facts["session"].id != session.id
                        session = facts["session"]      # the newest ticket, as a browser would
            for la in las.values():
                la.wait_kids_gone()
            own = {k: (sched_ns(la.pid), cpu_seconds(la.pid)[1]) for k, la in las.items()}
        finally:
            for k, la in las.items():
                kill_quiet(la.pid, signal.SIGTERM)
                total_ms[k] = reap_cpu_ms(la.proc.proc, 10)
                STARTED.forget(la.proc.proc)
                la.proc.logf.close()
        res = {}
        for k, la in las.items():
            edges_s = total_ms[k] / 1000 - own[k][0] / 1e9
            self.tls_edge_cpu_s += edges_s
            g = got[k]
            res[k] = {"cpu_us": edges_s * 1e6 / n, "ticks_us": own[k][1] * 1e6 / n, "cps": n / sum(g["lat"]),
                      "p50_ms": statistics.median(g["lat"]) * 1000, "reused": g["reused"], "fresh": g["fresh"],
                      "bad_exits": exits_not_zero(la.log), "failures": tls_failures(la.log)}
        return res

    def tls_load(self):
        self.tls_start()
        sec = (f"small GET 1 KiB through the tunnel, https vs plain http (edges for {TLS_DOMAIN}), "
               f"wrk -t2 -c{WRK_CONNS} -d{DURATION_S}s")
        runs = {}
        for mode, close in (("keepalive", False), ("newconn", True)):
            for scheme, edge in (("plain", self.tls_plain_edge), ("https", self.tls_edge)):
                url = f"{'https' if scheme == 'https' else 'http'}://{self.tls_host}:{edge.port}/1k"
                r = self.wrk_cpu(f"{mode} {scheme}", url, edge, lambda e=edge: self.expose_cpu(e),
                                 close=close, connect_to="127.0.0.1")
                runs[mode, scheme] = r
                self.metric(f"tls.{mode}.{scheme}.rps", round(r["rps"]), "req/s", "higher")
                self.metric(f"tls.{mode}.{scheme}.p50_ms", r["p50_us"] / 1000, "ms", "lower")
                self.metric(f"tls.{mode}.{scheme}.p99_ms", r["p99_us"] / 1000, "ms", "lower")
                for k, v in r["cpu_us_per_req"].items():
                    self.metric(f"tls.{mode}.{scheme}.cpu_us_per_req.{k}", round(v, 1), "µs", "lower")
            h, p = runs[mode, "https"], runs[mode, "plain"]
            what = "keep-alive: requests/s" if mode == "keepalive" else "new connection per request: conn/s"
            self.metric(f"tls.{mode}.ratio_https_plain", round(h["rps"] / p["rps"], 3), "x", "higher")
            self.row(sec, f"{what}, https", f"{h['rps'] / p['rps']:.0%} of plain http", expose=num(h["rps"]))
            self.row(sec, f"{what}, plain http", expose=num(p["rps"]))
            self.row(sec, f"{what.split(':')[0]}: p50 / p99 ms, https; plain",
                     expose=f"{ms(h['p50_us'])} / {ms(h['p99_us'])}; {ms(p['p50_us'])} / {ms(p['p99_us'])}")
            ch, cp = h["cpu_us_per_req"], p["cpu_us_per_req"]
            self.row(sec, f"{what.split(':')[0]}: expose CPU µs/req edge/broker/client, https; plain",
                     expose=f"{ch['edges']:.0f}/{ch['broker']:.0f}/{ch['client']:.0f}; "
                            f"{cp['edges']:.0f}/{cp['broker']:.0f}/{cp['client']:.0f}")
            if h["errors"] or p["errors"]:
                self.row(sec, f"{what.split(':')[0]}: wrk errors conn/read/write/status/timeout, https; plain",
                         expose="; ".join("/".join(str(r[x]) for x in ("connect_errors", "read_errors", "write_errors",
                                                                       "status_errors", "timeouts")) for r in (h, p)))
        self.tls_floor(sec)
        for name, edge in (("https", self.tls_edge), ("plain", self.tls_plain_edge)):
            fails = tls_failures(edge.log)
            if fails:
                self.note(f"the {name} edge for {TLS_DOMAIN} logged failed TLS handshakes (wrk stops mid-handshake "
                          f"at the end of a run; the SNI probe is one): {fails}")
            bad = exits_not_zero(edge.log)
            if bad:
                self.note(f"the {name} edge for {TLS_DOMAIN}: {len(bad)} exited non-zero, e.g. {bad[0]}")

    def tls_floor(self, sec):
        """The trivial handler (tests/bench/resp.c) against the same behind a
        GnuTLS handshake (resp.c built with -DRESP_TLS), new connections: the
        ratio any program per https connection can reach here."""
        r = {}
        for scheme, la in (("plain", self.trivial), ("https", self.trivial_tls)):
            url = f"{'https' if scheme == 'https' else 'http'}://{self.tls_host}:{la.port}/1k"
            r[scheme] = wrk(self.log, f"newconn trivial {scheme}", url, close=True, connect_to="127.0.0.1")
            la.wait_kids_gone()
            self.metric(f"tls.newconn.trivial.{scheme}.rps", round(r[scheme]["rps"]), "req/s", "higher")
        ratio = r["https"]["rps"] / r["plain"]["rps"]
        self.metric("tls.newconn.trivial.ratio_https_plain", round(ratio, 3), "x", "higher")
        self.row(sec, "new connection per request: conn/s, https; plain", f"trivial: {ratio:.0%} of plain",
                 trivial=f"{num(r['https']['rps'])}; {num(r['plain']['rps'])}")
        self.errors_row(sec, trivial=r["https"])

    def bulk(self):
        runs = BULK_RUNS
        sec = f"100 MiB per curl, MB/s (1e6 B/s, wall time incl. curl start, median of {runs})"
        ups = os.path.join(self.tmp, "uploads")
        os.makedirs(ups, exist_ok=True)
        targets = {
            "download": {"direct": (f"http://127.0.0.1:{self.origin.port}/100m", None),
                         "nginx": (f"http://127.0.0.1:{self.proxy.port}/100m", None),
                         "trivial": (f"http://127.0.0.1:{self.hop.port}/100m", None),
                         "floor": (f"http://127.0.0.1:{self.floor.port}/100m", None),
                         "expose": (f"http://127.0.0.1:{self.edge.port}/100m", self.host)},
            "upload": {"direct": (f"http://127.0.0.1:{self.sink.port}/sink", None),
                       "nginx": (f"http://127.0.0.1:{self.proxy.port}/sink", None),
                       "trivial": (f"http://127.0.0.1:{self.sink_hop.port}/sink", None),
                       "floor": (f"http://127.0.0.1:{self.sink_floor.port}/sink", None),
                       "expose": (f"http://127.0.0.1:{self.edge.port}/sink", self.sink_host)},
        }
        for way, cols in targets.items():
            for n in BULK_PARALLEL:
                got = {}
                for col, (url, host) in cols.items():
                    if col == "expose":
                        before = self.expose_cpu()
                    got[col] = statistics.median(
                        curl_batch(n, url, host, upload=self.big if way == "upload" else None, tmp=ups)
                        for _ in range(runs))
                    if col == "expose":
                        self.edge.wait_kids_gone()
                        after = self.expose_cpu()
                        cpu = {k: (after[k] - before[k]) / (runs * n) for k in after}
                    self.metric(f"bulk.{way}.x{n}.{col}.MBps", round(got[col]), "MB/s", "higher")
                self.row(sec, f"{way}, {n} at once", f"{got['expose'] / got['direct']:.0%} of direct",
                         ">= 1000 MB/s " + met(got["expose"] >= 1000),
                         **{col: num(v) for col, v in got.items()})
                # CPU per byte holds on a busy machine, where wall-clock MB/s does not.
                self.row(sec, f"{way}, {n} at once: expose CPU ms per 100 MiB edge/broker/client",
                         expose="/".join(f"{cpu[k] * 1000:.0f}" for k in ("edges", "broker", "client")))
                for k, v in cpu.items():
                    self.metric(f"bulk.{way}.x{n}.expose.cpu_ms_per_100mib.{k}", round(v * 1000), "ms", "lower")
        self.note("uploads go to the upload sink (tests/bench/sink.c: it reads each body and drops it), "
                  "downloads are a 100 MiB file from the nginx origin: each directly, through nginx, through "
                  "the bare relays (one hop; expose's shape) and through expose")

    def sse(self):
        n = SSE_STREAMS
        sec = f"{n} concurrent slow streams (SSE), held through the tunnel"
        b0 = status(self.broker.proc.pid)["VmRSS"]
        c0 = status(self.client_app.proc.pid)["VmRSS"]
        res = asyncio.run(self.sse_hold(n))
        self.row(sec, "streams open (first event read)", f"in {res['open_s']:.1f} s", expose=f"{res['open']}")
        self.row(sec, "broker RSS MiB (before -> held)", expose=f"{mib(b0)} -> {mib(res['broker'])}")
        self.row(sec, "client RSS MiB (before -> held)", expose=f"{mib(c0)} -> {mib(res['client'])}")
        self.row(sec, "expose-edge processes", expose=str(res["edges"]))
        self.row(sec, "edge RSS KiB each (avg); PSS MiB all", expose=f"{res['edge_rss_avg']:.0f}; {mib(res['edge_pss'])}")
        self.row(sec, "an event to all streams: ms", f"{res['got_next']} got it", expose=f"{res['fanout_ms']:.0f}")
        self.row(sec, f"edges alive {SSE_LINGER_S} s after visitors left", expose=str(res["left_after_close"]))
        if res["left_after_close"]:
            self.row(sec, "app events written until they exit", f"{res['killed']} killed after 3" if res["killed"] else "",
                     expose=str(res["events_to_end"]))
        self.metric(f"sse.{n}.edges_left_after_close", res["left_after_close"], "processes", "lower")
        self.row(sec, "broker RSS MiB after they are gone", expose=mib(status(self.broker.proc.pid)["VmRSS"]))
        self.metric(f"sse.{n}.broker_rss_held_kib", res["broker"], "KiB", "lower")
        self.metric(f"sse.{n}.broker_rss_growth_kib", res["broker"] - b0, "KiB", "lower")
        self.metric(f"sse.{n}.client_rss_held_kib", res["client"], "KiB", "lower")
        self.metric(f"sse.{n}.client_rss_growth_kib", res["client"] - c0, "KiB", "lower")
        self.metric(f"sse.{n}.edge_rss_avg_kib", round(res["edge_rss_avg"]), "KiB", "lower")
        self.metric(f"sse.{n}.fanout_ms", round(res["fanout_ms"], 1), "ms", "lower")
        if res["open"] != n:
            raise RuntimeError(f"only {res['open']} of {n} streams opened: {res['errors'][:3]}")

    async def sse_hold(self, n):
        port, host = self.edge.port, self.app_host
        conns, errors = [], []
        sem = asyncio.Semaphore(64)
        req = f"GET /sse HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()

        async def open_one():
            async with sem:
                try:
                    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 20)
                    w.write(req)
                    await asyncio.wait_for(r.readuntil(b"data: first\n\n"), 30)
                    conns.append((r, w))
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                    errors.append(repr(e))

        t0 = time.monotonic()
        await asyncio.gather(*(open_one() for _ in range(n)))
        res = {"open": len(conns), "open_s": time.monotonic() - t0, "errors": errors}
        res["broker"] = status(self.broker.proc.pid)["VmRSS"]
        res["client"] = status(self.client_app.proc.pid)["VmRSS"]
        kids = self.edge.kids()
        rss = []
        for pid in kids:
            try:
                rss.append(status(pid)["VmRSS"])
            except (FileNotFoundError, ProcessLookupError):
                pass
        res["edges"] = len(kids)
        res["edge_rss_avg"] = sum(rss) / len(rss) if rss else 0
        res["edge_pss"] = sum(pss_kib(p) for p in kids)

        # One event to all: /sse-next on the app writes to every stream.
        got = 0

        async def next_one(r):
            nonlocal got
            try:
                await asyncio.wait_for(r.readuntil(b"data: next\n\n"), 30)
                got += 1
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                pass
        t0 = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: urllib.request.urlopen(self.app.url("/sse-next"), timeout=10).read())
        await asyncio.gather(*(next_one(r) for r, _ in conns))
        res["fanout_ms"] = (time.monotonic() - t0) * 1000
        res["got_next"] = got

        # The visitors leave (FIN).  Their edges should follow.
        for _, w in conns:
            w.close()
        await asyncio.gather(*(w.wait_closed() for _, w in conns), return_exceptions=True)
        res["left_after_close"] = self.edge.wait_kids(SSE_LINGER_S)
        # Those still there go once the app writes again: the first write
        # to the closed socket draws a reset, the next fails.  Count the
        # events that takes (up to 3), then kill any left.
        res["events_to_end"], res["killed"] = 0, 0
        left = res["left_after_close"]
        while left and res["events_to_end"] < 3:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: urllib.request.urlopen(self.app.url("/sse-next"), timeout=10).read())
            res["events_to_end"] += 1
            left = self.edge.wait_kids(5)
        for pid in self.edge.kids():
            kill_quiet(pid, signal.SIGTERM)
            res["killed"] += 1
        self.edge.wait_kids_gone()
        return res

    def setup_time(self):
        runs = SETUP_RUNS
        sec = f"tunnel setup (key already made), median of {runs}"
        to_url, to_answer, cpu_ms = [], [], []
        for i in range(runs):
            log = os.path.join(self.tmp, f"setup-{i}.log")
            env = dict(os.environ, XDG_CONFIG_HOME=self.key_dir)
            t0 = time.monotonic()
            with open(log, "ab") as lf:
                p = STARTED.add("expose (setup)", subprocess.Popen(
                    [os.path.join(BIN, "expose"), "--server", self.broker.server, str(self.origin.port)],
                    stdout=subprocess.PIPE, stderr=lf, stdin=subprocess.DEVNULL, env=env), signal.SIGINT)
            try:
                url = harness.read_line(p.stdout)
                t1 = time.monotonic()
                host = re.match(r"https?://([^/]+)/", url).group(1)
                deadline = t1 + 10
                while True:
                    st, body = http_get(self.edge.port, "/1k", host)
                    if st == 200 and len(body) == SMALL_BYTES:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"setup: {url} answered {st}")
                t2 = time.monotonic()
                to_url.append((t1 - t0) * 1000)
                to_answer.append((t2 - t0) * 1000)
            finally:
                p.send_signal(signal.SIGINT)
                cpu_ms.append(reap_cpu_ms(p, 20))
                STARTED.forget(p)
        med = statistics.median(to_answer)
        self.row(sec, "ms: start -> URL line", expose=f"{statistics.median(to_url):.1f}")
        self.row(sec, "ms: start -> first answer", f"min {min(to_answer):.1f}, max {max(to_answer):.1f}",
                 "< 100 ms " + met(med < 100), expose=f"{med:.1f}")
        self.row(sec, "expose CPU ms: start, 1 request, exit", expose=f"{statistics.median(cpu_ms):.1f}")
        self.metric("setup.to_url_ms", round(statistics.median(to_url), 1), "ms", "lower")
        self.metric("setup.client_cpu_ms", round(statistics.median(cpu_ms), 1), "ms", "lower")
        self.metric("setup.to_answer_ms", round(med, 1), "ms", "lower")
        self.edge.wait_kids_gone()

    def cluster(self):
        """Registration with etcd vs without, and a client's failover
        (tests/bench/cluster.py)."""
        import cluster
        cluster.run(self, STARTED, BIN, self.origin.port, broker_extra())

    def idle(self):
        """Idle tunnels on a fresh broker: one expose process per tunnel."""
        tmp = os.path.join(self.tmp, "idle")
        os.makedirs(tmp)
        sec = "idle tunnels on a fresh broker (one expose process and key each)"
        broker = harness.Broker(tmp, public_port=80, bin_dir=BIN, extra=broker_extra())
        STARTED.add("exposed (idle)", broker.proc.proc)
        self.procs["exposed (idle-tunnel broker)"] = broker.proc.pid
        # A first client comes and goes before the baseline (the broker's
        # first-connection allocations are not per tunnel).
        first = harness.Client(tmp, broker.server, self.origin.port, key_dir=os.path.join(tmp, "key-0"),
                               bin_dir=BIN)
        first.stop()
        harness.wait_for(lambda: not broker.rows(), what="the first client's row to go")
        rss0 = status(broker.proc.pid)["VmRSS"]
        self.row(sec, "none: broker RSS MiB", expose=mib(rss0))
        clients, sel = [], selectors.DefaultSelector()
        errlog = open(os.path.join(tmp, "clients.log"), "ab")
        argv = [os.path.join(BIN, "expose"), "--server", broker.server, str(self.origin.port)]
        per_client_kib = None
        try:
            for want in IDLE_STEPS:
                mem0, have0 = meminfo("MemAvailable"), len(clients)
                if per_client_kib:
                    fits = (mem0 - MEM_FLOOR_KIB) // per_client_kib
                    if have0 + fits < want:
                        self.note(f"idle tunnels: {want} would need about {mib((want - have0) * per_client_kib)} MiB "
                                  f"more ({per_client_kib} KiB per expose process) with "
                                  f"{mib(mem0)} MiB available: stopping at {len(clients)}")
                        break
                t0 = time.monotonic()
                stopped = self.spawn_idle(clients, sel, want, argv, tmp, errlog)
                took = time.monotonic() - t0
                n = len(clients)
                harness.wait_for(lambda: len(broker.rows()) == n, 30, f"{n} registry rows")
                rss = status(broker.proc.pid)["VmRSS"]
                per = (rss - rss0) * 1024 / n
                size = {s: file_size(broker.registry + s) for s in ("", "-wal", "-shm")}
                sample = [c.pid for c in clients[:: max(1, n // 20)]]
                c_rss = statistics.mean(status(p)["VmRSS"] for p in sample)
                c_pss = statistics.mean(pss_kib(p) for p in sample)
                per_client_kib = max(1, (mem0 - meminfo("MemAvailable")) // max(1, n - have0))
                self.row(sec, f"{n} tunnels: broker B/tunnel", f"RSS {mib(rss)} MiB",
                         "<= 16 KiB " + met(per <= 16 * 1024), expose=num(per))
                self.row(sec, f"{n} tunnels: registry KiB db+wal+shm",
                         expose="+".join(f"{size[k] / 1024:.0f}" for k in ("", "-wal", "-shm")))
                self.row(sec, f"{n} tunnels: s to connect the last {n - have0}", expose=f"{took:.1f}")
                self.row(sec, f"{n} tunnels: each expose RSS/PSS KiB", expose=f"{c_rss:.0f}/{c_pss:.0f}")
                self.metric(f"idle.{want}.broker_bytes_per_tunnel", round(per), "B", "lower")
                self.metric(f"idle.{want}.broker_rss_kib", rss, "KiB", "lower")
                self.metric(f"idle.{want}.registry_bytes", sum(size.values()), "B", "lower")
                if stopped:
                    self.note(f"idle tunnels: stopped at {n} of {want}: {stopped}")
                    break
        finally:
            t0 = time.monotonic()
            for c in clients:
                kill_quiet(c.pid, signal.SIGINT)
            deadline = time.monotonic() + 60
            for c in clients:
                try:
                    c.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    c.kill()
                    c.wait()
                c.stdout.close()
            STARTED.forget_many(clients)
            sel.close()
            errlog.close()
        if clients:
            try:
                harness.wait_for(lambda: not broker.rows(), 30, "registry rows to go")
            except TimeoutError:
                pass
            self.row(sec, "all stopped: rows left; broker RSS MiB", f"{time.monotonic() - t0:.1f} s to stop all",
                     expose=f"{len(broker.rows())}; {mib(status(broker.proc.pid)['VmRSS'])}")
            # A measuring point, not a wait for readiness: the broker trims
            # its heap on its once-a-second status tick.
            time.sleep(IDLE_SETTLE_S)
            rss = status(broker.proc.pid)["VmRSS"]
            self.row(sec, f"all stopped, {IDLE_SETTLE_S} s later: broker RSS MiB", expose=f"{mib(rss)}")
            self.metric("idle.after_settle.broker_rss_kib", rss, "KiB", "lower")
        self.idle_broker_hwm = status(broker.proc.pid)["VmHWM"]
        self.idle_broker_cpu = cpu_seconds(broker.proc.pid)[0]
        broker.stop()
        STARTED.forget(broker.proc.proc)

    def spawn_idle(self, clients, sel, want, argv, tmp, errlog):
        """Starts clients until want have printed their URL, each with a key
        of its own (made on its first run), as separate users would have.
        Returns why it stopped short (memory, deadline), or None."""
        waiting, why = 0, None
        deadline = time.monotonic() + 300
        while waiting or (why is None and len(clients) < want):
            if why is None and time.monotonic() > deadline:
                why = "300 s deadline"
            if why is None and meminfo("MemAvailable") < MEM_FLOOR_KIB:
                why = f"MemAvailable under {mib(MEM_FLOOR_KIB)} MiB"
            while why is None and waiting < SPAWN_BATCH and len(clients) < want:
                # close_fds=False: Python's own fds are close-on-exec, so a
                # client inherits only 0, 1 and 2, and Popen may posix_spawn.
                env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, f"key-{len(clients) + 1}"))
                p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errlog,
                                     stdin=subprocess.DEVNULL, env=env, close_fds=False)
                STARTED.add("expose (idle)", p, signal.SIGINT)
                clients.append(p)
                sel.register(p.stdout, selectors.EVENT_READ, p)
                waiting += 1
            ready = sel.select(timeout=20)
            if not ready:
                raise RuntimeError(f"{waiting} idle clients printed no URL within 20 s")
            for key, _ in ready:
                p = key.data
                line = p.stdout.readline()
                sel.unregister(p.stdout)
                if not line.startswith(b"http"):
                    with open(errlog.name, errors="replace") as f:
                        tail = f.read().splitlines()[-3:]
                    raise RuntimeError(f"an idle client printed {line!r} (exit {p.poll()}); "
                                       f"the clients' log ends: {tail}")
                waiting -= 1
        return why

    def process_rows(self):
        sec = "expose's processes over the whole run"
        for name, pid in self.procs.items():
            if name.startswith("exposed (idle"):
                hwm, cpu = getattr(self, "idle_broker_hwm", None), getattr(self, "idle_broker_cpu", None)
                if hwm is None:
                    continue
            else:
                hwm, cpu = status(pid)["VmHWM"], cpu_seconds(pid)[0]
            self.row(sec, f"{name}: peak RSS MiB; CPU s", expose=f"{mib(hwm)}; {cpu:.2f}")
            key = re.sub(r"[^a-z]+", "_", name.lower()).strip("_")
            self.metric(f"proc.{key}.peak_rss_kib", hwm, "KiB", "lower")
            self.metric(f"proc.{key}.cpu_s", round(cpu, 2), "s", "lower")
        own, kids = cpu_seconds(self.edge.pid)
        self.row(sec, "all expose-edge processes: CPU s", expose=f"{kids:.2f}")
        self.row(sec, "the edge's launcher: RSS MiB; CPU s",
                 expose=f"{mib(status(self.edge.pid)['VmRSS'])}; {own:.2f}")
        self.metric("proc.edges.cpu_s", round(kids, 2), "s", "lower")
        if getattr(self, "tls_ready", False):
            tls = self.tls_edge_cpu_s + sum(cpu_seconds(e.pid)[1] for e in (self.tls_edge, self.tls_plain_edge))
            self.row(sec, f"expose-edge processes for {TLS_DOMAIN} (https and plain): CPU s", expose=f"{tls:.2f}")
            self.metric("proc.tls_edges.cpu_s", round(tls, 2), "s", "lower")


def reap_cpu_ms(p, timeout):
    """Waits for a child (SIGKILL after timeout s); returns its CPU ms (wait4 rusage)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, st, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(st)
            return (ru.ru_utime + ru.ru_stime) * 1000
        if time.monotonic() > deadline:
            p.kill()
            deadline = time.monotonic() + 10
        time.sleep(0.005)


def machine_cpu():
    """(user+nice+system seconds of the whole machine, steal seconds, wall)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2]) / CLK_TCK, v[7] / CLK_TCK, time.monotonic()


def own_cpu():
    """CPU seconds of this process and all it started (once they are reaped)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def busy_cores(seconds=1.0):
    """Cores' worth of CPU the whole machine used over a short window."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v[:8]) - idle, sum(v[:8])
    b0, t0 = sample()
    time.sleep(seconds)     # a measuring window, not a wait for readiness
    b1, t1 = sample()
    return (b1 - b0) / max(1, t1 - t0) * len(os.sched_getaffinity(0))


def broker_extra():
    """Options every broker here gets.  All clients come from 127.0.0.1, so
    per-source limits (where the broker has them: handshakes, streams per
    tunnel) are turned off: the bench measures capacity, not that policy."""
    out = subprocess.run([os.path.join(BIN, "exposed"), "--help"], capture_output=True, text=True)
    text = out.stdout + out.stderr
    extra = ["--handshake-rate", "0"] if "--handshake-rate" in text else []
    if "--streams-per-source" in text:
        extra += ["--streams-per-source", "100000"]
    return extra


def file_size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def met(ok):
    return "met" if ok else "MISSED"


def num(x):
    return f"{x:,.0f}".replace(",", " ")


def ms(us):
    return f"{us / 1000:.2f}"


def mib(kib):
    return f"{kib / 1024:.1f}"


# --- versions and output ---------------------------------------------------

def first_line(argv, pattern=r"(\S+)$"):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout + out.stderr).strip().splitlines()
    if not text:
        return "?"
    m = re.search(pattern, text[0])
    return m.group(1) if m else text[0]


def versions():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = first_line(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], r"(.*)")
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "cmd", "lib", "sql"],
                           capture_output=True, text=True).stdout.strip()
    commit += "+dirty" if dirty else ""
    if os.path.realpath(BIN) != os.path.realpath(os.path.join(ROOT, "bin")):
        # The tree's commit says nothing of binaries built elsewhere.
        commit = f"unknown (binaries from {BIN}; the tree is at {commit})"
    return {
        "commit": commit,
        "bin": BIN,
        "cores": len(os.sched_getaffinity(0)),
        "cpu": model,
        "mem_total_mib": meminfo("MemTotal") // 1024,
        "kernel": os.uname().release,
        "nginx": first_line(["nginx", "-v"], r"nginx/(\S+)"),
        "wrk": first_line(["wrk", "-v"], r"wrk (\S+)"),
        "libwebsockets": first_line(["pkg-config", "--modversion", "libwebsockets"], r"(.*)"),
        "sqlite": first_line(["pkg-config", "--modversion", "sqlite3"], r"(.*)"),
        "libsodium": first_line(["pkg-config", "--modversion", "libsodium"], r"(.*)"),
        "systemd-socket-activate": first_line(["systemd-socket-activate", "--version"], r"systemd (\S+)"),
        "node": first_line(["node", "--version"], r"(.*)"),
        "curl": first_line(["curl", "--version"], r"curl (\S+)"),
        "cc": first_line(["cc", "--version"], r"(.*)"),
    }


COLUMNS = (("direct", "direct"), ("nginx", "nginx 1-hop"), ("trivial", "trivial+launcher"),
           ("floor", "bare shape"), ("expose", "expose"))


def render(bench, meta, started, elapsed):
    lines = [f"expose bench  {started}  {'BENCH_QUICK=1 (short runs)' if QUICK else 'full'}  "
             f"commit {meta['commit']}  ({elapsed:.0f} s)",
             f"machine: {meta['cores']} cores ({meta['cpu']}), {meta['mem_total_mib']} MiB RAM, "
             f"kernel {meta['kernel']}",
             f"versions: nginx {meta['nginx']}, wrk {meta['wrk']}, libwebsockets {meta['libwebsockets']}, "
             f"sqlite {meta['sqlite']}, libsodium {meta['libsodium']}, systemd-socket-activate "
             f"{meta['systemd-socket-activate']}, node {meta['node']}, curl {meta['curl']}, {meta['cc']}",
             "everything on 127.0.0.1; wrk, curl, nginx, the app and expose share the same cores; "
             f"other processes used {meta['busy_cores_before']:.2f} cores just before the run, "
             f"{meta.get('other_cores_during', 0):.2f} on average during it (steal "
             f"{meta.get('steal_cores_during', 0):.2f})",
             ""]
    head = ["metric"] + [c[1] for c in COLUMNS] + ["expose vs ref", "target (issue 7)"]
    body, section = [], None
    for sec, metric, cols, ratio, target in bench.rows:
        if sec != section:
            body.append(("section", sec))
            section = sec
        body.append(("row", ["  " + metric] + [cols.get(k, "") for k, _ in COLUMNS] + [ratio, target]))
    widths = [len(h) for h in head]
    for kind, r in body:
        if kind == "row":
            widths = [max(w, len(c)) for w, c in zip(widths, r)]

    def fmt(r):
        last = len(COLUMNS) + 1
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:last], widths[1:last])] + \
                [c.ljust(w) for c, w in zip(r[last:], widths[last:])]
        return "  ".join(cells).rstrip()
    lines.append(fmt(head))
    lines.append("-" * len(fmt(head)))
    for kind, r in body:
        lines.append(r if kind == "section" else fmt(r))
    if bench.notes:
        lines += ["", "notes:"] + [f"- {n}" for n in bench.notes]
    return "\n".join(lines) + "\n"


def main():
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
    started = datetime.datetime.now()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    os.makedirs(OUT_DIR, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="expose-bench-")
    log = open(os.path.join(OUT_DIR, f"{stamp}.log"), "w")
    meta = versions()
    meta["busy_cores_before"] = round(busy_cores(), 2)
    if meta["busy_cores_before"] > 0.2:
        print(f"bench: warning: the machine is already busy ({meta['busy_cores_before']:.2f} cores "
              "in use by other processes): figures will be lower and noisier", file=sys.stderr)
    meta.update(timestamp=started.isoformat(timespec="seconds"), quick=QUICK, duration_s=DURATION_S,
                sse_streams=SSE_STREAMS, idle_steps=IDLE_STEPS, only=ONLY, setup_runs=SETUP_RUNS, bulk_runs=BULK_RUNS)
    bench = Bench(tmp, log)
    t0 = time.monotonic()
    machine0, own0 = machine_cpu(), own_cpu()
    rc = 0
    try:
        bench.start()
        for key, name, fn in (("keepalive", "keep-alive", bench.keepalive),
                              ("newconn", "new connection per request", bench.newconn),
                              ("tls", "TLS handshake cost", bench.tls_handshakes),
                              ("tls", "https vs plain through the tunnel", bench.tls_load),
                              ("bulk", "bulk", bench.bulk),
                              ("sse", "slow streams", bench.sse),
                              ("setup", "tunnel setup", bench.setup_time),
                              ("idle", "idle tunnels", bench.idle),
                              ("cluster", "more than one host (etcd)", bench.cluster)):
            if ONLY and key not in ONLY:
                continue
            bench.scenario(name, fn)
        bench.process_rows()
    except BaseException as e:
        bench.failed.append("run")
        bench.note(f"FAILED: {type(e).__name__}: {e}")
        rc = e.code if isinstance(e, SystemExit) and isinstance(e.code, int) else 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        STARTED.stop_all()
        machine1, own1 = machine_cpu(), own_cpu()
        wall = machine1[2] - machine0[2]
        meta["other_cores_during"] = round(max(0.0, (machine1[0] - machine0[0]) - (own1 - own0)) / wall, 2)
        meta["steal_cores_during"] = round((machine1[1] - machine0[1]) / wall, 2)
        if meta["other_cores_during"] > 0.2:
            bench.note(f"other processes used {meta['other_cores_during']:.2f} cores on average during the run: "
                       "its figures are lower and noisier than on an idle machine")
        log.write("\n=== logs of the scratch directory tails\n")
        for name in ("broker.log", "edge.log", "app.log"):
            path = os.path.join(tmp, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    log.write(f"--- {name} (last 20 lines)\n" + "".join(f.readlines()[-20:]))
        log.close()
        if os.environ.get("BENCH_KEEP") == "1":
            print(f"bench: scratch directory kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    text = render(bench, meta, started.strftime("%Y-%m-%d %H:%M:%S"), time.monotonic() - t0)
    txt = os.path.join(OUT_DIR, f"{stamp}.txt")
    with open(txt, "w") as f:
        f.write(text)
    with open(os.path.join(OUT_DIR, f"{stamp}.json"), "w") as f:
        json.dump({"meta": meta, "metrics": bench.metrics, "notes": bench.notes, "failed": bench.failed,
                   "table": [{"section": s, "metric": m, "columns": c, "ratio": r, "target": t}
                             for s, m, c, r, t in bench.rows]}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print()
    print(text)
    print(f"written: {txt} and .json (raw wrk output in {stamp}.log); "
          f"compare runs with tests/bench/compare.py A.json B.json")
    if bench.failed and rc == 0:
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
