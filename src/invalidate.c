/*
 * invalidate.c - the statement triggers that tell every backend a model changed.
 *
 * A change to the model tables must reach two things: din_models.generation (what a backend
 * compares its cached version with) and the relcache invalidation of din_models (what makes
 * a backend compare again; cache.c). PostgreSQL queues the invalidation with the transaction
 * and sends it at commit, so no backend rereads a model before its new rows are visible, and a
 * rollback sends nothing that matters.
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "catalog.h"

PG_FUNCTION_INFO_V1(din_models_changed);
PG_FUNCTION_INFO_V1(din_model_rows_changed);

static TriggerData *
trigger_data(FunctionCallInfo fcinfo, const char *fn)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("%s must be called as a trigger", fn)));
	return (TriggerData *)fcinfo->context;
}

/* din_models_changed - statement trigger of din_models: invalidate it at commit. */
Datum
din_models_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = trigger_data(fcinfo, "din_models_changed");

	CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
	return PointerGetDatum(NULL);
}

/*
 * din_model_rows_changed - statement trigger of din_tensors, din_items, din_vocab. din_import
 * and din_drop set the generation of the model they write themselves, and a cascade from
 * din_models (trigger depth > 1) follows a change of din_models; any other statement changed
 * weights behind din_models' back. An INSERT (fired with its new rows as the transition
 * table new_rows) gives the models it added rows to a new generation; an UPDATE, DELETE or
 * TRUNCATE, not knowing which models it touched, gives every model one. The UPDATE of
 * din_models fires din_models_changed, which sends the invalidation.
 */
Datum
din_model_rows_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = trigger_data(fcinfo, "din_model_rows_changed");
	Oid nsp = RelationGetNamespace(td->tg_relation);
	Oid models;
	char *sql;
	int rc;

	if (din_catalog_writing || DatumGetInt32(DirectFunctionCall1(pg_trigger_depth, 0)) > 1)
		return PointerGetDatum(NULL);
	models = get_relname_relid("din_models", nsp);
	if (!OidIsValid(models))
		return PointerGetDatum(NULL);
	sql = psprintf(
	    "UPDATE %s.din_models SET generation = DEFAULT%s",
	    quote_identifier(get_namespace_name(nsp)),
	    TRIGGER_FIRED_BY_INSERT(td->tg_event) ? " WHERE name IN (SELECT model FROM new_rows)" : "");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event) &&
	    SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "din: registering the inserted rows failed");
	rc = SPI_execute(sql, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "din: bumping model generations failed: %s", SPI_result_code_string(rc));
	SPI_finish();
	return PointerGetDatum(NULL);
}
