/*
 * din.c - scoring of the base (Embedding&MLP) and din (target attention) architectures.
 *
 * One request is one history and a batch of candidates. The behaviour keys are gathered once
 * and shared by every candidate; the attention unit runs all (candidate, behaviour) pairs of a
 * chunk of candidates through its layers at once, so the products are large enough for sgemm.
 * Everything lives in the caller's scratch (din_model_scratch_floats): nothing is allocated.
 */
#include "model.h"
#include "dien.h"
#include "dsin.h"
#include "bst.h"
#include "din_unit.h"
#include "scratch.h"
#include "poll.h"
#include "../nn/linear_strided.h"
#include "../nn/rowops.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/*
 * Pairs per attention chunk and candidates per tower chunk: enough rows to fill the kernel's
 * 6-row tiles, few enough that a chunk's activations stay in L2 between layers (1000
 * candidates' tower activations in one piece were 2 MB) and that a poll comes soon (a longer
 * history goes in pieces of keys). Rows are independent, so chunking changes no bit of any
 * score.
 */
#define PAIR_ROWS 512
#define TOWER_ROWS 96

/* Offsets (in floats) of every scratch buffer, for a given model and candidate count. */
typedef struct Plan {
	int n_cand;
	int pair_cap;  /* rows of the pair buffers */
	int chunk_cap; /* most candidates of one chunk */
	int pair_w;    /* width of the pair buffers */
	size_t keys, queries, item_bias, context, hist_sum, hist_mean, dense, pooled, interest, dien;
	size_t hk, hq, tmp, pair_a, pair_b, att_score, ukeys, uqueries, upooled;
	size_t tower_x, tower_a, tower_b;
	size_t total;
} Plan;

/* The din attention's units: m->att over the whole vectors, or one per group of slots. */
static int
att_unit_count(const DinModel *m)
{
	return m->att_n_units > 0 ? m->att_n_units : 1;
}

static const DinAttUnit *
att_unit(const DinModel *m, int i)
{
	return m->att_n_units > 0 ? &m->att_units[i] : &m->att;
}

static void
make_plan(const DinModel *m, int n_cand, Plan *p)
{
	int E = m->E, ctx_w = m->n_context > 0 ? m->context_offset[m->n_context] : 0;
	int att_max = 0, tower_max = 0, u1 = 0;
	size_t at = 0;

	memset(p, 0, sizeof(*p));
	p->n_cand = n_cand;
	/* the kept behaviours, then the padding key (attention pool all_slots, empty padding) */
	p->keys = take(&at, (size_t)(m->max_len + 1) * E);
	p->queries = take(&at, (size_t)n_cand * E);
	p->item_bias = take(&at, n_cand);
	p->context = take(&at, ctx_w);
	p->hist_sum = take(&at, E);
	p->hist_mean = take(&at, E);
	p->dense = take(&at, m->n_dense);
	if (m->arch == DIN_ARCH_DIN) {
		int rows = m->max_len + 1;

		for (int i = 0; i < att_unit_count(m); i++) {
			const DinAttUnit *u = att_unit(m, i);

			for (int l = 0; l < u->n_layers; l++)
				att_max = max_int(att_max, u->layers[l].out);
			u1 = max_int(u1, u->n_layers > 0 ? u->layers[0].out : 0);
		}
		p->pair_cap =
		    (int)((long)n_cand * m->max_len < PAIR_ROWS ? (long)n_cand * m->max_len : PAIR_ROWS);
		p->chunk_cap = min_int(n_cand, p->pair_cap);
		p->pair_w = max_int(E, att_max);
		p->pooled = take(&at, (size_t)n_cand * E);
		p->interest =
		    m->att_output.out > 0 ? take(&at, (size_t)n_cand * m->att_output.out) : p->pooled;
		p->hk = take(&at, (size_t)rows * u1);
		p->hq = take(&at, (size_t)p->chunk_cap * u1);
		p->tmp = take(&at, (size_t)max_int(rows, p->chunk_cap) * u1);
		p->pair_a = take(&at, (size_t)p->pair_cap * p->pair_w);
		p->pair_b = take(&at, (size_t)p->pair_cap * p->pair_w);
		/* a chunk's scores: several candidates' pairs, or one candidate's whole history */
		p->att_score = take(&at, max_int(p->pair_cap, rows));
		if (m->att_n_units > 0) {
			p->ukeys = take(&at, (size_t)rows * E);
			p->uqueries = take(&at, (size_t)n_cand * E);
			p->upooled = take(&at, E);
		}
	}
	if (m->arch == DIN_ARCH_DIEN) {
		p->interest = take(&at, (size_t)n_cand * m->att_width);
		p->dien = take(&at, dien_scratch_floats(m, n_cand));
	}
	if (m->arch == DIN_ARCH_DSIN) {
		p->interest = take(&at, (size_t)n_cand * m->att_width);
		p->dien = take(&at, dsin_scratch_floats(m, n_cand));
	}
	if (m->arch == DIN_ARCH_BST) {
		p->interest = take(&at, (size_t)n_cand * m->att_width);
		p->dien = take(&at, bst_scratch_floats(m, n_cand));
	}
	for (int l = 0; l < m->n_tower; l++)
		tower_max = max_int(tower_max, m->tower[l].out);
	p->tower_x = take(&at, (size_t)min_int(n_cand, TOWER_ROWS) * m->tower_in);
	p->tower_a = take(&at, (size_t)min_int(n_cand, TOWER_ROWS) * tower_max);
	p->tower_b = take(&at, (size_t)min_int(n_cand, TOWER_ROWS) * tower_max);
	p->total = at;
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
	if (m->arch == DIN_ARCH_DIN)
		for (int i = 0; i < att_unit_count(m); i++)
			if (att_unit(m, i)->n_layers < 1)
				return din_fail(err, DIN_ECORRUPT, NULL, "din model without attention layers");
	return DIN_OK;
}

/* DIN_ECORRUPT (XX001) for a value a score depends on that overflowed float. */
static DinStatus
overflow(DinError *err, const char *what)
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

/* dst[i] = the parts of src[i] (E wide) that unit u's slots hold, for i < n (dst W wide). */
static void
gather_slots(const DinModel *m, const DinAttUnit *u, const float *src, int n, float *dst)
{
	for (int i = 0; i < n; i++)
		for (int j = 0; j < u->n_slots; j++) {
			int k = u->slots[j], d = m->slot_offset[k + 1] - m->slot_offset[k];

			memcpy(dst, src + (size_t)i * m->E + m->slot_offset[k], sizeof(float) * d);
			dst += d;
		}
}

/* The inverse for one row: src (W wide) into unit u's slots of dst (E wide). */
static void
scatter_slots(const DinModel *m, const DinAttUnit *u, const float *src, float *dst)
{
	for (int j = 0; j < u->n_slots; j++) {
		int k = u->slots[j], d = m->slot_offset[k + 1] - m->slot_offset[k];

		memcpy(dst + m->slot_offset[k], src, sizeof(float) * d);
		src += d;
	}
}

/*
 * One unit's keys: rows T scored rows of W floats (the behaviours, and with pad > 0 the
 * padding key standing for pad slots), their queries, and where the pooled W floats go.
 */
typedef struct UnitRun {
	const DinAttUnit *u;
	int W, T, pad, rows;
	const float *keys, *queries;
	int first; /* the unit whose weights din_explain shows */
} UnitRun;

/*
 * Attention weights of candidates [c0, c0+nc) over the kept behaviours, pooled into
 * pooled[c] = sum_t w_t k_t; weights (if not NULL) receives w of the first unit. Nonzero when
 * poll said stop; 2 when a score is not finite.
 */
static int
attention_chunk(const DinModel *m, const Plan *p, float *s, const UnitRun *r, int c0, int nc,
                float *weights, Poll *poll)
{
	int E = m->E, W = r->W, T = r->T, rows = r->rows;
	float *score = s + p->att_score;

	if (din_unit_scores(r->u, r->queries + (size_t)c0 * W, nc, r->keys, s + p->hk, rows,
	                    p->pair_cap, s + p->hq, s + p->tmp, s + p->pair_a, s + p->pair_b, score,
	                    poll))
		return 1;
	/* a NaN score would turn every weight NaN, and a tower activation may hide it */
	if (!nn_all_finite(score, (size_t)nc * rows))
		return 2;
	if (m->att_scale) {
		float inv = 1.0f / sqrtf((float)W);

		for (int i = 0; i < nc * rows; i++)
			score[i] *= inv;
	}
	for (int c = 0; c < nc; c++) {
		float *w = score + (size_t)c * rows;
		float *u = s + p->pooled + (size_t)(c0 + c) * E;

		if (m->att_softmax)
			nn_softmax_counted(w, rows, r->pad > 0 ? r->pad : 1);
		if (weights && r->first)
			memcpy(weights + (size_t)(c0 + c) * T, w, sizeof(float) * T);
		if (r->pad > 0)
			w[T] *= (float)r->pad; /* the padding slots' total weight */
		if (m->att_n_units == 0)
			nn_rows_pool(u, w, r->keys, rows, E);
		else {
			nn_rows_pool(s + p->upooled, w, r->keys, rows, W);
			scatter_slots(m, r->u, s + p->upooled, u);
		}
	}
	return poll_stop(poll, (double)nc * rows * (W + POLL_EXP));
}

/* Unit i over the scored rows; as attention_chunk. */
static int
attention_unit(const DinModel *m, const Plan *p, float *s, int i, int T, int pad, float *weights,
               Poll *poll)
{
	UnitRun r = {.u = att_unit(m, i), .W = m->E, .T = T, .pad = pad, .first = i == 0};
	int C = p->n_cand, chunk, st;

	r.rows = T + (pad > 0);
	r.keys = s + p->keys;
	r.queries = s + p->queries;
	if (m->att_n_units > 0) {
		r.W = r.u->width;
		gather_slots(m, r.u, r.keys, r.rows, s + p->ukeys);
		gather_slots(m, r.u, r.queries, C, s + p->uqueries);
		r.keys = s + p->ukeys;
		r.queries = s + p->uqueries;
	}
	din_unit_keys(r.u, r.keys, r.rows, s + p->hk, s + p->tmp);
	if (poll_stop(poll, (double)r.rows * r.W * r.u->layers[0].out))
		return 1;
	chunk = min_int(C, max_int(1, p->pair_cap / r.rows));
	for (int c0 = 0; c0 < C; c0 += chunk)
		if ((st = attention_chunk(m, p, s, &r, c0, min_int(chunk, C - c0), weights, poll)) != 0)
			return st;
	return 0;
}

/*
 * The pooled interest of every candidate into s + p->interest (before output: zero, or the
 * padding key, on an empty history); returns early when poll says stop.
 */
static DinStatus
attention(const DinModel *m, const Plan *p, float *s, int T, float *weights, Poll *poll,
          DinError *err)
{
	int E = m->E, C = p->n_cand;
	int pad = m->att_pool == DIN_POOL_ALL_SLOTS ? m->max_len - T : 0;
	float *pooled = s + p->pooled, *pad_key = s + p->keys + (size_t)T * E;

	if (pad > 0 || (T == 0 && m->att_empty == DIN_EMPTY_PADDING))
		din_padding_key(m, m->att_pad_row, pad_key);
	if (T + pad == 0) {
		/* every slot masked: a softmax over max_len equal scores pools the padding key */
		for (int c = 0; c < C; c++)
			if (m->att_empty == DIN_EMPTY_PADDING)
				memcpy(pooled + (size_t)c * E, pad_key, sizeof(float) * E);
			else
				memset(pooled + (size_t)c * E, 0, sizeof(float) * E);
	} else
		for (int i = 0; i < att_unit_count(m); i++) {
			int st = attention_unit(m, p, s, i, T, pad, weights, poll);

			if (st == 1)
				return DIN_OK; /* the caller sees poll.stop */
			if (st == 2)
				return overflow(err, "attention score");
		}
	if (!nn_all_finite(pooled, (size_t)C * E))
		return overflow(err, "pooled interest");
	if (m->att_output_bn.n > 0)
		nn_batchnorm(&m->att_output_bn, pooled, C);
	if (m->att_output.out > 0)
		nn_layer_product(&m->att_output, pooled, C, s + p->interest);
	return DIN_OK;
}

/* The tower input row of candidate c: the configured slices, in order. */
static void
tower_row(const DinModel *m, const Plan *p, const float *s, int c, float *x)
{
	const float *q = s + p->queries + (size_t)c * m->E;
	const float *u = m->arch != DIN_ARCH_BASE ? s + p->interest + (size_t)c * m->att_width : NULL;

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
			src = s + p->hist_sum;
			break;
		case DIN_IN_HISTORY_MEAN:
			src = s + p->hist_mean;
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
			mul = s + p->hist_sum;
			break;
		case DIN_IN_DENSE:
			src = s + p->dense;
			break;
		}
		for (int j = 0; j < in->width; j++)
			x[j] = mul ? src[in->offset + j] * mul[in->offset + j] : src[in->offset + j];
		x += in->width;
	}
}

/* Click probability from the last hidden row h; the logit is summed in double. */
static double
head(const DinModel *m, const float *h, float item_bias)
{
	int H = m->head_in;

	if (m->head == DIN_HEAD_SOFTMAX2) {
		double l[2];

		for (int o = 0; o < 2; o++) {
			l[o] = m->head_bias ? m->head_bias[o] : 0.0;
			for (int j = 0; j < H; j++)
				l[o] += (double)h[j] * m->head_weight[(size_t)o * H + j];
		}
		return nn_sigmoid(l[m->head_column] - l[1 - m->head_column]) + m->head_epsilon;
	} else {
		double logit = (m->head_bias ? m->head_bias[0] : 0.0) + item_bias;

		for (int j = 0; j < H; j++)
			logit += (double)h[j] * m->head_weight[j];
		return nn_sigmoid(logit);
	}
}

/*
 * Scores of every candidate; DIN_EINTERRUPTED when poll said stop. The input rows (every
 * architecture's interest, the embeddings, dense) and each layer's output must be finite: a
 * later sigmoid, clamp or ReLU would turn an overflow into a plausible probability.
 */
static DinStatus
tower(const DinModel *m, const Plan *p, float *s, double *scores, Poll *poll, DinError *err)
{
	double row_work = (double)m->head_in * 2;

	for (int l = 0; l < m->n_tower; l++)
		row_work += (double)m->tower[l].in * m->tower[l].out;
	for (int c0 = 0; c0 < p->n_cand; c0 += TOWER_ROWS) {
		int C = min_int(TOWER_ROWS, p->n_cand - c0), width = m->tower_in;
		float *cur = s + p->tower_x, *next = s + p->tower_a;

		for (int c = 0; c < C; c++)
			tower_row(m, p, s, c0 + c, cur + (size_t)c * m->tower_in);
		if (!nn_all_finite(cur, (size_t)C * width))
			return overflow(err, "tower input");
		if (m->tower_input_bn.n > 0)
			nn_batchnorm(&m->tower_input_bn, cur, C);
		for (int l = 0; l < m->n_tower; l++) {
			nn_layer(&m->tower[l], cur, C, next);
			cur = next;
			next = next == s + p->tower_a ? s + p->tower_b : s + p->tower_a;
			width = m->tower[l].out;
			if (!nn_all_finite(cur, (size_t)C * width))
				return overflow(err, "tower layer output");
		}
		for (int c = 0; c < C; c++)
			scores[c0 + c] = head(m, cur + (size_t)c * width, s[p->item_bias + c0 + c]);
		if (poll_stop(poll, C * row_work))
			return din_fail(err, DIN_EINTERRUPTED, NULL, "scoring was interrupted");
	}
	return DIN_OK;
}

/*
 * Keys of the kept behaviours, their sum and mean. No poll: at most DIN_MAX_LEN_LIMIT lookups,
 * about a millisecond even when each misses the cache.
 */
static DinStatus
gather_history(const DinModel *m, const Plan *p, float *s, const int64_t *hist, int T,
               DinError *err)
{
	int E = m->E;
	float *keys = s + p->keys, *sum = s + p->hist_sum, *mean = s + p->hist_mean;
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

DinStatus
din_model_score(const DinModel *m, const DinRequest *req, float *scratch, double *scores,
                float *weights, DinError *err)
{
	int T = min_int(req->history_len, m->max_len);
	Plan p;
	Poll poll = {.interrupted = req->interrupted, .arg = req->interrupted_arg};
	DinStatus st;

	if ((st = check_request(m, req, err)) != DIN_OK)
		return st;
	if (req->n_candidates == 0)
		return DIN_OK;
	make_plan(m, req->n_candidates, &p);
	st = gather_history(m, &p, scratch, T > 0 ? req->history + (req->history_len - T) : NULL, T,
	                    err);
	if (st != DIN_OK)
		return st;
	if ((st = gather_request(m, &p, scratch, req, err)) != DIN_OK)
		return st;
	if (m->arch == DIN_ARCH_DIN) {
		if ((st = attention(m, &p, scratch, T, weights, &poll, err)) != DIN_OK)
			return st;
	} else if (m->arch == DIN_ARCH_DSIN) {
		st = dsin_interest(m, scratch + p.keys,
		                   req->history_time ? req->history_time + (req->history_len - T) : NULL, T,
		                   req->at, scratch + p.queries, req->n_candidates, scratch + p.dien,
		                   scratch + p.interest, weights, &poll, err);
		if (st != DIN_OK)
			return st;
	} else if (m->arch == DIN_ARCH_BST) {
		st = bst_interest(m, req, scratch + p.keys, T, scratch + p.queries, req->n_candidates,
		                  scratch + p.dien, scratch + p.interest, weights, &poll, err);
		if (st != DIN_OK)
			return st;
	} else if (m->arch == DIN_ARCH_DIEN)
		dien_interest(m, scratch + p.keys, T, scratch + p.queries, req->n_candidates,
		              scratch + p.dien, scratch + p.interest, weights, &poll);
	else if (weights != NULL)
		for (size_t i = 0; i < (size_t)req->n_candidates * T; i++)
			weights[i] = 1.0f / (float)T;
	/* an architecture that was told to stop returns early: the tower then does not run */
	if (poll.stop)
		return din_fail(err, DIN_EINTERRUPTED, NULL, "scoring was interrupted");
	if ((st = tower(m, &p, scratch, scores, &poll, err)) != DIN_OK)
		return st;
	/* finite but huge weights can overflow float: Inf - Inf is NaN, never a probability */
	for (int c = 0; c < req->n_candidates; c++)
		if (!(scores[c] >= 0.0 && scores[c] <= 1.0))
			return din_fail(err, DIN_ECORRUPT,
			                "The model's weights overflow single precision for this input.",
			                "score of candidate %d is not a number", c + 1);
	return DIN_OK;
}
