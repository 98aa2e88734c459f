"""make bench, more than one host: what etcd costs a tunnel's registration,
and how long a client's failover takes.  Both on 127.0.0.1, no root: one
etcd member (a cluster of one: the write path of a real cluster less the
network between members), and brokers that stand for two hosts (their own
host-name, registry, socket and port, the same etcd).

- Registration: one client of CLUSTER_TARGETS targets (one BIND each, in
  one connection); the client's "handshake N ms" is its connection up ->
  every tunnel bound.  Median of CLUSTER_REG_RUNS, single host with no
  etcd beside a broker with etcd-endpoints.
- Failover: a client given both brokers; host a's broker is killed
  (SIGKILL) and the clock runs until a visitor on host b's edge gets the
  app through the tunnel again (the same URL).  Median of
  CLUSTER_FAILOVER_RUNS.
"""
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import time

import harness

CLUSTER_TARGETS = 16           # TUNNELS_PER_CLIENT_MAX: one connection's most
CLUSTER_REG_RUNS = int(os.environ.get("BENCH_CLUSTER_RUNS", "5"))
CLUSTER_FAILOVER_RUNS = int(os.environ.get("BENCH_CLUSTER_RUNS", "5"))
CLUSTER_VISIT_TIMEOUT_S = 30
SMALL_PATH = "/1k"


class Etcd:
    """One etcd member on 127.0.0.1, ready once /health says so."""

    def __init__(self, tmp, started):
        os.makedirs(tmp, exist_ok=True)
        self.port, peer = harness.free_port(), harness.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = started.add("etcd", subprocess.Popen(
            ["etcd", "--name", "bench", "--data-dir", os.path.join(tmp, "etcd"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"bench=http://127.0.0.1:{peer}"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "etcd.log"), "ab"),
            stdin=subprocess.DEVNULL))
        harness.wait_for(self.healthy, what="etcd to be healthy")

    def healthy(self):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/health")
            return json.loads(conn.getresponse().read()).get("health") == "true"
        except (OSError, ValueError):
            return False


# Options every broker gets (the bench's: all clients are on 127.0.0.1).
EXTRA = []


def broker(tmp, bin_dir, started, host=None, etcd=None, ws_port=None):
    os.makedirs(tmp, exist_ok=True)
    cluster = ["--etcd-endpoints", etcd.url, "--host-name", host] if etcd else []
    b = harness.Broker(tmp, bin_dir=bin_dir, ws_port=ws_port, extra=[*cluster, *EXTRA])
    started.add(f"exposed ({host or 'single host'})", b.proc.proc)
    return b


def client(tmp, servers, targets, key_dir, bin_dir, started):
    env = dict(os.environ, XDG_CONFIG_HOME=key_dir)
    argv = [os.path.join(bin_dir, "expose")]
    for s in servers:
        argv += ["--server", s]
    log = os.path.join(tmp, f"client-{time.monotonic_ns()}.log")
    p = started.add("expose (cluster)", subprocess.Popen(
        argv + [str(t) for t in targets], stdout=subprocess.PIPE, stderr=open(log, "ab"),
        stdin=subprocess.DEVNULL, env=env), signal.SIGINT)
    return p, log


def stop(p, started):
    p.send_signal(signal.SIGINT)
    p.wait(harness.scaled(20))
    started.forget(p)


def registration_ms(tmp, server, port, key_dir, bin_dir, started):
    """Connection up -> CLUSTER_TARGETS tunnels bound, as the client says."""
    p, log = client(tmp, [server], [port] * CLUSTER_TARGETS, key_dir, bin_dir, started)
    try:
        for _ in range(CLUSTER_TARGETS):
            harness.read_line(p.stdout)
        m = harness.wait_in_file(log, r"handshake (\d+) ms")
        return int(m.group(1))
    finally:
        stop(p, started)


def registration(bench, started, bin_dir, port):
    sec = (f"tunnel registration: {CLUSTER_TARGETS} BINDs in one connection, "
           f"median of {CLUSTER_REG_RUNS}")
    tmp = os.path.join(bench.tmp, "cluster-reg")
    etcd = Etcd(os.path.join(tmp, "etcd-reg"), started)
    plain = broker(os.path.join(tmp, "single"), bin_dir, started)
    withetcd = broker(os.path.join(tmp, "etcd"), bin_dir, started, host="h1", etcd=etcd)
    key_dir = os.path.join(tmp, "key")
    brokers = (("without etcd", plain), ("with etcd", withetcd))
    runs = {label: [] for label, _ in brokers}
    for _ in range(CLUSTER_REG_RUNS):      # interleaved: drift hits both alike
        for label, b in brokers:
            runs[label].append(registration_ms(tmp, b.server, port, key_dir, bin_dir, started))
    figures = {}
    for label, _ in brokers:
        figures[label] = statistics.median(runs[label])
        rate = CLUSTER_TARGETS / max(figures[label], 1) * 1000
        bench.row(sec, f"ms to bind all, {label}",
                  f"min {min(runs[label])}, max {max(runs[label])}",
                  expose=f"{figures[label]:.0f}")
        bench.row(sec, f"tunnels/s, {label}", expose=f"{rate:.0f}")
        bench.metric(f"cluster.register_ms_{label.replace(' ', '_')}", figures[label], "ms", "lower")
    bench.row(sec, "with etcd vs without",
              f"x{figures['with etcd'] / max(figures['without etcd'], 1):.1f} the time")
    for b in (plain, withetcd):
        b.stop()
        started.forget(b.proc.proc)


def visit_ok(edge_port, host):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", edge_port, timeout=2)
        conn.request("GET", SMALL_PATH, headers={"Host": host})
        return conn.getresponse().status == 200
    except OSError:
        return False


def failover_ms(tmp, a, b, edge_b, port, key_dir, bin_dir, started):
    p, log = client(tmp, [a.server, b.server], [port], key_dir, bin_dir, started)
    try:
        url = harness.read_line(p.stdout)
        host = re.match(r"https?://([^/]+)/", url).group(1)
        harness.wait_in_file(log, r"expose  server ")
        text = open(log).read()
        assert f"server {a.server}," in text, f"the client did not start on host a: {text}"
        a.proc.proc.kill()
        t0 = time.monotonic()
        a.proc.proc.wait()
        harness.wait_for(lambda: visit_ok(edge_b.port, host), CLUSTER_VISIT_TIMEOUT_S,
                         "the tunnel on host b")
        took = (time.monotonic() - t0) * 1000
        harness.wait_in_file(log, r"moved to %s: same URL" % re.escape(b.server))
        return took
    finally:
        stop(p, started)


def failover(bench, started, bin_dir, port):
    sec = f"failover: host a's broker killed -> served on host b, median of {CLUSTER_FAILOVER_RUNS}"
    tmp = os.path.join(bench.tmp, "cluster-failover")
    etcd = Etcd(os.path.join(tmp, "etcd-failover"), started)
    b = broker(os.path.join(tmp, "b"), bin_dir, started, host="b", etcd=etcd)
    edge_b = harness.Edge(os.path.join(tmp, "b"), b, bin_dir=bin_dir)
    started.add("expose-edge (b)", edge_b.proc.proc, launcher=True)
    key_dir = os.path.join(tmp, "key")
    runs, a_port = [], harness.free_port()
    for i in range(CLUSTER_FAILOVER_RUNS):
        a = broker(os.path.join(tmp, f"a{i}"), bin_dir, started, host="a", etcd=etcd,
                   ws_port=a_port)
        runs.append(failover_ms(tmp, a, b, edge_b, port, key_dir, bin_dir, started))
        started.forget(a.proc.proc)
    med = statistics.median(runs)
    bench.row(sec, "ms until a visitor on b is served", f"min {min(runs):.0f}, max {max(runs):.0f}",
              expose=f"{med:.0f}")
    bench.metric("cluster.failover_ms", round(med), "ms", "lower")
    bench.note("failover: the client retries its host once after the backoff's first step "
               f"({harness.bound('RECONNECT_MIN_MS')} ms +-25%), then dials the next at once; "
               "the other host gives the name back at once (the same key's)")
    edge_b.stop()
    b.stop()
    started.forget(b.proc.proc)


def run(bench, started, bin_dir, port, extra):
    """Both figures, or a note saying why not."""
    EXTRA[:] = extra
    if shutil.which("etcd") is None:
        bench.note("cluster figures: not measured (no etcd on PATH; Debian's etcd-server)")
        return
    registration(bench, started, bin_dir, port)
    failover(bench, started, bin_dir, port)
