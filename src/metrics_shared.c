/*
 * metrics_shared.c - parallel auc/gauc parts handed to the leader in the query's shared memory
 * (see metrics_shared.h).
 */
#include "postgres.h"

#include <sys/statvfs.h>

#include "access/htup_details.h"
#include "access/parallel.h"
#include "catalog/pg_aggregate.h"
#include "common/hmac.h"
#include "executor/execParallel.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/nodeFuncs.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/dsm_impl.h"
#include "storage/proc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "metrics_shared.h"
#include "shmem.h"

extern Datum din_metrics_combine(PG_FUNCTION_ARGS);

struct MetricsSharedChunk {
	MetricsSharedChunk *next;
	dsa_area *area;
	PlanState *gather; /* the Gather or Gather Merge whose area it is */
	dsa_pointer chunk;
	int users;
};

/* The chunks one executor state's aggregates adopted; forgotten with that state's memory. */
typedef struct SharedRegistry {
	struct SharedRegistry *next;
	EState *estate;
	MetricsSharedChunk *chunks;
	MemoryContextCallback forget;
} SharedRegistry;

static SharedRegistry *registries = NULL;

/* True when fcinfo's aggregate has din_metrics_combine for its combine function. */
static bool
aggregate_is_ours(FunctionCallInfo fcinfo)
{
	Aggref *aggref = AggGetAggref(fcinfo);
	HeapTuple tuple;
	Oid combine;
	FmgrInfo flinfo;

	if (aggref == NULL)
		return false;
	tuple = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggref->aggfnoid));
	if (!HeapTupleIsValid(tuple))
		return false;
	combine = ((Form_pg_aggregate)GETSTRUCT(tuple))->aggcombinefn;
	ReleaseSysCache(tuple);
	if (!OidIsValid(combine))
		return false;
	/* the address of the C function, which no user can give a function of their own */
	fmgr_info(combine, &flinfo);
	return flinfo.fn_addr == din_metrics_combine;
}

void
metrics_share_find(FunctionCallInfo fcinfo, MetricsShare *share)
{
	AggState *aggstate = (AggState *)fcinfo->context;
	dsa_area *area;

	memset(share, 0, sizeof *share);
	if (shmem_part_key() == NULL || aggstate == NULL || !IsA(aggstate, AggState) ||
	    !DO_AGGSPLIT_SKIPFINAL(aggstate->aggsplit))
		return;
	area = aggstate->ss.ps.state->es_query_dsa;
	if (area == NULL || !aggregate_is_ours(fcinfo))
		return;
	share->area = area;
	if (IsParallelWorker())
		share->segment = DatumGetUInt32(MyBgworkerEntry->bgw_main_arg);
	else
		share->area_tag = (uint64)(uintptr_t)area;
}

bool
metrics_share_room(Size bytes)
{
	struct statvfs fs;

	/* POSIX shared memory lives in /dev/shm, 64 MB in a default container */
	if (dynamic_shared_memory_type != DSM_IMPL_POSIX || statvfs("/dev/shm", &fs) != 0)
		return true;
	return (uint64)fs.f_bavail * fs.f_frsize / 2 >= bytes;
}

/* sign: the HMAC-SHA256 of the signed bytes of the reference at fields, under the server's key. */
static void
sign(const void *fields, uint8 *mac)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL || pg_hmac_init(ctx, shmem_part_key(), DIN_PART_KEY_BYTES) < 0 ||
	    pg_hmac_update(ctx, fields, METRICS_SHARED_SIGNED) < 0 || pg_hmac_final(ctx, mac, 32) < 0)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
		                errmsg("could not sign a parallel metrics part: %s",
		                       ctx ? pg_hmac_error(ctx) : "out of memory")));
	pg_hmac_free(ctx);
}

void
metrics_share_sign(const MetricsShare *share, uint32 kind, uint64 npos, uint64 nneg,
                   dsa_pointer chunk, void *fields)
{
	MetricsSharedRef ref;

	memset(&ref, 0, sizeof ref);
	ref.kind = kind;
	ref.npos = npos;
	ref.nneg = nneg;
	ref.segment = share->segment;
	/* a parallel worker is in its leader's lock group */
	ref.leader = (uint32)(IsParallelWorker() ? MyProc->lockGroupLeader->pid : MyProcPid);
	ref.area = share->area_tag;
	ref.chunk = chunk;
	metrics_shared_encode(fields, &ref);
	sign(fields, ref.mac);
	metrics_shared_encode(fields, &ref);
}

static ParallelExecutorInfo *
gather_pei(PlanState *ps)
{
	if (IsA(ps, GatherState))
		return ((GatherState *)ps)->pei;
	if (IsA(ps, GatherMergeState))
		return ((GatherMergeState *)ps)->pei;
	return NULL;
}

typedef struct GatherSearch {
	uint32 segment;
	uint64 area_tag;
	PlanState *found;
} GatherSearch;

static bool
find_gather(PlanState *ps, void *arg)
{
	GatherSearch *search = arg;
	ParallelExecutorInfo *pei = gather_pei(ps);

	if (pei != NULL && pei->area != NULL &&
	    (search->segment != 0 ? dsm_segment_handle(pei->pcxt->seg) == search->segment
	                          : (uint64)(uintptr_t)pei->area == search->area_tag)) {
		search->found = ps;
		return true;
	}
	return planstate_tree_walker(ps, find_gather, arg);
}

/* The live Gather below fcinfo's aggregate whose area is (segment, area_tag), or NULL. */
static PlanState *
gather_below(FunctionCallInfo fcinfo, uint32 segment, uint64 area_tag)
{
	GatherSearch search = {segment, area_tag, NULL};

	if (fcinfo->context == NULL || !IsA(fcinfo->context, AggState))
		return NULL;
	planstate_tree_walker((PlanState *)fcinfo->context, find_gather, &search);
	return search.found;
}

static void
forget_registry(void *arg)
{
	SharedRegistry **at = &registries;

	while (*at != NULL && *at != arg)
		at = &(*at)->next;
	if (*at != NULL)
		*at = (*at)->next;
}

/* The registry of the executor state gather runs in, made on first use. */
static SharedRegistry *
registry_of(PlanState *gather)
{
	EState *estate = gather->state;
	SharedRegistry *r;

	for (r = registries; r != NULL; r = r->next)
		if (r->estate == estate)
			return r;
	r = MemoryContextAllocZero(estate->es_query_cxt, sizeof *r);
	r->estate = estate;
	r->forget.func = forget_registry;
	r->forget.arg = r;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, &r->forget);
	r->next = registries;
	registries = r;
	return r;
}

static MetricsSharedChunk *
adopt(PlanState *gather, dsa_pointer chunk)
{
	SharedRegistry *r = registry_of(gather);
	dsa_area *area = gather_pei(gather)->area;
	MetricsSharedChunk *c;

	/* a chunk freed after a rescan may come back at the same place: its entry is reused */
	for (c = r->chunks; c != NULL; c = c->next)
		if (c->area == area && c->chunk == chunk) {
			c->gather = gather;
			c->users++;
			return c;
		}
	c = MemoryContextAllocZero(gather->state->es_query_cxt, sizeof *c);
	c->area = area;
	c->gather = gather;
	c->chunk = chunk;
	c->users = 1;
	c->next = r->chunks;
	r->chunks = c;
	return c;
}

static void
refuse(const char *detail)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
	                errmsg("invalid din metrics aggregate state"), errdetail("%s", detail)));
}

const uint64 *
metrics_shared_adopt(FunctionCallInfo fcinfo, const void *fields, MetricsSharedRef *ref,
                     MetricsSharedChunk **chunk)
{
	uint8 mac[32];
	uint8 differ = 0;
	PlanState *gather;

	if (shmem_part_key() == NULL)
		refuse("It refers to a parallel query's shared memory, which only din loaded through "
		       "shared_preload_libraries writes.");
	metrics_shared_decode(fields, ref);
	sign(fields, mac);
	for (int i = 0; i < 32; i++)
		differ |= mac[i] ^ ref->mac[i];
	if (differ != 0)
		refuse("It claims to refer to a parallel query's shared memory, but its signature is "
		       "wrong.");
	if (ref->leader != (uint32)MyProcPid)
		refuse("It refers to the shared memory of another process's parallel query.");
	gather = gather_below(fcinfo, ref->segment, ref->area);
	if (gather == NULL)
		refuse("It refers to the shared memory of a parallel query that is not running below "
		       "this aggregate.");
	*chunk = adopt(gather, (dsa_pointer)ref->chunk);
	return dsa_get_address((*chunk)->area, (*chunk)->chunk);
}

MetricsSharedChunk *
metrics_shared_adopt_own(FunctionCallInfo fcinfo, const MetricsShare *share, dsa_pointer chunk)
{
	PlanState *gather = gather_below(fcinfo, share->segment, share->area_tag);

	return gather ? adopt(gather, chunk) : NULL;
}

/* True while the Gather still holds the chunk's area: once it shuts down, the area is gone. */
static bool
alive(const MetricsSharedChunk *c)
{
	ParallelExecutorInfo *pei = gather_pei(c->gather);

	return pei != NULL && pei->area == c->area;
}

void
metrics_shared_check(const MetricsSharedChunk *c)
{
	if (!alive(c))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("a parallel metrics part was read after its query's shared "
		                       "memory was released")));
}

void
metrics_shared_release(MetricsSharedChunk *c)
{
	Assert(c->users > 0);
	if (--c->users == 0 && alive(c))
		dsa_free(c->area, c->chunk);
}
