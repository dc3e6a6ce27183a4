#!/bin/bash
# Part of make bench (run.sh): what parallel plans buy on this machine (issue 18). count, auc
# and gauc over DIN_BENCH_PARALLEL_ROWS rows (5*10^6), and gauc over din_score of MODEL on the
# rows of PAIRS (a run.sh table: h, a, u, ctx), each serial and with 2 parallel workers.
# count(score) shows what a parallel plan can give at the machine's load; the others are din's.
# Serial and parallel take turns DIN_BENCH_PARALLEL_ROUNDS times (3), each turn the best of
# three runs, and each keeps its best turn, so a burst of other work on a shared machine
# lowers neither alone. The 1-minute load average at the end says how busy the machine was.
# usage: parallel_bench.sh PSQL MODEL PAIRS; needs PGHOST/PGPORT of the bench cluster, whose
# backends must not be pinned to one CPU. Prints "parallel NAME ROWS SERIAL PARALLEL LOAD" lines.
set -euo pipefail
PSQL=$1
MODEL=$2
PAIRS=$3
ROWS=${DIN_BENCH_PARALLEL_ROWS:-5000000}
ROUNDS=${DIN_BENCH_PARALLEL_ROUNDS:-3}
q() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
seconds() { q -c "SET max_parallel_workers_per_gather = $1" -c "SELECT bench_seconds('$2')"; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a < b) ? a : b }'; }

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
	serial=
	parallel=
	for _ in $(seq "$ROUNDS"); do
		serial=$(min "$(seconds 0 "$query")" "$serial")
		parallel=$(min "$(seconds 2 "$query")" "$parallel")
	done
	echo "parallel $name $rows $serial $parallel $(cut -d' ' -f1 /proc/loadavg)"
done <<LIST
count|$ROWS|SELECT count(score) FROM clicks_par
auc|$ROWS|SELECT auc(score, label) FROM clicks_par
gauc|$ROWS|SELECT gauc(user_id, score, label) FROM clicks_par
gauc(din_score)|$pair_rows|SELECT gauc(u, $score, a % 3 = 0) FROM $PAIRS
LIST
