/*
 * metrics_core.c - radix sort of score keys, exact Mann-Whitney AUC / GAUC, and the check of
 * the flat aggregate state.
 */
#include "metrics_core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define DIGIT_BITS METRICS_DIGIT_BITS
#define DIGIT_BUCKETS (1 << DIGIT_BITS)
#define DIGITS_PER_WORD METRICS_DIGITS_PER_WORD

/* The records a sort, merge or walk handles between calls of its hook. */
#define POLL_RECORDS ((size_t)1 << 20)

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
 * LSD radix sort of n records of width words on the digits of their word `word`, from src
 * through dst; returns the buffer holding the result. A digit every record shares is skipped:
 * its pass would be the identity. Scores in [0, 1] and small user ids share their high
 * digits, so most sorts need fewer than the full passes.
 */
static uint64_t *
radix_word(uint64_t *src, uint64_t *dst, size_t *count_storage, size_t n, int width, int word,
           MetricsPassHook hook)
{
	size_t(*counts)[DIGIT_BUCKETS] = (size_t(*)[DIGIT_BUCKETS])count_storage;

	memset(count_storage, 0, sizeof(size_t) * DIGITS_PER_WORD * DIGIT_BUCKETS);
	for (size_t i = 0; i < n; i++) {
		uint64_t key = src[i * width + word];

		for (int d = 0; d < DIGITS_PER_WORD; d++)
			counts[d][(key >> (d * DIGIT_BITS)) & (DIGIT_BUCKETS - 1)]++;
	}
	for (int d = 0; d < DIGITS_PER_WORD; d++) {
		size_t *count = counts[d];
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
		if (width == 1)
			for (size_t i = 0; i < n; i++) {
				uint64_t key = src[i];

				dst[count[(key >> shift) & (DIGIT_BUCKETS - 1)]++] = key;
			}
		else
			for (size_t i = 0; i < n; i++) {
				uint64_t k0 = src[2 * i], k1 = src[2 * i + 1];
				size_t at = count[((word == 0 ? k0 : k1) >> shift) & (DIGIT_BUCKETS - 1)]++;

				dst[2 * at] = k0;
				dst[2 * at + 1] = k1;
			}
		tmp = src;
		src = dst;
		dst = tmp;
		if (hook)
			hook();
	}
	return src;
}

/* Shell sort's gaps (Ciura's), below METRICS_RADIX_MIN records. */
static const size_t shell_gaps[] = {1750, 701, 301, 132, 57, 23, 10, 4, 1};
#define SHELL_GAPS (sizeof shell_gaps / sizeof shell_gaps[0])

/*
 * Sorts by score the g records of one user at group (two words each, the score second), in the
 * group's own memory. The user is the same in every record, so only the scores move. Up to a
 * few thousand scores go by Shell sort, in place (no recursion, no quadratic worst case). More
 * are gathered in the group's first half, radix-sorted there with the second half as scratch,
 * and spread back.
 */
static void
sort_user_scores(uint64_t *group, size_t g, size_t *counts, MetricsPassHook hook)
{
	uint64_t user = group[0], *scores = group, *sorted;

	if (g < METRICS_RADIX_MIN) {
		/* a user of a few dozen rows, the common case, skips to plain insertion */
		for (size_t k = g > 64 ? 0 : SHELL_GAPS - 1; k < SHELL_GAPS; k++) {
			size_t gap = shell_gaps[k];

			for (size_t i = gap; i < g; i++) {
				uint64_t key = group[2 * i + 1];
				size_t j = i;

				for (; j >= gap && group[2 * (j - gap) + 1] > key; j -= gap)
					group[2 * j + 1] = group[2 * (j - gap) + 1];
				group[2 * j + 1] = key;
			}
		}
		return;
	}
	for (size_t i = 0; i < g; i++) /* reads ahead of what it writes */
		scores[i] = group[2 * i + 1];
	sorted = radix_word(scores, scores + g, counts, g, 1, 0, hook);
	/* spread from the end that does not overwrite a score still to be read */
	if (sorted == scores)
		for (size_t i = g; i-- > 0;) {
			uint64_t score = sorted[i];

			group[2 * i] = user;
			group[2 * i + 1] = score;
		}
	else
		for (size_t i = 0; i < g; i++) {
			uint64_t score = sorted[i];

			group[2 * i] = user;
			group[2 * i + 1] = score;
		}
}

/*
 * Records of one word are radix-sorted on it. Records of two (user, score) are radix-sorted on
 * the user, then each user's scores are sorted on their own: a user's rows are few, so that
 * costs less than the eight more passes over 16-byte records a radix sort on the score would.
 */
uint64_t *
metrics_sort(uint64_t *data, uint64_t *scratch, size_t *counts, size_t n, int width,
             MetricsPassHook hook)
{
	uint64_t *sorted;
	size_t since_poll = 0;

	if (n < METRICS_RADIX_MIN) {
		qsort(data, n, sizeof(uint64_t) * width, width == 1 ? compare_one : compare_two);
		return data;
	}
	sorted = radix_word(data, scratch, counts, n, width, 0, hook);
	if (width == 1)
		return sorted;
	for (size_t start = 0, end; start < n; start = end) {
		for (end = start + 1; end < n && sorted[2 * end] == sorted[2 * start]; end++)
			;
		sort_user_scores(sorted + 2 * start, end - start, counts, hook);
		since_poll += end - start;
		if (hook && since_poll >= POLL_RECORDS) {
			hook();
			since_poll = 0;
		}
	}
	return sorted;
}

static uint64_t
load_word(const unsigned char *at)
{
	uint64_t word;

	memcpy(&word, at, sizeof word);
	return word;
}

/* 1 when the m records of width words at part (any alignment) are in ascending order. */
static int
part_is_sorted(const unsigned char *part, size_t m, int width)
{
	size_t record = (size_t)width * sizeof(uint64_t);
	int ok = 1;

	for (size_t r = 1; r < m; r++) {
		const unsigned char *x = part + (r - 1) * record, *y = part + r * record;
		uint64_t x0 = load_word(x), y0 = load_word(y);

		if (width == 1)
			ok &= x0 <= y0;
		else
			ok &= (x0 < y0) | ((x0 == y0) & (load_word(x + 8) <= load_word(y + 8)));
	}
	return ok;
}

int
metrics_is_sorted(const uint64_t *data, size_t n, int width)
{
	return part_is_sorted((const unsigned char *)data, n, width);
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

/*
 * Moves the larger of data's last unplaced record and part's to the back, steps times: both
 * have at least steps records left, so no bound is checked inside. On a tie part's record goes
 * behind. The keys come in random order, so the record is chosen with a mask, not a branch the
 * processor would mispredict, and the next step waits only on the comparison.
 */
static void
merge_back_one(uint64_t **out, const uint64_t **a, const unsigned char **b, size_t steps)
{
	uint64_t *o = *out;
	const uint64_t *x = *a;
	const unsigned char *y = *b;
	size_t i = 0, j = 0; /* records taken from data and from part */

	for (size_t s = 1; s <= steps; s++) {
		uint64_t xa = x[-1 - (ptrdiff_t)i], yb = load_word(y - 8 * (j + 1));
		uint64_t take_a = yb < xa, mask = -take_a;

		o[-(ptrdiff_t)s] = (xa & mask) | (yb & ~mask);
		i += take_a;
		j += 1 - take_a;
	}
	*out = o - steps;
	*a = x - i;
	*b = y - 8 * j;
}

/* merge_back_one for gauc records: two words, the user key first, moved together. */
static void
merge_back_two(uint64_t **out, const uint64_t **a, const unsigned char **b, size_t steps)
{
	uint64_t *o = *out;
	const uint64_t *x = *a;
	const unsigned char *y = *b;
	size_t i = 0, j = 0;

	for (size_t s = 1; s <= steps; s++) {
		const unsigned char *xr = (const unsigned char *)(x - 2 * (i + 1));
		const unsigned char *yr = y - 16 * (j + 1);
		uint64_t x0 = load_word(xr), x1 = load_word(xr + 8);
		uint64_t y0 = load_word(yr), y1 = load_word(yr + 8);
		uintptr_t take_a = (y0 < x0) | ((y0 == x0) & (y1 < x1)), mask = -take_a;

		memcpy(o - 2 * s, (const void *)(((uintptr_t)xr & mask) | ((uintptr_t)yr & ~mask)), 16);
		i += take_a;
		j += 1 - take_a;
	}
	*out = o - 2 * steps;
	*a = x - 2 * i;
	*b = y - 16 * j;
}

/*
 * Merges the m ascending records of width words at part into data's ascending records below
 * *a, from the back, writing below *out: data's records above part's largest move there, then
 * part's, and so on. When data's run out first, part's first records go to the front. With
 * part out of order, every record still lands once, in some order. Polls hook.
 */
static void
merge_back(uint64_t *data, uint64_t **out, const uint64_t **a, const unsigned char *part, size_t m,
           int width, size_t *since_poll, MetricsPassHook hook)
{
	size_t record = (size_t)width * sizeof(uint64_t);
	const unsigned char *b = part + m * record;

	while (b > part) {
		size_t left_a = (size_t)(*a - data) / width, left_b = (size_t)(b - part) / record;
		size_t steps = left_a < left_b ? left_a : left_b;

		if (steps == 0) {
			*out -= left_b * width;
			memcpy(*out, part, left_b * record);
			break;
		}
		if (steps > POLL_RECORDS)
			steps = POLL_RECORDS;
		if (width == 1)
			merge_back_one(out, a, &b, steps);
		else
			merge_back_two(out, a, &b, steps);
		*since_poll += steps;
		if (hook && *since_poll >= POLL_RECORDS) {
			hook();
			*since_poll = 0;
		}
	}
}

int
metrics_merge_into(uint64_t *data, size_t n, const void *part, size_t m, int width,
                   MetricsPassHook hook)
{
	uint64_t *out = data + (n + m) * width;
	const uint64_t *a = data + n * width;
	size_t since_poll = 0;

	if (!part_is_sorted(part, m, width)) {
		memcpy(data + n * width, part, m * width * sizeof(uint64_t));
		return 0;
	}
	merge_back(data, &out, &a, part, m, width, &since_poll, hook);
	return 1;
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

/* The records a packed merge unpacks at a time, into a buffer that stays in the L1 cache. */
#define UNPACK_CHUNK 256

/*
 * Unpacks the next k records of the packed stream [*at, end) into out, in ascending order (the
 * stream holds them descending, so the first goes last), from *user and *score, the record
 * read before. *ordered becomes 0 when a user's scores come out of order. Returns NULL, or a
 * sentence saying why the bytes are not k such records.
 */
static const char *
unpack_chunk(const unsigned char **at, const unsigned char *end, uint64_t *user, uint64_t *score,
             uint64_t *out, size_t k, int *ordered)
{
	const unsigned char *p = *at;
	uint64_t u = *user, s = *score;
	int ok = *ordered;

	for (size_t r = k; r-- > 0;) {
		uint64_t diff, next;
		const char *why = NULL;

		/* the user repeats or is near: one byte, the common case, needs no loop */
		if (end - p > (ptrdiff_t)sizeof(uint64_t) && *p < 0x80)
			diff = *p++;
		else
			why = read_varint(&p, end, &diff);
		if (why == NULL && end - p < (ptrdiff_t)sizeof(uint64_t))
			why = "A packed stream in the state ends inside a record.";
		if (why == NULL && diff > u)
			why = "A packed stream in the state names a user below the least user key.";
		if (why != NULL)
			return why;
		next = load_word(p);
		p += sizeof(uint64_t);
		ok &= diff > 0 || next <= s;
		u -= diff;
		s = next;
		out[2 * r] = u;
		out[2 * r + 1] = s;
	}
	*at = p;
	*user = u;
	*score = s;
	*ordered = ok;
	return NULL;
}

/*
 * Unpacks the stream a chunk at a time and merges each chunk in from the back as merge_into
 * does; the stream's own order is checked as it is unpacked.
 */
int
metrics_merge_packed_into(uint64_t *data, size_t n, const unsigned char *stream, size_t len,
                          size_t m, MetricsPassHook hook, const char **why)
{
	const unsigned char *p = stream, *end = stream + len;
	uint64_t *out = data + 2 * (n + m);
	const uint64_t *a = data + 2 * n;
	uint64_t user = UINT64_MAX, score = UINT64_MAX; /* the record unpacked before */
	uint64_t chunk[2 * UNPACK_CHUNK];
	int ordered = 1;
	size_t since_poll = 0;

	for (size_t left = m; left > 0;) {
		size_t k = left < UNPACK_CHUNK ? left : UNPACK_CHUNK;

		*why = unpack_chunk(&p, end, &user, &score, chunk, k, &ordered);
		if (*why != NULL)
			return -1;
		merge_back(data, &out, &a, (const unsigned char *)chunk, k, 2, &since_poll, hook);
		left -= k;
	}
	if (p != end) {
		*why = "A packed stream in the state has bytes after its last record.";
		return -1;
	}
	return ordered;
}

/*
 * A walk of ascending positives against ascending negatives, as a merge that takes the negative
 * first when its key is below the positive's (or, with ties_first, equal to it too): when it
 * takes a positive, the j negatives taken before are those below it (or at most it), and sum
 * gains j. i and j count the positives and negatives taken. The caller moves sum out every
 * POLL_RECORDS steps, so it stays below 2^20 * j: no wrap below 2^44 negatives.
 */
typedef struct Walk {
	size_t i;
	size_t j;
	uint64_t sum;
} Walk;

/*
 * One step of walk w over keys every width-th word from pos and neg, both with records left.
 * The keys come in random order, so it chooses with a mask, not a branch the processor would
 * mispredict.
 */
static inline __attribute__((always_inline)) void
walk_step(Walk *w, const uint64_t *pos, const uint64_t *neg, const int width, const int ties_first)
{
	uint64_t p = pos[w->i * width], n = neg[w->j * width];
	uint64_t take_neg = ties_first ? n <= p : n < p;

	w->sum += w->j & (take_neg - 1);
	w->j += take_neg;
	w->i += 1 - take_neg;
}

/* Walks w to its end: the positives left once the negatives run out count them all. */
static inline __attribute__((always_inline)) MetricsCount
walk_finish(Walk *w, const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg,
            const int width, const int ties_first, MetricsPassHook hook)
{
	MetricsCount total = 0;
	size_t since_poll = 0;

	while (w->i < npos && w->j < nneg) {
		walk_step(w, pos, neg, width, ties_first);
		if (++since_poll == POLL_RECORDS) {
			total += w->sum;
			w->sum = 0;
			since_poll = 0;
			if (hook)
				hook();
		}
	}
	return total + w->sum + (MetricsCount)(npos - w->i) * nneg;
}

/*
 * Twice the Mann-Whitney U from the walks at_most and below, as far as they went: a positive
 * above a negative counts 2 and a tie 1, so it is the sum over positives p of #{n <= p} +
 * #{n < p}. The two walks do not wait on each other, so they go in step and the processor
 * overlaps them.
 */
static inline __attribute__((always_inline)) MetricsCount
walks_twice_u(Walk *at_most, Walk *below, const uint64_t *pos, size_t npos, const uint64_t *neg,
              size_t nneg, const int width, MetricsPassHook hook)
{
	MetricsCount total = 0;
	size_t since_poll = 0;

	while (at_most->i < npos && at_most->j < nneg && below->i < npos && below->j < nneg) {
		walk_step(at_most, pos, neg, width, 1);
		walk_step(below, pos, neg, width, 0);
		if (++since_poll == POLL_RECORDS) {
			total += (MetricsCount)at_most->sum + below->sum;
			at_most->sum = below->sum = 0;
			since_poll = 0;
			if (hook)
				hook();
		}
	}
	/* one walk ran out of a class: the other goes on alone, past the keys they differ on */
	return total + walk_finish(at_most, pos, npos, neg, nneg, width, 1, hook) +
	       walk_finish(below, pos, npos, neg, nneg, width, 0, hook);
}

/* The first of the n ascending keys every width-th word from keys that is not below key. */
static size_t
lower_bound(const uint64_t *keys, size_t n, uint64_t key, int width)
{
	size_t lo = 0;

	while (n > 0) {
		size_t half = n / 2;

		if (keys[(lo + half) * width] < key) {
			lo += half + 1;
			n -= half + 1;
		} else
			n = half;
	}
	return lo;
}

/* Below this many positives a count is not split: the split's searches would cost more. */
#define WALK_SPLIT_MIN 1024

/*
 * Twice the Mann-Whitney U of the ascending positives against the ascending negatives, keys
 * every width-th word from pos and neg. A step of a walk waits on the one before, so a large
 * count is split at the first key k of the upper half of the positives, and the two halves
 * are walked together, four walks in step: the positives from k up are above every negative
 * below k (2 each), and those below k are below every negative from k up (0 each). Always
 * inlined, so each width gets its own loops.
 */
static inline __attribute__((always_inline)) MetricsCount
twice_u(const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg, const int width,
        MetricsPassHook hook)
{
	Walk lo_at_most = {0, 0, 0}, lo_below = {0, 0, 0}, hi_at_most = {0, 0, 0}, hi_below = {0, 0, 0};
	size_t lo_pos = 0, lo_neg = 0, hi_pos, hi_neg, since_poll = 0;
	const uint64_t *hpos, *hneg;
	MetricsCount total = 0;

	if (npos >= WALK_SPLIT_MIN) {
		uint64_t k = pos[npos / 2 * width];

		lo_pos = lower_bound(pos, npos, k, width);
		lo_neg = lower_bound(neg, nneg, k, width);
	}
	hpos = pos + lo_pos * width;
	hneg = neg + lo_neg * width;
	hi_pos = npos - lo_pos;
	hi_neg = nneg - lo_neg;
	while (lo_at_most.i < lo_pos && lo_at_most.j < lo_neg && lo_below.i < lo_pos &&
	       lo_below.j < lo_neg && hi_at_most.i < hi_pos && hi_at_most.j < hi_neg &&
	       hi_below.i < hi_pos && hi_below.j < hi_neg) {
		walk_step(&lo_at_most, pos, neg, width, 1);
		walk_step(&lo_below, pos, neg, width, 0);
		walk_step(&hi_at_most, hpos, hneg, width, 1);
		walk_step(&hi_below, hpos, hneg, width, 0);
		if (++since_poll == POLL_RECORDS) {
			total += (MetricsCount)lo_at_most.sum + lo_below.sum;
			total += (MetricsCount)hi_at_most.sum + hi_below.sum;
			lo_at_most.sum = lo_below.sum = hi_at_most.sum = hi_below.sum = 0;
			since_poll = 0;
			if (hook)
				hook();
		}
	}
	return total + walks_twice_u(&lo_at_most, &lo_below, pos, lo_pos, neg, lo_neg, width, hook) +
	       walks_twice_u(&hi_at_most, &hi_below, hpos, hi_pos, hneg, hi_neg, width, hook) +
	       2 * (MetricsCount)hi_pos * lo_neg;
}

/* AUC from twice its U over npos * nneg pairs, both above 0. */
static double
auc_of(MetricsCount twice, size_t npos, size_t nneg)
{
	long double pairs2 = 2.0L * (long double)npos * (long double)nneg;

	return (double)((long double)twice / pairs2);
}

double
metrics_auc_runs(const MetricsRun *runs, int nruns, MetricsPassHook hook)
{
	MetricsCount twice = 0;
	size_t npos = 0, nneg = 0;

	for (int r = 0; r < nruns; r++) {
		npos += runs[r].npos;
		nneg += runs[r].nneg;
	}
	if (npos == 0 || nneg == 0)
		return -1.0;
	/* U is a count of pairs, so it is the sum of the counts of every pair of runs, exactly */
	for (int a = 0; a < nruns; a++)
		for (int b = 0; b < nruns; b++)
			if (runs[a].npos > 0 && runs[b].nneg > 0)
				twice += twice_u(runs[a].pos, runs[a].npos, runs[b].neg, runs[b].nneg, 1, hook);
	return auc_of(twice, npos, nneg);
}

double
metrics_auc_sorted(const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg,
                   MetricsPassHook hook)
{
	MetricsRun run = {pos, npos, neg, nneg};

	return metrics_auc_runs(&run, 1, hook);
}

/* Below this many rows of a class, a user's rows spread over runs are merged before counting. */
#define USER_MERGE_MAX 256

/*
 * Merges the na keys at a (every a_stride-th word) and the nb keys at b (every b_stride-th)
 * ascending into out, choosing each key without a branch. Returns na + nb.
 */
static size_t
merge_keys(uint64_t *out, const uint64_t *a, size_t na, int a_stride, const uint64_t *b, size_t nb,
           int b_stride)
{
	size_t i = 0, j = 0, n = 0;

	while (i < na && j < nb) {
		uint64_t x = a[i * a_stride], y = b[j * b_stride];
		size_t take_b = y < x;

		out[n++] = take_b ? y : x;
		j += take_b;
		i += 1 - take_b;
	}
	for (; i < na; i++)
		out[n++] = a[i * a_stride];
	for (; j < nb; j++)
		out[n++] = b[j * b_stride];
	return n;
}

/*
 * The score keys of records [from[r], to[r]) of the positives (or the negatives) of the nruns
 * runs (a record's second word), merged ascending into out: run by run, alternating between out
 * and a buffer so that the last merge lands in out.
 */
static void
merge_user_scores(uint64_t *out, const MetricsRun *runs, bool positives, const size_t *from,
                  const size_t *to, int nruns)
{
	uint64_t keys[USER_MERGE_MAX];
	const uint64_t *merged = NULL;
	size_t n = 0;
	int merges = -1, stride = 2;

	for (int r = 0; r < nruns; r++)
		merges += to[r] > from[r];
	for (int r = 0; r < nruns; r++) {
		const uint64_t *run = (positives ? runs[r].pos : runs[r].neg) + 2 * from[r] + 1;
		size_t m = to[r] - from[r];
		uint64_t *dst;

		if (m == 0)
			continue;
		if (merged == NULL) {
			merged = run; /* read in place until a second run comes */
			n = m;
			continue;
		}
		dst = --merges % 2 == 0 ? out : keys;
		n = merge_keys(dst, merged, n, stride, run, m, 2);
		merged = dst;
		stride = 1;
	}
	if (stride == 2)
		for (size_t i = 0; i < n; i++)
			out[i] = merged[2 * i];
}

/*
 * Twice the U of one user whose positives are records [pos_from[r], pos_to[r]) of run r's
 * positives, and negatives likewise. Where only one run holds each class the count walks the
 * runs in place; a small user spread over runs is merged on the stack and counted once (many
 * tiny counts would cost more than the merge); a large one sums the counts of every pair of
 * segments, which is the same number.
 */
static MetricsCount
user_twice_u(const MetricsRun *runs, int nruns, const size_t *pos_from, const size_t *pos_to,
             size_t np, const size_t *neg_from, const size_t *neg_to, size_t nn,
             MetricsPassHook hook)
{
	int pos_runs = 0, neg_runs = 0, last_pos = 0, last_neg = 0;
	MetricsCount twice = 0;

	for (int r = 0; r < nruns; r++) {
		if (pos_to[r] > pos_from[r]) {
			pos_runs++;
			last_pos = r;
		}
		if (neg_to[r] > neg_from[r]) {
			neg_runs++;
			last_neg = r;
		}
	}
	/* the score key is a record's second word */
	if (pos_runs == 1 && neg_runs == 1)
		return twice_u(runs[last_pos].pos + 2 * pos_from[last_pos] + 1, np,
		               runs[last_neg].neg + 2 * neg_from[last_neg] + 1, nn, 2, hook);
	if (np <= USER_MERGE_MAX && nn <= USER_MERGE_MAX) {
		uint64_t pos[USER_MERGE_MAX], neg[USER_MERGE_MAX];

		merge_user_scores(pos, runs, true, pos_from, pos_to, nruns);
		merge_user_scores(neg, runs, false, neg_from, neg_to, nruns);
		return twice_u(pos, np, neg, nn, 1, hook);
	}
	for (int a = 0; a < nruns; a++)
		for (int b = 0; b < nruns; b++)
			if (pos_to[a] > pos_from[a] && neg_to[b] > neg_from[b])
				twice +=
				    twice_u(runs[a].pos + 2 * pos_from[a] + 1, pos_to[a] - pos_from[a],
				            runs[b].neg + 2 * neg_from[b] + 1, neg_to[b] - neg_from[b], 2, hook);
	return twice;
}

/* The end of the records of user at or after record from of the n (user, score) records. */
static size_t
user_end(const uint64_t *records, size_t from, size_t n, uint64_t user)
{
	while (from < n && records[2 * from] == user)
		from++;
	return from;
}

double
metrics_gauc_runs(const MetricsRun *runs, int nruns, MetricsGaucWeight weight, MetricsPassHook hook)
{
	long double weighted = 0.0L, total = 0.0L;
	size_t pos_at[METRICS_MAX_FINAL_RUNS] = {0}, neg_at[METRICS_MAX_FINAL_RUNS] = {0};
	size_t pos_end[METRICS_MAX_FINAL_RUNS], neg_end[METRICS_MAX_FINAL_RUNS];
	size_t done = 0, polled = 0;

	for (;;) {
		uint64_t user = 0;
		bool any = false;
		size_t np = 0, nn = 0;

		/* the next user is the smallest at the head of any run */
		for (int r = 0; r < nruns; r++) {
			if (pos_at[r] < runs[r].npos && (!any || runs[r].pos[2 * pos_at[r]] < user)) {
				user = runs[r].pos[2 * pos_at[r]];
				any = true;
			}
			if (neg_at[r] < runs[r].nneg && (!any || runs[r].neg[2 * neg_at[r]] < user)) {
				user = runs[r].neg[2 * neg_at[r]];
				any = true;
			}
		}
		if (!any)
			break;
		for (int r = 0; r < nruns; r++) {
			pos_end[r] = user_end(runs[r].pos, pos_at[r], runs[r].npos, user);
			neg_end[r] = user_end(runs[r].neg, neg_at[r], runs[r].nneg, user);
			np += pos_end[r] - pos_at[r];
			nn += neg_end[r] - neg_at[r];
		}
		if (np > 0 && nn > 0) {
			long double w = weight == METRICS_WEIGHT_CLICKS ? np : np + nn;
			long double auc = auc_of(
			    user_twice_u(runs, nruns, pos_at, pos_end, np, neg_at, neg_end, nn, hook), np, nn);

			weighted += w * auc;
			total += w;
		}
		for (int r = 0; r < nruns; r++) {
			pos_at[r] = pos_end[r];
			neg_at[r] = neg_end[r];
		}
		done += np + nn;
		if (hook && done - polled >= POLL_RECORDS) {
			hook();
			polled = done;
		}
	}
	if (total == 0.0L)
		return -1.0;
	return (double)(weighted / total);
}

double
metrics_gauc_sorted(const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg,
                    MetricsGaucWeight weight, MetricsPassHook hook)
{
	MetricsRun run = {pos, npos, neg, nneg};

	return metrics_gauc_runs(&run, 1, weight, hook);
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
	shift = kind == METRICS_KIND_GAUC ? 4 : 3;
	if (flags & METRICS_FLAG_SHARED) {
		if (flags != (METRICS_FLAG_SORTED | METRICS_FLAG_SHARED)) {
			*why = "The state header has flags no version of din sets.";
			return 0;
		}
		if (len != METRICS_FLAT_HEADER + METRICS_SHARED_BODY || get_u64(p, FLAT_CAPACITY) != 0) {
			*why = "The value is not a whole reference to a shared part.";
			return 0;
		}
		out->kind = kind;
		out->flags = flags;
		out->record = (size_t)1 << shift;
		out->npos = (size_t)get_u64(p, FLAT_NPOS);
		out->nneg = (size_t)get_u64(p, FLAT_NNEG);
		return 1;
	}
	if ((flags & ~(uint32_t)(METRICS_FLAG_SORTED | METRICS_FLAG_PACKED)) != 0 ||
	    ((flags & METRICS_FLAG_PACKED) &&
	     (kind != METRICS_KIND_GAUC || !(flags & METRICS_FLAG_SORTED)))) {
		*why = "The state header has flags no version of din sets.";
		return 0;
	}
	npos = get_u64(p, FLAT_NPOS);
	nneg = get_u64(p, FLAT_NNEG);
	capacity = get_u64(p, FLAT_CAPACITY);
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

/* field offsets in a reference to a shared part, from the first byte of the state */
#define SHARED_SEGMENT (METRICS_FLAT_HEADER + 0)
#define SHARED_LEADER (METRICS_FLAT_HEADER + 4)
#define SHARED_AREA (METRICS_FLAT_HEADER + 8)
#define SHARED_CHUNK (METRICS_FLAT_HEADER + 16)
#define SHARED_MAC (METRICS_FLAT_HEADER + 24)

void
metrics_shared_encode(void *fields, const MetricsSharedRef *ref)
{
	unsigned char *p = fields;

	metrics_flat_encode(p, ref->kind, METRICS_FLAG_SORTED | METRICS_FLAG_SHARED, ref->npos,
	                    ref->nneg, 0);
	memcpy(p + SHARED_SEGMENT, &ref->segment, sizeof ref->segment);
	memcpy(p + SHARED_LEADER, &ref->leader, sizeof ref->leader);
	memcpy(p + SHARED_AREA, &ref->area, sizeof ref->area);
	memcpy(p + SHARED_CHUNK, &ref->chunk, sizeof ref->chunk);
	memcpy(p + SHARED_MAC, ref->mac, sizeof ref->mac);
}

void
metrics_shared_decode(const void *fields, MetricsSharedRef *ref)
{
	const unsigned char *p = fields;

	ref->kind = get_u32(p, FLAT_KIND);
	ref->npos = get_u64(p, FLAT_NPOS);
	ref->nneg = get_u64(p, FLAT_NNEG);
	ref->segment = get_u32(p, SHARED_SEGMENT);
	ref->leader = get_u32(p, SHARED_LEADER);
	ref->area = get_u64(p, SHARED_AREA);
	ref->chunk = get_u64(p, SHARED_CHUNK);
	memcpy(ref->mac, p + SHARED_MAC, sizeof ref->mac);
}
