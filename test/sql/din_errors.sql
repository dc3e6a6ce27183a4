-- din SQL API: every input error README "SQL API" lists, bad model files, damaged model rows and
-- privileges. Each error is followed by its SQLSTATE.
\getenv abs_srcdir PG_ABS_SRCDIR
\set din_file :abs_srcdir '/fixtures/tiny_din.safetensors'
\set bad :abs_srcdir '/fixtures/bad/'
\set SHOW_CONTEXT never
SELECT din_import('err_tiny', pg_read_binary_file(:'din_file'));

-- no model at all
SELECT din_score('{100}', 103, context => '{1}', dense => '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM din_explain('{100}', 103);
\echo :LAST_ERROR_SQLSTATE
-- unknown models
SELECT din_score('{100}', 103, 'nope');
\echo :LAST_ERROR_SQLSTATE
SET din.default_model = 'nope';
SELECT din_score('{100}', '{103}'::bigint[]);
\echo :LAST_ERROR_SQLSTATE
RESET din.default_model;
SELECT din_score('{100}', 103, repeat('x', 100));
\echo :LAST_ERROR_SQLSTATE
SELECT din_export('nope');
\echo :LAST_ERROR_SQLSTATE
-- a setting in the reserved din. prefix that does not exist
SET din.no_such_setting = 1;
\echo :LAST_ERROR_SQLSTATE

-- NULL elements
SELECT din_score('{100,NULL}', 103, 'err_tiny', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', '{103,NULL}'::bigint[], 'err_tiny', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'err_tiny', '{NULL}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'err_tiny', '{1}', '{NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'err_tiny', '{1}', '{0.5}', history_time => ARRAY[NULL::timestamptz]);
\echo :LAST_ERROR_SQLSTATE
-- multi-dimensional arrays
SELECT din_score('{{100,101}}', 103, 'err_tiny', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', '{{103}}'::bigint[], 'err_tiny', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM din_explain('{{100}}', 103, 'err_tiny', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
-- unknown ids of a field with oov "error" (item): as target, in the history, as candidate
SELECT din_score('{100}', 99999, 'err_tiny', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100,99999}', 101, 'err_tiny', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', '{101,99999}'::bigint[], 'err_tiny', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
-- context and dense lengths
SELECT din_score('{100}', 103, 'err_tiny', dense => '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'err_tiny', '{1,2}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'err_tiny', '{1}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'err_tiny', '{1}', '{0.5,1}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_score('{100}', 103, 'err_tiny', '{1}', '{NaN}');
\echo :LAST_ERROR_SQLSTATE
-- history_time must match history
SELECT din_score('{100,101}', 103, 'err_tiny', '{1}', '{0.5}', history_time => ARRAY[now()]);
\echo :LAST_ERROR_SQLSTATE
SELECT din_score(NULL, 103, 'err_tiny', '{1}', '{0.5}', history_time => ARRAY[now()]);
\echo :LAST_ERROR_SQLSTATE
-- an error on a later row of a statement
SELECT din_score(ARRAY[h], 100, 'err_tiny', '{1}', '{0.5}') FROM unnest('{100,101,5}'::bigint[]) h;
\echo :LAST_ERROR_SQLSTATE

-- import: names, duplicates, NULLs
SELECT din_import('err_tiny', pg_read_binary_file(:'din_file'));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('bad name', pg_read_binary_file(:'din_file'));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('', pg_read_binary_file(:'din_file'));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import(repeat('m', 64), pg_read_binary_file(:'din_file'));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import(NULL, pg_read_binary_file(:'din_file'));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('m', NULL);
\echo :LAST_ERROR_SQLSTATE

-- bad files: nothing is written
SELECT din_import('m', ''::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('m', '\x00'::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('m', substring(din_export('err_tiny') from 1 for 100));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('m', substring(din_export('err_tiny') from 1 for octet_length(din_export('err_tiny')) - 4));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('m', din_export('err_tiny') || '\x00'::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT din_import_file('m', :'bad' || 'truncated.safetensors');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import_file('m', :'bad' || 'header_past_end.safetensors');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import_file('m', :'bad' || 'nan_weight.safetensors');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import_file('m', :'bad' || 'unknown_dtype.safetensors');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import_file('m', :'bad' || 'wrong_shape.safetensors');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import_file('m', :'bad' || 'unknown_config_key.safetensors');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import_file('m', :'bad' || 'missing_tensor.safetensors');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import_file('m', :'bad' || 'extra_tensor.safetensors');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import_file('m', :'bad' || 'format_2.safetensors');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import_file('m', :'bad' || 'unknown_activation.safetensors');
\echo :LAST_ERROR_SQLSTATE
-- a bad file does not replace a good model
SELECT din_import('err_tiny', '\x00'::bytea, replace => true);
\echo :LAST_ERROR_SQLSTATE
SELECT name, version FROM din_models ORDER BY name;
SELECT count(*) FROM din_tensors WHERE model = 'm';

-- damaged rows of a stored model are reported when the model loads
SELECT din_import('broken', pg_read_binary_file(:'din_file'));
UPDATE din_vocab SET row_index = 7 WHERE model = 'broken' AND row_index = 2;
SELECT din_score('{100}', 101, 'broken', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
UPDATE din_vocab SET row_index = 2 WHERE model = 'broken' AND row_index = 7;
DELETE FROM din_vocab WHERE model = 'broken' AND row_index = 4;
SELECT din_export('broken');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('broken', pg_read_binary_file(:'din_file'), replace => true);
UPDATE din_tensors SET data = substring(data from 2) WHERE model = 'broken' AND name = 'head.weight';
SELECT din_score('{100}', 101, 'broken', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('broken', pg_read_binary_file(:'din_file'), replace => true);
DELETE FROM din_tensors WHERE model = 'broken' AND name = 'head.bias';
SELECT din_score('{100}', 101, 'broken', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('broken', pg_read_binary_file(:'din_file'), replace => true);
UPDATE din_items SET attributes = '{1,2}' WHERE model = 'broken' AND item_id = 101;
SELECT din_score('{100}', 101, 'broken', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('broken', pg_read_binary_file(:'din_file'), replace => true);
UPDATE din_tensors SET dtype = 'F16' WHERE model = 'broken' AND name = 'head.bias';
SELECT din_score('{100}', 101, 'broken', '{1}', '{0.5}');
\echo :LAST_ERROR_SQLSTATE
-- a repaired model scores again
SELECT din_import('broken', pg_read_binary_file(:'din_file'), replace => true);
SELECT round(din_score('{100,101,102}', 103, 'broken', '{1}', '{0.5}')::numeric, 6) AS p;
SELECT din_drop('broken');

-- privileges: anyone may score; exporting, importing and dropping are granted explicitly
CREATE ROLE regress_din_user;
SET ROLE regress_din_user;
SELECT round(din_score('{100,101,102}', 103, 'err_tiny', '{1}', '{0.5}')::numeric, 6) AS p;
SELECT octet_length(din_export('err_tiny')) > 0 AS exported;
\echo :LAST_ERROR_SQLSTATE
SELECT din_import('mine', din_export('err_tiny'));
\echo :LAST_ERROR_SQLSTATE
SELECT din_import_file('mine', :'din_file');
\echo :LAST_ERROR_SQLSTATE
SELECT din_drop('err_tiny');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_din_user;
SELECT din_drop('err_tiny');
