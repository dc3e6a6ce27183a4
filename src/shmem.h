/*
 * shmem.h - the shared model cache: one packed copy of each model version in dynamic shared
 * memory (a DSA area), mapped by every backend and parallel worker.
 *
 * Only with shared_preload_libraries = 'din' (shmem_enabled); cache.c falls back to
 * backend-local memory otherwise. A version is keyed by (database, din_models relation,
 * model name, generation, xmin of the din_models row), so databases and a re-created extension
 * never share a block, and a generation a restore repeats never matches an older version.
 *
 * A backend pins the versions it uses until its transaction ends: a pinned version is never
 * evicted or freed, so the DinModel a statement built over it stays valid. Between
 * transactions a backend keeps its DinModel but not the pin; shmem_pin tells it whether the
 * block is still the one it built over (load_id) before it uses it again.
 */
#ifndef DIN_SHMEM_H
#define DIN_SHMEM_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "catalog.h"

/* A backend's handle on one loaded version. */
typedef struct DinSharedRef {
	int slot;       /* -1: none */
	uint64 load_id; /* distinguishes successive occupants of the slot */
	Size bytes;
} DinSharedRef;

/* din.cache_size in kB: the cap on the bytes of packed models in shared memory. */
extern int din_cache_size_kb;

/* shmem_init - from _PG_init: the GUC, and the shared memory hooks when being preloaded. */
void shmem_init(void);

/* shmem_enabled - true when din was preloaded, so the shared cache exists. */
bool shmem_enabled(void);

#define DIN_PART_KEY_BYTES 32

/*
 * shmem_part_key - the random key, made when the server starts, that signs references to the
 * parallel metric parts left in shared memory; NULL when din was not preloaded.
 */
const uint8 *shmem_part_key(void);

/*
 * shmem_find - pin the loaded version (relid, name, generation, xmin) and map it in this
 * backend; false when it is not loaded.
 */
bool shmem_find(Oid relid, const char *name, int64 generation, TransactionId xmin,
                DinSharedRef *ref, const void **block);

/*
 * shmem_publish - copy stored into shared memory as (relid, name, generation, xmin), evicting the
 * least recently used unpinned versions as needed, then pin and map it (or the equal version
 * another backend published meanwhile). Raises program_limit_exceeded when din.cache_size
 * cannot hold it.
 */
void shmem_publish(Oid relid, const char *name, const DinStored *stored, DinSharedRef *ref,
                   const void **block);

/*
 * shmem_pin - pin ref for the current transaction if its slot still holds the same load;
 * false (and ref forgotten) when it was evicted or freed since.
 */
bool shmem_pin(DinSharedRef *ref);

/* shmem_unmap - this backend dropped its DinModel over ref. */
void shmem_unmap(DinSharedRef *ref);

/*
 * shmem_retire - free the unpinned versions of (relid, name) older than (generation, xmin) (all
 * of them when generation is -1: the model no longer exists). Older means an earlier xmin, or
 * the same xmin and a lower generation: generations alone may run backwards after a restore.
 */
void shmem_retire(Oid relid, const char *name, int64 generation, TransactionId xmin);

/*
 * shmem_retire_at_commit - this transaction replaced or dropped model name: when it commits,
 * free the versions of name that no transaction uses.
 */
void shmem_retire_at_commit(const char *name);

/* One row of din_cache(). */
typedef struct DinCacheRow {
	char name[NAMEDATALEN];
	int32 version;
	int64 generation;
	int64 bytes;
	int32 backends;
	int64 loads;
	int64 hits;
	TimestampTz last_used;
} DinCacheRow;

/* shmem_rows - the versions loaded for this database; palloc'd array, count in *n. */
DinCacheRow *shmem_rows(int *n);

#endif
