/*
 * din_attention.c - architecture din: DIN's target attention over the kept behaviours
 * (docs/FORMAT.md "attention (architecture din)").
 *
 * The history part keeps the behaviour vectors (and the padding key) and runs the key side of
 * each unit's first layer over them (din_unit.h): work that every candidate of the history
 * shares. The candidate part runs all (candidate, behaviour) pairs of a chunk of candidates
 * through the unit's layers at once, so the products are large enough for the kernels, then
 * pools each candidate's interest.
 */
#include "arch.h"
#include "din_unit.h"
#include "scratch.h"
#include "../nn/rowops.h"

#include <math.h>
#include <string.h>

/*
 * Pairs per attention chunk: enough rows to fill the kernel's 6-row tiles, few enough that a
 * chunk's activations stay in L2 between layers and that a poll comes soon (a longer history
 * goes in pieces of keys). Rows are independent, so chunking changes no bit of any score.
 */
#define PAIR_ROWS 512

/* The units: m->att over the whole vectors, or one per group of slots. */
static int
unit_count(const DinModel *m)
{
	return m->att_n_units > 0 ? m->att_n_units : 1;
}

static const DinAttUnit *
unit_of(const DinModel *m, int i)
{
	return m->att_n_units > 0 ? &m->att_units[i] : &m->att;
}

/* Width of the vectors unit u scores: E for m->att, its slots' dims for a per-slot unit. */
static int
unit_width(const DinModel *m, const DinAttUnit *u)
{
	return m->att_n_units > 0 ? u->width : m->E;
}

/*
 * Offsets in the state of T kept behaviours: the rows (the behaviours, then the padding key)
 * E wide; per unit, its slots' part of the rows (per-slot units only) and the key side of its
 * first layer.
 */
typedef struct DinState {
	int rows; /* T + 1 */
	size_t keys, ukeys[DIN_MAX_SLOTS], hk[DIN_MAX_SLOTS], total;
} DinState;

static void
state_layout(const DinModel *m, int T, DinState *st)
{
	size_t at = 0;

	st->rows = T + 1;
	st->keys = take(&at, (size_t)st->rows * m->E);
	for (int i = 0; i < unit_count(m); i++) {
		const DinAttUnit *u = unit_of(m, i);

		st->ukeys[i] = m->att_n_units > 0 ? take(&at, (size_t)st->rows * u->width) : st->keys;
		st->hk[i] = take(&at, (size_t)st->rows * (u->n_layers > 0 ? u->layers[0].out : 0));
	}
	st->total = at;
}

static size_t
din_state_floats(const DinModel *m, int T)
{
	DinState st;

	state_layout(m, T, &st);
	return st.total;
}

/* Offsets of the work buffers, for a given model and candidate count. */
typedef struct DinWork {
	int n_cand;
	int pair_cap;  /* rows of the pair buffers */
	int chunk_cap; /* most candidates of one chunk */
	int pair_w;    /* width of the pair buffers */
	size_t pooled, hq, tmp, pair_a, pair_b, att_score, uqueries, upooled, total;
} DinWork;

static void
work_plan(const DinModel *m, int n_cand, DinWork *p)
{
	int E = m->E, rows = m->max_len + 1, att_max = 0, u1 = 0;
	size_t at = 0;

	memset(p, 0, sizeof(*p));
	p->n_cand = n_cand;
	for (int i = 0; i < unit_count(m); i++) {
		const DinAttUnit *u = unit_of(m, i);

		for (int l = 0; l < u->n_layers; l++)
			att_max = max_int(att_max, u->layers[l].out);
		u1 = max_int(u1, u->n_layers > 0 ? u->layers[0].out : 0);
	}
	p->pair_cap =
	    (int)((long)n_cand * m->max_len < PAIR_ROWS ? (long)n_cand * m->max_len : PAIR_ROWS);
	p->chunk_cap = min_int(n_cand, p->pair_cap);
	p->pair_w = max_int(E, att_max);
	/* the pooled interest goes straight to the tower's input unless an output layer follows */
	p->pooled = m->att_output.out > 0 ? take(&at, (size_t)n_cand * E) : 0;
	p->hq = take(&at, (size_t)p->chunk_cap * u1);
	p->tmp = take(&at, (size_t)max_int(rows, p->chunk_cap) * u1);
	p->pair_a = take(&at, (size_t)p->pair_cap * p->pair_w);
	p->pair_b = take(&at, (size_t)p->pair_cap * p->pair_w);
	/* a chunk's scores: several candidates' pairs, or one candidate's whole history */
	p->att_score = take(&at, max_int(p->pair_cap, rows));
	if (m->att_n_units > 0) {
		p->uqueries = take(&at, (size_t)n_cand * E);
		p->upooled = take(&at, E);
	}
	p->total = at;
}

static size_t
din_work_floats(const DinModel *m, int n_cand)
{
	DinWork p;

	work_plan(m, n_cand, &p);
	return p.total;
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

/* The padding slots pooled beside the T kept behaviours (attention pool all_slots). */
static int
padding_slots(const DinModel *m, int T)
{
	return m->att_pool == DIN_POOL_ALL_SLOTS ? m->max_len - T : 0;
}

static DinStatus
din_history(const DinModel *m, const DinHistory *h, float *state, float *work, Poll *poll,
            DinError *err)
{
	int T = h->T, E = m->E, pad = padding_slots(m, T), rows = T + (pad > 0);
	DinState st;
	float *keys;

	for (int i = 0; i < unit_count(m); i++)
		if (unit_of(m, i)->n_layers < 1)
			return din_fail(err, DIN_ECORRUPT, NULL, "din model without attention layers");
	state_layout(m, T, &st);
	keys = state + st.keys;
	memcpy(keys, h->keys, sizeof(float) * T * E);
	if (pad > 0 || (T == 0 && m->att_empty == DIN_EMPTY_PADDING))
		din_padding_key(m, m->att_pad_row, keys + (size_t)T * E);
	if (T + pad == 0)
		return DIN_OK; /* every slot masked: no unit runs */
	for (int i = 0; i < unit_count(m); i++) {
		const DinAttUnit *u = unit_of(m, i);

		if (m->att_n_units > 0)
			gather_slots(m, u, keys, rows, state + st.ukeys[i]);
		/* work holds rows x U1 floats: the candidate part's tmp is as large */
		din_unit_keys(u, state + st.ukeys[i], rows, state + st.hk[i], work);
		if (poll_stop(poll, (double)rows * unit_width(m, u) * u->layers[0].out))
			return DIN_OK;
	}
	return DIN_OK;
}

/*
 * One unit's run: rows T scored rows of W floats (the behaviours, and with pad > 0 the
 * padding key standing for pad slots) with their key side hk, the candidates' queries, and
 * where the pooled interests go.
 */
typedef struct UnitRun {
	const DinAttUnit *u;
	int W, T, pad, rows;
	const float *keys, *hk, *queries;
	float *pooled; /* [C, E] */
	int first;     /* the unit whose weights din_explain shows */
} UnitRun;

/*
 * Attention weights of candidates [c0, c0+nc) over the kept behaviours, pooled into
 * pooled[c] = sum_t w_t k_t; weights (if not NULL) receives w of the first unit. Nonzero when
 * poll said stop; 2 when a score is not finite.
 */
static int
attention_chunk(const DinModel *m, const DinWork *p, float *s, const UnitRun *r, int c0, int nc,
                float *weights, Poll *poll)
{
	int E = m->E, W = r->W, T = r->T, rows = r->rows;
	float *score = s + p->att_score;

	if (din_unit_scores(r->u, r->queries + (size_t)c0 * W, nc, r->keys, r->hk, rows, p->pair_cap,
	                    s + p->hq, s + p->tmp, s + p->pair_a, s + p->pair_b, score, poll))
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
		float *u = r->pooled + (size_t)(c0 + c) * E;

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

/* Every chunk of candidates through the unit of r; as attention_chunk. */
static int
attention_unit(const DinModel *m, const DinWork *p, float *s, const UnitRun *r, float *weights,
               Poll *poll)
{
	int C = p->n_cand, chunk = min_int(C, max_int(1, p->pair_cap / r->rows)), st;

	for (int c0 = 0; c0 < C; c0 += chunk)
		if ((st = attention_chunk(m, p, s, r, c0, min_int(chunk, C - c0), weights, poll)) != 0)
			return st;
	return 0;
}

/*
 * The pooled interest of every candidate (before output: zero, or the padding key, on an
 * empty history), then the output block.
 */
static DinStatus
din_candidates(const DinModel *m, const float *state, int T, const float *queries, int C,
               float *work, float *interest, float *weights, Poll *poll, DinError *err)
{
	int E = m->E, pad = padding_slots(m, T);
	DinState st;
	DinWork p;
	float *s = work, *pooled;
	const float *pad_key;

	state_layout(m, T, &st);
	work_plan(m, C, &p);
	pooled = m->att_output.out > 0 ? s + p.pooled : interest;
	pad_key = state + st.keys + (size_t)T * E;
	if (T + pad == 0) {
		/* every slot masked: a softmax over max_len equal scores pools the padding key */
		for (int c = 0; c < C; c++)
			if (m->att_empty == DIN_EMPTY_PADDING)
				memcpy(pooled + (size_t)c * E, pad_key, sizeof(float) * E);
			else
				memset(pooled + (size_t)c * E, 0, sizeof(float) * E);
	} else
		for (int i = 0; i < unit_count(m); i++) {
			UnitRun r = {.u = unit_of(m, i), .T = T, .pad = pad, .first = i == 0};
			int stop;

			r.W = unit_width(m, r.u);
			r.rows = T + (pad > 0);
			r.keys = state + st.ukeys[i];
			r.hk = state + st.hk[i];
			r.queries = queries;
			r.pooled = pooled;
			if (m->att_n_units > 0) {
				gather_slots(m, r.u, queries, C, s + p.uqueries);
				r.queries = s + p.uqueries;
			}
			stop = attention_unit(m, &p, s, &r, weights, poll);
			if (stop == 1)
				return DIN_OK; /* the caller sees poll->stop */
			if (stop == 2)
				return din_overflow(err, "attention score");
		}
	if (!nn_all_finite(pooled, (size_t)C * E))
		return din_overflow(err, "pooled interest");
	if (m->att_output_bn.n > 0)
		nn_batchnorm(&m->att_output_bn, pooled, C);
	if (m->att_output.out > 0)
		nn_layer_product(&m->att_output, pooled, C, interest);
	return DIN_OK;
}

const DinArchOps din_ops_din = {
    .name = "din",
    .state_floats = din_state_floats,
    .work_floats = din_work_floats,
    .history = din_history,
    .candidates = din_candidates,
};
