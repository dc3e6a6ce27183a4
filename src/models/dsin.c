/*
 * dsin.c - architecture dsin (docs/FORMAT.md "architecture dsin"): the kept behaviours are
 * divided into sessions, each session (padded to T rows with the padding behaviour) goes
 * through the self-attention extractor and is pooled into I_k, a Bi-LSTM runs across the K
 * session interests, and two activation units pool I and the Bi-LSTM outputs for each
 * candidate.
 *
 * Everything up to the units depends on the history only: it is the history part, and its
 * state is small (the K session interests, the Bi-LSTM outputs and where each session lies).
 */
#include "dsin.h"
#include "arch.h"
#include "scratch.h"

#include <string.h>

/*
 * Rows (candidate, session) of one pass through a unit: enough for the kernels, few enough
 * that a poll comes soon whatever the number of candidates. Rows are independent, so the
 * pieces change no bit.
 */
#define UNIT_ROWS 2048

/*
 * Offsets in the state: the session interests I [K, E], the merged Bi-LSTM outputs [K, W],
 * then the sessions as floats (exact: every value is below 2^24): their count n, and the
 * start and length of each in the kept behaviours (din_explain's weights).
 */
typedef struct DsinState {
	size_t interest, inter, n, start, len, total;
} DsinState;

static void
state_layout(const DinModel *m, DsinState *st)
{
	const DinDsin *d = m->dsin;
	int K = d->rule.count;
	size_t at = 0;

	st->interest = take(&at, (size_t)K * m->E);
	st->inter = take(&at, (size_t)K * d->inter_w);
	st->n = take(&at, 1);
	st->start = take(&at, K);
	st->len = take(&at, K);
	st->total = at;
}

static size_t
dsin_state_floats(const DinModel *m, int T)
{
	DsinState st;

	state_layout(m, &st);
	return st.total;
}

typedef struct DsinPlan {
	int K, T, E, W, Hl, C, unit_cands, unit_w;
	size_t x, sa_out, sa_work, pad, lin, fw, bw, lwork, scores, qproj, unit_a, unit_b, total;
} DsinPlan;

static void
plan(const DinModel *m, int C, DsinPlan *p)
{
	const DinDsin *d = m->dsin;
	int K = d->rule.count, T = d->rule.length, E = m->E, Hl = max_int(d->lstm_hidden, 1);
	size_t at = 0;

	memset(p, 0, sizeof(*p));
	p->K = K;
	p->T = T;
	p->E = E;
	p->W = d->inter_w;
	p->Hl = Hl;
	p->C = C;
	p->unit_w = 4 * max_int(E, p->W);
	for (int u = 0; u < 2; u++)
		for (int l = 0; l < d->unit[u].n_layers; l++)
			p->unit_w = max_int(p->unit_w, d->unit[u].layers[l].out);
	p->unit_cands = min_int(C, max_int(1, UNIT_ROWS / max_int(K, 1)));
	p->x = take(&at, (size_t)T * E);
	p->sa_out = take(&at, (size_t)T * E);
	p->sa_work = take(&at, self_attention_work_floats(&d->sa));
	p->pad = take(&at, E);
	p->lin = take(&at, (size_t)K * max_int(E, Hl));
	p->fw = take(&at, (size_t)K * Hl);
	p->bw = take(&at, (size_t)K * Hl);
	p->lwork = take(&at, (size_t)K * 4 * max_int(E, Hl) + 6 * (size_t)Hl);
	p->scores = take(&at, (size_t)C * K);
	p->qproj = take(&at, (size_t)C * max_int(E, p->W));
	p->unit_a = take(&at, (size_t)p->unit_cands * K * p->unit_w);
	p->unit_b = take(&at, (size_t)p->unit_cands * K * p->unit_w);
	p->total = at;
}

static size_t
dsin_work_floats(const DinModel *m, int n_cand)
{
	DsinPlan p;

	plan(m, max_int(n_cand, 1), &p);
	return p.total;
}

/*
 * The padding behaviour: row 0 of every behaviour table, as DeepCTR pads sessions with id 0
 * and Keras' mask_zero still looks row 0 up.
 */
static void
padding_vector(const DinModel *m, float *pad)
{
	for (int k = 0; k < m->n_slots; k++) {
		const DinField *f = &m->fields[m->behaviour[k]];

		memcpy(pad + m->slot_offset[k], f->weight, sizeof(float) * f->dim);
	}
}

/*
 * I_k of session k (len rows of keys starting at rows, the rest padding) into out[E]. A session
 * holds at most DSIN_MAX_SESSION_LEN rows: one is a few milliseconds at most between polls.
 */
static void
session_interest(const DinModel *m, const DsinPlan *p, float *s, int k, const float *rows, int len,
                 float *out)
{
	const DinDsin *d = m->dsin;
	int T = p->T, E = p->E, n;
	float *x = s + p->x, *y = s + p->sa_out;

	for (int t = 0; t < T; t++) {
		float *xt = x + (size_t)t * E;

		memcpy(xt, t < len ? rows + (size_t)t * E : s + p->pad, sizeof(float) * E);
		if (d->enc == DSIN_ENC_BIAS)
			for (int j = 0; j < E; j++)
				xt[j] += d->bias_session[k] + d->bias_position[t] + d->bias_item[j];
	}
	self_attention_run(&d->sa, x, len, y, s + p->sa_work);
	n = d->pool_valid ? len : T;
	memset(out, 0, sizeof(float) * E);
	for (int t = 0; t < n; t++)
		for (int j = 0; j < E; j++)
			out[j] += y[(size_t)t * E + j];
	for (int j = 0; n > 0 && j < E; j++)
		out[j] /= (float)n;
}

/* The merged Bi-LSTM outputs inter[K, W] over the first `steps` session interests I. */
static void
interacting(const DinModel *m, const DsinPlan *p, float *s, const float *I, int steps, float *inter)
{
	const DinDsin *d = m->dsin;
	int H = d->lstm_hidden, W = p->W, E = p->E;
	float *lin = s + p->lin;

	memset(inter, 0, sizeof(float) * (size_t)p->K * W);
	if (steps == 0)
		return;
	for (int dir = 0; dir < 2; dir++) {
		float *out = s + (dir ? p->bw : p->fw);

		memcpy(lin, I, sizeof(float) * (size_t)steps * E);
		for (int l = 0; l < d->lstm_layers; l++) {
			lstm_run(dir ? &d->bw[l] : &d->fw[l], lin, steps, dir, out, s + p->lwork);
			memcpy(lin, out, sizeof(float) * (size_t)steps * H);
		}
	}
	for (int k = 0; k < steps; k++) {
		const float *f = s + p->fw + (size_t)k * H, *b = s + p->bw + (size_t)k * H;
		float *h = inter + (size_t)k * W;

		for (int j = 0; j < H; j++)
			switch (d->merge) {
			case DSIN_MERGE_AVE:
				h[j] = (f[j] + b[j]) / 2.0f;
				break;
			case DSIN_MERGE_CONCAT:
				h[j] = f[j];
				h[H + j] = b[j];
				break;
			case DSIN_MERGE_SUM:
				h[j] = f[j] + b[j];
				break;
			case DSIN_MERGE_MUL:
				h[j] = f[j] * b[j];
				break;
			case DSIN_MERGE_FW:
				h[j] = f[j];
				break;
			case DSIN_MERGE_BW:
				h[j] = b[j];
				break;
			}
	}
}

/* Raw scores[C, K] of unit u over keys[K, kw] for the queries[C, E]. */
static void
unit_scores(const DinDsinUnit *u, const DsinPlan *p, float *s, const float *keys,
            const float *queries, int C, float *scores)
{
	int K = p->K, E = p->E, kw = u->key_w;

	if (u->bilinear) {
		float *wq = s + p->qproj;

		nn_linear(queries, C, E, kw, u->bilinear_w, NULL, wq);
		for (int c = 0; c < C; c++)
			for (int k = 0; k < K; k++)
				scores[(size_t)c * K + k] = nn_dot(keys + (size_t)k * kw, wq + (size_t)c * kw, kw);
	} else {
		float *cur = s + p->unit_a, *other = s + p->unit_b;
		int width = 4 * E;

		for (int c = 0; c < C; c++)
			for (int k = 0; k < K; k++) {
				float *z = cur + ((size_t)c * K + k) * 4 * E;
				const float *q = queries + (size_t)c * E, *h = keys + (size_t)k * E;

				for (int j = 0; j < E; j++) {
					z[j] = q[j];
					z[E + j] = h[j];
					z[2 * E + j] = q[j] - h[j];
					z[3 * E + j] = q[j] * h[j];
				}
			}
		for (int l = 0; l < u->n_layers; l++) {
			float *swap;

			nn_layer(&u->layers[l], cur, C * K, other);
			swap = cur;
			cur = other;
			other = swap;
			width = u->layers[l].out;
		}
		for (int i = 0; i < C * K; i++)
			scores[i] = nn_dot(cur + (size_t)i * width, u->out_w, width) + u->out_b;
	}
}

/*
 * Weights scores[C, K] of unit u over keys[K, kw] for the candidates' queries[C, E], normalized
 * over the n valid sessions, and the pooled out[c] = sum_k w_ck key_k (row stride ostride), in
 * pieces of candidates; nonzero when poll said stop.
 */
static int
unit_pool(const DinDsinUnit *u, const DsinPlan *p, float *s, const float *keys, int n,
          const float *queries, float *out, int ostride, Poll *poll)
{
	int K = p->K, E = p->E, kw = u->key_w;
	double row_work = u->bilinear ? (double)kw * (E + 2) : 4.0 * E + kw;

	for (int l = 0; !u->bilinear && l < u->n_layers; l++)
		row_work += (double)u->layers[l].in * u->layers[l].out + u->layers[l].out;
	for (int c0 = 0; c0 < p->C; c0 += p->unit_cands) {
		int nc = min_int(p->unit_cands, p->C - c0);

		unit_scores(u, p, s, keys, queries + (size_t)c0 * E, nc, s + p->scores + (size_t)c0 * K);
		for (int c = c0; c < c0 + nc; c++) {
			float *w = s + p->scores + (size_t)c * K, *o = out + (size_t)c * ostride;

			/* DeepCTR's masked softmax: with no valid session every score ties, so 1/K each */
			for (int k = n; k < K; k++)
				w[k] = u->softmax ? DIN_ATT_MASKED : 0.0f;
			if (u->softmax)
				nn_softmax(w, K);
			memset(o, 0, sizeof(float) * kw);
			for (int k = 0; k < K; k++)
				for (int j = 0; j < kw; j++)
					o[j] += w[k] * keys[(size_t)k * kw + j];
		}
		if (poll_stop(poll, nc * K * row_work))
			return 1;
	}
	return 0;
}

/* Sessions are divided by the behaviours' times, before the target's. */
static int
dsin_reads_time(const DinModel *m)
{
	return 1;
}

static DinStatus
dsin_history(const DinModel *m, const DinHistory *h, float *state, float *work, Poll *poll,
             DinError *err)
{
	const DinDsin *d = m->dsin;
	int start[DSIN_MAX_SESSIONS], len[DSIN_MAX_SESSIONS], n = 0, E = m->E, T = h->T;
	DsinState st;
	DsinPlan p;
	float *s = work, *I;
	DinStatus rc;

	state_layout(m, &st);
	plan(m, 1, &p);
	I = state + st.interest;
	if (T > 0 && h->times == NULL)
		return din_fail(err, DIN_EINVAL,
		                "Architecture dsin divides the history into sessions by time; pass "
		                "history_time with one time per behaviour.",
		                "history_time is required for a dsin model");
	if (T > 0 && (rc = din_sessions(&d->rule, h->times, T, h->at, start, len, &n, err)) != DIN_OK)
		return rc;
	state[st.n] = (float)n;
	for (int k = 0; k < n; k++) {
		state[st.start + k] = (float)start[k];
		state[st.len + k] = (float)len[k];
	}
	padding_vector(m, s + p.pad);
	for (int k = 0; k < p.K; k++) {
		session_interest(m, &p, s, k, k < n ? h->keys + (size_t)start[k] * E : NULL,
		                 k < n ? len[k] : 0, I + (size_t)k * E);
		if (poll_stop(poll, (double)p.T * E * (4 * E + 2 * p.T + 2 * d->sa.ffn_units)))
			return DIN_OK;
	}
	/* the Bi-LSTM runs over at most DSIN_MAX_SESSIONS steps: no poll inside */
	if (d->has_lstm)
		interacting(m, &p, s, I, d->steps_valid ? n : p.K, state + st.inter);
	return DIN_OK;
}

static DinStatus
dsin_candidates(const DinModel *m, const float *state, int T, const float *queries, int C,
                float *work, float *interest, float *weights, Poll *poll, DinError *err)
{
	const DinDsin *d = m->dsin;
	int E = m->E, n;
	DsinState st;
	DsinPlan p;
	float *s = work;

	state_layout(m, &st);
	plan(m, C, &p);
	n = (int)state[st.n];
	if (d->has_lstm && unit_pool(&d->unit[1], &p, s, state + st.inter, n, queries, interest + E,
	                             m->att_width, poll))
		return DIN_OK;
	/* the first unit last, so its weights stay in scores for din_explain */
	if (unit_pool(&d->unit[0], &p, s, state + st.interest, n, queries, interest, m->att_width,
	              poll))
		return DIN_OK;
	if (weights) {
		memset(weights, 0, sizeof(float) * (size_t)C * T);
		for (int c = 0; c < C; c++)
			for (int k = 0; k < n; k++) {
				int start = (int)state[st.start + k], len = (int)state[st.len + k];

				for (int t = start; t < start + len; t++)
					weights[(size_t)c * T + t] = s[p.scores + (size_t)c * p.K + k];
			}
	}
	return DIN_OK;
}

const DinArchOps din_ops_dsin = {
    .name = "dsin",
    .reads_time = dsin_reads_time,
    .state_floats = dsin_state_floats,
    .work_floats = dsin_work_floats,
    .history = dsin_history,
    .candidates = dsin_candidates,
};
