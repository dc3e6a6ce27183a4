/*
 * drop_guard.c - DROP EXTENSION din refuses to delete stored models unless asked to.
 *
 * The model tables are members of the extension, so dropping it drops them and every model
 * with them, which no one does on purpose without a copy. The extension's event trigger
 * din_drop_guard (ddl_command_start, only for the tag DROP EXTENSION, so other DDL never
 * reaches it) calls this function before anything is dropped. It reads the statement's parse
 * tree rather than its text: only a DROP EXTENSION naming din is checked. It looks nothing up
 * by a name the caller could shadow: din_models is found in the schema of this function (the
 * extension's) and scanned directly, without SQL. Why ddl_command_start: at sql_drop the
 * tables (and this trigger, an extension member) are already gone, so the rows could not be
 * counted; and a C function, not PL/pgSQL, because only C sees the parse tree (which
 * extension is dropped) instead of the query text.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "commands/event_trigger.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "din.h"

bool din_allow_drop_models = false;

PG_FUNCTION_INFO_V1(din_drop_guard);

/* Rows of din_models in schema nsp (0 when it has no such table). */
static int64
stored_models(Oid nsp)
{
	Oid relid = get_relname_relid("din_models", nsp);
	Relation rel;
	Snapshot snapshot;
	TableScanDesc scan;
	TupleTableSlot *slot;
	int64 n = 0;

	if (!OidIsValid(relid))
		return 0;
	rel = table_open(relid, AccessShareLock);
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	scan = table_beginscan(rel, snapshot, 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		n++;
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return n;
}

Datum
din_drop_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	DropStmt *stmt;
	ListCell *lc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("din_drop_guard must be called as an event trigger")));
	trigdata = (EventTriggerData *)fcinfo->context;
	if (din_allow_drop_models || !IsA(trigdata->parsetree, DropStmt))
		PG_RETURN_VOID();
	stmt = (DropStmt *)trigdata->parsetree;
	if (stmt->removeType != OBJECT_EXTENSION)
		PG_RETURN_VOID();

	foreach (lc, stmt->objects) {
		int64 n;

		if (strcmp(strVal(lfirst(lc)), "din") != 0)
			continue;
		n = stored_models(get_func_namespace(fcinfo->flinfo->fn_oid));
		if (n == 0)
			continue;
		ereport(ERROR,
		        (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
		         errmsg("extension din still stores %lld model%s", (long long)n, n == 1 ? "" : "s"),
		         errdetail("Dropping the extension drops din_models, din_tensors, din_items and "
		                   "din_vocab, and every model in them."),
		         errhint("Keep a copy (din_export or pg_dump), then drop the models with din_drop, "
		                 "or SET din.allow_drop_models = on to drop them with the extension.")));
	}
	PG_RETURN_VOID();
}
