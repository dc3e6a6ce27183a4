#!/bin/bash
# test/train/amazon_bench.sh - the docs/TRAINING.md table: din-train on the tables of
# test/train/amazon.py, one line per configuration and seed with the last epoch's test AUC and
# GAUC (din's aggregates over din_score). Nothing is stored (-o to a scratch file).
#   EPOCHS=3 bash test/train/amazon_bench.sh DSN "SEEDS" "CONFIG-NAMES" [USERS-MODULUS]
# (USERS-MODULUS m keeps the users with user_id % m = 0; 1 keeps all)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dsn=$1 seeds=${2:-"0 1"} names=${3:-"base din_prelu din_dice din_dice_mba din_dice_l2 dien dien_aux"}
mod=${4:-4}
epochs=${EPOCHS:-2}
sub="user_id % $mod = 0"
declare -A cfg=(
	[base]="--arch base --tower-activation prelu"
	[din_prelu]="--arch din --attention-activation prelu --tower-activation prelu"
	[din_dice]="--arch din --attention-activation dice --tower-activation dice"
	[din_dice_mba]="--arch din --attention-activation dice --tower-activation dice --mba 0.01"
	[din_dice_l2]="--arch din --attention-activation dice --tower-activation dice --l2 1e-4"
	[din_dice_dropout]="--arch din --attention-activation dice --tower-activation dice --dropout 0.5"
	[dien]="--arch dien --attention-activation dice --tower-activation dice"
	[dien_aux]="--arch dien --attention-activation dice --tower-activation dice --aux-loss 1"
)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for name in $names; do
	for seed in $seeds; do
		start=$(date +%s)
		# shellcheck disable=SC2086
		line=$(/usr/bin/python3 "$here/../../tools/din-train" --dsn "$dsn" --quiet --threads 1 \
			--train "SELECT user_id, history, ad_id, label FROM amazon_rows WHERE split = 'train' AND $sub" \
			--valid "SELECT user_id, history, ad_id, label FROM amazon_rows WHERE split = 'test' AND $sub" \
			--items "SELECT item_id, cate FROM amazon_items" \
			--epochs "$epochs" --seed "$seed" -o "$scratch/m" ${cfg[$name]} 2>&1 | grep "epoch $epochs:")
		echo "$name seed $seed: ${line#din-train: } (total $(($(date +%s) - start)) s)"
	done
done
