#!/usr/bin/python3
"""Two `make bench` runs side by side.

    tests/bench/compare.py build/bench/A.json build/bench/B.json

Prints every metric the runs share with A's value, B's value and the change
from A to B in %, marked "better" or "worse" by the metric's direction.
Changes within +-10 % are unmarked: run-to-run spread on this shared 2-core
machine is about that much (see the note at the end).
"""
import json
import signal
import sys

NOISE = 0.10


def load(path):
    with open(path) as f:
        return json.load(f)


def fmt(v):
    if isinstance(v, float) and abs(v) < 100:
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    return f"{v:,.0f}".replace(",", " ")


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 64
    a, b = load(argv[1]), load(argv[2])
    ma, mb = a["metrics"], b["metrics"]
    print(f"A: {argv[1]}  ({a['meta'].get('timestamp')}, commit {a['meta'].get('commit')}, "
          f"{'quick' if a['meta'].get('quick') else 'full'})")
    print(f"B: {argv[2]}  ({b['meta'].get('timestamp')}, commit {b['meta'].get('commit')}, "
          f"{'quick' if b['meta'].get('quick') else 'full'})")
    if a["meta"].get("quick") != b["meta"].get("quick"):
        print("warning: one run is BENCH_QUICK=1 and the other is not: durations and counts differ")
    names = [n for n in ma if n in mb]
    width = max([len(n) for n in names] + [6])
    print()
    print(f"{'metric'.ljust(width)}  {'A':>12}  {'B':>12}  {'change':>8}  unit")
    for n in names:
        va, vb = ma[n]["value"], mb[n]["value"]
        unit, better = ma[n]["unit"], ma[n]["better"]
        if va:
            change = (vb - va) / abs(va)
            ch = f"{change:+.1%}"
            good = change > 0 if better == "higher" else change < 0
            mark = "" if abs(change) <= NOISE else ("better" if good else "WORSE")
        else:
            ch, mark = "n/a", ""
        print(f"{n.ljust(width)}  {fmt(va):>12}  {fmt(vb):>12}  {ch:>8}  {unit} {mark}".rstrip())
    only = sorted(set(ma) ^ set(mb))
    if only:
        print()
        print("in one run only: " + ", ".join(only))
    for tag, run in (("A", a), ("B", b)):
        if run.get("failed"):
            print(f"{tag} had failures: {', '.join(run['failed'])}")
    print()
    print(f"(changes within +-{NOISE:.0%} are not marked: that is about the run-to-run spread here)")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # | head is fine
    sys.exit(main(sys.argv))
