-- DSIN through SQL against the PyTorch reference (test/reference/make_fixtures.py): two
-- variants (DeepCTR as shipped; the paper's bias encoding + layer norm form), 300 rows each with
-- history_time and at, probabilities and per-session weights equal to 1e-5 relative; then the
-- errors of timed histories.
\getenv abs_srcdir PG_ABS_SRCDIR
\set SHOW_CONTEXT never

\set variants 'dsin_deepctr dsin_bias_ln'
\set timed 1
\set explain '%'
\i :abs_srcdir/sql/include/load_fixtures.sql

SELECT variant, architecture, config->'extractor'->>'encoding' AS encoding,
       config->'interacting'->>'recurrent_activation' AS recurrent, count(*) AS rows,
       count(*) FILTER (WHERE coalesce(cardinality(history), 0) = 0) AS empty
FROM fixture JOIN din_models ON name = variant
GROUP BY variant, architecture, config ORDER BY variant;

-- per-row scores within 1e-5 relative of the reference
SELECT variant, count(*) AS rows,
       count(*) FILTER (WHERE abs(p - expected) > 1e-5 * abs(expected)) AS mismatches
FROM (SELECT variant, expected,
             din_score(history, ad_id, model => variant, context => context,
                       history_time => history_time, at => at) AS p
      FROM fixture) s
GROUP BY variant ORDER BY variant;

-- the array form: three candidates at once, each scored as it is alone
SELECT variant, count(*) AS rows,
       count(*) FILTER (WHERE abs(p[1] - expected) > 1e-5 * abs(expected)
                           OR abs(p[3] - expected) > 1e-5 * abs(expected)) AS mismatches
FROM (SELECT variant, expected,
             din_score(history, ARRAY[ad_id, ad_id, ad_id], model => variant, context => context,
                       history_time => history_time, at => at) AS p
      FROM fixture) s
GROUP BY variant ORDER BY variant;

-- din_explain: each behaviour carries its session's weight (0 outside the kept sessions)
SELECT e.variant, count(*) AS weights,
       count(*) FILTER (WHERE x.weight IS NULL
                           OR abs(x.weight - e.weight) > 1e-5 * greatest(1, abs(e.weight)))
           AS mismatches
FROM explain_fixture e
JOIN fixture f USING (variant, id)
LEFT JOIN LATERAL din_explain(f.history, f.ad_id, model => f.variant, context => f.context,
                              history_time => f.history_time, at => f.at) x ON x.pos = e.pos
GROUP BY e.variant ORDER BY e.variant;

-- session boundaries: 30 minutes stays in a session, 30 minutes and 1 us starts a new one
SELECT pos, weight > 0 AS kept,
       weight = first_value(weight) OVER (ORDER BY pos) AS same_as_first
FROM din_explain(ARRAY[1, 2, 3, 4]::bigint[], 5, 'dsin_deepctr', ARRAY[1]::bigint[],
                 history_time => ARRAY['2017-11-25 10:00', '2017-11-25 10:30',
                                       '2017-11-25 11:00:00.000001',
                                       '2017-11-25 11:05']::timestamptz[],
                 at => '2017-11-26')
ORDER BY pos;

-- errors: no times, times out of order, lengths differ, a NULL time
SELECT din_score(ARRAY[1, 2]::bigint[], 5, 'dsin_deepctr', ARRAY[1]::bigint[]);
SELECT din_score(ARRAY[1, 2, 3]::bigint[], 5, 'dsin_deepctr', ARRAY[1]::bigint[],
                 history_time => ARRAY['2017-11-25 10:00', '2017-11-25 10:05',
                                       '2017-11-25 10:01']::timestamptz[]);
SELECT din_score(ARRAY[1, 2]::bigint[], 5, 'dsin_deepctr', ARRAY[1]::bigint[],
                 history_time => ARRAY['2017-11-25 10:00']::timestamptz[]);
SELECT din_score(ARRAY[1, 2]::bigint[], 5, 'dsin_deepctr', ARRAY[1]::bigint[],
                 history_time => ARRAY['2017-11-25 10:00', NULL]::timestamptz[]);
-- an empty history needs no times
SELECT din_score(ARRAY[]::bigint[], 5, 'dsin_deepctr', ARRAY[1]::bigint[]) > 0 AS scored;

SELECT din_drop('dsin_deepctr'), din_drop('dsin_bias_ln');
