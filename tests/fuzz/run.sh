#!/bin/sh
# make fuzz: runs each fuzz target for SECONDS (default 60) from its seed
# corpus in tests/fuzz/corpus/TARGET, into a scratch corpus under
# build-fuzz/ (the checked-in seeds are not changed).  Fails on any crash.
set -u
cd "$(dirname "$0")/../.."
seconds=${1:-60}
status=0
for bin in build-fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	name=${bin#build-fuzz/fuzz_}
	work=build-fuzz/corpus-$name
	mkdir -p "$work"
	dict=""
	[ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
	log=build-fuzz/$name.log
	"$bin" -max_total_time="$seconds" -max_len=16384 -print_final_stats=1 \
		-artifact_prefix=build-fuzz/crash-$name- $dict "$work" "tests/fuzz/corpus/$name" \
		>"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	echo "fuzz_$name: ${runs:-0} executions in ${seconds}s, exit $rc"
	if [ "$rc" -ne 0 ]; then
		grep -E 'ERROR|SUMMARY|abort|deadly' "$log" | head -5
		status=1
	elif [ "${runs:-0}" -eq 0 ]; then
		echo "fuzz_$name: ran no input (see $log)"
		status=1
	fi
done
exit $status
