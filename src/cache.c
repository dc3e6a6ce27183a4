/*
 * cache.c - the models a backend scores with (see cache.h).
 *
 * A load builds the entry's memory in a context under the caller's, so an error anywhere in
 * the load frees everything; only a model that built successfully is moved under the cache's
 * long-lived context. The core's DinModel is malloc'd and freed by din_model_free on eviction.
 *
 * When din_models may have changed: a relcache invalidation of it counts in inval_count.
 * Invalidations are sent when a transaction commits, after its rows became visible, and a
 * backend reads them at its next transaction start or lock; so a comparison made with the
 * snapshot of a transaction that read no invalidation of its own (inval_lxid) stays true
 * until inval_count moves. Anything else (a transaction-wide snapshot, invalidations read
 * mid-transaction, this transaction's own writes) reads din_models again.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cache.h"
#include "errors.h"
#include "pack.h"

/* Enough for the handful of models one session scores with; the oldest is evicted. */
#define DIN_CACHE_SLOTS 8

static DinCacheEntry entries[DIN_CACHE_SLOTS];
static MemoryContext cache_context = NULL;
static uint64 use_clock = 0;
static uint64 load_serial = 0;

static uint64 inval_count = 0;
static LocalTransactionId inval_lxid = InvalidLocalTransactionId;
static Oid models_relid = InvalidOid; /* din_models as last read; invalid: count every relation */
static bool fallback_notice_sent = false; /* the no-preload LOG line, once per backend */

static void
relcache_changed(Datum arg, Oid relid)
{
	if (relid == InvalidOid || models_relid == InvalidOid || relid == models_relid) {
		inval_count++;
		inval_lxid = MyProc != NULL ? MyProc->lxid : InvalidLocalTransactionId;
	}
}

void
cache_init(void)
{
	CacheRegisterRelcacheCallback(relcache_changed, (Datum)0);
}

static void
entry_free(DinCacheEntry *e)
{
	if (!e->used)
		return;
	if (e->model != NULL)
		din_model_free(e->model);
	if (e->is_shared)
		shmem_unmap(&e->shared);
	if (e->mcxt != NULL)
		MemoryContextDelete(e->mcxt);
	memset(e, 0, sizeof(*e));
}

static DinCacheEntry *
entry_find(const char *name)
{
	for (int i = 0; i < DIN_CACHE_SLOTS; i++)
		if (entries[i].used && strcmp(entries[i].name, name) == 0)
			return &entries[i];
	return NULL;
}

/* A free slot, or the least recently used one emptied. */
static DinCacheEntry *
entry_slot(void)
{
	DinCacheEntry *victim = &entries[0];

	for (int i = 0; i < DIN_CACHE_SLOTS; i++) {
		if (!entries[i].used)
			return &entries[i];
		if (entries[i].last_use < victim->last_use)
			victim = &entries[i];
	}
	entry_free(victim);
	return victim;
}

static pg_attribute_noreturn() void no_such_model(const char *name)
{
	ereport(ERROR,
	        (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("model \"%s\" does not exist", name)));
	pg_unreachable();
}

static bool
checked_this_statement(const DinCacheEntry *e)
{
	return e->checked_lxid == MyProc->lxid &&
	       e->checked_stmt == GetCurrentStatementStartTimestamp();
}

static void
mark_checked(DinCacheEntry *e)
{
	e->checked_lxid = MyProc->lxid;
	e->checked_stmt = GetCurrentStatementStartTimestamp();
	e->last_use = ++use_clock;
}

/* After a read of din_models with inval_count at `seen` before it. */
static void
mark_compared(DinCacheEntry *e, uint64 seen)
{
	e->checked_inval = seen;
	e->trusted = !IsolationUsesXactSnapshot() && !e->uncommitted && inval_lxid != MyProc->lxid;
	mark_checked(e);
}

/* True when no invalidation could have changed what the last read of din_models saw. */
static bool
still_current(const DinCacheEntry *e)
{
	if (!e->trusted || IsolationUsesXactSnapshot())
		return false;
	AcceptInvalidationMessages();
	return e->checked_inval == inval_count;
}

/* The entry's block is pinned for this transaction; false when it was evicted. */
static bool
entry_pin(DinCacheEntry *e)
{
	return !e->is_shared || shmem_pin(&e->shared);
}

/* The packed block of version g of name in shared memory, reading the tables on a miss. */
static const void *
shared_block(const char *name, const DinGeneration *g, DinSharedRef *ref, bool *loaded)
{
	const void *block;
	MemoryContext tmp;
	DinStored stored;

	*loaded = false;
	if (shmem_find(g->relid, name, g->generation, g->xmin, ref, &block))
		return block;
	tmp = AllocSetContextCreate(CurrentMemoryContext, "din model rows", ALLOCSET_DEFAULT_SIZES);
	if (!catalog_load(name, tmp, &stored))
		no_such_model(name);
	/* the build over the shared copy validates it: no second pass over the local one */
	shmem_publish(g->relid, name, &stored, ref, &block);
	MemoryContextDelete(tmp);
	*loaded = true;
	return block;
}

/* Bind the model of version g of name; the entry is filled only on success. */
static DinCacheEntry *
load(const char *name, const DinGeneration *g)
{
	MemoryContext mcxt =
	    AllocSetContextCreate(CurrentMemoryContext, "din model", ALLOCSET_DEFAULT_SIZES);
	bool use_shared = shmem_enabled() && !g->uncommitted;
	DinSharedRef ref = {.slot = -1};
	bool loaded = true;
	DinStored stored;
	DinModel *model = NULL;
	DinError err;
	DinCacheEntry *e;

	/*
	 * LOG, not NOTICE: a stock server (and its make installcheck) should see no chatter for a
	 * supported setup; the line stays in the server log for whoever tunes memory.
	 */
	if (!shmem_enabled() && !fallback_notice_sent && !IsParallelWorker()) {
		ereport(LOG,
		        (errmsg("din is not in shared_preload_libraries; models are cached per connection"),
		         errhint("Add din to shared_preload_libraries to keep one copy of each model in "
		                 "shared memory.")));
		fallback_notice_sent = true;
	}
	if (use_shared)
		pack_read(shared_block(name, g, &ref, &loaded), mcxt, &stored);
	else if (!catalog_load(name, mcxt, &stored)) {
		MemoryContextDelete(mcxt);
		no_such_model(name);
	}
	if (din_model_build(stored.config, stored.config_len, stored.tensors, stored.n_tensors, &model,
	                    &err) != DIN_OK) {
		char prefix[NAMEDATALEN + 32];

		shmem_unmap(&ref);
		MemoryContextDelete(mcxt);
		snprintf(prefix, sizeof(prefix), "stored model \"%s\" is invalid: ", name);
		din_report(&err, prefix);
	}

	if (cache_context == NULL)
		cache_context =
		    AllocSetContextCreate(TopMemoryContext, "din model cache", ALLOCSET_SMALL_SIZES);
	MemoryContextSetParent(mcxt, cache_context);
	e = entry_slot();
	e->used = true;
	strlcpy(e->name, name, sizeof(e->name));
	e->stored = stored;
	e->model = model;
	e->serial = ++load_serial;
	e->mcxt = mcxt;
	e->relid = g->relid;
	e->uncommitted = g->uncommitted;
	e->is_shared = use_shared;
	e->shared = ref;
	e->loads = loaded ? 1 : 0;
	e->hits = loaded ? 0 : 1;
	return e;
}

const DinCacheEntry *
cache_get(const char *name, bool recheck)
{
	DinCacheEntry *e;
	DinGeneration g;
	uint64 seen;

	if (strlen(name) >= NAMEDATALEN)
		no_such_model(name); /* din_models.name allows 63 characters */
	e = entry_find(name);
	if (e != NULL && !recheck && checked_this_statement(e)) {
		e->last_use = ++use_clock;
		return e;
	}
	if (e != NULL && still_current(e) && entry_pin(e)) {
		e->hits++;
		mark_checked(e);
		return e;
	}

	AcceptInvalidationMessages();
	seen = inval_count;
	if (!catalog_generation(name, &g)) {
		if (e != NULL) {
			if (e->is_shared)
				shmem_retire(e->relid, name, -1, InvalidTransactionId);
			entry_free(e);
		}
		no_such_model(name);
	}
	models_relid = g.relid;
	if (e != NULL && e->relid == g.relid && e->stored.generation == g.generation &&
	    e->stored.xmin == g.xmin && e->uncommitted == g.uncommitted && entry_pin(e)) {
		e->hits++;
		mark_compared(e, seen);
		return e;
	}
	if (e != NULL)
		entry_free(e);
	if (shmem_enabled() && !g.uncommitted)
		shmem_retire(g.relid, name, g.generation, g.xmin);
	e = load(name, &g);
	mark_compared(e, seen);
	return e;
}

void
cache_forget(const char *name)
{
	DinCacheEntry *e = entry_find(name);

	if (e != NULL)
		entry_free(e);
	shmem_retire_at_commit(name);
}

Size
cache_entry_bytes(const DinCacheEntry *e)
{
	return e->is_shared ? e->shared.bytes : pack_size(&e->stored);
}

DinCacheRow *
cache_local_rows(int *n)
{
	DinCacheRow *rows = palloc0(DIN_CACHE_SLOTS * sizeof(DinCacheRow));

	*n = 0;
	for (int i = 0; i < DIN_CACHE_SLOTS; i++) {
		const DinCacheEntry *e = &entries[i];
		DinCacheRow *r = &rows[*n];

		if (!e->used)
			continue;
		strlcpy(r->name, e->name, NAMEDATALEN);
		r->version = e->stored.version;
		r->generation = e->stored.generation;
		r->bytes = (int64)cache_entry_bytes(e);
		r->backends = 1;
		r->loads = e->loads;
		r->hits = e->hits;
		r->last_used = e->checked_stmt;
		(*n)++;
	}
	return rows;
}
