-- Reuse of a history's work across the calls of one call site (din.history_cache_size): every
-- score equals, to the bit (float8send), the score computed afresh with reuse off, for every
-- architecture, with a user's rows together or interleaved; a different at, context, model or
-- model version never reuses a state.
\getenv abs_srcdir PG_ABS_SRCDIR
\set variants 'dsin_deepctr bst_timegap_prenorm bst_rechub'
\set timed 1
\set explain 'none'
\i :abs_srcdir/sql/include/load_fixtures.sql
-- the architectures without times: the same rows, history_time and at NULL
DO $$
DECLARE
    v text;
    dir text := current_setting('din_test.dir');
BEGIN
    FOREACH v IN ARRAY '{din_repo,din_deepctr_torch,base_dien_dnn,dien_deepctr_torch_augru,dien_gru_pooling}'::text[] LOOP
        PERFORM din_import(v, pg_read_binary_file(dir || v || '.safetensors'));
        EXECUTE format('COPY fixture_load (id, history, ad_id, context, dense, expected) FROM %L'
                       ' WITH (FORMAT csv, HEADER)', dir || v || '.csv');
        INSERT INTO fixture
        SELECT v, id, history, ad_id, context, dense, NULL, NULL, expected FROM fixture_load;
        TRUNCATE fixture_load;
    END LOOP;
END
$$;
SHOW din.history_cache_size;

-- every history with three candidates: its own ad and the ads of two other rows
CREATE TEMP TABLE imp AS
SELECT f.variant, f.id, k, f.history, f.history_time, f.at, f.context, f.dense, g.ad_id AS ad
FROM fixture f CROSS JOIN generate_series(0, 2) k
     JOIN fixture g ON g.variant = f.variant AND g.id = (f.id + 37 * k - 1) % 300 + 1;
SELECT variant, count(*) AS impressions, count(DISTINCT history) AS histories
FROM imp GROUP BY variant ORDER BY variant;

-- scores of imp's rows in a given order, through one call site whose model changes per variant
CREATE FUNCTION pg_temp.scores(order_by text)
RETURNS TABLE (variant text, id int, k int, s bytea) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT variant, id, k, float8send(din_score(history, ad, variant, context, dense,'
        ' history_time, at)) FROM (SELECT * FROM imp ORDER BY %s) i', order_by);
END $$;
SET din.history_cache_size = 0;
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.scores('variant, id, k');
RESET din.history_cache_size;
CREATE TEMP TABLE together AS SELECT * FROM pg_temp.scores('variant, id, k');
CREATE TEMP TABLE interleaved AS SELECT * FROM pg_temp.scores('variant, k, id');
-- a limit smaller than most states: those are not kept, the others are dropped oldest first
SET din.history_cache_size = 8;
CREATE TEMP TABLE small AS SELECT * FROM pg_temp.scores('variant, k, id');
RESET din.history_cache_size;
SELECT f.variant, count(*) AS scores,
       count(*) FILTER (WHERE t.s = f.s) AS together_equal,
       count(*) FILTER (WHERE i.s = f.s) AS interleaved_equal,
       count(*) FILTER (WHERE m.s = f.s) AS small_limit_equal
FROM fresh f JOIN together t USING (variant, id, k) JOIN interleaved i USING (variant, id, k)
     JOIN small m USING (variant, id, k)
GROUP BY f.variant ORDER BY f.variant;

-- the array form and din_explain reuse states too; the weights equal those computed afresh
CREATE FUNCTION pg_temp.explained()
RETURNS TABLE (variant text, id int, k int, pos int, w bytea) LANGUAGE sql AS $$
SELECT variant, id, k, e.pos, float8send(e.weight)
FROM (SELECT * FROM imp WHERE variant IN ('din_repo', 'dsin_deepctr', 'bst_rechub')
      ORDER BY variant, k, id) i,
     din_explain(history, ad, variant, context, dense, history_time, at) e $$;
SET din.history_cache_size = 0;
CREATE TEMP TABLE explain_fresh AS SELECT * FROM pg_temp.explained();
RESET din.history_cache_size;
SELECT count(*) AS weights, count(*) FILTER (WHERE r.w = f.w) AS equal
FROM explain_fresh f JOIN pg_temp.explained() r USING (variant, id, k, pos);
SELECT count(*) AS scores,
       count(*) FILTER (WHERE float8send(a.s) = f.s) AS array_equal
FROM (SELECT i.variant, i.id, c.k - 1 AS k, c.s
      FROM (SELECT variant, id, history, history_time, at, context, dense,
                   array_agg(ad ORDER BY k) AS ads
            FROM imp GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY id, variant) i,
           unnest(din_score(history, ads, variant, context, dense, history_time, at))
               WITH ORDINALITY c(s, k)) a
     JOIN fresh f USING (variant, id, k);

-- a different at or context is never served another's state: one DSIN history scored at
-- times that keep fewer sessions, alternating with its original at, and one DIN history with
-- different users, each score as computed afresh
CREATE TEMP TABLE varied AS
SELECT variant, id, n, history, history_time, context,
       CASE WHEN n % 2 = 0 THEN at ELSE history_time[cardinality(history_time) * n / 8 + 1] END AS at,
       ad_id AS ad
FROM fixture CROSS JOIN generate_series(0, 7) n
WHERE variant = 'dsin_deepctr' AND id = (SELECT id FROM fixture WHERE variant = 'dsin_deepctr'
                                         ORDER BY cardinality(history) DESC NULLS LAST, id LIMIT 1)
UNION ALL
SELECT variant, id, n, history, NULL, ARRAY[n * 11 + 1]::bigint[], NULL, ad_id
FROM fixture CROSS JOIN generate_series(0, 7) n WHERE variant = 'din_deepctr_torch' AND id = 5;
CREATE FUNCTION pg_temp.varied()
RETURNS TABLE (variant text, n int, s bytea) LANGUAGE sql AS $$
SELECT variant, n, float8send(din_score(history, ad, variant, context, NULL, history_time, at))
FROM (SELECT * FROM varied ORDER BY variant, n) v $$;
SET din.history_cache_size = 0;
CREATE TEMP TABLE varied_fresh AS SELECT * FROM pg_temp.varied();
RESET din.history_cache_size;
SELECT variant, count(*) AS scores, count(DISTINCT f.s) AS distinct_scores,
       count(*) FILTER (WHERE r.s = f.s) AS equal
FROM varied_fresh f JOIN pg_temp.varied() r USING (variant, n)
GROUP BY variant ORDER BY variant;

-- a model replaced between two calls of one call site (a PL/pgSQL loop keeps its expression,
-- so its states, for the transaction): the second call scores with the new model, here of
-- another architecture (din, then dien, same inputs) or of the same one with other weights
-- (two DSINs)
CREATE TEMP TABLE swap (model text, old text, new text, id int);
INSERT INTO swap
SELECT 'swap_' || old, old, new,
       (SELECT id FROM fixture WHERE variant = old ORDER BY cardinality(history) DESC NULLS LAST, id LIMIT 1)
FROM (VALUES ('din_deepctr_torch', 'dien_deepctr_torch_augru'),
             ('dsin_deepctr', 'dsin_bias_ln')) v(old, new);
SELECT din_import(model, pg_read_binary_file(:'dir' || old || '.safetensors')) FROM swap;
SELECT din_import(new, pg_read_binary_file(:'dir' || new || '.safetensors'))
FROM swap WHERE new NOT IN (SELECT variant FROM fixture);
CREATE TEMP TABLE swapped (model text, turn int, s float8);
DO $$
DECLARE
    r record;
    dir text := current_setting('din_test.dir');
BEGIN
    FOR r IN SELECT * FROM swap JOIN fixture f ON f.variant = old AND f.id = swap.id LOOP
        FOR turn IN 1..2 LOOP
            INSERT INTO swapped VALUES (r.model, turn,
                din_score(r.history, r.ad_id, r.model, r.context, NULL, r.history_time, r.at));
            IF turn = 1 THEN
                PERFORM din_import(r.model, pg_read_binary_file(dir || r.new || '.safetensors'),
                                   replace => true);
            END IF;
        END LOOP;
    END LOOP;
END
$$;
SELECT w.model, w.turn, float8send(w.s) = float8send(o.s) AS old_model,
       float8send(w.s) = float8send(n.s) AS new_model, o.s <> n.s AS models_differ
FROM swapped w JOIN swap USING (model) JOIN fixture f ON f.variant = old AND f.id = swap.id,
     LATERAL din_score(f.history, f.ad_id, old, f.context, NULL, f.history_time, f.at) o(s),
     LATERAL din_score(f.history, f.ad_id, new, f.context, NULL, f.history_time, f.at) n(s)
ORDER BY w.model, w.turn;

SET din.history_cache_size = -1;
SELECT name, setting, unit, context FROM pg_settings WHERE name = 'din.history_cache_size';

SELECT count(din_drop(name)) AS dropped FROM din_models;
