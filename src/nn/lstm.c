/*
 * lstm.c - LSTM over a short sequence (DSIN runs it over K sessions, K ~ 5): the input side of
 * every step in one product, then one recurrent product per step.
 */
#include "lstm.h"

#include "nn.h"
#include "sigmoid_kernels.h"

#include <math.h>
#include <string.h>

size_t
lstm_work_floats(const DinLstm *l, int T)
{
	return (size_t)(T > 0 ? T : 1) * 4 * l->hidden + 6 * (size_t)l->hidden;
}

/* The gates i, f, o of z[4H] = [i, f, g, o] in place, a vector call each, and tanh of g. */
static void
gates(DinLstmGate g, float *z, int H)
{
	for (int k = 0; k < 4; k++) {
		float *v = z + (size_t)k * H;

		if (k == 2)
			nn_tanh_inplace(v, H);
		else if (g == DIN_LSTM_HARD_SIGMOID)
			for (int j = 0; j < H; j++) {
				float t = 0.2f * v[j] + 0.5f;

				v[j] = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
			}
		else
			nn_sigmoid_inplace(v, H);
	}
}

void
lstm_run(const DinLstm *l, const float *x, int T, int reverse, float *out, float *work)
{
	int H = l->hidden;
	float *xp = work, *z = work + (size_t)T * 4 * H, *h = z + 4 * H, *c = h + H;

	if (T <= 0)
		return;
	nn_linear(x, T, l->in, 4 * H, l->w_ih, l->b_ih, xp);
	memset(h, 0, sizeof(float) * H);
	memset(c, 0, sizeof(float) * H);
	for (int s = 0; s < T; s++) {
		int t = reverse ? T - 1 - s : s;
		const float *xt = xp + (size_t)t * 4 * H;

		nn_linear(h, 1, H, 4 * H, l->w_hh, l->b_hh, z);
		for (int j = 0; j < 4 * H; j++)
			z[j] += xt[j];
		gates(l->gate, z, H);
		for (int j = 0; j < H; j++) {
			c[j] = z[H + j] * c[j] + z[j] * z[2 * H + j];
			h[j] = c[j];
		}
		nn_tanh_inplace(h, H);
		for (int j = 0; j < H; j++)
			h[j] *= z[3 * H + j];
		memcpy(out + (size_t)t * H, h, sizeof(float) * H);
	}
}
