-- din install script (the Makefile appends sql/metrics.sql to build din--<version>.sql)
\echo Use "CREATE EXTENSION din" to load this file. \quit

-- Every import draws a new value, so a backend's cached copy of a model is stale exactly when
-- the generation it loaded is no longer the one in din_models (values are never reused, even
-- after a rollback).
CREATE SEQUENCE din_generation;
COMMENT ON SEQUENCE din_generation IS
    'generations of stored models: a new value for every change of what a model scores';

CREATE TABLE din_models (
    name text PRIMARY KEY CHECK (name OPERATOR(pg_catalog.~) '^[A-Za-z0-9_.-]{1,63}$'),
    architecture text NOT NULL,
    config jsonb NOT NULL,
    version integer NOT NULL DEFAULT 1,
    generation bigint NOT NULL
        DEFAULT pg_catalog.nextval('@extschema@.din_generation'::pg_catalog.regclass),
    created timestamptz NOT NULL DEFAULT pg_catalog.now(),
    comment text
);
COMMENT ON TABLE din_models IS
    'stored models: name, architecture, config; dropped with the extension (din.allow_drop_models)';

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
COMMENT ON TABLE din_tensors IS 'weights of the stored models, in chunks of at most 16 MB';
-- Float weights rarely compress; storing them uncompressed makes loading a plain copy.
ALTER TABLE din_tensors ALTER COLUMN data SET STORAGE EXTERNAL;

-- The items.id / items.attributes tensors, one row per item.
CREATE TABLE din_items (
    model text NOT NULL REFERENCES din_models (name) ON DELETE CASCADE ON UPDATE CASCADE,
    item_id bigint NOT NULL,
    attributes bigint[] NOT NULL,
    PRIMARY KEY (model, item_id)
);
COMMENT ON TABLE din_items IS 'items tables of the stored models: attributes of each item';

-- The vocab.<field> tensors: raw id -> embedding row.
CREATE TABLE din_vocab (
    model text NOT NULL REFERENCES din_models (name) ON DELETE CASCADE ON UPDATE CASCADE,
    field text NOT NULL,
    raw_id bigint NOT NULL,
    row_index bigint NOT NULL,
    PRIMARY KEY (model, field, raw_id)
);
COMMENT ON TABLE din_vocab IS 'vocabularies of the stored models: raw id to embedding row';

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
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
                   WHERE rolname OPERATOR(pg_catalog.=) 'din_admin') THEN
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

-- A body parsed here, not at each call: no name in it is looked up in the caller's search_path.
CREATE FUNCTION din_import_file(model text, path text, replace boolean DEFAULT false,
                                comment text DEFAULT NULL)
    RETURNS integer
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    SELECT @extschema@.din_import(model, pg_catalog.pg_read_binary_file(path), replace, comment);
END;
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
-- It runs as whoever updates din_models: every name in it is qualified, and its search_path
-- is pinned so nothing the caller created can stand in for an operator or a function.
CREATE FUNCTION din_models_new_generation() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.generation OPERATOR(pg_catalog.=) OLD.generation
       AND (NEW.name OPERATOR(pg_catalog.<>) OLD.name
            OR NEW.architecture OPERATOR(pg_catalog.<>) OLD.architecture
            OR NEW.config OPERATOR(pg_catalog.<>) OLD.config) THEN
        NEW.generation := pg_catalog.nextval('@extschema@.din_generation'::pg_catalog.regclass);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION din_models_new_generation() IS
    'trigger: a new generation for a din_models row whose name, architecture or config changed';
CREATE TRIGGER din_models_new_generation BEFORE UPDATE ON din_models
    FOR EACH ROW EXECUTE FUNCTION din_models_new_generation();

-- Every statement that changes din_models queues a relcache invalidation of it, sent at
-- commit: backends compare their cached generations again at their next statement.
CREATE FUNCTION din_models_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'din_models_changed'
    LANGUAGE C;
COMMENT ON FUNCTION din_models_changed() IS
    'trigger: invalidate cached models at commit after a change of din_models';
CREATE TRIGGER din_models_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON din_models
    FOR EACH STATEMENT EXECUTE FUNCTION din_models_changed();

-- Direct changes of weight, item and vocabulary rows (not din_import or din_drop) give the
-- models they touched a new generation: the statement's transition tables name them (old_rows
-- and new_rows), so renaming one model, whose cascade updates its rows, changes that model
-- only. TRUNCATE has no transition table and touches every model. A restore inserts these rows
-- too, so restored models get new generations; their content is unchanged.
CREATE FUNCTION din_model_rows_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'din_model_rows_changed'
    LANGUAGE C;
COMMENT ON FUNCTION din_model_rows_changed() IS
    'trigger: a new generation for the models whose weights, items or vocabularies changed';
CREATE TRIGGER din_model_rows_inserted AFTER INSERT ON din_tensors
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_updated AFTER UPDATE ON din_tensors
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_deleted AFTER DELETE ON din_tensors
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_truncated AFTER TRUNCATE ON din_tensors
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_inserted AFTER INSERT ON din_items
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_updated AFTER UPDATE ON din_items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_deleted AFTER DELETE ON din_items
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_truncated AFTER TRUNCATE ON din_items
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_inserted AFTER INSERT ON din_vocab
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_updated AFTER UPDATE ON din_vocab
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_deleted AFTER DELETE ON din_vocab
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_truncated AFTER TRUNCATE ON din_vocab
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

-- ---- scale-out (issue 18): the model tables as Citus reference tables ---------------------
-- Citus copies a reference table to every node, writes all copies in one two-phase commit and
-- copies it to a node added later; its shards carry din's triggers, which is how each node's
-- cache learns of a change (docs/SCALE.md). Citus refuses tables with triggers unless told, and
-- would otherwise turn the tables that reference din_models into local tables first.
CREATE FUNCTION din_distribute_models() RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET citus.enable_unsafe_triggers = on
    SET citus.enable_local_reference_table_foreign_keys = off
    AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension
                   WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'din_distribute_models needs the citus extension'
            USING ERRCODE = 'feature_not_supported';
    END IF;
    PERFORM pg_catalog.create_reference_table('@extschema@.din_models'::pg_catalog.regclass);
    PERFORM pg_catalog.create_reference_table('@extschema@.din_tensors'::pg_catalog.regclass);
    PERFORM pg_catalog.create_reference_table('@extschema@.din_items'::pg_catalog.regclass);
    PERFORM pg_catalog.create_reference_table('@extschema@.din_vocab'::pg_catalog.regclass);
END
$$;
COMMENT ON FUNCTION din_distribute_models() IS
    'Citus: make the model tables reference tables, so every node has every model (docs/SCALE.md)';
REVOKE EXECUTE ON FUNCTION din_distribute_models() FROM PUBLIC;

-- DROP EXTENSION din would drop the model tables and every model in them: it fails while
-- din_models has rows unless din.allow_drop_models is on (src/drop_guard.c). The event trigger
-- fires only for the tag DROP EXTENSION and the function reads the statement's parse tree, so
-- other DDL never reaches it and dropping another extension costs one function call.
CREATE FUNCTION din_drop_guard() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'din_drop_guard'
    LANGUAGE C;
COMMENT ON FUNCTION din_drop_guard() IS
    'event trigger: DROP EXTENSION din fails while models are stored, unless din.allow_drop_models';
CREATE EVENT TRIGGER din_drop_guard ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION din_drop_guard();
COMMENT ON EVENT TRIGGER din_drop_guard IS
    'DROP EXTENSION din fails while models are stored, unless din.allow_drop_models is on';
