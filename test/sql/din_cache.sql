-- The model cache: din_load, din_cache, and what a change to the model tables does to it
-- (a new generation, the new weights at the next statement, a rollback keeps the old ones).
-- Written to give the same output with and without din in shared_preload_libraries.
\getenv abs_srcdir PG_ABS_SRCDIR
\set din_file :abs_srcdir '/fixtures/tiny_din.safetensors'
\set base_file :abs_srcdir '/fixtures/tiny_base.safetensors'
SET client_min_messages = warning;

SELECT din_import('c', pg_read_binary_file(:'din_file'));
CREATE TEMP TABLE g AS SELECT generation AS g1 FROM din_models WHERE name = 'c';

-- din_load returns the packed size; din_cache lists the version with it
SELECT din_load('c') AS bytes;
SELECT model, version, generation = (SELECT g1 FROM g) AS current_generation, bytes,
       backends >= 1 AS mapped, loads, last_used IS NOT NULL AS used
FROM din_cache() WHERE model = 'c';
SELECT round(din_score('{100,101,102}', 103, 'c', '{1}', '{0.5}')::numeric, 6) AS din_score;
SELECT hits >= 1 AS hit FROM din_cache() WHERE model = 'c';
SELECT din_load(NULL);
SELECT din_load('nope');

-- replace inside a transaction: this transaction scores the new model, a rollback restores
-- the old one at the next statement
BEGIN;
SELECT din_import('c', pg_read_binary_file(:'base_file'), replace => true);
SELECT architecture, round(din_score('{0,1,2,3,4,5}', 2, 'c')::numeric, 6) AS uncommitted
FROM din_models WHERE name = 'c';
ROLLBACK;
SELECT round(din_score('{100,101,102}', 103, 'c', '{1}', '{0.5}')::numeric, 6) AS after_rollback;
SELECT generation = (SELECT g1 FROM g) AS same_generation FROM din_models WHERE name = 'c';

-- direct DML on a weight table gives the models a new generation; a comment does not
UPDATE din_tensors SET data = data WHERE model = 'c' AND ord = 0;
SELECT generation > (SELECT g1 FROM g) AS new_generation FROM din_models WHERE name = 'c';
UPDATE g SET g1 = (SELECT generation FROM din_models WHERE name = 'c');
UPDATE din_models SET comment = 'only a comment' WHERE name = 'c';
SELECT generation = (SELECT g1 FROM g) AS same_generation FROM din_models WHERE name = 'c';

-- an item row inserted by hand gives its model (only) a new generation, and the item is scored
-- with its category from the next statement on
SELECT din_import('other', pg_read_binary_file(:'base_file'));
CREATE TEMP TABLE g2 AS SELECT name, generation FROM din_models;
SELECT round(din_score('{100,101,102}', 104, 'c', '{1}', '{0.5}')::numeric, 6) AS without_category;
INSERT INTO din_items VALUES ('c', 104, (SELECT attributes FROM din_items WHERE model = 'c'
                                         ORDER BY item_id LIMIT 1));
SELECT m.name, m.generation > g2.generation AS new_generation
FROM din_models m JOIN g2 USING (name) ORDER BY m.name;
SELECT round(din_score('{100,101,102}', 104, 'c', '{1}', '{0.5}')::numeric, 6) AS with_category;
DELETE FROM din_items WHERE model = 'c' AND item_id = 104;
-- renaming a model (its rows follow by cascade) gives that model alone a new generation, and
-- so does deleting rows of one model by hand
DELETE FROM g2;
INSERT INTO g2 SELECT name, generation FROM din_models;
UPDATE din_models SET name = 'other2' WHERE name = 'other';
UPDATE g2 SET name = 'other2' WHERE name = 'other';
SELECT m.name, m.generation > g2.generation AS new_generation
FROM din_models m JOIN g2 USING (name) ORDER BY m.name;
DELETE FROM g2;
INSERT INTO g2 SELECT name, generation FROM din_models;
DELETE FROM din_tensors WHERE model = 'other2'
  AND ord = (SELECT max(ord) FROM din_tensors WHERE model = 'other2');
SELECT m.name, m.generation > g2.generation AS new_generation
FROM din_models m JOIN g2 USING (name) ORDER BY m.name;
SELECT din_drop('other2');
UPDATE g SET g1 = (SELECT generation FROM din_models WHERE name = 'c');

-- changed weights are scored at the next statement: negate the first weight tensor's data
-- (every float's sign bit) and the score moves; restore it and the score is back
CREATE TEMP TABLE saved AS SELECT name, chunk, data FROM din_tensors WHERE model = 'c' AND ord = 0;
UPDATE din_tensors t SET data = (SELECT string_agg(set_byte(substr(t.data, 4 * i + 1, 4), 3,
                                        get_byte(t.data, 4 * i + 3) # 128), ''::bytea ORDER BY i)
                                 FROM generate_series(0, length(t.data) / 4 - 1) i)
WHERE model = 'c' AND ord = 0 AND dtype = 'F32';
SELECT round(din_score('{100,101,102}', 103, 'c', '{1}', '{0.5}')::numeric, 6) <> 0.618092
       AS changed;
UPDATE din_tensors t SET data = s.data FROM saved s
WHERE t.model = 'c' AND t.name = s.name AND t.chunk = s.chunk;
SELECT round(din_score('{100,101,102}', 103, 'c', '{1}', '{0.5}')::numeric, 6) AS restored;

-- a committed replace is scored at the next statement; the cache lists the new version only
SELECT din_import('c', pg_read_binary_file(:'din_file'), replace => true);
SELECT round(din_score('{100,101,102}', 103, 'c', '{1}', '{0.5}')::numeric, 6) AS replaced;
SELECT model, version FROM din_cache() WHERE model = 'c';

-- a dropped model leaves the cache
SELECT din_drop('c');
SELECT din_score('{100,101,102}', 103, 'c', '{1}', '{0.5}');
SELECT count(*) AS cached FROM din_cache() WHERE model = 'c';
