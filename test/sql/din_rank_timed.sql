-- din_rank and the array form of din_score against per-row din_score on the fixture models
-- that read behaviour times (DSIN sessions, BST time positions): the checks of din_rank.sql.
\getenv abs_srcdir PG_ABS_SRCDIR

\set variants 'dsin_deepctr dsin_bias_ln bst_rechub bst_fuxi bst_deepctr bst_timegap_prenorm bst_deepctr_mean_all'
\set timed 1
\set explain ''
\i :abs_srcdir/sql/include/load_fixtures.sql

\i :abs_srcdir/sql/include/rank_checks.sql

SELECT din_drop(name) FROM din_models ORDER BY name;
