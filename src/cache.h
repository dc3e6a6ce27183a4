/*
 * cache.h - backend-local cache of built models, keyed by model name.
 *
 * An entry holds the model's tensors (rebuilt from the tables) and the DinModel bound to
 * them. It is checked against din_models.generation once per statement, so a statement sees
 * one version of a model from its first call to its last, and the next statement sees any
 * import or drop committed in between.
 */
#ifndef DIN_CACHE_H
#define DIN_CACHE_H

#include "postgres.h"

#include "catalog.h"
#include "models/model.h"

typedef struct DinCacheEntry {
	bool used;
	char name[NAMEDATALEN];
	DinStored stored;                /* config and tensors, in mcxt */
	DinModel *model;                 /* malloc'd by the core, bound to stored.tensors */
	MemoryContext mcxt;              /* child of the cache's context */
	uint64 last_use;                 /* for least-recently-used eviction */
	LocalTransactionId checked_lxid; /* statement in which generation was last compared */
	TimestampTz checked_stmt;
} DinCacheEntry;

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

#endif
