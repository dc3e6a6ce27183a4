/*
 * cache_sql.c - din_load and din_cache: warming the model cache and looking into it.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "cache.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(din_load);
PG_FUNCTION_INFO_V1(din_cache);

/* din_load(model) - load model into the cache (shared when preloaded); its bytes there. */
Datum
din_load(PG_FUNCTION_ARGS)
{
	char *name;
	const DinCacheEntry *e;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
		        (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("model name must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	e = cache_get(name, true);
	PG_RETURN_INT64((int64)cache_entry_bytes(e));
}

/*
 * din_cache() - the loaded model versions of this database: shared ones when din is
 * preloaded (backends = how many hold a model built over the block), else this backend's.
 */
Datum
din_cache(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
	DinCacheRow *rows;
	int n;

	InitMaterializedSRF(fcinfo, 0);
	rows = shmem_enabled() ? shmem_rows(&n) : cache_local_rows(&n);
	for (int i = 0; i < n; i++) {
		Datum values[8];
		bool nulls[8] = {false};

		values[0] = CStringGetTextDatum(rows[i].name);
		values[1] = Int32GetDatum(rows[i].version);
		values[2] = Int64GetDatum(rows[i].generation);
		values[3] = Int64GetDatum(rows[i].bytes);
		values[4] = Int32GetDatum(rows[i].backends);
		values[5] = Int64GetDatum(rows[i].loads);
		values[6] = Int64GetDatum(rows[i].hits);
		values[7] = TimestampTzGetDatum(rows[i].last_used);
		nulls[7] = rows[i].last_used == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum)0;
}
