#!/bin/bash
# Part of make bench (run.sh sources the cluster): auc and gauc over DIN_BENCH_METRIC_ROWS rows
# (10^7) inside PostgreSQL (usage: metrics_bench.sh WORKDIR PSQL) against scikit-learn's roc_auc_score on the same rows in numpy.
# Prints "metric NAME ROWS SECONDS" lines; needs PGHOST/PGPORT of the running bench cluster.
set -euo pipefail
WORK=$1
PSQL=$2
ROWS=${DIN_BENCH_METRIC_ROWS:-10000000}
q() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q <<SQL
SELECT setseed(0.3);
CREATE TABLE clicks AS
SELECT (g % 100000)::bigint AS user_id, s AS score, random() < s AS label
FROM generate_series(1, $ROWS) g, LATERAL (SELECT random() + g * 0 AS s) x;
VACUUM ANALYZE clicks;
SQL
for m in "count(*)" "auc(score, label)" "gauc(user_id, score, label)" "logloss(score, label)"; do
	s=$(q -c "SELECT bench_seconds('SELECT $m FROM clicks')")
	echo "metric din:${m%%(*} $ROWS $s"
done
q -c "\\copy (SELECT score, label::int FROM clicks) TO '$WORK/clicks.csv' CSV"
taskset -c 0 /usr/bin/python3 - "$WORK/clicks.csv" "$ROWS" <<'PY' || echo "skip scikit-learn timing failed"
import sys, time
try:
    import numpy as np
    from sklearn.metrics import roc_auc_score
except ImportError:
    print("skip scikit-learn is not installed; no roc_auc_score timing")
    sys.exit(0)
d = np.loadtxt(sys.argv[1], delimiter=",", dtype=np.float64)
t0 = time.perf_counter()
roc_auc_score(d[:, 1], d[:, 0])
print("metric sklearn:roc_auc_score %s %.3f" % (sys.argv[2], time.perf_counter() - t0))
PY
