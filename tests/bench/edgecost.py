#!/usr/bin/python3
"""What one new connection costs the process the launcher starts for it:
the plain edge (expose-edge) beside the trivial handler of `make bench`,
each under systemd-socket-activate --inetd with perf stat around it, one
sequential request at a time.  Counts, not wall clock, so that the figures
hold on a busy machine: instructions (user, kernel), page faults, system
calls and task-clock per connection, median over the runs.

    tests/bench/edgecost.py [--runs N] [--bin DIR]... [--resp PATH]
                            [--callgrind DIR [--wrap TOOL]]

Each --bin DIR adds a column with DIR/expose-edge (default: bin; the
broker and client are the first DIR's).  Needs perf and the right to
count kernel events (root, or perf_event_paranoid at most 1).  Without
hardware counters (a VM), instructions come from --callgrind DIR (each
process's callgrind.out kept in DIR for callgrind_annotate); --wrap runs
each process under another tool, e.g. --wrap 'strace -f -o {out}' or
--wrap 'perf record -e page-faults -c 1 -d -o {out}'.  Everything listens
on 127.0.0.1; what it starts it stops.
"""
import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402

EVENTS = ("instructions:u", "instructions:k", "page-faults", "raw_syscalls:sys_enter",
          "task-clock")
RUNS = 200


class Counted:
    """argv under the launcher, each connection's process under perf stat,
    or under callgrind (grind: a directory for its files), or under any
    other tool (wrap: its argv, {out} replaced by a file per process)."""

    def __init__(self, name, tmp, argv, grind=None, wrap=None):
        self.port = harness.free_port()
        self.stats = os.path.join(tmp, f"{name}.perf")
        self.out = os.path.join(grind or tmp, name)
        self.grind = grind
        self.wrap = wrap
        prefix = ["perf", "stat", "-x,", "--append", "-o", self.stats,
                  "-e", ",".join(EVENTS), "--"]
        if grind or wrap:
            os.makedirs(self.out, exist_ok=True)
            # One file per process: the launcher's shell names it by pid.
            tool = (["valgrind", "--tool=callgrind", "--quiet",
                     "--callgrind-out-file={out}"] if not wrap else shlex.split(wrap))
            tool = [a.replace("{out}", f"{self.out}/out.$$") for a in tool]
            prefix = ["sh", "-c", " ".join(tool) + ' "$@"', "sh"]
        self.proc = harness.Process(["systemd-socket-activate", "--inetd", "-a", "-l",
                                     f"127.0.0.1:{self.port}", *prefix, *argv],
                                    os.path.join(tmp, f"{name}.log"))
        harness.wait_in_file(self.proc.log, r"Listening on 127\.0\.0\.1:%d" % self.port)

    def run(self, host, n):
        request = (f"GET /hello HTTP/1.1\r\nHost: {host}\r\nUser-Agent: edgecost\r\n"
                   "Connection: close\r\n\r\n").encode()
        for _ in range(n):
            reply = harness.http_raw(self.port, request, timeout=harness.scaled(60))
            if harness.status_of(reply) != 200:
                raise RuntimeError(f"{self.proc.argv[-1]}: {reply[:200]!r}")
        # The tools write their counts as the process exits, after the
        # response went out.
        harness.wait_for(lambda: self.done() >= n, 60, "the counts of every connection")

    def done(self):
        if self.grind or self.wrap:
            return sum(1 for f in os.listdir(self.out) if os.path.getsize(os.path.join(self.out, f)))
        if not os.path.exists(self.stats):
            return 0
        with open(self.stats) as f:
            return sum(1 for line in f if line.startswith("# started on"))

    def instructions(self):
        """Callgrind's user-space instructions (the loader's included)."""
        got = []
        for name in os.listdir(self.out):
            with open(os.path.join(self.out, name)) as f:
                for line in f:
                    if line.startswith("summary:") or line.startswith("totals:"):
                        got.append(int(line.split()[1]))
                        break
        return {"instructions:u (callgrind)": statistics.median(got)}

    def medians(self):
        if self.wrap:
            return {}
        if self.grind:
            return self.instructions()
        got = {e: [] for e in EVENTS}
        with open(self.stats) as f:
            for line in f:
                fields = line.strip().split(",")
                if len(fields) < 3 or line.startswith("#"):
                    continue
                if fields[2] in got and fields[0] not in ("<not counted>", "<not supported>"):
                    got[fields[2]].append(float(fields[0]))
        return {e: statistics.median(v) if v else float("nan") for e, v in got.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=RUNS)
    ap.add_argument("--bin", action="append", default=[])
    ap.add_argument("--resp", default=None, help="the trivial handler (built from resp.c)")
    ap.add_argument("--wrap", metavar="TOOL", default=None,
                    help="run each process under TOOL instead, e.g. 'strace -c -o {out}' "
                         "({out}: a file per process in the --callgrind DIR)")
    ap.add_argument("--callgrind", metavar="DIR", default=None,
                    help="count instructions with callgrind instead, its files kept in DIR")
    args = ap.parse_args()
    bins = args.bin or ["bin"]
    with tempfile.TemporaryDirectory(prefix="edgecost-") as tmp:
        resp = args.resp or os.path.join(tmp, "resp")
        if args.resp is None:
            subprocess.run(["cc", "-O2", "-o", resp,
                            os.path.join(harness.ROOT, "tests", "bench", "resp.c")], check=True)
        started = []
        try:
            app = harness.App(tmp)
            started.append(app)
            broker = harness.Broker(tmp, bin_dir=os.path.abspath(bins[0]))
            started.append(broker)
            client = harness.Client(tmp, broker.server, app.port,
                                    bin_dir=os.path.abspath(bins[0]))
            started.append(client)
            columns = {}
            grind = args.callgrind and os.path.abspath(args.callgrind)
            trivial = Counted("trivial", tmp, [resp], grind, args.wrap)
            started.append(trivial.proc)
            trivial.run("localhost", args.runs)
            columns["trivial"] = trivial.medians()
            for i, d in enumerate(bins):
                edge = Counted(f"edge{i}", tmp, [os.path.join(os.path.abspath(d), "expose-edge"),
                                                 "--registry", broker.registry,
                                                 "--domain", broker.domain], grind, args.wrap)
                started.append(edge.proc)
                edge.run(client.host, args.runs)
                columns[d] = edge.medians()
        finally:
            for s in reversed(started):
                s.stop()
    print(f"per connection, median of {args.runs}: " + " | ".join(columns))
    for e in columns["trivial"]:
        print(f"{e:24}" + "".join(f"{columns[c][e]:>14,.0f}" if e != "task-clock"
                                  else f"{columns[c][e]:>14.3f}" for c in columns))


if __name__ == "__main__":
    main()
