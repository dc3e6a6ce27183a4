/*
 * shmem.c - the shared model cache (see shmem.h).
 *
 * A fixed control struct in the main shared memory (slots of loaded versions, one LWLock)
 * and a DSA area, created by the first backend that loads a model and pinned so it outlives
 * every backend. The lock is held only for slot bookkeeping and the copy of a new block;
 * reading the tables happens before, without it. Bytes are accounted per block (packed size)
 * and capped by din.cache_size, a SIGHUP setting: the DSA grows on demand, so no memory is
 * reserved up front and a new cap applies at the next load.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/transam.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/dsa.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pack.h"
#include "shmem.h"

/* Distinct versions kept at once across all databases; a full table evicts like bytes do. */
#define DIN_SHARED_SLOTS 128

typedef struct DinSlot {
	uint64 load_id; /* 0: empty */
	Oid dboid;
	Oid relid;
	char name[NAMEDATALEN];
	int64 generation;
	TransactionId xmin; /* of the din_models row; with generation, names the version */
	int32 version;
	dsa_pointer block;
	Size bytes;
	int pins;     /* backends using it in an open transaction */
	int backends; /* backends holding a DinModel built over it */
	int64 loads;
	int64 hits;
	uint64 use_clock;
	TimestampTz last_used;
} DinSlot;

typedef struct DinShared {
	LWLock *lock;
	int dsa_tranche;
	dsa_handle area_handle;
	uint64 next_load_id;
	uint64 use_clock;
	Size used_bytes;
	/* signs references to parallel metric parts (metrics_shared.c); never leaves the server */
	uint8 part_key[DIN_PART_KEY_BYTES];
	DinSlot slots[DIN_SHARED_SLOTS];
} DinShared;

int din_cache_size_kb = 256 * 1024;

static DinShared *shared = NULL;
static dsa_area *area = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* This backend's view: the load_id it pinned (this transaction) or mapped, per slot. */
static uint64 pinned[DIN_SHARED_SLOTS];
static uint64 mapped[DIN_SHARED_SLOTS];
static bool any_pinned = false;

/* Models this transaction imported or dropped: their old versions go when it commits. */
#define DIN_PENDING_RETIRE 8
static char pending_retire[DIN_PENDING_RETIRE][NAMEDATALEN];
static int n_pending_retire = 0;
static bool callbacks_registered = false;

static void
din_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(DinShared)));
	RequestNamedLWLockTranche("din", 1);
}

static void
din_shmem_startup(void)
{
	bool found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("din model cache", sizeof(DinShared), &found);
	if (!found) {
		memset(shared, 0, sizeof(DinShared));
		shared->lock = &(GetNamedLWLockTranche("din"))->lock;
		shared->dsa_tranche = LWLockNewTrancheId();
		shared->area_handle = DSM_HANDLE_INVALID;
		shared->next_load_id = 1;
		if (!pg_strong_random(shared->part_key, sizeof shared->part_key))
			ereport(FATAL, (errmsg("could not generate a random key for din")));
	}
	LWLockRelease(AddinShmemInitLock);
}

void
shmem_init(void)
{
	DefineCustomIntVariable(
	    "din.cache_size",
	    "Shared memory for loaded models (needs din in shared_preload_libraries).",
	    "Loading a model past it evicts the least recently used version no transaction is using.",
	    &din_cache_size_kb, 256 * 1024, 1, INT_MAX, PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = din_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = din_shmem_startup;
}

bool
shmem_enabled(void)
{
	return shared != NULL;
}

const uint8 *
shmem_part_key(void)
{
	return shared ? shared->part_key : NULL;
}

/* ---- slot bookkeeping; the caller holds shared->lock exclusively ---- */

static void
slot_free(DinSlot *s)
{
	dsa_free(area, s->block);
	shared->used_bytes -= s->bytes;
	memset(s, 0, sizeof(DinSlot));
}

static bool
same_model(const DinSlot *s, Oid relid, const char *name)
{
	return s->load_id != 0 && s->dboid == MyDatabaseId && s->relid == relid &&
	       strcmp(s->name, name) == 0;
}

/*
 * True when s is a version older than (generation, xmin). A later row version of a model has a
 * later xmin; the generation orders the versions one transaction wrote. Generations alone do
 * not order versions: a restore sets the sequence back below the ones its own inserts drew.
 */
static bool
older_than(const DinSlot *s, int64 generation, TransactionId xmin)
{
	if (s->xmin != xmin)
		return TransactionIdPrecedes(s->xmin, xmin);
	return s->generation < generation;
}

static bool
newer_exists(const DinSlot *s)
{
	for (int i = 0; i < DIN_SHARED_SLOTS; i++)
		if (same_model(&shared->slots[i], s->relid, s->name) &&
		    shared->slots[i].dboid == s->dboid &&
		    older_than(s, shared->slots[i].generation, shared->slots[i].xmin))
			return true;
	return false;
}

static void
slot_touch(DinSlot *s)
{
	s->use_clock = ++shared->use_clock;
	s->last_used = GetCurrentTimestamp();
}

static void
slot_pin(int i, DinSharedRef *ref)
{
	DinSlot *s = &shared->slots[i];

	if (pinned[i] != s->load_id) {
		s->pins++;
		pinned[i] = s->load_id;
		any_pinned = true;
	}
	if (mapped[i] != s->load_id) {
		s->backends++;
		mapped[i] = s->load_id;
	}
	slot_touch(s);
	ref->slot = i;
	ref->load_id = s->load_id;
	ref->bytes = s->bytes;
}

/* The least recently used unpinned slot, or NULL. */
static DinSlot *
lru_victim(void)
{
	DinSlot *victim = NULL;

	for (int i = 0; i < DIN_SHARED_SLOTS; i++) {
		DinSlot *s = &shared->slots[i];

		if (s->load_id != 0 && s->pins == 0 && (victim == NULL || s->use_clock < victim->use_clock))
			victim = s;
	}
	return victim;
}

/* ---- this backend's pins and mappings ---- */

static void attach(void);

static bool
retiring(const DinSlot *s)
{
	if (s->dboid != MyDatabaseId)
		return false;
	for (int i = 0; i < n_pending_retire; i++)
		if (strcmp(pending_retire[i], s->name) == 0)
			return true;
	return false;
}

/* Free the unpinned versions of the models this transaction replaced or dropped. */
static void
retire_pending(void)
{
	attach();
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < DIN_SHARED_SLOTS; i++) {
		DinSlot *s = &shared->slots[i];

		if (s->load_id != 0 && s->pins == 0 && retiring(s))
			slot_free(s);
	}
	LWLockRelease(shared->lock);
}

static void
unpin_all(bool commit)
{
	if (!any_pinned) {
		n_pending_retire = 0;
		return;
	}
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < DIN_SHARED_SLOTS; i++) {
		DinSlot *s = &shared->slots[i];

		if (pinned[i] == 0)
			continue;
		if (s->load_id == pinned[i]) {
			s->pins--;
			/* an old version nobody uses is garbage: newer snapshots load the newer one */
			if (s->pins == 0 && (newer_exists(s) || (commit && retiring(s))))
				slot_free(s);
		}
		pinned[i] = 0;
	}
	any_pinned = false;
	n_pending_retire = 0;
	LWLockRelease(shared->lock);
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event) {
	case XACT_EVENT_PRE_COMMIT:
		/* still allowed to fail here; other backends reload if they lose a block early */
		if (n_pending_retire > 0)
			retire_pending();
		break;
	case XACT_EVENT_COMMIT:
	case XACT_EVENT_PARALLEL_COMMIT:
		unpin_all(true);
		break;
	case XACT_EVENT_ABORT:
	case XACT_EVENT_PARALLEL_ABORT:
	case XACT_EVENT_PREPARE:
		unpin_all(false);
		break;
	default:
		break;
	}
}

/* Runs before the transaction abort of a dying backend: release everything here. */
static void
backend_exit(int code, Datum arg)
{
	unpin_all(false);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < DIN_SHARED_SLOTS; i++)
		if (mapped[i] != 0 && shared->slots[i].load_id == mapped[i])
			shared->slots[i].backends--;
	memset(mapped, 0, sizeof(mapped));
	LWLockRelease(shared->lock);
}

/* Attach the DSA area (creating it on the first load in the cluster). */
static void
attach(void)
{
	MemoryContext old;

	if (area != NULL)
		return;
	if (!callbacks_registered) {
		RegisterXactCallback(xact_callback, NULL);
		before_shmem_exit(backend_exit, (Datum)0);
		callbacks_registered = true;
	}
	LWLockRegisterTranche(shared->dsa_tranche, "din_dsa");
	old = MemoryContextSwitchTo(TopMemoryContext);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->area_handle == DSM_HANDLE_INVALID) {
		area = dsa_create(shared->dsa_tranche);
		dsa_pin(area);
		shared->area_handle = dsa_get_handle(area);
	} else
		area = dsa_attach(shared->area_handle);
	dsa_pin_mapping(area);
	LWLockRelease(shared->lock);
	MemoryContextSwitchTo(old);
}

static int
find_slot(Oid relid, const char *name, int64 generation, TransactionId xmin)
{
	for (int i = 0; i < DIN_SHARED_SLOTS; i++)
		if (same_model(&shared->slots[i], relid, name) &&
		    shared->slots[i].generation == generation && shared->slots[i].xmin == xmin)
			return i;
	return -1;
}

bool
shmem_find(Oid relid, const char *name, int64 generation, TransactionId xmin, DinSharedRef *ref,
           const void **block)
{
	int i;
	dsa_pointer dp = InvalidDsaPointer;

	attach();
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	i = find_slot(relid, name, generation, xmin);
	if (i >= 0) {
		shared->slots[i].hits++;
		slot_pin(i, ref);
		dp = shared->slots[i].block;
	}
	LWLockRelease(shared->lock);
	if (i < 0)
		return false;
	*block = dsa_get_address(area, dp);
	return true;
}

bool
shmem_pin(DinSharedRef *ref)
{
	DinSlot *s;
	bool held;

	if (ref->slot < 0)
		return false;
	if (pinned[ref->slot] == ref->load_id)
		return true;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	s = &shared->slots[ref->slot];
	held = s->load_id == ref->load_id;
	if (held) {
		s->hits++;
		slot_pin(ref->slot, ref);
	}
	LWLockRelease(shared->lock);
	if (!held) {
		if (mapped[ref->slot] == ref->load_id)
			mapped[ref->slot] = 0; /* the slot was emptied, and its counts with it */
		ref->slot = -1;
	}
	return held;
}

void
shmem_unmap(DinSharedRef *ref)
{
	if (ref->slot < 0)
		return;
	if (mapped[ref->slot] == ref->load_id) {
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		if (shared->slots[ref->slot].load_id == ref->load_id)
			shared->slots[ref->slot].backends--;
		LWLockRelease(shared->lock);
		mapped[ref->slot] = 0;
	}
	ref->slot = -1;
}

void
shmem_retire(Oid relid, const char *name, int64 generation, TransactionId xmin)
{
	attach();
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < DIN_SHARED_SLOTS; i++) {
		DinSlot *s = &shared->slots[i];

		if (same_model(s, relid, name) && s->pins == 0 &&
		    (generation < 0 || older_than(s, generation, xmin)))
			slot_free(s);
	}
	LWLockRelease(shared->lock);
}

static pg_attribute_noreturn() void too_small(const char *name, Size bytes, Size limit)
{
	Size pinned_bytes = shared->used_bytes;

	LWLockRelease(shared->lock);
	if (bytes > limit)
		ereport(ERROR,
		        (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
		         errmsg("model \"%s\" does not fit in din.cache_size", name),
		         errdetail("The model needs %zu bytes; din.cache_size is %zu bytes.", bytes, limit),
		         errhint("Raise din.cache_size.")));
	ereport(ERROR,
	        (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
	         errmsg("no room in din.cache_size to load model \"%s\"", name),
	         errdetail("The model needs %zu bytes; %zu of %zu bytes hold models that open "
	                   "transactions are using.",
	                   bytes, pinned_bytes, limit),
	         errhint("Raise din.cache_size, or end the transactions that use other models.")));
	pg_unreachable();
}

void
shmem_publish(Oid relid, const char *name, const DinStored *stored, DinSharedRef *ref,
              const void **block)
{
	Size bytes = pack_size(stored);
	Size limit = (Size)din_cache_size_kb * 1024;
	dsa_pointer dp = InvalidDsaPointer;
	int free_slot = -1;
	DinSlot *s;
	void *dst;

	attach();
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	free_slot = find_slot(relid, name, stored->generation, stored->xmin);
	if (free_slot >= 0) {
		/* another backend loaded it while this one read the tables */
		shared->slots[free_slot].loads++;
		slot_pin(free_slot, ref);
		dp = shared->slots[free_slot].block;
		LWLockRelease(shared->lock);
		*block = dsa_get_address(area, dp);
		return;
	}
	for (int i = 0; i < DIN_SHARED_SLOTS; i++) {
		s = &shared->slots[i];
		if (same_model(s, relid, name) && s->pins == 0 &&
		    older_than(s, stored->generation, stored->xmin))
			slot_free(s);
	}
	if (bytes > limit)
		too_small(name, bytes, limit);
	while (shared->used_bytes + bytes > limit) {
		s = lru_victim();
		if (s == NULL)
			too_small(name, bytes, limit);
		slot_free(s);
	}
	for (;;) {
		for (int i = 0; i < DIN_SHARED_SLOTS && free_slot < 0; i++)
			if (shared->slots[i].load_id == 0)
				free_slot = i;
		if (free_slot >= 0)
			dp = dsa_allocate_extended(area, bytes, DSA_ALLOC_HUGE | DSA_ALLOC_NO_OOM);
		if (DsaPointerIsValid(dp))
			break;
		/* no free slot, or the operating system refused a segment: make room and retry */
		s = lru_victim();
		if (s == NULL) {
			LWLockRelease(shared->lock);
			if (free_slot >= 0)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
				                errmsg("out of shared memory loading model \"%s\"", name),
				                errdetail("%zu bytes could not be allocated.", bytes)));
			ereport(ERROR,
			        (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			         errmsg("too many model versions in use to load model \"%s\"", name),
			         errdetail("At most %d versions can be loaded at once.", DIN_SHARED_SLOTS)));
		}
		slot_free(s);
	}

	dst = dsa_get_address(area, dp);
	pack_write(dst, stored);
	s = &shared->slots[free_slot];
	memset(s, 0, sizeof(DinSlot));
	s->load_id = shared->next_load_id++;
	s->dboid = MyDatabaseId;
	s->relid = relid;
	strlcpy(s->name, name, NAMEDATALEN);
	s->generation = stored->generation;
	s->xmin = stored->xmin;
	s->version = stored->version;
	s->block = dp;
	s->bytes = bytes;
	s->loads = 1;
	shared->used_bytes += bytes;
	slot_pin(free_slot, ref);
	LWLockRelease(shared->lock);
	*block = dst;
}

DinCacheRow *
shmem_rows(int *n)
{
	DinCacheRow *rows = palloc0(DIN_SHARED_SLOTS * sizeof(DinCacheRow));

	*n = 0;
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < DIN_SHARED_SLOTS; i++) {
		const DinSlot *s = &shared->slots[i];
		DinCacheRow *r = &rows[*n];

		if (s->load_id == 0 || s->dboid != MyDatabaseId)
			continue;
		strlcpy(r->name, s->name, NAMEDATALEN);
		r->version = s->version;
		r->generation = s->generation;
		r->bytes = (int64)s->bytes;
		r->backends = s->backends;
		r->loads = s->loads;
		r->hits = s->hits;
		r->last_used = s->last_used;
		(*n)++;
	}
	LWLockRelease(shared->lock);
	return rows;
}

void
shmem_retire_at_commit(const char *name)
{
	if (shared == NULL)
		return;
	for (int i = 0; i < n_pending_retire; i++)
		if (strcmp(pending_retire[i], name) == 0)
			return;
	if (n_pending_retire == DIN_PENDING_RETIRE)
		return; /* the rest go by eviction or when a backend sees they are gone */
	strlcpy(pending_retire[n_pending_retire++], name, NAMEDATALEN);
	if (!callbacks_registered) {
		RegisterXactCallback(xact_callback, NULL);
		before_shmem_exit(backend_exit, (Datum)0);
		callbacks_registered = true;
	}
}
