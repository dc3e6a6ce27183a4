/*
 * catalog.c - the model tables through SPI: a model file validated and stored, a stored model
 * read back for the cache, a model dropped. The SQL functions are in catalog_sql.c.
 *
 * Every query is prepared once per backend from a fixed text in which "@." stands for the
 * extension's schema (quoted), so nothing a user passes ever becomes SQL text. Imports validate
 * the whole file with the core before the first row is written.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "errors.h"
#include "models/arch.h"

#define DIN_CHUNK_BYTES (16 * 1024 * 1024)
#define DIN_ID_BATCH 65536 /* vocab rows / items per INSERT ... SELECT FROM unnest */
#define DIN_FETCH_TENSORS 4
#define DIN_FETCH_IDS 10000

typedef enum DinQuery {
	Q_GENERATION,
	Q_MODEL,
	Q_TENSORS,
	Q_VOCAB,
	Q_ITEMS,
	Q_LOCK,
	Q_INSERT_MODEL,
	Q_NEXT_GENERATION,
	Q_UPDATE_MODEL,
	Q_DELETE_TENSORS,
	Q_DELETE_ITEMS,
	Q_DELETE_VOCAB,
	Q_INSERT_TENSOR,
	Q_INSERT_VOCAB,
	Q_INSERT_ITEMS,
	Q_DROP,
	Q_COUNT
} DinQuery;

typedef struct DinQueryText {
	const char *sql;
	int nargs;
	Oid argtypes[7];
} DinQueryText;

/*
 * Every function, operator and type is qualified: these run as the caller or as the extension's
 * owner, and must mean the same whatever the caller created. "=" is OPERATOR(pg_catalog.=) and
 * so on; ORDER BY and keywords (coalesce, integer) resolve without search_path.
 */
static const DinQueryText query_text[Q_COUNT] = {
    /* xmin and tableoid: is the row this transaction's own, and which din_models it is in */
    [Q_GENERATION] = {"SELECT generation, xmin, tableoid FROM @.din_models"
                      " WHERE name OPERATOR(pg_catalog.=) $1",
                      1,
                      {TEXTOID}},
    [Q_MODEL] = {"SELECT config::pg_catalog.text, generation, version,"
                 " coalesce(pg_catalog.jsonb_array_length(config OPERATOR(pg_catalog.->)"
                 " 'item'::pg_catalog.text OPERATOR(pg_catalog.->)"
                 " 'attributes'::pg_catalog.text), 0), xmin"
                 " FROM @.din_models WHERE name OPERATOR(pg_catalog.=) $1",
                 1,
                 {TEXTOID}},
    [Q_TENSORS] = {"SELECT name, dtype, shape, chunk, data FROM @.din_tensors"
                   " WHERE model OPERATOR(pg_catalog.=) $1 ORDER BY ord, name, chunk",
                   1,
                   {TEXTOID}},
    /* vocabularies in the config's field order, so an export is deterministic */
    [Q_VOCAB] = {"SELECT v.field, v.raw_id, v.row_index FROM @.din_vocab v"
                 " LEFT JOIN (SELECT e.f OPERATOR(pg_catalog.->>) 'name'::pg_catalog.text"
                 "                   AS field, e.o"
                 "            FROM @.din_models m, pg_catalog.jsonb_array_elements("
                 "                   m.config OPERATOR(pg_catalog.->) 'fields'::pg_catalog.text)"
                 "                 WITH ORDINALITY e(f, o)"
                 "            WHERE m.name OPERATOR(pg_catalog.=) $1) p"
                 "   ON p.field OPERATOR(pg_catalog.=) v.field"
                 " WHERE v.model OPERATOR(pg_catalog.=) $1 ORDER BY p.o NULLS LAST, v.field,"
                 " v.row_index",
                 1,
                 {TEXTOID}},
    [Q_ITEMS] = {"SELECT item_id, attributes FROM @.din_items"
                 " WHERE model OPERATOR(pg_catalog.=) $1 ORDER BY item_id",
                 1,
                 {TEXTOID}},
    [Q_LOCK] = {"SELECT version FROM @.din_models WHERE name OPERATOR(pg_catalog.=) $1"
                " FOR UPDATE",
                1,
                {TEXTOID}},
    [Q_INSERT_MODEL] = {"INSERT INTO @.din_models (name, architecture, config, comment)"
                        " VALUES ($1, $2, $3::pg_catalog.jsonb, $4) RETURNING version",
                        4,
                        {TEXTOID, TEXTOID, TEXTOID, TEXTOID}},
    /*
     * The new generation is drawn first and passed in: Citus refuses a volatile DEFAULT
     * (nextval) in an UPDATE of a reference table, and every node must store the same value.
     */
    [Q_NEXT_GENERATION] = {"SELECT pg_catalog.nextval('@.din_generation'::pg_catalog.regclass)",
                           0,
                           {InvalidOid}},
    [Q_UPDATE_MODEL] = {"UPDATE @.din_models SET architecture = $2,"
                        " config = $3::pg_catalog.jsonb, comment = $4,"
                        " version = version OPERATOR(pg_catalog.+) 1, generation = $5,"
                        " created = DEFAULT WHERE name OPERATOR(pg_catalog.=) $1"
                        " RETURNING version",
                        5,
                        {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID}},
    [Q_DELETE_TENSORS] = {"DELETE FROM @.din_tensors WHERE model OPERATOR(pg_catalog.=) $1",
                          1,
                          {TEXTOID}},
    [Q_DELETE_ITEMS] = {"DELETE FROM @.din_items WHERE model OPERATOR(pg_catalog.=) $1",
                        1,
                        {TEXTOID}},
    [Q_DELETE_VOCAB] = {"DELETE FROM @.din_vocab WHERE model OPERATOR(pg_catalog.=) $1",
                        1,
                        {TEXTOID}},
    [Q_INSERT_TENSOR] = {"INSERT INTO @.din_tensors (model, name, ord, dtype, shape, chunk, data)"
                         " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                         7,
                         {TEXTOID, TEXTOID, INT4OID, TEXTOID, INT8ARRAYOID, INT4OID, BYTEAOID}},
    /* row_index = $4 + o - 1 */
    [Q_INSERT_VOCAB] = {"INSERT INTO @.din_vocab (model, field, raw_id, row_index)"
                        " SELECT $1, $2, u.raw_id,"
                        " ($4 OPERATOR(pg_catalog.+) u.o) OPERATOR(pg_catalog.-) 1"
                        " FROM pg_catalog.unnest($3) WITH ORDINALITY AS u(raw_id, o)",
                        4,
                        {TEXTOID, TEXTOID, INT8ARRAYOID, INT8OID}},
    /* attributes = $3[(o - 1) * $4 + 1 : o * $4] */
    [Q_INSERT_ITEMS] = {"INSERT INTO @.din_items (model, item_id, attributes)"
                        " SELECT $1, u.id, $3[((u.o::integer OPERATOR(pg_catalog.-) 1)"
                        " OPERATOR(pg_catalog.*) $4) OPERATOR(pg_catalog.+) 1"
                        " : u.o::integer OPERATOR(pg_catalog.*) $4]"
                        " FROM pg_catalog.unnest($2) WITH ORDINALITY AS u(id, o)",
                        4,
                        {TEXTOID, INT8ARRAYOID, INT8ARRAYOID, INT4OID}},
    [Q_DROP] = {"DELETE FROM @.din_models WHERE name OPERATOR(pg_catalog.=) $1", 1, {TEXTOID}},
};

static SPIPlanPtr plans[Q_COUNT];

bool din_catalog_writing = false;

/*
 * The pg_extension row of din, copied; pg_extension has no syscache in PostgreSQL 15.
 * Errors when din is not installed in this database.
 */
static FormData_pg_extension
extension_row(void)
{
	Oid ext_oid = get_extension_oid("din", false);
	Relation rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple tuple;
	FormData_pg_extension row;

	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
	            ObjectIdGetDatum(ext_oid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "extension \"din\" not found in pg_extension");
	row = *(Form_pg_extension)GETSTRUCT(tuple);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return row;
}

/* The quoted schema of the extension, looked up once per backend. */
static const char *
din_schema(void)
{
	static char *quoted = NULL;

	if (quoted == NULL) {
		Oid nsp = extension_row().extnamespace;
		char *name = nsp == InvalidOid ? NULL : get_namespace_name(nsp);

		if (name == NULL)
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_SCHEMA),
			                errmsg("schema of extension \"din\" not found")));
		quoted = MemoryContextStrdup(TopMemoryContext, quote_identifier(name));
	}
	return quoted;
}

/* The prepared plan of q; the caller is connected to SPI. */
static SPIPlanPtr
get_plan(DinQuery q)
{
	if (plans[q] == NULL) {
		const char *schema = din_schema();
		StringInfoData sql;
		SPIPlanPtr plan;

		initStringInfo(&sql);
		for (const char *p = query_text[q].sql; *p; p++) {
			if (p[0] == '@' && p[1] == '.')
				appendStringInfoString(&sql, schema);
			else
				appendStringInfoChar(&sql, *p);
		}
		plan = SPI_prepare(sql.data, query_text[q].nargs, (Oid *)query_text[q].argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql.data,
			     SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		plans[q] = plan;
		pfree(sql.data);
	}
	return plans[q];
}

/* Run q with args (no NULLs unless nulls says so); returns SPI_processed. */
static uint64
run(DinQuery q, Datum *args, const char *nulls, bool read_only)
{
	int rc = SPI_execute_plan(get_plan(q), args, nulls, read_only, 0);

	if (rc < 0)
		elog(ERROR, "din query %d failed: %s", (int)q, SPI_result_code_string(rc));
	return SPI_processed;
}

int
catalog_pin_search_path(void)
{
	static char *path = NULL;
	int level = NewGUCNestLevel();

	if (path == NULL)
		path = MemoryContextStrdup(TopMemoryContext,
		                           psprintf("pg_catalog, %s, pg_temp", din_schema()));
	(void)set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
	                        0, false);
	return level;
}

void
catalog_unpin_search_path(int level)
{
	AtEOXact_GUC(true, level);
}

/*
 * Connect to SPI with search_path pinned; returns what spi_finish needs. reading: only the
 * model tables will be read. Under Citus they are reference tables (docs/SCALE.md), and a
 * worker scoring the rows of a shard reads them through Citus, which refuses a query on a
 * Citus table from within the query of a shard, lest that table move between nodes meanwhile.
 * A reference table has a copy on every node and never moves, so reads are let through; writes
 * are not (din_import must not run from within a shard's query).
 */
static int
spi_connect(bool reading)
{
	int level;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	level = catalog_pin_search_path();
	if (reading && GetConfigOption("citus.allow_nested_distributed_execution", true, false) != NULL)
		(void)set_config_option("citus.allow_nested_distributed_execution", "on", PGC_USERSET,
		                        PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

static void
spi_finish(int pinned)
{
	catalog_unpin_search_path(pinned);
	SPI_finish();
}

static pg_attribute_noreturn() void corrupt(const char *model, const char *fmt, ...)
    pg_attribute_printf(2, 3);

/* Rows of model that cannot form a model file: data_corrupted, naming what is wrong. */
static void
corrupt(const char *model, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
	                errmsg("stored model \"%s\" is corrupt", model), errdetail("%s", detail)));
	pg_unreachable();
}

bool
catalog_generation(const char *name, DinGeneration *out)
{
	Datum arg = CStringGetTextDatum(name);
	bool found;
	int pinned = spi_connect(true);

	found = run(Q_GENERATION, &arg, NULL, true) > 0;
	if (found) {
		HeapTuple tuple = SPI_tuptable->vals[0];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool isnull;

		out->generation = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		out->xmin = DatumGetTransactionId(SPI_getbinval(tuple, desc, 2, &isnull));
		out->uncommitted = TransactionIdIsCurrentTransactionId(out->xmin);
		out->relid = DatumGetObjectId(SPI_getbinval(tuple, desc, 3, &isnull));
	}
	spi_finish(pinned);
	return found;
}

/* A growing list of tensors allocated in one context. */
typedef struct TensorList {
	MemoryContext mcxt;
	DinTensor *items;
	int n;
	int cap;
} TensorList;

static DinTensor *
tensor_add(TensorList *list, const char *name, DinDtype dtype, int ndim, const int64 *shape,
           void *data, size_t nbytes)
{
	DinTensor *t;

	if (list->n == list->cap) {
		list->cap = list->cap ? list->cap * 2 : 32;
		list->items = list->items ? repalloc(list->items, list->cap * sizeof(DinTensor))
		                          : MemoryContextAlloc(list->mcxt, list->cap * sizeof(DinTensor));
	}
	t = &list->items[list->n++];
	memset(t, 0, sizeof(*t));
	t->name = MemoryContextStrdup(list->mcxt, name);
	t->dtype = dtype;
	t->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		t->shape[i] = shape[i];
	t->data = data;
	t->nbytes = nbytes;
	return t;
}

/* A one-dimensional bigint[] without NULLs as (data, length); raises on anything else. */
static int
int8_array(const char *model, ArrayType *a, const char *what, const int64 **data)
{
	if (ARR_NDIM(a) == 0) {
		*data = NULL;
		return 0;
	}
	if (ARR_NDIM(a) != 1 || ARR_ELEMTYPE(a) != INT8OID || array_contains_nulls(a))
		corrupt(model, "The %s is not a one-dimensional bigint array without NULLs.", what);
	*data = (const int64 *)ARR_DATA_PTR(a);
	return ARR_DIMS(a)[0];
}

/* Reading of din_tensors: each tensor's chunks appended to one aligned buffer. */
typedef struct TensorReader {
	const char *model;
	TensorList *list;
	DinTensor *cur; /* tensor being filled, or NULL */
	int next_chunk;
	size_t filled;
} TensorReader;

static void
tensor_finish(TensorReader *r)
{
	if (r->cur != NULL && r->filled != r->cur->nbytes)
		corrupt(r->model, "Tensor \"%s\" has %zu bytes of data; its shape needs %zu.", r->cur->name,
		        r->filled, r->cur->nbytes);
	r->cur = NULL;
}

static void
tensor_row(TensorReader *r, HeapTuple tuple, TupleDesc desc)
{
	bool isnull;
	char *name = TextDatumGetCString(SPI_getbinval(tuple, desc, 1, &isnull));
	int32 chunk = DatumGetInt32(SPI_getbinval(tuple, desc, 4, &isnull));
	bytea *data = DatumGetByteaPP(SPI_getbinval(tuple, desc, 5, &isnull));
	size_t len = VARSIZE_ANY_EXHDR(data);

	if (r->cur == NULL || strcmp(r->cur->name, name) != 0) {
		char *dtype_name = TextDatumGetCString(SPI_getbinval(tuple, desc, 2, &isnull));
		ArrayType *shape_arr = DatumGetArrayTypeP(SPI_getbinval(tuple, desc, 3, &isnull));
		const int64 *shape;
		int ndim = int8_array(r->model, shape_arr, "shape of a tensor", &shape);
		DinDtype dtype;
		uint64 nbytes;

		tensor_finish(r);
		for (int i = 0; i < r->list->n; i++)
			if (strcmp(r->list->items[i].name, name) == 0)
				corrupt(r->model, "Tensor \"%s\" appears under two ord values.", name);
		if (chunk != 0)
			corrupt(r->model, "Tensor \"%s\" has no chunk 0.", name);
		if (!din_dtype_from_name(dtype_name, &dtype))
			corrupt(r->model, "Tensor \"%s\" has unknown dtype \"%s\".", name, dtype_name);
		if (ndim > DIN_MAX_DIMS)
			corrupt(r->model, "Tensor \"%s\" has %d dimensions; at most %d are allowed.", name,
			        ndim, DIN_MAX_DIMS);
		nbytes = din_dtype_size(dtype);
		for (int i = 0; i < ndim; i++) {
			if (shape[i] < 0 || shape[i] > DIN_MAX_DIM)
				corrupt(r->model, "Tensor \"%s\" has dimension " INT64_FORMAT ".", name, shape[i]);
			nbytes *= (uint64)shape[i];
			if (nbytes > DIN_MAX_TENSOR_BYTES)
				corrupt(r->model, "Tensor \"%s\" is larger than 2^40 bytes.", name);
		}
		r->cur = tensor_add(r->list, name, dtype, ndim, shape,
		                    MemoryContextAllocHuge(r->list->mcxt, Max(nbytes, 1)), nbytes);
		r->next_chunk = 0;
		r->filled = 0;
	}
	if (chunk != r->next_chunk)
		corrupt(r->model, "Tensor \"%s\" has chunk %d where chunk %d was expected.", name, chunk,
		        r->next_chunk);
	if (len > r->cur->nbytes - r->filled)
		corrupt(r->model, "Tensor \"%s\" has more data than its shape needs.", name);
	memcpy((char *)r->cur->data + r->filled, VARDATA_ANY(data), len);
	r->filled += len;
	r->next_chunk++;
}

/* A growing int64 buffer in one context (huge allocations allowed). */
typedef struct Int64Buf {
	MemoryContext mcxt;
	int64 *data;
	size_t n;
	size_t cap;
} Int64Buf;

static void
int64buf_append(Int64Buf *b, const int64 *values, size_t n)
{
	if (b->data == NULL || b->n + n > b->cap) {
		size_t cap = Max(b->cap * 2, b->n + n);

		cap = Max(cap, 1024);
		b->data = b->data ? repalloc_huge(b->data, cap * sizeof(int64))
		                  : MemoryContextAllocHuge(b->mcxt, cap * sizeof(int64));
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->n, values, n * sizeof(int64));
	b->n += n;
}

/* Open a read-only cursor on q for model name. */
static Portal
open_cursor(DinQuery q, const char *name)
{
	Datum arg = CStringGetTextDatum(name);
	Portal portal = SPI_cursor_open(NULL, get_plan(q), &arg, NULL, true);

	if (portal == NULL)
		elog(ERROR, "SPI_cursor_open failed: %s", SPI_result_code_string(SPI_result));
	return portal;
}

/* Fetch the next batch into SPI_tuptable; false at the end. */
static bool
fetch(Portal portal, long count, MemoryContext rowcxt)
{
	MemoryContextReset(rowcxt);
	CHECK_FOR_INTERRUPTS();
	SPI_cursor_fetch(portal, true, count);
	return SPI_processed > 0;
}

static void
load_tensors(const char *name, TensorList *list, MemoryContext rowcxt)
{
	Portal portal = open_cursor(Q_TENSORS, name);
	TensorReader reader = {.model = name, .list = list};

	while (fetch(portal, DIN_FETCH_TENSORS, rowcxt)) {
		MemoryContext old = MemoryContextSwitchTo(rowcxt);

		for (uint64 i = 0; i < SPI_processed; i++)
			tensor_row(&reader, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
		MemoryContextSwitchTo(old);
		SPI_freetuptable(SPI_tuptable);
	}
	tensor_finish(&reader);
	SPI_cursor_close(portal);
}

static void
add_vocab(TensorList *list, const char *field, Int64Buf *ids)
{
	char tensor[DIN_MAX_NAME + 16];
	int64 shape[1] = {(int64)ids->n};

	snprintf(tensor, sizeof(tensor), "vocab.%s", field);
	tensor_add(list, tensor, DIN_I64, 1, shape, ids->data, ids->n * sizeof(int64));
}

/* One vocab.<field> tensor per field; row_index must run 0, 1, ... without gaps. */
static void
load_vocab(const char *name, TensorList *list, MemoryContext rowcxt)
{
	Portal portal = open_cursor(Q_VOCAB, name);
	char field[DIN_MAX_NAME + 1] = "";
	bool have_field = false;
	Int64Buf ids = {.mcxt = list->mcxt};

	while (fetch(portal, DIN_FETCH_IDS, rowcxt)) {
		MemoryContext old = MemoryContextSwitchTo(rowcxt);

		for (uint64 i = 0; i < SPI_processed; i++) {
			HeapTuple tuple = SPI_tuptable->vals[i];
			TupleDesc desc = SPI_tuptable->tupdesc;
			bool isnull;
			char *f = TextDatumGetCString(SPI_getbinval(tuple, desc, 1, &isnull));
			int64 raw = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
			int64 row = DatumGetInt64(SPI_getbinval(tuple, desc, 3, &isnull));

			if (strlen(f) > DIN_MAX_NAME)
				corrupt(name, "Vocabulary field name \"%s\" is too long.", f);
			if (!have_field || strcmp(f, field) != 0) {
				if (have_field)
					add_vocab(list, field, &ids);
				have_field = true;
				strlcpy(field, f, sizeof(field));
				ids = (Int64Buf){.mcxt = list->mcxt};
			}
			if (row != (int64)ids.n)
				corrupt(name,
				        "The vocabulary of field \"%s\" has row " INT64_FORMAT
				        " where row %zu was expected.",
				        f, row, ids.n);
			int64buf_append(&ids, &raw, 1);
		}
		MemoryContextSwitchTo(old);
		SPI_freetuptable(SPI_tuptable);
	}
	if (have_field)
		add_vocab(list, field, &ids);
	SPI_cursor_close(portal);
}

/* items.id [n] and items.attributes [n, n_attr] from din_items, ordered by item id. */
static void
load_items(const char *name, int n_attr, TensorList *list, MemoryContext rowcxt)
{
	Portal portal = open_cursor(Q_ITEMS, name);
	Int64Buf ids = {.mcxt = list->mcxt};
	Int64Buf attrs = {.mcxt = list->mcxt};
	int64 shape[2];

	while (fetch(portal, DIN_FETCH_IDS, rowcxt)) {
		MemoryContext old = MemoryContextSwitchTo(rowcxt);

		for (uint64 i = 0; i < SPI_processed; i++) {
			HeapTuple tuple = SPI_tuptable->vals[i];
			TupleDesc desc = SPI_tuptable->tupdesc;
			bool isnull;
			int64 id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
			ArrayType *a = DatumGetArrayTypeP(SPI_getbinval(tuple, desc, 2, &isnull));
			const int64 *values;
			int n = int8_array(name, a, "attributes array of an item", &values);

			if (n != n_attr)
				corrupt(name, "Item " INT64_FORMAT " has %d attributes; the config lists %d.", id,
				        n, n_attr);
			int64buf_append(&ids, &id, 1);
			int64buf_append(&attrs, values, n);
		}
		MemoryContextSwitchTo(old);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	if (n_attr == 0 && ids.n == 0)
		return;
	shape[0] = (int64)ids.n;
	shape[1] = n_attr;
	int64buf_append(&ids, NULL, 0);
	int64buf_append(&attrs, NULL, 0);
	tensor_add(list, "items.id", DIN_I64, 1, shape, ids.data, ids.n * sizeof(int64));
	tensor_add(list, "items.attributes", DIN_I64, 2, shape, attrs.data, attrs.n * sizeof(int64));
}

static bool catalog_load_as_owner(const char *name, MemoryContext mcxt, DinStored *out);

/*
 * catalog_load - the weights of a model, for scoring. Whoever may execute a scoring function
 * may score, but only roles granted SELECT on din_tensors, din_items and din_vocab may read
 * the weights themselves; so the fixed queries below run as the extension's owner. Only the
 * user id changes (not SECURITY DEFINER: no function runs with the owner's rights, and the
 * queries take no SQL text from the caller); an error restores it with the (sub)transaction.
 * As PostgreSQL does for maintenance run as a table's owner, this is a security-restricted
 * operation under a pinned search_path (spi_connect), so nothing the caller defined runs.
 */
bool
catalog_load(const char *name, MemoryContext mcxt, DinStored *out)
{
	Oid owner = extension_row().extowner;
	Oid save_user;
	int save_sec;
	volatile bool found = false;

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner,
	                       save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		found = catalog_load_as_owner(name, mcxt, out);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	return found;
}

static bool
catalog_load_as_owner(const char *name, MemoryContext mcxt, DinStored *out)
{
	Datum arg = CStringGetTextDatum(name);
	TensorList list = {.mcxt = mcxt};
	MemoryContext rowcxt;
	HeapTuple tuple;
	TupleDesc desc;
	bool isnull;
	int n_attr;
	int pinned = spi_connect(true);

	if (run(Q_MODEL, &arg, NULL, true) == 0) {
		spi_finish(pinned);
		return false;
	}
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	out->config =
	    MemoryContextStrdup(mcxt, TextDatumGetCString(SPI_getbinval(tuple, desc, 1, &isnull)));
	out->config_len = strlen(out->config);
	out->generation = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
	out->version = DatumGetInt32(SPI_getbinval(tuple, desc, 3, &isnull));
	n_attr = DatumGetInt32(SPI_getbinval(tuple, desc, 4, &isnull));
	out->xmin = DatumGetTransactionId(SPI_getbinval(tuple, desc, 5, &isnull));
	SPI_freetuptable(SPI_tuptable);

	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "din rows", ALLOCSET_DEFAULT_SIZES);
	load_tensors(name, &list, rowcxt);
	load_vocab(name, &list, rowcxt);
	load_items(name, n_attr, &list, rowcxt);
	MemoryContextDelete(rowcxt);
	spi_finish(pinned);

	out->n_tensors = list.n;
	out->tensors = list.items;
	return true;
}

/* ---- import ---- */

static Datum
int8_array_datum(const int64 *values, size_t n)
{
	Datum *datums = palloc(Max(n, 1) * sizeof(Datum));
	ArrayType *a;

	for (size_t i = 0; i < n; i++) {
		int64 v;

		memcpy(&v, values + i, sizeof(v)); /* file data need not be 8-byte aligned */
		datums[i] = Int64GetDatum(v);
	}
	a = construct_array(datums, (int)n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	pfree(datums);
	return PointerGetDatum(a);
}

static void
write_weight(Datum model, const DinTensor *t, int ord)
{
	size_t done = 0;
	int chunk = 0;
	Datum shape = int8_array_datum(t->shape, t->ndim);

	do {
		size_t len = Min(t->nbytes - done, (size_t)DIN_CHUNK_BYTES);
		bytea *data = palloc(len + VARHDRSZ);
		Datum args[7];

		CHECK_FOR_INTERRUPTS();
		SET_VARSIZE(data, len + VARHDRSZ);
		memcpy(VARDATA(data), (const char *)t->data + done, len);
		args[0] = model;
		args[1] = CStringGetTextDatum(t->name);
		args[2] = Int32GetDatum(ord);
		args[3] = CStringGetTextDatum(din_dtype_name(t->dtype));
		args[4] = shape;
		args[5] = Int32GetDatum(chunk);
		args[6] = PointerGetDatum(data);
		run(Q_INSERT_TENSOR, args, NULL, false);
		pfree(data);
		done += len;
		chunk++;
	} while (done < t->nbytes);
}

static void
write_vocab(Datum model, const DinTensor *t)
{
	size_t n = t->nbytes / sizeof(int64);
	Datum field = CStringGetTextDatum(t->name + strlen("vocab."));

	for (size_t start = 0; start < n; start += DIN_ID_BATCH) {
		size_t len = Min(n - start, (size_t)DIN_ID_BATCH);
		Datum args[4] = {model, field, int8_array_datum((const int64 *)t->data + start, len),
		                 Int64GetDatum((int64)start)};

		CHECK_FOR_INTERRUPTS();
		run(Q_INSERT_VOCAB, args, NULL, false);
		pfree(DatumGetPointer(args[2]));
	}
}

static void
write_items(Datum model, const DinTensor *ids, const DinTensor *attrs)
{
	size_t n = ids->nbytes / sizeof(int64);
	int n_attr = attrs->ndim == 2 ? (int)attrs->shape[1] : 0;

	for (size_t start = 0; start < n; start += DIN_ID_BATCH) {
		size_t len = Min(n - start, (size_t)DIN_ID_BATCH);
		Datum args[4] = {
		    model, int8_array_datum((const int64 *)ids->data + start, len),
		    int8_array_datum((const int64 *)attrs->data + start * n_attr, len * n_attr),
		    Int32GetDatum(n_attr)};

		CHECK_FOR_INTERRUPTS();
		run(Q_INSERT_ITEMS, args, NULL, false);
		pfree(DatumGetPointer(args[1]));
		pfree(DatumGetPointer(args[2]));
	}
}

/*
 * A validated file copied into palloc'd memory, so that the core's malloc'd DinFile is freed
 * before any SPI call can raise an error.
 */
typedef struct ImportFile {
	char *config;
	const char *architecture;
	int n_tensors;
	DinTensor *tensors; /* data points into the caller's bytea */
} ImportFile;

/* palloc that frees the core's file before raising out of memory. */
static void *
alloc_or_free(size_t size, DinFile *file)
{
	void *p = MemoryContextAllocExtended(CurrentMemoryContext, Max(size, 1), MCXT_ALLOC_NO_OOM);

	if (p == NULL) {
		din_file_free(file);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	return p;
}

static void
validate_file(const uint8 *bytes, size_t len, ImportFile *out)
{
	DinFile file;
	DinModel *model = NULL;
	DinError err;

	if (din_file_read(bytes, len, &file, &err) != DIN_OK)
		din_report(&err, "invalid model file: ");
	/* offsets in a file need not be multiples of the element size; the core loads elements */
	for (int i = 0; i < file.n_tensors; i++)
		if ((uintptr_t)file.tensors[i].data % din_dtype_size(file.tensors[i].dtype) != 0) {
			void *copy = alloc_or_free(file.tensors[i].nbytes, &file);

			memcpy(copy, file.tensors[i].data, file.tensors[i].nbytes);
			file.tensors[i].data = copy;
		}
	if (din_model_build(file.config, file.config_len, file.tensors, file.n_tensors, &model, &err) !=
	    DIN_OK) {
		din_file_free(&file);
		din_report(&err, "invalid model file: ");
	}
	out->architecture = din_arch_name(model->arch);
	din_model_free(model);

	out->config = alloc_or_free(file.config_len + 1, &file);
	memcpy(out->config, file.config, file.config_len);
	out->config[file.config_len] = '\0';
	out->n_tensors = file.n_tensors;
	out->tensors = alloc_or_free(file.n_tensors * sizeof(DinTensor), &file);
	for (int i = 0; i < file.n_tensors; i++) {
		out->tensors[i] = file.tensors[i];
		out->tensors[i].name = alloc_or_free(strlen(file.tensors[i].name) + 1, &file);
		strcpy(out->tensors[i].name, file.tensors[i].name);
	}
	din_file_free(&file);
}

static int32
store_model(const char *name, const uint8 *bytes, size_t len, bool replace, const char *comment)
{
	Datum model = CStringGetTextDatum(name);
	ImportFile file;
	bool exists;
	Datum args[5];
	char nulls[5] = {' ', ' ', ' ', comment ? ' ' : 'n', ' '};
	bool isnull;
	int32 version;
	const DinTensor *item_ids = NULL;
	const DinTensor *item_attrs = NULL;
	int pinned = spi_connect(false);

	/* the row lock makes concurrent replaces of one model wait for each other */
	exists = run(Q_LOCK, &model, NULL, false) > 0;
	if (exists && !replace)
		ereport(ERROR,
		        (errcode(ERRCODE_DUPLICATE_OBJECT), errmsg("model \"%s\" already exists", name),
		         errhint("Pass replace => true to replace it.")));

	validate_file(bytes, len, &file);

	args[0] = model;
	args[1] = CStringGetTextDatum(file.architecture);
	args[2] = CStringGetTextDatum(file.config);
	args[3] = comment ? CStringGetTextDatum(comment) : (Datum)0;
	if (exists) {
		run(Q_DELETE_TENSORS, &model, NULL, false);
		run(Q_DELETE_ITEMS, &model, NULL, false);
		run(Q_DELETE_VOCAB, &model, NULL, false);
		run(Q_NEXT_GENERATION, NULL, NULL, false);
		args[4] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		run(Q_UPDATE_MODEL, args, nulls, false);
	} else
		run(Q_INSERT_MODEL, args, nulls, false);
	version =
	    DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	for (int i = 0; i < file.n_tensors; i++) {
		const DinTensor *t = &file.tensors[i];

		if (strncmp(t->name, "vocab.", 6) == 0)
			write_vocab(model, t);
		else if (strcmp(t->name, "items.id") == 0)
			item_ids = t;
		else if (strcmp(t->name, "items.attributes") == 0)
			item_attrs = t;
		else
			write_weight(model, t, i);
	}
	if (item_ids != NULL && item_attrs != NULL)
		write_items(model, item_ids, item_attrs);
	else if (item_ids != NULL || item_attrs != NULL)
		elog(ERROR, "model file has only one of items.id and items.attributes");

	spi_finish(pinned);
	return version;
}

int32
catalog_import(const char *name, const uint8 *bytes, size_t len, bool replace, const char *comment)
{
	volatile int32 version = 0;

	din_catalog_writing = true;
	PG_TRY();
	{
		version = store_model(name, bytes, len, replace, comment);
	}
	PG_FINALLY();
	{
		din_catalog_writing = false;
	}
	PG_END_TRY();
	return version;
}

bool
catalog_drop(const char *name)
{
	Datum arg = CStringGetTextDatum(name);
	volatile bool found = false;

	din_catalog_writing = true;
	PG_TRY();
	{
		int pinned = spi_connect(false);

		found = run(Q_DROP, &arg, NULL, false) > 0;
		spi_finish(pinned);
	}
	PG_FINALLY();
	{
		din_catalog_writing = false;
	}
	PG_END_TRY();
	return found;
}
