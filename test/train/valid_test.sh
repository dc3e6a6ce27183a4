#!/bin/bash
# test/train/valid_test.sh - docs/TRAINING.md's tuned runs: din-train on the training split of
# ROWS, judged each epoch on its validation split, keeping the epoch with the best validation
# AUC (--keep-best); then that model's test AUC and GAUC, din's aggregates over din_score of
# the test split. One block of lines per run and seed:
#   NAME seed S epoch E AUC x GAUC y      (din-train's validation metrics)
#   NAME seed S kept epoch E
#   NAME seed S test AUC x GAUC y (N s)
#
#   ARGS="--epochs 4" bash test/train/valid_test.sh DSN ROWS ITEMS "SEEDS" NAME="FLAGS" ...
#
# ROWS: a query of din-train's columns and a column split ('train', 'valid', 'test'), e.g. the
# tables of test/train/amazon.py or movielens.py; ITEMS: the items query (--items). ARGS: flags
# for every run. Each run's model is stored as valid_test_PID (this script's process; replaced,
# so that two scripts at a time do not score each other's models).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dsn=$1 rows=$2 items=$3 seeds=$4
shift 4
model=valid_test_$$
for run in "$@"; do
	name=${run%%=*}
	for seed in $seeds; do
		start=$(date +%s)
		# shellcheck disable=SC2086
		/usr/bin/python3 "$here/../../tools/din-train" --dsn "$dsn" --quiet --threads 1 \
			--train "SELECT * FROM ($rows) r WHERE split = 'train'" \
			--valid "SELECT * FROM ($rows) r WHERE split = 'valid'" --items "$items" \
			${ARGS:-} ${run#*=} --seed "$seed" --keep-best --model "$model" --replace 2>&1 |
			sed -n "s/^din-train: \(epoch [0-9]*\): .*validation \(AUC [0-9.]* GAUC [0-9.n/]*\).*/$name seed $seed \1 \2/p
				s/^din-train: keeping \(epoch [0-9]*\).*/$name seed $seed kept \1/p
				s/^din-train: \(.*\(error\|refuses\|differs\|cannot\|lacks\).*\)/$name seed $seed \1/p"
		/usr/bin/python3 - "$dsn" "$rows" "$model" "$name seed $seed" "$start" <<'PY'
import sys
import time

import psycopg2

dsn, rows, model, label, start = sys.argv[1:]
with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
    cur.execute("SELECT * FROM (%s) r LIMIT 0" % rows)
    have = {d[0] for d in cur.description}
    args = ", ".join(c if c in have else "NULL"
                     for c in ("context", "dense", "history_time", "at"))
    cur.execute("SELECT auc(p, label), gauc(user_id, p, label) FROM (SELECT user_id, "
                "label::int AS label, din_score(history, ad_id, %%s, %s) AS p FROM (%s) r "
                "WHERE split = 'test') s" % (args, rows), (model,))
    print("%s test AUC %.4f GAUC %.4f (%d s)" % (label, *cur.fetchone(),
                                                  time.time() - int(start)))
PY
	done
done
