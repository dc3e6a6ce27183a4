/*
 * self_attention.c - DeepCTR's Transformer block (see self_attention.h): Q from the query
 * input, K and V from the key input, key mask and blinding by the score -2^32, softmax over all
 * T keys (so a row with every key masked spreads 1/T over all of them, as DeepCTR does), padded
 * query rows zeroed, residual, shared layer norm, ReLU feed-forward.
 */
#include "self_attention.h"

#include "nn.h"

#include <math.h>
#include <string.h>

size_t
self_attention_work_floats(const DinSelfAttention *a)
{
	size_t TE = (size_t)a->T * a->E;

	return 6 * TE + (size_t)a->T * a->T + (size_t)a->T * (a->ffn_units > 0 ? a->ffn_units : 1);
}

void
layer_norm(float *x, int n, int E, const float *w, const float *b, float eps)
{
	for (int i = 0; i < n; i++) {
		float *r = x + (size_t)i * E;
		double mean = 0, var = 0;

		for (int j = 0; j < E; j++)
			mean += r[j];
		mean /= E;
		for (int j = 0; j < E; j++)
			var += (r[j] - mean) * (r[j] - mean);
		var /= E;
		for (int j = 0; j < E; j++)
			r[j] = (float)((r[j] - mean) / sqrt(var + eps)) * w[j] + b[j];
	}
}

/* xe = x + sqrt(E) pos (or x when pos is NULL). */
static void
encode(const DinSelfAttention *a, const float *x, const float *pos, float *xe)
{
	size_t TE = (size_t)a->T * a->E;
	float s = sqrtf((float)a->E);

	for (size_t i = 0; i < TE; i++)
		xe[i] = pos ? x[i] + s * pos[i] : x[i];
}

void
self_attention_run(const DinSelfAttention *a, const float *x, int len, float *out, float *work)
{
	int T = a->T, E = a->E, d = E / a->heads;
	size_t TE = (size_t)T * E;
	float *xq = work, *xk = xq + TE, *q = xk + TE, *k = q + TE, *v = k + TE, *r = v + TE;
	float *w = r + TE, *f = w + (size_t)T * T;

	encode(a, x, a->pos_q, xq);
	encode(a, x, a->pos_k, xk);
	nn_linear(xq, T, E, E, a->wq, NULL, q);
	nn_linear(xk, T, E, E, a->wk, NULL, k);
	nn_linear(xk, T, E, E, a->wv, NULL, v);
	memset(r, 0, sizeof(float) * TE);
	for (int h = 0; h < a->heads; h++) {
		int c0 = h * d;

		for (int i = 0; i < T; i++) {
			float *wi = w + (size_t)i * T;

			for (int j = 0; j < T; j++) {
				if (j >= len || (a->blinding && i == j))
					wi[j] = DIN_ATT_MASKED;
				else
					wi[j] = nn_dot(q + (size_t)i * E + c0, k + (size_t)j * E + c0, d) * a->scale;
			}
			nn_softmax(wi, T);
			if (i >= len)
				continue; /* padded query rows attend to nothing */
			for (int j = 0; j < T; j++)
				for (int c = 0; c < d; c++)
					r[(size_t)i * E + c0 + c] += wi[j] * v[(size_t)j * E + c0 + c];
		}
	}
	if (a->wo) {
		nn_linear(r, T, E, E, a->wo, NULL, out);
		memcpy(r, out, sizeof(float) * TE);
	}
	if (a->residual)
		for (size_t i = 0; i < TE; i++)
			r[i] += xq[i];
	if (a->ln_w)
		layer_norm(r, T, E, a->ln_w, a->ln_b, a->ln_eps);
	if (a->ffn1) {
		nn_linear(r, T, E, a->ffn_units, a->ffn1, NULL, f);
		for (size_t i = 0; i < (size_t)T * a->ffn_units; i++)
			f[i] = f[i] > 0.0f ? f[i] : 0.0f;
		nn_linear(f, T, a->ffn_units, E, a->ffn2, NULL, out);
		if (a->residual)
			for (size_t i = 0; i < TE; i++)
				out[i] += r[i];
		if (a->ln_w)
			layer_norm(out, T, E, a->ln_w, a->ln_b, a->ln_eps);
	} else
		memcpy(out, r, sizeof(float) * TE);
}
