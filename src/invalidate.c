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
 * is_citus_shard - whether rel is a copy of a model table under another name: with the model
 * tables made Citus reference tables (docs/SCALE.md), Citus copies their triggers onto each
 * node's shard (din_tensors_102011, ...), and runs every row change there. The generation of
 * a changed model is then the coordinator's business: din_import draws it once and writes it
 * into din_models, whose shard trigger on each node sends the invalidation there. Bumping it
 * from a shard would be a distributed UPDATE from inside a shard, which Citus refuses.
 */
static bool
is_citus_shard(Relation rel)
{
	const char *name = RelationGetRelationName(rel);

	return strcmp(name, "din_tensors") != 0 && strcmp(name, "din_items") != 0 &&
	       strcmp(name, "din_vocab") != 0;
}

/*
 * din_model_rows_changed - statement trigger of din_tensors, din_items, din_vocab. din_import
 * and din_drop set the generation of the model they write themselves; any other statement
 * changed weights behind din_models' back. It gives the models named in its transition tables
 * (new_rows for an INSERT, old_rows and new_rows for an UPDATE, old_rows for a DELETE) a new
 * generation, and every model after a TRUNCATE or when it has no transition table. That UPDATE
 * of din_models fires din_models_changed, which sends the invalidation.
 */
Datum
din_model_rows_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = trigger_data(fcinfo, "din_model_rows_changed");
	Oid nsp = RelationGetNamespace(td->tg_relation);
	const char *touched;
	char *sql;
	int rc, pinned;

	if (din_catalog_writing || !OidIsValid(get_relname_relid("din_models", nsp)) ||
	    is_citus_shard(td->tg_relation))
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		touched = "";
	else if (td->tg_oldtable && td->tg_newtable)
		touched = " WHERE name OPERATOR(pg_catalog.=) ANY"
		          " (SELECT model FROM old_rows UNION ALL SELECT model FROM new_rows)";
	else if (td->tg_oldtable)
		touched = " WHERE name OPERATOR(pg_catalog.=) ANY (SELECT model FROM old_rows)";
	else if (td->tg_newtable)
		touched = " WHERE name OPERATOR(pg_catalog.=) ANY (SELECT model FROM new_rows)";
	else
		/* a 0.1.0 catalog (triggers without transition tables) until ALTER EXTENSION din
		 * UPDATE: every model, as 0.1.0 did */
		touched = "";
	sql = psprintf("UPDATE %s.din_models SET generation = DEFAULT%s",
	               quote_identifier(get_namespace_name(nsp)), touched);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pinned = catalog_pin_search_path();
	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "din: registering the changed rows failed");
	rc = SPI_execute(sql, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "din: bumping model generations failed: %s", SPI_result_code_string(rc));
	catalog_unpin_search_path(pinned);
	SPI_finish();
	return PointerGetDatum(NULL);
}
