-- din 0.1.0 -> 0.2.0 (ALTER EXTENSION din UPDATE): turns a 0.1.0 install into exactly what a
-- fresh 0.2.0 install creates; test/t/040_upgrade.pl compares the two catalogs. Stored models
-- are kept.
\echo Use "ALTER EXTENSION din UPDATE TO '0.2.0'" to load this file. \quit

-- din_models: defaults and the CHECK name only pg_catalog's functions and operator. The CHECK
-- is re-added under its name (stored rows are checked again, against the same pattern).
ALTER TABLE din_models
    DROP CONSTRAINT din_models_name_check,
    ADD CONSTRAINT din_models_name_check
        CHECK (name OPERATOR(pg_catalog.~) '^[A-Za-z0-9_.-]{1,63}$'),
    ALTER COLUMN generation
        SET DEFAULT pg_catalog.nextval('@extschema@.din_generation'::pg_catalog.regclass),
    ALTER COLUMN created SET DEFAULT pg_catalog.now();

-- A body parsed here, not at each call: no name in it is looked up in the caller's search_path.
CREATE OR REPLACE FUNCTION din_import_file(model text, path text, replace boolean DEFAULT false,
                                           comment text DEFAULT NULL)
    RETURNS integer
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    SELECT @extschema@.din_import(model, pg_catalog.pg_read_binary_file(path), replace, comment);
END;

-- A change of a model's row that changes what it scores gets a new generation even when the
-- statement did not set one, so that caches keyed by generation see it (a comment does not).
-- It runs as whoever updates din_models: every name in it is qualified, and its search_path
-- is pinned so nothing the caller created can stand in for an operator or a function.
CREATE OR REPLACE FUNCTION din_models_new_generation() RETURNS trigger
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

-- 0.1.0 had one trigger for UPDATE, DELETE and TRUNCATE, without transition tables, so any
-- change touched every model; 0.2.0 names the models changed (the INSERT triggers stay).
DROP TRIGGER din_model_rows_changed ON din_tensors;
DROP TRIGGER din_model_rows_changed ON din_items;
DROP TRIGGER din_model_rows_changed ON din_vocab;
CREATE TRIGGER din_model_rows_updated AFTER UPDATE ON din_tensors
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_deleted AFTER DELETE ON din_tensors
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_truncated AFTER TRUNCATE ON din_tensors
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_updated AFTER UPDATE ON din_items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_deleted AFTER DELETE ON din_items
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_truncated AFTER TRUNCATE ON din_items
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_updated AFTER UPDATE ON din_vocab
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_deleted AFTER DELETE ON din_vocab
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();
CREATE TRIGGER din_model_rows_truncated AFTER TRUNCATE ON din_vocab
    FOR EACH STATEMENT EXECUTE FUNCTION din_model_rows_changed();

-- Comments on what had none.
COMMENT ON SEQUENCE din_generation IS
    'generations of stored models: a new value for every change of what a model scores';
COMMENT ON TABLE din_models IS
    'stored models: name, architecture, config; dropped with the extension (din.allow_drop_models)';
COMMENT ON TABLE din_tensors IS 'weights of the stored models, in chunks of at most 16 MB';
COMMENT ON TABLE din_items IS 'items tables of the stored models: attributes of each item';
COMMENT ON TABLE din_vocab IS 'vocabularies of the stored models: raw id to embedding row';
COMMENT ON FUNCTION din_models_new_generation() IS
    'trigger: a new generation for a din_models row whose name, architecture or config changed';
COMMENT ON FUNCTION din_models_changed() IS
    'trigger: invalidate cached models at commit after a change of din_models';
COMMENT ON FUNCTION din_model_rows_changed() IS
    'trigger: a new generation for the models whose weights, items or vocabularies changed';
-- The aggregates' support functions; called directly, they check their state as the
-- aggregates do.
COMMENT ON FUNCTION din_auc_trans(bytea, float8, boolean) IS
    'auc state: append one (score, label) row';
COMMENT ON FUNCTION din_auc_trans(bytea, float8, integer) IS
    'auc state: append one (score, 0/1 label) row';
COMMENT ON FUNCTION din_auc_trans(bytea, float8, smallint) IS
    'auc state: append one (score, 0/1 label) row';
COMMENT ON FUNCTION din_gauc_trans(bytea, bigint, float8, boolean) IS
    'gauc and gauc_clicks state: append one (user, score, label) row';
COMMENT ON FUNCTION din_gauc_trans(bytea, bigint, float8, integer) IS
    'gauc and gauc_clicks state: append one (user, score, 0/1 label) row';
COMMENT ON FUNCTION din_gauc_trans(bytea, bigint, float8, smallint) IS
    'gauc and gauc_clicks state: append one (user, score, 0/1 label) row';
COMMENT ON FUNCTION din_metrics_combine(bytea, bytea) IS
    'auc, gauc and gauc_clicks: join two partial states (parallel workers)';
COMMENT ON FUNCTION din_auc_final(bytea) IS 'auc: the AUC of a state';
COMMENT ON FUNCTION din_gauc_final(bytea) IS 'gauc: the impression-weighted per-user AUC of a state';
COMMENT ON FUNCTION din_gauc_clicks_final(bytea) IS 'gauc_clicks: the click-weighted per-user AUC of a state';
COMMENT ON FUNCTION din_logloss_trans(float8[], float8, boolean) IS
    'logloss state {rows, loss sum, compensation}: add one (score, label) row';
COMMENT ON FUNCTION din_logloss_trans(float8[], float8, integer) IS
    'logloss state: add one (score, 0/1 label) row';
COMMENT ON FUNCTION din_logloss_trans(float8[], float8, smallint) IS
    'logloss state: add one (score, 0/1 label) row';
COMMENT ON FUNCTION din_logloss_combine(float8[], float8[]) IS
    'logloss: join two partial states (parallel workers)';
COMMENT ON FUNCTION din_logloss_final(float8[]) IS 'logloss: the mean loss of a state';

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
