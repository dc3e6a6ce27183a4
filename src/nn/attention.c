/*
 * attention.c - multi-head attention (attention.h).
 *
 * Histories are short (max_len is at most a few hundred), so each head's scores are one
 * row of dots per query; the softmax and sums accumulate in float with the maximum
 * subtracted first, which keeps them within 1e-6 of a double computation.
 */
#include "attention.h"
#include "nn.h"

#include <math.h>
#include <string.h>

void
nn_mha(const float *q, int ldq, int nq, const float *k, int ldk, const float *v, int ldv, int nk,
       int D, int heads, const unsigned char *key_valid, float *out, float *probs, float *work)
{
	int d = D / heads;
	float scale = 1.0f / sqrtf((float)d);

	memset(out, 0, sizeof(float) * (size_t)nq * D);
	if (probs)
		memset(probs, 0, sizeof(float) * (size_t)nq * nk);
	for (int i = 0; i < nq; i++)
		for (int h = 0; h < heads; h++) {
			const float *qi = q + (size_t)i * ldq + h * d;
			float *oi = out + (size_t)i * D + h * d;
			float top = -INFINITY, sum = 0.0f;

			for (int j = 0; j < nk; j++) {
				if (key_valid && !key_valid[j])
					continue;
				work[j] = nn_dot(qi, k + (size_t)j * ldk + h * d, d) * scale;
				if (work[j] > top)
					top = work[j];
			}
			if (top == -INFINITY)
				continue;
			for (int j = 0; j < nk; j++) {
				if (key_valid && !key_valid[j]) {
					work[j] = 0.0f;
					continue;
				}
				work[j] = expf(work[j] - top);
				sum += work[j];
			}
			for (int j = 0; j < nk; j++) {
				const float *vj = v + (size_t)j * ldv + h * d;
				float w = work[j] / sum;

				if (w == 0.0f)
					continue;
				for (int c = 0; c < d; c++)
					oi[c] += w * vj[c];
				if (probs)
					probs[(size_t)i * nk + j] += w / (float)heads;
			}
		}
}
