"""The real programs, started for a test and stopped after it.

Every piece is the real one: exposed, expose-edge under
systemd-socket-activate, expose, and a Node app.  Readiness is waited for
(sd_notify READY=1, the launcher's "Listening" line, the client's URL on
stdout, the app's "listening" line), never slept for.
"""
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# The binaries under test: the sanitizer build in make check, else bin/.
BIN = os.path.abspath(os.environ.get("EXPOSE_BIN", os.path.join(ROOT, "bin")))
# Memory and speed are measured on the release build.
RELEASE_BIN = os.path.abspath(os.environ.get("EXPOSE_RELEASE_BIN", os.path.join(ROOT, "bin")))
APP_JS = os.path.join(ROOT, "tests", "e2e", "app.js")

# What starting a process costs here, against a fast machine of this kind:
# machines differ by ten times or more (a VM whose memory is handed back to
# its host pays for every page fault), and every deadline a test sets is
# scaled by it.  Deadlines only bound failures: a passing test never waits
# for one.
REFERENCE_SPAWN_MS = 1.0
SPAWN_SAMPLES = 20


def _spawn_ms():
    t0 = time.monotonic()
    for _ in range(SPAWN_SAMPLES):
        subprocess.run(["/bin/true"], check=True)
    return (time.monotonic() - t0) * 1000 / SPAWN_SAMPLES


SPAWN_MS = _spawn_ms()
SLOWNESS = max(1.0, SPAWN_MS / REFERENCE_SPAWN_MS)
# The browser scripts (tests/browser/chromium.mjs) scale their own deadlines.
os.environ["EXPOSE_TEST_SLOWNESS"] = f"{SLOWNESS:.2f}"


def scaled(seconds):
    """A deadline of seconds on a fast machine, for this one."""
    return seconds * SLOWNESS


READY_TIMEOUT_S = 20


def bound(name):
    """A limit from lib/bounds.h, so tests follow the code's own figures."""
    with open(os.path.join(ROOT, "lib", "bounds.h")) as f:
        text = f.read()
    m = re.search(rf"^#define {name} \(?([0-9 *]+)\)?$", text, re.M)
    assert m, f"{name} is not a plain number in lib/bounds.h"
    value = 1
    for factor in m.group(1).split("*"):
        value *= int(factor)
    return value


URI_MAX_BYTES = bound("URI_MAX_BYTES")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


# Ports for the tests' listeners come from below the kernel's ephemeral
# range: a port the kernel picked for bind(0) is one it also hands to
# outgoing connections, and with a soak of thousands of clients running
# beside, one of them could take it before the listener binds it.
LISTEN_PORT_LOW = 10000


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_ports = random.Random(os.getpid() ^ time.monotonic_ns())
_ports_given = set()


PORT_PICKS_MAX = 1000


def free_port():
    """A port nothing listens on now, outside the ephemeral range, and not
    given before by this process."""
    high = _ephemeral_low() - 1
    for _ in range(PORT_PICKS_MAX):
        port = _ports.randint(LISTEN_PORT_LOW, high)
        if port in _ports_given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise RuntimeError(f"no free port in {LISTEN_PORT_LOW}-{high} after {PORT_PICKS_MAX} picks")


def wait_for(predicate, timeout=READY_TIMEOUT_S, what="condition"):
    """Polls predicate until it returns something true; fails after timeout
    (scaled to this machine)."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def wait_in_file(path, pattern, timeout=READY_TIMEOUT_S):
    regex = re.compile(pattern)

    def found():
        try:
            with open(path, errors="replace") as f:
                return regex.search(f.read())
        except FileNotFoundError:
            return None
    return wait_for(found, timeout, f"/{pattern}/ in {path}")


def read_line(pipe, timeout=READY_TIMEOUT_S):
    """One line from a pipe, or TimeoutError (timeout scaled to this machine)."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    data = b""
    fd = pipe.fileno()
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no line within {timeout}s (got {data!r})")
        # poll, not select: tests may hold more than 1024 descriptors
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        if not poller.poll(left * 1000):
            continue
        chunk = os.read(fd, 1)
        if not chunk:
            raise EOFError(f"pipe closed (got {data!r})")
        data += chunk
    return data.decode().rstrip("\n")


def proc_status(pid):
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0])
    return out


def sanitizer_findings(path):
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKS)]


# expose's own programs, which honour EXPOSE_LIFELINE themselves.
OWN_PROGRAMS = ("expose", "exposed", "expose-edge", "exposectl")
# Others start through this, which sets the same death signal and execs.
LIFELINE = os.path.join(ROOT, os.environ.get("EXPOSE_BUILD", "build"), "tests", "lifeline")


def spawn(argv, env=None, **kw):
    """Popen whose child is killed when the test run ends, even by SIGKILL
    (PR_SET_PDEATHSIG), so that a client never outlives its test.  The child
    sets the signal itself (EXPOSE_LIFELINE), so the spawn stays a vfork and
    an exec: a preexec_fn would make Python fork its whole interpreter,
    which costs milliseconds a process on a slow machine."""
    env = dict(os.environ if env is None else env)
    env["EXPOSE_LIFELINE"] = str(os.getpid())
    if os.path.basename(argv[0]) not in OWN_PROGRAMS:
        assert os.access(LIFELINE, os.X_OK), f"{LIFELINE} is missing: run `make units`"
        argv = [LIFELINE, *argv]
    return subprocess.Popen(argv, env=env, **kw)


class Process:
    """A started program with its stderr in a log file.  Start it from the
    main thread: it dies when the thread that started it does."""

    def __init__(self, argv, log, env=None, stdout=subprocess.DEVNULL):
        self.argv = argv
        self.log = log
        self.logf = open(log, "ab")
        self.proc = spawn(argv, stdout=stdout, stderr=self.logf, env=env,
                          stdin=subprocess.DEVNULL)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def send(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def exit_status(self, timeout=READY_TIMEOUT_S):
        """Waits for it to exit by itself (timeout scaled to this machine);
        a failure quotes its log."""
        timeout = scaled(timeout)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.argv[0]} still runs after {timeout:.0f}s; "
                                 f"its log:\n{self.text()}") from None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops it and returns its exit status."""
        self.send(sig)
        timeout = scaled(timeout)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError(f"{self.argv[0]} did not stop within {timeout}s")
        finally:
            self.logf.close()
        return rc

    def kill(self):
        self.send(signal.SIGKILL)
        self.proc.wait()
        self.logf.close()

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()


def sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=23")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


class App:
    """The Node app behind the tunnel."""

    def __init__(self, tmp, tls=None):
        """tls: (cert, key) PEM files for an https app."""
        env = dict(os.environ, APP_TLS_CERT=tls[0], APP_TLS_KEY=tls[1]) if tls else None
        self.proc = Process(["node", APP_JS, "0"], os.path.join(tmp, "app.log"),
                            stdout=subprocess.PIPE, env=env)
        self.scheme = "https" if tls else "http"
        line = read_line(self.proc.proc.stdout)
        self.port = int(line.split()[1])

    def url(self, path):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def requests(self):
        import ssl
        import urllib.request
        unchecked = ssl._create_unverified_context() if self.scheme == "https" else None
        with urllib.request.urlopen(self.url("/__log"), timeout=10, context=unchecked) as r:
            return json.loads(r.read())

    def reset(self):
        import urllib.request
        urllib.request.urlopen(self.url("/__reset"), timeout=10).read()

    def stop(self):
        self.proc.stop()


class Broker:
    """exposed, ready once it tells NOTIFY_SOCKET READY=1."""

    def __init__(self, tmp, domain="localhost", public_port=80, bin_dir=None,
                 registry=None, socket_path=None, ws_port=None, extra=()):
        self.tmp = tmp
        self.bin = bin_dir or BIN
        self.domain = domain
        self.public_port = public_port
        self.ws_port = ws_port or free_port()
        self.socket = socket_path or os.path.join(tmp, "broker.sock")
        self.registry = registry or os.path.join(tmp, "registry.db")
        self.log = os.path.join(tmp, "broker.log")
        self.argv = [os.path.join(self.bin, "exposed"), "--domain", domain,
                     "--public-port", str(public_port),
                     "--listen", f"127.0.0.1:{self.ws_port}", "--socket", self.socket,
                     "--registry", self.registry, *extra]
        self.start()

    def start(self):
        notify = os.path.join(self.tmp, f"notify-{time.monotonic_ns()}.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify)
        env = sanitizer_env()
        env["NOTIFY_SOCKET"] = notify
        self.proc = Process(self.argv, self.log, env=env)
        try:
            deadline = time.monotonic() + scaled(READY_TIMEOUT_S)
            while True:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    msg = sock.recv(4096).decode()
                except socket.timeout:
                    if not self.proc.alive():
                        raise AssertionError(f"exposed exited: {self.proc.text()}")
                    if time.monotonic() > deadline:
                        raise TimeoutError("exposed never said READY=1")
                    continue
                if "READY=1" in msg:
                    break
        finally:
            sock.close()
            os.unlink(notify)

    @property
    def server(self):
        return f"ws://127.0.0.1:{self.ws_port}"

    def stop(self):
        rc = self.proc.stop()
        assert rc == 0, f"exposed exited {rc}:\n{self.proc.text()[-3000:]}"

    def kill(self):
        self.proc.kill()

    def rows(self):
        """Live tunnel rows, as exposectl lists them."""
        out = subprocess.run([os.path.join(self.bin, "exposectl"), "--registry",
                              self.registry, "list"], capture_output=True, text=True,
                             check=True, env=sanitizer_env())
        return [line.split() for line in out.stdout.splitlines()]

    def sessions(self):
        """{tunnel name: the broker session holding it}, from the registry
        itself: what identifies a row, where `exposectl list` shows ages."""
        import sqlite3
        db = sqlite3.connect(f"file:{self.registry}?mode=ro", uri=True, timeout=10)
        try:
            return dict(db.execute("SELECT name, session FROM tunnels"))
        finally:
            db.close()


class Edge:
    """expose-edge (or program, e.g. expose-edge-tls) under
    systemd-socket-activate, one process per connection."""

    def __init__(self, tmp, broker, bin_dir=None, port=None, inetd=True, extra=(),
                 program="expose-edge"):
        self.port = port or free_port()
        self.log = os.path.join(tmp, f"edge-{self.port}.log")
        mode = ["--inetd"] if inetd else []
        argv = ["systemd-socket-activate", *mode, "-a", "-l", f"127.0.0.1:{self.port}",
                os.path.join(bin_dir or BIN, program), "--registry",
                broker.registry, "--domain", broker.domain, *extra]
        self.proc = Process(argv, self.log, env=sanitizer_env())
        listening = re.compile(r"Listening on 127\.0\.0\.1:%d" % self.port)

        def ready():
            if listening.search(self.proc.text()):
                return True
            if not self.proc.alive():
                raise AssertionError(f"the launcher exited: {self.proc.text()}")
            return False
        wait_for(ready, READY_TIMEOUT_S, f"{argv[0]} to listen on port {self.port}")

    def stop(self):
        self.proc.stop()

    def children(self):
        """Edge processes alive now (the launcher's children)."""
        kids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                kids.append(int(entry))
        return kids

    def wait_idle(self, timeout=30):
        """Waits until no edge process is left."""
        wait_for(lambda: not self.children(), timeout, "edge processes to exit")

    def accesses(self):
        with open(self.log, errors="replace") as f:
            return [line for line in f if "expose-edge: access " in line]


class Client:
    """expose, ready once its URL is on stdout."""

    def __init__(self, tmp, server, *args, key_dir=None, bin_dir=None, wait_url=True,
                 nurls=1, env_extra=None):
        self.key_dir = key_dir or os.path.join(tmp, f"key-{time.monotonic_ns()}")
        env = sanitizer_env()
        env["XDG_CONFIG_HOME"] = self.key_dir
        env.update(env_extra or {})
        self.log = os.path.join(tmp, f"client-{time.monotonic_ns()}.log")
        argv = [os.path.join(bin_dir or BIN, "expose")]
        if server:
            argv += ["--server", server]
        self.proc = Process(argv + [str(a) for a in args], self.log, env=env,
                            stdout=subprocess.PIPE)
        self.urls = []
        if wait_url:
            for _ in range(nurls):
                self.urls.append(read_line(self.proc.proc.stdout))

    @property
    def url(self):
        return self.urls[0]

    @property
    def host(self):
        return re.match(r"https?://([^/]+)/", self.url).group(1)

    def next_line(self, timeout=READY_TIMEOUT_S):
        return read_line(self.proc.proc.stdout, timeout)

    def stop(self, sig=signal.SIGINT):
        return self.proc.stop(sig)

    def kill(self):
        self.proc.kill()

    def text(self):
        return self.proc.text()


# How long http_raw reads an answer by default, on a fast machine.
HTTP_RAW_TIMEOUT_S = 10


def http_raw(port, data, timeout=None, read_until_close=True):
    """Sends raw bytes to 127.0.0.1:port and returns all bytes read until
    the server closes (or timeout: by default HTTP_RAW_TIMEOUT_S scaled to
    this machine)."""
    if timeout is None:
        timeout = scaled(HTTP_RAW_TIMEOUT_S)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if not read_until_close:
                break
        return b"".join(chunks)


def read_until_close(sock, limit_s=30):
    """All a socket gives until the peer closes; a hang past limit_s
    (scaled to this machine) is a failure (socket.timeout)."""
    sock.settimeout(scaled(limit_s))
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def recv_until(sock, done, got=b""):
    """Reads from sock until done(got) (or the bytes done are in got);
    the connection ending first is a failure, never a hang."""
    test = done if callable(done) else (lambda data: done in data)
    while not test(got):
        chunk = sock.recv(65536)
        assert chunk, f"the connection ended first; got {got[-300:]!r}"
        got += chunk
    return got


def status_of(response):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    return int(m.group(1)) if m else None


def curl(*args, timeout=60):
    """Runs curl; returns (status code, body bytes).  The timeout is scaled
    to this machine."""
    timeout = scaled(timeout)
    out = subprocess.run(["curl", "-s", "-S", "-o", "-", "-w", "\n%{http_code}",
                          "--max-time", str(timeout), *args],
                         capture_output=True, timeout=timeout + 10)
    body, _, code = out.stdout.rpartition(b"\n")
    return int(code or 0), body


def fd_count(pid):
    """The descriptors process pid holds now."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def open_idle(path, n, pid):
    """n Unix connections to path that say nothing, returned once process
    pid holds them all; the caller closes them."""
    base, held = fd_count(pid), []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            held.append(s)
            s.connect(path)
        wait_for(lambda: fd_count(pid) >= base + n,
                 what=f"{n} idle connections to {path} to be accepted")
    except BaseException:
        for s in held:
            s.close()
        raise
    return held
