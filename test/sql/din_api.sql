-- din SQL API: import, score, explain, replace, export round trip, drop, default model.
-- Expected scores come from test/reference/make_tiny.py (an independent double-precision
-- forward pass); din computes in float32, so they are compared to 1e-6.
\getenv abs_srcdir PG_ABS_SRCDIR
\set din_file :abs_srcdir '/fixtures/tiny_din.safetensors'
\set base_file :abs_srcdir '/fixtures/tiny_base.safetensors'
\pset null '(null)'

-- the tables are extension configuration tables, so pg_dump keeps their rows
SELECT * FROM (SELECT unnest(extconfig)::regclass::text AS config_table,
                      unnest(extcondition) AS condition
               FROM pg_extension WHERE extname = 'din') s ORDER BY config_table;

-- import: the first version is 1; the id tensors go to din_vocab and din_items
SELECT din_import('tiny', pg_read_binary_file(:'din_file'), comment => 'tiny din');
SELECT name, architecture, version, comment, config->>'max_len' AS max_len,
       config->'context' AS context FROM din_models;
SELECT name, ord, dtype, shape, chunk, octet_length(data) AS bytes
FROM din_tensors WHERE model = 'tiny' ORDER BY ord, chunk;
SELECT item_id, attributes FROM din_items WHERE model = 'tiny' ORDER BY item_id;
SELECT field, raw_id, row_index FROM din_vocab WHERE model = 'tiny' ORDER BY row_index;

-- scores of one ad: max_len 3 keeps the tail; item 104 has no items row (cate -> zero);
-- user 7 is out of range (oov row 0); NULL and empty history are the same
CREATE TEMP TABLE cases (id int, history bigint[], ad bigint, ctx bigint[], dense float8[],
                         expected float8);
INSERT INTO cases VALUES
  (1, '{100,101,102}',         103, '{1}', '{0.5}', 0.618092300),
  (2, '{104,100,101,102,103}', 100, '{2}', '{-1}',  0.595258224),
  (3, '{}',                    101, '{3}', '{0}',   0.577971845),
  (4, NULL,                    101, '{3}', '{0}',   0.577971845),
  (5, '{103}',                 104, '{7}', '{2}',   0.694737968),
  (6, '{100,101,102}',         100, '{1}', '{0.5}', 0.531209373),
  (7, '{100,101,102}',         104, '{1}', '{0.5}', 0.710231838);
SELECT id, round(p::numeric, 6) AS p, abs(p - expected) < 1e-6 AS matches
FROM (SELECT id, expected, din_score(history, ad, 'tiny', ctx, dense) AS p FROM cases) s
ORDER BY id;

-- named arguments, NULL ad_id, history_time of the right length (unused by din)
SELECT round(din_score(history => '{100,101,102}', ad_id => 103, model => 'tiny',
                       context => '{1}', dense => '{0.5}')::numeric, 6) AS p;
SELECT din_score('{100}', NULL::bigint, 'tiny', '{1}', '{0.5}') AS p;
SELECT din_score('{100,101,102}', 103, 'tiny', '{1}', '{0.5}',
                 history_time => ARRAY[now(), now(), now()])
     = din_score('{100,101,102}', 103, 'tiny', '{1}', '{0.5}') AS same;

-- many candidates for one history: the same scores, in candidate order
SELECT array_agg(round(p::numeric, 6)) AS scores
FROM unnest(din_score('{100,101,102}', '{103,100,104}'::bigint[], 'tiny', '{1}', '{0.5}')) p;
SELECT din_score('{100,101,102}', '{103,100,104}'::bigint[], 'tiny', '{1}', '{0.5}')
     = ARRAY[din_score('{100,101,102}', 103, 'tiny', '{1}', '{0.5}'),
             din_score('{100,101,102}', 100, 'tiny', '{1}', '{0.5}'),
             din_score('{100,101,102}', 104, 'tiny', '{1}', '{0.5}')] AS same_as_scalar;
SELECT din_score('{100}', '{}'::bigint[], 'tiny', '{1}', '{0.5}') AS empty;
SELECT din_score('{100}', NULL::bigint[], 'tiny', '{1}', '{0.5}') AS null_candidates;

-- explain: raw attention scores (normalization none) of the kept behaviours
SELECT pos, item_id, round(weight::numeric, 6) AS weight
FROM din_explain('{104,100,101,102,103}', 100, 'tiny', '{2}', '{-1}') ORDER BY pos;
SELECT pos, item_id, round(weight::numeric, 6) AS weight
FROM din_explain('{100,101,102}', 104, 'tiny', '{1}', '{0.5}') ORDER BY pos;
SELECT count(*) FROM din_explain('{}', 100, 'tiny', '{2}', '{-1}');
SELECT count(*) FROM din_explain('{100}', NULL, 'tiny', '{2}', '{-1}');

-- a base model: ids are rows, oov zero; explain gives 1/len to each kept behaviour
SELECT din_import_file('tiny_base', :'base_file');
CREATE TEMP TABLE base_cases (id int, history bigint[], ad bigint, expected float8);
INSERT INTO base_cases VALUES
  (1, '{1,2,3}',       4, 0.327926375),
  (2, '{0,1,2,3,4,5}', 2, 0.359829107),
  (3, '{}',            5, 0.362163485),
  (4, '{9}',           9, 0.358239193),
  (5, '{1,2,3}',       0, 0.393858251);
SELECT id, round(p::numeric, 6) AS p, abs(p - expected) < 1e-6 AS matches
FROM (SELECT id, expected, din_score(history, ad, 'tiny_base') AS p FROM base_cases) s
ORDER BY id;
SELECT * FROM din_explain('{0,1,2,3,4,5}', 2, 'tiny_base') ORDER BY pos;

-- the default model
SHOW din.default_model;
SET din.default_model = 'tiny_base';
SELECT round(din_score('{1,2,3}', 4)::numeric, 6) AS p;
SELECT array_agg(round(p::numeric, 6)) AS p FROM unnest(din_score('{1,2,3}', '{4,0}'::bigint[])) p;
SELECT count(*) FROM din_explain('{1,2,3}', 4);
-- an explicit model wins over the default
SELECT round(din_score('{100,101,102}', 103, 'tiny', '{1}', '{0.5}')::numeric, 6) AS p;
RESET din.default_model;

-- one statement scoring many rows (the total is make_tiny.py's, 1430.468)
SELECT count(*), round(sum(din_score(ARRAY[g % 5 + 100, (g + 1) % 5 + 100], g % 5 + 100,
                                     'tiny', ARRAY[g % 4], ARRAY[g / 1000.0]))::numeric, 3) AS total
FROM generate_series(1, 2000) g;

-- replace: version and generation move, the cache follows within the session
SELECT generation AS gen1 FROM din_models WHERE name = 'tiny_base' \gset
SELECT din_import('tiny_base', pg_read_binary_file(:'din_file'), replace => true);
SELECT architecture, version, comment, generation > :gen1 AS new_generation
FROM din_models WHERE name = 'tiny_base';
SELECT round(din_score('{100,101,102}', 103, 'tiny_base', '{1}', '{0.5}')::numeric, 6) AS p;
SELECT count(*) AS old_rows_left FROM din_tensors WHERE model = 'tiny_base' AND name = 'tower.0.weight'
  AND shape = '{2,4}';
-- a rolled-back replace leaves the previous model in force, also for this backend's cache
BEGIN;
SELECT din_import('tiny_base', pg_read_binary_file(:'base_file'), replace => true);
SELECT round(din_score('{1,2,3}', 4, 'tiny_base')::numeric, 6) AS p_inside;
ROLLBACK;
SELECT version, architecture FROM din_models WHERE name = 'tiny_base';
SELECT round(din_score('{100,101,102}', 103, 'tiny_base', '{1}', '{0.5}')::numeric, 6) AS p_after;
SELECT din_import('tiny_base', pg_read_binary_file(:'base_file'), replace => true);
SELECT round(din_score('{1,2,3}', 4, 'tiny_base')::numeric, 6) AS p;

-- export: weights first, then vocab.*, then items.*; re-importing gives the same scores
SELECT din_import('tiny_copy', din_export('tiny'));
SELECT din_export('tiny') = din_export('tiny_copy') AS same_file,
       din_export('tiny') = pg_read_binary_file(:'din_file') AS byte_identical_to_original;
SELECT name, ord FROM din_tensors WHERE model = 'tiny_copy' ORDER BY ord;
SELECT (SELECT array_agg(item_id ORDER BY item_id) FROM din_items WHERE model = 'tiny_copy') AS items,
       (SELECT array_agg(raw_id ORDER BY row_index) FROM din_vocab WHERE model = 'tiny_copy') AS vocab;
SELECT bool_and(din_score(history, ad, 'tiny', ctx, dense)
                = din_score(history, ad, 'tiny_copy', ctx, dense)) AS same_scores FROM cases;
SELECT (SELECT config FROM din_models WHERE name = 'tiny')
     = (SELECT config FROM din_models WHERE name = 'tiny_copy') AS same_config;

-- a model above 16 MB is stored in chunks and comes back whole: every embedding is 1.0 except
-- the last row's (2.0, in the second chunk); head weights 1.0, bias 0.5
CREATE FUNCTION pg_temp.le64(n bigint) RETURNS bytea LANGUAGE sql AS $$
  SELECT decode(string_agg(lpad(to_hex((n >> (8 * i)) & 255), 2, '0'), '' ORDER BY i), 'hex')
  FROM generate_series(0, 7) i $$;
CREATE TEMP TABLE big AS
SELECT pg_temp.le64(octet_length(h)) || h
       || decode(repeat('0000803f', 4399996) || repeat('00000040', 4)
                 || repeat('0000803f', 4) || '0000003f', 'hex') AS file
FROM (SELECT convert_to(jsonb_build_object(
        '__metadata__', jsonb_build_object('din.config', jsonb_build_object(
            'format', 1, 'architecture', 'base', 'max_len', 5,
            'fields', jsonb_build_array(jsonb_build_object('name', 'item', 'rows', 1100000, 'dim', 4)),
            'target', jsonb_build_array('item'), 'behaviour', jsonb_build_array('item'),
            'tower', jsonb_build_object('inputs', jsonb_build_array('target'),
                                        'head', jsonb_build_object('type', 'sigmoid')))::text),
        'fields.item.weight', jsonb_build_object('dtype', 'F32', 'shape', jsonb_build_array(1100000, 4),
                                                 'data_offsets', jsonb_build_array(0, 17600000)),
        'head.weight', jsonb_build_object('dtype', 'F32', 'shape', jsonb_build_array(1, 4),
                                          'data_offsets', jsonb_build_array(17600000, 17600016)),
        'head.bias', jsonb_build_object('dtype', 'F32', 'shape', jsonb_build_array(1),
                                        'data_offsets', jsonb_build_array(17600016, 17600020))
      )::text, 'UTF8') AS h) s;
SELECT din_import('big', file) FROM big;
SELECT name, chunk, octet_length(data) AS bytes FROM din_tensors WHERE model = 'big' ORDER BY ord, chunk;
SELECT round(din_score('{1,2}', 0, 'big')::numeric, 6) AS p_first,
       round(din_score('{1,2}', 1099999, 'big')::numeric, 6) AS p_last;
SELECT din_import('big2', din_export('big'));
SELECT md5(din_export('big')) = md5(din_export('big2')) AS round_trip,
       din_score('{}', 1099999, 'big2') = din_score('{}', 1099999, 'big') AS same_score;
SELECT din_drop('big'), din_drop('big2');

-- drop: true once, then false; the rows go with the model
SELECT din_drop('tiny_copy');
SELECT din_drop('tiny_copy');
SELECT (SELECT count(*) FROM din_tensors WHERE model = 'tiny_copy') AS tensors,
       (SELECT count(*) FROM din_items WHERE model = 'tiny_copy') AS items,
       (SELECT count(*) FROM din_vocab WHERE model = 'tiny_copy') AS vocab;
SELECT name, version FROM din_models ORDER BY name;
SELECT din_drop('tiny'), din_drop('tiny_base');
SELECT count(*) FROM din_models;
