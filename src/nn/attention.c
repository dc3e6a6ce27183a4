/*
 * attention.c - multi-head attention and layer norm (attention.h).
 *
 * Histories are short (max_len is at most a few hundred), so each head's scores are one
 * row of dots per query; the softmax subtracts the maximum first, which keeps it within 1e-6
 * of a double computation.
 */
#include "attention.h"
#include "nn.h"

#include <math.h>
#include <string.h>

static int
masked(const NnMhaMask *m, int i, int j)
{
	return m && ((m->key_valid && !m->key_valid[j]) || (m->blind_diagonal && i == j));
}

/*
 * work[0, nk) = weights of query row qi in one head; returns 0 when the row sees no key.
 * PyTorch's masking drops masked keys (a float sum over the rest); DeepCTR's keeps them at
 * DIN_ATT_MASKED through nn_softmax, as its reference does.
 */
static int
head_weights(const NnMhaMask *m, int i, const float *qi, const float *k, int ldk, int nk, int d,
             float scale, float *work)
{
	float top = -INFINITY, sum = 0.0f;

	if (m && m->deepctr_scores) {
		for (int j = 0; j < nk; j++)
			work[j] = masked(m, i, j) ? DIN_ATT_MASKED : nn_dot(qi, k + (size_t)j * ldk, d) * scale;
		nn_softmax(work, nk);
		return 1;
	}
	for (int j = 0; j < nk; j++) {
		if (masked(m, i, j))
			continue;
		work[j] = nn_dot(qi, k + (size_t)j * ldk, d) * scale;
		if (work[j] > top)
			top = work[j];
	}
	if (top == -INFINITY)
		return 0;
	for (int j = 0; j < nk; j++) {
		if (masked(m, i, j)) {
			work[j] = 0.0f;
			continue;
		}
		work[j] = expf(work[j] - top);
		sum += work[j];
	}
	for (int j = 0; j < nk; j++)
		work[j] /= sum;
	return 1;
}

void
nn_mha(const float *q, int ldq, int nq, const float *k, int ldk, const float *v, int ldv, int nk,
       int D, int heads, const NnMhaMask *mask, float *out, float *probs, float *work)
{
	int d = D / heads;
	float scale = mask && mask->scale != 0.0f ? mask->scale : 1.0f / sqrtf((float)d);

	memset(out, 0, sizeof(float) * (size_t)nq * D);
	if (probs)
		memset(probs, 0, sizeof(float) * (size_t)nq * nk);
	for (int i = 0; i < nq; i++)
		for (int h = 0; h < heads; h++) {
			float *oi = out + (size_t)i * D + h * d;

			if (!head_weights(mask, i, q + (size_t)i * ldq + h * d, k + h * d, ldk, nk, d, scale,
			                  work))
				continue;
			for (int j = 0; j < nk; j++) {
				const float *vj = v + (size_t)j * ldv + h * d;
				float w = work[j];

				if (w == 0.0f)
					continue;
				for (int c = 0; c < d; c++)
					oi[c] += w * vj[c];
				if (probs)
					probs[(size_t)i * nk + j] += w / (float)heads;
			}
		}
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
