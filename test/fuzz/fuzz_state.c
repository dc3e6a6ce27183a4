/*
 * fuzz_state.c - libFuzzer target: arbitrary bytes as a flat auc/gauc aggregate state, the
 * bytea any user can hand to din_auc_trans, din_gauc_trans, din_metrics_combine and the final
 * functions.
 *
 * The input goes into a buffer of exactly its size. When metrics_flat_decode accepts it, every
 * record the header claims is read, and the free slots an in-place append would fill are
 * written, so ASan sees any access past the bytes that the decoder let through; the offsets
 * must tile the buffer and the header must survive re-encoding. A rejection must say why.
 *
 * The sorted flag is only a claim. As the combine function does with a part that makes it, the
 * negatives are merged, straight from the input's bytes, into the positives made a sorted run:
 * metrics_merge_into must read no byte past them, report a false claim, and lose no record.
 * And as runs are merged before the final step, the positives and the negatives are each
 * checked with metrics_is_sorted, sorted when the claim is false, and merged; the merge must
 * hold them in order whatever the flag said.
 *
 * A packed gauc state's streams are unpacked, and merged into what they unpacked to, straight
 * from the input's bytes: a bad stream must be reported with a reason, never read past. A
 * reference to a shared part holds no records and must re-encode to the same bytes.
 */
#include "metrics_core.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t
sum_words(const unsigned char *at, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t word;

		memcpy(&word, at + i * sizeof word, sizeof word);
		sum += word;
	}
	return sum;
}

/*
 * The negatives, read in place, merged into the sorted positives; then the positives and the
 * negatives, each made ascending as the final step does, merged as runs.
 */
static void
check_merge(const unsigned char *state, const MetricsFlatHeader *h)
{
	int width = (int)(h->record / sizeof(uint64_t));
	size_t n = h->npos + h->nneg;
	uint64_t *words = malloc(n * h->record + 1), *scratch = malloc(n * h->record + 1), *out;
	uint64_t *negatives = malloc(h->nneg * h->record + 1);
	size_t ends[1] = {h->npos};
	int sorted;

	if (words == NULL || scratch == NULL || negatives == NULL)
		abort();
	memcpy(words, state + h->pos_offset, h->npos * h->record);
	memcpy(negatives, state + h->neg_offset, h->nneg * h->record);
	metrics_sort(words, NULL, NULL, h->npos, width, NULL);
	sorted = metrics_merge_into(words, h->npos, state + h->neg_offset, h->nneg, width, NULL);
	if (sorted != metrics_is_sorted(negatives, h->nneg, width))
		abort();
	metrics_sort(words, NULL, NULL, n, width, NULL);
	memcpy(scratch, state + h->pos_offset, h->npos * h->record);
	memcpy(scratch + h->npos * width, negatives, h->nneg * h->record);
	metrics_sort(scratch, NULL, NULL, n, width, NULL);
	if (memcmp(words, scratch, n * h->record) != 0)
		abort();

	memcpy(words, state + h->pos_offset, h->npos * h->record);
	memcpy(words + h->npos * width, negatives, h->nneg * h->record);
	if (!((h->flags & METRICS_FLAG_SORTED) && metrics_is_sorted(words, h->npos, width)))
		metrics_sort(words, NULL, NULL, h->npos, width, NULL);
	if (!((h->flags & METRICS_FLAG_SORTED) &&
	      metrics_is_sorted(words + h->npos * width, h->nneg, width)))
		metrics_sort(words + h->npos * width, NULL, NULL, h->nneg, width, NULL);
	out = metrics_merge_runs(words, scratch, ends, 1, n, width, NULL);
	if (!metrics_is_sorted(out, n, width))
		abort();
	free(words);
	free(scratch);
	free(negatives);
}

/*
 * One packed stream read in place: unpacked alone, then merged into the records it gave; what
 * comes out must be sorted when the merge says so, and the two runs must agree on the stream.
 */
static void
check_stream(const unsigned char *stream, size_t len, size_t n)
{
	uint64_t *alone = malloc(n * 16 + 1), *twice = malloc(n * 32 + 1);
	const char *why = NULL, *why_again = NULL;
	int unpacked, merged;

	if (alone == NULL || twice == NULL)
		abort();
	unpacked = metrics_merge_packed_into(alone, 0, stream, len, n, NULL, &why);
	if (unpacked < 0 && (why == NULL || why[0] == '\0'))
		abort();
	if (unpacked == 1 && !metrics_is_sorted(alone, n, 2))
		abort();
	if (unpacked == 1 && n < METRICS_RADIX_MIN) {
		memcpy(twice, alone, n * 16);
		merged = metrics_merge_packed_into(twice, n, stream, len, n, NULL, &why_again);
		if (merged != 1 || !metrics_is_sorted(twice, 2 * n, 2))
			abort();
	}
	free(alone);
	free(twice);
}

/* A packed state: its streams tile the value, hold at least 9 bytes a record, and read safely. */
static void
check_packed(unsigned char *state, size_t size, const MetricsFlatHeader *h)
{
	MetricsFlatHeader again;
	const char *why = NULL;

	if (h->kind != METRICS_KIND_GAUC || h->flags != (METRICS_FLAG_SORTED | METRICS_FLAG_PACKED) ||
	    h->record != 16 || h->pos_offset != METRICS_FLAT_HEADER ||
	    h->neg_offset != h->pos_offset + h->pos_bytes || h->neg_offset + h->neg_bytes != size ||
	    h->npos * METRICS_PACKED_MIN > h->pos_bytes || h->nneg * METRICS_PACKED_MIN > h->neg_bytes)
		abort();
	check_stream(state + h->pos_offset, h->pos_bytes, h->npos);
	check_stream(state + h->neg_offset, h->neg_bytes, h->nneg);
	metrics_flat_encode(state, h->kind, h->flags, h->npos, h->nneg, h->capacity);
	if (!metrics_flat_decode(state, size, &again, &why) || memcmp(&again, h, sizeof again) != 0)
		abort();
}

/*
 * A reference to a shared part: exactly a header and its body, no records to read; it must
 * survive decoding and encoding again byte for byte.
 */
static void
check_shared(const unsigned char *state, size_t size, const MetricsFlatHeader *h)
{
	unsigned char again[METRICS_FLAT_HEADER + METRICS_SHARED_BODY];
	MetricsSharedRef ref;

	if (size != sizeof again || h->flags != (METRICS_FLAG_SORTED | METRICS_FLAG_SHARED) ||
	    h->pos_bytes != 0 || h->neg_bytes != 0)
		abort();
	metrics_shared_decode(state, &ref);
	if (ref.kind != h->kind || ref.npos != h->npos || ref.nneg != h->nneg)
		abort();
	metrics_shared_encode(again, &ref);
	if (memcmp(again, state, size) != 0)
		abort();
}

static void
check_accepted(unsigned char *state, size_t size, const MetricsFlatHeader *h)
{
	size_t words = h->record / sizeof(uint64_t);
	MetricsFlatHeader again;
	const char *why = NULL;
	volatile uint64_t sink;

	if (size == 0) {
		if (h->kind != 0 || h->npos != 0 || h->nneg != 0 || h->capacity != 0)
			abort();
		return;
	}
	if (h->flags & METRICS_FLAG_PACKED) {
		check_packed(state, size, h);
		return;
	}
	if (h->flags & METRICS_FLAG_SHARED) {
		check_shared(state, size, h);
		return;
	}
	if ((h->kind != METRICS_KIND_AUC && h->kind != METRICS_KIND_GAUC) ||
	    (h->flags & ~(uint32_t)METRICS_FLAG_SORTED) != 0 ||
	    h->record != (h->kind == METRICS_KIND_GAUC ? 16 : 8) || h->npos > h->capacity ||
	    h->nneg > h->capacity - h->npos || h->pos_offset != METRICS_FLAT_HEADER ||
	    h->pos_offset + h->capacity * h->record != size ||
	    h->neg_offset + h->nneg * h->record != size)
		abort();
	sink = sum_words(state + h->pos_offset, h->npos * words) +
	       sum_words(state + h->neg_offset, h->nneg * words);
	(void)sink;
	/* below the radix threshold metrics_sort needs no workspace */
	if (h->npos + h->nneg < METRICS_RADIX_MIN)
		check_merge(state, h);
	if (h->npos + h->nneg < h->capacity) {
		memset(state + h->pos_offset + h->npos * h->record, 0xa5, h->record);
		memset(state + h->neg_offset - h->record, 0x5a, h->record);
	}
	metrics_flat_encode(state, h->kind, h->flags, h->npos, h->nneg, h->capacity);
	if (!metrics_flat_decode(state, size, &again, &why) || memcmp(&again, h, sizeof again) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *state = malloc(size ? size : 1);
	MetricsFlatHeader h;
	const char *why = NULL;

	if (state == NULL)
		abort();
	memcpy(state, data, size);
	if (metrics_flat_decode(state, size, &h, &why))
		check_accepted(state, size, &h);
	else if (why == NULL || why[0] == '\0')
		abort();
	free(state);
	return 0;
}
