/*
 * activations.c - batch norm, activations, softmax and the whole-layer composition.
 *
 * Formulas are those of docs/FORMAT.md; everything runs in float32 as PyTorch does at
 * inference, with sigmoid and softmax written so that no input overflows.
 */
#include "nn.h"
#include "sigmoid_kernels.h"

#include <math.h>

double
nn_sigmoid(double x)
{
	if (x >= 0.0)
		return 1.0 / (1.0 + exp(-x));
	else {
		double e = exp(x);

		return e / (1.0 + e);
	}
}

void
nn_softmax(float *x, int n)
{
	nn_softmax_counted(x, n, 1);
}

void
nn_softmax_counted(float *x, int n, int count)
{
	float max;
	double sum = 0.0, inv;

	if (n <= 0)
		return;
	max = x[0];
	for (int i = 1; i < n; i++)
		if (x[i] > max)
			max = x[i];
	for (int i = 0; i < n; i++)
		x[i] -= max;
	nn_exp_inplace(x, (size_t)n);
	for (int i = 0; i < n; i++)
		sum += x[i];
	sum += (double)x[n - 1] * (count - 1); /* + 0 for one copy: nn_softmax's bits unchanged */
	/* one division; in double, x / sum and x (1 / sum) differ far below float rounding */
	inv = 1.0 / sum;
	for (int i = 0; i < n; i++)
		x[i] = (float)(x[i] * inv);
}

/*
 * y = x s + c with s = weight / sqrt(var + eps) and c = bias - mean s, as PyTorch's CPU kernel
 * computes inference batch norm: a square root and a division per unit, not per element.
 */
static void
bn_coef(const DinBN *bn, int j, float *s, float *c)
{
	float inv = 1.0f / sqrtf(bn->var[j] + bn->eps);

	*s = bn->weight ? bn->weight[j] * inv : inv;
	*c = (bn->weight ? bn->bias[j] : 0.0f) - bn->mean[j] * *s;
}

void
nn_batchnorm_fold(const DinBN *bn, float *scale, float *shift)
{
	for (int j = 0; j < bn->n; j++)
		bn_coef(bn, j, &scale[j], &shift[j]);
}

static void
scale_shift(float *x, int n, int u, const float *s, const float *c, int len)
{
	for (int i = 0; i < n; i++) {
		float *xi = x + (size_t)i * u;

		/* Auto-vectorized */
		for (int j = 0; j < len; j++)
			xi[j] = xi[j] * s[j] + c[j];
	}
}

void
nn_batchnorm(const DinBN *bn, float *x, int n)
{
	enum { BLOCK = 256 };
	float s[BLOCK], c[BLOCK];
	int u = bn->n;

	if (bn->scale != NULL) {
		scale_shift(x, n, u, bn->scale, bn->shift, u);
		return;
	}
	for (int j0 = 0; j0 < u; j0 += BLOCK) {
		int len = u - j0 < BLOCK ? u - j0 : BLOCK;

		for (int j = 0; j < len; j++)
			bn_coef(bn, j0 + j, &s[j], &c[j]);
		scale_shift(x + j0, n, u, s, c, len);
	}
}

static inline float
alpha_of(const DinAct *act, int j)
{
	return act->alpha_n == 1 ? act->alpha[0] : act->alpha[j];
}

/*
 * Dice's x-hat, folded with its affine and beta terms into z = x a + b for unit j. `mu` and
 * `inv_sd` are the row statistics of the sample variant (unused for running statistics).
 */
static inline void
dice_coef(const DinAct *act, int j, float mu, float inv_sd, float *a, float *b)
{
	float s, c;

	if (act->dice_sample) {
		s = inv_sd;
		c = -mu * inv_sd;
	} else {
		float mean = act->mean ? act->mean[j] : 0.0f;
		float var = act->var ? act->var[j] : 1.0f;

		s = 1.0f / sqrtf(var + act->eps);
		c = -mean * s;
	}
	if (act->weight) {
		s *= act->weight[j];
		c = c * act->weight[j] + act->bias[j];
	}
	if (act->beta) {
		s *= act->beta[j];
		c *= act->beta[j];
	}
	*a = s;
	*b = c;
}

int
nn_dice_foldable(const DinAct *act)
{
	return act->kind == DIN_ACT_DICE && !act->dice_sample;
}

void
nn_dice_fold(const DinAct *act, int units, float *a, float *b, float *alpha)
{
	for (int j = 0; j < units; j++) {
		dice_coef(act, j, 0.0f, 0.0f, &a[j], &b[j]);
		alpha[j] = alpha_of(act, j);
	}
}

/*
 * Dice in place. Running statistics: the coefficients folded with the model, or else made per
 * call by blocks on the stack and shared across rows; the sample variant recomputes them from
 * each row's mean and spread.
 */
static void
dice(const DinAct *act, float *x, int n)
{
	enum { BLOCK = 64 };
	float a[BLOCK], b[BLOCK], al[BLOCK];
	int u = act->units;

	if (act->gate_a != NULL) {
		for (int i = 0; i < n; i++)
			nn_dice_gate(x + (size_t)i * u, act->gate_a, act->gate_b, act->gate_alpha, u);
		return;
	}
	if (!act->dice_sample) {
		for (int j0 = 0; j0 < u; j0 += BLOCK) {
			int len = u - j0 < BLOCK ? u - j0 : BLOCK;

			for (int j = 0; j < len; j++) {
				dice_coef(act, j0 + j, 0.0f, 0.0f, &a[j], &b[j]);
				al[j] = alpha_of(act, j0 + j);
			}
			for (int i = 0; i < n; i++)
				nn_dice_gate(x + (size_t)i * u + j0, a, b, al, len);
		}
		return;
	}
	for (int i = 0; i < n; i++) {
		float *xi = x + (size_t)i * u;
		float mu = 0.0f, v = 0.0f, inv_sd;

		for (int j = 0; j < u; j++)
			mu += xi[j];
		mu /= (float)u;
		for (int j = 0; j < u; j++)
			v += (xi[j] - mu) * (xi[j] - mu) + act->eps;
		inv_sd = 1.0f / sqrtf(v);
		for (int j0 = 0; j0 < u; j0 += BLOCK) {
			int len = u - j0 < BLOCK ? u - j0 : BLOCK;

			for (int j = 0; j < len; j++) {
				dice_coef(act, j0 + j, mu, inv_sd, &a[j], &b[j]);
				al[j] = alpha_of(act, j0 + j);
			}
			nn_dice_gate(xi + j0, a, b, al, len);
		}
	}
}

static inline float
gelu(float x, int tanh_approx)
{
	if (tanh_approx) {
		const float k = 0.7978845608028654f; /* sqrt(2/pi) */

		return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
	}
	return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
}

void
nn_activate(const DinAct *act, float *x, int n)
{
	size_t total = (size_t)n * act->units;
	int u = act->units;

	switch (act->kind) {
	case DIN_ACT_LINEAR:
		break;
	case DIN_ACT_RELU:
		/* Auto-vectorized */
		for (size_t i = 0; i < total; i++)
			x[i] = x[i] > 0.0f ? x[i] : 0.0f;
		break;
	case DIN_ACT_SIGMOID:
		nn_sigmoid_inplace(x, total);
		break;
	case DIN_ACT_TANH:
		for (size_t i = 0; i < total; i++)
			x[i] = tanhf(x[i]);
		break;
	case DIN_ACT_LEAKY_RELU: {
		float slope = act->slope; /* a local: x might alias act, which blocks vectorizing */

		/* Auto-vectorized */
		for (size_t i = 0; i < total; i++)
			x[i] = x[i] >= 0.0f ? x[i] : slope * x[i];
		break;
	}
	case DIN_ACT_GELU:
		for (size_t i = 0; i < total; i++)
			x[i] = gelu(x[i], act->gelu_tanh);
		break;
	case DIN_ACT_HARD_SIGMOID:
		/* Auto-vectorized */
		for (size_t i = 0; i < total; i++) {
			float v = act->slope * x[i] + act->offset;

			x[i] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
		}
		break;
	case DIN_ACT_PRELU:
		for (int i = 0; i < n; i++) {
			float *xi = x + (size_t)i * u;
			const float *al = act->alpha;
			float a = al[0];

			/* Auto-vectorized: a branch per element mispredicts on half of them */
			if (act->alpha_n == 1)
				for (int j = 0; j < u; j++)
					xi[j] = xi[j] >= 0.0f ? xi[j] : a * xi[j];
			else
				for (int j = 0; j < u; j++) {
					float v = xi[j], neg = al[j] * v; /* unconditional load: no branch */

					xi[j] = v >= 0.0f ? v : neg;
				}
		}
		break;
	case DIN_ACT_DICE:
		dice(act, x, n);
		break;
	}
}

void
nn_layer(const DinLayer *layer, const float *x, int n, float *y)
{
	NnEpilogue ep = {.bn = &layer->bn, .act = &layer->act};

	nn_layer_product_ep(layer, &ep, x, n, y);
}
