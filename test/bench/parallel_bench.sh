#!/bin/bash
# Part of make bench (run.sh): what parallel plans buy on this machine (issue 18). auc and gauc
# over DIN_BENCH_PARALLEL_ROWS rows (5*10^6), and gauc over din_score of MODEL on the rows of
# PAIRS (a run.sh table: h, a, u, ctx), each serial and with 2 parallel workers, best of three.
# usage: parallel_bench.sh PSQL MODEL PAIRS; needs PGHOST/PGPORT of the bench cluster, whose
# backends must not be pinned to one CPU. Prints "parallel NAME ROWS SERIAL PARALLEL" lines.
set -euo pipefail
PSQL=$1
MODEL=$2
PAIRS=$3
ROWS=${DIN_BENCH_PARALLEL_ROWS:-5000000}
q() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q <<SQL
SELECT setseed(0.4);
CREATE TABLE clicks_par AS
SELECT (g % 100000)::bigint AS user_id, s AS score, random() < s AS label
FROM generate_series(1, $ROWS) g, LATERAL (SELECT random() + g * 0 AS s) x;
ALTER TABLE clicks_par SET (parallel_workers = 2);
ALTER TABLE $PAIRS SET (parallel_workers = 2);
VACUUM ANALYZE clicks_par;
SQL
pair_rows=$(q -c "SELECT count(*) FROM $PAIRS")
score="din_score(h, a, ''$MODEL'', ctx)"
while IFS='|' read -r name rows query; do
	serial=$(q -c "SET max_parallel_workers_per_gather = 0" -c "SELECT bench_seconds('$query')")
	parallel=$(q -c "SET max_parallel_workers_per_gather = 2" -c "SELECT bench_seconds('$query')")
	echo "parallel $name $rows $serial $parallel"
done <<LIST
auc|$ROWS|SELECT auc(score, label) FROM clicks_par
gauc|$ROWS|SELECT gauc(user_id, score, label) FROM clicks_par
gauc(din_score)|$pair_rows|SELECT gauc(u, $score, a % 3 = 0) FROM $PAIRS
LIST
