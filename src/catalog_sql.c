/*
 * catalog_sql.c - din_import, din_export and din_drop (README "SQL API"): a model stored,
 * read back as a file, deleted. The rows are the catalog's (catalog.c); after a change this
 * backend's cache forgets the model, so the catalog itself never calls the cache.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "cache.h"
#include "catalog.h"
#include "errors.h"

PG_FUNCTION_INFO_V1(din_import);
PG_FUNCTION_INFO_V1(din_export);
PG_FUNCTION_INFO_V1(din_drop);

/* The rule of din_models.name's CHECK, checked first for a message that says what to fix. */
static void
check_model_name(const char *name)
{
	size_t len = strlen(name);
	bool valid = len >= 1 && len <= 63;

	for (const char *p = name; valid && *p; p++)
		valid = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		        *p == '_' || *p == '.' || *p == '-';
	if (!valid)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("invalid model name \"%s\"", name),
		                errdetail("A model name is 1 to 63 letters, digits, '_', '.' or '-'.")));
}

/*
 * din_import(model, data, replace, comment) - store a model file under a name; its version.
 * The rows are written in the caller's transaction; the file is validated completely before
 * the first one (README "Storage").
 */
Datum
din_import(PG_FUNCTION_ARGS)
{
	char *name;
	bytea *data;
	char *comment = NULL;
	bool replace = false;
	int32 version;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
		        (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("model name must not be NULL")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
		        (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("model file must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	check_model_name(name);
	if (!PG_ARGISNULL(2))
		replace = PG_GETARG_BOOL(2);
	if (!PG_ARGISNULL(3))
		comment = text_to_cstring(PG_GETARG_TEXT_PP(3));

	data = PG_GETARG_BYTEA_PP(1);
	version = catalog_import(name, (const uint8 *)VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data),
	                         replace, comment);
	cache_forget(name);
	PG_RETURN_INT32(version);
}

/*
 * din_export(model) - the model file of a stored model: the same tensors and config content;
 * the id tensors (vocab.*, items.*) come after the weights whatever their place in the
 * imported file.
 */
Datum
din_export(PG_FUNCTION_ARGS)
{
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const DinCacheEntry *entry = cache_get(name, true);
	DinFile file = {.config = entry->stored.config,
	                .config_len = entry->stored.config_len,
	                .n_tensors = entry->stored.n_tensors,
	                .tensors = entry->stored.tensors};
	uint8_t *buf = NULL;
	size_t len = 0;
	DinError err;
	bytea *result;

	if (din_file_write(&file, &buf, &len, &err) != DIN_OK)
		din_report(&err, "cannot export model: ");
	if (len > MaxAllocSize - VARHDRSZ) {
		free(buf);
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
		                errmsg("model file of %zu bytes does not fit in a bytea", len),
		                errdetail("A bytea value holds at most 1 GB.")));
	}
	result = MemoryContextAllocExtended(CurrentMemoryContext, len + VARHDRSZ, MCXT_ALLOC_NO_OOM);
	if (result == NULL) {
		free(buf);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	SET_VARSIZE(result, len + VARHDRSZ);
	memcpy(VARDATA(result), buf, len);
	free(buf);
	PG_RETURN_BYTEA_P(result);
}

/* din_drop(model) - delete a model; true if it existed. */
Datum
din_drop(PG_FUNCTION_ARGS)
{
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool found = catalog_drop(name);

	cache_forget(name);
	PG_RETURN_BOOL(found);
}
