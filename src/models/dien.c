/*
 * dien.c - architecture dien: extractor GRU over the behaviours, attention of each candidate
 * over the extractor states, then the attention-driven evolution GRU (docs/FORMAT.md
 * "architecture dien").
 *
 * The history part runs what depends only on the history: the extractor, the key side of the
 * attention unit over its states, and the evolution GRU's input product (every candidate's
 * evolution reads the same extractor states) or, for gru_attention_pooling, the whole second
 * GRU. Per candidate remain the attention and the hidden-side products of the evolution, which
 * run for all candidates of a step at once.
 */
#include "dien.h"
#include "arch.h"
#include "din_unit.h"
#include "scratch.h"

#include <string.h>

/* Rows of the attention unit's buffers: several candidates when they fit, else pieces of keys. */
#define UNIT_ROWS 2048

/*
 * Offsets in the state of T kept behaviours: the states the target attends to (the
 * extractor's, or the second GRU's for gru_attention_pooling), the unit's key side over them,
 * and the evolution's input product (with the biases it leaves out, for aigru).
 */
typedef struct DienState {
	size_t states, hk, xp, bias, total;
} DienState;

static void
state_layout(const DinModel *m, int T, DienState *st)
{
	const DinDien *d = m->dien;
	int H = d->extractor.hidden;
	size_t at = 0;

	memset(st, 0, sizeof(*st));
	st->states = take(&at, (size_t)T * H);
	if (d->score == DIN_DIEN_SCORE_UNIT)
		st->hk = take(&at, (size_t)T * m->att.layers[0].out);
	if (d->evo != DIN_EVO_GRU_POOLING)
		st->xp = take(&at, (size_t)T * 3 * H);
	if (d->evo == DIN_EVO_AIGRU)
		st->bias = take(&at, (size_t)3 * H);
	st->total = at;
}

static size_t
dien_state_floats(const DinModel *m, int T)
{
	DienState st;

	state_layout(m, T, &st);
	return st.total;
}

typedef struct DienWork {
	int M, H, C, unit_rows;
	size_t xp, states, gwork, scores, query, acol, cand_xp, unit_a, unit_b, hq, tmp, total;
} DienWork;

static void
work_plan(const DinModel *m, int C, DienWork *p)
{
	const DinDien *d = m->dien;
	int H = d->extractor.hidden, M = m->max_len, wmax = H; /* unit_b first holds q*h */
	size_t at = 0;

	memset(p, 0, sizeof(*p));
	p->M = M;
	p->H = H;
	p->C = C;
	for (int l = 0; l < m->att.n_layers; l++)
		wmax = max_int(wmax, m->att.layers[l].out);
	p->unit_rows = (long)C * M < UNIT_ROWS ? C * M : UNIT_ROWS;
	p->xp = take(&at, (size_t)M * 3 * H);
	p->states = take(&at, (size_t)M * H);
	p->gwork = take(&at, gru_work_floats(&d->extractor, max_int(C, 1)) +
	                         gru_work_floats(&d->evolution, max_int(C, 1)));
	p->scores = take(&at, (size_t)C * M);
	p->query = take(&at, (size_t)C * H);
	p->acol = take(&at, C);
	p->cand_xp = take(&at, (size_t)C * 3 * H);
	if (d->score == DIN_DIEN_SCORE_UNIT) {
		int u1 = m->att.layers[0].out, chunk = min_int(C, p->unit_rows);

		p->unit_a = take(&at, (size_t)p->unit_rows * wmax);
		p->unit_b = take(&at, (size_t)p->unit_rows * wmax);
		p->hq = take(&at, (size_t)chunk * u1);
		p->tmp = take(&at, (size_t)max_int(M, chunk) * u1);
	}
	p->total = at;
}

static size_t
dien_work_floats(const DinModel *m, int n_cand)
{
	DienWork p;

	work_plan(m, n_cand, &p);
	return p.total;
}

/* states[T, H] of a plain GRU over x[T, in], from the zero state; nonzero when poll said stop. */
static int
run_gru(const DinGru *g, const float *x, int T, float *xp, float *states, float *work, Poll *poll)
{
	int H = g->hidden;

	gru_input(g, x, T, 1, xp);
	if (poll_stop(poll, (double)T * g->in * 3 * H))
		return 1;
	for (int t = 0; t < T; t++) {
		float *h = states + (size_t)t * H;

		if (t == 0)
			memset(h, 0, sizeof(float) * H);
		else
			memcpy(h, h - H, sizeof(float) * H);
		gru_step(g, DIN_GATE_PLAIN, xp + (size_t)t * 3 * H, 0, NULL, 1, h, work);
		if (poll_stop(poll, 3.0 * H * (H + 2)))
			return 1;
	}
	return 0;
}

static DinStatus
dien_history(const DinModel *m, const DinHistory *hist, float *state, float *work, Poll *poll,
             DinError *err)
{
	const DinDien *d = m->dien;
	int T = hist->T, H = d->extractor.hidden;
	DienState st;
	DienWork p;
	float *s = work, *states, *gwork;

	if (T == 0)
		return DIN_OK;
	state_layout(m, T, &st);
	/* one candidate's plan: it fits in the work of any number of candidates */
	work_plan(m, 1, &p);
	states = state + st.states;
	gwork = s + p.gwork;
	if (d->evo == DIN_EVO_GRU_POOLING) {
		/* GRU -> GRU -> attention pooling: the second GRU is history-only too */
		if (run_gru(&d->extractor, hist->keys, T, s + p.xp, s + p.states, gwork, poll) ||
		    run_gru(&d->evolution, s + p.states, T, s + p.xp, states, gwork, poll))
			return DIN_OK;
	} else if (run_gru(&d->extractor, hist->keys, T, s + p.xp, states, gwork, poll))
		return DIN_OK;
	if (d->score == DIN_DIEN_SCORE_UNIT) {
		din_unit_keys(&m->att, states, T, state + st.hk, s + p.tmp);
		if (poll_stop(poll, (double)T * H * m->att.layers[0].out))
			return DIN_OK;
	}
	if (d->evo != DIN_EVO_GRU_POOLING) {
		/* AIGRU scales the input a_t h_t; its product is linear, so scale x W^T per candidate */
		gru_input(&d->evolution, states, T, d->evo != DIN_EVO_AIGRU, state + st.xp);
		if (poll_stop(poll, (double)T * H * 3 * H))
			return DIN_OK;
		if (d->evo == DIN_EVO_AIGRU)
			gru_input_bias(&d->evolution, state + st.bias);
	}
	return DIN_OK;
}

/* The query of each candidate: its target vector, or the projection (DIEN repo's f1 + PReLU). */
static const float *
queries_of(const DinModel *m, const DienWork *p, float *s, const float *targets)
{
	const DinLayer *q = &m->dien->query;

	if (q->out == 0)
		return targets;
	nn_layer(q, targets, p->C, s + p->query);
	return s + p->query;
}

/*
 * Raw scores[C, T] of the unit on [q, h_t, q - h_t, q * h_t], its first layer split (the key
 * side hk from the history part); nonzero when poll said stop.
 */
static int
unit_scores(const DinModel *m, const DienWork *p, float *s, const float *q, const float *h,
            const float *hk, int T, Poll *poll)
{
	int H = p->H, chunk = max_int(1, p->unit_rows / T);
	float *scores = s + p->scores;

	for (int c0 = 0; c0 < p->C; c0 += chunk) {
		int nc = p->C - c0 < chunk ? p->C - c0 : chunk;

		if (din_unit_scores(&m->att, q + (size_t)c0 * H, nc, h, hk, T, p->unit_rows, s + p->hq,
		                    s + p->tmp, s + p->unit_a, s + p->unit_b, scores + (size_t)c0 * T,
		                    poll))
			return 1;
	}
	return 0;
}

/* Attention weights[C, T] of every candidate over the states h[T, H]; nonzero on a stop. */
static int
attend(const DinModel *m, const DienWork *p, float *s, const float *targets, const float *h,
       const float *hk, int T, Poll *poll)
{
	int H = p->H, C = p->C;
	float *scores = s + p->scores;

	if (m->dien->score == DIN_DIEN_SCORE_BILINEAR) {
		/* h_t W e_a: W e_a once per candidate, then one dot per step */
		float *we = s + p->query;

		nn_linear(targets, C, m->E, H, m->dien->bilinear, NULL, we);
		for (int c = 0; c < C; c++) {
			for (int t = 0; t < T; t++)
				scores[(size_t)c * T + t] = nn_dot(h + (size_t)t * H, we + (size_t)c * H, H);
			if (poll_stop(poll, (double)T * H))
				return 1;
		}
	} else if (unit_scores(m, p, s, queries_of(m, p, s, targets), h, hk, T, poll))
		return 1;
	for (int c = 0; c < C && m->att_softmax; c++) {
		nn_softmax(scores + (size_t)c * T, T);
		if (poll_stop(poll, (double)T * POLL_EXP))
			return 1;
	}
	return 0;
}

static DinStatus
dien_candidates(const DinModel *m, const float *state, int T, const float *queries, int C,
                float *work, float *interest, float *weights, Poll *poll, DinError *err)
{
	const DinDien *d = m->dien;
	DienState st;
	DienWork p;
	int H = d->extractor.hidden;
	float *s = work, *scores, *gwork;
	const float *states;

	state_layout(m, T, &st);
	work_plan(m, C, &p);
	states = state + st.states;
	scores = s + p.scores;
	gwork = s + p.gwork;
	memset(interest, 0, sizeof(float) * (size_t)C * H);
	if (T == 0)
		return DIN_OK;
	if (attend(m, &p, s, queries, states, state + st.hk, T, poll))
		return DIN_OK;
	if (d->evo == DIN_EVO_GRU_POOLING)
		for (int c = 0; c < C; c++) {
			for (int t = 0; t < T; t++) {
				float w = scores[(size_t)c * T + t];
				const float *ht = states + (size_t)t * H;
				float *u = interest + (size_t)c * H;

				for (int j = 0; j < H; j++)
					u[j] += w * ht[j];
			}
			if (poll_stop(poll, (double)T * H))
				return DIN_OK;
		}
	else {
		float *acol = s + p.acol;
		const float *xp = state + st.xp, *bias = state + st.bias;

		for (int t = 0; t < T; t++) {
			const float *xt = xp + (size_t)t * 3 * H;

			for (int c = 0; c < C; c++)
				acol[c] = scores[(size_t)c * T + t];
			if (d->evo == DIN_EVO_AIGRU) {
				float *cx = s + p.cand_xp;

				for (int c = 0; c < C; c++)
					for (int j = 0; j < 3 * H; j++)
						cx[(size_t)c * 3 * H + j] = acol[c] * xt[j] + bias[j];
				gru_step(&d->evolution, DIN_GATE_PLAIN, cx, 3 * H, NULL, C, interest, gwork);
			} else
				gru_step(&d->evolution, d->gate, xt, 0, acol, C, interest, gwork);
			if (poll_stop(poll, 3.0 * C * H * (H + 3)))
				return DIN_OK;
		}
	}
	if (weights)
		memcpy(weights, scores, sizeof(float) * (size_t)C * T);
	return DIN_OK;
}

const DinArchOps din_ops_dien = {
    .name = "dien",
    .state_floats = dien_state_floats,
    .work_floats = dien_work_floats,
    .history = dien_history,
    .candidates = dien_candidates,
};
