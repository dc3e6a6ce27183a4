-- fields[].padding_id (docs/FORMAT.md "fields"): a history holding the id the trainer padded
-- its histories with fails under the item field's oov "error", else gives one NOTICE per call
-- site and the score it gave before the key existed. A converted DeepCTR-Torch DIN (max_len
-- 10, id 0 is padding), and a copy of it whose config lacks the key.
\getenv abs_srcdir PG_ABS_SRCDIR
\set peer :abs_srcdir '/fixtures/peer/deepctr-torch/din_dice.safetensors'
\set SHOW_CONTEXT never
SELECT din_import('pad', pg_read_binary_file(:'peer')) AS pad,
       din_import('nopad', pg_read_binary_file(:'peer')) AS nopad;
UPDATE din_models SET config = config #- '{fields,0,padding_id}' WHERE name = 'nopad';
SELECT name, config->'fields'->0 AS item_field FROM din_models ORDER BY name;

CREATE TEMP TABLE h (id int, history bigint[]);
INSERT INTO h VALUES (1, '{21,793}'), (2, '{0,0,21,793}'), (3, '{942,152,0}'),
                     (4, '{0,1,2,3,4,5,6,7,8,9,10}');   -- the 0 is beyond max_len: not read

-- oov "error" (the converter's): the padded row fails, naming the id and its position
SELECT din_score('{0,0,21,793}', 437, 'pad', '{1001}', '{0.42}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{21,793,0}', '{437,388}'::bigint[], 'pad', '{1001}', '{0.42}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM din_rank('{0,21}', '{437,388}', 1, 'pad', '{1001}', '{0.42}');
\echo :LAST_ERROR_SQLSTATE
-- real behaviours, and a padding id the model no longer reads, score as before
SELECT id, din_score(history, 437, 'pad', '{1001}', '{0.42}')
           = din_score(history, 437, 'nopad', '{1001}', '{0.42}') AS same
FROM h WHERE id IN (1, 4) ORDER BY id;

-- another oov rule: one NOTICE for the whole query, scores unchanged
UPDATE din_models SET config = jsonb_set(config, '{fields,0,oov}', '"zero"') WHERE name = 'pad';
SELECT id, din_score(history, 437, 'pad', '{1001}', '{0.42}')
           = din_score(history, 437, 'nopad', '{1001}', '{0.42}') AS same
FROM h ORDER BY id;
-- each call site has its own NOTICE; din_explain reads the request the same way
SELECT round(din_score('{0,21}', 437, 'pad', '{1001}', '{0.42}')::numeric, 4) AS padded,
       round(din_score(array_remove('{0,21}'::bigint[], 0), 437, 'pad', '{1001}',
                       '{0.42}')::numeric, 4) AS real_behaviours,
       round((din_score('{0,21}', '{437}'::bigint[], 'pad', '{1001}', '{0.42}'))[1]::numeric,
             4) AS padded_array;
SELECT pos, item_id FROM din_explain('{0,21}', 437, 'pad', '{1001}', '{0.42}') ORDER BY pos;

SELECT din_drop('pad'), din_drop('nopad');
