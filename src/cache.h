/*
 * cache.h - the models a backend scores with, keyed by model name.
 *
 * An entry holds a DinModel bound to the model's tensors: tensors packed once in shared
 * memory when din is preloaded (shmem.h), else read into this backend's memory. It is
 * checked against din_models once per statement, so a statement sees one version of a model
 * from its first call to its last, and the next statement sees any import or drop committed
 * in between. The check reads din_models only when a relcache invalidation of din_models
 * (sent by the tables' triggers at commit) arrived since the last read, or when the snapshot
 * may differ (repeatable read, serializable, this transaction's own changes).
 */
#ifndef DIN_CACHE_H
#define DIN_CACHE_H

#include "postgres.h"

#include "catalog.h"
#include "models/model.h"
#include "shmem.h"

typedef struct DinCacheEntry {
	bool used;
	char name[NAMEDATALEN];
	DinStored stored;                /* config and tensors (in shared memory or mcxt) */
	DinModel *model;                 /* malloc'd by the core, bound to stored.tensors */
	uint64 serial;                   /* this load's number, unique in the backend */
	MemoryContext mcxt;              /* child of the cache's context */
	uint64 last_use;                 /* for least-recently-used eviction */
	LocalTransactionId checked_lxid; /* statement in which generation was last compared */
	TimestampTz checked_stmt;
	Oid relid;            /* din_models the entry was read from */
	bool uncommitted;     /* loaded from this transaction's own writes (never shared) */
	bool trusted;         /* the last comparison can stand until an invalidation arrives */
	uint64 checked_inval; /* invalidations seen at the last comparison */
	bool is_shared;       /* stored points into shared memory, through shared */
	DinSharedRef shared;
	int64 loads; /* backend-local counts, for din_cache() without preload */
	int64 hits;
} DinCacheEntry;

/* cache_init - from _PG_init: the relcache callback that marks entries for a recheck. */
void cache_init(void);

/*
 * cache_get - the model called name, loaded or revalidated as needed; raises undefined_object
 * when there is no such model. recheck compares the generation even if this statement already
 * did (a function's first call in a query passes true: several statements of one query string
 * share a transaction and a statement timestamp). The entry stays valid until the next
 * cache_get or cache_forget: callers must not keep it across calls.
 */
const DinCacheEntry *cache_get(const char *name, bool recheck);

/* cache_forget - drop the entry of name (after this backend imported or dropped it). */
void cache_forget(const char *name);

/* cache_entry_bytes - bytes of the entry's tensors and config (its packed size). */
Size cache_entry_bytes(const DinCacheEntry *e);

/* cache_local_rows - din_cache() rows for this backend's entries (without preload). */
DinCacheRow *cache_local_rows(int *n);

#endif
