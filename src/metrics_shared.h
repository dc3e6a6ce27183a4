/*
 * metrics_shared.h - parallel auc/gauc parts handed to the leader in the query's shared memory.
 *
 * Under a parallel plan each process sorts its own part of an auc or gauc state. Sent as a
 * bytea, a part of millions of rows is copied into a tuple queue, out of it, and by the leader
 * (which copies the first row of a plain aggregate and then merges every part alone while the
 * workers idle). Instead, a large part is sorted straight into the parallel query's DSA area and
 * only a signed reference (MetricsSharedRef) travels; the leader keeps each part where it lies
 * as a run and the final step counts across the runs (metrics_auc_runs, metrics_gauc_runs).
 *
 * Safety: a reference is a bytea, and any user can hand any bytea to din_metrics_combine. So
 * a reference is followed only when its HMAC, under a key made at server start and kept in
 * din's shared memory, is right; only for the process it names as leader; and only into an
 * area of a Gather below the aggregate at hand. References are made only for din's own
 * aggregates (their combine function is din_metrics_combine), so no user function ever sees
 * one. Needs din in shared_preload_libraries (for the key); otherwise parts travel as bytes.
 *
 * Lifetime: chunks live in the Gather's area, which PostgreSQL destroys when the Gather shuts
 * down or the query fails. A state that adopts a chunk frees it when the state is reset (a
 * rescan), through AggRegisterCallback, which is not called on error paths, and only while
 * the Gather still holds the area (at the end of a query it has already gone, chunks with it).
 */
#ifndef DIN_METRICS_SHARED_H
#define DIN_METRICS_SHARED_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/dsa.h"

#include "metrics_core.h"

/* Where a partial state may leave its rows: its process's view of the query's area. */
typedef struct MetricsShare {
	dsa_area *area;  /* NULL: the state travels as bytes */
	uint32 segment;  /* a worker: its parallel segment; the leader: 0 */
	uint64 area_tag; /* the leader: the address of its dsa_area; a worker: 0 */
} MetricsShare;

/* A chunk the leader has adopted, counted so each is freed once. */
typedef struct MetricsSharedChunk MetricsSharedChunk;

/*
 * metrics_share_find - fills share for a state a transition function (fcinfo) is making: set
 * when it is a partial state of one of din's own aggregates in a parallel plan and din was
 * preloaded; share->area is NULL otherwise.
 */
void metrics_share_find(FunctionCallInfo fcinfo, MetricsShare *share);

/*
 * metrics_share_room - false when a chunk of bytes would take more than half of what is left
 * of /dev/shm (where POSIX dynamic shared memory lives): PostgreSQL raises an error when it
 * runs out there, and the part then travels as rows instead, as it always could.
 */
bool metrics_share_room(Size bytes);

/* metrics_share_sign - writes the signed reference to chunk at fields (a whole state value). */
void metrics_share_sign(const MetricsShare *share, uint32 kind, uint64 npos, uint64 nneg,
                        dsa_pointer chunk, void *fields);

/*
 * metrics_shared_adopt - follows the reference in the state value at fields (METRICS_FLAG_SHARED,
 * len checked by metrics_flat_decode) for the aggregate fcinfo runs: checks its signature, its
 * leader and its area, then counts one more user of the chunk. Returns the chunk's records
 * (ref->npos positives then ref->nneg negatives); raises an error for any other value.
 */
const uint64 *metrics_shared_adopt(FunctionCallInfo fcinfo, const void *fields,
                                   MetricsSharedRef *ref, MetricsSharedChunk **chunk);

/*
 * metrics_shared_adopt_own - counts one more user of chunk, which this process's own partial
 * state (share) left in its area; NULL when no Gather below the aggregate fcinfo runs owns
 * that area (the caller then copies the rows).
 */
MetricsSharedChunk *metrics_shared_adopt_own(FunctionCallInfo fcinfo, const MetricsShare *share,
                                             dsa_pointer chunk);

/*
 * metrics_shared_check - raises an error when chunk's area is gone (its Gather shut down), so
 * that reading it could crash. Every read of a kept part checks first; none should ever fail.
 */
void metrics_shared_check(const MetricsSharedChunk *chunk);

/* metrics_shared_release - one user fewer; the last frees the chunk while its area lives. */
void metrics_shared_release(MetricsSharedChunk *chunk);

#endif
