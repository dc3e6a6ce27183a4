/*
 * cache.c - backend-local model cache (see cache.h).
 *
 * A load builds the entry's memory in a context under the caller's, so an error anywhere in
 * the load frees everything; only a model that built successfully is moved under the cache's
 * long-lived context. The core's DinModel is malloc'd and freed by din_model_free on eviction.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "access/xact.h"

#include "cache.h"
#include "errors.h"

/* Enough for the handful of models one session scores with; the oldest is evicted. */
#define DIN_CACHE_SLOTS 8

static DinCacheEntry entries[DIN_CACHE_SLOTS];
static MemoryContext cache_context = NULL;
static uint64 use_clock = 0;

static void
entry_free(DinCacheEntry *e)
{
	if (!e->used)
		return;
	if (e->model != NULL)
		din_model_free(e->model);
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

/* Read the model's rows and build it; the entry is filled only on success. */
static DinCacheEntry *
load(const char *name)
{
	MemoryContext mcxt =
	    AllocSetContextCreate(CurrentMemoryContext, "din model", ALLOCSET_DEFAULT_SIZES);
	DinStored stored;
	DinModel *model = NULL;
	DinError err;
	DinCacheEntry *e;

	if (!catalog_load(name, mcxt, &stored)) {
		MemoryContextDelete(mcxt);
		no_such_model(name);
	}
	if (din_model_build(stored.config, stored.config_len, stored.tensors, stored.n_tensors, &model,
	                    &err) != DIN_OK) {
		char prefix[NAMEDATALEN + 32];

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
	e->mcxt = mcxt;
	mark_checked(e);
	return e;
}

const DinCacheEntry *
cache_get(const char *name, bool recheck)
{
	DinCacheEntry *e;
	int64 generation;

	if (strlen(name) >= NAMEDATALEN)
		no_such_model(name); /* din_models.name allows 63 characters */
	e = entry_find(name);
	if (e != NULL && !recheck && checked_this_statement(e)) {
		e->last_use = ++use_clock;
		return e;
	}
	if (!catalog_generation(name, &generation)) {
		if (e != NULL)
			entry_free(e);
		no_such_model(name);
	}
	if (e != NULL && e->stored.generation == generation) {
		mark_checked(e);
		return e;
	}
	if (e != NULL)
		entry_free(e);
	return load(name);
}

void
cache_forget(const char *name)
{
	DinCacheEntry *e = entry_find(name);

	if (e != NULL)
		entry_free(e);
}
