#!/bin/sh
# make check: builds plain and sanitized (ASan, UBSan, LeakSanitizer),
# runs the unit tests on both, each fuzz target briefly, the end-to-end
# tests on the sanitized build, the memory tests on the plain one, and the
# system test (systemd in a container, tests/system/).  Ends with
# "N passed, N failed"; exits non-zero if anything failed or was skipped.
set -u
cd "$(dirname "$0")/.."
started=$(date +%s)
PYTHON=${PYTHON:-/usr/bin/python3}
JOBS=${JOBS:-2}
# A hung test must fail, not stall CI: bounds per unit binary and per suite.
UNIT_TIMEOUT_S=300
# (Generous: each test's own bound scales with the machine, see
# tests/e2e/conftest.py; this one only ends a run hung outside any test.)
E2E_TIMEOUT_S=3600
# One test that hangs fails alone (pytest-timeout) instead of eating the run.
E2E_TEST_TIMEOUT_S=${E2E_TEST_TIMEOUT_S:-300}
SAN_MAKE="SAN=address,undefined BUILD=build-san BIN=build-san/bin"
mkdir -p build

echo "== build"
make -s -j"$JOBS" all units || exit 1
make -s -j"$JOBS" $SAN_MAKE all units || exit 1

passed=0
failed=0

echo "== unit tests (plain and sanitized)"
for t in build/tests/test_* build-san/tests/test_*; do
	[ -x "$t" ] || continue
	out=$(timeout "$UNIT_TIMEOUT_S" "$t" 2>&1)
	rc=$?
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p')
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p')
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1    # crashed, or a sanitizer stopped it
	fi
	if [ "$f" -ne 0 ]; then
		printf '%s\n' "$out" | grep -E 'ERROR|FAILED|Sanitizer|runtime error' | head -20
	fi
	echo "$t: $p passed, $f failed"
	passed=$((passed + p))
	failed=$((failed + f))
done

echo "== man pages (mandoc -Tlint)"
for m in man/*.[0-9]; do
	if mandoc -Tlint -W warning "$m"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
done

echo "== dead code (external functions no other file calls)"
if make -s deadcode; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
fi

junit_counts() {
	"$PYTHON" - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 1"); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get(k, 0)) for s in suites for k in ("failures", "errors", "skipped"))
print(t - bad, bad)
PY
}

# -rP: what passing tests print (their measured figures) is shown too.
e2e_exec() {    # name, marker, bin, pytest's paths: becomes one suite's run (in a subshell)
	name=$1 marker=$2 bin=$3
	shift 3
	rm -f "build/e2e-$name.xml" "build/e2e-$name.rc"    # a killed run must not count old ones
	EXPOSE_BIN="$bin" EXPOSE_RELEASE_BIN=bin exec timeout "$E2E_TIMEOUT_S" \
		"$PYTHON" -m pytest -q -rP -p no:cacheprovider --timeout "$E2E_TEST_TIMEOUT_S" \
		-m "$marker" --junitxml="build/e2e-$name.xml" "$@"
}

e2e_count() {    # name: adds a finished suite's counts to the totals
	rc=$(cat "build/e2e-$1.rc" 2>/dev/null || echo 1)
	set -- $(junit_counts "build/e2e-$1.xml")
	passed=$((passed + $1))
	failed=$((failed + $2))
	# pytest failing without a failed test (a crash, an error outside tests)
	if [ "$rc" -ne 0 ] && [ "$2" -eq 0 ]; then
		echo "pytest exited $rc with no failed test: counted as one failure"
		failed=$((failed + 1))
	fi
}

echo "== fuzzing (${FUZZ_SECONDS:-5} s per target; make fuzz runs longer)"
if make -s fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-5}"; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
fi

# Three runs side by side: the release suite (mostly the soak, which keeps
# both cores busy with short-lived processes), and the sanitized tests in
# two parts of about equal time (measured: the tests of more than one host
# wait mostly on etcd's leases and elections, and the rest mostly on their
# programs).  Every deadline in them bounds a failure only, so sharing the
# machine slows them and changes no verdict.
HOSTS_TESTS="tests/e2e/test_cluster.py tests/e2e/test_cluster_failover.py tests/e2e/test_access.py"
echo "== end-to-end tests: release, and hosts and access (beside the other sanitized ones; their output follows)"
(e2e_exec release "release" bin tests/e2e) >build/e2e-release.log 2>&1 &
release_pid=$!    # timeout's: a signal to it reaches pytest, and pytest's to its children
(e2e_exec hosts "not release" build-san/bin $HOSTS_TESTS) >build/e2e-hosts.log 2>&1 &
hosts_pid=$!
trap 'kill "$release_pid" "$hosts_pid" 2>/dev/null' EXIT INT TERM
echo "== end-to-end tests: sanitized"
(e2e_exec sanitized "not release" build-san/bin tests/e2e \
	$(for t in $HOSTS_TESTS; do printf -- '--ignore=%s ' "$t"; done))
echo $? >build/e2e-sanitized.rc
e2e_count sanitized
wait "$hosts_pid"
echo $? >build/e2e-hosts.rc
wait "$release_pid"
echo $? >build/e2e-release.rc
trap - EXIT INT TERM
for run in hosts release; do
	echo "== end-to-end tests: $run"
	cat "build/e2e-$run.log"
	e2e_count "$run"
done

# The operator's path for real: systemd as PID 1 in a container, the
# README's install steps, the units and their sandbox (tests/system/).
# Needs root; without it, or without a container, it counts as a failure.
echo "== system test (systemd in a container)"
{ tests/system/run.sh 2>&1; echo "system: exit $?"; } | tee build/system.log
out=$(cat build/system.log)
rc=$(sed -n 's/^system: exit \([0-9]*\)$/\1/p' build/system.log)
rc=${rc:-1}
p=$(printf '%s\n' "$out" | sed -n 's/^system: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
f=$(printf '%s\n' "$out" | sed -n 's/^system: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
p=${p:-0}
f=${f:-0}
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
	echo "system test exited $rc with no failed case: counted as one failure"
	f=1
fi
passed=$((passed + p))
failed=$((failed + f))

# The wall time beside the verdict, so that drift shows from run to run.
echo "check: wall time $(($(date +%s) - started)) s"
echo "check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
