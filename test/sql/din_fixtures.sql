-- din_score and din_explain against the PyTorch reference (test/reference/make_fixtures.py):
-- six model variants, 300 rows each (empty, length-1, full and over-long histories, unknown
-- ids under each oov rule), probabilities and attention weights equal to 1e-5 relative.
\getenv abs_srcdir PG_ABS_SRCDIR

\set variants 'base_dien_dnn base_mean din_deepctr_torch din_fuxi_vocab din_misc_acts din_repo'
\set timed 0
\set explain 'din%'
\i :abs_srcdir/sql/include/load_fixtures.sql

SELECT variant, architecture, count(*) AS rows,
       count(*) FILTER (WHERE cardinality(history) IS NULL OR cardinality(history) = 0) AS empty,
       count(*) FILTER (WHERE cardinality(history) > (config->>'max_len')::int) AS over_long
FROM fixture JOIN din_models ON name = variant
GROUP BY variant, architecture ORDER BY variant;

-- per-row scores: every row within 1e-5 relative of the reference
SELECT variant, count(*) AS rows,
       count(*) FILTER (WHERE abs(p - expected) > 1e-5 * abs(expected)) AS mismatches
FROM (SELECT variant, expected,
             din_score(history, ad_id, model => variant, context => context, dense => dense) AS p
      FROM fixture) s
GROUP BY variant ORDER BY variant;

-- the array form gives the same scores, candidate by candidate
SELECT variant, count(*) AS rows,
       count(*) FILTER (WHERE abs(p[1] - expected) > 1e-5 * abs(expected)
                           OR abs(p[2] - expected) > 1e-5 * abs(expected)) AS mismatches
FROM (SELECT variant, expected,
             din_score(history, ARRAY[ad_id, ad_id], model => variant, context => context,
                       dense => dense) AS p
      FROM fixture) s
GROUP BY variant ORDER BY variant;

-- attention weights of din_explain, behaviour by behaviour
SELECT e.variant, count(*) AS weights,
       count(*) FILTER (WHERE x.weight IS NULL
                           OR abs(x.weight - e.weight) > 1e-5 * greatest(1, abs(e.weight)))
           AS mismatches
FROM explain_fixture e
JOIN fixture f USING (variant, id)
LEFT JOIN LATERAL din_explain(f.history, f.ad_id, model => f.variant, context => f.context,
                              dense => f.dense) x ON x.pos = e.pos
GROUP BY e.variant ORDER BY e.variant;

-- din_explain names each kept behaviour: over-long histories keep the most recent max_len
SELECT f.variant, count(*) AS rows,
       count(*) FILTER (WHERE x.item_id <> f.history[x.pos]) AS wrong_item,
       count(*) FILTER (WHERE x.pos <= cardinality(f.history) - (m.config->>'max_len')::int)
           AS dropped_kept
FROM fixture f
JOIN din_models m ON m.name = f.variant
CROSS JOIN LATERAL din_explain(f.history, f.ad_id, model => f.variant, context => f.context,
                               dense => f.dense) x
WHERE f.variant LIKE 'din%'
GROUP BY f.variant ORDER BY f.variant;

-- export and re-import: identical scores
SELECT din_import('din_repo_copy', din_export('din_repo'));
SELECT count(*) AS rows,
       count(*) FILTER (WHERE din_score(history, ad_id, 'din_repo', context, dense)
                        IS DISTINCT FROM din_score(history, ad_id, 'din_repo_copy', context, dense))
           AS different
FROM fixture WHERE variant = 'din_repo';

SELECT din_drop(name) FROM din_models ORDER BY name;
