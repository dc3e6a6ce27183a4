-- din_rank and the array form of din_score against per-row din_score on the base, DIN and DIEN
-- fixture models (test/sql/din_rank_timed.sql does DSIN and BST), with the checks in
-- test/sql/include/rank_checks.sql:
-- each fixture row's history ranks 41 candidates (40 ad ids of its model, one twice); scores
-- must equal per-row din_score to 1e-6 relative, ranks follow score desc, ad_id asc.
\getenv abs_srcdir PG_ABS_SRCDIR

\set variants 'base_dien_dnn base_mean din_deepctr_torch din_fuxi_vocab din_misc_acts din_repo dien_deepctr_torch_augru dien_code_augru_tf dien_agru dien_aigru dien_gru_pooling dien_bilinear'
\set timed 0
\set explain ''
\i :abs_srcdir/sql/include/load_fixtures.sql

\i :abs_srcdir/sql/include/rank_checks.sql

SELECT count(*) FROM din_rank('{1,2}', '{3,4,5}', 0, 'din_repo');
SELECT count(*) FROM din_rank('{1,2}', NULL, 3, 'din_repo');
SELECT count(*) FROM din_rank('{1,2}', '{}', NULL, 'din_repo');
SELECT rank, ad_id FROM din_rank('{1,2}', '{5,5,3}', 10, 'din_repo') ORDER BY rank;
SELECT * FROM din_rank('{1,2}', '{3}', 1, 'din_repo') r
WHERE r.score IS DISTINCT FROM din_score('{1,2}', 3::bigint, 'din_repo');

-- errors
\set VERBOSITY sqlstate
SELECT * FROM din_rank('{1,2}', '{3,4}', -1, 'din_repo');
SELECT * FROM din_rank('{1,2}', '{3,NULL}', 1, 'din_repo');
SELECT * FROM din_rank('{1,2}', '{{3,4}}', 1, 'din_repo');
SELECT * FROM din_rank('{1,2}', '{3,4}', 1, 'no_such_model');
\set VERBOSITY default
SELECT * FROM din_rank('{1,2}', '{3,4}', -1, 'din_repo');
SELECT * FROM din_rank('{1,2}', '{3,NULL}', 1, 'din_repo');

SELECT din_drop(name) FROM din_models ORDER BY name;
