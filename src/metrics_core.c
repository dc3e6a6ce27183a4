/*
 * metrics_core.c - radix sort of score keys, exact Mann-Whitney AUC / GAUC, and the check of
 * the flat aggregate state.
 */
#include "metrics_core.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define DIGIT_BITS METRICS_DIGIT_BITS
#define DIGIT_BUCKETS (1 << DIGIT_BITS)
#define DIGITS_PER_WORD METRICS_DIGITS_PER_WORD

/* twice the Mann-Whitney U can pass 2^64 for a few billion rows; keep it exact */
#ifdef __SIZEOF_INT128__
typedef unsigned __int128 MetricsCount;
#else
typedef long double MetricsCount;
#endif

uint64_t
metrics_score_key(double score)
{
	uint64_t bits;

	if (score == 0.0)
		score = 0.0; /* -0.0 ties with 0.0, as it compares equal */
	memcpy(&bits, &score, sizeof bits);
	/* negative: reverse all bits; positive: set the sign bit above every negative */
	return (bits >> 63) ? ~bits : bits | UINT64_C(0x8000000000000000);
}

uint64_t
metrics_user_key(int64_t user_id)
{
	return (uint64_t)user_id ^ UINT64_C(0x8000000000000000);
}

static int
compare_one(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int
compare_two(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	if (x[0] != y[0])
		return (x[0] > y[0]) - (x[0] < y[0]);
	return (x[1] > y[1]) - (x[1] < y[1]);
}

/*
 * LSD radix sort, least significant digit of the last word first. A digit every record
 * shares is skipped: its pass would be the identity. Scores in [0, 1] and small user ids
 * share their high digits, so most sorts need far fewer than the full passes.
 */
uint64_t *
metrics_sort(uint64_t *data, uint64_t *scratch, size_t *count_storage, size_t n, int width,
             MetricsPassHook hook)
{
	size_t(*counts)[DIGIT_BUCKETS] = (size_t(*)[DIGIT_BUCKETS])count_storage;
	uint64_t *src = data;
	uint64_t *dst = scratch;

	if (n < METRICS_RADIX_MIN) {
		qsort(data, n, sizeof(uint64_t) * width, width == 1 ? compare_one : compare_two);
		return data;
	}
	memset(count_storage, 0, sizeof(size_t) * METRICS_SORT_COUNTS);
	for (size_t i = 0; i < n; i++)
		for (int w = 0; w < width; w++) {
			uint64_t key = data[i * width + w];

			for (int d = 0; d < DIGITS_PER_WORD; d++)
				counts[w * DIGITS_PER_WORD + d][(key >> (d * DIGIT_BITS)) & (DIGIT_BUCKETS - 1)]++;
		}
	if (hook)
		hook();

	for (int w = width - 1; w >= 0; w--)
		for (int d = 0; d < DIGITS_PER_WORD; d++) {
			size_t *count = counts[w * DIGITS_PER_WORD + d];
			int shift = d * DIGIT_BITS;
			size_t offset = 0;
			uint64_t *tmp;
			int skip = 0;

			for (int b = 0; b < DIGIT_BUCKETS; b++) {
				size_t c = count[b];

				if (c == n) {
					skip = 1;
					break;
				}
				count[b] = offset;
				offset += c;
			}
			if (skip)
				continue;
			if (width == 1) {
				for (size_t i = 0; i < n; i++) {
					uint64_t key = src[i];

					dst[count[(key >> shift) & (DIGIT_BUCKETS - 1)]++] = key;
				}
			} else {
				for (size_t i = 0; i < n; i++) {
					uint64_t k0 = src[2 * i], k1 = src[2 * i + 1];
					uint64_t key = w == 0 ? k0 : k1;
					size_t at = count[(key >> shift) & (DIGIT_BUCKETS - 1)]++;

					dst[2 * at] = k0;
					dst[2 * at + 1] = k1;
				}
			}
			tmp = src;
			src = dst;
			dst = tmp;
			if (hook)
				hook();
		}
	return src;
}

static int
record_less(const uint64_t *x, const uint64_t *y, int width)
{
	return x[0] != y[0] || width == 1 ? x[0] < y[0] : x[1] < y[1];
}

int
metrics_is_sorted(const uint64_t *data, size_t n, int width)
{
	for (size_t i = 1; i < n; i++)
		if (record_less(data + i * width, data + (i - 1) * width, width))
			return 0;
	return 1;
}

/*
 * Merges ascending a (na records) and b (nb) into out; on a tie a's record goes first. Without
 * branches on the keys (which come in random order), and each record moves as plain words.
 */
static void
merge_two(const uint64_t *a, size_t na, const uint64_t *b, size_t nb, uint64_t *out, int width)
{
	const uint64_t *a_end = a + na * width, *b_end = b + nb * width;

	if (width == 1)
		while (a < a_end && b < b_end) {
			int take_b = *b < *a;

			*out++ = take_b ? *b : *a;
			b += take_b;
			a += !take_b;
		}
	else
		while (a < a_end && b < b_end) {
			int take_b = b[0] < a[0] || (b[0] == a[0] && b[1] < a[1]);
			const uint64_t *from = take_b ? b : a;

			out[0] = from[0];
			out[1] = from[1];
			out += 2;
			b += 2 * take_b;
			a += 2 * !take_b;
		}
	memcpy(out, a, (a_end - a) * sizeof(uint64_t));
	out += a_end - a;
	memcpy(out, b, (b_end - b) * sizeof(uint64_t));
}

uint64_t *
metrics_merge_runs(uint64_t *data, uint64_t *scratch, const size_t *run_ends, int nruns, size_t n,
                   int width, MetricsPassHook hook)
{
	size_t ends[METRICS_MAX_RUNS + 1];
	uint64_t *src = data, *dst = scratch;

	memcpy(ends, run_ends, sizeof(size_t) * nruns);
	if (nruns == 0 || ends[nruns - 1] != n)
		ends[nruns++] = n;
	while (nruns > 1) {
		int out = 0;
		size_t start = 0;
		uint64_t *tmp;

		for (int r = 0; r < nruns; r += 2) {
			size_t mid = ends[r], end = r + 1 < nruns ? ends[r + 1] : mid;

			merge_two(src + start * width, mid - start, src + mid * width, end - mid,
			          dst + start * width, width);
			ends[out++] = end;
			start = end;
		}
		nruns = out;
		tmp = src;
		src = dst;
		dst = tmp;
		if (hook)
			hook();
	}
	return src;
}

static uint64_t
load_word(const unsigned char *at)
{
	uint64_t word;

	memcpy(&word, at, sizeof word);
	return word;
}

/* The records merge_into takes at a time between calls of its hook. */
#define MERGE_POLL_RECORDS ((size_t)1 << 20)

/*
 * Moves the larger of data's last unplaced record and part's to the back, steps times: both
 * have at least steps records left, so no bound is checked inside. *ordered stays 1 while each
 * part record taken is no larger than the one taken before it (*last). The keys come in random
 * order, so the choice is made with masks: no branch for the processor to mispredict.
 */
static void
merge_back_one(uint64_t **out, const uint64_t **a, const unsigned char **b, size_t steps,
               uint64_t *last, int *ordered)
{
	uint64_t *o = *out;
	const uint64_t *x = *a;
	const unsigned char *y = *b;
	uint64_t prev = *last;
	int ok = *ordered;
	size_t i = 0, j = 0; /* records taken from data and from part */

	for (size_t s = 1; s <= steps; s++) {
		uint64_t xa = x[-1 - (ptrdiff_t)i], yb = load_word(y - 8 * (j + 1));
		uint64_t take_a = yb < xa, mask = -take_a;

		ok &= yb <= prev;
		o[-(ptrdiff_t)s] = (xa & mask) | (yb & ~mask);
		prev = (prev & mask) | (yb & ~mask);
		i += take_a;
		j += 1 - take_a;
	}
	*out = o - steps;
	*a = x - i;
	*b = y - 8 * j;
	*last = prev;
	*ordered = ok;
}

/* merge_back_one for gauc records: two words, the user key first. */
static void
merge_back_two(uint64_t **out, const uint64_t **a, const unsigned char **b, size_t steps,
               uint64_t *last, int *ordered)
{
	uint64_t *o = *out;
	const uint64_t *x = *a;
	const unsigned char *y = *b;
	uint64_t p0 = last[0], p1 = last[1];
	int ok = *ordered;
	size_t i = 0, j = 0;

	for (size_t s = 1; s <= steps; s++) {
		const uint64_t *xr = x - 2 * (i + 1);
		const unsigned char *yr = y - 16 * (j + 1);
		uint64_t x0 = xr[0], x1 = xr[1], y0 = load_word(yr), y1 = load_word(yr + 8);
		uint64_t take_a = (y0 < x0) | ((y0 == x0) & (y1 < x1)), mask = -take_a;

		ok &= (y0 < p0) | ((y0 == p0) & (y1 <= p1));
		o[-2 * (ptrdiff_t)s] = (x0 & mask) | (y0 & ~mask);
		o[-2 * (ptrdiff_t)s + 1] = (x1 & mask) | (y1 & ~mask);
		p0 = (p0 & mask) | (y0 & ~mask);
		p1 = (p1 & mask) | (y1 & ~mask);
		i += take_a;
		j += 1 - take_a;
	}
	*out = o - 2 * steps;
	*a = x - 2 * i;
	*b = y - 16 * j;
	last[0] = p0;
	last[1] = p1;
	*ordered = ok;
}

int
metrics_merge_into(uint64_t *data, size_t n, const void *part, size_t m, int width,
                   MetricsPassHook hook)
{
	size_t record = (size_t)width * sizeof(uint64_t);
	uint64_t *out = data + (n + m) * width;
	const uint64_t *a = data + n * width;
	const unsigned char *b = (const unsigned char *)part + m * record;
	uint64_t last[2] = {UINT64_MAX, UINT64_MAX}; /* above every record */
	int ordered = 1;
	size_t since_poll = 0;

	for (;;) {
		size_t left_a = (size_t)(a - data) / width;
		size_t left_b = (size_t)(b - (const unsigned char *)part) / record;
		size_t steps = left_a < left_b ? left_a : left_b;

		if (steps == 0)
			break;
		if (steps > MERGE_POLL_RECORDS)
			steps = MERGE_POLL_RECORDS;
		if (width == 1)
			merge_back_one(&out, &a, &b, steps, last, &ordered);
		else
			merge_back_two(&out, &a, &b, steps, last, &ordered);
		since_poll += steps;
		if (hook && since_poll >= MERGE_POLL_RECORDS) {
			hook();
			since_poll = 0;
		}
	}
	/* what is left of part goes to the front, checked as the rest was */
	if (b > (const unsigned char *)part) {
		size_t left = (size_t)(b - (const unsigned char *)part) / record;

		memcpy(data, part, left * record);
		ordered &= metrics_is_sorted(data, left, width) &&
		           !record_less(last, data + (left - 1) * width, width);
	}
	return ordered;
}

/* The bytes of value in LEB128: 7 bits each, one at least. */
static size_t
varint_size(uint64_t value)
{
	int bits = 64 - __builtin_clzll(value | 1);

	return (size_t)(bits + 6) / 7;
}

size_t
metrics_packed_size(const uint64_t *records, size_t n)
{
	uint64_t prev = UINT64_MAX;
	size_t bytes = 0;

	for (size_t i = n; i-- > 0;) {
		bytes += varint_size(prev - records[2 * i]) + sizeof(uint64_t);
		prev = records[2 * i];
	}
	return bytes;
}

void
metrics_pack(const uint64_t *records, size_t n, unsigned char *out)
{
	uint64_t prev = UINT64_MAX;

	for (size_t i = n; i-- > 0;) {
		uint64_t diff = prev - records[2 * i];

		for (; diff >= 0x80; diff >>= 7)
			*out++ = (unsigned char)(diff | 0x80);
		*out++ = (unsigned char)diff;
		memcpy(out, &records[2 * i + 1], sizeof(uint64_t));
		out += sizeof(uint64_t);
		prev = records[2 * i];
	}
}

/*
 * Reads one LEB128 value from [*at, end) into *value and moves *at past it. Returns NULL, or a
 * sentence saying why the bytes are not such a value below 2^64.
 */
static const char *
read_varint(const unsigned char **at, const unsigned char *end, uint64_t *value)
{
	const unsigned char *p = *at;
	uint64_t v = 0;

	for (int shift = 0; p < end; shift += 7) {
		unsigned char byte = *p++;

		if (shift == 63 && byte > 1)
			return "A packed stream in the state holds a number past 64 bits.";
		v |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			*at = p;
			*value = v;
			return NULL;
		}
	}
	return "A packed stream in the state ends inside a record.";
}

int
metrics_merge_packed_into(uint64_t *data, size_t n, const unsigned char *stream, size_t len,
                          size_t m, MetricsPassHook hook, const char **why)
{
	const unsigned char *p = stream, *end = stream + len;
	uint64_t *out = data + 2 * (n + m);
	const uint64_t *a = data + 2 * n;
	uint64_t user = UINT64_MAX, score = UINT64_MAX; /* the record taken before, from part */
	int ordered = 1;

	for (size_t r = 0; r < m; r++) {
		uint64_t diff, next_score;

		*why = read_varint(&p, end, &diff);
		if (*why == NULL && end - p < (ptrdiff_t)sizeof(uint64_t))
			*why = "A packed stream in the state ends inside a record.";
		if (*why != NULL)
			return -1;
		if (diff > user) {
			*why = "A packed stream in the state names a user below the least user key.";
			return -1;
		}
		next_score = load_word(p);
		p += sizeof(uint64_t);
		ordered &= diff > 0 || next_score <= score;
		user -= diff;
		score = next_score;
		/* data's records above this one go behind it */
		while (a > data && (a[-2] > user || (a[-2] == user && a[-1] > score))) {
			out -= 2;
			a -= 2;
			out[0] = a[0];
			out[1] = a[1];
		}
		out -= 2;
		out[0] = user;
		out[1] = score;
		if (hook && (r + 1) % MERGE_POLL_RECORDS == 0)
			hook();
	}
	if (p != end) {
		*why = "A packed stream in the state has bytes after its last record.";
		return -1;
	}
	return ordered;
}

/* Twice the Mann-Whitney U: a positive above a negative counts 2, a tie counts 1. */
static MetricsCount
twice_u(const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg, int width, int offset)
{
	MetricsCount sum = 0;
	size_t below = 0; /* negatives with a key below the current positive key */
	size_t i = 0;

	while (i < npos) {
		uint64_t key = pos[i * width + offset];
		size_t same_pos = 0, same_neg = 0;

		while (i < npos && pos[i * width + offset] == key) {
			same_pos++;
			i++;
		}
		while (below < nneg && neg[below * width + offset] < key)
			below++;
		while (below + same_neg < nneg && neg[(below + same_neg) * width + offset] == key)
			same_neg++;
		sum += (MetricsCount)same_pos * (2 * (MetricsCount)below + same_neg);
	}
	return sum;
}

double
metrics_auc_sorted(const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg, int width,
                   int offset)
{
	long double pairs2;

	if (npos == 0 || nneg == 0)
		return -1.0;
	pairs2 = 2.0L * (long double)npos * (long double)nneg;
	return (double)((long double)twice_u(pos, npos, neg, nneg, width, offset) / pairs2);
}

double
metrics_gauc_sorted(const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg,
                    MetricsGaucWeight weight)
{
	long double weighted = 0.0L, total = 0.0L;
	size_t i = 0, j = 0;

	while (i < npos || j < nneg) {
		uint64_t user;
		size_t pos_end = i, neg_end = j;

		if (j >= nneg || (i < npos && pos[2 * i] <= neg[2 * j]))
			user = pos[2 * i];
		else
			user = neg[2 * j];
		while (pos_end < npos && pos[2 * pos_end] == user)
			pos_end++;
		while (neg_end < nneg && neg[2 * neg_end] == user)
			neg_end++;
		if (pos_end > i && neg_end > j) {
			size_t np = pos_end - i, nn = neg_end - j;
			long double w = weight == METRICS_WEIGHT_CLICKS ? np : np + nn;
			long double auc = metrics_auc_sorted(pos + 2 * i, np, neg + 2 * j, nn, 2, 1);

			weighted += w * auc;
			total += w;
		}
		i = pos_end;
		j = neg_end;
	}
	if (total == 0.0L)
		return -1.0;
	return (double)(weighted / total);
}

/* field offsets in the flat form */
#define FLAT_MAGIC 0
#define FLAT_KIND 4
#define FLAT_FLAGS 8
#define FLAT_NPOS 12
#define FLAT_NNEG 20
#define FLAT_CAPACITY 28

static uint32_t
get_u32(const unsigned char *fields, int offset)
{
	uint32_t v;

	memcpy(&v, fields + offset, sizeof v);
	return v;
}

static uint64_t
get_u64(const unsigned char *fields, int offset)
{
	uint64_t v;

	memcpy(&v, fields + offset, sizeof v);
	return v;
}

int
metrics_flat_decode(const void *fields, size_t len, MetricsFlatHeader *out, const char **why)
{
	const unsigned char *p = fields;
	uint32_t kind, flags;
	uint64_t npos, nneg, capacity;
	size_t body;
	int shift; /* log2 of the record size: the check runs per row, so no division */

	memset(out, 0, sizeof *out);
	if (len == 0)
		return 1;
	if (len < METRICS_FLAT_HEADER) {
		*why = "The value is shorter than a state header.";
		return 0;
	}
	if (get_u32(p, FLAT_MAGIC) != METRICS_MAGIC) {
		*why = "The value does not start with a state header.";
		return 0;
	}
	kind = get_u32(p, FLAT_KIND);
	if (kind != METRICS_KIND_AUC && kind != METRICS_KIND_GAUC) {
		*why = "The state header names an unknown kind of state.";
		return 0;
	}
	flags = get_u32(p, FLAT_FLAGS);
	if ((flags & ~(uint32_t)(METRICS_FLAG_SORTED | METRICS_FLAG_PACKED)) != 0 ||
	    ((flags & METRICS_FLAG_PACKED) &&
	     (kind != METRICS_KIND_GAUC || !(flags & METRICS_FLAG_SORTED)))) {
		*why = "The state header has flags no version of din sets.";
		return 0;
	}
	npos = get_u64(p, FLAT_NPOS);
	nneg = get_u64(p, FLAT_NNEG);
	capacity = get_u64(p, FLAT_CAPACITY);
	shift = kind == METRICS_KIND_GAUC ? 4 : 3;
	body = len - METRICS_FLAT_HEADER;
	out->kind = kind;
	out->flags = flags;
	out->record = (size_t)1 << shift;
	out->pos_offset = METRICS_FLAT_HEADER;
	if (flags & METRICS_FLAG_PACKED) {
		if (capacity > body) {
			*why = "The positives' length in the state header exceeds the value.";
			return 0;
		}
		/* a record takes METRICS_PACKED_MIN bytes or more: no count is more than len / 9 */
		if (npos > capacity / METRICS_PACKED_MIN || nneg > (body - capacity) / METRICS_PACKED_MIN) {
			*why = "The row counts in the state header exceed what its bytes can hold.";
			return 0;
		}
		if ((npos == 0 && capacity != 0) || (nneg == 0 && body != capacity)) {
			*why = "The state header gives bytes to a class that has no rows.";
			return 0;
		}
		out->npos = (size_t)npos;
		out->nneg = (size_t)nneg;
		out->capacity = (size_t)capacity;
		out->neg_offset = METRICS_FLAT_HEADER + (size_t)capacity;
		out->pos_bytes = (size_t)capacity;
		out->neg_bytes = body - (size_t)capacity;
		return 1;
	}
	if ((body & (((size_t)1 << shift) - 1)) != 0) {
		*why = "The value is not a state header followed by whole records.";
		return 0;
	}
	if (capacity != (uint64_t)(body >> shift)) {
		*why = "The capacity in the state header disagrees with the length of the value.";
		return 0;
	}
	/* both below capacity, itself at most len / 8: no sum or product below can wrap */
	if (npos > capacity || nneg > capacity - npos) {
		*why = "The row counts in the state header exceed its capacity.";
		return 0;
	}
	out->npos = (size_t)npos;
	out->nneg = (size_t)nneg;
	out->capacity = (size_t)capacity;
	out->neg_offset = METRICS_FLAT_HEADER + (size_t)(capacity - nneg) * out->record;
	out->pos_bytes = out->npos * out->record;
	out->neg_bytes = out->nneg * out->record;
	return 1;
}

void
metrics_flat_encode(void *fields, uint32_t kind, uint32_t flags, uint64_t npos, uint64_t nneg,
                    uint64_t capacity)
{
	unsigned char *p = fields;
	uint32_t magic = METRICS_MAGIC;

	memcpy(p + FLAT_MAGIC, &magic, sizeof magic);
	memcpy(p + FLAT_KIND, &kind, sizeof kind);
	memcpy(p + FLAT_FLAGS, &flags, sizeof flags);
	memcpy(p + FLAT_NPOS, &npos, sizeof npos);
	memcpy(p + FLAT_NNEG, &nneg, sizeof nneg);
	memcpy(p + FLAT_CAPACITY, &capacity, sizeof capacity);
}
