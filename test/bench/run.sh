#!/bin/bash
# make bench - scoring speed of din against the PyTorch reference and this core's sgemm peak.
#
# On one core (the server and every backend pinned to CPU 0), each the best of three runs (the
# peak is the best of five): candidates/s of per-row din_score over DIN_BENCH_ROWS rows and of
# din_rank with 100 and 1000 candidates per history,
# for each model of test/bench/models.py at its history lengths (DIN and the base model at
# the DIEN paper's Amazon sizes with histories of 10, 50 and 100; DIEN and DSIN at 50 and BST
# at 20 at their papers' sizes); the same models and inputs through the PyTorch reference
# (torch_bench.py: tools/dinref.py, and batched BST and DSIN forwards, checked first
# against their per-sample references); the measured sgemm peak; then FLOPs per candidate,
# achieved GFLOP/s, the ratios and the cost of 100 candidates over one (test/bench/report.py).
# Then per-row din_score over histories that repeat (models.py REUSE: 500 histories, 20
# impressions each), a user's rows together and all users interleaved, against the array form
# of the same pairs and per-row with reuse off (din.history_cache_size = 0).
# Then, on every CPU, auc/gauc and gauc over din_score serial against 2 parallel workers
# (test/bench/parallel_bench.sh). Then training samples/s of din-train's loop next to
# DeepCTR-Torch's fit() on the same DIN and DIEN, 2 threads (test/bench/train_bench.py; skipped
# without DEEPCTR_TORCH_SRC, a DeepCTR-Torch source tree).
#
# `run.sh parallel` (make bench-parallel) measures only the parallel plans: the DIN model and
# its pairs table are made as above, nothing else is timed.
#
# Environment: DIN_BENCH_PORT (5580), DIN_BENCH_ROWS (100000), DIN_BENCH_SLOW_ROWS (20000:
# rows and rank candidates for the GRU and transformer models), DIN_BENCH_TRAIN_ROWS (10240:
# training rows per epoch of the training loops), DIN_BENCH_KEEP=1 keeps the
# work directory, DIN_BENCH_NO_INSTALL=1 uses the installed din as it is, PG_CONFIG;
# DIN_BENCH_CPU (0) the CPU the one-core part runs on, DIN_BENCH_METRICS=0,
# DIN_BENCH_PARALLEL=0 and DIN_BENCH_TRAIN=0 leave those parts out (two builds can then be
# compared side by side, one per CPU).
set -euo pipefail

ONLY=${1:-all}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=$REPO/test/bench
PORT=${DIN_BENCH_PORT:-5580}
ROWS=${DIN_BENCH_ROWS:-100000}
RANK_CANDIDATES=${DIN_BENCH_RANK_CANDIDATES:-100000} # candidates per din_rank measurement
SLOW_ROWS=${DIN_BENCH_SLOW_ROWS:-20000}
TORCH_ROWS=${DIN_BENCH_TORCH_ROWS:-20480}
PY=/usr/bin/python3
CPU=${DIN_BENCH_CPU:-0}
PIN="taskset -c $CPU"
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

if [ "$ONLY" = all ]; then
echo "== measuring the sgemm peak" >&2
MULTIARCH=$(gcc -print-multiarch)
BLAS=/usr/lib/$MULTIARCH/openblas-serial
gcc -O2 -std=gnu11 -I"$REPO/src" -o "$WORK/sgemm_peak" "$BENCH/sgemm_peak.c" "$REPO"/src/nn/*.c \
	-L"$BLAS" -l:libopenblas.so.0 -Wl,-rpath,"$BLAS" -lm
$PIN "$WORK/sgemm_peak" | sed 's/^/peak_detail /' >>"$RESULTS"
# A DYNAMIC_ARCH OpenBLAS may not recognize a virtual CPU and fall back to pre-AVX kernels
# (din uses OpenBLAS only at its portable kernel level). The machine's peak is what the CPU can
# do, so measure OpenBLAS's Haswell kernels too when the CPU has AVX2/FMA; din never sets this.
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
	OPENBLAS_CORETYPE=Haswell $PIN "$WORK/sgemm_peak" | grep -v '^din\|^peak\|^rowtower' |
		sed 's/^sgemm/sgemm-haswell/; s/^openblas_core/openblas_core_forced/; s/^/peak_detail /' >>"$RESULTS"
fi
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
[ -n "$PIN" ] && taskset -a -pc "$CPU" "$CLUSTER_PID" >/dev/null

psql_q() { cluster_psql -At "$@"; }

echo "== importing models, generating inputs" >&2
psql_q <<SQL
CREATE EXTENSION din;
-- the best of three runs: a virtual machine's neighbours slow single runs by 10-20%
CREATE FUNCTION bench_seconds(q text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; best float8;
BEGIN
    FOR i IN 1..3 LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        best := least(best, extract(epoch FROM clock_timestamp() - t0));
    END LOOP;
    RETURN best;
END \$\$;
-- behaviour times for the session model: sessions of 10 a minute apart, an hour between them
CREATE FUNCTION bench_times(n int) RETURNS timestamptz[] LANGUAGE sql STABLE AS \$\$
SELECT array_agg(timestamptz '2024-01-01 00:00+00' + (i / 10) * interval '1 hour'
                 + (i % 10) * interval '1 minute' ORDER BY i)
FROM generate_series(0, n - 1) i \$\$;
SELECT setseed(0.8);
SQL
# "name:T T ..." per model, from models.py
PLAN=$(cd "$BENCH" && $PY -c 'import models
for n in models.MODELS: print("%s:%s" % (n, ",".join(map(str, models.LENGTHS[n]))))')
LENGTHS=$(cd "$BENCH" && $PY -c 'import models
print(" ".join(map(str, sorted({t for n in models.MODELS for t in models.LENGTHS[n]}))))')
# "name:T" per model, and USERS IMPRESSIONS, for the repeated histories
REUSE_PLAN=$(cd "$BENCH" && $PY -c 'import models
print(" ".join("%s:%d" % (n, t) for n, t in models.REUSE.items()))')
read -r REUSE_USERS REUSE_IMPRESSIONS < <(cd "$BENCH" && $PY -c 'import models
print(models.REUSE_USERS, models.REUSE_IMPRESSIONS)')
[ "$ONLY" = parallel ] && PLAN=din:50 LENGTHS=50 REUSE_PLAN=
for spec in $PLAN; do
	psql_q -c "SELECT din_import('amazon_${spec%%:*}', pg_read_binary_file('$WORK/amazon_${spec%%:*}.safetensors'))" >/dev/null
done
for T in $LENGTHS; do
	psql_q <<SQL
CREATE TABLE pairs_$T AS
SELECT array(SELECT (random() * 99999)::bigint FROM generate_series(1, $T) WHERE g > 0) AS h,
       (random() * 99999)::bigint AS a, u, ARRAY[u] AS ctx, bench_times($T) AS ht
FROM generate_series(1, $ROWS) g, LATERAL (SELECT (random() * 9999)::bigint + g * 0 AS u) x;
SQL
	[ "$ONLY" = parallel ] && continue
	for C in 100 1000; do
		psql_q <<SQL
CREATE TABLE reqs_${T}_$C AS
SELECT array(SELECT (random() * 99999)::bigint FROM generate_series(1, $T) WHERE g > 0) AS h,
       array(SELECT (random() * 99999)::bigint FROM generate_series(1, $C) WHERE g > 0) AS c,
       ARRAY[(random() * 9999)::bigint] AS ctx, bench_times($T) AS ht
FROM generate_series(1, $RANK_CANDIDATES / $C) g;
SQL
	done
	psql_q -c "\\copy (SELECT h, a, u FROM pairs_$T LIMIT $TORCH_ROWS) TO '$WORK/pairs_$T.csv' CSV"
done
# each user's history and candidates, then one row per impression: grouped by user, or
# interleaved (every user's first impression, then every second, ...) as a log by time is
for T in $(for spec in $REUSE_PLAN; do echo "${spec#*:}"; done | sort -un); do
	psql_q <<SQL
CREATE TABLE users_$T AS
SELECT u, array(SELECT (random() * 99999)::bigint FROM generate_series(1, $T) WHERE u > 0) AS h,
       array(SELECT (random() * 99999)::bigint FROM generate_series(1, $REUSE_IMPRESSIONS)
             WHERE u > 0) AS c,
       ARRAY[(random() * 9999)::bigint] AS ctx, bench_times($T) AS ht
FROM generate_series(1, $REUSE_USERS) u;
CREATE TABLE grouped_$T AS
SELECT h, c[i] AS a, ctx, ht FROM users_$T, generate_series(1, $REUSE_IMPRESSIONS) i ORDER BY u, i;
CREATE TABLE mixed_$T AS
SELECT h, c[i] AS a, ctx, ht FROM users_$T, generate_series(1, $REUSE_IMPRESSIONS) i ORDER BY i, u;
SQL
done
psql_q -c "VACUUM ANALYZE" >/dev/null

if [ "$ONLY" = all ]; then
echo "== timing din" >&2
for spec in $PLAN; do
	M=${spec%%:*}
	n_rows=$ROWS
	n_rank=$RANK_CANDIDATES
	case $M in din | base) ;; *) n_rows=$((SLOW_ROWS < ROWS ? SLOW_ROWS : ROWS)) n_rank=$((SLOW_ROWS < RANK_CANDIDATES ? SLOW_ROWS : RANK_CANDIDATES)) ;; esac
	times= # only the session model reads behaviour times
	[ "$M" = dsin ] && times=", NULL, ht"
	lengths=${spec#*:}
	for T1 in ${lengths//,/ }; do
		# warm up: load the model into this backend's cache and the table into shared buffers
		s=$(psql_q <<SQL
SELECT sum(din_score(h, a, 'amazon_$M', ctx$times)) FROM (SELECT * FROM pairs_$T1 LIMIT 100) p;
SELECT bench_seconds('SELECT sum(din_score(h, a, ''amazon_$M'', ctx$times)) FROM (SELECT * FROM pairs_$T1 LIMIT $n_rows) p');
SQL
)
		echo "din $M $T1 perrow $(echo "$s" | tail -1) $n_rows" >>"$RESULTS"
		for C in 100 1000; do
			s=$(psql_q <<SQL
SELECT count(*) FROM (SELECT * FROM reqs_${T1}_$C LIMIT 2) r, din_rank(h, c, 10, 'amazon_$M', ctx$times);
SELECT bench_seconds('SELECT count(*) FROM (SELECT * FROM reqs_${T1}_$C LIMIT $((n_rank / C))) r, din_rank(h, c, 10, ''amazon_$M'', ctx$times)');
SQL
)
			echo "din $M $T1 rank$C $(echo "$s" | tail -1) $(((n_rank / C) * C))" >>"$RESULTS"
		done
		echo "   $M T=$T1 done" >&2
	done
done

echo "== timing per-row scoring with repeated histories" >&2
n_pairs=$((REUSE_USERS * REUSE_IMPRESSIONS))
for spec in $REUSE_PLAN; do
	M=${spec%%:*} T=${spec#*:}
	times=
	[ "$M" = dsin ] && times=", NULL, ht"
	score="din_score(h, a, ''amazon_$M'', ctx$times)"
	s=$(psql_q -q <<SQL
SELECT sum(din_score(h, a, 'amazon_$M', ctx$times)) FROM grouped_$T;
SELECT bench_seconds('SELECT sum(s) FROM users_$T, unnest(din_score(h, c, ''amazon_$M'', ctx$times)) s');
SELECT bench_seconds('SELECT sum($score) FROM grouped_$T');
SELECT bench_seconds('SELECT sum($score) FROM mixed_$T');
SET din.history_cache_size = 0;
SELECT bench_seconds('SELECT sum($score) FROM mixed_$T');
SQL
)
	set -- $s
	echo "din $M $T reuse_array $2 $n_pairs" >>"$RESULTS"
	echo "din $M $T reuse_grouped $3 $n_pairs" >>"$RESULTS"
	echo "din $M $T reuse_mixed $4 $n_pairs" >>"$RESULTS"
	echo "din $M $T reuse_off $5 $n_pairs" >>"$RESULTS"
	echo "   $M T=$T done" >&2
done

# the peak again: the best of both measurements, so a slow minute on a shared host cannot lower
# the peak and flatter din's share of it
$PIN "$WORK/sgemm_peak" | grep -v '^peak\|^openblas_core\|^rowtower' | sed 's/^/peak_detail again-/' >>"$RESULTS"

echo "== timing the PyTorch reference" >&2
# the batched BST and DSIN forwards must score what their references score, or the ratio lies
(cd "$BENCH" && $PY torch_bench.py --check "$WORK") >&2
(cd "$BENCH" && $PIN $PY torch_bench.py "$WORK" "$WORK") >>"$RESULTS" || echo "skip torch bench failed" >>"$RESULTS"

if [ -x "$BENCH/metrics_bench.sh" ] && [ "${DIN_BENCH_METRICS:-1}" = 1 ]; then
	echo "== timing auc/gauc" >&2
	bash "$BENCH/metrics_bench.sh" "$WORK" "$PG_BINDIR/psql" >>"$RESULTS" || echo "skip metrics bench failed" >>"$RESULTS"
fi
fi

if [ "${DIN_BENCH_PARALLEL:-1}" = 1 ]; then
	echo "== timing parallel plans (2 workers)" >&2
	# every CPU again: the backends and their parallel workers were pinned to one CPU above
	[ -n "$PIN" ] && taskset -a -pc "0-$(($(nproc) - 1))" "$CLUSTER_PID" >/dev/null
	bash "$BENCH/parallel_bench.sh" "$PG_BINDIR/psql" amazon_din pairs_50 >>"$RESULTS" ||
		echo "skip parallel bench failed" >>"$RESULTS"
fi

if [ "$ONLY" = all ] && [ "${DIN_BENCH_TRAIN:-1}" = 1 ]; then
	echo "== timing training loops (din-train, DeepCTR-Torch; 2 threads)" >&2
	$PY "$BENCH/train_bench.py" "${DIN_BENCH_TRAIN_ROWS:-10240}" 2 >>"$RESULTS" ||
		echo "skip train bench failed" >>"$RESULTS"
fi

$PY "$BENCH/report.py" "$RESULTS"
