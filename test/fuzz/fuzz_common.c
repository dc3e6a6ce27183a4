/*
 * fuzz_common.c - see fuzz_common.h.
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *
read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		return NULL;
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static const char *const fixture_names[] = {
    "tiny_base.safetensors",
    "tiny_din.safetensors",
    "base_mean.safetensors",
    "din_repo.safetensors",
    "din_fuxi_vocab.safetensors",
    "din_misc_acts.safetensors",
    "din_deepctr_torch.safetensors",
    "dien_agru.safetensors",
    "dien_bilinear.safetensors",
    "dien_gru_pooling.safetensors",
    "bst_deepctr.safetensors",
    "bst_timegap_prenorm.safetensors",
    "dsin_deepctr.safetensors",
    "dsin_bias_ln.safetensors",
    /* attention units, pool all_slots; empty padding (docs/FORMAT.md "attention") */
    "peer/torch-rechub/din.safetensors",
    "peer/deepctr-torch/din_relu_softmax_prelu_bn.safetensors",
};
#define N_FIXTURE_NAMES ((int)(sizeof(fixture_names) / sizeof(fixture_names[0])))

const FuzzFixture *
fuzz_fixtures(int *n)
{
	static FuzzFixture fixtures[N_FIXTURE_NAMES];
	static int loaded = -1;

	if (loaded < 0) {
		loaded = 0;
		for (int i = 0; i < N_FIXTURE_NAMES; i++)
			if (fuzz_fixture_load(&fixtures[loaded], fixture_names[i]))
				loaded++;
		if (loaded == 0)
			abort();
	}
	*n = loaded;
	return fixtures;
}

void *
fuzz_realign(DinFile *f)
{
	size_t total = 0, at = 0;
	uint8_t *block;

	for (int i = 0; i < f->n_tensors; i++)
		if ((uintptr_t)f->tensors[i].data % din_dtype_size(f->tensors[i].dtype) != 0)
			total += (f->tensors[i].nbytes + 7) / 8 * 8;
	if (total == 0)
		return NULL;
	block = malloc(total);
	if (block == NULL)
		abort();
	for (int i = 0; i < f->n_tensors; i++)
		if ((uintptr_t)f->tensors[i].data % din_dtype_size(f->tensors[i].dtype) != 0) {
			memcpy(block + at, f->tensors[i].data, f->tensors[i].nbytes);
			f->tensors[i].data = block + at;
			at += (f->tensors[i].nbytes + 7) / 8 * 8;
		}
	return block;
}

int
fuzz_fixture_load(FuzzFixture *fx, const char *name)
{
	const char *dir = getenv("DIN_FUZZ_FIXTURES");
	char path[1024];
	DinError err = {0};

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "test/fixtures", name);
	memset(fx, 0, sizeof(*fx));
	fx->buf = read_all(path, &fx->len);
	if (fx->buf == NULL) {
		fprintf(stderr, "fuzz: cannot read %s (set DIN_FUZZ_FIXTURES)\n", path);
		abort();
	}
	if (din_file_read(fx->buf, fx->len, &fx->file, &err) != DIN_OK ||
	    ((fx->aligned = fuzz_realign(&fx->file)), 0) ||
	    din_model_build(fx->file.config, fx->file.config_len, fx->file.tensors, fx->file.n_tensors,
	                    &fx->model, &err) != DIN_OK) {
		fprintf(stderr, "fuzz: skipping fixture %s, it does not build: %s\n", path, err.msg);
		din_file_free(&fx->file);
		free(fx->aligned);
		free(fx->buf);
		memset(fx, 0, sizeof(*fx));
		return 0;
	}
	return 1;
}

DinStatus
fuzz_score(const DinModel *m, const DinRequest *req, int want_weights)
{
	int n = req->n_candidates > 0 ? req->n_candidates : 1;
	int kept = req->history_len < m->max_len ? req->history_len : m->max_len;
	size_t nf = din_model_scratch_floats(m, n);
	float *scratch = malloc(sizeof(float) * (nf ? nf : 1));
	double *scores = malloc(sizeof(double) * (size_t)n);
	float *weights = NULL;
	DinError err = {0};
	DinStatus s;

	if (want_weights && kept > 0)
		weights = malloc(sizeof(float) * (size_t)n * (size_t)kept);
	if (scratch == NULL || scores == NULL || (want_weights && kept > 0 && weights == NULL))
		abort();
	s = din_model_score(m, req, scratch, scores, weights, &err);
	if (s == DIN_OK)
		for (int c = 0; c < req->n_candidates; c++)
			/* a probability, never NaN: anything else is a wrong answer, not a crash */
			if (!(scores[c] >= 0.0 && scores[c] <= 1.0)) {
				fprintf(stderr, "fuzz: score %d is %g\n", c, scores[c]);
				abort();
			}
	free(weights);
	free(scores);
	free(scratch);
	return s;
}

DinStatus
fuzz_score_plausible(const DinModel *m)
{
	int64_t history[8], candidates[3], context[64];
	int64_t times[8];
	double dense[64];
	DinRequest req = {0};
	int64_t n_items = m->items.n;

	if (m->n_context > 64 || m->n_dense > 64)
		return DIN_EINVAL;
	for (int i = 0; i < 8; i++) {
		history[i] = n_items > 0 ? m->items.keys[i % n_items] : i;
		times[i] = INT64_C(1000000) * i;
	}
	for (int i = 0; i < 3; i++)
		candidates[i] = n_items > 0 ? m->items.keys[(i * 7) % n_items] : i + 1;
	for (int i = 0; i < m->n_context; i++)
		context[i] = 1;
	for (int i = 0; i < m->n_dense; i++)
		dense[i] = 0.5 * i;
	req.history = history;
	req.history_len = 8;
	req.history_time = times;
	req.at = INT64_C(1000000) * 9;
	req.candidates = candidates;
	req.n_candidates = 3;
	req.context = context;
	req.context_len = m->n_context;
	req.dense = dense;
	req.dense_len = m->n_dense;
	return fuzz_score(m, &req, 1);
}
