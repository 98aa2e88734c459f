#!/usr/bin/python3
"""What one keep-alive request costs an edge process: one connection
carries N sequential requests for 1 KiB (nginx serves it behind a real
broker and client), another carries one, each edge under perf stat; the
difference over N - 1 is the cost of a request on a kept-alive connection,
its start-up and exit left out.  Counts, not wall clock, so that the
figures hold on a busy machine: system calls and task-clock per request
(perf), each system call's count (--strace), instructions (--callgrind,
for machines without hardware counters).

    tests/bench/edgeka.py [--requests N] [--rounds R] [--bin DIR]...
                          [--strace | --callgrind DIR | --load SECONDS [--close]]

Each --bin DIR is a column: that build's broker, client and edge, one
nginx origin for all; the columns take turns round by round, and each
figure is the median over the rounds.  Also printed: what the connection
of one request cost (start-up and exit included).  --load SECONDS runs
wrk as make bench does instead, the columns in turn: req/s, latency, and
the CPU per request of the edges (their start-up included), the broker
and the client; with --close, a new connection per request.  Everything listens on 127.0.0.1; what it starts it
stops.
"""
import argparse
import collections
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (its nginx origin and process bookkeeping)
import harness  # noqa: E402

REQUESTS = 200
ROUNDS = 5
BODY_BYTES = 1024
EVENTS = ("raw_syscalls:sys_enter", "task-clock")


def request(host):
    return (f"GET /1k HTTP/1.1\r\nHost: {host}\r\nUser-Agent: edgeka\r\n"
            "Accept: */*\r\n\r\n").encode()


def one_response(sock, got):
    """Reads one 200 with a BODY_BYTES body; returns what follows it."""
    got = harness.recv_until(sock, b"\r\n\r\n", got)
    head, _, rest = got.partition(b"\r\n\r\n")
    if harness.status_of(head) != 200:
        raise RuntimeError(f"through the edge: {head[:200]!r}")
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    if not m or int(m.group(1)) != BODY_BYTES:
        raise RuntimeError(f"unexpected response head: {head[:300]!r}")
    rest = harness.recv_until(sock, lambda d: len(d) >= BODY_BYTES, rest)
    return rest[BODY_BYTES:]


def connection(port, host, n):
    """n requests one after another on one connection, then the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=harness.scaled(60)) as s:
        got = b""
        for _ in range(n):
            s.sendall(request(host))
            got = one_response(s, got)
        s.shutdown(socket.SHUT_WR)
        harness.read_until_close(s)


class Column:
    """One build's broker, client and expose-edge under the launcher; each
    edge process under a tool that writes one file into out/ (none with
    --load)."""

    def __init__(self, name, tmp, bin_dir, origin_port, mode, grind):
        # Its own broker and client, of its own build, as make bench runs
        # them: no per-source limits (every visitor is 127.0.0.1), and the
        # unit's nice where that is allowed.
        os.makedirs(tmp, mode=0o755)
        self.broker = harness.Broker(tmp, bin_dir=bin_dir, extra=bench.broker_extra())
        bench.STARTED.add("exposed", self.broker.proc.proc)
        try:
            os.setpriority(os.PRIO_PROCESS, self.broker.proc.pid, bench.unit_nice())
        except OSError:
            pass
        self.client = harness.Client(tmp, self.broker.server, origin_port, bin_dir=bin_dir)
        bench.STARTED.add("expose", self.client.proc.proc)
        self.host = self.client.host
        argv = [os.path.join(bin_dir, "expose-edge"), "--registry", self.broker.registry,
                "--domain", self.broker.domain]
        self.name = name
        self.mode = mode
        self.seq = 0
        self.port = harness.free_port()
        self.out = os.path.join(grind or tmp, name)
        os.makedirs(self.out, exist_ok=True)
        # Each process's file is named by the test before it connects.
        self.tag = os.path.join(self.out, "next")
        if mode == "perf":
            tool = f'perf stat -x, -o "$out" -e {",".join(EVENTS)} --'
        elif mode == "strace":
            tool = 'strace -c -U name,calls -o "$out"'
        else:
            tool = 'valgrind --tool=callgrind --quiet --callgrind-out-file="$out"'
        if mode != "load":
            argv = ["sh", "-c", f'out=$(cat {self.tag}); exec {tool} "$@"', "sh", *argv]
        self.proc = harness.Process(["systemd-socket-activate", "--inetd", "-a", "-l",
                                     f"127.0.0.1:{self.port}", *argv],
                                    os.path.join(tmp, f"{name}.log"))
        bench.STARTED.add(name, self.proc.proc, launcher=True)
        harness.wait_in_file(self.proc.log, r"Listening on 127\.0\.0\.1:%d" % self.port)

    def load(self, log, seconds, close=False):
        """wrk as make bench runs it against this edge: req/s, p50 and
        p99, and the CPU per request of the edges and of procs."""
        procs = {"broker": self.broker.proc.pid, "client": self.client.proc.pid}

        def cpu():
            return {"edge": bench.cpu_seconds(self.proc.pid)[1],
                    **{k: bench.cpu_seconds(pid)[0] for k, pid in procs.items()}}
        before = cpu()
        r = bench.wrk(log, self.name, f"http://127.0.0.1:{self.port}/1k", host=self.host,
                      duration=seconds, close=close)
        harness.wait_for(lambda: not bench.children(self.proc.pid), 60,
                         f"{self.name}'s processes to exit")
        after = cpu()
        got = {"req/s": r["rps"], "p50 ms": r["p50_us"] / 1000, "p99 ms": r["p99_us"] / 1000,
               "errors": r["errors"]}
        for k in after:
            got[f"{k} CPU µs/req"] = (after[k] - before[k]) * 1e6 / max(1, r["requests"])
        return got

    def measure(self, n):
        """One connection of n requests: the file its process wrote."""
        self.seq += 1
        path = os.path.join(self.out, f"{n}-{self.seq}")
        with open(self.tag, "w") as f:
            f.write(path)
        connection(self.port, self.host, n)
        harness.wait_for(lambda: os.path.exists(path) and self.complete(path), 60,
                         f"{self.name}'s counts for {path}")
        return self.parse(path)

    def complete(self, path):
        with open(path, errors="replace") as f:
            text = f.read()
        if self.mode == "perf":
            return "task-clock" in text
        if self.mode == "strace":
            return "total" in text
        return "totals:" in text or "summary:" in text

    def parse(self, path):
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
        got = {}
        if self.mode == "perf":
            for line in lines:
                fields = line.split(",")
                if len(fields) >= 3 and fields[2] == "task-clock":
                    got["task-clock µs"] = float(fields[0]) * 1000    # perf says ms
                elif len(fields) >= 3 and fields[2] in EVENTS:
                    got[fields[2]] = float(fields[0])
        elif self.mode == "strace":
            for line in lines:
                fields = line.split()
                if len(fields) == 2 and fields[1].isdigit():
                    got[fields[0]] = int(fields[1])
        else:
            for line in lines:
                if line.startswith(("totals:", "summary:")):
                    got["instructions:u"] = int(line.split()[1])
        return got


def table(per, bins):
    keys = sorted({k for d in bins for k in per[d]},
                  key=lambda k: -statistics.median(per[bins[0]].get(k, [0])))
    for k in keys:
        got = [statistics.median(per[d][k]) if per[d].get(k) else 0 for d in bins]
        if any(abs(v) >= 0.01 for v in got):
            print(f"{k:28}" + "".join(f"{v:>14.2f}" for v in got))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=REQUESTS)
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument("--bin", action="append", default=[])
    ap.add_argument("--strace", action="store_true", help="count each system call (strace -c)")
    ap.add_argument("--callgrind", metavar="DIR", default=None,
                    help="count instructions with callgrind, its files kept in DIR")
    ap.add_argument("--load", metavar="SECONDS", type=int, default=0,
                    help="instead, wrk -c50 for SECONDS against each column in turn, "
                         "as make bench runs it: req/s, latency, CPU per request")
    ap.add_argument("--close", action="store_true",
                    help="with --load: a new connection per request (Connection: close)")
    args = ap.parse_args()
    if args.requests < 2:
        ap.error("--requests must be at least 2")
    mode = ("load" if args.load else "strace" if args.strace else
            "callgrind" if args.callgrind else "perf")
    grind = args.callgrind and os.path.abspath(args.callgrind)
    bins = args.bin or ["bin"]
    per = {d: collections.defaultdict(list) for d in bins}
    conn = {d: collections.defaultdict(list) for d in bins}
    with tempfile.TemporaryDirectory(prefix="edgeka-") as tmp:
        try:
            os.chmod(tmp, 0o755)    # nginx's workers run as nobody under root
            www = os.path.join(tmp, "www")
            os.makedirs(www, mode=0o755)
            with open(os.path.join(www, "1k"), "wb") as f:
                f.write(b"x" * BODY_BYTES)
            os.chmod(os.path.join(www, "1k"), 0o644)
            origin = bench.Nginx("nginx-origin", tmp, bench.ORIGIN_BODY.replace("{www}", www))
            bench.wait_http(origin.port, "/1k", what="nginx origin")
            cols = {}
            for i, d in enumerate(bins):
                cols[d] = Column(f"edge{i}", os.path.join(tmp, f"col{i}"),
                                 os.path.abspath(d), origin.port, mode, grind)
            for d in bins:    # warm the page cache and the broker
                if not args.load:
                    cols[d].measure(2)
            log = open(os.path.join(tmp, "wrk.log"), "w")
            for r in range(args.rounds):
                for d in (bins if r % 2 == 0 else bins[::-1]):
                    if args.load:
                        for k, v in cols[d].load(log, args.load, args.close).items():
                            per[d][k].append(v)
                        continue
                    one = cols[d].measure(1)
                    many = cols[d].measure(args.requests)
                    for k in set(one) | set(many):
                        per[d][k].append((many.get(k, 0) - one.get(k, 0)) / (args.requests - 1))
                        conn[d][k].append(one.get(k, 0))
        finally:
            bench.STARTED.stop_all()
    if args.load:
        kind = "new connection per request" if args.close else "keep-alive"
        print(f"wrk -t2 -c{bench.WRK_CONNS} -d{args.load}s, {kind}, 1 KiB "
              f"(median of {args.rounds} rounds, columns in turn): " + " | ".join(bins))
    else:
        print(f"per keep-alive request on one edge ({mode}; median of {args.rounds} rounds, "
              f"{args.requests} requests against 1): " + " | ".join(bins))
    table(per, bins)
    if not args.load:
        print("per connection of one request (start-up and exit included):")
        table(conn, bins)

if __name__ == "__main__":
    main()
