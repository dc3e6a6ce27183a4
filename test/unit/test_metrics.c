/*
 * test_metrics.c - metrics_flat_decode, the one check of an auc/gauc aggregate state the SQL
 * functions run before touching its records: well-formed states give their counts and
 * offsets, every malformed header is rejected with a reason. And the merges of sorted runs the
 * leader of a parallel plan does instead of sorting, with the check of a part's order that
 * keeps a false "sorted" flag from mattering.
 */
#include "unit.h"

#include "metrics_core.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECORDS 8

/* A state buffer with room for MAX_RECORDS gauc records, one byte in so words are unaligned. */
typedef struct StateBuf {
	unsigned char bytes[1 + METRICS_FLAT_HEADER + MAX_RECORDS * 16];
} StateBuf;

static unsigned char *
state(StateBuf *b, uint32_t kind, uint64_t npos, uint64_t nneg, uint64_t capacity)
{
	memset(b->bytes, 0xab, sizeof b->bytes);
	metrics_flat_encode(b->bytes + 1, kind, 0, npos, nneg, capacity);
	return b->bytes + 1;
}

static size_t
state_len(uint32_t kind, size_t records)
{
	return METRICS_FLAT_HEADER + records * (kind == METRICS_KIND_GAUC ? 16 : 8);
}

/* Expects fields[0, len) to be rejected with a reason containing `reason`. */
static void
check_rejected(const void *fields, size_t len, const char *reason)
{
	MetricsFlatHeader h;
	const char *why = NULL;

	CHECK_INT(metrics_flat_decode(fields, len, &h, &why), 0);
	CHECK(why != NULL);
	if (why != NULL)
		CHECK_STR_CONTAINS(why, reason);
}

static void
test_flat_decode_empty(void)
{
	MetricsFlatHeader h;
	const char *why = NULL;

	memset(&h, 0x5a, sizeof h);
	CHECK_INT(metrics_flat_decode("", 0, &h, &why), 1);
	CHECK_INT(h.kind, 0);
	CHECK_INT(h.npos, 0);
	CHECK_INT(h.nneg, 0);
	CHECK_INT(h.capacity, 0);
	CHECK(why == NULL);
}

static void
test_flat_decode_auc(void)
{
	StateBuf b;
	MetricsFlatHeader h;
	const char *why = NULL;
	unsigned char *s = state(&b, METRICS_KIND_AUC, 3, 2, 8);

	CHECK_INT(metrics_flat_decode(s, state_len(METRICS_KIND_AUC, 8), &h, &why), 1);
	CHECK_INT(h.kind, METRICS_KIND_AUC);
	CHECK_INT(h.record, 8);
	CHECK_INT(h.npos, 3);
	CHECK_INT(h.nneg, 2);
	CHECK_INT(h.capacity, 8);
	CHECK_INT(h.pos_offset, METRICS_FLAT_HEADER);
	/* the negatives are the last 2 of the 8 records */
	CHECK_INT(h.neg_offset, METRICS_FLAT_HEADER + 6 * 8);
	CHECK(why == NULL);
}

static void
test_flat_decode_gauc(void)
{
	StateBuf b;
	MetricsFlatHeader h;
	const char *why = NULL;
	unsigned char *s = state(&b, METRICS_KIND_GAUC, 1, 3, 4);

	CHECK_INT(metrics_flat_decode(s, state_len(METRICS_KIND_GAUC, 4), &h, &why), 1);
	CHECK_INT(h.kind, METRICS_KIND_GAUC);
	CHECK_INT(h.record, 16);
	CHECK_INT(h.npos, 1);
	CHECK_INT(h.nneg, 3);
	CHECK_INT(h.capacity, 4);
	CHECK_INT(h.pos_offset, METRICS_FLAT_HEADER);
	CHECK_INT(h.neg_offset, METRICS_FLAT_HEADER + 1 * 16);
}

/* Full states and states of no capacity are states too. */
static void
test_flat_decode_edges(void)
{
	StateBuf b;
	MetricsFlatHeader h;
	const char *why = NULL;

	CHECK_INT(metrics_flat_decode(state(&b, METRICS_KIND_AUC, 5, 3, 8),
	                              state_len(METRICS_KIND_AUC, 8), &h, &why),
	          1);
	CHECK_INT(h.neg_offset, METRICS_FLAT_HEADER + 5 * 8);
	CHECK_INT(metrics_flat_decode(state(&b, METRICS_KIND_GAUC, 0, 8, 8),
	                              state_len(METRICS_KIND_GAUC, 8), &h, &why),
	          1);
	CHECK_INT(h.neg_offset, METRICS_FLAT_HEADER);
	CHECK_INT(
	    metrics_flat_decode(state(&b, METRICS_KIND_AUC, 0, 0, 0), METRICS_FLAT_HEADER, &h, &why),
	    1);
	CHECK_INT(h.kind, METRICS_KIND_AUC);
	CHECK_INT(h.capacity, 0);
}

static void
test_flat_decode_short(void)
{
	StateBuf b;
	unsigned char *s = state(&b, METRICS_KIND_AUC, 0, 0, 0);

	check_rejected(s, 1, "shorter than a state header");
	check_rejected(s, METRICS_FLAT_HEADER - 1, "shorter than a state header");
}

static void
test_flat_decode_bad_magic_kind_flags(void)
{
	StateBuf b;
	unsigned char *s;

	s = state(&b, METRICS_KIND_AUC, 0, 0, 1);
	s[0] ^= 1;
	check_rejected(s, state_len(METRICS_KIND_AUC, 1), "does not start with a state header");
	check_rejected(state(&b, 0, 0, 0, 1), state_len(METRICS_KIND_AUC, 1), "unknown kind");
	check_rejected(state(&b, 3, 0, 0, 1), state_len(METRICS_KIND_AUC, 1), "unknown kind");
	check_rejected(state(&b, UINT32_MAX, 0, 0, 1), state_len(METRICS_KIND_AUC, 1), "unknown kind");
	s = state(&b, METRICS_KIND_GAUC, 0, 0, 1);
	s[8] = 2; /* the flags word: no such flag */
	check_rejected(s, state_len(METRICS_KIND_GAUC, 1), "flags");
	s[8] = 0;
	s[11] = 0x80;
	check_rejected(s, state_len(METRICS_KIND_GAUC, 1), "flags");
}

/* The sorted flag is read back; older states (flags 0) read as unsorted. */
static void
test_flat_decode_sorted_flag(void)
{
	StateBuf b;
	MetricsFlatHeader h;
	const char *why = NULL;
	unsigned char *s = state(&b, METRICS_KIND_AUC, 1, 1, 2);

	CHECK_INT(metrics_flat_decode(s, state_len(METRICS_KIND_AUC, 2), &h, &why), 1);
	CHECK_INT(h.flags, 0);
	metrics_flat_encode(s, METRICS_KIND_AUC, METRICS_FLAG_SORTED, 1, 1, 2);
	CHECK_INT(metrics_flat_decode(s, state_len(METRICS_KIND_AUC, 2), &h, &why), 1);
	CHECK_INT(h.flags, METRICS_FLAG_SORTED);
}

/*
 * A reference to a shared part round-trips through encode and decode, decodes with its counts
 * and no records, and is refused with any other flags, length or capacity.
 */
static void
test_shared_ref(void)
{
	unsigned char s[METRICS_FLAT_HEADER + METRICS_SHARED_BODY + 1];
	MetricsSharedRef ref = {METRICS_KIND_GAUC,     7,  9, 0xdeadbeef, 4242, 0x1122334455667788ULL,
	                        0x0102030405060708ULL, {0}},
	                 back;
	MetricsFlatHeader h;
	const char *why = NULL;
	size_t len = METRICS_FLAT_HEADER + METRICS_SHARED_BODY;

	for (int i = 0; i < 32; i++)
		ref.mac[i] = (unsigned char)(i * 7 + 1);
	metrics_shared_encode(s, &ref);
	CHECK_INT(metrics_flat_decode(s, len, &h, &why), 1);
	CHECK_INT(h.flags, METRICS_FLAG_SORTED | METRICS_FLAG_SHARED);
	CHECK_INT(h.kind, METRICS_KIND_GAUC);
	CHECK_INT(h.npos, 7);
	CHECK_INT(h.nneg, 9);
	CHECK_INT(h.pos_bytes + h.neg_bytes, 0);
	metrics_shared_decode(s, &back);
	CHECK(back.kind == ref.kind && back.npos == ref.npos && back.nneg == ref.nneg &&
	      back.segment == ref.segment && back.leader == ref.leader && back.area == ref.area &&
	      back.chunk == ref.chunk && memcmp(back.mac, ref.mac, sizeof ref.mac) == 0);
	CHECK_INT(METRICS_SHARED_SIGNED, len - 32);
	check_rejected(s, len - 1, "not a whole reference");
	check_rejected(s, len + 1, "not a whole reference");
	metrics_flat_encode(s, METRICS_KIND_GAUC, METRICS_FLAG_SORTED | METRICS_FLAG_SHARED, 7, 9, 1);
	check_rejected(s, len, "not a whole reference");
	metrics_flat_encode(s, METRICS_KIND_GAUC, METRICS_FLAG_SHARED, 7, 9, 0);
	check_rejected(s, len, "flags");
	metrics_flat_encode(s, METRICS_KIND_GAUC,
	                    METRICS_FLAG_SORTED | METRICS_FLAG_SHARED | METRICS_FLAG_PACKED, 7, 9, 0);
	check_rejected(s, len, "flags");
}

static void
test_is_sorted(void)
{
	uint64_t one[] = {1, 2, 2, 5};
	uint64_t two[] = {1, 9, 2, 0, 2, 0, 2, 3};

	CHECK_INT(metrics_is_sorted(one, 0, 1), 1);
	CHECK_INT(metrics_is_sorted(one, 4, 1), 1);
	one[3] = 1;
	CHECK_INT(metrics_is_sorted(one, 4, 1), 0);
	CHECK_INT(metrics_is_sorted(two, 4, 2), 1);
	two[7] = 0; /* same user, smaller score than the record before */
	CHECK_INT(metrics_is_sorted(two, 4, 2), 1);
	two[5] = 1;
	CHECK_INT(metrics_is_sorted(two, 4, 2), 0);
}

/* Runs of every length, merged, equal the sorted whole; the unsorted tail is the last run. */
static void
test_merge_runs(void)
{
	enum { N = 300 };
	uint64_t data[2 * N], scratch[2 * N], expect[2 * N];
	size_t ends[METRICS_MAX_RUNS];
	uint32_t x = 12345;

	for (int width = 1; width <= 2; width++)
		for (int nruns = 0; nruns <= METRICS_MAX_RUNS; nruns += 7) {
			size_t start = 0;
			uint64_t *out;

			for (size_t i = 0; i < (size_t)N * width; i++) {
				x = x * 1103515245 + 12345;
				data[i] = (x >> 16) % 16; /* many ties */
			}
			for (int r = 0; r < nruns; r++) {
				ends[r] = (size_t)N * (r + 1) / (nruns + 1) - (r % 3 == 0 ? r % 5 : 0);
				if (ends[r] < start)
					ends[r] = start;
				metrics_sort(data + start * width, NULL, NULL, ends[r] - start, width, NULL);
				start = ends[r];
			}
			metrics_sort(data + start * width, NULL, NULL, N - start, width, NULL);
			memcpy(expect, data, sizeof(uint64_t) * N * width);
			metrics_sort(expect, NULL, NULL, N, width, NULL);
			out = metrics_merge_runs(data, scratch, ends, nruns, N, width, NULL);
			CHECK(out == data || out == scratch);
			CHECK(memcmp(out, expect, sizeof(uint64_t) * N * width) == 0);
		}
}

/* Sorted records of width words, n of them, keys below `range` (small ranges give ties). */
/* Sorts n records of width words in place, with the workspace a radix sort needs. */
static void
sort_records(uint64_t *records, size_t n, int width)
{
	uint64_t *scratch = malloc(sizeof(uint64_t) * width * (n + 1));
	size_t *counts = malloc(sizeof(size_t) * METRICS_SORT_COUNTS);
	uint64_t *sorted = metrics_sort(records, scratch, counts, n, width, NULL);

	if (sorted != records)
		memcpy(records, sorted, sizeof(uint64_t) * width * n);
	free(scratch);
	free(counts);
}

static void
sorted_records(uint64_t *out, size_t n, int width, uint32_t range, uint32_t *x)
{
	for (size_t i = 0; i < n * width; i++) {
		*x = *x * 1103515245 + 12345;
		out[i] = (*x >> 16) % range;
	}
	sort_records(out, n, width);
}

/*
 * A sorted part merged into sorted data from the back equals the sorted whole, whatever their
 * sizes (none, one, unequal, all of one below all of the other), the part one byte off 8-byte
 * alignment as in a tuple.
 */
static void
test_merge_into(void)
{
	enum { N = 200 };
	static const size_t sizes[][2] = {{0, 0}, {0, 7}, {7, 0}, {1, 1}, {N, 3}, {3, N}, {N, N}};
	uint32_t x = 777;

	for (int width = 1; width <= 2; width++)
		for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
			for (uint32_t range = 3; range <= 1000; range *= 10) {
				size_t n = sizes[s][0], m = sizes[s][1];
				uint64_t data[2 * 2 * N], part[2 * N], expect[2 * 2 * N];
				unsigned char bytes[1 + sizeof part];

				sorted_records(data, n, width, range, &x);
				sorted_records(part, m, width, range, &x);
				if (s == 4) /* every part record above every data record */
					for (size_t i = 0; i < m * width; i++)
						part[i] += range;
				memcpy(bytes + 1, part, m * width * sizeof(uint64_t));
				memcpy(expect, data, n * width * sizeof(uint64_t));
				memcpy(expect + n * width, part, m * width * sizeof(uint64_t));
				metrics_sort(expect, NULL, NULL, n + m, width, NULL);
				CHECK_INT(metrics_merge_into(data, n, bytes + 1, m, width, NULL), 1);
				CHECK(memcmp(data, expect, (n + m) * width * sizeof(uint64_t)) == 0);
			}
}

/*
 * A part out of order, wherever the disorder is (first pair, last pair, where the merge takes
 * the rest in one copy), is reported, and no record is lost or made up.
 */
static void
test_merge_into_unsorted_part(void)
{
	enum { N = 50 };
	uint32_t x = 4242;

	for (int width = 1; width <= 2; width++)
		for (size_t swap = 0; swap + 1 < N; swap += 7) {
			uint64_t data[2 * 2 * N], part[2 * N], expect[2 * 2 * N], tmp[2];
			size_t n = (swap % 2) ? N : 5;

			sorted_records(data, n, width, 100000, &x);
			sorted_records(part, N, width, 100000, &x);
			/* make record swap + 1 smaller than record swap */
			memcpy(tmp, part + swap * width, width * sizeof(uint64_t));
			memcpy(part + swap * width, part + (swap + 1) * width, width * sizeof(uint64_t));
			memcpy(part + (swap + 1) * width, tmp, width * sizeof(uint64_t));
			part[swap * width] += 200000;
			memcpy(expect, data, n * width * sizeof(uint64_t));
			memcpy(expect + n * width, part, N * width * sizeof(uint64_t));
			metrics_sort(expect, NULL, NULL, n + N, width, NULL);
			CHECK_INT(metrics_merge_into(data, n, part, N, width, NULL), 0);
			metrics_sort(data, NULL, NULL, n + N, width, NULL);
			CHECK(memcmp(data, expect, (n + N) * width * sizeof(uint64_t)) == 0);
		}
}

/* Packs n ascending gauc records into bytes (room for 18 a record); returns the length. */
static size_t
pack(const uint64_t *records, size_t n, unsigned char *bytes)
{
	size_t len = metrics_packed_size(records, n);

	metrics_pack(records, n, bytes);
	return len;
}

/*
 * Packed gauc records unpack to what was packed (merged into nothing), and merge into sorted
 * records as the unpacked part would: users far apart and alike, the least and greatest keys,
 * ties. A record whose user repeats the one before takes 9 bytes.
 */
static void
test_packed_round_trip(void)
{
	enum { N = 300 };
	uint64_t part[2 * N], data[2 * 2 * N], expect[2 * 2 * N];
	unsigned char bytes[18 * N];
	const char *why = NULL;
	uint32_t x = 99;

	for (uint32_t range = 2; range <= 200000; range *= 100) {
		size_t len;

		sorted_records(part, N, 2, range, &x);
		part[0] = 0;                  /* the least user key */
		part[2 * N - 2] = UINT64_MAX; /* the greatest user key, */
		part[2 * N - 1] = UINT64_MAX; /* and score key */
		len = pack(part, N, bytes);
		CHECK_INT(len, metrics_packed_size(part, N));
		CHECK_INT(metrics_merge_packed_into(data, 0, bytes, len, N, NULL, &why), 1);
		CHECK(memcmp(data, part, sizeof part) == 0);
		sorted_records(data, N, 2, range, &x);
		memcpy(expect, data, N * 2 * sizeof(uint64_t));
		memcpy(expect + 2 * N, part, sizeof part);
		metrics_sort(expect, NULL, NULL, 2 * N, 2, NULL);
		CHECK_INT(metrics_merge_packed_into(data, N, bytes, len, N, NULL, &why), 1);
		CHECK(memcmp(data, expect, sizeof expect) == 0);
	}
	part[0] = 7;
	part[1] = 1;
	part[2] = 7;
	part[3] = 2;
	CHECK_INT(pack(part, 2, bytes) - metrics_packed_size(part, 1), 9);
	CHECK_INT(metrics_packed_size(part, 0), 0);
}

/* Scores out of order within a user are reported (0), and every record is kept. */
static void
test_packed_unsorted_scores(void)
{
	uint64_t part[] = {1, 5, 2, 9, 2, 3, 4, 4}, data[8], expect[8];
	unsigned char bytes[18 * 4];
	const char *why = NULL;
	size_t len = pack(part, 4, bytes);

	memcpy(expect, part, sizeof part);
	metrics_sort(expect, NULL, NULL, 4, 2, NULL);
	CHECK_INT(metrics_merge_packed_into(data, 0, bytes, len, 4, NULL, &why), 0);
	metrics_sort(data, NULL, NULL, 4, 2, NULL);
	CHECK(memcmp(data, expect, sizeof expect) == 0);
}

/* Expects the m-record stream to be rejected with a reason containing `reason`. */
static void
check_packed_rejected(const unsigned char *bytes, size_t len, size_t m, const char *reason)
{
	uint64_t data[2 * 4];
	const char *why = NULL;

	CHECK_INT(metrics_merge_packed_into(data, 0, bytes, len, m, NULL, &why), -1);
	CHECK(why != NULL);
	if (why != NULL)
		CHECK_STR_CONTAINS(why, reason);
}

/* Streams that end early, run on, overflow 64 bits or go below user key 0. */
static void
test_packed_malformed(void)
{
	uint64_t part[] = {3, 1, 5, 2}, data[2];
	unsigned char bytes[64];
	size_t len = pack(part, 2, bytes);
	/* 2^64 - 1 in 10 bytes (the first user is then 0), a score, then one user less */
	unsigned char least[27] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	const char *why = NULL;

	check_packed_rejected(bytes, len - 1, 2, "ends inside a record");
	check_packed_rejected(bytes, 3, 1, "ends inside a record");
	check_packed_rejected(bytes, len, 3, "ends inside a record");
	check_packed_rejected(bytes, len, 1, "bytes after its last record");
	check_packed_rejected((const unsigned char *)"\x80\x80", 2, 1, "ends inside a record");
	CHECK_INT(metrics_merge_packed_into(data, 0, least, 18, 1, NULL, &why), 1);
	CHECK(data[0] == 0);
	least[18] = 1;
	check_packed_rejected(least, sizeof least, 2, "below the least user key");
	least[9] = 0x02; /* bit 64 */
	check_packed_rejected(least, 18, 1, "past 64 bits");
	least[9] = 0x81; /* an eleventh byte */
	check_packed_rejected(least, 18, 1, "past 64 bits");
}

/* Packed headers: gauc and sorted only, lengths within the value and fit for their counts. */
static void
test_flat_decode_packed(void)
{
	unsigned char s[METRICS_FLAT_HEADER + 40];
	MetricsFlatHeader h;
	const char *why = NULL;
	uint32_t both = METRICS_FLAG_SORTED | METRICS_FLAG_PACKED;

	memset(s, 0, sizeof s);
	metrics_flat_encode(s, METRICS_KIND_GAUC, both, 2, 2, 20);
	CHECK_INT(metrics_flat_decode(s, sizeof s, &h, &why), 1);
	CHECK_INT(h.flags, both);
	CHECK_INT(h.pos_offset, METRICS_FLAT_HEADER);
	CHECK_INT(h.pos_bytes, 20);
	CHECK_INT(h.neg_offset, METRICS_FLAT_HEADER + 20);
	CHECK_INT(h.neg_bytes, 20);
	metrics_flat_encode(s, METRICS_KIND_GAUC, METRICS_FLAG_PACKED, 2, 2, 20);
	check_rejected(s, sizeof s, "flags");
	metrics_flat_encode(s, METRICS_KIND_AUC, both, 2, 2, 20);
	check_rejected(s, sizeof s, "flags");
	metrics_flat_encode(s, METRICS_KIND_GAUC, both, 2, 2, 41);
	check_rejected(s, sizeof s, "exceeds the value");
	metrics_flat_encode(s, METRICS_KIND_GAUC, both, 3, 2, 20);
	check_rejected(s, sizeof s, "what its bytes can hold");
	metrics_flat_encode(s, METRICS_KIND_GAUC, both, UINT64_MAX, 2, 20);
	check_rejected(s, sizeof s, "what its bytes can hold");
	metrics_flat_encode(s, METRICS_KIND_GAUC, both, 2, 3, 20);
	check_rejected(s, sizeof s, "what its bytes can hold");
	metrics_flat_encode(s, METRICS_KIND_GAUC, both, 0, 2, 20);
	check_rejected(s, sizeof s, "no rows");
	metrics_flat_encode(s, METRICS_KIND_GAUC, both, 2, 0, 20);
	check_rejected(s, sizeof s, "no rows");
	metrics_flat_encode(s, METRICS_KIND_GAUC, both, 0, 0, 0);
	CHECK_INT(metrics_flat_decode(s, METRICS_FLAT_HEADER, &h, &why), 1);
}

static void
test_flat_decode_capacity_disagrees(void)
{
	StateBuf b;

	/* larger than the bytes: the attack of issue 14 writes past the end */
	check_rejected(state(&b, METRICS_KIND_AUC, 0, 0, 9), state_len(METRICS_KIND_AUC, 8),
	               "capacity");
	check_rejected(state(&b, METRICS_KIND_GAUC, 1, 0, 2), state_len(METRICS_KIND_GAUC, 1),
	               "capacity");
	check_rejected(state(&b, METRICS_KIND_AUC, 0, 0, 1), METRICS_FLAT_HEADER, "capacity");
	/* smaller than the bytes */
	check_rejected(state(&b, METRICS_KIND_AUC, 0, 0, 7), state_len(METRICS_KIND_AUC, 8),
	               "capacity");
	check_rejected(state(&b, METRICS_KIND_GAUC, 0, 0, 0), state_len(METRICS_KIND_GAUC, 1),
	               "capacity");
	/* the byte count of an auc state read as gauc: half the records it claims */
	check_rejected(state(&b, METRICS_KIND_GAUC, 0, 0, 8), state_len(METRICS_KIND_AUC, 8),
	               "capacity");
}

static void
test_flat_decode_counts_exceed_capacity(void)
{
	StateBuf b;

	check_rejected(state(&b, METRICS_KIND_AUC, 5, 4, 8), state_len(METRICS_KIND_AUC, 8),
	               "exceed its capacity");
	check_rejected(state(&b, METRICS_KIND_AUC, 9, 0, 8), state_len(METRICS_KIND_AUC, 8),
	               "exceed its capacity");
	check_rejected(state(&b, METRICS_KIND_GAUC, 0, 5, 4), state_len(METRICS_KIND_GAUC, 4),
	               "exceed its capacity");
	check_rejected(state(&b, METRICS_KIND_GAUC, 1, 0, 0), METRICS_FLAT_HEADER,
	               "exceed its capacity");
}

/* Values whose sum or product wraps to something a naive check would accept. */
static void
test_flat_decode_overflow(void)
{
	StateBuf b;

	/* npos + nneg wraps to 0 or to 8 */
	check_rejected(state(&b, METRICS_KIND_AUC, UINT64_MAX, 1, 8), state_len(METRICS_KIND_AUC, 8),
	               "exceed its capacity");
	check_rejected(state(&b, METRICS_KIND_AUC, UINT64_C(1) << 63, UINT64_C(1) << 63, 8),
	               state_len(METRICS_KIND_AUC, 8), "exceed its capacity");
	check_rejected(state(&b, METRICS_KIND_GAUC, 4, UINT64_MAX - 3, 4),
	               state_len(METRICS_KIND_GAUC, 4), "exceed its capacity");
	check_rejected(state(&b, METRICS_KIND_AUC, 0, UINT64_MAX, 8), state_len(METRICS_KIND_AUC, 8),
	               "exceed its capacity");
	/* capacity * record wraps to the real byte count */
	check_rejected(state(&b, METRICS_KIND_AUC, 0, 0, (UINT64_C(1) << 61) + 8),
	               state_len(METRICS_KIND_AUC, 8), "capacity");
	check_rejected(state(&b, METRICS_KIND_GAUC, 0, 0, (UINT64_C(1) << 60) + 4),
	               state_len(METRICS_KIND_GAUC, 4), "capacity");
	check_rejected(state(&b, METRICS_KIND_GAUC, 0, 0, UINT64_MAX), state_len(METRICS_KIND_GAUC, 4),
	               "capacity");
}

static void
test_flat_decode_partial_record(void)
{
	StateBuf b;

	check_rejected(state(&b, METRICS_KIND_AUC, 0, 0, 1), METRICS_FLAT_HEADER + 12, "whole records");
	check_rejected(state(&b, METRICS_KIND_AUC, 0, 0, 0), METRICS_FLAT_HEADER + 1, "whole records");
	/* a whole number of auc records, but not of gauc ones */
	check_rejected(state(&b, METRICS_KIND_GAUC, 0, 0, 1), METRICS_FLAT_HEADER + 24,
	               "whole records");
}

static int
compare_records(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return (x[1] > y[1]) - (x[1] < y[1]);
}

/*
 * (user, score) records sort as qsort sorts them, whatever the users' sizes: many small users,
 * users of 33 to 2047 rows, a user of thousands (its scores radix-sorted in its own memory,
 * with an odd and an even number of passes), one user only; and the buffer not returned holds
 * the same records in some order.
 */
static void
test_sort_users(void)
{
	enum { N = 9000 };
	static uint64_t data[2 * N], scratch[2 * N], expect[2 * N], other[2 * N];
	static size_t counts[METRICS_SORT_COUNTS];
	/* users, and bits of score: one varying score digit (odd passes in all) or two */
	static const uint32_t shapes[][2] = {{3000, 40}, {200, 40}, {40, 8}, {4, 16}, {1, 16}, {1, 8}};
	uint32_t x = 5;

	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		uint64_t *sorted;

		for (size_t i = 0; i < N; i++) {
			x = x * 1103515245 + 12345;
			data[2 * i] = (x >> 8) % shapes[s][0];
			x = x * 1103515245 + 12345;
			data[2 * i + 1] = ((uint64_t)x << 20 | x >> 12) & ((UINT64_C(1) << shapes[s][1]) - 1);
		}
		data[1] = (UINT64_C(1) << shapes[s][1]) - 1; /* scores at both ends */
		data[3] = 0;
		memcpy(expect, data, sizeof data);
		qsort(expect, N, 16, compare_records);
		sorted = metrics_sort(data, scratch, counts, N, 2, NULL);
		CHECK(memcmp(sorted, expect, sizeof expect) == 0);
		if (sorted == scratch) {
			memcpy(other, data, sizeof data);
			qsort(other, N, 16, compare_records);
			CHECK(memcmp(other, expect, sizeof expect) == 0);
		}
	}
}

/*
 * Packed parts longer than the unpacking chunk merge as the unpacked part would, whichever side
 * runs out first and wherever that falls against a chunk's end; a part whose scores fall out
 * of order in a later chunk is reported, with no record lost or made up.
 */
static void
test_packed_merge_chunks(void)
{
	enum { N = 1000 };
	static const size_t sizes[][2] = {{0, N}, {1, N}, {255, N}, {257, 600}, {N, 513}, {N, N}};
	static uint64_t data[2 * 2 * N], part[2 * N], expect[2 * 2 * N];
	static unsigned char bytes[18 * N];
	const char *why = NULL;
	uint32_t x = 31337;
	size_t len;

	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
		for (uint32_t range = 5; range <= 50000; range *= 100) {
			size_t n = sizes[s][0], m = sizes[s][1];

			sorted_records(data, n, 2, range, &x);
			sorted_records(part, m, 2, range, &x);
			if (s == 1) /* every part record below the one data record: data runs out first */
				data[0] = range;
			len = pack(part, m, bytes);
			memcpy(expect, data, n * 16);
			memcpy(expect + 2 * n, part, m * 16);
			sort_records(expect, n + m, 2);
			CHECK_INT(metrics_merge_packed_into(data, n, bytes, len, m, NULL, &why), 1);
			CHECK(memcmp(data, expect, (n + m) * 16) == 0);
		}
	/* the last two records of one user swap scores: the disorder is in the stream's last chunk */
	sorted_records(data, N, 2, 500, &x);
	for (size_t i = 0; i < N; i++) {
		part[2 * i] = 7;
		part[2 * i + 1] = i;
	}
	part[3] = 5;
	len = pack(part, N, bytes);
	memcpy(expect, data, N * 16);
	memcpy(expect + 2 * N, part, N * 16);
	sort_records(expect, 2 * N, 2);
	CHECK_INT(metrics_merge_packed_into(data, N, bytes, len, N, NULL, &why), 0);
	sort_records(data, 2 * N, 2);
	CHECK(memcmp(data, expect, 2 * N * 16) == 0);
}

/* Twice the Mann-Whitney U by its definition: every pair, a win 2, a tie 1. */
static uint64_t
brute_twice_u(const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg, int width)
{
	uint64_t twice = 0;

	for (size_t i = 0; i < npos; i++)
		for (size_t j = 0; j < nneg; j++) {
			uint64_t p = pos[i * width + width - 1], n = neg[j * width + width - 1];

			twice += p > n ? 2 : p == n;
		}
	return twice;
}

/*
 * metrics_auc_sorted equals the pair count by definition, to the bit, for classes of every
 * size around the split of the walk (1024 positives), few keys (many ties) and many, and a
 * class beyond the other's keys; -1 for an empty class.
 */
static void
test_auc_sorted(void)
{
	static const size_t sizes[][2] = {{1, 1},    {1, 9},    {9, 1},      {100, 37},
	                                  {1023, 5}, {1024, 1}, {1025, 700}, {3000, 2000}};
	static uint64_t pos[3000], neg[2000];
	uint32_t x = 2024;

	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
		for (uint32_t range = 2; range <= 200000; range *= 100) {
			size_t np = sizes[s][0], nn = sizes[s][1];
			double expect;

			sorted_records(pos, np, 1, range, &x);
			sorted_records(neg, nn, 1, range, &x);
			if (s == 3) /* every negative above every positive */
				for (size_t j = 0; j < nn; j++)
					neg[j] += range;
			expect = (double)((long double)brute_twice_u(pos, np, neg, nn, 1) /
			                  (2.0L * (long double)np * (long double)nn));
			CHECK(metrics_auc_sorted(pos, np, neg, nn, NULL) == expect);
		}
	CHECK(metrics_auc_sorted(pos, 0, neg, 3, NULL) == -1.0);
	CHECK(metrics_auc_sorted(pos, 3, neg, 0, NULL) == -1.0);
}

/*
 * metrics_gauc_sorted equals the weighted mean of each user's AUC by definition, users summed
 * in ascending order, with users of one class only (left out), one large user (walked split)
 * and ties; -1 when no user has both classes.
 */
static void
test_gauc_sorted(void)
{
	enum { N = 4000 };
	static uint64_t pos[2 * N], neg[2 * N];
	uint32_t x = 99;

	for (int weight = METRICS_WEIGHT_IMPRESSIONS; weight <= METRICS_WEIGHT_CLICKS; weight++)
		for (uint32_t range = 3; range <= 30000; range *= 100) {
			size_t np = N, nn = N / 2, i = 0, j = 0;
			long double weighted = 0, total = 0;

			sorted_records(pos, np, 2, range, &x);
			sorted_records(neg, nn, 2, range, &x);
			for (size_t r = 0; r < N / 2; r++) /* user 0 is large: 2000 positives and more */
				pos[2 * r] = 0;
			sort_records(pos, np, 2);
			while (i < np || j < nn) {
				uint64_t user =
				    j >= nn || (i < np && pos[2 * i] <= neg[2 * j]) ? pos[2 * i] : neg[2 * j];
				size_t pi = i, nj = j;

				while (i < np && pos[2 * i] == user)
					i++;
				while (j < nn && neg[2 * j] == user)
					j++;
				if (i > pi && j > nj) {
					long double w = weight == METRICS_WEIGHT_CLICKS ? i - pi : i - pi + j - nj;
					double auc = (double)((long double)brute_twice_u(pos + 2 * pi, i - pi,
					                                                 neg + 2 * nj, j - nj, 2) /
					                      (2.0L * (long double)(i - pi) * (long double)(j - nj)));

					weighted += w * auc;
					total += w;
				}
			}
			CHECK(metrics_gauc_sorted(pos, np, neg, nn, weight, NULL) ==
			      (double)(weighted / total));
		}
	pos[0] = 1;
	neg[0] = 2;
	CHECK(metrics_gauc_sorted(pos, 1, neg, 1, METRICS_WEIGHT_IMPRESSIONS, NULL) == -1.0);
}

/*
 * split_runs: deals the n ascending records of width words at records into nruns ascending
 * runs at out (run r from out + r * n * width), each record to a run drawn at random, none
 * to run 0 when skip_first (an empty run); the runs' sizes go to sizes.
 */
static void
split_runs(const uint64_t *records, size_t n, int width, int nruns, int skip_first, uint64_t *out,
           size_t *sizes, uint32_t *x)
{
	for (int r = 0; r < nruns; r++)
		sizes[r] = 0;
	for (size_t i = 0; i < n; i++) {
		int r;

		*x = *x * 1103515245 + 12345;
		r = skip_first ? 1 + (int)((*x >> 16) % (uint32_t)(nruns - 1))
		               : (int)((*x >> 16) % (uint32_t)nruns);

		memcpy(out + ((size_t)r * n + sizes[r]++) * width, records + i * width,
		       width * sizeof(uint64_t));
	}
}

/*
 * metrics_auc_runs and metrics_gauc_runs over records dealt into 1 to 8 runs equal
 * metrics_auc_sorted and metrics_gauc_sorted over the records merged, to the bit: with an
 * empty run, ties, users in one run only, small users spread over runs (merged on the stack)
 * and a user of thousands of rows spread over runs (counted pair by pair).
 */
static void
test_runs(void)
{
	enum { N = 3000, MAXR = METRICS_MAX_FINAL_RUNS };
	static uint64_t pos[2 * N], neg[2 * N], pos_runs[MAXR * 2 * N], neg_runs[MAXR * 2 * N];
	size_t pos_sizes[MAXR], neg_sizes[MAXR];
	MetricsRun runs[MAXR];
	uint32_t x = 4242;

	for (int nruns = 1; nruns <= MAXR; nruns++)
		for (int skip = 0; skip <= (nruns > 1); skip++)
			for (uint32_t range = 3; range <= 300000; range *= 10) {
				size_t np = N, nn = N / 2 + (size_t)nruns;

				/* auc: one word a record */
				sorted_records(pos, np, 1, range, &x);
				sorted_records(neg, nn, 1, range, &x);
				split_runs(pos, np, 1, nruns, skip, pos_runs, pos_sizes, &x);
				split_runs(neg, nn, 1, nruns, skip, neg_runs, neg_sizes, &x);
				for (int r = 0; r < nruns; r++)
					runs[r] = (MetricsRun){pos_runs + (size_t)r * np, pos_sizes[r],
					                       neg_runs + (size_t)r * nn, neg_sizes[r]};
				CHECK(metrics_auc_runs(runs, nruns, NULL) ==
				      metrics_auc_sorted(pos, np, neg, nn, NULL));

				/* gauc: users 0..range/3, user 0 large (1500 positives and more) */
				sorted_records(pos, np, 2, range, &x);
				sorted_records(neg, nn, 2, range, &x);
				for (size_t i = 0; i < N / 2; i++)
					pos[2 * i] = 0;
				sort_records(pos, np, 2);
				split_runs(pos, np, 2, nruns, skip, pos_runs, pos_sizes, &x);
				split_runs(neg, nn, 2, nruns, skip, neg_runs, neg_sizes, &x);
				for (int r = 0; r < nruns; r++)
					runs[r] = (MetricsRun){pos_runs + (size_t)r * 2 * np, pos_sizes[r],
					                       neg_runs + (size_t)r * 2 * nn, neg_sizes[r]};
				for (int weight = METRICS_WEIGHT_IMPRESSIONS; weight <= METRICS_WEIGHT_CLICKS;
				     weight++)
					CHECK(metrics_gauc_runs(runs, nruns, weight, NULL) ==
					      metrics_gauc_sorted(pos, np, neg, nn, weight, NULL));
			}
	/* one class empty in every run */
	runs[0] = (MetricsRun){pos, 3, neg, 0};
	runs[1] = (MetricsRun){pos, 2, neg, 0};
	CHECK(metrics_auc_runs(runs, 2, NULL) == -1.0);
	CHECK(metrics_gauc_runs(runs, 2, METRICS_WEIGHT_IMPRESSIONS, NULL) == -1.0);
}

void suite_metrics(void);

void
suite_metrics(void)
{
	RUN(test_flat_decode_empty);
	RUN(test_flat_decode_auc);
	RUN(test_flat_decode_gauc);
	RUN(test_flat_decode_edges);
	RUN(test_flat_decode_short);
	RUN(test_flat_decode_bad_magic_kind_flags);
	RUN(test_flat_decode_sorted_flag);
	RUN(test_is_sorted);
	RUN(test_merge_runs);
	RUN(test_merge_into);
	RUN(test_merge_into_unsorted_part);
	RUN(test_packed_round_trip);
	RUN(test_packed_unsorted_scores);
	RUN(test_packed_malformed);
	RUN(test_sort_users);
	RUN(test_packed_merge_chunks);
	RUN(test_auc_sorted);
	RUN(test_gauc_sorted);
	RUN(test_runs);
	RUN(test_shared_ref);
	RUN(test_flat_decode_packed);
	RUN(test_flat_decode_capacity_disagrees);
	RUN(test_flat_decode_counts_exceed_capacity);
	RUN(test_flat_decode_overflow);
	RUN(test_flat_decode_partial_record);
}
