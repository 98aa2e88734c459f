#!/bin/sh
# Lists external functions that no other object file calls: dead code, or
# a function that should be static.  Exits 1 if there is any.
#   tests/deadcode.sh OBJECT...     (make deadcode passes the programs' own)
set -eu
[ $# -gt 0 ] || { echo "usage: tests/deadcode.sh OBJECT..." >&2; exit 2; }
objs="$*"
defined=$(mktemp)
used=$(mktemp)
trap 'rm -f "$defined" "$used"' EXIT
for o in $objs; do
	nm --defined-only -g "$o" | awk -v o="$o" '$2 == "T" { print $3, o }'
done | sort > "$defined"
for o in $objs; do
	nm -u "$o" | awk '{ print $2 }'
done | sort -u > "$used"
# The unit tests and fuzzers call library functions too: a function they
# test is the library's interface, not dead.
tested=$(cat tests/unit/*.c tests/fuzz/*.c | grep -o '[A-Za-z_][A-Za-z0-9_]*' | sort -u)
dead=$(join -v 1 "$defined" "$used" | grep -v '^main ' |
	while read -r fn obj; do
		printf '%s\n' "$tested" | grep -qx "$fn" || echo "$fn $obj"
	done)
if [ -n "$dead" ]; then
	printf '%s\n' "$dead" | while read -r fn obj; do
		echo "deadcode: $fn (in $obj) is called from no other file: delete it, or make it static"
	done
	exit 1
fi
echo "deadcode: every external function has a caller in another file"
