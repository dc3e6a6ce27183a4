/*
 * bst.c - architecture bst: the behaviour sequence (plus the candidate when appended) through
 * N transformer blocks, then the read-out (docs/FORMAT.md "architecture bst").
 *
 * Cost. Self-attention over n rows is O(n² D) per block. Without the target in the sequence
 * (DeepCTR) nothing in the blocks depends on the candidate: they are the history part, and only
 * the read-out runs per candidate. With the target appended, every behaviour row attends to the
 * candidate, so from block 1 on each candidate has its own sequence: O(L² D + L D (D + F)) per
 * candidate and block. What does not depend on the candidate is the history part: the
 * behaviour rows with their positions and their Q/K/V projections in block 0 (and block 0's
 * pre-norm). The last block computes only the rows the read-out reads: with the target
 * read-out that is one query row, so a one-block torch-rechub model costs O(L D) per candidate
 * beyond its own projections.
 *
 * A block over a long history is long work (10,001 rows are billions of multiply-adds), so
 * every row-wise step of it (projections, attention, the feed-forward) runs in pieces of rows
 * with a poll between them. Rows are independent: the pieces change no bit.
 */
#include "bst.h"
#include "arch.h"
#include "scratch.h"
#include "../nn/attention.h"
#include "../nn/self_attention.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct BstPlan {
	int M, n, D, F, wmax;
	size_t xh, x, xq, xk, lq, lk, qkv, att, proj, y, h, probs, mwork, unit_a, unit_b, scores, total;
} BstPlan;

static void
plan(const DinModel *m, BstPlan *p)
{
	const DinBst *b = m->bst;
	size_t at = 0, nD;

	memset(p, 0, sizeof(*p));
	p->M = m->max_len;
	p->n = m->max_len + 1;
	p->D = b->D;
	p->F = b->ffn_units;
	nD = (size_t)p->n * p->D;
	p->xh = take(&at, (size_t)p->M * p->D);
	p->x = take(&at, nD);
	p->xq = take(&at, nD);
	p->xk = take(&at, nD);
	p->lq = take(&at, nD);
	p->lk = take(&at, nD);
	p->qkv = take(&at, 3 * nD);
	p->att = take(&at, nD);
	p->proj = take(&at, nD);
	p->y = take(&at, nD);
	p->h = take(&at, (size_t)p->n * p->F);
	p->probs = take(&at, p->n);
	p->mwork = take(&at, p->n);
	if (b->readout == DIN_BST_READ_ATTENTION) {
		p->wmax = 4 * m->E;
		for (int l = 0; l < m->att.n_layers; l++)
			if (m->att.layers[l].out > p->wmax)
				p->wmax = m->att.layers[l].out;
		p->unit_a = take(&at, (size_t)p->M * p->wmax);
		p->unit_b = take(&at, (size_t)p->M * p->wmax);
		p->scores = take(&at, p->M);
	}
	p->total = at;
}

static size_t
bst_work_floats(const DinModel *m, int n_cand)
{
	BstPlan p;

	plan(m, &p);
	return p.total;
}

/*
 * Offsets in the state of T kept behaviours. With the target appended: the behaviour rows
 * xh [T, D] and their block-0 projections qkv [T, 3D]. Without: the blocks' output rows
 * [T, D], which the read-out pools per candidate; for mean_all (independent of the candidate
 * altogether) their mean [D].
 */
typedef struct BstState {
	size_t rows, qkv, total;
} BstState;

static void
state_layout(const DinModel *m, int T, BstState *st)
{
	const DinBst *b = m->bst;
	size_t at = 0;

	memset(st, 0, sizeof(*st));
	if (b->readout == DIN_BST_READ_MEAN_ALL) {
		st->rows = take(&at, b->D);
	} else {
		st->rows = take(&at, (size_t)T * b->D);
		if (b->target)
			st->qkv = take(&at, (size_t)T * 3 * b->D);
	}
	st->total = at;
}

static size_t
bst_state_floats(const DinModel *m, int T)
{
	BstState st;

	state_layout(m, T, &st);
	return st.total;
}

static int
slot_of(int align_end, int width, int T, int t)
{
	if (t == T)
		return width;
	return align_end ? width - T + t : t;
}

static int
bucket_of(const DinBstPosition *pos, double gap)
{
	int k = 0;

	while (k < pos->n_bounds && pos->bounds[k] <= gap)
		k++;
	return k;
}

/*
 * Row t of n sequence rows (t == T: the target) from its E-wide item vector: the item, the
 * concatenated positions, then the added ones. at_gap: the row's time gap in seconds.
 */
static void
sequence_row(const DinBst *b, int E, const float *item, int T, int t, double gap, float *row)
{
	int col = E;

	memcpy(row, item, sizeof(float) * E);
	memset(row + E, 0, sizeof(float) * (b->D - E));
	for (int k = 0; k < b->n_pos; k++) {
		const DinBstPosition *pos = &b->pos[k];
		int r = pos->time_gap ? bucket_of(pos, gap) : slot_of(pos->align_end, pos->width, T, t);
		const float *e = pos->table + (size_t)r * pos->dim;
		float *dst = pos->concat ? row + col : row;

		for (int j = 0; j < pos->dim; j++)
			dst[j] += pos->scale * e[j];
		if (pos->concat)
			col += pos->dim;
	}
}

/* qkv[n, 3D] (row = [q | k | v]) of the rows xq (queries) and xk (keys, values). */
static void
project(const DinBstBlock *blk, int D, const float *xq, const float *xk, int n, float *qkv,
        float *tmp)
{
	const float *w[3] = {blk->wq, blk->wk, blk->wv}, *bias[3] = {blk->bq, blk->bk, blk->bv};

	if (n == 0)
		return;
	if (xq == xk && blk->wk == blk->wq + (size_t)D * D && blk->wv == blk->wk + (size_t)D * D &&
	    (blk->bq == NULL || (blk->bk == blk->bq + D && blk->bv == blk->bk + D))) {
		/* PyTorch's in_proj: one product for all three */
		nn_linear(xq, n, D, 3 * D, blk->wq, blk->bq, qkv);
		return;
	}
	for (int s = 0; s < 3; s++) {
		nn_linear(s == 0 ? xq : xk, n, D, D, w[s], bias[s], tmp);
		for (int i = 0; i < n; i++)
			memcpy(qkv + (size_t)i * 3 * D + s * D, tmp + (size_t)i * D, sizeof(float) * D);
	}
}

/* project() in pieces of rows, each reported to poll; nonzero when it said stop. */
static int
project_rows(const DinBstBlock *blk, int D, const float *xq, const float *xk, int n, float *qkv,
             float *tmp, Poll *poll)
{
	int step = poll_rows(3.0 * D * D);

	for (int i = 0; i < n; i += step) {
		int k = min_int(step, n - i);

		project(blk, D, xq + (size_t)i * D, xk + (size_t)i * D, k, qkv + (size_t)i * 3 * D, tmp);
		if (poll_stop(poll, 3.0 * k * D * D))
			return 1;
	}
	return 0;
}

/*
 * Rows [i, i + k) of a block's output after attention (their attention output in s + p->att,
 * their inputs at xq): W^O, residual, first norm, feed-forward, residual, second norm, into
 * s + p->y.
 */
static void
finish_rows(const DinBst *b, const DinBstBlock *blk, const BstPlan *p, float *s, const float *xq,
            int i, int k)
{
	int D = b->D;
	size_t kD = (size_t)k * D;
	float *att = s + p->att + (size_t)i * D, *proj = s + p->proj + (size_t)i * D;
	float *y = s + p->y + (size_t)i * D, *h = s + p->h + (size_t)i * p->F;

	if (blk->wo != NULL) {
		nn_linear(att, k, D, D, blk->wo, blk->bo, proj);
		memcpy(att, proj, sizeof(float) * kD);
	}
	for (size_t j = 0; j < kD; j++)
		y[j] = att[j] + xq[(size_t)i * D + j];
	if (!b->pre_norm)
		layer_norm(y, k, D, blk->ln1_w, blk->ln1_b, b->eps);

	/* feed-forward */
	if (b->pre_norm) {
		memcpy(proj, y, sizeof(float) * kD);
		layer_norm(proj, k, D, blk->ln2_w, blk->ln2_b, b->eps);
		nn_layer(&blk->ffn1, proj, k, h);
	} else
		nn_layer(&blk->ffn1, y, k, h);
	nn_layer_product(&blk->ffn2, h, k, att);
	for (size_t j = 0; j < kD; j++)
		y[j] += att[j];
	if (!b->pre_norm)
		layer_norm(y, k, D, blk->ln2_w, blk->ln2_b, b->eps);
}

/*
 * One block over the n rows in s + p->x (T behaviours first, target last when appended):
 * output rows [r0, n) into s + p->y. The first n_pre rows' projections are pre (block 0's,
 * from the history part). probs: the last row's head-averaged weights over the n keys, or NULL.
 * Rows [n_valid, n) are DeepCTR's padded slots (mean_all): masked as keys, and as queries their
 * attention output is 0 (its query mask), so each is its own residual path. Nonzero when poll
 * said stop.
 */
static int
run_block(const DinModel *m, const BstPlan *p, float *s, int bi, int n, int n_valid, int T, int r0,
          int n_pre, const float *pre, float *probs, Poll *poll)
{
	const DinBst *b = m->bst;
	const DinBstBlock *blk = &b->blocks[bi];
	int D = b->D, nq = n - r0, n_att = (probs ? nq - 1 : nq) - (n - n_valid), step;
	float *x = s + p->x, *xq = x, *xk = x, *qkv = s + p->qkv, *att = s + p->att;
	float *in_q, *in_k;

	if (blk->pe_q != NULL) {
		/* DeepCTR re-adds its own position tables, x sqrt(D), at every block */
		float sc = sqrtf((float)D);

		xq = s + p->xq;
		xk = s + p->xk;
		for (int t = 0; t < n; t++) {
			int slot = slot_of(b->bp_align_end, b->bp_width, T, t);

			for (int j = 0; j < D; j++) {
				xq[(size_t)t * D + j] = x[(size_t)t * D + j] + sc * blk->pe_q[(size_t)slot * D + j];
				xk[(size_t)t * D + j] = x[(size_t)t * D + j] + sc * blk->pe_k[(size_t)slot * D + j];
			}
		}
	}
	in_q = xq;
	in_k = xk;
	if (b->pre_norm) {
		in_q = s + p->lq;
		memcpy(in_q + (size_t)n_pre * D, xq + (size_t)n_pre * D, sizeof(float) * (n - n_pre) * D);
		layer_norm(in_q + (size_t)n_pre * D, n - n_pre, D, blk->ln1_w, blk->ln1_b, b->eps);
		in_k = in_q;
		if (xk != xq) {
			in_k = s + p->lk;
			memcpy(in_k, xk, sizeof(float) * n * D);
			layer_norm(in_k, n, D, blk->ln1_w, blk->ln1_b, b->eps);
		}
	}
	if (n_pre > 0)
		memcpy(qkv, pre, sizeof(float) * (size_t)n_pre * 3 * D);
	if (project_rows(blk, D, in_q + (size_t)n_pre * D, in_k + (size_t)n_pre * D, n_valid - n_pre,
	                 qkv + (size_t)n_pre * 3 * D, s + p->proj, poll))
		return 1;

	/* attention of the needed query rows; the last row alone when its weights are wanted */
	step = poll_rows(2.0 * n_valid * D);
	for (int i = 0; i < n_att; i += step) {
		int k = min_int(step, n_att - i);

		nn_mha(qkv + (size_t)(r0 + i) * 3 * D, 3 * D, k, qkv + D, 3 * D, qkv + 2 * D, 3 * D,
		       n_valid, D, b->heads, NULL, att + (size_t)i * D, NULL, s + p->mwork);
		if (poll_stop(poll, 2.0 * k * n_valid * D))
			return 1;
	}
	memset(att + (size_t)(n_valid - r0) * D, 0, sizeof(float) * (n - n_valid) * D);
	if (probs)
		nn_mha(qkv + (size_t)(n - 1) * 3 * D, 3 * D, 1, qkv + D, 3 * D, qkv + 2 * D, 3 * D, n, D,
		       b->heads, NULL, att + (size_t)(nq - 1) * D, probs, s + p->mwork);

	step = poll_rows((double)D * (D + 2 * p->F));
	for (int i = 0; i < nq; i += step) {
		int k = min_int(step, nq - i);

		finish_rows(b, blk, p, s, xq + (size_t)r0 * D, i, k);
		if (poll_stop(poll, (double)k * D * (D + 2 * p->F)))
			return 1;
	}
	return 0;
}

/*
 * All blocks over the n rows in s + p->x, the first n_valid of them behaviours (or the target),
 * block 0 reading the first n_pre rows' projections from pre; the result in s + p->x, rows
 * [r_last, n). Nonzero when poll said stop.
 */
static int
run_blocks(const DinModel *m, const BstPlan *p, float *s, int n, int n_valid, int T, int n_pre,
           const float *pre, float *probs, Poll *poll)
{
	const DinBst *b = m->bst;

	for (int bi = 0; bi < b->n_blocks; bi++) {
		int last = bi == b->n_blocks - 1;
		int r0 = last && b->readout == DIN_BST_READ_TARGET ? n - 1 : 0;

		if (run_block(m, p, s, bi, n, n_valid, T, r0, bi == 0 ? n_pre : 0, pre, last ? probs : NULL,
		              poll))
			return 1;
		memcpy(s + p->x + (size_t)r0 * b->D, s + p->y, sizeof(float) * (n - r0) * b->D);
	}
	return 0;
}

/* DIN pooling (DeepCTR's attention read-out) of candidate q over the T outputs rows. */
static void
pool(const DinModel *m, const BstPlan *p, float *s, const float *q, const float *rows, int T,
     float *u, float *w)
{
	int E = m->E, width = 4 * E;
	float *cur = s + p->unit_a, *other = s + p->unit_b, *score = s + p->scores;

	for (int t = 0; t < T; t++) {
		float *z = cur + (size_t)t * 4 * E;
		const float *k = rows + (size_t)t * E;

		for (int j = 0; j < E; j++) {
			z[j] = q[j];
			z[E + j] = k[j];
			z[2 * E + j] = q[j] - k[j];
			z[3 * E + j] = q[j] * k[j];
		}
	}
	for (int l = 0; l < m->att.n_layers; l++) {
		float *swap;

		nn_layer(&m->att.layers[l], cur, T, other);
		swap = cur;
		cur = other;
		other = swap;
		width = m->att.layers[l].out;
	}
	for (int t = 0; t < T; t++) {
		score[t] = nn_dot(cur + (size_t)t * width, m->att.out_weight, width) + m->att.out_bias;
		if (m->att_scale)
			score[t] /= sqrtf((float)E);
	}
	if (m->att_softmax)
		nn_softmax(score, T);
	memset(u, 0, sizeof(float) * E);
	for (int t = 0; t < T; t++)
		for (int j = 0; j < E; j++)
			u[j] += score[t] * rows[(size_t)t * E + j];
	if (w)
		memcpy(w, score, sizeof(float) * T);
}

/* Multiply-adds of pool() per behaviour row. */
static double
pool_row_work(const DinModel *m)
{
	double work = 6.0 * m->E; /* the unit's input row, the dot, the pooling */

	for (int l = 0; l < m->att.n_layers; l++)
		work += (double)m->att.layers[l].in * m->att.layers[l].out;
	return work;
}

static void
mean_rows(const float *x, int n, int D, float *u)
{
	memset(u, 0, sizeof(float) * D);
	for (int t = 0; t < n; t++)
		for (int j = 0; j < D; j++)
			u[j] += x[(size_t)t * D + j];
	for (int j = 0; j < D && n > 0; j++)
		u[j] /= (float)n;
}

/*
 * DeepCTR's mean over all max_len slots into u[D]: the T behaviours (sequence rows in
 * s + p->xh) at slots 0..T-1, then padded slots holding row pad_row of each behaviour table
 * (post-padding; config_bst.c admits only slot-start positions). A padded row attends to
 * nothing, so its output depends on its slot alone; it is recomputed per history, once, as
 * nothing here depends on the candidate. Returns early when poll says stop.
 */
static void
mean_all(const DinModel *m, const BstPlan *p, float *s, int T, float *u, Poll *poll)
{
	const DinBst *b = m->bst;
	int D = b->D, W = m->max_len;
	float *pad = s + p->att; /* free until the blocks run */

	din_padding_key(m, b->pad_row, pad);
	memcpy(s + p->x, s + p->xh, sizeof(float) * T * D);
	/* slots as in a full window: with align start, row t of W sits at slot t */
	for (int t = T; t < W; t++)
		sequence_row(b, m->E, pad, W, t, 0.0, s + p->x + (size_t)t * D);
	if (run_blocks(m, p, s, W, T, W, 0, NULL, NULL, poll))
		return;
	mean_rows(s + p->x, W, D, u);
}

/* Behaviour rows need their times when a position is a time gap. */
static int
bst_reads_time(const DinModel *m)
{
	return m->bst->uses_time;
}

static DinStatus
bst_history(const DinModel *m, const DinHistory *h, float *state, float *work, Poll *poll,
            DinError *err)
{
	const DinBst *b = m->bst;
	int T = h->T, D = b->D, E = m->E;
	BstState st;
	BstPlan p;
	float *s = work, *xh;

	plan(m, &p);
	state_layout(m, T, &st);
	if (b->uses_time && T > 0 && h->times == NULL)
		return din_fail(err, DIN_EINVAL,
		                "This bst model embeds the time gap between each behaviour and the "
		                "target: pass history_time, one timestamp per history element.",
		                "history_time is required by this model");
	/* with the target appended the rows are state, every candidate's sequence starts with them */
	xh = b->target ? state + st.rows : s + p.xh;
	for (int t = 0; t < T; t++)
		sequence_row(b, E, h->keys + (size_t)t * E, T, t,
		             b->uses_time ? (double)(h->at - h->times[t]) / 1e6 : 0.0, xh + (size_t)t * D);

	if (b->readout == DIN_BST_READ_MEAN_ALL) {
		mean_all(m, &p, s, T, state + st.rows, poll);
		return DIN_OK;
	}
	if (!b->target) {
		/* nothing in the blocks depends on the candidate: run them once */
		memcpy(s + p.x, xh, sizeof(float) * T * D);
		if (T > 0 && run_blocks(m, &p, s, T, T, T, 0, NULL, NULL, poll))
			return DIN_OK;
		memcpy(state + st.rows, s + p.x, sizeof(float) * T * D);
		return DIN_OK;
	}
	/* block 0's projections of the behaviour rows serve every candidate */
	if (T > 0) {
		const DinBstBlock *blk = &b->blocks[0];
		const float *in = xh;

		if (b->pre_norm) {
			memcpy(s + p.lq, xh, sizeof(float) * T * D);
			layer_norm(s + p.lq, T, D, blk->ln1_w, blk->ln1_b, b->eps);
			in = s + p.lq;
		}
		project_rows(blk, D, in, in, T, state + st.qkv, s + p.proj, poll);
	}
	return DIN_OK;
}

static DinStatus
bst_candidates(const DinModel *m, const float *state, int T, const float *queries, int C,
               float *work, float *interest, float *weights, Poll *poll, DinError *err)
{
	const DinBst *b = m->bst;
	BstState st;
	BstPlan p;
	float *s = work;
	const float *rows;
	int D = b->D, E = m->E;

	plan(m, &p);
	state_layout(m, T, &st);
	rows = state + st.rows;
	if (b->readout == DIN_BST_READ_MEAN_ALL) {
		for (int c = 0; c < C; c++) {
			memcpy(interest + (size_t)c * D, rows, sizeof(float) * D);
			for (int t = 0; weights && t < T; t++)
				weights[(size_t)c * T + t] = 1.0f / (float)m->max_len;
		}
		return DIN_OK;
	}
	if (!b->target) {
		double readout_work =
		    (double)T * (b->readout == DIN_BST_READ_ATTENTION ? pool_row_work(m) : D + 1);

		for (int c = 0; c < C; c++) {
			float *u = interest + (size_t)c * D, *w = weights ? weights + (size_t)c * T : NULL;

			if (b->readout == DIN_BST_READ_ATTENTION && T > 0)
				pool(m, &p, s, queries + (size_t)c * E, rows, T, u, w);
			else if (b->readout == DIN_BST_READ_ATTENTION)
				memset(u, 0, sizeof(float) * D);
			else {
				mean_rows(rows, T, D, u);
				for (int t = 0; w && t < T; t++)
					w[t] = 1.0f / (float)T;
			}
			if (poll_stop(poll, readout_work))
				return DIN_OK;
		}
		return DIN_OK;
	}
	for (int c = 0; c < C; c++) {
		float *u = interest + (size_t)c * D;
		int n = T + 1;

		memcpy(s + p.x, rows, sizeof(float) * T * D);
		sequence_row(b, E, queries + (size_t)c * E, T, T, 0.0, s + p.x + (size_t)T * D);
		if (run_blocks(m, &p, s, n, n, T, T, state + st.qkv, weights ? s + p.probs : NULL, poll))
			return DIN_OK;
		if (b->readout == DIN_BST_READ_TARGET)
			memcpy(u, s + p.x + (size_t)T * D, sizeof(float) * D);
		else
			mean_rows(s + p.x, n, D, u);
		if (weights)
			memcpy(weights + (size_t)c * T, s + p.probs, sizeof(float) * T);
		if (poll_stop(poll, (double)n * D))
			return DIN_OK;
	}
	return DIN_OK;
}

const DinArchOps din_ops_bst = {
    .name = "bst",
    .reads_time = bst_reads_time,
    .state_floats = bst_state_floats,
    .work_floats = bst_work_floats,
    .history = bst_history,
    .candidates = bst_candidates,
};
