/*
 * test_transformer.c - the transformer kernels (nn_mha, layer_norm) and BST's blocks (its
 * history and candidate parts, din_ops_bst) against a deliberately naive double-precision
 * reference written here.
 *
 * The reference follows docs/FORMAT.md "architecture bst" literally: full score matrices, a
 * masked key gets DeepCTR's score -2^32 + 1, a padded query row's weights are multiplied by 0,
 * and every product is a plain triple loop. The kernels under test instead skip masked keys
 * and compute only the rows they need, so agreement checks those shortcuts too.
 */
#include "unit.h"

#include "format/format.h"
#include "models/arch.h"
#include "models/bst.h"
#include "nn/attention.h"
#include "nn/nn.h"
#include "nn/self_attention.h"

#include <stdlib.h>

#define TOL 1e-5
#define MASKED_SCORE (-4294967295.0) /* -2^32 + 1 */

static uint64_t rng_state = 88172645463325252ULL;

static double
uniform(double lo, double hi)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

static float *
random_floats(size_t n, double lo, double hi)
{
	float *x = malloc(sizeof(float) * (n ? n : 1));

	for (size_t i = 0; i < n; i++)
		x[i] = (float)uniform(lo, hi);
	return x;
}

/* ---- the naive reference ------------------------------------------------------------------ */

/* y[n, out] = x[n, in] w[out, in]^T + b */
static void
ref_linear(const double *x, int n, int in, int out, const float *w, const float *b, double *y)
{
	for (int i = 0; i < n; i++)
		for (int o = 0; o < out; o++) {
			double acc = b ? b[o] : 0.0;

			for (int k = 0; k < in; k++)
				acc += x[i * in + k] * (double)w[o * in + k];
			y[i * out + o] = acc;
		}
}

static void
ref_layer_norm(double *x, int n, int D, const float *w, const float *b, double eps)
{
	for (int i = 0; i < n; i++) {
		double mu = 0.0, var = 0.0;

		for (int j = 0; j < D; j++)
			mu += x[i * D + j];
		mu /= D;
		for (int j = 0; j < D; j++)
			var += (x[i * D + j] - mu) * (x[i * D + j] - mu);
		var /= D;
		for (int j = 0; j < D; j++)
			x[i * D + j] = (x[i * D + j] - mu) / sqrt(var + eps) * w[j] + b[j];
	}
}

/*
 * out[nq, D] and probs[nq, nk] (head average) of DeepCTR's masked attention: keys j with
 * !key_valid[j] score -2^32 + 1; query rows i with !query_valid[i] get all-zero weights.
 */
static void
ref_mha(const double *Q, const double *K, const double *V, int nq, int nk, int D, int heads,
        const unsigned char *key_valid, const unsigned char *query_valid, double *out,
        double *probs)
{
	int d = D / heads;
	double *s = malloc(sizeof(double) * (nk ? nk : 1));

	for (int i = 0; i < nq * D; i++)
		out[i] = 0.0;
	for (int i = 0; i < nq * nk; i++)
		probs[i] = 0.0;
	for (int h = 0; h < heads; h++)
		for (int i = 0; i < nq; i++) {
			double top = -INFINITY, sum = 0.0;

			for (int j = 0; j < nk; j++) {
				double dot = 0.0;

				for (int c = 0; c < d; c++)
					dot += Q[i * D + h * d + c] * K[j * D + h * d + c];
				s[j] = (key_valid && !key_valid[j]) ? MASKED_SCORE : dot / sqrt((double)d);
				top = s[j] > top ? s[j] : top;
			}
			for (int j = 0; j < nk; j++)
				sum += exp(s[j] - top);
			for (int j = 0; j < nk; j++) {
				double a = exp(s[j] - top) / sum;

				if (query_valid && !query_valid[i])
					a *= 0.0;
				for (int c = 0; c < d; c++)
					out[i * D + h * d + c] += a * V[j * D + h * d + c];
				probs[i * nk + j] += a / heads;
			}
		}
	free(s);
}

/* ---- nn_mha ------------------------------------------------------------------------------- */

/*
 * nq queries over nk keys, D = 12, with q, k, v in three buffers of different row strides;
 * valid: NULL or the key mask. Every query row sees at least one valid key unless none is.
 */
static void
check_mha(int nq, int nk, int heads, const unsigned char *valid)
{
	int D = 12, ldq = D + 3, ldk = 2 * D, ldv = D + 5;
	float *q = random_floats((size_t)nq * ldq, -1.5, 1.5);
	float *k = random_floats((size_t)nk * ldk, -1.5, 1.5);
	float *v = random_floats((size_t)nk * ldv, -2, 2);
	float *out = malloc(sizeof(float) * nq * D), *probs = malloc(sizeof(float) * nq * nk);
	float *work = malloc(sizeof(float) * nk);
	double *Q = malloc(sizeof(double) * nq * D), *K = malloc(sizeof(double) * nk * D);
	double *V = malloc(sizeof(double) * nk * D), *ro = malloc(sizeof(double) * nq * D);
	double *rp = malloc(sizeof(double) * nq * nk);
	NnMhaMask mask = {.key_valid = valid};
	int any = 0;

	for (int i = 0; i < nq; i++)
		for (int c = 0; c < D; c++)
			Q[i * D + c] = q[i * ldq + c];
	for (int j = 0; j < nk; j++)
		for (int c = 0; c < D; c++) {
			K[j * D + c] = k[j * ldk + c];
			V[j * D + c] = v[j * ldv + c];
		}
	for (int j = 0; j < nk; j++)
		any |= valid == NULL || valid[j];
	ref_mha(Q, K, V, nq, nk, D, heads, valid, NULL, ro, rp);
	nn_mha(q, ldq, nq, k, ldk, v, ldv, nk, D, heads, &mask, out, probs, work);
	for (int i = 0; i < nq; i++) {
		double total = 0.0;

		for (int c = 0; c < D; c++)
			CHECK_CLOSE(out[i * D + c], any ? ro[i * D + c] : 0.0, TOL);
		for (int j = 0; j < nk; j++) {
			CHECK_CLOSE(probs[i * nk + j], any ? rp[i * nk + j] : 0.0, TOL);
			if (valid && !valid[j])
				CHECK(probs[i * nk + j] == 0.0f);
			total += probs[i * nk + j];
		}
		CHECK_CLOSE(total, any ? 1.0 : 0.0, TOL);
	}
	/* without probs the output is the same */
	nn_mha(q, ldq, nq, k, ldk, v, ldv, nk, D, heads, &mask, out, NULL, work);
	for (int i = 0; i < nq * D; i++)
		CHECK_CLOSE(out[i], any ? ro[i] : 0.0, TOL);
	free(q), free(k), free(v), free(out), free(probs), free(work);
	free(Q), free(K), free(V), free(ro), free(rp);
}

static void
test_mha_heads_and_strides(void)
{
	static const int heads[] = {1, 2, 3, 4, 6, 12};

	for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
		check_mha(5, 7, heads[h], NULL);
		check_mha(1, 1, heads[h], NULL);
		check_mha(9, 3, heads[h], NULL);
	}
}

static void
test_mha_key_mask(void)
{
	static const unsigned char some[7] = {1, 0, 1, 1, 0, 0, 1};
	static const unsigned char one[4] = {0, 0, 1, 0};
	static const unsigned char none[3] = {0, 0, 0};

	check_mha(4, 7, 3, some);
	check_mha(4, 7, 1, some);
	check_mha(2, 4, 4, one);
	/* no valid key: zero rows and zero weights (the reference would pool uniformly) */
	check_mha(3, 3, 2, none);
}

/* The weights a head-averaged probs row reports equal the mean of per-head softmaxes. */
static void
test_mha_probs_are_head_average(void)
{
	/* two heads whose scores differ: head 0 prefers key 0, head 1 key 1 */
	const float q[4] = {2, 0, 0, 2};
	const float k[8] = {1, 0, 0, 0, 0, 0, 0, 1};
	const float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	float out[4], probs[2], work[2];
	double s = 2.0 / sqrt(2.0), p_hi = exp(s) / (exp(s) + 1.0);

	nn_mha(q, 4, 1, k, 4, v, 4, 2, 4, 2, NULL, out, probs, work);
	CHECK_CLOSE(probs[0], 0.5 * (p_hi + (1 - p_hi)), TOL);
	CHECK_CLOSE(probs[1], 0.5, TOL);
	CHECK_CLOSE(out[0], p_hi * 1 + (1 - p_hi) * 5, TOL);
	CHECK_CLOSE(out[3], (1 - p_hi) * 4 + p_hi * 8, TOL);
}

/* ---- layer norm --------------------------------------------------------------------------- */

static void
test_transformer_layer_norm(void)
{
	static const double eps[] = {1e-9, 1e-6, 1e-5, 1e-3};
	int n = 6, D = 10;

	for (size_t e = 0; e < sizeof(eps) / sizeof(eps[0]); e++) {
		float *x = random_floats((size_t)n * D, -3, 3);
		float *w = random_floats(D, 0.5, 1.5), *b = random_floats(D, -0.5, 0.5);
		double *r = malloc(sizeof(double) * n * D);

		/* row 1 shifted far from 0, row 2 constant (variance 0: the output is the bias) */
		for (int j = 0; j < D; j++) {
			x[D + j] += 10.0f;
			x[2 * D + j] = 0.75f;
		}
		for (int i = 0; i < n * D; i++)
			r[i] = x[i];
		ref_layer_norm(r, n, D, w, b, eps[e]);
		layer_norm(x, n, D, w, b, (float)eps[e]);
		for (int i = 0; i < n * D; i++)
			CHECK_CLOSE(x[i], r[i], 2 * TOL);
		for (int j = 0; j < D; j++)
			CHECK_CLOSE(x[2 * D + j], b[j], TOL);
		free(x), free(w), free(b), free(r);
	}
}

/* ---- BST blocks through its history and candidate parts ----------------------------------- */

typedef struct Case {
	int target, deepctr, blocks, pre, shared, heads, leaky, ffn_bias, block_pos, index_pos;
	int align_end;
	DinBstReadout readout;
	float eps;
} Case;

enum { E_ = 6, ROWS = 20, MAXLEN = 5, FFN = 10, NC = 2 };

typedef struct Built {
	DinModel m;
	DinField field;
	DinBst *b;
	float *table, *pos_table;
	float *tensors[16 * 4];
	int n_tensors;
} Built;

static float *
keep(Built *B, float *x)
{
	B->tensors[B->n_tensors++] = x;
	return x;
}

static void
build(Built *B, const Case *cs)
{
	DinModel *m = &B->m;
	DinBst *b = calloc(1, sizeof(DinBst) + (size_t)cs->blocks * sizeof(DinBstBlock));
	int D = E_;

	memset(B, 0, sizeof(*B));
	B->b = b;
	B->table = random_floats((size_t)ROWS * E_, -1, 1);
	snprintf(B->field.name, sizeof(B->field.name), "item");
	B->field.rows = ROWS;
	B->field.dim = E_;
	B->field.weight = B->table;
	m->arch = DIN_ARCH_BST;
	m->max_len = MAXLEN;
	m->n_fields = 1;
	m->fields = &B->field;
	m->n_slots = 1;
	m->slot_offset[1] = E_;
	m->E = E_;
	m->bst = b;
	b->target = cs->target;
	b->D = D;
	b->heads = cs->heads;
	b->n_blocks = cs->blocks;
	b->ffn_units = FFN;
	b->pre_norm = cs->pre;
	b->eps = cs->eps;
	b->readout = cs->readout;
	b->pad_row = 3;
	if (cs->index_pos) {
		DinBstPosition *p = &b->pos[0];

		b->n_pos = 1;
		p->dim = D;
		p->align_end = cs->align_end;
		p->width = MAXLEN;
		p->scale = 0.5f;
		p->table = B->pos_table = random_floats((size_t)(MAXLEN + (cs->target ? 1 : 0)) * D, -1, 1);
	}
	if (cs->block_pos)
		b->bp_width = MAXLEN + 1; /* wider than the window, as a trained table may be */
	for (int i = 0; i < cs->blocks; i++) {
		DinBstBlock *k = &b->blocks[i];

		k->wq = keep(B, random_floats((size_t)D * D, -0.8, 0.8));
		k->wk = keep(B, random_floats((size_t)D * D, -0.8, 0.8));
		k->wv = keep(B, random_floats((size_t)D * D, -0.8, 0.8));
		if (!cs->deepctr) {
			k->bq = keep(B, random_floats(D, -0.3, 0.3));
			k->bk = keep(B, random_floats(D, -0.3, 0.3));
			k->bv = keep(B, random_floats(D, -0.3, 0.3));
			k->wo = keep(B, random_floats((size_t)D * D, -0.6, 0.6));
			k->bo = keep(B, random_floats(D, -0.3, 0.3));
		}
		k->ffn1.in = D;
		k->ffn1.out = FFN;
		k->ffn1.weight = keep(B, random_floats((size_t)FFN * D, -0.6, 0.6));
		k->ffn1.bias = cs->ffn_bias ? keep(B, random_floats(FFN, -0.3, 0.3)) : NULL;
		k->ffn1.act.kind = cs->leaky ? DIN_ACT_LEAKY_RELU : DIN_ACT_RELU;
		k->ffn1.act.units = FFN;
		k->ffn1.act.slope = 0.01f;
		k->ffn2.in = FFN;
		k->ffn2.out = D;
		k->ffn2.weight = keep(B, random_floats((size_t)D * FFN, -0.6, 0.6));
		k->ffn2.bias = cs->ffn_bias ? keep(B, random_floats(D, -0.3, 0.3)) : NULL;
		k->ln1_w = keep(B, random_floats(D, 0.7, 1.3));
		k->ln1_b = keep(B, random_floats(D, -0.2, 0.2));
		k->ln2_w = cs->shared ? k->ln1_w : keep(B, random_floats(D, 0.7, 1.3));
		k->ln2_b = cs->shared ? k->ln1_b : keep(B, random_floats(D, -0.2, 0.2));
		if (cs->block_pos) {
			k->pe_q = keep(B, random_floats((size_t)b->bp_width * D, -0.3, 0.3));
			k->pe_k = keep(B, random_floats((size_t)b->bp_width * D, -0.3, 0.3));
		}
	}
}

static void
unbuild(Built *B)
{
	for (int i = 0; i < B->n_tensors; i++)
		free(B->tensors[i]);
	free(B->table);
	free(B->pos_table);
	free(B->b);
}

/* One block of the reference over X[n, D] (rows >= n_valid padded), in place. */
static void
ref_block(const DinBst *b, const DinBstBlock *k, double *X, int n, int n_valid, double *probs)
{
	int D = b->D, F = b->ffn_units;
	size_t nD = (size_t)n * D;
	double *xq = malloc(sizeof(double) * nD), *xk = malloc(sizeof(double) * nD);
	double *iq = malloc(sizeof(double) * nD), *ik = malloc(sizeof(double) * nD);
	double *Q = malloc(sizeof(double) * nD), *K = malloc(sizeof(double) * nD);
	double *V = malloc(sizeof(double) * nD), *A = malloc(sizeof(double) * nD);
	double *R = malloc(sizeof(double) * nD), *H = malloc(sizeof(double) * n * F);
	double *P = malloc(sizeof(double) * n * n), *t = malloc(sizeof(double) * nD);
	unsigned char *valid = malloc(n);

	for (int i = 0; i < n; i++)
		valid[i] = i < n_valid;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < D; j++) {
			/* post-padding: row i sits at slot i (the callers use align start with pe) */
			double sq = k->pe_q ? sqrt((double)D) * k->pe_q[i * D + j] : 0.0;
			double sk = k->pe_k ? sqrt((double)D) * k->pe_k[i * D + j] : 0.0;

			xq[i * D + j] = X[i * D + j] + sq;
			xk[i * D + j] = X[i * D + j] + sk;
		}
	memcpy(iq, xq, sizeof(double) * nD);
	memcpy(ik, xk, sizeof(double) * nD);
	if (b->pre_norm) {
		ref_layer_norm(iq, n, D, k->ln1_w, k->ln1_b, b->eps);
		ref_layer_norm(ik, n, D, k->ln1_w, k->ln1_b, b->eps);
	}
	ref_linear(iq, n, D, D, k->wq, k->bq, Q);
	ref_linear(ik, n, D, D, k->wk, k->bk, K);
	ref_linear(ik, n, D, D, k->wv, k->bv, V);
	ref_mha(Q, K, V, n, n, D, b->heads, valid, valid, A, P);
	if (probs)
		memcpy(probs, P, sizeof(double) * n * n);
	if (k->wo) {
		ref_linear(A, n, D, D, k->wo, k->bo, t);
		memcpy(A, t, sizeof(double) * nD);
	}
	for (size_t i = 0; i < nD; i++)
		R[i] = xq[i] + A[i];
	if (!b->pre_norm)
		ref_layer_norm(R, n, D, k->ln1_w, k->ln1_b, b->eps);
	memcpy(t, R, sizeof(double) * nD);
	if (b->pre_norm)
		ref_layer_norm(t, n, D, k->ln2_w, k->ln2_b, b->eps);
	ref_linear(t, n, D, F, k->ffn1.weight, k->ffn1.bias, H);
	for (int i = 0; i < n * F; i++)
		if (H[i] < 0)
			H[i] *= k->ffn1.act.kind == DIN_ACT_LEAKY_RELU ? (double)k->ffn1.act.slope : 0.0;
	ref_linear(H, n, F, D, k->ffn2.weight, k->ffn2.bias, t);
	for (size_t i = 0; i < nD; i++)
		R[i] += t[i];
	if (!b->pre_norm)
		ref_layer_norm(R, n, D, k->ln2_w, k->ln2_b, b->eps);
	memcpy(X, R, sizeof(double) * nD);
	free(xq), free(xk), free(iq), free(ik), free(Q), free(K), free(V), free(A), free(R);
	free(H), free(P), free(t), free(valid);
}

/*
 * The reference interest [D] and weights [T] of candidate q over behaviours keys[T, E]:
 * mean_all builds the full max_len window with padded rows of table row pad_row.
 */
static void
ref_interest(const Built *B, const float *keys, int T, const float *q, double *u, double *w)
{
	const DinBst *b = B->b;
	int D = b->D, all = b->readout == DIN_BST_READ_MEAN_ALL;
	int n = all ? MAXLEN : T + (b->target ? 1 : 0), n_valid = all ? T : n;
	double *X = malloc(sizeof(double) * (n ? n : 1) * D);
	double *P = malloc(sizeof(double) * (n ? n * n : 1));

	for (int t = 0; t < n; t++) {
		const float *item =
		    t < T ? keys + (size_t)t * E_ : (t == T && b->target ? q : B->table + b->pad_row * E_);

		for (int j = 0; j < D; j++) {
			double pos = 0.0;

			if (b->n_pos) {
				const DinBstPosition *p = &b->pos[0];
				int slot = t == T && b->target ? p->width : (p->align_end ? p->width - T + t : t);

				pos = p->scale * p->table[slot * D + j];
			}
			X[t * D + j] = item[j] + pos;
		}
	}
	for (int bi = 0; bi < b->n_blocks && n > 0; bi++)
		ref_block(b, &b->blocks[bi], X, n, n_valid, P);
	for (int j = 0; j < D; j++)
		u[j] = 0.0;
	if (b->readout == DIN_BST_READ_TARGET)
		for (int j = 0; j < D; j++)
			u[j] = X[T * D + j];
	else
		for (int t = 0; t < n_valid || (all && t < n); t++)
			for (int j = 0; j < D; j++)
				u[j] += X[t * D + j] / (all ? n : n_valid);
	for (int t = 0; t < T; t++)
		w[t] = all ? 1.0 / n : b->target ? P[T * n + t] : 1.0 / T;
	free(X), free(P);
}

static void
check_case(const Case *cs)
{
	static const int lengths[] = {0, 1, 3, MAXLEN};
	Built B;
	float *work, *state, *queries, keys[MAXLEN * E_], interest[NC * E_], weights[NC * MAXLEN];
	double u[E_], w[MAXLEN];

	build(&B, cs);
	work = malloc(sizeof(float) * din_ops_bst.work_floats(&B.m, NC));
	state = malloc(sizeof(float) * (din_ops_bst.state_floats(&B.m, MAXLEN) + 1));
	queries = random_floats(NC * E_, -1, 1);
	for (size_t li = 0; li < sizeof(lengths) / sizeof(lengths[0]); li++) {
		int T = lengths[li];
		DinHistory h = {.keys = keys, .T = T};
		Poll never = {0};
		DinError err;

		if (T == 0 && !cs->target && cs->readout != DIN_BST_READ_MEAN_ALL)
			continue; /* interest 0 by definition: nothing to compare */
		for (int t = 0; t < T; t++)
			memcpy(keys + t * E_, B.table + ((7 * t + 2) % ROWS) * E_, sizeof(float) * E_);
		CHECK_INT(din_ops_bst.history(&B.m, &h, state, work, &never, &err), DIN_OK);
		CHECK_INT(din_ops_bst.candidates(&B.m, state, T, queries, NC, work, interest, weights,
		                                 &never, &err),
		          DIN_OK);
		for (int c = 0; c < NC; c++) {
			ref_interest(&B, keys, T, queries + c * E_, u, w);
			for (int j = 0; j < E_; j++)
				CHECK_CLOSE(interest[c * E_ + j], u[j], 2 * TOL);
			for (int t = 0; t < T && cs->readout != DIN_BST_READ_ATTENTION; t++)
				CHECK_CLOSE(weights[c * T + t], w[t], TOL);
		}
	}
	free(work);
	free(state);
	free(queries);
	unbuild(&B);
}

/* torch-rechub / FuxiCTR shape: PyTorch layout, the target appended */
static void
test_bst_pytorch_target_post(void)
{
	Case cs = {.target = 1,
	           .blocks = 1,
	           .heads = 2,
	           .leaky = 1,
	           .ffn_bias = 1,
	           .index_pos = 1,
	           .align_end = 1,
	           .readout = DIN_BST_READ_TARGET,
	           .eps = 1e-5f};

	check_case(&cs);
	cs.heads = 3;
	cs.blocks = 2;
	cs.align_end = 0;
	check_case(&cs);
}

static void
test_bst_pytorch_mean_pre(void)
{
	Case cs = {.target = 1,
	           .blocks = 2,
	           .pre = 1,
	           .heads = 6,
	           .ffn_bias = 1,
	           .readout = DIN_BST_READ_MEAN,
	           .eps = 1e-6f};

	check_case(&cs);
	cs.index_pos = 1;
	cs.readout = DIN_BST_READ_TARGET;
	check_case(&cs);
}

/* DeepCTR's block: no biases, no W^O, V from the key side, per-block pe, one shared norm */
static void
test_bst_deepctr_mean(void)
{
	Case cs = {.deepctr = 1,
	           .blocks = 2,
	           .shared = 1,
	           .heads = 3,
	           .block_pos = 1,
	           .readout = DIN_BST_READ_MEAN,
	           .eps = 1e-9f};

	check_case(&cs);
}

/* DeepCTR's output_type "mean": padded rows (query-masked) in the mean, even with T = 0 */
static void
test_bst_deepctr_mean_all(void)
{
	Case cs = {.deepctr = 1,
	           .blocks = 2,
	           .shared = 1,
	           .heads = 2,
	           .block_pos = 1,
	           .readout = DIN_BST_READ_MEAN_ALL,
	           .eps = 1e-9f};

	check_case(&cs);
	cs.blocks = 1;
	cs.heads = 1;
	cs.index_pos = 1;
	check_case(&cs);
	cs.block_pos = 0;
	cs.pre = 1;
	cs.shared = 0;
	cs.ffn_bias = 1;
	check_case(&cs);
}

/* ---- the mean_all config rules, on the committed fixture's config -------------------------- */

static char *
replaced(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out = malloc(strlen(text) + strlen(to) + 1);

	CHECK(at != NULL);
	if (at == NULL) {
		strcpy(out, text);
		return out;
	}
	memcpy(out, text, (size_t)(at - text));
	strcpy(out + (at - text), to);
	strcat(out, at + strlen(from));
	return out;
}

static void
test_bst_mean_all_config(void)
{
	/* {from, to, expected message}; the last case also drops the block positions */
	static const char *const cases[][3] = {
	    {"\"padding_row\": 0", "\"padding_row\": 12", "padding_row is 12 but behaviour field cate"},
	    {"\"readout\": \"mean_all\"", "\"readout\": \"mean\"",
	     "padding_row applies to readout mean_all only"},
	    {"\"align\": \"start\", \"width\": 7}", "\"align\": \"end\", \"width\": 7}",
	     "block_positions.align must be start"},
	    /* a bst model's pooled interest is `interest`; `attention` is din's */
	    {"\"target\", \"interest\"]", "\"target\", \"attention\"]",
	     "tower.inputs[2] is attention, which needs architecture din"},
	    {"\"target\": false, \"layout\": \"deepctr\"", "\"target\": false, \"layout\": \"pytorch\"",
	     "mean_all, which needs layout deepctr and target false"},
	};
	FILE *f = fopen("../fixtures/bst_deepctr_mean_all.safetensors", "rb");
	uint8_t *buf;
	long len;
	DinFile file;
	DinModel *m = NULL;
	DinError err;

	CHECK(f != NULL);
	if (f == NULL)
		return;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = aligned_alloc(8, ((size_t)len + 15) & ~(size_t)7);
	CHECK_INT(fread(buf, 1, (size_t)len, f), len);
	fclose(f);
	CHECK_INT(din_file_read(buf, (size_t)len, &file, &err), DIN_OK);
	CHECK_INT(din_model_build(file.config, file.config_len, file.tensors, file.n_tensors, &m, &err),
	          DIN_OK);
	if (m != NULL) {
		CHECK_INT(m->bst->readout, DIN_BST_READ_MEAN_ALL);
		CHECK_INT(m->bst->pad_row, 0);
		din_model_free(m);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *cfg = replaced(file.config, cases[i][0], cases[i][1]);

		if (i == sizeof(cases) / sizeof(cases[0]) - 1) {
			char *no_bp = replaced(cfg, "{\"align\": \"start\", \"width\": 7}", "null");

			free(cfg);
			cfg = no_bp;
		}

		m = NULL;
		CHECK_INT(din_model_build(cfg, strlen(cfg), file.tensors, file.n_tensors, &m, &err),
		          DIN_ECORRUPT);
		CHECK(m == NULL);
		CHECK_STR_CONTAINS(err.msg, cases[i][2]);
		free(cfg);
	}
	din_file_free(&file);
	free(buf);
}

void
suite_transformer(void)
{
	RUN(test_mha_heads_and_strides);
	RUN(test_mha_key_mask);
	RUN(test_mha_probs_are_head_average);
	RUN(test_transformer_layer_norm);
	RUN(test_bst_pytorch_target_post);
	RUN(test_bst_pytorch_mean_pre);
	RUN(test_bst_deepctr_mean);
	RUN(test_bst_deepctr_mean_all);
	RUN(test_bst_mean_all_config);
}
