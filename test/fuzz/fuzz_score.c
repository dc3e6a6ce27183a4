/*
 * fuzz_score.c - libFuzzer target: din_model_score on fixture models with fuzzer-chosen
 * requests: history, candidate, context and dense lengths (right or wrong), known and unknown
 * ids (negative, huge), raw doubles for dense (NaN, Inf), times out of order.
 *
 * Input: [fixture][flags][history_len:2][n_candidates:1][context delta:1][dense delta:1], then
 * a stream the ids, times and doubles are drawn from (zeros once it runs out).
 */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Stream {
	const uint8_t *p;
	size_t n;
} Stream;

static uint64_t
take(Stream *s, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++) {
		v = (v << 8) | (s->n > 0 ? *s->p : 0);
		if (s->n > 0) {
			s->p++;
			s->n--;
		}
	}
	return v;
}

/* Mostly ids the model knows (items, or rows of its first field), sometimes any int64. */
static int64_t
take_id(Stream *s, const DinModel *m)
{
	uint8_t sel = (uint8_t)take(s, 1);

	if (sel < 192) {
		if (m->items.n > 0)
			return m->items.keys[sel % m->items.n];
		return sel % (m->fields[0].rows + 2);
	}
	if (sel < 224)
		return (int64_t)sel - 240; /* small negatives */
	return (int64_t)take(s, 8);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const FuzzFixture *fixtures;
	int n_fixtures;
	Stream s = {data, size};
	const DinModel *m;
	DinRequest req = {0};
	int64_t *history, *candidates, *context, *times;
	double *dense;
	uint8_t flags;

	fixtures = fuzz_fixtures(&n_fixtures);
	if (size < 7)
		return 0;
	m = fixtures[take(&s, 1) % n_fixtures].model;
	flags = (uint8_t)take(&s, 1);
	req.history_len = (int)(take(&s, 2) % 4096);
	req.n_candidates = (int)take(&s, 1) % 80;
	req.context_len = m->n_context + (int)(int8_t)take(&s, 1) % 3 * ((flags & 4) != 0);
	req.dense_len = m->n_dense + (int)(int8_t)take(&s, 1) % 3 * ((flags & 8) != 0);
	if (req.context_len < 0)
		req.context_len = 0;
	if (req.dense_len < 0)
		req.dense_len = 0;
	/* exact sizes, so ASan sees a read past any of them */
	history = malloc(sizeof(int64_t) * (size_t)(req.history_len + 1));
	times = malloc(sizeof(int64_t) * (size_t)(req.history_len + 1));
	candidates = malloc(sizeof(int64_t) * (size_t)(req.n_candidates + 1));
	context = malloc(sizeof(int64_t) * (size_t)(req.context_len + 1));
	dense = malloc(sizeof(double) * (size_t)(req.dense_len + 1));
	for (int i = 0; i < req.history_len; i++)
		history[i] = take_id(&s, m);
	for (int i = 0; i < req.history_len; i++)
		times[i] = (int64_t)take(&s, 4) * ((flags & 16) ? -1 : 1000);
	for (int i = 0; i < req.n_candidates; i++)
		candidates[i] = take_id(&s, m);
	for (int i = 0; i < req.context_len; i++)
		context[i] = (flags & 32) ? take_id(&s, m) : (int64_t)(take(&s, 1) % 4);
	for (int i = 0; i < req.dense_len; i++) {
		uint64_t bits = take(&s, 8);

		if (flags & 64)
			memcpy(&dense[i], &bits, sizeof(double)); /* NaN, Inf, denormals */
		else
			dense[i] = (double)(int8_t)bits / 16.0;
	}
	req.history = req.history_len ? history : NULL;
	req.history_time = (flags & 1) ? times : NULL;
	req.at = (int64_t)take(&s, 4) * 1000;
	req.candidates = req.n_candidates ? candidates : NULL;
	req.context = req.context_len ? context : NULL;
	req.dense = req.dense_len ? dense : NULL;
	fuzz_score(m, &req, (flags & 2) != 0);
	free(dense);
	free(context);
	free(candidates);
	free(times);
	free(history);
	return 0;
}
