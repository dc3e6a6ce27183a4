-- din install script (the Makefile appends sql/metrics.sql to build din--<version>.sql)
\echo Use "CREATE EXTENSION din" to load this file. \quit

-- Every import draws a new value, so a backend's cached copy of a model is stale exactly when
-- the generation it loaded is no longer the one in din_models (values are never reused, even
-- after a rollback).
CREATE SEQUENCE din_generation;

CREATE TABLE din_models (
    name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    architecture text NOT NULL,
    config jsonb NOT NULL,
    version integer NOT NULL DEFAULT 1,
    generation bigint NOT NULL DEFAULT nextval('din_generation'),
    created timestamptz NOT NULL DEFAULT now(),
    comment text
);

-- Weights; data split in chunks of at most 16 MB so that no row nears the 1 GB field limit.
CREATE TABLE din_tensors (
    model text NOT NULL REFERENCES din_models (name) ON DELETE CASCADE ON UPDATE CASCADE,
    name text NOT NULL,
    ord integer NOT NULL,
    dtype text NOT NULL,
    shape bigint[] NOT NULL,
    chunk integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (model, name, chunk)
);
-- Float weights rarely compress; storing them uncompressed makes loading a plain copy.
ALTER TABLE din_tensors ALTER COLUMN data SET STORAGE EXTERNAL;

-- The items.id / items.attributes tensors, one row per item.
CREATE TABLE din_items (
    model text NOT NULL REFERENCES din_models (name) ON DELETE CASCADE ON UPDATE CASCADE,
    item_id bigint NOT NULL,
    attributes bigint[] NOT NULL,
    PRIMARY KEY (model, item_id)
);

-- The vocab.<field> tensors: raw id -> embedding row.
CREATE TABLE din_vocab (
    model text NOT NULL REFERENCES din_models (name) ON DELETE CASCADE ON UPDATE CASCADE,
    field text NOT NULL,
    raw_id bigint NOT NULL,
    row_index bigint NOT NULL,
    PRIMARY KEY (model, field, raw_id)
);

SELECT pg_catalog.pg_extension_config_dump('din_models', '');
SELECT pg_catalog.pg_extension_config_dump('din_tensors', '');
SELECT pg_catalog.pg_extension_config_dump('din_items', '');
SELECT pg_catalog.pg_extension_config_dump('din_vocab', '');
SELECT pg_catalog.pg_extension_config_dump('din_generation', '');

-- Privileges (README, "Security and limits"): any role may score and see which models
-- exist (din_models: names, configs, versions); the weights, items and vocabularies are
-- read by scoring as the extension's owner (catalog.c), so reading them directly, like
-- changing them, needs a grant. Model management goes to the role din_admin (NOLOGIN,
-- created here when missing): GRANT din_admin TO someone.
GRANT SELECT ON din_models TO PUBLIC;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'din_admin') THEN
        CREATE ROLE din_admin NOLOGIN;
    END IF;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON din_models, din_tensors, din_items, din_vocab
    TO din_admin;
GRANT USAGE ON SEQUENCE din_generation TO din_admin;

CREATE FUNCTION din_import(model text, data bytea, replace boolean DEFAULT false,
                           comment text DEFAULT NULL)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'din_import'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION din_import(text, bytea, boolean, text) IS
    'store a model file (safetensors + din.config) under a name; returns its version';

CREATE FUNCTION din_import_file(model text, path text, replace boolean DEFAULT false,
                                comment text DEFAULT NULL)
    RETURNS integer
    AS $$ SELECT @extschema@.din_import($1, pg_catalog.pg_read_binary_file($2), $3, $4) $$
    LANGUAGE sql VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION din_import_file(text, text, boolean, text) IS
    'store a model file read from the server''s file system; returns its version';

CREATE FUNCTION din_export(model text)
    RETURNS bytea
    AS 'MODULE_PATHNAME', 'din_export'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION din_export(text) IS
    'the model file of a stored model (weights first, then vocabularies, then the items table)';

CREATE FUNCTION din_drop(model text)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'din_drop'
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION din_drop(text) IS
    'delete a stored model; true if it existed';

CREATE FUNCTION din_score(history bigint[], ad_id bigint, model text DEFAULT NULL,
                          context bigint[] DEFAULT NULL, dense float8[] DEFAULT NULL,
                          history_time timestamptz[] DEFAULT NULL, at timestamptz DEFAULT NULL)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'din_score'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION din_score(bigint[], bigint, text, bigint[], float8[], timestamptz[], timestamptz) IS
    'click probability of one ad for a behaviour history (oldest first)';

CREATE FUNCTION din_score(history bigint[], candidates bigint[], model text DEFAULT NULL,
                          context bigint[] DEFAULT NULL, dense float8[] DEFAULT NULL,
                          history_time timestamptz[] DEFAULT NULL, at timestamptz DEFAULT NULL)
    RETURNS float8[]
    AS 'MODULE_PATHNAME', 'din_score_array'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION din_score(bigint[], bigint[], text, bigint[], float8[], timestamptz[], timestamptz) IS
    'click probabilities of many candidates for one history, in candidate order';

CREATE FUNCTION din_rank(history bigint[], candidates bigint[], k integer DEFAULT NULL,
                         model text DEFAULT NULL, context bigint[] DEFAULT NULL,
                         dense float8[] DEFAULT NULL, history_time timestamptz[] DEFAULT NULL,
                         at timestamptz DEFAULT NULL)
    RETURNS TABLE (ad_id bigint, score float8, rank integer)
    AS 'MODULE_PATHNAME', 'din_rank'
    LANGUAGE C STABLE PARALLEL SAFE ROWS 100;
COMMENT ON FUNCTION din_rank(bigint[], bigint[], integer, text, bigint[], float8[], timestamptz[], timestamptz) IS
    'the k best candidates for one history (all when k is NULL), by score, ties by ad_id';

CREATE FUNCTION din_explain(history bigint[], ad_id bigint, model text DEFAULT NULL,
                            context bigint[] DEFAULT NULL, dense float8[] DEFAULT NULL,
                            history_time timestamptz[] DEFAULT NULL, at timestamptz DEFAULT NULL)
    RETURNS TABLE (pos integer, item_id bigint, weight float8)
    AS 'MODULE_PATHNAME', 'din_explain'
    LANGUAGE C STABLE PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION din_explain(bigint[], bigint, text, bigint[], float8[], timestamptz[], timestamptz) IS
    'attention weight of each behaviour the model used for one ad (pos = 1-based index in history)';

REVOKE EXECUTE ON FUNCTION din_import(text, bytea, boolean, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION din_import_file(text, text, boolean, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION din_drop(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION din_export(text) FROM PUBLIC;
-- din_import_file stays with roles PostgreSQL lets read server files (pg_read_server_files):
-- it is SQL calling pg_read_binary_file as the caller, so granting it grants no file access.
GRANT EXECUTE ON FUNCTION din_import(text, bytea, boolean, text) TO din_admin;
GRANT EXECUTE ON FUNCTION din_import_file(text, text, boolean, text) TO din_admin;
GRANT EXECUTE ON FUNCTION din_drop(text) TO din_admin;
GRANT EXECUTE ON FUNCTION din_export(text) TO din_admin;

-- ---- model cache (issue 4): invalidation triggers, din_load, din_cache -------------------

-- A change of a model's row that changes what it scores gets a new generation even when the
-- statement did not set one, so that caches keyed by generation see it (a comment does not).
CREATE FUNCTION din_models_new_generation() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.generation = OLD.generation
       AND (NEW.name, NEW.architecture, NEW.config) IS DISTINCT FROM
           (OLD.name, OLD.architecture, OLD.config) THEN
        NEW.generation := nextval('@extschema@.din_generation');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER din_models_new_generation BEFORE UPDATE ON din_models
    FOR EACH ROW EXECUTE FUNCTION din_models_new_generation();

-- Every statement that changes din_models queues a relcache invalidation of it, sent at
-- commit: backends compare their cached generations again at their next statement.
CREATE FUNCTION din_models_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'din_models_changed'
    LANGUAGE C;
CREATE TRIGGER din_models_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON din_models
    FOR EACH STATEMENT EXECUTE FUNCTION din_models_changed();

-- Direct changes of weight, item and vocabulary rows (not din_import, din_drop or a cascade
-- from din_models) give models a new generation: an INSERT the models it added rows to (so a
-- new item's attributes are scored from the next statement on), an UPDATE, DELETE or
-- TRUNCATE every model. A restore inserts these rows too, so restored models get new
-- generations; their content is unchanged.
CREATE FUNCTION din_model_rows_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'din_model_rows_changed'
    LANGUAGE C;
CREATE TRIGGER din_model_rows_changed AFTER UPDATE OR DELETE OR TRUNCATE ON din_tensors
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_inserted AFTER INSERT ON din_tensors
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_changed AFTER UPDATE OR DELETE OR TRUNCATE ON din_items
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_inserted AFTER INSERT ON din_items
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_changed AFTER UPDATE OR DELETE OR TRUNCATE ON din_vocab
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_inserted AFTER INSERT ON din_vocab
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();

CREATE FUNCTION din_load(model text)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'din_load'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION din_load(text) IS
    'load a model into the cache (shared memory when din is preloaded); returns its bytes there';
REVOKE EXECUTE ON FUNCTION din_load(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION din_load(text) TO din_admin;

CREATE FUNCTION din_cache()
    RETURNS TABLE (model text, version integer, generation bigint, bytes bigint, backends integer,
                   loads bigint, hits bigint, last_used timestamptz)
    AS 'MODULE_PATHNAME', 'din_cache'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION din_cache() IS
    'loaded model versions of this database: bytes, backends mapping them, loads, hits, last use';
-- Offline evaluation metrics (issue 3): auc, gauc, gauc_clicks and logloss aggregates.
--
-- auc/gauc/gauc_clicks keep every row (8 bytes per row for auc, 16 for gauc) in a bytea
-- state and sort once in the final function; the bytea state (not internal) lets Citus
-- combine partial states on its workers. Rows with a NULL argument are skipped (the
-- transition functions are STRICT over a non-NULL INITCOND). Labels are boolean, or integer
-- 0/1; scores must be finite. See the README section "Metrics".

CREATE FUNCTION din_auc_trans(bytea, float8, boolean) RETURNS bytea
    AS 'MODULE_PATHNAME', 'din_auc_trans' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION din_auc_trans(bytea, float8, integer) RETURNS bytea
    AS 'MODULE_PATHNAME', 'din_auc_trans_int4' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION din_auc_trans(bytea, float8, smallint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'din_auc_trans_int2' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION din_gauc_trans(bytea, bigint, float8, boolean) RETURNS bytea
    AS 'MODULE_PATHNAME', 'din_gauc_trans' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION din_gauc_trans(bytea, bigint, float8, integer) RETURNS bytea
    AS 'MODULE_PATHNAME', 'din_gauc_trans_int4' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION din_gauc_trans(bytea, bigint, float8, smallint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'din_gauc_trans_int2' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION din_metrics_combine(bytea, bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'din_metrics_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION din_auc_final(bytea) RETURNS float8
    AS 'MODULE_PATHNAME', 'din_auc_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION din_gauc_final(bytea) RETURNS float8
    AS 'MODULE_PATHNAME', 'din_gauc_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION din_gauc_clicks_final(bytea) RETURNS float8
    AS 'MODULE_PATHNAME', 'din_gauc_clicks_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION din_logloss_trans(float8[], float8, boolean) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'din_logloss_trans' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION din_logloss_trans(float8[], float8, integer) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'din_logloss_trans_int4' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION din_logloss_trans(float8[], float8, smallint) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'din_logloss_trans_int2' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION din_logloss_combine(float8[], float8[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'din_logloss_combine' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION din_logloss_final(float8[]) RETURNS float8
    AS 'MODULE_PATHNAME', 'din_logloss_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE auc(score float8, label boolean) (
    SFUNC = din_auc_trans, STYPE = bytea, INITCOND = '', FINALFUNC = din_auc_final,
    COMBINEFUNC = din_metrics_combine, PARALLEL = SAFE);
CREATE AGGREGATE auc(score float8, label integer) (
    SFUNC = din_auc_trans, STYPE = bytea, INITCOND = '', FINALFUNC = din_auc_final,
    COMBINEFUNC = din_metrics_combine, PARALLEL = SAFE);
CREATE AGGREGATE auc(score float8, label smallint) (
    SFUNC = din_auc_trans, STYPE = bytea, INITCOND = '', FINALFUNC = din_auc_final,
    COMBINEFUNC = din_metrics_combine, PARALLEL = SAFE);

CREATE AGGREGATE gauc(user_id bigint, score float8, label boolean) (
    SFUNC = din_gauc_trans, STYPE = bytea, INITCOND = '', FINALFUNC = din_gauc_final,
    COMBINEFUNC = din_metrics_combine, PARALLEL = SAFE);
CREATE AGGREGATE gauc(user_id bigint, score float8, label integer) (
    SFUNC = din_gauc_trans, STYPE = bytea, INITCOND = '', FINALFUNC = din_gauc_final,
    COMBINEFUNC = din_metrics_combine, PARALLEL = SAFE);
CREATE AGGREGATE gauc(user_id bigint, score float8, label smallint) (
    SFUNC = din_gauc_trans, STYPE = bytea, INITCOND = '', FINALFUNC = din_gauc_final,
    COMBINEFUNC = din_metrics_combine, PARALLEL = SAFE);

CREATE AGGREGATE gauc_clicks(user_id bigint, score float8, label boolean) (
    SFUNC = din_gauc_trans, STYPE = bytea, INITCOND = '', FINALFUNC = din_gauc_clicks_final,
    COMBINEFUNC = din_metrics_combine, PARALLEL = SAFE);
CREATE AGGREGATE gauc_clicks(user_id bigint, score float8, label integer) (
    SFUNC = din_gauc_trans, STYPE = bytea, INITCOND = '', FINALFUNC = din_gauc_clicks_final,
    COMBINEFUNC = din_metrics_combine, PARALLEL = SAFE);
CREATE AGGREGATE gauc_clicks(user_id bigint, score float8, label smallint) (
    SFUNC = din_gauc_trans, STYPE = bytea, INITCOND = '', FINALFUNC = din_gauc_clicks_final,
    COMBINEFUNC = din_metrics_combine, PARALLEL = SAFE);

CREATE AGGREGATE logloss(score float8, label boolean) (
    SFUNC = din_logloss_trans, STYPE = float8[], INITCOND = '{0,0,0}',
    FINALFUNC = din_logloss_final, COMBINEFUNC = din_logloss_combine, PARALLEL = SAFE);
CREATE AGGREGATE logloss(score float8, label integer) (
    SFUNC = din_logloss_trans, STYPE = float8[], INITCOND = '{0,0,0}',
    FINALFUNC = din_logloss_final, COMBINEFUNC = din_logloss_combine, PARALLEL = SAFE);
CREATE AGGREGATE logloss(score float8, label smallint) (
    SFUNC = din_logloss_trans, STYPE = float8[], INITCOND = '{0,0,0}',
    FINALFUNC = din_logloss_final, COMBINEFUNC = din_logloss_combine, PARALLEL = SAFE);

COMMENT ON AGGREGATE auc(float8, boolean) IS
    'area under the ROC curve, exact (Mann-Whitney, ties count one half); NULL unless both classes occur';
COMMENT ON AGGREGATE auc(float8, integer) IS 'auc with 0/1 integer labels';
COMMENT ON AGGREGATE auc(float8, smallint) IS 'auc with 0/1 smallint labels';
COMMENT ON AGGREGATE gauc(bigint, float8, boolean) IS
    'per-user AUC averaged with impressions as weights, over users with both classes';
COMMENT ON AGGREGATE gauc(bigint, float8, integer) IS 'gauc with 0/1 integer labels';
COMMENT ON AGGREGATE gauc(bigint, float8, smallint) IS 'gauc with 0/1 smallint labels';
COMMENT ON AGGREGATE gauc_clicks(bigint, float8, boolean) IS
    'per-user AUC averaged with clicks as weights, over users with both classes';
COMMENT ON AGGREGATE gauc_clicks(bigint, float8, integer) IS 'gauc_clicks with 0/1 integer labels';
COMMENT ON AGGREGATE gauc_clicks(bigint, float8, smallint) IS 'gauc_clicks with 0/1 smallint labels';
COMMENT ON AGGREGATE logloss(float8, boolean) IS
    'mean binary cross-entropy, probabilities clipped to [1e-15, 1 - 1e-15] as scikit-learn does';
COMMENT ON AGGREGATE logloss(float8, integer) IS 'logloss with 0/1 integer labels';
COMMENT ON AGGREGATE logloss(float8, smallint) IS 'logloss with 0/1 smallint labels';
