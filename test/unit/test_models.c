/*
 * test_models.c - din_model_score against a naive double-precision reference written here.
 *
 * Each test fills a DinModel by hand with fixed-seed random weights. The reference scores one
 * candidate at a time with straightforward loops over the same struct: its own id lookups
 * (linear searches), the attention input [q, k, q-k, q*k] built explicitly, every activation
 * re-derived from docs/FORMAT.md. Scores agree to 1e-5.
 */
#include "unit.h"
#include "models/model.h"

#include <stdint.h>
#include <stdlib.h>

/* ---- fixed-seed random numbers and a weight pool ---- */

static uint64_t rng = 88172645463325252ULL;

static double
urand(void) /* [0, 1) */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static float
srand_f(double scale) /* [-scale, scale) */
{
	return (float)((urand() * 2.0 - 1.0) * scale);
}

#define POOL_FLOATS (1 << 20)
static float pool[POOL_FLOATS];
static size_t pool_used;

static float *
weights(size_t n, double scale)
{
	float *w = pool + pool_used;

	CHECK(pool_used + n <= POOL_FLOATS);
	pool_used += n;
	for (size_t i = 0; i < n; i++)
		w[i] = srand_f(scale);
	return w;
}

static float *
positive(size_t n) /* variances: [0.5, 1.5) */
{
	float *w = pool + pool_used;

	pool_used += n;
	for (size_t i = 0; i < n; i++)
		w[i] = (float)(0.5 + urand());
	return w;
}

/* ---- building a model by hand ---- */

typedef struct TestModel {
	DinModel m;
	DinField fields[8];
	DinLayer att[4], tower[4];
	DinTowerInput inputs[16];
	int context[4], context_offset[5];
	int64_t vocab[8][256];
	int64_t item_ids[64], item_attrs[64 * 4];
} TestModel;

static TestModel tm_store;

static TestModel *
tm_new(DinArch arch, int max_len)
{
	TestModel *t = &tm_store;

	for (int i = 0; i < 8; i++)
		din_idmap_free(&t->fields[i].vocab);
	din_idmap_free(&t->m.items);
	memset(t, 0, sizeof(*t));
	pool_used = 0;
	t->m.arch = arch;
	t->m.max_len = max_len;
	t->m.fields = t->fields;
	t->m.att.layers = t->att;
	t->m.tower = t->tower;
	t->m.inputs = t->inputs;
	t->m.context = t->context;
	t->m.context_offset = t->context_offset;
	return t;
}

static int
add_field(TestModel *t, const char *name, int rows, int dim, DinOovKind oov, int oov_row)
{
	DinField *f = &t->fields[t->m.n_fields];

	snprintf(f->name, sizeof(f->name), "%s", name);
	f->rows = rows;
	f->dim = dim;
	f->weight = weights((size_t)rows * dim, 1.0);
	f->oov = oov;
	f->oov_row = oov_row;
	return t->m.n_fields++;
}

/* Raw ids of field fi become base + stride * row. */
static void
set_vocab(TestModel *t, int fi, int64_t base, int64_t stride)
{
	DinField *f = &t->fields[fi];

	for (int64_t r = 0; r < f->rows; r++)
		t->vocab[fi][r] = base + stride * r;
	CHECK_INT(din_idmap_build(&f->vocab, t->vocab[fi], f->rows, "test vocabulary", NULL), DIN_OK);
}

/* slots[0] reads the item id, slots[k] attribute k-1; the same fields for target and history. */
static void
set_slots(TestModel *t, int n, const int *target, const int *behaviour)
{
	int off = 0;

	t->m.n_slots = n;
	t->m.n_attr = n - 1;
	for (int k = 0; k < n; k++) {
		t->m.target[k] = target[k];
		t->m.behaviour[k] = behaviour[k];
		t->m.slot_offset[k] = off;
		off += t->fields[target[k]].dim;
	}
	t->m.slot_offset[n] = off;
	t->m.E = off;
}

/* Items ids[i] with attribute row attrs[i * n_attr + a], raw ids of their attribute fields. */
static void
set_items(TestModel *t, int n, const int64_t *ids, const int64_t *attrs)
{
	memcpy(t->item_ids, ids, sizeof(int64_t) * n);
	memcpy(t->item_attrs, attrs, sizeof(int64_t) * n * t->m.n_attr);
	t->m.item_attrs = t->item_attrs;
	CHECK_INT(din_idmap_build(&t->m.items, t->item_ids, n, "test items", NULL), DIN_OK);
}

static void
add_context(TestModel *t, int fi)
{
	int i = t->m.n_context++;

	t->context[i] = fi;
	t->context_offset[i + 1] = t->context_offset[i] + t->fields[fi].dim;
}

typedef enum TestAct {
	T_RELU,
	T_SIGMOID,
	T_TANH,
	T_LEAKY,
	T_GELU,
	T_GELU_TANH,
	T_HARD_SIGMOID,
	T_PRELU,
	T_PRELU_CHANNEL,
	T_DICE,
	T_DICE_AFFINE,
	T_DICE_BETA,
	T_DICE_SAMPLE,
	T_LINEAR
} TestAct;

static DinAct
make_act(TestAct kind, int units)
{
	DinAct a = {.units = units, .alpha_n = 1};

	switch (kind) {
	case T_RELU:
		a.kind = DIN_ACT_RELU;
		break;
	case T_SIGMOID:
		a.kind = DIN_ACT_SIGMOID;
		break;
	case T_TANH:
		a.kind = DIN_ACT_TANH;
		break;
	case T_LEAKY:
		a.kind = DIN_ACT_LEAKY_RELU;
		a.slope = 0.05f;
		break;
	case T_GELU:
	case T_GELU_TANH:
		a.kind = DIN_ACT_GELU;
		a.gelu_tanh = kind == T_GELU_TANH;
		break;
	case T_HARD_SIGMOID:
		a.kind = DIN_ACT_HARD_SIGMOID;
		a.slope = 1.0f / 6.0f;
		a.offset = 0.5f;
		break;
	case T_PRELU:
	case T_PRELU_CHANNEL:
		a.kind = DIN_ACT_PRELU;
		a.alpha_n = kind == T_PRELU ? 1 : units;
		a.alpha = weights(a.alpha_n, 0.5);
		break;
	case T_DICE:
	case T_DICE_AFFINE:
	case T_DICE_BETA:
		a.kind = DIN_ACT_DICE;
		a.eps = kind == T_DICE_BETA ? 1e-3f : 1e-8f;
		a.alpha_n = kind == T_DICE ? 1 : units;
		a.alpha = weights(a.alpha_n, 0.5);
		a.mean = weights(units, 0.3);
		a.var = positive(units);
		if (kind == T_DICE_AFFINE) {
			a.weight = weights(units, 1.0);
			a.bias = weights(units, 0.3);
		}
		if (kind == T_DICE_BETA)
			a.beta = weights(units, 2.0);
		break;
	case T_DICE_SAMPLE:
		a.kind = DIN_ACT_DICE;
		a.dice_sample = 1;
		a.eps = 1e-3f;
		a.alpha = weights(1, 0.5);
		break;
	case T_LINEAR:
		a.kind = DIN_ACT_LINEAR;
		break;
	}
	return a;
}

static DinBN
make_bn(int n, float eps, int affine)
{
	DinBN bn = {.n = n, .eps = eps, .mean = weights(n, 0.2), .var = positive(n)};

	if (affine) {
		bn.weight = weights(n, 1.0);
		bn.bias = weights(n, 0.2);
	}
	return bn;
}

static DinLayer
make_layer(int in, int out, TestAct act, int with_bn)
{
	DinLayer l = {.in = in, .out = out};

	/* 1/sqrt(in) keeps activations and the final logit in a range where scores differ */
	l.weight = weights((size_t)out * in, 1.5 / sqrt((double)in));
	l.bias = weights(out, 0.2);
	if (with_bn)
		l.bn = make_bn(out, 1e-5f, with_bn > 1);
	l.act = make_act(act, out);
	return l;
}

static void
add_att_layer(TestModel *t, int units, TestAct act)
{
	int in = t->m.att.n_layers == 0 ? 4 * t->m.E : t->att[t->m.att.n_layers - 1].out;

	t->att[t->m.att.n_layers++] = make_layer(in, units, act, 0);
}

/* Attention scoring after its hidden layers; output_units 0 = no output linear. */
static void
set_att(TestModel *t, int softmax, int scale, int output_bn, int output_units)
{
	int last = t->att[t->m.att.n_layers - 1].out;

	t->m.att.out_weight = weights(last, 1.5 / sqrt((double)last));
	t->m.att.out_bias = srand_f(0.3);
	t->m.att_softmax = softmax;
	t->m.att_scale = scale;
	if (output_bn)
		t->m.att_output_bn = make_bn(t->m.E, 1e-3f, 1);
	if (output_units > 0) {
		t->m.att_output = make_layer(t->m.E, output_units, T_LINEAR, 0);
		t->m.att_output.act.kind = DIN_ACT_LINEAR;
	}
	t->m.att_width = output_units > 0 ? output_units : t->m.E;
}

static void
add_input(TestModel *t, DinInputKind kind, int offset, int width)
{
	t->inputs[t->m.n_inputs++] = (DinTowerInput){kind, offset, width};
	t->m.tower_in += width;
}

static void
add_tower_layer(TestModel *t, int units, TestAct act, int with_bn)
{
	int in = t->m.n_tower == 0 ? t->m.tower_in : t->tower[t->m.n_tower - 1].out;

	t->tower[t->m.n_tower++] = make_layer(in, units, act, with_bn);
}

static void
set_head(TestModel *t, DinHeadKind kind, int bias, int item_bias, int column, float epsilon)
{
	int h = t->m.n_tower == 0 ? t->m.tower_in : t->tower[t->m.n_tower - 1].out;
	int outs = kind == DIN_HEAD_SOFTMAX2 ? 2 : 1;

	t->m.head = kind;
	t->m.head_in = h;
	t->m.head_weight = weights((size_t)outs * h, 1.5 / sqrt((double)h));
	t->m.head_bias = bias ? weights(outs, 0.3) : NULL;
	t->m.item_bias = item_bias ? weights(t->fields[t->m.target[0]].rows, 0.5) : NULL;
	t->m.head_column = column;
	t->m.head_epsilon = epsilon;
}

/* ---- the reference: one candidate, double precision, plain loops ---- */

static double
ref_sigmoid(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

static void
ref_act(const DinAct *a, double *x, int u)
{
	double mu = 0, v = 0;

	if (a->kind == DIN_ACT_DICE && a->dice_sample) {
		for (int j = 0; j < u; j++)
			mu += x[j] / u;
		for (int j = 0; j < u; j++)
			v += (x[j] - mu) * (x[j] - mu) + a->eps;
	}
	for (int j = 0; j < u; j++) {
		double al = a->alpha ? a->alpha[a->alpha_n == 1 ? 0 : j] : 0, xh, p;

		switch (a->kind) {
		case DIN_ACT_LINEAR:
			break;
		case DIN_ACT_RELU:
			x[j] = x[j] > 0 ? x[j] : 0;
			break;
		case DIN_ACT_SIGMOID:
			x[j] = ref_sigmoid(x[j]);
			break;
		case DIN_ACT_TANH:
			x[j] = tanh(x[j]);
			break;
		case DIN_ACT_LEAKY_RELU:
			x[j] = x[j] > 0 ? x[j] : a->slope * x[j];
			break;
		case DIN_ACT_GELU:
			if (a->gelu_tanh)
				x[j] = 0.5 * x[j] *
				       (1 + tanh(sqrt(2 / M_PI) * (x[j] + 0.044715 * x[j] * x[j] * x[j])));
			else
				x[j] = x[j] * 0.5 * (1 + erf(x[j] / sqrt(2.0)));
			break;
		case DIN_ACT_HARD_SIGMOID:
			x[j] = fmin(1.0, fmax(0.0, a->slope * x[j] + a->offset));
			break;
		case DIN_ACT_PRELU:
			x[j] = fmax(x[j], 0) + al * fmin(x[j], 0);
			break;
		case DIN_ACT_DICE:
			if (a->dice_sample)
				xh = (x[j] - mu) / sqrt(v);
			else
				xh = (x[j] - a->mean[j]) / sqrt(a->var[j] + a->eps);
			if (a->weight)
				xh = xh * a->weight[j] + a->bias[j];
			p = ref_sigmoid((a->beta ? a->beta[j] : 1.0) * xh);
			x[j] = p * x[j] + al * (1 - p) * x[j];
			break;
		}
	}
}

static void
ref_bn(const DinBN *bn, double *x)
{
	for (int j = 0; j < bn->n; j++) {
		x[j] = (x[j] - bn->mean[j]) / sqrt(bn->var[j] + bn->eps);
		if (bn->weight)
			x[j] = x[j] * bn->weight[j] + bn->bias[j];
	}
}

static void
ref_layer(const DinLayer *l, const double *x, double *y)
{
	for (int o = 0; o < l->out; o++) {
		y[o] = l->bias ? l->bias[o] : 0;
		for (int i = 0; i < l->in; i++)
			y[o] += l->weight[o * l->in + i] * x[i];
	}
	if (l->bn.n)
		ref_bn(&l->bn, y);
	ref_act(&l->act, y, l->out);
}

/* Row of a raw id in field f (linear search of its vocabulary), after the oov rule. */
static DinStatus
ref_row(const DinField *f, int64_t id, int known, int64_t *row)
{
	int64_t r = -1;

	if (known && f->vocab.cap == 0 && id >= 0 && id < f->rows)
		r = id;
	if (known && f->vocab.cap != 0)
		for (int64_t i = 0; i < f->vocab.n; i++)
			if (f->vocab.keys[i] == id)
				r = i;
	if (r < 0 && f->oov == DIN_OOV_ERROR)
		return DIN_EINVAL;
	*row = r >= 0 ? r : (f->oov == DIN_OOV_ROW ? f->oov_row : -1);
	return DIN_OK;
}

static DinStatus
ref_field_vec(const DinField *f, int64_t id, int known, double *out, int64_t *row_out)
{
	int64_t row;

	if (ref_row(f, id, known, &row) != DIN_OK)
		return DIN_EINVAL;
	for (int j = 0; j < f->dim; j++)
		out[j] = row >= 0 ? f->weight[row * f->dim + j] : 0.0;
	if (row_out)
		*row_out = row;
	return DIN_OK;
}

static DinStatus
ref_item(const DinModel *m, const int *slots, int64_t id, double *out, int64_t *row0)
{
	int64_t at = -1;
	int off = 0;

	if (ref_field_vec(&m->fields[slots[0]], id, 1, out, row0) != DIN_OK)
		return DIN_EINVAL;
	off = m->fields[slots[0]].dim;
	for (int64_t i = 0; i < m->items.n; i++)
		if (m->items.keys[i] == id)
			at = i;
	for (int k = 1; k < m->n_slots; k++) {
		int64_t attr = at >= 0 ? m->item_attrs[at * m->n_attr + k - 1] : 0;

		if (ref_field_vec(&m->fields[slots[k]], attr, at >= 0, out + off, NULL) != DIN_OK)
			return DIN_EINVAL;
		off += m->fields[slots[k]].dim;
	}
	return DIN_OK;
}

#define RMAX 512

/* Score of one candidate; w_out (if not NULL) gets the kept behaviours' attention weights. */
static DinStatus
ref_score(const DinModel *m, const int64_t *hist, int hlen, const int64_t *ctx, const double *dense,
          int64_t cand, double *p, double *w_out)
{
	int E = m->E, kept = hlen < m->max_len ? hlen : m->max_len;
	const int64_t *tail = hist + (hlen - kept);
	static double K[64][RMAX], q[RMAX], c[RMAX], hs[RMAX], hm[RMAX], u[RMAX], pooled[RMAX];
	static double z[RMAX], h1[RMAX], h2[RMAX], s[64], x[RMAX];
	int64_t row0;
	int n = 0, width;

	if (kept > 64 || E * 4 > RMAX)
		return DIN_ELIMIT;
	for (int t = 0; t < kept; t++)
		if (ref_item(m, m->behaviour, tail[t], K[t], NULL) != DIN_OK)
			return DIN_EINVAL;
	for (int i = 0, off = 0; i < m->n_context; i++) {
		if (ref_field_vec(&m->fields[m->context[i]], ctx[i], 1, c + off, NULL) != DIN_OK)
			return DIN_EINVAL;
		off += m->fields[m->context[i]].dim;
	}
	if (ref_item(m, m->target, cand, q, &row0) != DIN_OK)
		return DIN_EINVAL;
	for (int j = 0; j < E; j++) {
		hs[j] = 0;
		for (int t = 0; t < kept; t++)
			hs[j] += K[t][j];
		hm[j] = kept > 0 ? hs[j] / kept : 0;
	}
	if (m->arch == DIN_ARCH_DIN) {
		for (int t = 0; t < kept; t++) {
			const DinLayer *last = &m->att.layers[m->att.n_layers - 1];

			for (int j = 0; j < E; j++) {
				z[j] = q[j];
				z[E + j] = K[t][j];
				z[2 * E + j] = q[j] - K[t][j];
				z[3 * E + j] = q[j] * K[t][j];
			}
			ref_layer(&m->att.layers[0], z, h1);
			for (int l = 1; l < m->att.n_layers; l++) {
				ref_layer(&m->att.layers[l], h1, h2);
				memcpy(h1, h2, sizeof(double) * m->att.layers[l].out);
			}
			s[t] = m->att.out_bias;
			for (int j = 0; j < last->out; j++)
				s[t] += h1[j] * m->att.out_weight[j];
			if (m->att_scale)
				s[t] /= sqrt((double)E);
		}
		if (m->att_softmax && kept > 0) {
			double mx = s[0], sum = 0;

			for (int t = 1; t < kept; t++)
				mx = fmax(mx, s[t]);
			for (int t = 0; t < kept; t++)
				sum += exp(s[t] - mx);
			for (int t = 0; t < kept; t++)
				s[t] = exp(s[t] - mx) / sum;
		}
		for (int j = 0; j < E; j++) {
			pooled[j] = 0;
			for (int t = 0; t < kept; t++)
				pooled[j] += s[t] * K[t][j];
		}
		if (m->att_output_bn.n)
			ref_bn(&m->att_output_bn, pooled);
		if (m->att_output.out) {
			DinLayer lin = m->att_output;

			lin.act.kind = DIN_ACT_LINEAR;
			ref_layer(&lin, pooled, u);
		} else
			memcpy(u, pooled, sizeof(double) * E);
		if (w_out)
			for (int t = 0; t < kept; t++)
				w_out[t] = s[t];
	} else if (w_out)
		for (int t = 0; t < kept; t++)
			w_out[t] = 1.0 / kept;
	for (int i = 0; i < m->n_inputs; i++) {
		const DinTowerInput *in = &m->inputs[i];

		for (int j = in->offset; j < in->offset + in->width; j++) {
			switch (in->kind) {
			case DIN_IN_TARGET:
				x[n++] = q[j];
				break;
			case DIN_IN_CONTEXT:
				x[n++] = c[j];
				break;
			case DIN_IN_HISTORY_SUM:
				x[n++] = hs[j];
				break;
			case DIN_IN_HISTORY_MEAN:
				x[n++] = hm[j];
				break;
			case DIN_IN_ATTENTION:
				x[n++] = u[j];
				break;
			case DIN_IN_TARGET_X_ATTENTION:
				x[n++] = q[j] * u[j];
				break;
			case DIN_IN_TARGET_X_HISTORY_SUM:
				x[n++] = q[j] * hs[j];
				break;
			case DIN_IN_DENSE:
				x[n++] = dense[j];
				break;
			}
		}
	}
	if (m->tower_input_bn.n)
		ref_bn(&m->tower_input_bn, x);
	width = n;
	for (int l = 0; l < m->n_tower; l++) {
		ref_layer(&m->tower[l], x, h2);
		width = m->tower[l].out;
		memcpy(x, h2, sizeof(double) * width);
	}
	if (m->head == DIN_HEAD_SIGMOID) {
		double logit = m->head_bias ? m->head_bias[0] : 0;

		for (int j = 0; j < width; j++)
			logit += x[j] * m->head_weight[j];
		if (m->item_bias && row0 >= 0)
			logit += m->item_bias[row0];
		*p = ref_sigmoid(logit);
	} else {
		double l[2];

		for (int o = 0; o < 2; o++) {
			l[o] = m->head_bias ? m->head_bias[o] : 0;
			for (int j = 0; j < width; j++)
				l[o] += x[j] * m->head_weight[o * width + j];
		}
		*p = exp(l[m->head_column]) / (exp(l[0]) + exp(l[1])) + m->head_epsilon;
	}
	return DIN_OK;
}

/* ---- running a request both ways ---- */

typedef struct Req {
	const int64_t *hist;
	int hlen;
	const int64_t *ctx;
	const double *dense;
	const int64_t *cands;
	int n;
} Req;

/* Score with exactly the scratch the model asks for (so ASan sees any overrun). */
static DinStatus
score(const DinModel *m, const Req *r, double *scores, float *w, DinError *err)
{
	size_t nf = din_model_scratch_floats(m, r->n);
	float *scratch = malloc(sizeof(float) * nf);
	DinRequest req = {.history = r->hist,
	                  .history_len = r->hlen,
	                  .context = r->ctx,
	                  .context_len = m->n_context,
	                  .dense = r->dense,
	                  .dense_len = m->n_dense,
	                  .candidates = r->cands,
	                  .n_candidates = r->n};
	DinStatus st = din_model_score(m, &req, scratch, scores, w, err);

	free(scratch);
	return st;
}

/* din_model_score and the reference agree on every candidate and attention weight. */
static void
check_against_ref(const DinModel *m, const Req *r)
{
	int kept = r->hlen < m->max_len ? r->hlen : m->max_len;
	double *scores = malloc(sizeof(double) * r->n);
	float *w = malloc(sizeof(float) * ((size_t)r->n * kept + 1));
	DinError err = {0};
	DinStatus st = score(m, r, scores, w, &err);

	CHECK_INT(st, DIN_OK);
	if (st != DIN_OK)
		fprintf(stderr, "  error: %s\n", err.msg);
	for (int c = 0; c < r->n && st == DIN_OK; c++) {
		double p, rw[64];

		CHECK_INT(ref_score(m, r->hist, r->hlen, r->ctx, r->dense, r->cands[c], &p, rw), DIN_OK);
		CHECK_CLOSE(scores[c], p, 1e-5);
		for (int t = 0; t < kept; t++)
			CHECK_CLOSE(w[(size_t)c * kept + t], rw[t], 1e-5);
	}
	free(scores);
	free(w);
}

/* Scores of one model are not degenerate: candidates differ, none saturates. */
static void
check_spread(const DinModel *m, const Req *r)
{
	double lo = 1, hi = 0;
	double *scores = malloc(sizeof(double) * r->n);

	CHECK_INT(score(m, r, scores, NULL, NULL), DIN_OK);
	for (int c = 0; c < r->n; c++) {
		lo = fmin(lo, scores[c]);
		hi = fmax(hi, scores[c]);
	}
	CHECK(hi - lo > 1e-3);
	CHECK(lo > 1e-4 && hi < 1 - 1e-4);
	free(scores);
}

/* ---- model shapes used by several tests ---- */

static const int64_t hist10[10] = {3, 17, 5, 5, 29, 0, 11, 23, 8, 14};
static const int64_t cands6[6] = {1, 4, 9, 17, 26, 30};

/* item(32 x 4) + cate(6 x 3) attribute through the items table; user context field. */
static TestModel *
base_fields(DinArch arch, int max_len)
{
	static int64_t ids[32], attrs[32];
	TestModel *t = tm_new(arch, max_len);
	int item = add_field(t, "item", 32, 4, DIN_OOV_ERROR, 0);
	int cate = add_field(t, "cate", 6, 3, DIN_OOV_ZERO, 0);
	int user = add_field(t, "user", 10, 5, DIN_OOV_ROW, 9);
	int slots[2] = {item, cate};

	set_slots(t, 2, slots, slots);
	for (int i = 0; i < 32; i++) {
		ids[i] = i;
		attrs[i] = (i * 7) % 6;
	}
	set_items(t, 32, ids, attrs);
	add_context(t, user);
	return t;
}

static void
din_attention(TestModel *t, TestAct act, int softmax, int scale, int out_bn, int out_units)
{
	add_att_layer(t, 12, act);
	add_att_layer(t, 6, act);
	set_att(t, softmax, scale, out_bn, out_units);
}

/*
 * Consecutive keys take no table and give the hashed map's answers for every key, including
 * ones so far from the first key that key - keys[0] would overflow.
 */
static void
test_idmap_consecutive_and_hashed(void)
{
	static const int64_t probes[] = {INT64_MIN, -8, -7, -6, -1, 0, 1, 5, 6, 7, 9, 10, INT64_MAX};
	int64_t run[] = {-7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5};
	int64_t gap[] = {-7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6};
	int64_t top[] = {INT64_MAX - 1, INT64_MAX};
	DinIdMap a, b, c;

	CHECK_INT(din_idmap_build(&a, run, 13, "run", NULL), DIN_OK);
	CHECK_INT(din_idmap_build(&b, gap, 13, "gap", NULL), DIN_OK);
	CHECK_INT(din_idmap_build(&c, top, 2, "top", NULL), DIN_OK);
	CHECK(a.consecutive && a.cap == 0 && din_idmap_exists(&a));
	CHECK(!b.consecutive && b.cap > 0 && din_idmap_exists(&b));
	CHECK(c.consecutive);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		int64_t k = probes[i];

		CHECK_INT(din_idmap_find(&a, k), k >= -7 && k <= 5 ? k + 7 : -1);
		CHECK_INT(din_idmap_find(&b, k), k >= -7 && k <= 4 ? k + 7 : k == 6 ? 12 : -1);
		CHECK_INT(din_idmap_find(&c, k), k == INT64_MAX ? 1 : -1);
	}
	CHECK_INT(din_idmap_find(&c, INT64_MAX - 1), 0);
	din_idmap_free(&a);
	din_idmap_free(&b);
	din_idmap_free(&c);
	CHECK(!din_idmap_exists(&a) && din_idmap_find(&a, 0) == -1);
}

static void
test_base_mean(void)
{
	TestModel *t = base_fields(DIN_ARCH_BASE, 20);
	int64_t ctx[1] = {3};
	Req r = {hist10, 10, ctx, NULL, cands6, 6};

	add_input(t, DIN_IN_HISTORY_MEAN, 0, t->m.E);
	add_input(t, DIN_IN_TARGET, 0, t->m.E);
	add_tower_layer(t, 10, T_SIGMOID, 0);
	add_tower_layer(t, 5, T_SIGMOID, 0);
	set_head(t, DIN_HEAD_SIGMOID, 1, 0, 0, 0);
	check_against_ref(&t->m, &r);
	check_spread(&t->m, &r);
}

static void
test_base_sum_prelu_softmax2(void)
{
	TestModel *t = base_fields(DIN_ARCH_BASE, 20);
	int64_t ctx[1] = {7};
	Req r = {hist10, 10, ctx, NULL, cands6, 6};

	add_input(t, DIN_IN_CONTEXT, 0, 5);
	add_input(t, DIN_IN_TARGET, 0, t->m.E);
	add_input(t, DIN_IN_HISTORY_SUM, 0, t->m.E);
	t->m.tower_input_bn = make_bn(t->m.tower_in, 1e-3f, 1);
	add_tower_layer(t, 12, T_PRELU_CHANNEL, 0);
	add_tower_layer(t, 6, T_PRELU, 0);
	set_head(t, DIN_HEAD_SOFTMAX2, 1, 0, 0, 1e-8f);
	check_against_ref(&t->m, &r);
	check_spread(&t->m, &r);
}

static void
test_din_none_dice(void)
{
	TestModel *t = base_fields(DIN_ARCH_DIN, 20);
	int64_t ctx[1] = {2};
	Req r = {hist10, 10, ctx, NULL, cands6, 6};

	din_attention(t, T_DICE_AFFINE, 0, 0, 0, 0);
	add_input(t, DIN_IN_CONTEXT, 0, 5);
	add_input(t, DIN_IN_TARGET, 0, t->m.E);
	add_input(t, DIN_IN_ATTENTION, 0, t->m.E);
	add_tower_layer(t, 16, T_RELU, 0);
	add_tower_layer(t, 8, T_RELU, 0);
	set_head(t, DIN_HEAD_SIGMOID, 1, 0, 0, 0);
	check_against_ref(&t->m, &r);
	check_spread(&t->m, &r);
}

static void
test_din_softmax_and_scale(void)
{
	for (int scale = 0; scale <= 1; scale++) {
		TestModel *t = base_fields(DIN_ARCH_DIN, 20);
		int64_t ctx[1] = {2};
		Req r = {hist10, 10, ctx, NULL, cands6, 6};

		din_attention(t, T_SIGMOID, 1, scale, 0, 0);
		add_input(t, DIN_IN_ATTENTION, 0, t->m.E);
		add_input(t, DIN_IN_TARGET, 0, t->m.E);
		add_tower_layer(t, 8, T_DICE, 0);
		set_head(t, DIN_HEAD_SIGMOID, 1, 0, 0, 0);
		check_against_ref(&t->m, &r);
		check_spread(&t->m, &r);
	}
}

/* Scale without softmax divides the raw weights, as the flag says. */
static void
test_din_scale_without_softmax(void)
{
	TestModel *t = base_fields(DIN_ARCH_DIN, 20);
	int64_t ctx[1] = {2};
	Req r = {hist10, 10, ctx, NULL, cands6, 6};

	din_attention(t, T_PRELU, 0, 1, 0, 0);
	add_input(t, DIN_IN_ATTENTION, 0, t->m.E);
	add_tower_layer(t, 8, T_TANH, 0);
	set_head(t, DIN_HEAD_SIGMOID, 1, 0, 0, 0);
	check_against_ref(&t->m, &r);
}

/* The DIN repo: softmax, scale, output BN + linear, input BN, q*u, item bias, Dice with beta. */
static void
test_din_repo_output_block_item_bias(void)
{
	TestModel *t = base_fields(DIN_ARCH_DIN, 20);
	int64_t ctx[1] = {2};
	Req r = {hist10, 10, ctx, NULL, cands6, 6};
	int E = t->m.E;

	din_attention(t, T_SIGMOID, 1, 1, 1, E);
	add_input(t, DIN_IN_ATTENTION, 0, E);
	add_input(t, DIN_IN_TARGET, 0, E);
	add_input(t, DIN_IN_TARGET_X_ATTENTION, 0, E);
	t->m.tower_input_bn = make_bn(t->m.tower_in, 1e-3f, 1);
	add_tower_layer(t, 10, T_DICE_BETA, 0);
	add_tower_layer(t, 5, T_SIGMOID, 0);
	set_head(t, DIN_HEAD_SIGMOID, 1, 1, 0, 0);
	check_against_ref(&t->m, &r);
	check_spread(&t->m, &r);
}

/* An output linear narrower than E; the tower reads the U-wide interest. */
static void
test_din_output_units(void)
{
	TestModel *t = base_fields(DIN_ARCH_DIN, 20);
	int64_t ctx[1] = {2};
	Req r = {hist10, 10, ctx, NULL, cands6, 6};

	din_attention(t, T_GELU, 1, 0, 0, 4);
	add_input(t, DIN_IN_ATTENTION, 0, 4);
	add_input(t, DIN_IN_TARGET, 0, t->m.E);
	add_tower_layer(t, 6, T_GELU_TANH, 2);
	set_head(t, DIN_HEAD_SIGMOID, 0, 0, 0, 0);
	check_against_ref(&t->m, &r);
}

/* Every tower input kind, with slices (`:k`) and products, plus dense features. */
static void
test_every_tower_input_kind(void)
{
	TestModel *t = base_fields(DIN_ARCH_DIN, 20);
	int64_t ctx[1] = {4};
	double dense[3] = {0.5, -1.25, 2.0};
	Req r = {hist10, 10, ctx, dense, cands6, 6};
	int E;

	t->m.n_dense = 3;
	din_attention(t, T_DICE_SAMPLE, 0, 0, 0, 0);
	E = t->m.E;
	add_input(t, DIN_IN_CONTEXT, 0, 5);
	add_input(t, DIN_IN_TARGET, 4, 3); /* target:1 (cate) */
	add_input(t, DIN_IN_TARGET, 0, E);
	add_input(t, DIN_IN_HISTORY_SUM, 0, 4); /* history_sum:0 */
	add_input(t, DIN_IN_HISTORY_MEAN, 0, E);
	add_input(t, DIN_IN_HISTORY_MEAN, 4, 3);
	add_input(t, DIN_IN_ATTENTION, 4, 3); /* attention:1 */
	add_input(t, DIN_IN_ATTENTION, 0, E);
	add_input(t, DIN_IN_TARGET_X_ATTENTION, 0, E);
	add_input(t, DIN_IN_TARGET_X_HISTORY_SUM, 0, E);
	add_input(t, DIN_IN_DENSE, 0, 3);
	add_tower_layer(t, 9, T_LEAKY, 1);
	add_tower_layer(t, 5, T_HARD_SIGMOID, 0);
	set_head(t, DIN_HEAD_SIGMOID, 1, 0, 0, 0);
	check_against_ref(&t->m, &r);
	check_spread(&t->m, &r);
}

/* Only the tower inputs context:0 and dense: each kind on its own changes the score. */
static void
test_tower_without_hidden_layers(void)
{
	TestModel *t = base_fields(DIN_ARCH_BASE, 20);
	int64_t ctx[1] = {4};
	double dense[2] = {1.5, -0.5};
	Req r = {hist10, 10, ctx, dense, cands6, 6};

	t->m.n_dense = 2;
	add_input(t, DIN_IN_TARGET_X_HISTORY_SUM, 0, t->m.E);
	add_input(t, DIN_IN_DENSE, 0, 2);
	set_head(t, DIN_HEAD_SIGMOID, 1, 0, 0, 0);
	check_against_ref(&t->m, &r);
}

static void
test_softmax2_column_and_epsilon(void)
{
	for (int col = 0; col <= 1; col++) {
		TestModel *t = base_fields(DIN_ARCH_DIN, 20);
		int64_t ctx[1] = {1};
		Req r = {hist10, 10, ctx, NULL, cands6, 6};
		double s0[6], s1[6];

		din_attention(t, T_PRELU_CHANNEL, 0, 0, 0, 0);
		add_input(t, DIN_IN_TARGET, 0, t->m.E);
		add_input(t, DIN_IN_ATTENTION, 0, t->m.E);
		add_tower_layer(t, 8, T_DICE, 0);
		set_head(t, DIN_HEAD_SOFTMAX2, 1, 0, col, 0.01f);
		check_against_ref(&t->m, &r);
		/* the two columns are complements, each with its own epsilon */
		CHECK_INT(score(&t->m, &r, s0, NULL, NULL), DIN_OK);
		t->m.head_column = 1 - col;
		CHECK_INT(score(&t->m, &r, s1, NULL, NULL), DIN_OK);
		for (int c = 0; c < 6; c++)
			CHECK_CLOSE(s0[c] + s1[c], 1.02, 1e-6);
	}
}

static TestModel *
small_din(void)
{
	TestModel *t = base_fields(DIN_ARCH_DIN, 20);

	din_attention(t, T_DICE, 1, 0, 1, 0);
	add_input(t, DIN_IN_CONTEXT, 0, 5);
	add_input(t, DIN_IN_TARGET, 0, t->m.E);
	add_input(t, DIN_IN_ATTENTION, 0, t->m.E);
	add_tower_layer(t, 8, T_RELU, 0);
	set_head(t, DIN_HEAD_SIGMOID, 1, 1, 0, 0);
	return t;
}

static void
test_oov_error_names_id_and_field(void)
{
	TestModel *t = small_din();
	int64_t ctx[1] = {2}, bad_hist[3] = {1, 40, 2}, bad_cand[1] = {-5};
	double s[1];
	DinError err = {0};
	Req r = {bad_hist, 3, ctx, NULL, cands6, 1};

	CHECK_INT(score(&t->m, &r, s, NULL, &err), DIN_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "unknown id 40 for field \"item\"");
	CHECK(err.detail[0] != '\0');
	r = (Req){hist10, 10, ctx, NULL, bad_cand, 1};
	CHECK_INT(score(&t->m, &r, s, NULL, &err), DIN_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "unknown id -5 for field \"item\"");
	CHECK_INT(ref_score(&t->m, hist10, 10, ctx, NULL, -5, s, NULL), DIN_EINVAL);
	/* an unknown item whose attribute field is strict fails too, naming that field */
	t->fields[1].oov = DIN_OOV_ERROR;
	t->fields[0].oov = DIN_OOV_ZERO;
	bad_cand[0] = 100;
	CHECK_INT(score(&t->m, &r, s, NULL, &err), DIN_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "for field \"cate\"");
}

/* oov zero on the item (no item bias either), oov row on the context, unknown attributes. */
static void
test_oov_zero_and_row(void)
{
	TestModel *t = small_din();
	int64_t ctx[1] = {77}, hist[5] = {3, 1000, 4, -1, 2}, cands[4] = {5, 999, 31, -3};
	double s[4], p_row, p_explicit;
	Req r = {hist, 5, ctx, NULL, cands, 4};
	int64_t ctx9[1] = {9};
	Req r9 = {hist, 5, ctx9, NULL, cands, 1};

	t->fields[0].oov = DIN_OOV_ZERO;
	check_against_ref(&t->m, &r);
	/* context id 77 of field user (oov row 9) scores as id 9 itself */
	CHECK_INT(score(&t->m, &r, s, NULL, NULL), DIN_OK);
	p_row = s[0];
	CHECK_INT(score(&t->m, &r9, s, NULL, NULL), DIN_OK);
	p_explicit = s[0];
	CHECK_CLOSE(p_row, p_explicit, 1e-12);
	/* oov row on the item: unknown candidates score as row 2, including its item bias */
	t->fields[0].oov = DIN_OOV_ROW;
	t->fields[0].oov_row = 2;
	check_against_ref(&t->m, &r);
}

/* Attributes come from the items table; a missing item has every attribute unknown. */
static void
test_items_with_attributes(void)
{
	TestModel *t = tm_new(DIN_ARCH_DIN, 20);
	int item = add_field(t, "item", 40, 4, DIN_OOV_ZERO, 0);
	int cate = add_field(t, "cate", 5, 3, DIN_OOV_ROW, 4);
	int shop = add_field(t, "shop", 7, 2, DIN_OOV_ZERO, 0);
	int slots[3] = {item, cate, shop};
	int64_t ids[4] = {10, 11, 12, 35}, attrs[8] = {0, 6, 2, 1, 99, 3, 4, -2};
	int64_t hist[6] = {10, 11, 12, 35, 20, 11}, cands[5] = {12, 35, 20, 10, 39};
	Req r = {hist, 6, NULL, NULL, cands, 5};
	double s[5], ref;

	set_slots(t, 3, slots, slots);
	set_items(t, 4, ids, attrs);
	din_attention(t, T_DICE_AFFINE, 0, 0, 0, 0);
	add_input(t, DIN_IN_TARGET, 0, t->m.E);
	add_input(t, DIN_IN_ATTENTION, 0, t->m.E);
	add_tower_layer(t, 8, T_RELU, 0);
	set_head(t, DIN_HEAD_SIGMOID, 1, 0, 0, 0);
	check_against_ref(&t->m, &r);
	/* item 20 is not in the items table: cate takes its oov row 4, shop the zero vector;
	 * item 12 has cate 99 (unknown -> row 4) and shop 3 */
	CHECK_INT(score(&t->m, &r, s, NULL, NULL), DIN_OK);
	CHECK_INT(ref_score(&t->m, hist, 6, NULL, NULL, 20, &ref, NULL), DIN_OK);
	CHECK_CLOSE(s[2], ref, 1e-5);
}

/* Raw ids through vocabularies, for the item field and for an attribute field. */
static void
test_vocab_mapped_ids(void)
{
	TestModel *t = tm_new(DIN_ARCH_DIN, 20);
	int item = add_field(t, "item", 30, 4, DIN_OOV_ERROR, 0);
	int cate = add_field(t, "cate", 6, 3, DIN_OOV_ZERO, 0);
	int user = add_field(t, "user", 4, 2, DIN_OOV_ERROR, 0);
	int slots[2] = {item, cate};
	int64_t ids[30], attrs[30];
	int64_t hist[5] = {1000000000007LL, 1000000000000LL, 1000000000203LL, 1000000000070LL,
	                   1000000000049LL};
	int64_t cands[3] = {1000000000014LL, 1000000000203LL, 1000000000000LL}, ctx[1] = {-30};
	int64_t raw_row_hist[1] = {7}, bad[1] = {5};
	Req r = {hist, 5, ctx, NULL, cands, 3};
	double s[3];
	DinError err = {0};

	set_vocab(t, item, 1000000000000LL, 7);
	set_vocab(t, cate, 500, -3);
	set_vocab(t, user, 0, -10);
	set_slots(t, 2, slots, slots);
	for (int i = 0; i < 30; i++) {
		ids[i] = 1000000000000LL + 7 * i;
		attrs[i] = 500 - 3 * (i % 7); /* i % 7 == 6 is not in the vocabulary: zero */
	}
	set_items(t, 30, ids, attrs);
	add_context(t, user);
	din_attention(t, T_SIGMOID, 1, 1, 0, 0);
	add_input(t, DIN_IN_CONTEXT, 0, 2);
	add_input(t, DIN_IN_TARGET, 0, t->m.E);
	add_input(t, DIN_IN_ATTENTION, 0, t->m.E);
	add_tower_layer(t, 8, T_RELU, 0);
	set_head(t, DIN_HEAD_SIGMOID, 1, 1, 0, 0);
	check_against_ref(&t->m, &r);
	/* with a vocabulary, a row number is not an id */
	r = (Req){raw_row_hist, 1, ctx, NULL, cands, 1};
	CHECK_INT(score(&t->m, &r, s, NULL, &err), DIN_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "unknown id 7 for field \"item\"");
	r = (Req){hist, 5, bad, NULL, cands, 1};
	CHECK_INT(score(&t->m, &r, s, NULL, &err), DIN_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "unknown id 5 for field \"user\"");
}

/* No behaviour: u = 0, then the output BN and linear still apply (their bias shows). */
static void
test_empty_history(void)
{
	TestModel *t = small_din();
	int64_t ctx[1] = {2};
	Req r = {NULL, 0, ctx, NULL, cands6, 6};
	double s[6];

	check_against_ref(&t->m, &r);
	t->m.att_output = make_layer(t->m.E, 5, T_LINEAR, 0);
	t->m.att_width = 5;
	t->inputs[2].width = 5;
	t->m.tower_in = 5 + t->m.E + 5;
	t->tower[0] = make_layer(t->m.tower_in, 8, T_RELU, 0);
	check_against_ref(&t->m, &r);
	CHECK_INT(score(&t->m, &r, s, NULL, NULL), DIN_OK);

	t = base_fields(DIN_ARCH_BASE, 20);
	add_input(t, DIN_IN_HISTORY_MEAN, 0, t->m.E);
	add_input(t, DIN_IN_HISTORY_SUM, 0, t->m.E);
	add_input(t, DIN_IN_TARGET, 0, t->m.E);
	add_tower_layer(t, 6, T_RELU, 0);
	set_head(t, DIN_HEAD_SIGMOID, 1, 0, 0, 0);
	check_against_ref(&t->m, &r);
}

static void
test_history_of_one(void)
{
	TestModel *t = small_din();
	int64_t ctx[1] = {2}, hist[1] = {13};
	Req r = {hist, 1, ctx, NULL, cands6, 6};
	float w[6];
	double s[6];

	check_against_ref(&t->m, &r);
	/* softmax over one behaviour is exactly 1 */
	CHECK_INT(score(&t->m, &r, s, w, NULL), DIN_OK);
	for (int c = 0; c < 6; c++)
		CHECK_CLOSE(w[c], 1.0, 1e-7);
}

/* A history longer than max_len scores as its most recent max_len behaviours. */
static void
test_long_history_keeps_tail(void)
{
	TestModel *t = small_din();
	int64_t ctx[1] = {2}, hist[30];
	double all[6], tail[6];
	float w_all[6 * 5], w_tail[6 * 5];
	Req r_all = {hist, 30, ctx, NULL, cands6, 6}, r_tail = {hist + 25, 5, ctx, NULL, cands6, 6};

	for (int i = 0; i < 30; i++)
		hist[i] = (i * 11) % 32;
	hist[3] = 1000; /* unknown item (oov error) outside the kept tail: never looked up */
	t->m.max_len = 5;
	check_against_ref(&t->m, &r_all);
	CHECK_INT(score(&t->m, &r_all, all, w_all, NULL), DIN_OK);
	CHECK_INT(score(&t->m, &r_tail, tail, w_tail, NULL), DIN_OK);
	for (int c = 0; c < 6; c++)
		CHECK(all[c] == tail[c]);
	for (int i = 0; i < 30; i++)
		CHECK(w_all[i] == w_tail[i]);
}

/*
 * Many candidates over a full history go through chunks and sgemm; each score equals the same
 * candidate scored alone, and the reference.
 */
static void
test_batch_equals_one_at_a_time(void)
{
	enum { N = 300, T = 20 };
	TestModel *t = base_fields(DIN_ARCH_DIN, T);
	int64_t ctx[1] = {6}, hist[T], cands[N];
	double *batch = malloc(sizeof(double) * N), one;
	float *w = malloc(sizeof(float) * N * T), w1[T];
	Req r = {hist, T, ctx, NULL, cands, N};

	din_attention(t, T_DICE_AFFINE, 1, 1, 1, 0);
	t->att[0] = make_layer(4 * t->m.E, 40, T_DICE_AFFINE, 0);
	t->att[1] = make_layer(40, 6, T_DICE_AFFINE, 0);
	add_input(t, DIN_IN_CONTEXT, 0, 5);
	add_input(t, DIN_IN_TARGET, 0, t->m.E);
	add_input(t, DIN_IN_ATTENTION, 0, t->m.E);
	add_tower_layer(t, 64, T_RELU, 0);
	add_tower_layer(t, 32, T_PRELU, 0);
	set_head(t, DIN_HEAD_SIGMOID, 1, 1, 0, 0);
	for (int i = 0; i < T; i++)
		hist[i] = (i * 5 + 3) % 32;
	for (int c = 0; c < N; c++)
		cands[c] = (c * 13) % 32;
	check_against_ref(&t->m, &r);
	CHECK_INT(score(&t->m, &r, batch, w, NULL), DIN_OK);
	for (int c = 0; c < N; c += 7) {
		Req r1 = {hist, T, ctx, NULL, cands + c, 1};

		CHECK_INT(score(&t->m, &r1, &one, w1, NULL), DIN_OK);
		CHECK_CLOSE(batch[c], one, 1e-6);
		for (int k = 0; k < T; k++)
			CHECK_CLOSE(w[c * T + k], w1[k], 1e-6);
	}
	free(batch);
	free(w);
}

static void
test_base_weights_are_uniform(void)
{
	TestModel *t = base_fields(DIN_ARCH_BASE, 4);
	int64_t ctx[1] = {2};
	Req r = {hist10, 10, ctx, NULL, cands6, 2};
	float w[8];
	double s[2];

	add_input(t, DIN_IN_HISTORY_MEAN, 0, t->m.E);
	set_head(t, DIN_HEAD_SIGMOID, 1, 0, 0, 0);
	CHECK_INT(score(&t->m, &r, s, w, NULL), DIN_OK);
	for (int i = 0; i < 8; i++)
		CHECK(w[i] == 0.25f);
}

static void
test_context_and_dense_lengths(void)
{
	TestModel *t = small_din();
	size_t nf = din_model_scratch_floats(&t->m, 1);
	float *scratch = malloc(sizeof(float) * nf);
	int64_t ctx[2] = {1, 2};
	double dense[1] = {1.0}, s[1];
	DinError err = {0};
	DinRequest req = {.history = hist10,
	                  .history_len = 10,
	                  .context = ctx,
	                  .context_len = 2,
	                  .candidates = cands6,
	                  .n_candidates = 1};

	CHECK_INT(din_model_score(&t->m, &req, scratch, s, NULL, &err), DIN_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "context");
	CHECK_STR_CONTAINS(err.detail, "1 context fields but 2 were given");
	req.context_len = 0;
	CHECK_INT(din_model_score(&t->m, &req, scratch, s, NULL, &err), DIN_EINVAL);
	CHECK_STR_CONTAINS(err.detail, "but 0 were given");
	req.context_len = 1;
	req.dense = dense;
	req.dense_len = 1;
	CHECK_INT(din_model_score(&t->m, &req, scratch, s, NULL, &err), DIN_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "dense");
	CHECK_STR_CONTAINS(err.detail, "0 dense features but 1 were given");
	req.dense_len = 0;
	CHECK_INT(din_model_score(&t->m, &req, scratch, s, NULL, &err), DIN_OK);
	free(scratch);
}

void
suite_models(void)
{
	RUN(test_idmap_consecutive_and_hashed);
	RUN(test_base_mean);
	RUN(test_base_sum_prelu_softmax2);
	RUN(test_din_none_dice);
	RUN(test_din_softmax_and_scale);
	RUN(test_din_scale_without_softmax);
	RUN(test_din_repo_output_block_item_bias);
	RUN(test_din_output_units);
	RUN(test_every_tower_input_kind);
	RUN(test_tower_without_hidden_layers);
	RUN(test_softmax2_column_and_epsilon);
	RUN(test_oov_error_names_id_and_field);
	RUN(test_oov_zero_and_row);
	RUN(test_items_with_attributes);
	RUN(test_vocab_mapped_ids);
	RUN(test_empty_history);
	RUN(test_history_of_one);
	RUN(test_long_history_keeps_tail);
	RUN(test_batch_equals_one_at_a_time);
	RUN(test_base_weights_are_uniform);
	RUN(test_context_and_dense_lengths);
	tm_new(DIN_ARCH_BASE, 1); /* releases the last model's maps */
}
