#!/usr/bin/python3
"""make bench, more than one host: what a visitor pays when the tunnel is
on another host (relayed over the brokers' peer link) beside one on the
host the visitor reached, in the same run.

The three hosts are tests/e2e/test_cluster.py's: network namespaces made
and removed here, each with an etcd member, a broker, expose-mirror and
an edge under systemd-socket-activate; the clients and the Node app run
on their hosts.  A visitor on host 1 asks for GET /hello of a tunnel on
host 1 ("near") and of one on host 3 ("far"), alternately, first on a new
connection each time (an edge process each), then on one kept-alive
connection per tunnel.  Every request is bounded by a timeout and the
counts are fixed: BENCH_CROSS_REQUESTS (default 300; 100 with
BENCH_QUICK=1).  Needs root (ip netns) and etcd.

Prints one table and writes it, with the raw figures, to
BENCH_OUT/cross-host-<timestamp>.txt and .json.
"""
import datetime
import http.client
import json
import os
import signal
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
os.environ.setdefault("EXPOSE_BIN", os.environ.get("EXPOSE_RELEASE_BIN",
                                                   os.path.join(HERE, "..", "..", "bin")))
import harness  # noqa: E402  (read-only use of the end-to-end helpers)
import test_cluster  # noqa: E402  (its three hosts)

QUICK = os.environ.get("BENCH_QUICK") == "1"
REQUESTS = int(os.environ.get("BENCH_CROSS_REQUESTS", "100" if QUICK else "300"))
# Each request's own bound, scaled like every deadline of the tests.
REQUEST_TIMEOUT_S = 10


def one(conn, name):
    """GET /hello on conn; its time in ms."""
    t = time.perf_counter()
    conn.request("GET", "/hello", headers={"Host": f"{name}.localhost"})
    resp = conn.getresponse()
    body = resp.read()
    ms = (time.perf_counter() - t) * 1000
    if resp.status != 200 or body != b"hello":
        raise RuntimeError(f"{name}: {resp.status} {body[:200]!r}")
    return ms


def measure(port, names, n):
    """Runs in host 1's namespace: {mode: {name: [ms, ...]}}."""
    timeout = harness.scaled(REQUEST_TIMEOUT_S)
    out = {"new connection": {k: [] for k in names},
           "kept-alive connection": {k: [] for k in names}}
    for _ in range(n):
        for name in names:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            try:
                out["new connection"][name].append(one(conn, name))
            finally:
                conn.close()
    conns = {k: http.client.HTTPConnection("127.0.0.1", port, timeout=timeout) for k in names}
    try:
        for _ in range(n):
            for name in names:
                out["kept-alive connection"][name].append(one(conns[name], name))
    finally:
        for c in conns.values():
            c.close()
    return out


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))]


def table(res):
    lines = [f"{'cross-host relay (visitor on h1, GET /hello)':<52} {'median ms':>10} "
             f"{'p90 ms':>8} {'added ms':>9}"]
    for mode, by in res.items():
        base = statistics.median(by["near"])
        for name, label in (("near", "tunnel on h1 (local)"), ("far", "tunnel on h3 (peer link)")):
            med = statistics.median(by[name])
            added = f"{med - base:+.2f}" if name == "far" else ""
            lines.append(f"  {mode + ', ' + label:<50} {med:>10.2f} {pct(by[name], 0.9):>8.2f} "
                         f"{added:>9}")
    return "\n".join(lines)


def main():
    tmp = tempfile.mkdtemp(prefix="expose-cross-")
    cluster = test_cluster.Cluster(tmp)
    try:
        h1, _, h3 = cluster.hosts
        near = h1.client("--name", "near", h1.app())
        far = h3.client("--name", "far", h3.app())
        harness.wait_for(lambda: h1.rows().get("far") == "h3", what="far copied to h1")
        res = test_cluster.in_ns(h1.ns, measure, h1.edge_port, ("near", "far"), REQUESTS)
        for c in (near, far):
            c.proc.stop(signal.SIGINT)
    finally:
        cluster.close()
    text = (f"{table(res)}\n  ({REQUESTS} requests each, alternating; "
            f"process spawn {harness.SPAWN_MS:.1f} ms here)")
    print(text)
    out = os.environ.get("BENCH_OUT", os.path.join(harness.ROOT, "build", "bench"))
    os.makedirs(out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    with open(os.path.join(out, f"cross-host-{stamp}.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out, f"cross-host-{stamp}.json"), "w") as f:
        json.dump({"requests": REQUESTS, "ms": res}, f)


if __name__ == "__main__":
    main()
