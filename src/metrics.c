/*
 * metrics.c - the auc, gauc, gauc_clicks and logloss aggregates.
 *
 * auc and gauc keep every row (exactness needs all scores), so their state is the rows
 * themselves: order-preserving 64-bit score keys (plus a user key for gauc), positives and
 * negatives apart. The SQL state type is bytea, not internal, so Citus can ship partial states
 * between nodes (it refuses internal states) and PostgreSQL needs no serialize/deserialize
 * pair (it allows them only for internal). The state has two forms behind that one type:
 *
 * - flat: a plain bytea (format below) with spare room, written in place while it has room
 *   and reallocated at twice the size when full. No memory context of its own, so a GROUP BY
 *   with a million small groups costs a million small pallocs, nothing more (PostgreSQL's
 *   hash aggregate walks every child context of its memory on each new group).
 * - expanded: past FLAT_MAX_RECORDS a state becomes an expanded object, a read-write pointer
 *   PostgreSQL adopts without copying, whose arrays grow with repalloc. Few states get this
 *   big, so their contexts stay few. Its flat form is written only when a partial state
 *   crosses a process boundary.
 *
 * Sorting is the final step's cost, so under a parallel plan (or Citus) each process sorts its
 * own part: flattening an expanded state to send it sorts it and sets METRICS_FLAG_SORTED, and
 * packs a gauc state (metrics_core.h), so PostgreSQL copies about 9 bytes a row on the way to
 * the leader instead of 16. The combining side runs alone once the parts arrive, so it does as
 * little as it can per row: it merges each sorted part into the sorted rows it holds, from the
 * back and in place (array_append), reading the part straight from the value it was given,
 * after checking its order (a flag is only a claim: any bytea can carry it).
 * The final step then finds one sorted run and only computes the metric. Rows appended one by
 * one form an unsorted tail after the runs, sorted by the final step.
 *
 * With din preloaded, a large partial state under a parallel plan skips the bytes altogether:
 * it is sorted into the query's shared memory and a signed reference travels instead
 * (metrics_shared.h); the leader keeps up to MAX_SHARED_RUNS such parts where they lie and the
 * final step counts across them (metrics_auc_runs, metrics_gauc_runs).
 *
 * The flat format after the varlena header is described in metrics_core.h; an empty bytea is
 * the empty state (the INITCOND). Any user can hand any bytea to these functions (through an
 * aggregate of their own, or by calling them directly), so every flat state is decoded by
 * metrics_flat_decode, which checks its whole header against its length, before any of its
 * records is read or written.
 *
 * logloss needs only a count and a sum, kept in a float8[3] (count, sum, compensation of a
 * Neumaier sum), updated in place like PostgreSQL's own float8_accum.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/expandeddatum.h"
#include "utils/memutils.h"

#include "metrics_core.h"
#include "metrics_shared.h"

#define LOGLOSS_EPS 1e-15

#define FLAT_MIN_RECORDS 8
#define FLAT_MAX_RECORDS 32768

/* Partial states of fewer rows travel as bytes: a chunk would cost more than it saves. */
#define SHARED_MIN_ROWS 65536
/* Shared parts the leader keeps as runs; more are merged (the final's cost grows with runs). */
#define MAX_SHARED_RUNS 3

/*
 * Records [0, run_ends[nruns - 1]) are nruns ascending runs (each checked when it came); the
 * records after them, the tail, are in no order. Fewer than METRICS_MAX_RUNS runs, so the
 * tail can still be merged.
 */
typedef struct MetricsArray {
	uint64 *words;
	Size n; /* records */
	Size capacity;
	int nruns;
	Size run_ends[METRICS_MAX_RUNS - 1];
} MetricsArray;

/* A part another process (or this one's partial state) left sorted in shared memory. */
typedef struct SharedRun {
	const uint64 *pos;
	const uint64 *neg;
	Size npos;
	Size nneg;
	MetricsSharedChunk *chunk;
} SharedRun;

typedef struct MetricsState {
	ExpandedObjectHeader hdr;
	uint32 kind;
	int width; /* words per record */
	MetricsArray pos;
	MetricsArray neg;
	/* what metrics_get_flat_size chose for metrics_flatten_into: packed streams, and their bytes */
	bool flat_packed;
	Size flat_pos_bytes;
	Size flat_neg_bytes;
	/* a partial state under a parallel plan: where it may leave its rows, and where it did */
	MetricsShare share;
	dsa_pointer chunk; /* InvalidDsaPointer until then */
	Size chunk_rows;   /* the rows it holds: rows only grow, so fewer than the state's is stale */
	/* the leader's state: parts kept where they lie, released when this state is reset */
	int nshared;
	SharedRun shared[MAX_SHARED_RUNS];
	bool release_registered;
} MetricsState;

/* A look at a state in either form; flat words may be unaligned. */
typedef struct MetricsView {
	uint32 kind; /* 0 for the empty state */
	Size npos;
	Size nneg;
	Size capacity; /* records a flat state has room for */
	const char *pos;
	const char *neg;
	bool sorted; /* claimed ascending, positives and negatives both */
	bool packed; /* pos and neg are packed streams of pos_bytes and neg_bytes (gauc) */
	Size pos_bytes;
	Size neg_bytes;
	MetricsState *expanded; /* set when the state is our expanded object */
	/*
	 * The fields of a non-empty flat state held by the datum itself (not a detoasted copy), with
	 * the 4-byte header and 8-byte alignment of the states we build: a transition function may
	 * write its own transition value there.
	 */
	char *in_place;
} MetricsView;

typedef enum LabelType { LABEL_BOOL, LABEL_INT4, LABEL_INT2 } LabelType;

static Size metrics_get_flat_size(ExpandedObjectHeader *eohptr);
static void array_write_sorted(MetricsState *st, MetricsArray *a, char *dst);
static void state_sort(MetricsState *st);
static void check_interrupts_hook(void);
static void metrics_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size);
static bool share_rows(MetricsState *st);
static void absorb_shared(MetricsState *st);

static const ExpandedObjectMethods metrics_methods = {metrics_get_flat_size, metrics_flatten_into};

static int
kind_width(uint32 kind)
{
	return kind == METRICS_KIND_GAUC ? 2 : 1;
}

static Size
kind_record(uint32 kind)
{
	return sizeof(uint64) * kind_width(kind);
}

static const char *
kind_name(uint32 kind)
{
	return kind == METRICS_KIND_GAUC ? "gauc" : "auc";
}

static void
invalid_state(const char *detail)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
	                errmsg("invalid din metrics aggregate state"), errdetail("%s", detail)));
}

/* flat_view: v looks at the len bytes of a flat state at fields, once its header is checked. */
static void
flat_view(const char *fields, Size len, MetricsView *v)
{
	MetricsFlatHeader h;
	const char *why;

	if (!metrics_flat_decode(fields, len, &h, &why))
		invalid_state(why);
	if (h.flags & METRICS_FLAG_SHARED)
		invalid_state("The value refers to a part of a parallel query in shared memory, which "
		              "only din_metrics_combine in that query's leader reads.");
	v->kind = h.kind;
	v->npos = h.npos;
	v->nneg = h.nneg;
	v->capacity = h.capacity;
	v->pos = fields + h.pos_offset;
	v->neg = fields + h.neg_offset;
	v->sorted = (h.flags & METRICS_FLAG_SORTED) != 0;
	v->packed = (h.flags & METRICS_FLAG_PACKED) != 0;
	v->pos_bytes = h.pos_bytes;
	v->neg_bytes = h.neg_bytes;
}

/*
 * unpack_records: the n gauc records of a packed stream of len bytes, ascending unless *sorted
 * comes back false, in palloc'd memory.
 */
static const char *
unpack_records(const char *stream, Size len, Size n, bool *sorted)
{
	uint64 *records = palloc_extended(Max(n, 1) * 2 * sizeof(uint64), MCXT_ALLOC_HUGE);
	const char *why = NULL;
	int merged = metrics_merge_packed_into(records, 0, (const unsigned char *)stream, len, n,
	                                       check_interrupts_hook, &why);

	if (merged < 0)
		invalid_state(why);
	*sorted = merged == 1;
	return (const char *)records;
}

/* view_unpack: a view of a packed state made a view of records (copies), for in-place work. */
static void
view_unpack(MetricsView *v)
{
	bool pos_sorted, neg_sorted;

	if (!v->packed)
		return;
	v->pos = unpack_records(v->pos, v->pos_bytes, v->npos, &pos_sorted);
	v->neg = unpack_records(v->neg, v->neg_bytes, v->nneg, &neg_sorted);
	v->sorted = pos_sorted && neg_sorted;
	v->packed = false;
}

/*
 * flat_append: appends npos positives and nneg negatives to the flat state v looks at, in
 * place, when v->in_place and it has room; false otherwise.
 */
static bool
flat_append(MetricsView *v, const char *pos, Size npos, const char *neg, Size nneg)
{
	Size record = kind_record(v->kind);

	if (v->in_place == NULL || v->capacity - v->npos - v->nneg < npos + nneg)
		return false;
	memcpy(unconstify(char *, v->pos) + v->npos * record, pos, npos * record);
	v->neg -= nneg * record;
	memcpy(unconstify(char *, v->neg), neg, nneg * record);
	v->npos += npos;
	v->nneg += nneg;
	v->sorted = false;
	metrics_flat_encode(v->in_place, v->kind, 0, v->npos, v->nneg, v->capacity);
	return true;
}

/* flat_init: an empty flat state with room for capacity records at result, and v on it. */
static void
flat_init(void *result, uint32 kind, Size capacity, MetricsView *v)
{
	Size len = METRICS_FLAT_HEADER + capacity * kind_record(kind);

	SET_VARSIZE(result, VARHDRSZ + len);
	metrics_flat_encode(VARDATA(result), kind, 0, 0, 0, capacity);
	memset(v, 0, sizeof *v);
	flat_view(VARDATA(result), len, v);
	v->in_place = VARDATA(result);
}

/* check_flat_size: the records of a flat state of `records` rows, `bytes` long, fit a bytea. */
static void
check_flat_size(uint32 kind, Size records, Size bytes)
{
	if (bytes > MaxAllocSize - VARHDRSZ - METRICS_FLAT_HEADER)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
		                errmsg("%s state of %zu rows exceeds the 1 GB limit of a bytea",
		                       kind_name(kind), records),
		                errhint("Partial states sent between processes are bytea values; run the "
		                        "aggregate without parallel workers or over smaller groups.")));
}

/*
 * flat_new: an empty flat state with room for capacity records, in the current memory
 * context, and v on it.
 */
static bytea *
flat_new(uint32 kind, Size capacity, MetricsView *v)
{
	bytea *flat;

	check_flat_size(kind, capacity, capacity * kind_record(kind));
	flat = palloc(VARHDRSZ + METRICS_FLAT_HEADER + capacity * kind_record(kind));
	flat_init(flat, kind, capacity, v);
	return flat;
}

/*
 * metrics_get_flat_size: the flat form is what leaves the process (a parallel worker's or a
 * Citus shard's partial state), sorted. A gauc state is packed when that is smaller, as it is
 * when users repeat: it is sorted here, since packing needs the order. A flat state must fit a
 * bytea, which limits what a worker sends.
 */
static Size
metrics_get_flat_size(ExpandedObjectHeader *eohptr)
{
	MetricsState *st = (MetricsState *)eohptr;
	Size rows, bytes;

	absorb_shared(st);
	if (share_rows(st))
		return VARHDRSZ + METRICS_FLAT_HEADER + METRICS_SHARED_BODY;
	rows = st->pos.n + st->neg.n;
	bytes = rows * kind_record(st->kind);
	st->flat_packed = false;
	if (st->kind == METRICS_KIND_GAUC && rows > 0) {
		state_sort(st);
		st->flat_pos_bytes = metrics_packed_size(st->pos.words, st->pos.n);
		st->flat_neg_bytes = metrics_packed_size(st->neg.words, st->neg.n);
		if (st->flat_pos_bytes + st->flat_neg_bytes < bytes) {
			st->flat_packed = true;
			bytes = st->flat_pos_bytes + st->flat_neg_bytes;
		}
	}
	check_flat_size(st->kind, rows, bytes);
	return VARHDRSZ + METRICS_FLAT_HEADER + bytes;
}

/*
 * metrics_flatten_into: the flat form is what leaves the process (a parallel worker's or a Citus
 * shard's partial state), so the rows are sorted here, where this process pays for it, and
 * flagged so. Sorting only reorders rows, which no result depends on.
 */
static void
metrics_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	MetricsState *st = (MetricsState *)eohptr;
	Size capacity = st->pos.n + st->neg.n;
	MetricsView v;

	if (DsaPointerIsValid(st->chunk)) {
		SET_VARSIZE(result, VARHDRSZ + METRICS_FLAT_HEADER + METRICS_SHARED_BODY);
		Assert(VARSIZE(result) == allocated_size);
		metrics_share_sign(&st->share, st->kind, st->pos.n, st->neg.n, st->chunk, VARDATA(result));
		return;
	}
	if (st->flat_packed) {
		char *fields = VARDATA(result);

		SET_VARSIZE(result,
		            VARHDRSZ + METRICS_FLAT_HEADER + st->flat_pos_bytes + st->flat_neg_bytes);
		Assert(VARSIZE(result) == allocated_size);
		metrics_flat_encode(fields, st->kind, METRICS_FLAG_SORTED | METRICS_FLAG_PACKED, st->pos.n,
		                    st->neg.n, st->flat_pos_bytes);
		metrics_pack(st->pos.words, st->pos.n, (unsigned char *)fields + METRICS_FLAT_HEADER);
		metrics_pack(st->neg.words, st->neg.n,
		             (unsigned char *)fields + METRICS_FLAT_HEADER + st->flat_pos_bytes);
		return;
	}
	flat_init(result, st->kind, capacity, &v);
	Assert(VARSIZE(result) == allocated_size);
	array_write_sorted(st, &st->pos, unconstify(char *, v.pos));
	array_write_sorted(st, &st->neg, unconstify(char *, v.pos) + st->pos.n * kind_record(st->kind));
	metrics_flat_encode(v.in_place, st->kind, METRICS_FLAG_SORTED, st->pos.n, st->neg.n, capacity);
}

static MetricsState *
metrics_state_new(MemoryContext aggcontext, uint32 kind)
{
	MemoryContext objcxt =
	    AllocSetContextCreate(aggcontext, "din metrics state", ALLOCSET_DEFAULT_SIZES);
	MetricsState *st = MemoryContextAllocZero(objcxt, sizeof(MetricsState));

	EOH_init_header(&st->hdr, &metrics_methods, objcxt);
	st->kind = kind;
	st->width = kind_width(kind);
	st->chunk = InvalidDsaPointer;
	return st;
}

/* metrics_reserve: room for extra more records, doubling so appends stay amortized O(1). */
static void
metrics_reserve(MetricsState *st, MetricsArray *a, Size extra)
{
	Size record = kind_record(st->kind);
	Size need = a->n + extra;
	Size capacity;

	if (need <= a->capacity)
		return;
	capacity = Max(a->capacity * 2, Max(need, (Size)FLAT_MIN_RECORDS));
	if (capacity > MaxAllocHugeSize / record)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
		                errmsg("%s state of %zu rows is too large", kind_name(st->kind), need)));
	if (a->words == NULL)
		a->words = MemoryContextAllocHuge(st->hdr.eoh_context, capacity * record);
	else
		a->words = repalloc_huge(a->words, capacity * record);
	a->capacity = capacity;
}

static void
put_record(char *at, uint32 kind, uint64 user_key, uint64 score_key)
{
	if (kind == METRICS_KIND_AUC)
		memcpy(at, &score_key, sizeof score_key);
	else {
		memcpy(at, &user_key, sizeof user_key);
		memcpy(at + sizeof user_key, &score_key, sizeof score_key);
	}
}

static void
metrics_push(MetricsState *st, bool positive, uint64 user_key, uint64 score_key)
{
	MetricsArray *a = positive ? &st->pos : &st->neg;

	if (unlikely(a->n == a->capacity))
		metrics_reserve(st, a, 1);
	put_record((char *)a->words + a->n * kind_record(st->kind), st->kind, user_key, score_key);
	a->n++;
}

/* array_sorted: a is one run, or empty. */
static bool
array_sorted(const MetricsArray *a)
{
	return a->n == 0 || (a->nruns == 1 && a->run_ends[0] == a->n);
}

/*
 * metrics_view: reads a state datum, expanded (read-write or read-only) or flat. An expanded
 * state's parts in shared memory are merged into its own rows first, unless keep_shared (the
 * caller then deals with them).
 */
static void
metrics_view(Datum d, MetricsView *v, bool keep_shared)
{
	Pointer p = DatumGetPointer(d);
	bytea *flat;

	memset(v, 0, sizeof *v);
	if (VARATT_IS_EXTERNAL_EXPANDED(p)) {
		ExpandedObjectHeader *eoh = DatumGetEOHP(d);
		MetricsState *st = (MetricsState *)eoh;

		if (eoh->eoh_methods != &metrics_methods)
			invalid_state("The value is an expanded object of another type.");
		if (!keep_shared)
			absorb_shared(st);
		v->kind = st->kind;
		v->npos = st->pos.n;
		v->nneg = st->neg.n;
		v->pos = (const char *)st->pos.words;
		v->neg = (const char *)st->neg.words;
		v->sorted = array_sorted(&st->pos) && array_sorted(&st->neg);
		v->expanded = st;
		return;
	}
	flat = DatumGetByteaPP(d);
	flat_view(VARDATA_ANY(flat), VARSIZE_ANY_EXHDR(flat), v);
	if (!VARATT_IS_EXTENDED(p) && (uintptr_t)p % sizeof(uint64) == 0 && v->kind != 0 && !v->packed)
		v->in_place = VARDATA(p);
}

static void
check_kind(uint32 want, uint32 got)
{
	if (got != 0 && want != 0 && got != want)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("cannot combine %s and %s aggregate states", kind_name(want),
		                       kind_name(got))));
}

static void
check_interrupts_hook(void)
{
	CHECK_FOR_INTERRUPTS();
}

/* sort_records: sorts n records in place, through scratch. */
static void
sort_records(uint64 *words, uint64 *scratch, size_t *counts, Size n, int width)
{
	uint64 *sorted = metrics_sort(words, scratch, counts, n, width, check_interrupts_hook);

	if (sorted != words)
		memcpy(words, sorted, n * width * sizeof(uint64));
}

/* range_sort: sorts the n records at words, with workspace of its own. */
static void
range_sort(uint64 *words, Size n, int width)
{
	uint64 *scratch = NULL;
	size_t *counts = NULL;

	if (n >= METRICS_RADIX_MIN) {
		scratch = palloc_extended(n * width * sizeof(uint64), MCXT_ALLOC_HUGE);
		counts = palloc(METRICS_SORT_COUNTS * sizeof(size_t));
	}
	sort_records(words, scratch, counts, n, width);
	if (scratch) {
		pfree(scratch);
		pfree(counts);
	}
}

/* array_tail_start: the first record of a's unsorted tail, after its runs. */
static Size
array_tail_start(const MetricsArray *a)
{
	return a->nruns > 0 ? a->run_ends[a->nruns - 1] : 0;
}

/*
 * array_sort_with: sorts a's tail, then merges it with a's runs, through scratch (room for a->n
 * records). Returns the buffer holding the records in order: a->words or scratch.
 */
static uint64 *
array_sort_with(MetricsState *st, MetricsArray *a, uint64 *scratch)
{
	int width = st->width;
	Size tail = array_tail_start(a);
	size_t *counts = NULL;
	uint64 *sorted;

	if (a->n - tail >= METRICS_RADIX_MIN)
		counts = palloc(METRICS_SORT_COUNTS * sizeof(size_t));
	if (a->nruns == 0)
		sorted = metrics_sort(a->words, scratch, counts, a->n, width, check_interrupts_hook);
	else {
		sort_records(a->words + tail * width, scratch, counts, a->n - tail, width);
		sorted = metrics_merge_runs(a->words, scratch, a->run_ends, a->nruns, a->n, width,
		                            check_interrupts_hook);
	}
	if (counts)
		pfree(counts);
	return sorted;
}

/* array_sort: makes a one ascending run. */
static void
array_sort(MetricsState *st, MetricsArray *a)
{
	uint64 *scratch, *sorted;

	if (array_sorted(a))
		return;
	scratch = MemoryContextAllocHuge(st->hdr.eoh_context, a->capacity * kind_record(st->kind));
	sorted = array_sort_with(st, a, scratch);
	if (sorted == scratch) {
		scratch = a->words;
		a->words = sorted;
	}
	pfree(scratch);
	a->nruns = 1;
	a->run_ends[0] = a->n;
}

/*
 * array_write_sorted: writes a's records in ascending order at dst. When dst is 8-byte aligned,
 * as a flat state PostgreSQL allocates for a copy is, it is the sort's scratch too: flattening
 * then writes no memory but the state's and dst, and leaves a's records in some order.
 */
static void
array_write_sorted(MetricsState *st, MetricsArray *a, char *dst)
{
	Size bytes = a->n * kind_record(st->kind);
	uint64 *sorted;

	if (array_sorted(a) || (uintptr_t)dst % sizeof(uint64) != 0) {
		array_sort(st, a);
		memcpy(dst, a->words, bytes);
		return;
	}
	sorted = array_sort_with(st, a, (uint64 *)dst);
	if (sorted != (uint64 *)dst) {
		memcpy(dst, sorted, bytes);
		a->nruns = 1;
		a->run_ends[0] = a->n;
	} else
		a->nruns = 0;
}

static void
state_sort(MetricsState *st)
{
	array_sort(st, &st->pos);
	array_sort(st, &st->neg);
}

/* array_run_start: the first record of a's run r. */
static Size
array_run_start(const MetricsArray *a, int r)
{
	return r > 0 ? a->run_ends[r - 1] : 0;
}

/* array_close_tail: makes a's unsorted tail a run, or merges everything when runs are many. */
static void
array_close_tail(MetricsState *st, MetricsArray *a)
{
	Size tail = array_tail_start(a);

	if (a->nruns + (tail < a->n) >= (int)lengthof(a->run_ends))
		array_sort(st, a);
	else if (tail < a->n) {
		range_sort(a->words + tail * st->width, a->n - tail, st->width);
		a->run_ends[a->nruns++] = a->n;
	}
}

/*
 * array_append: appends n records to a. A part of METRICS_RADIX_MIN records or more that claims
 * to be sorted (a parallel worker's or a Citus shard's, flattened there; any bytea can claim it)
 * is kept sorted, so the final step has little left to do: it is merged into the last run,
 * from the back and in place, when it is at least a quarter of that run (each row then moves
 * O(1) times in all), or copied as a run of its own. Either way it is read straight from the
 * caller's value, its order checked first; when the claim was false, the run it joined is
 * sorted. A packed part (packed_bytes > 0: records is then a packed stream, sorted by its
 * claim) is merged the same way, unpacked and checked a few hundred records at a time.
 *
 * Any other part joins the unsorted tail (as the rows of a flat state that outgrew its room
 * do), sorted in one piece when a run follows it or by the final step.
 */
static void
array_append(MetricsState *st, MetricsArray *a, const char *records, Size n, bool sorted,
             Size packed_bytes)
{
	int width = st->width;
	Size start = a->n;
	const char *why = NULL;
	int merged;

	if (n == 0)
		return;
	if (packed_bytes > 0 && n < METRICS_RADIX_MIN) {
		records = unpack_records(records, packed_bytes, n, &sorted);
		packed_bytes = 0;
	}
	if (n < METRICS_RADIX_MIN || !sorted) {
		metrics_reserve(st, a, n);
		memcpy(a->words + start * width, records, n * kind_record(st->kind));
		a->n += n;
		return;
	}
	array_close_tail(st, a);
	metrics_reserve(st, a, n);
	if (a->nruns > 0 && n >= (a->n - array_run_start(a, a->nruns - 1)) / 4)
		start = array_run_start(a, --a->nruns);
	if (packed_bytes > 0)
		merged = metrics_merge_packed_into(a->words + start * width, a->n - start,
		                                   (const unsigned char *)records, packed_bytes, n,
		                                   check_interrupts_hook, &why);
	else
		merged = metrics_merge_into(a->words + start * width, a->n - start, records, n, width,
		                            check_interrupts_hook);
	if (merged < 0)
		invalid_state(why);
	if (merged == 0)
		range_sort(a->words + start * width, a->n + n - start, width);
	a->n += n;
	a->run_ends[a->nruns++] = a->n;
}

static void
metrics_append(MetricsState *st, const MetricsView *v)
{
	if (v->kind == 0)
		return;
	check_kind(st->kind, v->kind);
	array_append(st, &st->pos, v->pos, v->npos, v->sorted, v->packed ? v->pos_bytes : 0);
	array_append(st, &st->neg, v->neg, v->nneg, v->sorted, v->packed ? v->neg_bytes : 0);
}

/*
 * share_rows: a partial state under a parallel plan with SHARED_MIN_ROWS rows or more sorts them
 * into a chunk of the query's shared memory, once, and from then on travels as a reference to
 * it (metrics_shared.h). False when it travels as bytes (no area, few rows, no room).
 */
static bool
share_rows(MetricsState *st)
{
	Size rows = st->pos.n + st->neg.n, record = kind_record(st->kind);
	char *dst;

	if (DsaPointerIsValid(st->chunk) && st->chunk_rows == rows)
		return true;
	/* a stale chunk (rows came after it) is left to its area */
	st->chunk = InvalidDsaPointer;
	if (st->share.area == NULL || rows < SHARED_MIN_ROWS || !metrics_share_room(rows * record))
		return false;
	st->chunk =
	    dsa_allocate_extended(st->share.area, rows * record, DSA_ALLOC_HUGE | DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(st->chunk))
		return false;
	st->chunk_rows = rows;
	/* DSA memory is MAXALIGNed, so the sorts use it as their scratch */
	dst = dsa_get_address(st->share.area, st->chunk);
	array_write_sorted(st, &st->pos, dst);
	array_write_sorted(st, &st->neg, dst + st->pos.n * record);
	return true;
}

/* append_shared: merges the shared part run into st's own rows (it stays in shared memory). */
static void
append_shared(MetricsState *st, const SharedRun *run)
{
	metrics_shared_check(run->chunk);
	array_append(st, &st->pos, (const char *)run->pos, run->npos, true, 0);
	array_append(st, &st->neg, (const char *)run->neg, run->nneg, true, 0);
}

/*
 * absorb_shared: merges the parts st keeps in shared memory into its own rows, and lets them go.
 * For the rare paths that need st's rows in one place: flattening it, or copying it.
 */
static void
absorb_shared(MetricsState *st)
{
	while (st->nshared > 0) {
		SharedRun *run = &st->shared[st->nshared - 1];

		append_shared(st, run);
		st->nshared--;
		metrics_shared_release(run->chunk);
	}
}

/* release_shared: the aggregate's memory is being reset; the parts st kept go with it. */
static void
release_shared(Datum arg)
{
	MetricsState *st = (MetricsState *)DatumGetPointer(arg);

	while (st->nshared > 0)
		metrics_shared_release(st->shared[--st->nshared].chunk);
}

/*
 * merge_states: a new state holding the rows of a and b (either may be empty) with as much room
 * again: flat while small, expanded beyond FLAT_MAX_RECORDS.
 */
static Datum
merge_states(MemoryContext aggcontext, uint32 kind, MetricsView *a, MetricsView *b)
{
	Size capacity = Max(2 * (a->npos + a->nneg + b->npos + b->nneg), (Size)FLAT_MIN_RECORDS);
	MetricsView out;
	bytea *flat;

	if (capacity > FLAT_MAX_RECORDS) {
		MetricsState *st = metrics_state_new(aggcontext, kind);

		metrics_append(st, a);
		metrics_append(st, b);
		return EOHPGetRWDatum(&st->hdr);
	}
	/* in the per-call memory: PostgreSQL copies a new transition value into its own */
	view_unpack(a);
	view_unpack(b);
	flat = flat_new(kind, capacity, &out);
	flat_append(&out, a->pos, a->npos, a->neg, a->nneg);
	flat_append(&out, b->pos, b->npos, b->neg, b->nneg);
	return PointerGetDatum(flat);
}

static MemoryContext
aggregate_context(FunctionCallInfo fcinfo, const char *function)
{
	MemoryContext aggcontext;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "%s called in non-aggregate context", function);
	return aggcontext;
}

/*
 * push_row: the transition state of argument 0 plus one row. Our read-write expanded object
 * and a flat state with room change in place (PostgreSQL then keeps them without a copy);
 * otherwise the rows move to a state twice as large.
 */
static Datum
push_row(FunctionCallInfo fcinfo, MemoryContext aggcontext, uint32 kind, bool positive,
         uint64 user_key, uint64 score_key)
{
	Datum d = PG_GETARG_DATUM(0);
	MetricsView v, row;
	uint64 words[2];

	/* most rows: our own read-write state, past its flat size, of this aggregate's kind */
	if (VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(d))) {
		ExpandedObjectHeader *eoh = DatumGetEOHP(d);

		if (eoh->eoh_methods == &metrics_methods && ((MetricsState *)eoh)->kind == kind) {
			metrics_push((MetricsState *)eoh, positive, user_key, score_key);
			return d;
		}
	}
	metrics_view(d, &v, false);
	check_kind(kind, v.kind);
	put_record((char *)words, kind, user_key, score_key);
	memset(&row, 0, sizeof row);
	row.kind = kind;
	row.npos = positive;
	row.nneg = !positive;
	row.pos = row.neg = (const char *)words;
	if (flat_append(&v, row.pos, row.npos, row.neg, row.nneg))
		return d;
	d = merge_states(aggcontext, kind, &v, &row);
	/* a state this large that is partial may leave its rows in shared memory (share_rows) */
	if (VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)))
		metrics_share_find(fcinfo, &((MetricsState *)DatumGetEOHP(d))->share);
	return d;
}

static double
read_score(FunctionCallInfo fcinfo, int argno)
{
	double score = PG_GETARG_FLOAT8(argno);

	if (unlikely(isnan(score) || isinf(score)))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("score must be a finite number, not %s",
		                       isnan(score) ? "NaN" : (score > 0 ? "Infinity" : "-Infinity"))));
	return score;
}

static bool
read_label(FunctionCallInfo fcinfo, int argno, LabelType type)
{
	int32 value;

	if (type == LABEL_BOOL)
		return PG_GETARG_BOOL(argno);
	value = type == LABEL_INT4 ? PG_GETARG_INT32(argno) : PG_GETARG_INT16(argno);
	if (unlikely(value != 0 && value != 1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("label must be 0 or 1, not %d", value),
		                errhint("Pass 1 for a click and 0 for a non-click, or a boolean.")));
	return value == 1;
}

static Datum
auc_accumulate(FunctionCallInfo fcinfo, LabelType type)
{
	MemoryContext aggcontext = aggregate_context(fcinfo, "din_auc_trans");
	double score = read_score(fcinfo, 1);
	bool label = read_label(fcinfo, 2, type);

	PG_RETURN_DATUM(
	    push_row(fcinfo, aggcontext, METRICS_KIND_AUC, label, 0, metrics_score_key(score)));
}

static Datum
gauc_accumulate(FunctionCallInfo fcinfo, LabelType type)
{
	MemoryContext aggcontext = aggregate_context(fcinfo, "din_gauc_trans");
	int64 user_id = PG_GETARG_INT64(1);
	double score = read_score(fcinfo, 2);
	bool label = read_label(fcinfo, 3, type);

	PG_RETURN_DATUM(push_row(fcinfo, aggcontext, METRICS_KIND_GAUC, label,
	                         metrics_user_key(user_id), metrics_score_key(score)));
}

PG_FUNCTION_INFO_V1(din_auc_trans);
PG_FUNCTION_INFO_V1(din_auc_trans_int4);
PG_FUNCTION_INFO_V1(din_auc_trans_int2);
PG_FUNCTION_INFO_V1(din_gauc_trans);
PG_FUNCTION_INFO_V1(din_gauc_trans_int4);
PG_FUNCTION_INFO_V1(din_gauc_trans_int2);

/* din_auc_trans(state bytea, score float8, label bool): appends one row (STRICT). */
Datum
din_auc_trans(PG_FUNCTION_ARGS)
{
	return auc_accumulate(fcinfo, LABEL_BOOL);
}

Datum
din_auc_trans_int4(PG_FUNCTION_ARGS)
{
	return auc_accumulate(fcinfo, LABEL_INT4);
}

Datum
din_auc_trans_int2(PG_FUNCTION_ARGS)
{
	return auc_accumulate(fcinfo, LABEL_INT2);
}

/* din_gauc_trans(state bytea, user_id bigint, score float8, label bool): one row (STRICT). */
Datum
din_gauc_trans(PG_FUNCTION_ARGS)
{
	return gauc_accumulate(fcinfo, LABEL_BOOL);
}

Datum
din_gauc_trans_int4(PG_FUNCTION_ARGS)
{
	return gauc_accumulate(fcinfo, LABEL_INT4);
}

Datum
din_gauc_trans_int2(PG_FUNCTION_ARGS)
{
	return gauc_accumulate(fcinfo, LABEL_INT2);
}

/*
 * shared_part: when d is a part left in shared memory, adopts it as *run of the given kind: a
 * worker's reference (checked, metrics_shared_adopt), or this process's own partial state under
 * the same parallel plan (sharing its rows now if it has not yet). False for any other state.
 */
static bool
shared_part(FunctionCallInfo fcinfo, Datum d, SharedRun *run, uint32 *kind)
{
	Pointer p = DatumGetPointer(d);
	const uint64 *records;

	if (VARATT_IS_EXTERNAL_EXPANDED(p)) {
		MetricsState *st = (MetricsState *)DatumGetEOHP(d);

		if (st->hdr.eoh_methods != &metrics_methods || !share_rows(st))
			return false;
		run->chunk = metrics_shared_adopt_own(fcinfo, &st->share, st->chunk);
		if (run->chunk == NULL)
			return false;
		records = dsa_get_address(st->share.area, st->chunk);
		*kind = st->kind;
		run->npos = st->pos.n;
		run->nneg = st->neg.n;
	} else {
		MetricsSharedRef ref;
		MetricsFlatHeader h;
		const char *why;

		/* a reference is small and never compressed or stored out of line */
		if (VARATT_IS_EXTENDED(p) && !VARATT_IS_SHORT(p))
			return false;
		if (VARSIZE_ANY_EXHDR(p) != METRICS_FLAT_HEADER + METRICS_SHARED_BODY ||
		    !metrics_flat_decode(VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p), &h, &why) ||
		    !(h.flags & METRICS_FLAG_SHARED))
			return false;
		records = metrics_shared_adopt(fcinfo, VARDATA_ANY(p), &ref, &run->chunk);
		*kind = ref.kind;
		run->npos = (Size)ref.npos;
		run->nneg = (Size)ref.nneg;
	}
	run->pos = records;
	run->neg = records + run->npos * kind_width(*kind);
	return true;
}

/*
 * combine_shared: argument 0's rows plus the shared part run. Kept where it lies while the state
 * has room for it (the final counts across parts), merged into the state's rows otherwise.
 */
static Datum
combine_shared(FunctionCallInfo fcinfo, MemoryContext aggcontext, uint32 kind, SharedRun *run)
{
	Datum d = PG_ARGISNULL(0) ? (Datum)0 : PG_GETARG_DATUM(0);
	MetricsState *st = NULL;

	if (d != (Datum)0 && VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(d)) &&
	    DatumGetEOHP(d)->eoh_methods == &metrics_methods)
		st = (MetricsState *)DatumGetEOHP(d);
	if (st == NULL || st->kind != kind) {
		MetricsView left;

		memset(&left, 0, sizeof left);
		if (d != (Datum)0)
			metrics_view(d, &left, false);
		check_kind(kind, left.kind);
		st = metrics_state_new(aggcontext, kind);
		metrics_append(st, &left);
		d = EOHPGetRWDatum(&st->hdr);
	}
	ereport(DEBUG1, (errmsg_internal("din: combining a part of %zu rows left in shared memory",
	                                 run->npos + run->nneg)));
	if (st->nshared < MAX_SHARED_RUNS) {
		if (!st->release_registered) {
			AggRegisterCallback(fcinfo, release_shared, PointerGetDatum(st));
			st->release_registered = true;
		}
		st->shared[st->nshared++] = *run;
		PG_RETURN_DATUM(d);
	}
	append_shared(st, run);
	metrics_shared_release(run->chunk);
	PG_RETURN_DATUM(d);
}

PG_FUNCTION_INFO_V1(din_metrics_combine);

/*
 * din_metrics_combine(bytea, bytea): the rows of both states, for auc and gauc alike. Not
 * strict, so it also serves callers (Citus) that start from a NULL state. The right state is
 * only read: it may sit in a tuple or belong to another plan node.
 */
Datum
din_metrics_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = aggregate_context(fcinfo, "din_metrics_combine");
	MetricsView left, right;
	SharedRun run;
	uint32 kind;
	Datum d;

	if (!PG_ARGISNULL(1) && shared_part(fcinfo, PG_GETARG_DATUM(1), &run, &kind))
		return combine_shared(fcinfo, aggcontext, kind, &run);
	memset(&left, 0, sizeof left);
	memset(&right, 0, sizeof right);
	/* our read-write state keeps its shared parts: right's rows join its own */
	if (!PG_ARGISNULL(0))
		metrics_view(PG_GETARG_DATUM(0), &left,
		             VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(PG_GETARG_DATUM(0))));
	if (!PG_ARGISNULL(1))
		metrics_view(PG_GETARG_DATUM(1), &right, false);
	if (right.kind == 0) {
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	check_kind(right.kind, left.kind);
	if (PG_ARGISNULL(0))
		PG_RETURN_DATUM(merge_states(aggcontext, right.kind, &left, &right));
	d = PG_GETARG_DATUM(0);
	if (left.expanded && VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(d))) {
		metrics_append(left.expanded, &right);
		PG_RETURN_DATUM(d);
	}
	if (!right.packed && flat_append(&left, right.pos, right.npos, right.neg, right.nneg))
		PG_RETURN_DATUM(d);
	PG_RETURN_DATUM(merge_states(aggcontext, right.kind, &left, &right));
}

/*
 * flat_sorted_copy: the n records at the flat records in ascending order, in palloc'd memory. A
 * state flagged sorted is only checked, so the leader of a parallel plan merely merges.
 */
static uint64 *
flat_sorted_copy(const char *records, Size n, int width, bool claimed_sorted)
{
	Size bytes = n * width * sizeof(uint64);
	uint64 *words = palloc_extended(bytes, MCXT_ALLOC_HUGE);

	memcpy(words, records, bytes);
	if (!(claimed_sorted && metrics_is_sorted(words, n, width)))
		range_sort(words, n, width);
	return words;
}

/*
 * finish_runs: the metric over st's own rows (sorted in place) and the parts it keeps in shared
 * memory, counted across them without merging; -1 when undefined.
 */
static double
finish_runs(MetricsState *st, MetricsGaucWeight weight)
{
	MetricsRun runs[1 + MAX_SHARED_RUNS];

	state_sort(st);
	runs[0] = (MetricsRun){st->pos.words, st->pos.n, st->neg.words, st->neg.n};
	for (int i = 0; i < st->nshared; i++) {
		metrics_shared_check(st->shared[i].chunk);
		runs[1 + i] = (MetricsRun){st->shared[i].pos, st->shared[i].npos, st->shared[i].neg,
		                           st->shared[i].nneg};
	}
	if (st->kind == METRICS_KIND_AUC)
		return metrics_auc_runs(runs, 1 + st->nshared, check_interrupts_hook);
	return metrics_gauc_runs(runs, 1 + st->nshared, weight, check_interrupts_hook);
}

/*
 * metrics_finish: sorts the rows once and computes the metric; -1 when undefined. Our expanded
 * state is sorted in place: that only reorders rows, which no result depends on, so the final
 * functions stay read-only in effect and the aggregates also work as window aggregates.
 */
static double
metrics_finish(Datum d, uint32 kind, MetricsGaucWeight weight)
{
	MetricsView v;
	uint64 *pos, *neg;
	int width = kind_width(kind);
	double result;

	metrics_view(d, &v, true);
	if (v.kind != kind && v.kind != 0)
		invalid_state("The state belongs to another aggregate.");
	if (v.expanded && v.expanded->nshared > 0)
		return finish_runs(v.expanded, weight);
	if (v.npos == 0 || v.nneg == 0)
		return -1.0;
	if (v.expanded) {
		state_sort(v.expanded);
		pos = v.expanded->pos.words;
		neg = v.expanded->neg.words;
	} else {
		view_unpack(&v);
		pos = flat_sorted_copy(v.pos, v.npos, width, v.sorted);
		neg = flat_sorted_copy(v.neg, v.nneg, width, v.sorted);
	}
	if (kind == METRICS_KIND_AUC)
		result = metrics_auc_sorted(pos, v.npos, neg, v.nneg, check_interrupts_hook);
	else
		result = metrics_gauc_sorted(pos, v.npos, neg, v.nneg, weight, check_interrupts_hook);
	if (!v.expanded) {
		pfree(pos);
		pfree(neg);
	}
	return result;
}

PG_FUNCTION_INFO_V1(din_auc_final);
PG_FUNCTION_INFO_V1(din_gauc_final);
PG_FUNCTION_INFO_V1(din_gauc_clicks_final);

/* din_auc_final(bytea): AUC, NULL unless both classes occur. */
Datum
din_auc_final(PG_FUNCTION_ARGS)
{
	double auc = metrics_finish(PG_GETARG_DATUM(0), METRICS_KIND_AUC, 0);

	if (auc < 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(auc);
}

/* din_gauc_final(bytea): impression-weighted GAUC, NULL when no user has both classes. */
Datum
din_gauc_final(PG_FUNCTION_ARGS)
{
	double gauc = metrics_finish(PG_GETARG_DATUM(0), METRICS_KIND_GAUC, METRICS_WEIGHT_IMPRESSIONS);

	if (gauc < 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(gauc);
}

/* din_gauc_clicks_final(bytea): click-weighted GAUC. */
Datum
din_gauc_clicks_final(PG_FUNCTION_ARGS)
{
	double gauc = metrics_finish(PG_GETARG_DATUM(0), METRICS_KIND_GAUC, METRICS_WEIGHT_CLICKS);

	if (gauc < 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(gauc);
}

/* logloss_values: the 3 float8 of a logloss state (count, sum, compensation), checked. */
static float8 *
logloss_values(ArrayType *state)
{
	if (ARR_NDIM(state) != 1 || ARR_DIMS(state)[0] != 3 || ARR_HASNULL(state) ||
	    ARR_ELEMTYPE(state) != FLOAT8OID)
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
		                errmsg("invalid logloss aggregate state"),
		                errdetail("A logloss state is a float8 array of 3 elements.")));
	return (float8 *)ARR_DATA_PTR(state);
}

/* Neumaier's compensated sum: the mean of tens of millions of losses stays exact to ~1 ulp. */
static void
compensated_add(float8 *sum, float8 *compensation, float8 x)
{
	float8 t = *sum + x;

	if (fabs(*sum) >= fabs(x))
		*compensation += (*sum - t) + x;
	else
		*compensation += (x - t) + *sum;
	*sum = t;
}

/*
 * The loss of one row exactly as scikit-learn 1.2's log_loss(eps=1e-15) computes it: clip the
 * probability to [eps, 1 - eps], form (1 - p, p), renormalize it (a no-op up to one ulp), and
 * take minus the log of the true class's entry.
 */
static float8
row_logloss(float8 p, bool label)
{
	float8 q, norm;

	p = Min(Max(p, LOGLOSS_EPS), 1.0 - LOGLOSS_EPS);
	q = 1.0 - p;
	norm = q + p;
	return -log((label ? p : q) / norm);
}

static Datum
logloss_accumulate(FunctionCallInfo fcinfo, LabelType type)
{
	ArrayType *state = PG_GETARG_ARRAYTYPE_P(0);
	float8 score = read_score(fcinfo, 1);
	bool label = read_label(fcinfo, 2, type);
	float8 *v;

	if (score < 0.0 || score > 1.0) {
		/* the shortest digits that read back as score: %g would call 1.0000001 "1" */
		char digits[DOUBLE_SHORTEST_DECIMAL_LEN];

		double_to_shortest_decimal_buf(score, digits);
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("logloss score must be between 0 and 1, not %s", digits),
		                errhint("Pass probabilities, not logits.")));
	}
	if (!AggCheckCallContext(fcinfo, NULL))
		state = DatumGetArrayTypePCopy(PG_GETARG_DATUM(0));
	/* in an aggregate the state is ours to change in place, as float8_accum does */
	v = logloss_values(state);
	v[0] += 1.0;
	compensated_add(&v[1], &v[2], row_logloss(score, label));
	PG_RETURN_ARRAYTYPE_P(state);
}

PG_FUNCTION_INFO_V1(din_logloss_trans);
PG_FUNCTION_INFO_V1(din_logloss_trans_int4);
PG_FUNCTION_INFO_V1(din_logloss_trans_int2);
PG_FUNCTION_INFO_V1(din_logloss_combine);
PG_FUNCTION_INFO_V1(din_logloss_final);

/* din_logloss_trans(float8[], score float8, label bool): adds one row's loss (STRICT). */
Datum
din_logloss_trans(PG_FUNCTION_ARGS)
{
	return logloss_accumulate(fcinfo, LABEL_BOOL);
}

Datum
din_logloss_trans_int4(PG_FUNCTION_ARGS)
{
	return logloss_accumulate(fcinfo, LABEL_INT4);
}

Datum
din_logloss_trans_int2(PG_FUNCTION_ARGS)
{
	return logloss_accumulate(fcinfo, LABEL_INT2);
}

/* din_logloss_combine(float8[], float8[]): the sum of two partial states. */
Datum
din_logloss_combine(PG_FUNCTION_ARGS)
{
	ArrayType *left = PG_GETARG_ARRAYTYPE_P(0);
	float8 *r = logloss_values(PG_GETARG_ARRAYTYPE_P(1));
	float8 *l;

	if (!AggCheckCallContext(fcinfo, NULL))
		left = DatumGetArrayTypePCopy(PG_GETARG_DATUM(0));
	l = logloss_values(left);
	l[0] += r[0];
	compensated_add(&l[1], &l[2], r[1]);
	l[2] += r[2];
	PG_RETURN_ARRAYTYPE_P(left);
}

/* din_logloss_final(float8[]): the mean loss, NULL over no rows. */
Datum
din_logloss_final(PG_FUNCTION_ARGS)
{
	float8 *v = logloss_values(PG_GETARG_ARRAYTYPE_P(0));

	if (v[0] == 0.0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((v[1] + v[2]) / v[0]);
}
