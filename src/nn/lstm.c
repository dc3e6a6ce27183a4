/*
 * lstm.c - LSTM over a short sequence (DSIN runs it over K sessions, K ~ 5): the input side of
 * every step in one product, then one recurrent product per step.
 */
#include "lstm.h"

#include "nn.h"

#include <math.h>
#include <string.h>

size_t
lstm_work_floats(const DinLstm *l, int T)
{
	return (size_t)(T > 0 ? T : 1) * 4 * l->hidden + 6 * (size_t)l->hidden;
}

static inline float
gate(DinLstmGate g, float z)
{
	if (g == DIN_LSTM_HARD_SIGMOID) {
		float v = 0.2f * z + 0.5f;

		return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
	}
	return 1.0f / (1.0f + expf(-z));
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
		for (int j = 0; j < H; j++) {
			float i = gate(l->gate, z[j]), f = gate(l->gate, z[H + j]);
			float g = tanhf(z[2 * H + j]), o = gate(l->gate, z[3 * H + j]);

			c[j] = f * c[j] + i * g;
			h[j] = o * tanhf(c[j]);
		}
		memcpy(out + (size_t)t * H, h, sizeof(float) * H);
	}
}
