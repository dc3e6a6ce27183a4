#!/bin/bash
# make bench - scoring speed of din against the PyTorch reference and this core's sgemm peak.
#
# On one core (the server and every backend pinned to CPU 0): candidates/s of per-row
# din_score over DIN_BENCH_ROWS rows and of din_rank with 100 and 1000 candidates per history,
# for histories of 10, 50 and 100, for each model of test/bench/models.py (DIN and the base
# model at the DIEN paper's Amazon sizes; DIEN, DSIN and BST become rows there once din has
# them); the same models and inputs through test/reference/dinref.py; the measured sgemm peak;
# then FLOPs per candidate, achieved GFLOP/s and the ratios (test/bench/report.py).
#
# Environment: DIN_BENCH_PORT (5580), DIN_BENCH_ROWS (100000), DIN_BENCH_KEEP=1 keeps the
# work directory, DIN_BENCH_NO_INSTALL=1 uses the installed din as it is, PG_CONFIG.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=$REPO/test/bench
PORT=${DIN_BENCH_PORT:-5580}
ROWS=${DIN_BENCH_ROWS:-100000}
RANK_CANDIDATES=${DIN_BENCH_RANK_CANDIDATES:-100000} # candidates per din_rank measurement
TORCH_ROWS=${DIN_BENCH_TORCH_ROWS:-20480}
PY=/usr/bin/python3
PIN="taskset -c 0"
command -v taskset >/dev/null || PIN=

WORK=$(mktemp -d /tmp/din-bench.XXXXXX)
chmod 755 "$WORK"
RESULTS=$WORK/results.txt
: >"$RESULTS"

if [ "${DIN_BENCH_NO_INSTALL:-0}" != 1 ]; then
	echo "== building and installing din" >&2
	make -s -C "$REPO" >/dev/null
	make -s -C "$REPO" install >/dev/null
fi

echo "== measuring the sgemm peak" >&2
MULTIARCH=$(gcc -print-multiarch)
BLAS=/usr/lib/$MULTIARCH/openblas-serial
gcc -O2 -std=gnu11 -I"$REPO/src" -o "$WORK/sgemm_peak" "$BENCH/sgemm_peak.c" "$REPO"/src/nn/*.c \
	-L"$BLAS" -l:libopenblas.so.0 -Wl,-rpath,"$BLAS" -lm
$PIN "$WORK/sgemm_peak" | sed 's/^/peak_detail /' >>"$RESULTS"
# A DYNAMIC_ARCH OpenBLAS may not recognize a virtual CPU and fall back to pre-AVX kernels
# (din then uses its own kernels). The machine's peak is what the CPU can do, so measure
# OpenBLAS's Haswell kernels too when the CPU has AVX2/FMA; din itself never sets this.
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
	OPENBLAS_CORETYPE=Haswell $PIN "$WORK/sgemm_peak" | grep -v '^avx2\|^peak' |
		sed 's/^sgemm/sgemm-haswell/; s/^openblas_core/openblas_core_forced/; s/^/peak_detail /' >>"$RESULTS"
fi

echo "== writing the models (random weights)" >&2
$PY "$BENCH/models.py" "$WORK"
chmod a+r "$WORK"/*.safetensors

. "$REPO/test/lib/cluster.sh"
cleanup() {
	local status=$?
	cluster_stop
	if [ "${DIN_BENCH_KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
	exit "$status"
}
cluster_start "$PORT" "$WORK/cluster" "max_parallel_workers_per_gather = 0" "jit = off" \
	"shared_buffers = '256MB'" "work_mem = '64MB'"
trap cleanup EXIT
# Backends inherit the postmaster's CPU affinity: every query below runs on CPU 0.
[ -n "$PIN" ] && taskset -a -pc 0 "$CLUSTER_PID" >/dev/null

psql_q() { cluster_psql -At "$@"; }

echo "== importing models, generating inputs" >&2
psql_q <<SQL
CREATE EXTENSION din;
SELECT din_import('amazon_din', pg_read_binary_file('$WORK/amazon_din.safetensors'));
SELECT din_import('amazon_base', pg_read_binary_file('$WORK/amazon_base.safetensors'));
CREATE FUNCTION bench_seconds(q text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q;
    RETURN extract(epoch FROM clock_timestamp() - t0);
END \$\$;
SELECT setseed(0.8);
SQL
for T in 10 50 100; do
	psql_q <<SQL
CREATE TABLE pairs_$T AS
SELECT array(SELECT (random() * 99999)::bigint FROM generate_series(1, $T) WHERE g > 0) AS h,
       (random() * 99999)::bigint AS a, u, ARRAY[u] AS ctx
FROM generate_series(1, $ROWS) g, LATERAL (SELECT (random() * 9999)::bigint + g * 0 AS u) x;
SQL
	for C in 100 1000; do
		psql_q <<SQL
CREATE TABLE reqs_${T}_$C AS
SELECT array(SELECT (random() * 99999)::bigint FROM generate_series(1, $T) WHERE g > 0) AS h,
       array(SELECT (random() * 99999)::bigint FROM generate_series(1, $C) WHERE g > 0) AS c,
       ARRAY[(random() * 9999)::bigint] AS ctx
FROM generate_series(1, $RANK_CANDIDATES / $C) g;
SQL
	done
	psql_q -c "\\copy (SELECT h, a, u FROM pairs_$T LIMIT $TORCH_ROWS) TO '$WORK/pairs_$T.csv' CSV"
done
psql_q -c "VACUUM ANALYZE" >/dev/null

echo "== timing din" >&2
for M in din base; do
	for T in 10 50 100; do
		# warm up: load the model into this backend's cache and the table into shared buffers
		s=$(psql_q <<SQL
SELECT sum(din_score(h, a, 'amazon_$M', ctx)) FROM (SELECT * FROM pairs_$T LIMIT 100) p;
SELECT bench_seconds('SELECT sum(din_score(h, a, ''amazon_$M'', ctx)) FROM pairs_$T');
SQL
)
		echo "din $M $T perrow $(echo "$s" | tail -1) $ROWS" >>"$RESULTS"
		for C in 100 1000; do
			s=$(psql_q <<SQL
SELECT count(*) FROM (SELECT * FROM reqs_${T}_$C LIMIT 2) r, din_rank(h, c, 10, 'amazon_$M', ctx);
SELECT bench_seconds('SELECT count(*) FROM reqs_${T}_$C, din_rank(h, c, 10, ''amazon_$M'', ctx)');
SQL
)
			echo "din $M $T rank$C $(echo "$s" | tail -1) $(((RANK_CANDIDATES / C) * C))" >>"$RESULTS"
		done
		echo "   $M T=$T done" >&2
	done
done

echo "== timing the PyTorch reference" >&2
(cd "$BENCH" && $PIN $PY torch_bench.py "$WORK" "$WORK") >>"$RESULTS" || echo "skip torch bench failed" >>"$RESULTS"

if [ -x "$BENCH/metrics_bench.sh" ] && [ "${DIN_BENCH_METRICS:-1}" = 1 ]; then
	echo "== timing auc/gauc" >&2
	bash "$BENCH/metrics_bench.sh" "$WORK" "$PG_BINDIR/psql" >>"$RESULTS" || echo "skip metrics bench failed" >>"$RESULTS"
fi

$PY "$BENCH/report.py" "$RESULTS"
