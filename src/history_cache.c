/*
 * history_cache.c - history states reused across the calls of one scoring call site (see
 * history_cache.h).
 *
 * The state computed last is always at hand: rows of one user that come together reuse it
 * without anything being kept. Other states are kept, each in one allocation holding the state
 * (cache-line aligned, as the kernels like) and the copied inputs its key points to, found by a
 * dynahash table whose match function compares the inputs in full, so two histories that
 * collide are never confused; a bit per hash slot, set when a state is kept there, spares the
 * lookup of histories never kept. A state is computed straight into its allocation, which enters
 * the table once computed (a failed computation leaves it to the next call to free). Kept
 * states form a list, least recently used first, from which the oldest go when the limit needs
 * room.
 *
 * Keeping costs: its allocation is memory the query has not touched yet (a page fault per 4 kB,
 * several microseconds each on a virtual machine, more than computing a small state), and when
 * no history comes back that buys nothing. So a state is kept when its history was seen before
 * (a table of recent hashes: users whose rows are interleaved are kept from their second row
 * on), or when it is small (SMALL_STATE) while few bytes (UNREUSED_MAX) have been kept since a
 * kept state was last reused: then it is kept from its first row on. Rows whose histories are
 * all distinct cost a hash and a few compares more than without the cache (and the few small
 * states kept first), and a large state is never kept before its history comes back.
 */
#include "postgres.h"

#include "lib/ilist.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "history_cache.h"

int din_history_cache_size = 65536;

#define SEEN_SLOTS 4096                  /* hashes of histories computed and not kept */
#define KEPT_BITS 65536                  /* a bit per hash slot that a kept state set */
#define SMALL_STATE ((Size)4096)         /* a state kept from its first row, within: */
#define UNREUSED_MAX ((Size)1024 * 1024) /* bytes kept while no kept state is reused */

/* The inputs a state depends on, pointing into memory of the cache's once it is kept. */
typedef struct StateKey {
	uint32 hash;
	int len;
	bool reads_time;
	bool has_times;
	int64 at;
	const int64 *history; /* [len] */
	const int64 *times;   /* [len] when has_times */
} StateKey;

typedef struct StateEntry {
	StateKey key; /* first: dynahash's key */
	dlist_node use;
	void *block; /* the allocation: the state and the key's arrays */
	Size bytes;
	const float *state;
} StateEntry;

/* The state computed last when it was not kept, with a copy of its inputs. */
typedef struct OwnState {
	bool valid;
	StateKey key;
	int64 *inputs; /* the key's history, then its times */
	Size inputs_bytes;
	float *state;
	Size state_bytes;
} OwnState;

struct HistoryCache {
	MemoryContext parent; /* the own state */
	MemoryContext mcxt;   /* the table, the kept states and seen; reset when the model changes */
	HTAB *table;          /* NULL until a state is kept */
	uint64 *kept;         /* [KEPT_BITS / 64]: clear, no state of that hash slot is kept */
	dlist_head uses;      /* least recently used first */
	StateEntry *last;     /* the kept state used last, or NULL */
	StateEntry fill;      /* a state being computed to be kept (when fill.block is set) */
	OwnState own;
	Size bytes;
	Size unreused; /* bytes kept since a kept state other than the last was reused */
	uint64 serial; /* the model load the states belong to */
	uint32 *seen;  /* [SEEN_SLOTS]: hashes of own states since replaced; NULL until one is */
};

static uint32
key_hash(const void *key, Size keysize)
{
	return ((const StateKey *)key)->hash;
}

/* Whether x and y name the same inputs, their hashes aside. */
static bool
same_inputs(const StateKey *x, const StateKey *y)
{
	size_t n = sizeof(int64) * x->len;

	if (x->len != y->len || x->reads_time != y->reads_time || x->has_times != y->has_times ||
	    x->at != y->at)
		return false;
	if (n > 0 && memcmp(x->history, y->history, n) != 0)
		return false;
	return !x->has_times || n == 0 || memcmp(x->times, y->times, n) == 0;
}

static int
key_match(const void *a, const void *b, Size keysize)
{
	const StateKey *x = a, *y = b;

	return x->hash == y->hash && same_inputs(x, y) ? 0 : 1;
}

/* splitmix64's finalizer. */
static uint64
mix(uint64 h)
{
	h = (h ^ (h >> 30)) * UINT64CONST(0xbf58476d1ce4e5b9);
	h = (h ^ (h >> 27)) * UINT64CONST(0x94d049bb133111eb);
	return h ^ (h >> 31);
}

/* Multiply-xor chains over the words, four at a time so they overlap, then mixed. */
static uint64
hash_words(uint64 h, const int64 *w, int n)
{
	const uint64 k = UINT64CONST(0x9e3779b97f4a7c15);
	uint64 a = h, b = ~h, c = h ^ k, d = h + k;
	int i = 0;

	for (; i + 4 <= n; i += 4) {
		a = (a ^ (uint64)w[i]) * k;
		b = (b ^ (uint64)w[i + 1]) * k;
		c = (c ^ (uint64)w[i + 2]) * k;
		d = (d ^ (uint64)w[i + 3]) * k;
	}
	for (; i < n; i++)
		a = (a ^ (uint64)w[i]) * k;
	return mix(mix(a ^ (b << 1)) ^ mix(c ^ (d << 1)));
}

/* k for key, pointing into the caller's arrays, with its hash. */
static void
make_key(const DinHistoryKey *key, StateKey *k)
{
	uint64 h;

	k->len = key->len;
	k->reads_time = key->reads_time != 0;
	k->has_times = key->times != NULL;
	k->at = key->at;
	k->history = key->history;
	k->times = key->times;
	h = hash_words((uint64)k->len, k->history, k->len);
	if (k->reads_time)
		h = hash_words(h, &k->at, 1);
	if (k->has_times)
		h = hash_words(h, k->times, k->len);
	k->hash = (uint32)h;
}

/* Copies of k's arrays at dst; k then points to them. */
static void
copy_inputs(StateKey *k, int64 *dst)
{
	size_t n = sizeof(int64) * k->len;

	if (n == 0)
		return;
	k->history = memcpy(dst, k->history, n);
	if (k->has_times)
		k->times = memcpy(dst + k->len, k->times, n);
}

static Size
inputs_bytes(const StateKey *k)
{
	return sizeof(int64) * k->len * (k->has_times ? 2 : 1);
}

/* The word of the kept bits that holds hash h's bit, and *mask that bit. */
static uint64 *
kept_word(HistoryCache *cache, uint32 h, uint64 *mask)
{
	*mask = UINT64CONST(1) << (h % KEPT_BITS % 64);
	return &cache->kept[h % KEPT_BITS / 64];
}

static void
reset(HistoryCache *cache)
{
	MemoryContextReset(cache->mcxt);
	cache->table = NULL;
	cache->kept = NULL;
	cache->seen = NULL;
	dlist_init(&cache->uses);
	cache->last = NULL;
	cache->fill.block = NULL;
	cache->own.valid = false;
	cache->bytes = 0;
	cache->unreused = 0;
}

HistoryCache *
history_cache_create(MemoryContext mcxt)
{
	HistoryCache *cache = MemoryContextAllocZero(mcxt, sizeof(HistoryCache));

	cache->parent = mcxt;
	cache->mcxt = AllocSetContextCreate(mcxt, "din history states", ALLOCSET_DEFAULT_SIZES);
	dlist_init(&cache->uses);
	return cache;
}

static void
drop_oldest(HistoryCache *cache)
{
	StateEntry *e = dlist_container(StateEntry, use, dlist_pop_head_node(&cache->uses));
	void *block = e->block;

	cache->bytes -= e->bytes;
	if (cache->last == e)
		cache->last = NULL;
	hash_search(cache->table, &e->key, HASH_REMOVE, NULL);
	pfree(block);
}

/* cache->fill: room for the state of k (n floats) and k's inputs; NULL beyond the limit. */
static float *
prepare_fill(HistoryCache *cache, const StateKey *k, size_t n)
{
	StateEntry *f = &cache->fill;
	Size floats = sizeof(float) * n, limit = (Size)din_history_cache_size * 1024;
	char *at;

	f->bytes = sizeof(StateEntry) + PG_CACHE_LINE_SIZE + floats + inputs_bytes(k);
	if (f->bytes > limit)
		return NULL;
	if (cache->table == NULL) {
		HASHCTL ctl = {.keysize = sizeof(StateKey),
		               .entrysize = sizeof(StateEntry),
		               .hash = key_hash,
		               .match = key_match,
		               .hcxt = cache->mcxt};

		cache->table = hash_create("din history states", 256, &ctl,
		                           HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
		cache->kept = MemoryContextAllocZero(cache->mcxt, KEPT_BITS / 8);
	}
	while (cache->bytes + f->bytes > limit)
		drop_oldest(cache);
	f->block =
	    MemoryContextAllocExtended(cache->mcxt, f->bytes - sizeof(StateEntry), MCXT_ALLOC_HUGE);
	at = (char *)TYPEALIGN(PG_CACHE_LINE_SIZE, f->block);
	f->state = (const float *)at;
	f->key = *k;
	copy_inputs(&f->key, (int64 *)(at + floats));
	return (float *)at;
}

/* *buf grown to at least bytes (its size in *cap), in mcxt; its contents are not kept. */
static void *
grow(MemoryContext mcxt, void *buf, Size *cap, Size bytes)
{
	if (buf != NULL && *cap >= bytes)
		return buf;
	if (buf != NULL)
		pfree(buf);
	*cap = Max(bytes, 1024);
	return MemoryContextAllocExtended(mcxt, *cap, MCXT_ALLOC_HUGE);
}

/*
 * The own state, to be filled with a state of n floats of k's inputs (none: k NULL, reuse
 * off); the history it held is remembered as seen.
 */
static float *
prepare_own(HistoryCache *cache, const StateKey *k, size_t n)
{
	OwnState *own = &cache->own;

	if (own->valid && k != NULL) {
		if (cache->seen == NULL)
			cache->seen = MemoryContextAllocZero(cache->mcxt, sizeof(uint32) * SEEN_SLOTS);
		cache->seen[own->key.hash % SEEN_SLOTS] = own->key.hash;
	}
	own->valid = false;
	own->state = grow(cache->parent, own->state, &own->state_bytes, sizeof(float) * n);
	if (k != NULL) {
		own->inputs = grow(cache->parent, own->inputs, &own->inputs_bytes, inputs_bytes(k));
		own->key = *k;
		copy_inputs(&own->key, own->inputs);
	}
	return own->state;
}

const float *
history_cache_get(HistoryCache *cache, uint64 serial, const DinHistoryKey *key, size_t n,
                  float **fill)
{
	StateKey k;
	StateEntry *e;
	uint64 mask;
	bool seen;

	if (serial != cache->serial) {
		if (cache->table != NULL || cache->seen != NULL || cache->own.valid)
			reset(cache);
		cache->serial = serial;
	}
	if (cache->fill.block != NULL) {
		/* the last fill failed (an error, a cancel): its state is not whole */
		pfree(cache->fill.block);
		cache->fill.block = NULL;
	}
	if (din_history_cache_size == 0) {
		*fill = prepare_own(cache, NULL, n);
		return NULL;
	}
	make_key(key, &k);
	if (cache->own.valid && same_inputs(&k, &cache->own.key))
		return cache->own.state;
	if (cache->last != NULL && same_inputs(&k, &cache->last->key))
		return cache->last->state;
	e = cache->kept != NULL && (*kept_word(cache, k.hash, &mask) & mask)
	        ? hash_search(cache->table, &k, HASH_FIND, NULL)
	        : NULL;
	if (e != NULL) {
		dlist_move_tail(&cache->uses, &e->use);
		cache->last = e;
		cache->unreused = 0;
		return e->state;
	}
	seen = cache->seen != NULL && cache->seen[k.hash % SEEN_SLOTS] == k.hash;
	*fill = NULL;
	if (seen || (sizeof(float) * n <= SMALL_STATE && cache->unreused < UNREUSED_MAX))
		*fill = prepare_fill(cache, &k, n);
	if (*fill == NULL)
		*fill = prepare_own(cache, &k, n);
	return NULL;
}

void
history_cache_filled(HistoryCache *cache)
{
	StateEntry *f = &cache->fill, *e;
	uint64 mask;
	bool found;

	if (f->block == NULL) {
		/* with reuse off, the own state is not kept under its key: it has none */
		cache->own.valid = din_history_cache_size > 0;
		return;
	}
	e = hash_search(cache->table, &f->key, HASH_ENTER, &found);
	Assert(!found);
	*kept_word(cache, f->key.hash, &mask) |= mask;
	e->block = f->block;
	e->bytes = f->bytes;
	e->state = f->state;
	dlist_push_tail(&cache->uses, &e->use);
	cache->last = e;
	cache->bytes += e->bytes;
	cache->unreused += e->bytes;
	f->block = NULL;
}
