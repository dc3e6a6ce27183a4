-- DIEN through SQL against the PyTorch reference (test/reference/make_fixtures.py): six
-- variants (paper and code AUGRU, AGRU, AIGRU, GRU + attention pooling, bilinear attention; both
-- GRU conventions), 300 rows each, probabilities and attention weights equal to 1e-5 relative;
-- then DIEN files din refuses at import.
\getenv abs_srcdir PG_ABS_SRCDIR
\set bad :abs_srcdir '/fixtures/bad_dien/'
\set SHOW_CONTEXT never

\set variants 'dien_agru dien_aigru dien_bilinear dien_code_augru_tf dien_deepctr_torch_augru dien_gru_pooling'
\set timed 0
\set explain '%'
\i :abs_srcdir/sql/include/load_fixtures.sql

SELECT variant, architecture, config->'evolution'->>'type' AS evolution,
       config->'sequence'->>'convention' AS convention, count(*) AS rows,
       count(*) FILTER (WHERE cardinality(history) IS NULL OR cardinality(history) = 0) AS empty,
       count(*) FILTER (WHERE cardinality(history) = 1) AS one,
       count(*) FILTER (WHERE cardinality(history) > (config->>'max_len')::int) AS over_long
FROM fixture JOIN din_models ON name = variant
GROUP BY variant, architecture, config ORDER BY variant;

-- per-row scores: every row within 1e-5 relative of the reference
SELECT variant, count(*) AS rows,
       count(*) FILTER (WHERE abs(p - expected) > 1e-5 * abs(expected)) AS mismatches
FROM (SELECT variant, expected,
             din_score(history, ad_id, model => variant, context => context, dense => dense) AS p
      FROM fixture) s
GROUP BY variant ORDER BY variant;

-- the array form: three candidates in one call, each scored as it is alone
SELECT variant, count(*) AS rows,
       count(*) FILTER (WHERE abs(p[1] - expected) > 1e-5 * abs(expected)
                           OR abs(p[2] - expected) > 1e-5 * abs(expected)
                           OR abs(p[3] - expected) > 1e-5 * abs(expected)) AS mismatches
FROM (SELECT variant, expected,
             din_score(history, ARRAY[ad_id, ad_id, ad_id], model => variant,
                       context => context, dense => dense) AS p
      FROM fixture) s
GROUP BY variant ORDER BY variant;

-- din_explain: the attention weight of each kept behaviour
SELECT e.variant, count(*) AS weights,
       count(*) FILTER (WHERE x.weight IS NULL
                           OR abs(x.weight - e.weight) > 1e-5 * greatest(1, abs(e.weight)))
           AS mismatches
FROM explain_fixture e
JOIN fixture f USING (variant, id)
LEFT JOIN LATERAL din_explain(f.history, f.ad_id, model => f.variant, context => f.context,
                              dense => f.dense) x ON x.pos = e.pos
GROUP BY e.variant ORDER BY e.variant;

-- softmax weights sum to 1 over the kept behaviours (AIGRU's are raw scores)
SELECT f.variant, count(DISTINCT f.id) AS rows,
       count(DISTINCT f.id) FILTER (WHERE abs(s.total - 1) > 1e-5) AS not_normalized
FROM fixture f
CROSS JOIN LATERAL (SELECT sum(weight) AS total
                    FROM din_explain(f.history, f.ad_id, model => f.variant,
                                     context => f.context, dense => f.dense)) s
WHERE f.variant <> 'dien_aigru' AND cardinality(f.history) > 0
GROUP BY f.variant ORDER BY f.variant;

-- export and re-import: identical scores
SELECT din_import('dien_copy', din_export('dien_code_augru_tf'));
SELECT count(*) AS rows,
       count(*) FILTER (WHERE din_score(history, ad_id, 'dien_code_augru_tf', context, dense)
                        IS DISTINCT FROM din_score(history, ad_id, 'dien_copy', context, dense))
           AS different
FROM fixture WHERE variant = 'dien_code_augru_tf';

-- files din refuses (fixtures/bad_dien/README.md)
SELECT din_import('bad', pg_read_binary_file(:'bad' || 'evolution_type.safetensors'));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('bad', pg_read_binary_file(:'bad' || 'form_on_agru.safetensors'));
SELECT din_import('bad', pg_read_binary_file(:'bad' || 'query_width.safetensors'));
SELECT din_import('bad', pg_read_binary_file(:'bad' || 'missing_gru_bias.safetensors'));
SELECT din_import('bad', pg_read_binary_file(:'bad' || 'wrong_convention.safetensors'));
SELECT din_import('bad', pg_read_binary_file(:'bad' || 'aux_net_tensor.safetensors'));
SELECT din_import('bad', pg_read_binary_file(:'bad' || 'attention_input.safetensors'));
SELECT din_import('bad', pg_read_binary_file(:'bad' || 'sequence_on_din.safetensors'));
SELECT count(*) AS bad_models FROM din_models WHERE name = 'bad';

SELECT din_drop(name) FROM din_models ORDER BY name;
