/*
 * pipeline.c - scoring a request, for every architecture: the behaviours' and candidates'
 * embeddings, the architecture's parts (arch.h), the tower and the head.
 *
 * One request is one history and a batch of candidates. The history part (the behaviour
 * vectors, their sum and mean, then the architecture's history state) runs once and serves
 * every candidate; the candidate part embeds the candidates, runs the architecture's candidate
 * part and the tower in chunks of candidates. Everything lives in the caller's scratch
 * (din_model_scratch_floats): nothing is allocated.
 */
#include "arch.h"
#include "scratch.h"
#include "../nn/rowops.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/*
 * Candidates per tower chunk: enough rows to fill the kernel's 6-row tiles, few enough that a
 * chunk's activations stay in L2 between layers (1000 candidates' tower activations in one
 * piece were 2 MB) and that a poll comes soon. Rows are independent, so chunking changes no
 * bit of any score.
 */
#define TOWER_ROWS 96

/*
 * Offsets (in floats) of every scratch buffer, for a given model and candidate count. The
 * history state (state) is the behaviours' sum and mean, then the architecture's part.
 */
typedef struct Plan {
	int n_cand;
	size_t state_sum, state_mean, state_arch; /* within the state */
	size_t state, keys, queries, item_bias, context, dense, interest, work;
	size_t tower_x, tower_a, tower_b;
	size_t total;
} Plan;

static void
make_plan(const DinModel *m, int n_cand, Plan *p)
{
	const DinArchOps *ops = din_arch_ops(m);
	int E = m->E, ctx_w = m->n_context > 0 ? m->context_offset[m->n_context] : 0, tower_max = 0;
	int tower_rows = min_int(n_cand, TOWER_ROWS);
	size_t at = 0;

	memset(p, 0, sizeof(*p));
	p->n_cand = n_cand;
	p->state_sum = take(&at, E);
	p->state_mean = take(&at, E);
	p->state_arch = at;
	at = 0;
	p->state = take(&at, din_model_state_floats(m, m->max_len));
	p->keys = take(&at, (size_t)m->max_len * E);
	p->queries = take(&at, (size_t)n_cand * E);
	p->item_bias = take(&at, n_cand);
	p->context = take(&at, ctx_w);
	p->dense = take(&at, m->n_dense);
	p->interest = take(&at, (size_t)n_cand * m->att_width);
	p->work = take(&at, ops->work_floats(m, n_cand));
	for (int l = 0; l < m->n_tower; l++)
		tower_max = max_int(tower_max, m->tower[l].out);
	p->tower_x = take(&at, (size_t)tower_rows * m->tower_in);
	p->tower_a = take(&at, (size_t)tower_rows * tower_max);
	p->tower_b = take(&at, (size_t)tower_rows * tower_max);
	p->total = at;
}

size_t
din_model_state_floats(const DinModel *m, int kept)
{
	size_t at = 0;

	take(&at, m->E); /* the sum, then the mean */
	take(&at, m->E);
	return at + din_arch_ops(m)->state_floats(m, kept);
}

size_t
din_model_scratch_floats(const DinModel *m, int n_candidates)
{
	Plan p;

	make_plan(m, n_candidates > 0 ? n_candidates : 1, &p);
	return p.total;
}

/*
 * Row of raw id `id` in field `fi` after its oov rule: -1 for the zero vector. `known` = 0
 * means the id is unknown before any lookup (an attribute of an item missing from the items
 * table, whose id is then the item's).
 */
static DinStatus
resolve_row(const DinModel *m, int fi, int64_t id, int known, int64_t *row, DinError *err)
{
	const DinField *f = &m->fields[fi];
	int64_t r = known ? din_field_row(f, id) : -1;

	if (r >= 0) {
		*row = r;
		return DIN_OK;
	}
	switch (f->oov) {
	case DIN_OOV_ZERO:
		*row = -1;
		return DIN_OK;
	case DIN_OOV_ROW:
		*row = f->oov_row;
		return DIN_OK;
	case DIN_OOV_ERROR:
		break;
	}
	if (!known)
		return din_fail(err, DIN_EINVAL,
		                "Item ids must be in the model's items table to have attributes.",
		                "unknown id %lld for field \"%s\"", (long long)id, f->name);
	if (!din_idmap_exists(&f->vocab)) {
		char detail[160];

		snprintf(detail, sizeof(detail), "Ids of field \"%s\" are rows in [0, %lld).", f->name,
		         (long long)f->rows);
		return din_fail(err, DIN_EINVAL, detail, "unknown id %lld for field \"%s\"", (long long)id,
		                f->name);
	}
	return din_fail(err, DIN_EINVAL, NULL, "unknown id %lld for field \"%s\"", (long long)id,
	                f->name);
}

static void
copy_row(const DinField *f, int64_t row, float *out)
{
	if (row < 0)
		memset(out, 0, sizeof(float) * f->dim);
	else
		memcpy(out, f->weight + (size_t)row * f->dim, sizeof(float) * f->dim);
}

/*
 * The E-wide vector of item `id` through the slot fields `slots` (m->target or m->behaviour):
 * slot 0 embeds the id, slot k >= 1 attribute k-1 from the items table. *row0 = the row of
 * slot 0 (-1 for the zero vector).
 */
static DinStatus
embed_item(const DinModel *m, const int *slots, int64_t id, float *out, int64_t *row0,
           DinError *err)
{
	int64_t row, idx = -1;
	DinStatus st;

	if ((st = resolve_row(m, slots[0], id, 1, &row, err)) != DIN_OK)
		return st;
	copy_row(&m->fields[slots[0]], row, out + m->slot_offset[0]);
	if (row0)
		*row0 = row;
	if (m->n_slots > 1)
		idx = din_idmap_find(&m->items, id);
	for (int k = 1; k < m->n_slots; k++) {
		int64_t attr = idx >= 0 ? m->item_attrs[idx * m->n_attr + (k - 1)] : id;

		if ((st = resolve_row(m, slots[k], attr, idx >= 0, &row, err)) != DIN_OK)
			return st;
		copy_row(&m->fields[slots[k]], row, out + m->slot_offset[k]);
	}
	return DIN_OK;
}

/*
 * Start loading what embedding `id` through `slots` will read: its slot-0 row, its items-table
 * entry (or the hash slot that finds it) and their vocabulary slots. A history's rows are
 * random lines of tables larger than the cache; loaded one after another they cost a memory
 * latency each, started together they overlap. Ids the lookups reject are only not prefetched.
 */
static void
prefetch_item(const DinModel *m, const int *slots, int64_t id)
{
	const DinField *f = &m->fields[slots[0]];

	if (f->vocab.cap > 0)
		din_idmap_prefetch(&f->vocab, id);
	else {
		int64_t row = din_field_row(f, id);

		if (row >= 0) {
			const float *r = f->weight + (size_t)row * f->dim;

			__builtin_prefetch(r);
			__builtin_prefetch(r + f->dim - 1); /* a row may straddle two cache lines */
		}
	}
	if (m->n_slots > 1) {
		if (m->items.consecutive) {
			int64_t idx = din_idmap_find(&m->items, id);

			if (idx >= 0)
				__builtin_prefetch(m->item_attrs + (size_t)idx * m->n_attr);
		} else
			din_idmap_prefetch(&m->items, id);
	}
}

static DinStatus
check_request(const DinModel *m, const DinRequest *req, DinError *err)
{
	char detail[160];

	if (req->context_len != m->n_context) {
		snprintf(detail, sizeof(detail), "The model has %d context fields but %d were given.",
		         m->n_context, req->context_len);
		return din_fail(err, DIN_EINVAL, detail, "wrong number of context ids");
	}
	if (req->dense_len != m->n_dense) {
		snprintf(detail, sizeof(detail), "The model has %d dense features but %d were given.",
		         m->n_dense, req->dense_len);
		return din_fail(err, DIN_EINVAL, detail, "wrong number of dense features");
	}
	if (req->history_len < 0 || req->n_candidates < 0 ||
	    (req->history_len > 0 && req->history == NULL) ||
	    (req->n_candidates > 0 && req->candidates == NULL) ||
	    (req->context_len > 0 && req->context == NULL) ||
	    (req->dense_len > 0 && req->dense == NULL))
		return din_fail(err, DIN_EINVAL, NULL, "malformed scoring request");
	/* converting a double beyond float's range to float is undefined behaviour */
	for (int i = 0; i < req->dense_len; i++)
		if (!(fabs(req->dense[i]) <= FLT_MAX))
			return din_fail(err, DIN_EINVAL, "Dense features are finite single-precision values.",
			                "dense feature %d is out of range", i + 1);
	return DIN_OK;
}

DinStatus
din_overflow(DinError *err, const char *what)
{
	return din_fail(err, DIN_ECORRUPT,
	                "The model's weights overflow single precision for this input.",
	                "%s is not finite", what);
}

void
din_padding_key(const DinModel *m, int64_t row, float *key)
{
	for (int k = 0; k < m->n_slots; k++) {
		const DinField *f = &m->fields[m->behaviour[k]];

		memcpy(key + m->slot_offset[k], f->weight + (size_t)row * f->dim, sizeof(float) * f->dim);
	}
}

/* The tower input row of candidate c: the configured slices, in order. */
static void
tower_row(const DinModel *m, const Plan *p, const float *s, const float *state, int c, float *x)
{
	const float *q = s + p->queries + (size_t)c * m->E;
	const float *u = s + p->interest + (size_t)c * m->att_width;

	for (int i = 0; i < m->n_inputs; i++) {
		const DinTowerInput *in = &m->inputs[i];
		const float *src = NULL, *mul = NULL;

		switch (in->kind) {
		case DIN_IN_TARGET:
			src = q;
			break;
		case DIN_IN_CONTEXT:
			src = s + p->context;
			break;
		case DIN_IN_HISTORY_SUM:
			src = state + p->state_sum;
			break;
		case DIN_IN_HISTORY_MEAN:
			src = state + p->state_mean;
			break;
		case DIN_IN_ATTENTION:
			src = u;
			break;
		case DIN_IN_TARGET_X_ATTENTION:
			src = q;
			mul = u;
			break;
		case DIN_IN_TARGET_X_HISTORY_SUM:
			src = q;
			mul = state + p->state_sum;
			break;
		case DIN_IN_DENSE:
			src = s + p->dense;
			break;
		}
		/* two loops, not a choice per element: then each vectorizes */
		if (mul != NULL)
			for (int j = 0; j < in->width; j++)
				x[j] = src[in->offset + j] * mul[in->offset + j];
		else
			for (int j = 0; j < in->width; j++)
				x[j] = src[in->offset + j];
		x += in->width;
	}
}

/* h . w in double, four partial sums: not one chain of dependent additions */
static double
dot_double(const float *h, const float *w, int n)
{
	double s[4] = {0, 0, 0, 0};
	int j = 0;

	for (; j + 4 <= n; j += 4)
		for (int k = 0; k < 4; k++)
			s[k] += (double)h[j + k] * w[j + k];
	for (; j < n; j++)
		s[0] += (double)h[j] * w[j];
	return (s[0] + s[1]) + (s[2] + s[3]);
}

/* Click probability from the last hidden row h; the logit is summed in double. */
static double
head(const DinModel *m, const float *h, float item_bias)
{
	int H = m->head_in;

	if (m->head == DIN_HEAD_SOFTMAX2) {
		double l[2];

		for (int o = 0; o < 2; o++)
			l[o] = (m->head_bias ? m->head_bias[o] : 0.0) +
			       dot_double(h, m->head_weight + (size_t)o * H, H);
		return nn_sigmoid(l[m->head_column] - l[1 - m->head_column]) + m->head_epsilon;
	} else {
		double logit = (m->head_bias ? m->head_bias[0] : 0.0) + item_bias;

		return nn_sigmoid(logit + dot_double(h, m->head_weight, H));
	}
}

/*
 * Scores of every candidate; DIN_EINTERRUPTED when poll said stop. The input rows (every
 * architecture's interest, the embeddings, dense) and each layer's output must be finite: a
 * later sigmoid, clamp or ReLU would turn an overflow into a plausible probability.
 */
static DinStatus
tower(const DinModel *m, const Plan *p, float *s, const float *state, double *scores, Poll *poll,
      DinError *err)
{
	double row_work = (double)m->head_in * 2;

	for (int l = 0; l < m->n_tower; l++)
		row_work += (double)m->tower[l].in * m->tower[l].out;
	for (int c0 = 0; c0 < p->n_cand; c0 += TOWER_ROWS) {
		int C = min_int(TOWER_ROWS, p->n_cand - c0), width = m->tower_in;
		float *cur = s + p->tower_x, *next = s + p->tower_a;

		for (int c = 0; c < C; c++)
			tower_row(m, p, s, state, c0 + c, cur + (size_t)c * m->tower_in);
		if (!nn_all_finite(cur, (size_t)C * width))
			return din_overflow(err, "tower input");
		if (m->tower_input_bn.n > 0)
			nn_batchnorm(&m->tower_input_bn, cur, C);
		for (int l = 0; l < m->n_tower; l++) {
			nn_layer(&m->tower[l], cur, C, next);
			cur = next;
			next = next == s + p->tower_a ? s + p->tower_b : s + p->tower_a;
			width = m->tower[l].out;
			if (!nn_all_finite(cur, (size_t)C * width))
				return din_overflow(err, "tower layer output");
		}
		for (int c = 0; c < C; c++)
			scores[c0 + c] = head(m, cur + (size_t)c * width, s[p->item_bias + c0 + c]);
		if (poll_stop(poll, C * row_work))
			return din_fail(err, DIN_EINTERRUPTED, NULL, "scoring was interrupted");
	}
	return DIN_OK;
}

/*
 * Keys of the kept behaviours into s + p->keys, their sum and mean into the state. No poll: at
 * most DIN_MAX_LEN_LIMIT lookups, about a millisecond even when each misses the cache.
 */
static DinStatus
gather_history(const DinModel *m, const Plan *p, float *s, const int64_t *hist, int T, float *state,
               DinError *err)
{
	int E = m->E;
	float *keys = s + p->keys, *sum = state + p->state_sum, *mean = state + p->state_mean;
	DinStatus st;

	memset(sum, 0, sizeof(float) * E);
	for (int t = 0; t < T; t++)
		prefetch_item(m, m->behaviour, hist[t]);
	for (int t = 0; t < T; t++) {
		float *kt = keys + (size_t)t * E;

		if ((st = embed_item(m, m->behaviour, hist[t], kt, NULL, err)) != DIN_OK)
			return st;
		for (int j = 0; j < E; j++)
			sum[j] += kt[j];
	}
	for (int j = 0; j < E; j++)
		mean[j] = T > 0 ? sum[j] / (float)T : 0.0f;
	return DIN_OK;
}

/* Context embeddings, dense features, and each candidate's query and item bias. */
static DinStatus
gather_request(const DinModel *m, const Plan *p, float *s, const DinRequest *req, DinError *err)
{
	DinStatus st;

	for (int i = 0; i < m->n_context; i++) {
		int64_t row;
		int fi = m->context[i];

		if ((st = resolve_row(m, fi, req->context[i], 1, &row, err)) != DIN_OK)
			return st;
		copy_row(&m->fields[fi], row, s + p->context + m->context_offset[i]);
	}
	for (int i = 0; i < m->n_dense; i++)
		s[p->dense + i] = (float)req->dense[i];
	for (int c = 0; c < req->n_candidates; c++)
		prefetch_item(m, m->target, req->candidates[c]);
	for (int c = 0; c < req->n_candidates; c++) {
		int64_t row;

		st = embed_item(m, m->target, req->candidates[c], s + p->queries + (size_t)c * m->E, &row,
		                err);
		if (st != DIN_OK)
			return st;
		s[p->item_bias + c] = (m->item_bias && row >= 0) ? m->item_bias[row] : 0.0f;
	}
	return DIN_OK;
}

/*
 * The history part: the kept behaviours' sum and mean, then the architecture's state, into
 * state; DIN_EINTERRUPTED when poll said stop.
 */
static DinStatus
history_part(const DinModel *m, const Plan *p, float *s, const DinRequest *req, float *state,
             Poll *poll, DinError *err)
{
	int T = min_int(req->history_len, m->max_len), skip = req->history_len - T;
	DinHistory h = {.keys = s + p->keys, .T = T, .at = req->at};
	DinStatus st;

	h.times = req->history_time ? req->history_time + skip : NULL;
	st = gather_history(m, p, s, T > 0 ? req->history + skip : NULL, T, state, err);
	if (st != DIN_OK)
		return st;
	st = din_arch_ops(m)->history(m, &h, state + p->state_arch, s + p->work, poll, err);
	if (st != DIN_OK)
		return st;
	if (poll->stop)
		return din_fail(err, DIN_EINTERRUPTED, NULL, "scoring was interrupted");
	return DIN_OK;
}

/* The candidate part: each candidate's score from the history state. */
static DinStatus
candidate_part(const DinModel *m, const Plan *p, float *s, const DinRequest *req,
               const float *state, double *scores, float *weights, Poll *poll, DinError *err)
{
	int T = min_int(req->history_len, m->max_len);
	DinStatus st;

	if ((st = gather_request(m, p, s, req, err)) != DIN_OK)
		return st;
	st = din_arch_ops(m)->candidates(m, state + p->state_arch, T, s + p->queries, req->n_candidates,
	                                 s + p->work, s + p->interest, weights, poll, err);
	if (st != DIN_OK)
		return st;
	/* an architecture that was told to stop returns early: the tower then does not run */
	if (poll->stop)
		return din_fail(err, DIN_EINTERRUPTED, NULL, "scoring was interrupted");
	if ((st = tower(m, p, s, state, scores, poll, err)) != DIN_OK)
		return st;
	/* finite but huge weights can overflow float: Inf - Inf is NaN, never a probability */
	for (int c = 0; c < req->n_candidates; c++)
		if (!(scores[c] >= 0.0 && scores[c] <= 1.0))
			return din_fail(err, DIN_ECORRUPT,
			                "The model's weights overflow single precision for this input.",
			                "score of candidate %d is not a number", c + 1);
	return DIN_OK;
}

DinStatus
din_model_score(const DinModel *m, const DinRequest *req, float *scratch, double *scores,
                float *weights, DinError *err)
{
	Plan p;
	Poll poll = {.interrupted = req->interrupted, .arg = req->interrupted_arg};
	DinStatus st;

	if ((st = check_request(m, req, err)) != DIN_OK)
		return st;
	if (req->n_candidates == 0)
		return DIN_OK;
	make_plan(m, req->n_candidates, &p);
	if ((st = history_part(m, &p, scratch, req, scratch + p.state, &poll, err)) != DIN_OK)
		return st;
	return candidate_part(m, &p, scratch, req, scratch + p.state, scores, weights, &poll, err);
}

void
din_model_history_key(const DinModel *m, const DinRequest *req, DinHistoryKey *key)
{
	const DinArchOps *ops = din_arch_ops(m);
	int skip;

	key->len = min_int(req->history_len, m->max_len);
	skip = req->history_len - key->len;
	key->history = key->len > 0 ? req->history + skip : NULL;
	key->reads_time = ops->reads_time != NULL && ops->reads_time(m);
	key->times =
	    key->reads_time && key->len > 0 && req->history_time ? req->history_time + skip : NULL;
	key->at = key->reads_time ? req->at : 0;
}

DinStatus
din_model_history(const DinModel *m, const DinRequest *req, float *scratch, float *state,
                  DinError *err)
{
	Plan p;
	Poll poll = {.interrupted = req->interrupted, .arg = req->interrupted_arg};
	DinStatus st;

	if ((st = check_request(m, req, err)) != DIN_OK)
		return st;
	make_plan(m, 1, &p);
	return history_part(m, &p, scratch, req, state, &poll, err);
}

DinStatus
din_model_score_state(const DinModel *m, const DinRequest *req, const float *state, float *scratch,
                      double *scores, float *weights, DinError *err)
{
	Plan p;
	Poll poll = {.interrupted = req->interrupted, .arg = req->interrupted_arg};
	DinStatus st;

	if ((st = check_request(m, req, err)) != DIN_OK)
		return st;
	if (req->n_candidates == 0)
		return DIN_OK;
	make_plan(m, req->n_candidates, &p);
	return candidate_part(m, &p, scratch, req, state, scores, weights, &poll, err);
}
