-- BST through SQL against the PyTorch reference (test/reference/make_fixtures.py): five
-- variants (torch-rechub, FuxiCTR, DeepCTR, the paper's time-gap positions with pre-norm,
-- DeepCTR's mean over all padded slots), 300 rows each, probabilities and attention weights
-- equal to 1e-5 relative, times passed as history_time and at; then what din refuses.
\getenv abs_srcdir PG_ABS_SRCDIR
\set SHOW_CONTEXT never

\set variants 'bst_deepctr bst_deepctr_mean_all bst_fuxi bst_rechub bst_timegap_prenorm'
\set timed 1
\set explain '%'
\i :abs_srcdir/sql/include/load_fixtures.sql

SELECT variant, architecture, config->'transformer'->>'layout' AS layout,
       config->'transformer'->>'readout' AS readout, count(*) AS rows,
       count(*) FILTER (WHERE cardinality(history) IS NULL OR cardinality(history) = 0) AS empty,
       count(*) FILTER (WHERE cardinality(history) = 1) AS one,
       count(*) FILTER (WHERE cardinality(history) > (config->>'max_len')::int) AS over_long,
       count(history_time) AS timed
FROM fixture JOIN din_models ON name = variant
GROUP BY variant, architecture, config ORDER BY variant;

-- per-row scores: every row within 1e-5 relative of the reference
SELECT variant, count(*) AS rows,
       count(*) FILTER (WHERE abs(p - expected) > 1e-5 * abs(expected)) AS mismatches
FROM (SELECT variant, expected,
             din_score(history, ad_id, model => variant, context => context, dense => dense,
                       history_time => history_time, at => at) AS p
      FROM fixture) s
GROUP BY variant ORDER BY variant;

-- the array form: three candidates in one call (the behaviours' block-0 projections are
-- shared), each scored as it is alone
SELECT variant, count(*) AS rows,
       count(*) FILTER (WHERE abs(p[1] - expected) > 1e-5 * abs(expected)
                           OR abs(p[2] - expected) > 1e-5 * abs(expected)
                           OR abs(p[3] - expected) > 1e-5 * abs(expected)) AS mismatches
FROM (SELECT variant, expected,
             din_score(history, ARRAY[ad_id, ad_id, ad_id], model => variant,
                       context => context, dense => dense, history_time => history_time,
                       at => at) AS p
      FROM fixture) s
GROUP BY variant ORDER BY variant;

-- din_explain: the target's last-block attention over the behaviours (head average), or the
-- DIN pooling weights (bst_deepctr), or 1/max_len (bst_deepctr_mean_all)
SELECT e.variant, count(*) AS weights,
       count(*) FILTER (WHERE x.weight IS NULL
                           OR abs(x.weight - e.weight) > 1e-5 * greatest(1, abs(e.weight)))
           AS mismatches
FROM explain_fixture e
JOIN fixture f USING (variant, id)
LEFT JOIN LATERAL din_explain(f.history, f.ad_id, model => f.variant, context => f.context,
                              dense => f.dense, history_time => f.history_time,
                              at => f.at) x ON x.pos = e.pos
GROUP BY e.variant ORDER BY e.variant;

-- the target keeps part of its attention for itself: weights over the behaviours sum below 1
SELECT f.variant, count(DISTINCT f.id) AS rows,
       count(DISTINCT f.id) FILTER (WHERE s.total >= 1 OR s.total <= 0) AS outside
FROM fixture f
CROSS JOIN LATERAL (SELECT sum(weight) AS total
                    FROM din_explain(f.history, f.ad_id, model => f.variant,
                                     context => f.context, dense => f.dense,
                                     history_time => f.history_time, at => f.at)) s
WHERE f.variant IN ('bst_rechub', 'bst_fuxi') AND cardinality(f.history) > 0
GROUP BY f.variant ORDER BY f.variant;

-- export and re-import: identical scores
SELECT din_import('bst_copy', din_export('bst_timegap_prenorm'));
SELECT count(*) AS rows,
       count(*) FILTER (WHERE din_score(history, ad_id, 'bst_timegap_prenorm',
                                        history_time => history_time, at => at)
                        IS DISTINCT FROM din_score(history, ad_id, 'bst_copy',
                                                   history_time => history_time, at => at))
           AS different
FROM fixture WHERE variant = 'bst_timegap_prenorm';

-- time gaps move the score: the same history seen a month later
SELECT din_score(ARRAY[5, 6, 7], 8, 'bst_timegap_prenorm',
                 history_time => ARRAY['2025-01-01 10:00+00', '2025-01-01 11:00+00',
                                       '2025-01-01 12:00+00']::timestamptz[],
                 at => '2025-01-01 12:05+00')
       <> din_score(ARRAY[5, 6, 7], 8, 'bst_timegap_prenorm',
                    history_time => ARRAY['2025-01-01 10:00+00', '2025-01-01 11:00+00',
                                          '2025-01-01 12:00+00']::timestamptz[],
                    at => '2025-02-01 12:05+00') AS time_matters;
-- index-position models ignore the times
SELECT din_score(ARRAY[5, 6], 8, 'bst_rechub', ARRAY[3],
                 history_time => ARRAY[now(), now()]) =
       din_score(ARRAY[5, 6], 8, 'bst_rechub', ARRAY[3]) AS times_ignored;
-- an empty history needs no times
SELECT din_score('{}'::bigint[], 8, 'bst_timegap_prenorm') > 0 AS empty_ok;
-- mean_all: an empty history still pools max_len padded slots, and every kept behaviour
-- weighs 1/max_len (here 1/7)
SELECT din_score(ARRAY[5, 6], 8, 'bst_deepctr_mean_all', ARRAY[3])
       <> din_score('{}'::bigint[], 8, 'bst_deepctr_mean_all', ARRAY[3]) AS history_matters,
       (SELECT array_agg(weight::numeric(10, 8) ORDER BY pos)
        FROM din_explain(ARRAY[5, 6], 8, 'bst_deepctr_mean_all', ARRAY[3])) AS weights;

-- errors: a time-gap model without history_time (one candidate, many), mismatched lengths
SELECT din_score(ARRAY[5, 6, 7], 8, 'bst_timegap_prenorm');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score(ARRAY[5, 6, 7], ARRAY[8, 9], 'bst_timegap_prenorm');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score(ARRAY[5, 6, 7], 8, 'bst_timegap_prenorm', history_time => ARRAY[now()]);
\echo :LAST_ERROR_SQLSTATE

SELECT din_drop(name) FROM din_models ORDER BY name;
