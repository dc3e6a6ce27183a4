/*
 * idmap.c - raw id -> index maps (vocabularies, the items table).
 *
 * Open addressing with linear probing over a power-of-two table at most half full, so a miss
 * ends within a few probes. The keys stay in the caller's tensor; the table holds index + 1.
 * Keys that are consecutive in order (label-encoded ids 0..n-1, the usual case) need no table:
 * the index is an offset, and a lookup touches no memory.
 */
#include "model.h"

#include <stdlib.h>

/* splitmix64 finalizer: spreads sequential ids over the table. */
static inline uint64_t
hash_id(int64_t key)
{
	uint64_t x = (uint64_t)key + 0x9e3779b97f4a7c15ULL;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

DinStatus
din_idmap_build(DinIdMap *map, const int64_t *keys, int64_t n, const char *what, DinError *err)
{
	int64_t cap = 16;

	map->keys = keys;
	map->n = n;
	map->slots = NULL;
	map->cap = 0;
	map->consecutive = n > 0;
	for (int64_t i = 1; i < n && map->consecutive; i++)
		map->consecutive = keys[i - 1] < INT64_MAX && keys[i] == keys[i - 1] + 1;
	if (map->consecutive)
		return DIN_OK;
	while (cap < 2 * n) {
		if (cap > (INT64_C(1) << 40))
			return din_fail(err, DIN_ELIMIT, NULL, "%s has too many ids (%lld)", what,
			                (long long)n);
		cap *= 2;
	}
	map->slots = calloc((size_t)cap, sizeof(int64_t));
	if (map->slots == NULL)
		return din_fail(err, DIN_ENOMEM, NULL, "out of memory building %s", what);
	map->cap = cap;
	for (int64_t i = 0; i < n; i++) {
		uint64_t pos = hash_id(keys[i]) & (uint64_t)(cap - 1);

		while (map->slots[pos] != 0) {
			if (keys[map->slots[pos] - 1] == keys[i]) {
				din_idmap_free(map);
				return din_fail(err, DIN_ECORRUPT, "Every id may appear only once.",
				                "%s has duplicate id %lld", what, (long long)keys[i]);
			}
			pos = (pos + 1) & (uint64_t)(cap - 1);
		}
		map->slots[pos] = i + 1;
	}
	return DIN_OK;
}

int64_t
din_idmap_find(const DinIdMap *map, int64_t key)
{
	uint64_t pos;

	if (map->consecutive) {
		/* unsigned: any key, however far from keys[0], is a defined offset */
		uint64_t off = (uint64_t)key - (uint64_t)map->keys[0];

		return off < (uint64_t)map->n ? (int64_t)off : -1;
	}
	if (map->cap == 0)
		return -1;
	pos = hash_id(key) & (uint64_t)(map->cap - 1);
	while (map->slots[pos] != 0) {
		int64_t idx = map->slots[pos] - 1;

		if (map->keys[idx] == key)
			return idx;
		pos = (pos + 1) & (uint64_t)(map->cap - 1);
	}
	return -1;
}

void
din_idmap_prefetch(const DinIdMap *map, int64_t key)
{
	if (map->cap > 0)
		__builtin_prefetch(&map->slots[hash_id(key) & (uint64_t)(map->cap - 1)]);
}

void
din_idmap_free(DinIdMap *map)
{
	free(map->slots);
	map->slots = NULL;
	map->cap = 0;
	map->consecutive = 0;
}

int64_t
din_field_row(const DinField *f, int64_t id)
{
	if (!din_idmap_exists(&f->vocab))
		return (id >= 0 && id < f->rows) ? id : -1;
	return din_idmap_find(&f->vocab, id);
}
