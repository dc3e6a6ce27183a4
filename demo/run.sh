#!/bin/bash
# demo/run.sh [DATA] - din end to end: build, install, throwaway cluster, import, score, evaluate.
#
#   make demo                      the synthetic behaviour log (demo/gen_synthetic.py) and the
#                                  committed models demo/models/synthetic_{din,base}.safetensors
#   make demo DATA=<ml-latest-small dir>
#                                  MovieLens: demo/movielens.py trains DIN and base with the
#                                  PyTorch reference first (installs python3-torch), then the same
#
# Run as root on Debian 12 (installs what is missing; as another user it only checks). The
# server runs as the postgres OS user in a fresh directory under /tmp on port $DIN_DEMO_PORT
# (default 5540) and is stopped on exit, whatever happens; the directory is removed.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA=${1:-}
PORT=${DIN_DEMO_PORT:-5540}
export PYTHONDONTWRITEBYTECODE=1

if [ -n "$DATA" ]; then
	DATA=$(cd "$DATA" && pwd)
	for f in ratings.csv movies.csv; do
		[ -r "$DATA/$f" ] || { echo "demo: $DATA/$f not found (DATA must be ml-latest-small)" >&2; exit 1; }
	done
fi

step() {
	printf '\n== %s\n' "$*"
}

step "dependencies"
if [ -n "$DATA" ]; then
	bash test/lib/deps.sh python3 python3-numpy python3-torch
	PYTHON=/usr/bin/python3
else
	bash test/lib/deps.sh python3
	PYTHON=$(command -v /usr/bin/python3 python3 | head -n 1)
fi

# The scratch directory is root's; the cluster directory inside it belongs to postgres, so
# the scratch directory must let postgres pass through (not list).
WORK=$(mktemp -d /tmp/din-demo.XXXXXX)
chmod 711 "$WORK"
trap 'rm -rf "$WORK"' EXIT

# Sets PG_CONFIG (PostgreSQL 15's unless given) and the cluster_* functions.
. test/lib/cluster.sh

step "build and install din"
if ! { make PG_CONFIG="$PG_CONFIG" && make PG_CONFIG="$PG_CONFIG" install; } >"$WORK/build.log" 2>&1; then
	tail -n 40 "$WORK/build.log" >&2
	echo "demo: build failed (log above)" >&2
	exit 1
fi
echo "built and installed din $(sed -n "s/^default_version = '\(.*\)'/\1/p" din.control)"

step "throwaway cluster"
# From here on the working directory is one the postgres OS user may enter (commands run as
# postgres start in it), so paths into the clone are absolute.
cd "$WORK"
# cluster_start installs its own EXIT trap (stop the server); ours, set after it, adds the rest.
if ! cluster_start "$PORT" "$WORK/cluster"; then
	cluster_stop
	rm -rf "$WORK"
	exit 1
fi
on_exit() {
	local status=$?
	if [ "$status" -ne 0 ] && [ -f "$WORK/cluster/log/postgresql.log" ]; then
		echo "demo: failed; end of the server log:" >&2
		tail -n 20 "$WORK/cluster/log/postgresql.log" >&2
	fi
	cluster_stop
	rm -rf "$WORK"
	exit "$status"
}
trap on_exit EXIT

psql_demo() {
	cluster_psql -P footer=off "$@"
}

# Copies a model file where the server (postgres OS user) can read it, whoever owns the clone.
place() {
	cat "$1" | cluster_as_owner tee "$WORK/cluster/$(basename "$1")" >/dev/null
	echo "$WORK/cluster/$(basename "$1")"
}

# import NAME FILE
import_model() {
	local path
	path=$(place "$2")
	psql_demo -c "SELECT din_import('$1', pg_read_binary_file('$path')) AS version" >/dev/null
}

# Prints, for the models ${1}_din and ${1}_base over table impressions: example scores, one
# din_explain, and AUC/GAUC of both computed in SQL.
evaluate() {
	local prefix=$1
	step "models"
	psql_demo <<-SQL
		SELECT name, architecture, config->'max_len' AS max_len,
		       (SELECT count(*) FROM din_items i WHERE i.model = m.name) AS items,
		       pg_size_pretty((SELECT sum(length(data)) FROM din_tensors t
		                       WHERE t.model = m.name)) AS weights
		FROM din_models m ORDER BY name;
	SQL

	step "din_score: a few held-out impressions of one user"
	psql_demo <<-SQL
		WITH u AS (SELECT user_id FROM impressions GROUP BY user_id
		           HAVING count(*) FILTER (WHERE clicked) BETWEEN 2 AND count(*) - 2
		           ORDER BY user_id LIMIT 1)
		SELECT i.user_id, i.ad_id, c.name AS category${TITLE_COL}, i.clicked,
		       round(din_score(i.history, i.ad_id, model => '${prefix}_din')::numeric, 4) AS din,
		       round(din_score(i.history, i.ad_id, model => '${prefix}_base')::numeric, 4) AS base
		FROM impressions i JOIN u USING (user_id)
		LEFT JOIN items it ON it.item_id = i.ad_id
		LEFT JOIN categories c ON c.category = it.category${TITLE_JOIN//@ID@/i.ad_id}
		ORDER BY i.n LIMIT 8;
	SQL

	step "din_score, array form: that user's candidates ranked in one call (latest history)"
	psql_demo <<-SQL
		WITH u AS (SELECT user_id FROM impressions GROUP BY user_id
		           HAVING count(*) FILTER (WHERE clicked) BETWEEN 2 AND count(*) - 2
		           ORDER BY user_id LIMIT 1),
		     h AS (SELECT history FROM impressions JOIN u USING (user_id) ORDER BY n DESC LIMIT 1),
		     c AS (SELECT array_agg(DISTINCT ad_id) AS ads FROM impressions JOIN u USING (user_id))
		SELECT rank() OVER (ORDER BY s.p DESC), s.ad_id, cat.name AS category${TITLE_COL},
		       round(s.p::numeric, 4) AS din,
		       (SELECT bool_or(clicked) FROM impressions i JOIN u USING (user_id)
		        WHERE i.ad_id = s.ad_id) AS clicked
		FROM h, c, unnest(c.ads, din_score(h.history, c.ads, model => '${prefix}_din')) AS s(ad_id, p)
		LEFT JOIN items it ON it.item_id = s.ad_id
		LEFT JOIN categories cat ON cat.category = it.category${TITLE_JOIN//@ID@/s.ad_id}
		ORDER BY rank, s.ad_id LIMIT 5;
	SQL

	step "din_explain: which behaviours DIN attended to for one clicked impression"
	echo "(normalization none: the weights are the attention unit's raw scores, u = sum of weight * behaviour;"
	echo " their sign is the model's own convention, their size is how much a behaviour counts)"
	psql_demo <<-SQL
		WITH pick AS (
		    SELECT i.* FROM impressions i JOIN items it ON it.item_id = i.ad_id
		    WHERE i.clicked AND cardinality(i.history) BETWEEN 8 AND 14
		      AND (SELECT count(*) FROM unnest(i.history) h JOIN items hi ON hi.item_id = h
		           WHERE hi.category = it.category) BETWEEN 2 AND 4
		    ORDER BY i.n LIMIT 1)
		SELECT p.user_id, p.ad_id, c.name AS ad_category${TITLE_COL},
		       round(din_score(p.history, p.ad_id, model => '${prefix}_din')::numeric, 4) AS din
		FROM pick p JOIN items it ON it.item_id = p.ad_id
		LEFT JOIN categories c ON c.category = it.category${TITLE_JOIN//@ID@/p.ad_id};

		WITH pick AS (
		    SELECT i.* FROM impressions i JOIN items it ON it.item_id = i.ad_id
		    WHERE i.clicked AND cardinality(i.history) BETWEEN 8 AND 14
		      AND (SELECT count(*) FROM unnest(i.history) h JOIN items hi ON hi.item_id = h
		           WHERE hi.category = it.category) BETWEEN 2 AND 4
		    ORDER BY i.n LIMIT 1)
		SELECT e.pos, e.item_id, c.name AS category${TITLE_COL},
		       CASE WHEN hi.category = it.category THEN 'yes' ELSE '' END AS same_as_ad,
		       round(e.weight::numeric, 4) AS weight,
		       repeat('#', round(20 * abs(e.weight) / nullif(max(abs(e.weight)) OVER (), 0))::int) AS "|weight|"
		FROM pick p JOIN items it ON it.item_id = p.ad_id,
		     din_explain(p.history, p.ad_id, model => '${prefix}_din') e
		LEFT JOIN items hi ON hi.item_id = e.item_id
		LEFT JOIN categories c ON c.category = hi.category${TITLE_JOIN//@ID@/e.item_id}
		ORDER BY e.pos;
	SQL

	step "held-out evaluation in SQL: auc() and gauc() over din_score"
	psql_demo <<-SQL
		\\timing on
		CREATE TEMP TABLE scored AS
		SELECT user_id, clicked,
		       din_score(history, ad_id, model => '${prefix}_din') AS din,
		       din_score(history, ad_id, model => '${prefix}_base') AS base
		FROM impressions;
		\\timing off
		SELECT count(*) AS impressions, count(DISTINCT user_id) AS users,
		       round(avg(clicked::int), 4) AS click_rate FROM scored;
		SELECT model, round(auc(p, clicked)::numeric, 4) AS auc,
		       round(gauc(user_id, p, clicked)::numeric, 4) AS gauc,
		       round(logloss(p, clicked)::numeric, 4) AS logloss
		FROM (SELECT '${prefix}_din' AS model, user_id, din AS p, clicked FROM scored
		      UNION ALL
		      SELECT '${prefix}_base', user_id, base, clicked FROM scored) s
		GROUP BY model ORDER BY auc DESC;
	SQL
}

# load_impressions DIR: items.csv, test.csv (and categories) into tables; n keeps file order.
load_impressions() {
	psql_demo <<-SQL
		CREATE TABLE items (item_id bigint PRIMARY KEY, category bigint NOT NULL);
		CREATE TABLE impressions (user_id bigint NOT NULL, history bigint[] NOT NULL,
		                          ad_id bigint NOT NULL, clicked boolean NOT NULL);
		\\copy items FROM '$1/items.csv' WITH (FORMAT csv, HEADER)
		\\copy impressions FROM '$1/test.csv' WITH (FORMAT csv, HEADER)
		ALTER TABLE impressions ADD COLUMN n bigserial;
	SQL
}

psql_demo -c 'CREATE EXTENSION din' >/dev/null
# Item titles, when the data has them (MovieLens): extra column and join in the examples.
TITLE_COL=
TITLE_JOIN=

if [ -z "$DATA" ]; then
	step "synthetic held-out impressions (demo/gen_synthetic.py)"
	"$PYTHON" "$ROOT/demo/gen_synthetic.py" "$WORK/data" --only test
	want=$(sed -n 's/.*"test_sha256": "\([0-9a-f]*\)".*/\1/p' "$ROOT/demo/models/synthetic.json")
	got=$(sha256sum "$WORK/data/test.csv" | cut -d' ' -f1)
	if [ "$want" != "$got" ]; then
		echo "demo: WARNING: this test set differs from the one the committed models were" \
			"measured on (sha256 $got, expected $want); run /usr/bin/python3 demo/train.py" >&2
	fi
	load_impressions "$WORK/data"
	psql_demo -c "CREATE TABLE categories AS SELECT DISTINCT category, 'c' || category AS name FROM items"
	import_model synthetic_din "$ROOT/demo/models/synthetic_din.safetensors"
	import_model synthetic_base "$ROOT/demo/models/synthetic_base.safetensors"
	psql_demo -At -c "SELECT format('%s impressions of %s held-out users, histories of %s..%s items (oldest first)',
	                   count(*), count(DISTINCT user_id), min(cardinality(history)), max(cardinality(history)))
	                   FROM impressions"
	evaluate synthetic
	reference=$ROOT/demo/models/synthetic.json
else
	step "MovieLens: impressions and training with the PyTorch reference (demo/movielens.py)"
	"$PYTHON" "$ROOT/demo/movielens.py" "$DATA" "$WORK/data"
	load_impressions "$WORK/data"
	psql_demo <<-SQL
		CREATE TABLE categories (category bigint PRIMARY KEY, name text NOT NULL);
		\\copy categories FROM '$WORK/data/genres.csv' WITH (FORMAT csv, HEADER)
		CREATE TABLE movies (item_id bigint PRIMARY KEY, title text, genres text);
		\\copy movies FROM '$DATA/movies.csv' WITH (FORMAT csv, HEADER)
	SQL
	TITLE_COL=", left(t.title, 40) AS title"
	TITLE_JOIN=" LEFT JOIN movies t ON t.item_id = @ID@"
	import_model movielens_din "$WORK/data/movielens_din.safetensors"
	import_model movielens_base "$WORK/data/movielens_base.safetensors"
	evaluate movielens
	reference=$WORK/data/movielens.json
fi

step "for comparison, the same metrics from PyTorch at training time ($(basename "$reference"))"
"$PYTHON" - "$reference" <<-'PY'
	import json, sys
	for arch, m in json.load(open(sys.argv[1]))["python"].items():
	    print("%-5s AUC %.4f  GAUC %.4f" % (arch, m["auc"], m["gauc"]))
PY

step "done"
cluster_stop
