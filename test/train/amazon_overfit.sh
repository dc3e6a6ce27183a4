#!/bin/bash
# test/train/amazon_overfit.sh - the large-vocabulary setting of docs/TRAINING.md: DIN (Dice)
# with the user id as a context field beside item and category, on the tables of
#   /usr/bin/python3 test/train/amazon.py DIR/Beauty DSN --train-positions 300 --valid-positions 1
# (every position before the last two trains, the one before the last validates, the last
# tests). For each regularization and seed, din-train's per-epoch validation AUC and GAUC, then
# the test AUC and GAUC (din's aggregates over din_score) of the epoch with the best validation
# AUC (--keep-best).
#   EPOCHS=4 bash test/train/amazon_overfit.sh DSN "SEEDS" "SETTINGS"
# SETTINGS: none, l2=LAMBDA, mba=LAMBDA (e.g. "none l2=1e-4 mba=0.01"). ARGS adds din-train
# flags (default: --dim 16 --lr 4e-3).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dsn=$1 seeds=${2:-"0 1"} settings=${3:-"none l2=1e-4 mba=0.01"}
epochs=${EPOCHS:-4}
args=${ARGS:-"--dim 16 --lr 4e-3"}
rows="SELECT user_id, history, ad_id, label, ARRAY[user_id] AS context FROM amazon_rows"
for setting in $settings; do
	case $setting in
	none) flags= ;;
	l2=* | mba=*) flags="--${setting%%=*} ${setting#*=}" ;;
	*) echo "unknown setting $setting (none, l2=LAMBDA, mba=LAMBDA)" >&2 && exit 2 ;;
	esac
	for seed in $seeds; do
		start=$(date +%s)
		# shellcheck disable=SC2086
		/usr/bin/python3 "$here/../../tools/din-train" --dsn "$dsn" --quiet --threads 1 \
			--train "$rows WHERE split = 'train'" --valid "$rows WHERE split = 'valid'" \
			--items "SELECT item_id, cate FROM amazon_items" --context-names user \
			--arch din --attention-activation dice --tower-activation dice $args $flags \
			--epochs "$epochs" --seed "$seed" --keep-best --model amazon_overfit --replace 2>&1 |
			sed -n "s/^din-train: \(epoch [0-9]*\): .*validation \(AUC [0-9.]* GAUC [0-9.]*\).*/$setting seed $seed \1 \2/p; s/^din-train: keeping \(epoch [0-9]*\).*/$setting seed $seed kept \1/p"
		/usr/bin/python3 - "$dsn" "$setting seed $seed" "$start" <<'PY'
import sys, time
import psycopg2
with psycopg2.connect(sys.argv[1]) as conn, conn.cursor() as cur:
    cur.execute("SELECT auc(p, label), gauc(user_id, p, label) FROM (SELECT user_id, label, "
                "din_score(history, ad_id, 'amazon_overfit', ARRAY[user_id]) AS p "
                "FROM amazon_rows WHERE split = 'test') s")
    print("%s test AUC %.4f GAUC %.4f (%d s)" % (sys.argv[2], *cur.fetchone(),
                                                  time.time() - int(sys.argv[3])))
PY
	done
done
