/*
 * history_cache.h - history states reused across the calls of one scoring call site, so rows
 * that share a history (a user's impressions, in any order) share its work.
 *
 * A state (din_model_history) depends on the model and on the inputs its DinHistoryKey names.
 * The cache serves the states of one model load (DinCacheEntry.serial) at a time, keyed by a
 * copy of those inputs compared in full (a hash only finds the candidates), and drops them all
 * when the model changes. It lives in the call site's fn_mcxt, so a query's states go at its
 * end, and keeps at most din.history_cache_size: past it, the least recently used make room.
 */
#ifndef DIN_HISTORY_CACHE_H
#define DIN_HISTORY_CACHE_H

#include "postgres.h"

#include "models/model.h"

/* din.history_cache_size: kB of states per call site (0: no reuse). */
extern int din_history_cache_size;

typedef struct HistoryCache HistoryCache;

/* An empty cache in mcxt. */
HistoryCache *history_cache_create(MemoryContext mcxt);

/*
 * The state of key under model load serial, when an earlier call computed it; else NULL, and
 * *fill is a buffer of n floats to compute key's state into, then to hand back with
 * history_cache_filled. The pointers are valid until the next call.
 */
const float *history_cache_get(HistoryCache *cache, uint64 serial, const DinHistoryKey *key,
                               size_t n, float **fill);

/* The buffer the last history_cache_get handed out holds its key's state. */
void history_cache_filled(HistoryCache *cache);

#endif
