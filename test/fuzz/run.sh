#!/bin/bash
# test/fuzz/run.sh - build and run the libFuzzer targets (ASan + UBSan).
#
#   test/fuzz/run.sh            `make fuzz`: each target for FUZZ_SECONDS (default 60) on a
#                               growing work corpus (test/fuzz/work/, not committed)
#   test/fuzz/run.sh smoke      `make test`: replay seeds, fixtures and every saved crash, then
#                               fuzz each target for FUZZ_SMOKE_SECONDS (default 10)
#
# A finding is written to test/fuzz/crashes/<target>/ (commit it once fixed: it is replayed by
# every smoke run from then on) and makes the script exit 1.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MODE=${1:-fuzz}
cd "$REPO" || exit 1
export DIN_FUZZ_FIXTURES=$REPO/test/fixtures
# detect_leaks: a leak on an error path is a finding too
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

bash test/fuzz/build.sh || exit 1

status=0
for t in file config score state; do
	bin=test/fuzz/bin/fuzz_$t
	crashes=test/fuzz/crashes/$t
	mkdir -p "$crashes"
	read_only=(test/fuzz/seeds/"$t")
	[ "$t" = file ] && read_only+=(test/fixtures test/fixtures/bad test/fixtures/bad_dien)
	# every saved finding and seed must pass first
	replay=("${read_only[@]}")
	[ -n "$(ls "$crashes")" ] && replay+=("$crashes")
	if ! "$bin" -runs=0 -rss_limit_mb=4096 "${replay[@]}" >"test/fuzz/bin/replay_$t.log" 2>&1; then
		echo "fuzz $t: replay failed (test/fuzz/bin/replay_$t.log)"
		tail -n 40 "test/fuzz/bin/replay_$t.log"
		status=1
		continue
	fi
	if [ "$MODE" = smoke ]; then
		seconds=${FUZZ_SMOKE_SECONDS:-10}
		work=$(mktemp -d)
	else
		seconds=${FUZZ_SECONDS:-60}
		work=test/fuzz/work/$t
		mkdir -p "$work"
	fi
	echo "fuzz $t: ${seconds} s"
	if ! "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=200000 \
		-print_final_stats=1 -artifact_prefix="$crashes/" "$work" "${read_only[@]}" \
		>"test/fuzz/bin/fuzz_$t.log" 2>&1; then
		echo "fuzz $t: FINDING (test/fuzz/bin/fuzz_$t.log, input in $crashes/)"
		grep -A 30 -m1 -E "ERROR|runtime error|deadly signal|abort" "test/fuzz/bin/fuzz_$t.log"
		status=1
	else
		grep -E "stat::number_of_executed_runs|cov:" "test/fuzz/bin/fuzz_$t.log" | tail -n 2
	fi
	[ "$MODE" = smoke ] && rm -rf "$work"
done
exit $status
