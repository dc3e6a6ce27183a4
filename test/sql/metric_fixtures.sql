-- The metrics against scikit-learn 1.2 (test/reference/make_metric_fixtures.py): auc is
-- roc_auc_score, logloss is log_loss(eps=1e-15), gauc/gauc_clicks are computed user by user
-- from roc_auc_score. Every value must agree to 1e-12; NULL where scikit-learn has no value.
\getenv abs_srcdir PG_ABS_SRCDIR
\set cases :abs_srcdir '/fixtures/metrics/cases.csv'
\set expected :abs_srcdir '/fixtures/metrics/expected.csv'
CREATE TEMP TABLE metric_rows (case_name text, user_id bigint, score float8, label integer);
COPY metric_rows FROM :'cases' (FORMAT csv, HEADER true);
CREATE TEMP TABLE metric_expected (case_name text, rows integer, auc float8, gauc float8,
    gauc_clicks float8, logloss float8);
COPY metric_expected FROM :'expected' (FORMAT csv, HEADER true);
CREATE TEMP TABLE metric_got AS
SELECT r.case_name, count(*)::integer AS rows,
       auc(r.score, r.label::boolean) AS auc,
       gauc(r.user_id, r.score, r.label::boolean) AS gauc,
       gauc_clicks(r.user_id, r.score, r.label::boolean) AS gauc_clicks,
       logloss(r.score, r.label::boolean) FILTER (WHERE e.logloss IS NOT NULL) AS logloss,
       auc(r.score, r.label) IS NOT DISTINCT FROM auc(r.score, r.label::boolean)
           AND auc(r.score, r.label::smallint) IS NOT DISTINCT FROM auc(r.score, r.label::boolean)
           AND gauc(r.user_id, r.score, r.label) IS NOT DISTINCT FROM gauc(r.user_id, r.score, r.label::boolean)
           AND gauc_clicks(r.user_id, r.score, r.label::smallint) IS NOT DISTINCT FROM gauc_clicks(r.user_id, r.score, r.label::boolean)
           AS int_labels_agree
FROM metric_rows r JOIN metric_expected e USING (case_name)
GROUP BY r.case_name;
CREATE FUNCTION pg_temp.agrees(got float8, want float8) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN want IS NULL THEN got IS NULL ELSE abs(got - want) <= 1e-12 END $$;
-- one line per case: every flag true
SELECT case_name, g.rows = e.rows AS rows,
       pg_temp.agrees(g.auc, e.auc) AS auc, pg_temp.agrees(g.gauc, e.gauc) AS gauc,
       pg_temp.agrees(g.gauc_clicks, e.gauc_clicks) AS gauc_clicks,
       pg_temp.agrees(g.logloss, e.logloss) AS logloss, g.int_labels_agree
FROM metric_got g JOIN metric_expected e USING (case_name) ORDER BY case_name;
-- the values themselves, to 10 decimals
SELECT case_name, round(auc::numeric, 10) AS auc, round(gauc::numeric, 10) AS gauc,
       round(gauc_clicks::numeric, 10) AS gauc_clicks, round(logloss::numeric, 10) AS logloss
FROM metric_got ORDER BY case_name;
-- the largest differences from scikit-learn
SELECT max(abs(g.auc - e.auc)) <= 1e-12 AS auc, max(abs(g.gauc - e.gauc)) <= 1e-12 AS gauc,
       max(abs(g.gauc_clicks - e.gauc_clicks)) <= 1e-12 AS gauc_clicks,
       max(abs(g.logloss - e.logloss)) <= 1e-12 AS logloss
FROM metric_got g JOIN metric_expected e USING (case_name);
-- one user: gauc equals auc
SELECT gauc = auc AS one_user_gauc_is_auc FROM metric_got WHERE case_name = 'one_user';
