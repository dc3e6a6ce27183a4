-- The catalog side of the SQL API (README "SQL API"): signatures, return types, volatility,
-- parallel safety, privileges and the configuration tables a pg_dump depends on.
-- Everything runs in one transaction that is rolled back, so the database stays empty.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
\pset pager off
SET client_min_messages = warning;
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION din;

SELECT plan(108);

-- psql variables for the argument lists, so each signature is written once. Types are spelled
-- as format_type prints them: pgTAP's function_returns, volatility_is and is_aggregate compare
-- the argument list as text.
\set import_args  'ARRAY[''text'', ''bytea'', ''boolean'', ''text'']'
\set file_args    'ARRAY[''text'', ''text'', ''boolean'', ''text'']'
\set score_args   'ARRAY[''bigint[]'', ''bigint'', ''text'', ''bigint[]'', ''double precision[]'', ''timestamp with time zone[]'', ''timestamp with time zone'']'
\set scores_args  'ARRAY[''bigint[]'', ''bigint[]'', ''text'', ''bigint[]'', ''double precision[]'', ''timestamp with time zone[]'', ''timestamp with time zone'']'

-- Functions: existence with the exact argument types, return type, language.
SELECT has_function('din_import', :import_args);
SELECT function_returns('din_import', :import_args, 'integer');
SELECT function_lang_is('din_import', :import_args, 'c');
SELECT has_function('din_import_file', :file_args);
SELECT function_returns('din_import_file', :file_args, 'integer');
SELECT function_lang_is('din_import_file', :file_args, 'sql',
    'din_import_file is SQL over pg_read_binary_file, so server file access rules apply');
SELECT has_function('din_export', ARRAY['text']);
SELECT function_returns('din_export', ARRAY['text'], 'bytea');
SELECT has_function('din_drop', ARRAY['text']);
SELECT function_returns('din_drop', ARRAY['text'], 'boolean');
SELECT has_function('din_distribute_models', ARRAY[]::text[]);
SELECT function_returns('din_distribute_models', ARRAY[]::text[], 'void');
SELECT has_function('din_score', :score_args);
SELECT function_returns('din_score', :score_args, 'double precision');
SELECT has_function('din_score', :scores_args);
SELECT function_returns('din_score', :scores_args, 'double precision[]');
SELECT has_function('din_explain', :score_args);
SELECT function_returns('din_explain', :score_args, 'setof record');
SELECT is(
    (SELECT array_agg(a ORDER BY n)::text[]
       FROM pg_proc p,
            unnest(p.proargnames, p.proargmodes) WITH ORDINALITY AS u(a, m, n)
      WHERE p.oid = 'din_explain(bigint[], bigint, text, bigint[], float8[], timestamptz[], timestamptz)'::regprocedure
        AND m = 't'),
    ARRAY['pos', 'item_id', 'weight'],
    'din_explain returns TABLE(pos, item_id, weight)');
SELECT is(
    (SELECT array_agg(format_type(t, NULL) ORDER BY n)::text[]
       FROM pg_proc p,
            unnest(p.proallargtypes, p.proargmodes) WITH ORDINALITY AS u(t, m, n)
      WHERE p.oid = 'din_explain(bigint[], bigint, text, bigint[], float8[], timestamptz[], timestamptz)'::regprocedure
        AND m = 't'),
    ARRAY['integer', 'bigint', 'double precision'],
    'din_explain output columns are integer, bigint, double precision');

-- Argument names make named notation (model =>, replace =>) part of the API.
SELECT is(
    (SELECT proargnames[1:7]::text[] FROM pg_proc
      WHERE oid = 'din_score(bigint[], bigint, text, bigint[], float8[], timestamptz[], timestamptz)'::regprocedure),
    ARRAY['history', 'ad_id', 'model', 'context', 'dense', 'history_time', 'at'],
    'din_score(ad_id) argument names');
SELECT is(
    (SELECT proargnames::text[] FROM pg_proc
      WHERE oid = 'din_score(bigint[], bigint[], text, bigint[], float8[], timestamptz[], timestamptz)'::regprocedure),
    ARRAY['history', 'candidates', 'model', 'context', 'dense', 'history_time', 'at'],
    'din_score(candidates) argument names');
SELECT is(
    (SELECT proargnames::text[] FROM pg_proc
      WHERE oid = 'din_import(text, bytea, boolean, text)'::regprocedure),
    ARRAY['model', 'data', 'replace', 'comment'],
    'din_import argument names');
SELECT is(
    (SELECT proargnames::text[] FROM pg_proc
      WHERE oid = 'din_import_file(text, text, boolean, text)'::regprocedure),
    ARRAY['model', 'path', 'replace', 'comment'],
    'din_import_file argument names');
-- Defaults: everything after the first two scoring arguments, the last two of import.
SELECT is((SELECT pronargdefaults::int FROM pg_proc
            WHERE oid = 'din_score(bigint[], bigint, text, bigint[], float8[], timestamptz[], timestamptz)'::regprocedure),
          5, 'din_score(ad_id) has 5 defaulted arguments');
SELECT is((SELECT pronargdefaults::int FROM pg_proc
            WHERE oid = 'din_score(bigint[], bigint[], text, bigint[], float8[], timestamptz[], timestamptz)'::regprocedure),
          5, 'din_score(candidates) has 5 defaulted arguments');
SELECT is((SELECT pronargdefaults::int FROM pg_proc
            WHERE oid = 'din_explain(bigint[], bigint, text, bigint[], float8[], timestamptz[], timestamptz)'::regprocedure),
          5, 'din_explain has 5 defaulted arguments');
SELECT is((SELECT pronargdefaults::int FROM pg_proc
            WHERE oid = 'din_import(text, bytea, boolean, text)'::regprocedure),
          2, 'din_import has 2 defaulted arguments');
SELECT is((SELECT pronargdefaults::int FROM pg_proc
            WHERE oid = 'din_import_file(text, text, boolean, text)'::regprocedure),
          2, 'din_import_file has 2 defaulted arguments');

-- Volatility: scoring reads tables a later statement may change (STABLE); import and drop
-- write them (VOLATILE).
SELECT volatility_is('din_score', :score_args, 'stable');
SELECT volatility_is('din_score', :scores_args, 'stable');
SELECT volatility_is('din_explain', :score_args, 'stable');
SELECT volatility_is('din_import', :import_args, 'volatile');
SELECT volatility_is('din_import_file', :file_args, 'volatile');
SELECT volatility_is('din_drop', ARRAY['text'], 'volatile');
-- NULL ad_id gives NULL and NULL model means the GUC: the scoring functions handle NULLs.
SELECT isnt_strict('din_score', :score_args);
SELECT isnt_strict('din_score', :scores_args);
SELECT isnt_strict('din_explain', :score_args);

-- Parallel safety.
SELECT is((SELECT proparallel FROM pg_proc
            WHERE oid = 'din_score(bigint[], bigint, text, bigint[], float8[], timestamptz[], timestamptz)'::regprocedure),
          's', 'din_score(ad_id) is PARALLEL SAFE');
SELECT is((SELECT proparallel FROM pg_proc
            WHERE oid = 'din_score(bigint[], bigint[], text, bigint[], float8[], timestamptz[], timestamptz)'::regprocedure),
          's', 'din_score(candidates) is PARALLEL SAFE');
SELECT is((SELECT proparallel FROM pg_proc
            WHERE oid = 'din_explain(bigint[], bigint, text, bigint[], float8[], timestamptz[], timestamptz)'::regprocedure),
          's', 'din_explain is PARALLEL SAFE');
SELECT is((SELECT proparallel FROM pg_proc WHERE oid = 'din_import(text, bytea, boolean, text)'::regprocedure),
          'u', 'din_import is PARALLEL UNSAFE');
SELECT is((SELECT proparallel FROM pg_proc WHERE oid = 'din_drop(text)'::regprocedure),
          'u', 'din_drop is PARALLEL UNSAFE');

-- Metrics (sql/metrics.sql): aggregates, parallel safe, boolean and integer labels.
SELECT is_aggregate('auc', ARRAY['double precision', 'boolean']);
SELECT is_aggregate('auc', ARRAY['double precision', 'integer']);
SELECT is_aggregate('gauc', ARRAY['bigint', 'double precision', 'boolean']);
SELECT is_aggregate('gauc', ARRAY['bigint', 'double precision', 'integer']);
SELECT is_aggregate('gauc_clicks', ARRAY['bigint', 'double precision', 'boolean']);
SELECT is_aggregate('gauc_clicks', ARRAY['bigint', 'double precision', 'integer']);
SELECT is_aggregate('logloss', ARRAY['double precision', 'boolean']);
SELECT is_aggregate('logloss', ARRAY['double precision', 'integer']);
SELECT function_returns('auc', ARRAY['double precision', 'boolean'], 'double precision');
SELECT function_returns('gauc', ARRAY['bigint', 'double precision', 'boolean'], 'double precision');
SELECT function_returns('gauc_clicks', ARRAY['bigint', 'double precision', 'boolean'], 'double precision');
SELECT function_returns('logloss', ARRAY['double precision', 'boolean'], 'double precision');
SELECT is(
    (SELECT array_agg(oid::regprocedure::text ORDER BY 1) FROM pg_proc
      WHERE proname IN ('auc', 'gauc', 'gauc_clicks', 'logloss') AND prokind = 'a'
        AND pronamespace = 'public'::regnamespace AND proparallel <> 's'),
    NULL, 'every metric aggregate is PARALLEL SAFE');
SELECT is(
    (SELECT array_agg(p.oid::regprocedure::text ORDER BY 1)
       FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
      WHERE p.proname IN ('auc', 'gauc', 'gauc_clicks', 'logloss')
        AND p.pronamespace = 'public'::regnamespace AND a.aggcombinefn = 0),
    NULL, 'every metric aggregate has a combine function (parallel aggregation)');
SELECT is(
    (SELECT array_agg(p.oid::regprocedure::text ORDER BY 1)
       FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
      WHERE p.proname IN ('auc', 'gauc', 'gauc_clicks', 'logloss')
        AND p.pronamespace = 'public'::regnamespace
        AND a.aggtranstype = 'internal'::regtype AND a.aggserialfn = 0),
    NULL, 'every metric aggregate with an internal state can serialize it for workers');

-- Privileges: writing models is for privileged roles; scoring is for everyone.
SELECT ok(NOT has_function_privilege('public', 'din_import(text, bytea, boolean, text)', 'EXECUTE'),
          'EXECUTE on din_import is revoked from PUBLIC');
SELECT ok(NOT has_function_privilege('public', 'din_import_file(text, text, boolean, text)', 'EXECUTE'),
          'EXECUTE on din_import_file is revoked from PUBLIC');
SELECT ok(NOT has_function_privilege('public', 'din_drop(text)', 'EXECUTE'),
          'EXECUTE on din_drop is revoked from PUBLIC');
SELECT ok(NOT has_function_privilege('public', 'din_distribute_models()', 'EXECUTE'),
          'EXECUTE on din_distribute_models is revoked from PUBLIC');
CREATE ROLE din_api_nobody NOLOGIN;
SELECT ok(NOT has_function_privilege('din_api_nobody', 'din_import(text, bytea, boolean, text)', 'EXECUTE'),
          'a plain role cannot run din_import');
SELECT ok(has_function_privilege('din_api_nobody',
              'din_score(bigint[], bigint, text, bigint[], float8[], timestamptz[], timestamptz)', 'EXECUTE'),
          'a plain role can run din_score');
SELECT ok(has_function_privilege('din_api_nobody',
              'din_explain(bigint[], bigint, text, bigint[], float8[], timestamptz[], timestamptz)', 'EXECUTE'),
          'a plain role can run din_explain');
SELECT is(
    (SELECT array_agg(p.oid::regprocedure::text ORDER BY 1)::text[]
       FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
      WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
        AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'din')
        AND d.deptype = 'e' AND p.prosecdef),
    NULL, 'no function of the extension is SECURITY DEFINER');

-- The GUC.
SELECT is((SELECT count(*)::int FROM pg_settings WHERE name = 'din.default_model'), 1,
          'GUC din.default_model exists');
SELECT is((SELECT context FROM pg_settings WHERE name = 'din.default_model'), 'user',
          'din.default_model is settable by any user (PGC_USERSET)');
SELECT is((SELECT vartype FROM pg_settings WHERE name = 'din.default_model'), 'string',
          'din.default_model is a string');
SELECT is(current_setting('din.default_model'), '', 'din.default_model defaults to empty');

-- Tables and the sequence.
SELECT has_sequence('din_generation');
SELECT columns_are('din_models',
    ARRAY['name', 'architecture', 'config', 'version', 'generation', 'created', 'comment']);
SELECT col_type_is('din_models', 'config', 'jsonb');
SELECT col_type_is('din_models', 'version', 'integer');
SELECT col_type_is('din_models', 'generation', 'bigint');
SELECT col_type_is('din_models', 'created', 'timestamp with time zone');
SELECT col_is_pk('din_models', 'name');
SELECT columns_are('din_tensors', ARRAY['model', 'name', 'ord', 'dtype', 'shape', 'chunk', 'data']);
SELECT col_type_is('din_tensors', 'shape', 'bigint[]');
SELECT col_type_is('din_tensors', 'data', 'bytea');
SELECT col_is_pk('din_tensors', ARRAY['model', 'name', 'chunk']);
SELECT fk_ok('din_tensors', 'model', 'din_models', 'name');
SELECT columns_are('din_items', ARRAY['model', 'item_id', 'attributes']);
SELECT col_type_is('din_items', 'attributes', 'bigint[]');
SELECT col_is_pk('din_items', ARRAY['model', 'item_id']);
SELECT fk_ok('din_items', 'model', 'din_models', 'name');
SELECT columns_are('din_vocab', ARRAY['model', 'field', 'raw_id', 'row_index']);
SELECT col_type_is('din_vocab', 'raw_id', 'bigint');
SELECT col_type_is('din_vocab', 'row_index', 'bigint');
SELECT col_is_pk('din_vocab', ARRAY['model', 'field', 'raw_id']);
SELECT fk_ok('din_vocab', 'model', 'din_models', 'name');
-- Deleting a model removes its rows everywhere.
SELECT is(
    (SELECT count(*)::int FROM pg_constraint
      WHERE contype = 'f' AND confrelid = 'din_models'::regclass
        AND confdeltype = 'c' AND confupdtype = 'c'),
    3, 'din_tensors, din_items and din_vocab cascade deletes and renames of a model');
SELECT throws_ok($$INSERT INTO din_models (name, architecture, config) VALUES ('bad name', 'din', '{}')$$,
                 '23514', NULL, 'a model name with a space is rejected by the CHECK');
SELECT lives_ok($$INSERT INTO din_models (name, architecture, config) VALUES ('A-z_0.9', 'din', '{}')$$,
                'letters, digits, _ . - make a valid model name');
SELECT is((SELECT version FROM din_models WHERE name = 'A-z_0.9'), 1, 'version defaults to 1');
SELECT ok((SELECT generation > 0 FROM din_models WHERE name = 'A-z_0.9'),
          'generation defaults to the next value of din_generation');
SELECT throws_ok($$INSERT INTO din_models (name, architecture, config) VALUES (repeat('a', 64), 'din', '{}')$$,
                 '23514', NULL, 'a 64-character model name is rejected');

-- pg_dump dumps the rows of the configuration tables, and the generation sequence so
-- that a restored database never hands out a generation already in use.
SELECT is(
    (SELECT array_agg(c::regclass::text ORDER BY c::regclass::text)
       FROM pg_extension, unnest(extconfig) AS c WHERE extname = 'din'),
    ARRAY['din_generation', 'din_items', 'din_models', 'din_tensors', 'din_vocab'],
    'configuration tables and sequence are registered with pg_extension_config_dump');
SELECT is(
    (SELECT array_agg(f ORDER BY f) FROM pg_extension, unnest(extcondition) AS f WHERE extname = 'din'),
    ARRAY['', '', '', '', ''],
    'pg_dump dumps every row (no filter)');
SELECT is((SELECT extrelocatable FROM pg_extension WHERE extname = 'din'), false,
          'the extension is not relocatable');

-- Errors the API fixes, reachable without a model.
SELECT throws_ok($$SELECT din_score('{1,2}'::bigint[], 1::bigint, model => 'no_such_model')$$,
                 '42704', 'model "no_such_model" does not exist', 'unknown model');
SELECT throws_ok($$SELECT din_score('{1,2}'::bigint[], '{1,2}'::bigint[], model => 'no_such_model')$$,
                 '42704', 'model "no_such_model" does not exist', 'unknown model, many candidates');
SELECT throws_ok($$SELECT * FROM din_explain('{1,2}'::bigint[], 1::bigint, model => 'no_such_model')$$,
                 '42704', 'model "no_such_model" does not exist', 'unknown model, explain');
SELECT throws_ok($$SELECT din_score('{1,2}'::bigint[], 1::bigint)$$,
                 '22023', 'no model given', 'no model and no din.default_model');
SET LOCAL din.default_model = 'no_such_default';
SELECT throws_ok($$SELECT din_score('{1,2}'::bigint[], 1::bigint)$$,
                 '42704', 'model "no_such_default" does not exist', 'NULL model means din.default_model');
SELECT is(din_drop('no_such_model'), false, 'din_drop of a missing model returns false');
SELECT throws_ok($$SELECT din_import('bad name', '\x00'::bytea)$$,
                 '22023', NULL, 'din_import rejects an invalid model name');
SELECT throws_ok($$SELECT din_import('garbage', '\x00010203'::bytea)$$,
                 'XX001', NULL, 'din_import rejects bytes that are not a model file');

SELECT * FROM finish();
ROLLBACK;
