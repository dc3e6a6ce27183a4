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
