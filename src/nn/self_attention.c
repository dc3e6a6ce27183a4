/*
 * self_attention.c - DeepCTR's Transformer block (see self_attention.h): Q from the query
 * input, K and V from the key input, nn_mha with DeepCTR's scores (key mask and blinding by the
 * score -2^32, softmax over all T keys, so a row with every key masked spreads 1/T over all of
 * them, as DeepCTR does), padded query rows zeroed, residual, shared layer norm, ReLU
 * feed-forward.
 */
#include "self_attention.h"

#include "attention.h"
#include "nn.h"

#include <math.h>
#include <string.h>

size_t
self_attention_work_floats(const DinSelfAttention *a)
{
	size_t TE = (size_t)a->T * a->E;

	/* xq, xk, q, k, v, r; nn_mha's scores and the key mask; the feed-forward hidden rows */
	return 6 * TE + 2 * (size_t)a->T + (size_t)a->T * (a->ffn_units > 0 ? a->ffn_units : 1);
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
	int T = a->T, E = a->E;
	size_t TE = (size_t)T * E;
	float *xq = work, *xk = xq + TE, *q = xk + TE, *k = q + TE, *v = k + TE, *r = v + TE;
	float *scores = r + TE, *f = scores + 2 * (size_t)T;
	unsigned char *key_valid = (unsigned char *)(scores + T);
	NnMhaMask mask = {key_valid, a->blinding, 1, a->scale};

	encode(a, x, a->pos_q, xq);
	encode(a, x, a->pos_k, xk);
	nn_linear(xq, T, E, E, a->wq, NULL, q);
	nn_linear(xk, T, E, E, a->wk, NULL, k);
	nn_linear(xk, T, E, E, a->wv, NULL, v);
	for (int j = 0; j < T; j++)
		key_valid[j] = j < len;
	/* padded query rows attend to nothing: only the first len rows are computed */
	nn_mha(q, E, len, k, E, v, E, T, E, a->heads, &mask, r, NULL, scores);
	memset(r + (size_t)len * E, 0, sizeof(float) * (size_t)(T - len) * E);
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
