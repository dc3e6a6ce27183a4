-- Hostile input (issue 9): every function with NULLs, empty and multidimensional arrays,
-- NULL elements, negative and huge ids, lengths of 10^6, mismatched lengths, unknown models
-- and models dropped mid-transaction. Each gives its documented result or error (SQLSTATE
-- echoed after each error); none may crash the backend.
\getenv abs_srcdir PG_ABS_SRCDIR
\set din_file :abs_srcdir '/fixtures/tiny_din.safetensors'
\set SHOW_CONTEXT never
SELECT din_import('h', pg_read_binary_file(:'din_file'));
CREATE TEMP TABLE big AS
SELECT array_agg(100 + i % 4)::bigint[] AS ids, array_agg(0.5::float8) AS dense
FROM generate_series(1, 1000000) i;

-- din_score, one ad: NULL ad -> NULL, NULL history = empty history
SELECT din_score('{100}', NULL::bigint, 'h', '{1}', '{0.5}') IS NULL AS null_ad;
SELECT round(din_score(NULL, 103, 'h', '{1}', '{0.5}')::numeric, 6) = round(din_score('{}', 103, 'h', '{1}', '{0.5}')::numeric, 6) AS null_history_is_empty;
SELECT din_score('{{100,101},{102,103}}', 103, 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100,NULL}', 103, 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'h', '{NULL}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'h', '{1}', '{NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'h', '{{1}}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'h', '{1}', '{{0.5}}');
\echo :LAST_ERROR_SQLSTATE
-- mismatched lengths: context, dense, history_time
SELECT din_score('{100}', 103, 'h', '{}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'h', '{1,2}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'h', '{1}', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'h', '{1}', '{0.5,0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100,101}', 103, 'h', '{1}', '{0.5}', history_time => ARRAY[now()]);
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'h', '{1}', '{NaN}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'h', '{1}', '{Infinity}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'h', '{1}', '{1e300}');
\echo :LAST_ERROR_SQLSTATE
-- negative and huge ids
SELECT din_score('{100}', -1, 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 9223372036854775807, 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{-9223372036854775808}', 103, 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
-- (the context field has "oov": 0, so any unknown id maps to row 0)
SELECT round(din_score('{100}', 103, 'h', '{-9223372036854775808}', '{0.5}')::numeric, 6) = round(din_score('{100}', 103, 'h', '{0}', '{0.5}')::numeric, 6) AS oov_row;
-- unknown and odd model names
SELECT din_score('{100}', 103, 'nope', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, '', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
DO $$
BEGIN
    PERFORM din_score('{100}', 103, repeat('x', 100000), '{1}', '{0.5}');
EXCEPTION WHEN undefined_object THEN
    RAISE NOTICE 'a name of 100000 bytes: %', SQLSTATE;
END
$$;
SELECT din_score('{100}', 103, E'h\u00e9''; DROP TABLE din_models; --', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
-- lengths of 10^6: a history of 10^6 uses its last max_len behaviours
SELECT round(din_score(ids, 103, 'h', '{1}', '{0.5}')::numeric, 6) = round(din_score(ids[999998:1000000], 103, 'h', '{1}', '{0.5}')::numeric, 6) AS long_history FROM big;
SELECT din_score('{100}', 103, 'h', '{1}', dense) FROM big;
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'h', ids, '{0.5}') FROM big;
\echo :LAST_ERROR_SQLSTATE

-- din_score, candidates: NULL -> NULL, empty -> '{}', 10^6 candidates
SELECT din_score('{100}', NULL::bigint[], 'h', '{1}', '{0.5}') IS NULL AS null_candidates;
SELECT din_score('{100}', '{}'::bigint[], 'h', '{1}', '{0.5}') AS no_candidates;
SELECT din_score('{100}', '{{101},{102}}'::bigint[], 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', '{101,NULL}'::bigint[], 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', '{101,-5}'::bigint[], 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT cardinality(s) AS n, min(x) > 0 AND max(x) < 1 AS probabilities
FROM big, din_score('{100,101}', ids, 'h', '{1}', '{0.5}') s, unnest(s) x GROUP BY 1;

-- din_rank
SELECT count(*) FROM din_rank('{100}', NULL, 2, 'h', '{1}', '{0.5}');
SELECT count(*) FROM din_rank('{100}', '{}', 2, 'h', '{1}', '{0.5}');
SELECT count(*) FROM din_rank('{100}', '{101,102}', NULL, 'h', '{1}', '{0.5}');
SELECT count(*) FROM din_rank('{100}', '{101,102}', 0, 'h', '{1}', '{0.5}');
SELECT count(*) FROM din_rank('{100}', '{101,102}', -1, 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM din_rank('{100}', '{101,102}', 2147483647, 'h', '{1}', '{0.5}');
SELECT count(*) FROM din_rank('{100}', '{{101},{102}}', 1, 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM din_rank('{100}', '{101,NULL}', 1, 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM din_rank('{100}', '{101}', 1, 'nope', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM din_rank('{100}', '{101}', 1, 'h', '{1,1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*), count(DISTINCT r.ad_id), min(r.rank), max(r.rank) FROM big, din_rank('{100}', ids, 10, 'h', '{1}', '{0.5}') r;

-- din_explain
SELECT * FROM din_explain('{100}', NULL, 'h', '{1}', '{0.5}');
SELECT count(*) FROM din_explain(NULL, 103, 'h', '{1}', '{0.5}');
SELECT * FROM din_explain('{{100}}', 103, 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM din_explain('{100,NULL}', 103, 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM din_explain('{100}', 103, 'nope', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM din_explain('{100}', -7, 'h', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT array_agg(pos ORDER BY pos) AS kept FROM big, din_explain(ids, 103, 'h', '{1}', '{0.5}');

-- din_import, din_export, din_drop, din_load
SELECT din_import(NULL, pg_read_binary_file(:'din_file'));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('h2', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('h2', '');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('h2', '\x0000000000000000');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('h2', '\xffffffffffffffff7b7d');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('h2', decode(repeat('00', 1000000), 'hex'));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('h2', pg_read_binary_file(:'din_file'), replace => NULL);
SELECT din_import('h2', pg_read_binary_file(:'din_file'), replace => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT din_drop('h2');
SELECT din_import(repeat('x', 64), pg_read_binary_file(:'din_file'));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('a/b', pg_read_binary_file(:'din_file'));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import(E'h\n', pg_read_binary_file(:'din_file'));
\echo :LAST_ERROR_SQLSTATE
SELECT din_export(NULL) IS NULL AS export_null;
SELECT din_export('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT din_drop(NULL) IS NULL AS drop_null;
SELECT din_drop('nope') AS dropped_nothing;
SELECT din_load(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT din_load('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) >= 0 AS listed FROM din_cache();

-- a model dropped or replaced mid-transaction: the transaction sees its own change at once
SELECT din_import('gone', pg_read_binary_file(:'din_file'));
BEGIN;
SELECT round(din_score('{100}', 103, 'gone', '{1}', '{0.5}')::numeric, 6) > 0 AS scored;
SELECT din_drop('gone');
SELECT din_score('{100}', 103, 'gone', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT round(din_score('{100}', 103, 'gone', '{1}', '{0.5}')::numeric, 6) > 0 AS back_after_rollback;
BEGIN;
SELECT din_drop('gone');
SELECT din_import('gone', pg_read_binary_file(:'din_file'));
SELECT round(din_score('{100}', 103, 'gone', '{1}', '{0.5}')::numeric, 6) > 0 AS reimported;
COMMIT;
BEGIN;
SELECT din_drop('gone');
SELECT count(*) FROM din_rank('{100}', '{101}', 1, 'gone', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT din_drop('gone');

-- metric aggregates: NULL rows are skipped, no rows give NULL, huge and NaN scores
SELECT auc(s, l) FROM (VALUES (NULL::float8, true), (0.5, NULL)) v(s, l);
SELECT auc(s, l), logloss(s, l) FROM (SELECT 0.5::float8, true WHERE false) v(s, l);
SELECT gauc(u, s, l), gauc_clicks(u, s, l) FROM (VALUES (NULL::bigint, 0.5::float8, true)) v(u, s, l);
SELECT auc(s, l) FROM (VALUES ('NaN'::float8, true), (0.5, false)) v(s, l);
\echo :LAST_ERROR_SQLSTATE
SELECT logloss(s, l) FROM (VALUES (2.0::float8, true)) v(s, l);
\echo :LAST_ERROR_SQLSTATE
SELECT auc(s, l) FROM (VALUES ('Infinity'::float8, true), ('-Infinity', false)) v(s, l);
\echo :LAST_ERROR_SQLSTATE
SELECT auc(s, l) FROM (VALUES (0.5::float8, 7)) v(s, l);
\echo :LAST_ERROR_SQLSTATE
SELECT round(auc(x, (i % 2) = 0)::numeric, 3) FROM unnest((SELECT dense FROM big)) WITH ORDINALITY AS t(x, i);
SELECT round(gauc(i % 1000, (i % 7)::float8, (i % 3) = 0)::numeric, 6) FROM generate_series(1, 1000000) i;

SELECT din_drop('h');
