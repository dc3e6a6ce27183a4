/*
 * metrics_core.h - exact ranking metrics over sorted keys, and the flat form of their
 * aggregate states, without PostgreSQL.
 *
 * Scores are stored as order-preserving 64-bit keys so one radix sort orders them and equal
 * keys mean equal scores (ties). AUC records are one key (the score); GAUC records are two
 * keys, the user first and the score second, sorted lexicographically. Positives and
 * negatives live in separate arrays, so no bit is spent on the label.
 */
#ifndef DIN_METRICS_CORE_H
#define DIN_METRICS_CORE_H

#include <stddef.h>
#include <stdint.h>

/* Called between radix passes; the PostgreSQL glue checks for interrupts there. */
typedef void (*MetricsPassHook)(void);

/* The key of a finite score: unsigned order equals numeric order, -0.0 and 0.0 share a key. */
uint64_t metrics_score_key(double score);

/* The key of a user id: unsigned order equals signed order. */
uint64_t metrics_user_key(int64_t user_id);

#define METRICS_DIGIT_BITS 8
#define METRICS_DIGITS_PER_WORD ((64 + METRICS_DIGIT_BITS - 1) / METRICS_DIGIT_BITS)
/* Entries of the counts workspace metrics_sort needs. */
#define METRICS_SORT_COUNTS (METRICS_DIGITS_PER_WORD * (1 << METRICS_DIGIT_BITS))

/* Below this many records a comparison sort beats clearing the radix counts. */
#define METRICS_RADIX_MIN 2048

/*
 * Sorts n records of width 64-bit words (1 or 2) ascending, comparing word 0 first. scratch
 * holds n * width words, counts METRICS_SORT_COUNTS entries (both may be NULL when n is below
 * METRICS_RADIX_MIN). Returns the buffer holding the sorted records (data or scratch; the
 * other one holds some permutation of them).
 */
uint64_t *metrics_sort(uint64_t *data, uint64_t *scratch, size_t *counts, size_t n, int width,
                       MetricsPassHook hook);

/* 1 when the n records of width words at data are in ascending order (ties allowed). */
int metrics_is_sorted(const uint64_t *data, size_t n, int width);

/* The most runs metrics_merge_runs takes: each pass halves them, so 64 costs 6 passes. */
#define METRICS_MAX_RUNS 64

/*
 * Merges consecutive ascending runs of data into one ascending sequence, pairwise, through
 * scratch (n * width words): run i ends before record ends[i], and records from the last end
 * to n form one more run. nruns is at most METRICS_MAX_RUNS. Returns the buffer holding the
 * result (data or scratch). Each run must be sorted: metrics_is_sorted says.
 */
uint64_t *metrics_merge_runs(uint64_t *data, uint64_t *scratch, const size_t *ends, int nruns,
                             size_t n, int width, MetricsPassHook hook);

/*
 * Merges the m ascending records of width words at part (any alignment, not overlapping data)
 * into the n ascending records at data, which has room for n + m: from the back, so data's
 * records move once and no scratch is needed; with n = 0 it copies. part's order is checked
 * first. Returns 1 when part was ascending and data[0, n + m) now is; 0 when it was not, and
 * data then holds all n + m records in some order. Calls hook about every 2^20 records.
 */
int metrics_merge_into(uint64_t *data, size_t n, const void *part, size_t m, int width,
                       MetricsPassHook hook);

/* Bytes of the packed stream of the n ascending gauc records at records. */
size_t metrics_packed_size(const uint64_t *records, size_t n);

/* Writes the packed stream of the n ascending gauc records at records to out. */
void metrics_pack(const uint64_t *records, size_t n, unsigned char *out);

/*
 * metrics_merge_into for a packed stream of m gauc records in len bytes: merges them into the n
 * ascending records at data (room for n + m), from the back, a few hundred at a time unpacked
 * on the stack. Returns 1 as metrics_merge_into does, or 0 when the scores were out of order
 * (data then holds all n + m records in some order); -1 when the stream is not m whole records
 * in exactly len bytes, or names a user key below zero, and then points *why at a sentence
 * saying so (data is then garbage).
 */
int metrics_merge_packed_into(uint64_t *data, size_t n, const unsigned char *stream, size_t len,
                              size_t m, MetricsPassHook hook, const char **why);

/*
 * AUC of the positive score keys against the negative ones, both ascending. Ties count one
 * half. Returns -1 when either class is empty. Calls hook about every 2^20 records.
 */
double metrics_auc_sorted(const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg,
                          MetricsPassHook hook);

/* One ascending run of positives and one of negatives (either may be empty). */
typedef struct MetricsRun {
	const uint64_t *pos;
	size_t npos;
	const uint64_t *neg;
	size_t nneg;
} MetricsRun;

/* The most runs metrics_auc_runs and metrics_gauc_runs take. */
#define METRICS_MAX_FINAL_RUNS 8

/*
 * metrics_auc_sorted over the union of nruns runs of score keys, without merging them: the
 * same value to the bit. Each pair of runs is counted, so every row is walked nruns times.
 */
double metrics_auc_runs(const MetricsRun *runs, int nruns, MetricsPassHook hook);

/* How GAUC weighs each user's AUC. */
typedef enum MetricsGaucWeight {
	METRICS_WEIGHT_IMPRESSIONS,
	METRICS_WEIGHT_CLICKS
} MetricsGaucWeight;

/*
 * GAUC over (user, score) records sorted by user then score, positives and negatives apart:
 * the weighted mean of the per-user AUC over users with both classes. Returns -1 when no user
 * has both classes.
 */
double metrics_gauc_sorted(const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg,
                           MetricsGaucWeight weight, MetricsPassHook hook);

/*
 * metrics_gauc_sorted over the union of nruns runs of (user, score) records, each sorted by
 * user then score (as any run must be: an unsorted one gives a wrong number), without merging
 * them: the same value to the bit.
 */
double metrics_gauc_runs(const MetricsRun *runs, int nruns, MetricsGaucWeight weight,
                         MetricsPassHook hook);

/*
 * The flat form of an auc/gauc aggregate state (the bytes after its varlena header), native
 * byte order: uint32 magic, uint32 kind, uint32 flags, uint64 npos, uint64 nneg,
 * uint64 capacity, then capacity records: the npos positives from the front, the nneg
 * negatives at the back. A record is the score key (auc) or the user key then the score key
 * (gauc). No bytes at all is the empty state.
 *
 * flags (the word was reserved and always 0 before 0.2.0, so older states read as unsorted):
 * METRICS_FLAG_SORTED says both the positives and the negatives are in ascending order, as a
 * parallel worker or a Citus shard sorts its part before sending it, so the leader only
 * merges. It is a claim, not a proof: whoever relies on it checks it in O(n) first
 * (metrics_is_sorted) and sorts when it is false, so no result depends on it.
 * METRICS_FLAG_PACKED (gauc only, with METRICS_FLAG_SORTED) says the records are packed, as
 * below: capacity is then the byte length of the positives' stream, and the negatives' stream
 * is the rest of the value. METRICS_FLAG_SHARED (with METRICS_FLAG_SORTED only) says the value
 * holds no records but a reference to them in a parallel query's shared memory
 * (MetricsSharedRef, below): capacity is 0 and the value is exactly METRICS_SHARED_BODY bytes
 * past the header. Any other bit or combination makes the state invalid.
 *
 * A packed stream holds a sorted gauc part in descending order, each record as the difference
 * of its user key from the record's before it (from 2^64 - 1 for the first) in unsigned LEB128
 * (1 to 10 bytes, 7 bits each, lowest first, the high bit set on all but the last), then its
 * score key in 8 bytes. A sorted part holds each user's rows together, so most differences take
 * one byte and a record about 9 bytes instead of 16: fewer bytes for PostgreSQL to copy on
 * their way to the leader. The order of the scores is a claim, checked as above.
 */
#define METRICS_MAGIC 0x4d444e44 /* "DNDM" */
#define METRICS_KIND_AUC 1
#define METRICS_KIND_GAUC 2
#define METRICS_FLAG_SORTED 1
#define METRICS_FLAG_PACKED 2
#define METRICS_FLAG_SHARED 4
#define METRICS_FLAT_HEADER 36 /* bytes before the first record */
#define METRICS_PACKED_MIN 9   /* bytes of the shortest packed record */

/*
 * A reference to a sorted part a parallel worker (or the leader, for its own share) left in the
 * query's shared memory instead of sending its rows: the npos positives then the nneg negatives
 * at chunk. segment is the worker's parallel segment (0 for the leader's own part, which names
 * its area by address instead), leader the process that may read it, mac an HMAC of every byte
 * before it under a key only the server holds, so no value a user makes is ever followed.
 */
typedef struct MetricsSharedRef {
	uint32_t kind;
	uint64_t npos;
	uint64_t nneg;
	uint32_t segment;
	uint32_t leader;
	uint64_t area;
	uint64_t chunk;
	unsigned char mac[32];
} MetricsSharedRef;

/* bytes after the header (segment to mac), and bytes the mac covers (all before it) */
#define METRICS_SHARED_BODY 56
#define METRICS_SHARED_SIGNED (METRICS_FLAT_HEADER + METRICS_SHARED_BODY - 32)

/* Writes the whole value (header and body) of ref at fields. */
void metrics_shared_encode(void *fields, const MetricsSharedRef *ref);

/* Reads the reference a value metrics_flat_decode found METRICS_FLAG_SHARED in. */
void metrics_shared_decode(const void *fields, MetricsSharedRef *ref);

/* What a flat state holds, found by metrics_flat_decode; offsets count from its first byte. */
typedef struct MetricsFlatHeader {
	uint32_t kind;  /* 0 for the empty state */
	uint32_t flags; /* METRICS_FLAG_SORTED, with METRICS_FLAG_PACKED or not, or 0 */
	size_t record;  /* bytes per record (unpacked) */
	size_t npos;
	size_t nneg;
	size_t capacity; /* records it has room for; for a packed state, the positives' bytes */
	size_t pos_offset;
	size_t neg_offset;
	size_t pos_bytes; /* bytes of the positives' and the negatives' records or streams */
	size_t neg_bytes;
} MetricsFlatHeader;

/*
 * Checks that the len bytes at fields are a whole flat state: magic, kind, flags, and
 * counts that agree exactly with len (for a packed state: streams within len, long enough for
 * their counts; what they hold is checked as they are read). Returns 1 and fills *out when
 * they do; otherwise returns 0 and points *why at a sentence saying what is wrong. Reads
 * nothing beyond the header before the header has been checked against len, and never more
 * than len bytes.
 */
int metrics_flat_decode(const void *fields, size_t len, MetricsFlatHeader *out, const char **why);

/* Writes the header of a flat state of the given kind, flags and counts at fields. */
void metrics_flat_encode(void *fields, uint32_t kind, uint32_t flags, uint64_t npos, uint64_t nneg,
                         uint64_t capacity);

#endif
