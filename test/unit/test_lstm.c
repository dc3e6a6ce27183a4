/*
 * test_lstm.c - the LSTM and self-attention kernels of DSIN against scalar references written
 * here from docs/FORMAT.md "interacting" and "extractor" in double precision.
 */
#include "unit.h"

#include "nn/lstm.h"
#include "nn/self_attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float
rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return ((float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f) * 2.0f;
}

static void
fill(float *x, int n, float scale, unsigned *s)
{
	for (int i = 0; i < n; i++)
		x[i] = rnd(s) * scale;
}

static double
gate_ref(int hard, double z)
{
	if (hard)
		return fmin(1.0, fmax(0.0, 0.2 * z + 0.5));
	return 1.0 / (1.0 + exp(-z));
}

/* Keras LSTM step by step from the zero state, in double. */
static void
lstm_ref(const DinLstm *l, const float *x, int T, int reverse, double *out)
{
	int H = l->hidden, I = l->in;
	double h[64] = {0}, c[64] = {0}, z[256];

	for (int s = 0; s < T; s++) {
		int t = reverse ? T - 1 - s : s;

		for (int r = 0; r < 4 * H; r++) {
			z[r] = (double)l->b_ih[r] + l->b_hh[r];
			for (int j = 0; j < I; j++)
				z[r] += (double)l->w_ih[r * I + j] * x[t * I + j];
			for (int j = 0; j < H; j++)
				z[r] += (double)l->w_hh[r * H + j] * h[j];
		}
		for (int j = 0; j < H; j++) {
			double i = gate_ref(l->gate, z[j]), f = gate_ref(l->gate, z[H + j]);
			double g = tanh(z[2 * H + j]), o = gate_ref(l->gate, z[3 * H + j]);

			c[j] = f * c[j] + i * g;
			h[j] = o * tanh(c[j]);
			out[t * H + j] = h[j];
		}
	}
}

static void
test_lstm_matches_reference(void)
{
	unsigned seed = 7;

	for (int hard = 0; hard < 2; hard++)
		for (int reverse = 0; reverse < 2; reverse++) {
			int I = 5, H = 6, T = 7;
			float w_ih[4 * 6 * 5], w_hh[4 * 6 * 6], b_ih[24], b_hh[24], x[7 * 5], out[7 * 6];
			float *work;
			double ref[7 * 6], worst = 0;
			DinLstm l = {I,    H,   hard ? DIN_LSTM_HARD_SIGMOID : DIN_LSTM_SIGMOID, w_ih, w_hh,
			             b_ih, b_hh};

			fill(w_ih, 4 * H * I, 1.5f, &seed);
			fill(w_hh, 4 * H * H, 1.5f, &seed);
			fill(b_ih, 4 * H, 1.0f, &seed);
			fill(b_hh, 4 * H, 1.0f, &seed);
			fill(x, T * I, 2.0f, &seed);
			work = malloc(lstm_work_floats(&l, T) * sizeof(float));
			lstm_run(&l, x, T, reverse, out, work);
			lstm_ref(&l, x, T, reverse, ref);
			for (int i = 0; i < T * H; i++)
				worst = fmax(worst, fabs(out[i] - ref[i]));
			CHECK(worst < 1e-5);
			/* a reversed run stores the state of step 0 at the last index */
			if (reverse) {
				double first[6 * 1];

				lstm_ref(&l, x + (T - 1) * I, 1, 0, first);
				for (int j = 0; j < H; j++)
					CHECK_CLOSE(out[(T - 1) * H + j], first[j], 1e-5);
			}
			free(work);
		}
}

static void
test_lstm_hard_sigmoid_saturates(void)
{
	/* with huge gate inputs hard_sigmoid is exactly 0 or 1: c = tanh(g), h = tanh(c) */
	float w_ih[4] = {100.0f, 100.0f, 1.0f, 100.0f}, w_hh[4] = {0}, b[4] = {0}, x = 1.0f, h;
	float work[16];
	DinLstm l = {1, 1, DIN_LSTM_HARD_SIGMOID, w_ih, w_hh, b, b};

	lstm_run(&l, &x, 1, 0, &h, work);
	CHECK_CLOSE(h, tanh(tanh(1.0)), 1e-6);
}

/* DeepCTR's transformer in double (docs/FORMAT.md "extractor"), for one sequence. */
static void
attention_ref(const DinSelfAttention *a, const float *x, int len, double *out)
{
	int T = a->T, E = a->E, d = E / a->heads, F = a->ffn_units;
	double xq[8 * 8], xk[8 * 8], q[8 * 8], k[8 * 8], v[8 * 8], r[8 * 8], f[8 * 32];

	for (int i = 0; i < T * E; i++) {
		xq[i] = x[i] + (a->pos_q ? sqrt((double)E) * a->pos_q[i] : 0.0);
		xk[i] = x[i] + (a->pos_k ? sqrt((double)E) * a->pos_k[i] : 0.0);
	}
	for (int t = 0; t < T; t++)
		for (int o = 0; o < E; o++) {
			q[t * E + o] = k[t * E + o] = v[t * E + o] = 0;
			for (int j = 0; j < E; j++) {
				q[t * E + o] += a->wq[o * E + j] * xq[t * E + j];
				k[t * E + o] += a->wk[o * E + j] * xk[t * E + j];
				v[t * E + o] += a->wv[o * E + j] * xk[t * E + j];
			}
		}
	for (int h = 0; h < a->heads; h++)
		for (int i = 0; i < T; i++) {
			double s[8], mx = -INFINITY, sum = 0;

			for (int j = 0; j < T; j++) {
				s[j] = 0;
				for (int c = 0; c < d; c++)
					s[j] += q[i * E + h * d + c] * k[j * E + h * d + c];
				s[j] *= a->scale;
				if (j >= len || (a->blinding && i == j))
					s[j] = -4294967296.0;
				mx = fmax(mx, s[j]);
			}
			for (int j = 0; j < T; j++)
				sum += s[j] = exp(s[j] - mx);
			for (int c = 0; c < d; c++) {
				double acc = 0;

				for (int j = 0; j < T; j++)
					acc += s[j] / sum * v[j * E + h * d + c];
				r[i * E + h * d + c] = i < len ? acc : 0.0;
			}
		}
	for (int i = 0; i < T * E; i++)
		r[i] += xq[i];
	for (int t = 0; t < T; t++) {
		for (int o = 0; o < F; o++) {
			f[t * F + o] = 0;
			for (int j = 0; j < E; j++)
				f[t * F + o] += a->ffn1[o * E + j] * r[t * E + j];
			f[t * F + o] = fmax(f[t * F + o], 0.0);
		}
		for (int o = 0; o < E; o++) {
			double acc = r[t * E + o];

			for (int j = 0; j < F; j++)
				acc += a->ffn2[o * F + j] * f[t * F + j];
			out[t * E + o] = acc;
		}
	}
}

static void
test_self_attention_matches_reference(void)
{
	enum { T = 6, E = 8, F = 32 };
	static float wq[E * E], wk[E * E], wv[E * E], pq[T * E], pk[T * E], f1[F * E], f2[E * F];
	float x[T * E], out[T * E], *work;
	unsigned seed = 11;
	DinSelfAttention a = {
	    E, 4, T, 1.0f / sqrtf(2.0f), wq, wk, wv, NULL, pq, pk, 1, 1, f1, f2, F, NULL, NULL, 0.0f};

	fill(wq, E * E, 0.8f, &seed);
	fill(wk, E * E, 0.8f, &seed);
	fill(wv, E * E, 0.8f, &seed);
	fill(pq, T * E, 0.2f, &seed);
	fill(pk, T * E, 0.2f, &seed);
	fill(f1, F * E, 0.4f, &seed);
	fill(f2, E * F, 0.2f, &seed);
	fill(x, T * E, 1.0f, &seed);
	work = malloc(self_attention_work_floats(&a) * sizeof(float));
	/* len 0 and 1 (every key masked: uniform over all T), partial, full */
	for (int len = 0; len <= T; len++) {
		double ref[T * E], worst = 0;

		a.blinding = len % 2;
		self_attention_run(&a, x, len, out, work);
		attention_ref(&a, x, len, ref);
		for (int i = 0; i < T * E; i++)
			worst = fmax(worst, fabs(out[i] - ref[i]) / fmax(1.0, fabs(ref[i])));
		CHECK(worst < 1e-5);
	}
	free(work);
}

static void
test_layer_norm(void)
{
	float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 1}, b[4] = {0, 0, 0, 1};
	double sd = sqrt(1.25 + 1e-9);

	layer_norm(x, 1, 4, w, b, 1e-9f);
	CHECK_CLOSE(x[0], -1.5 / sd, 1e-6);
	CHECK_CLOSE(x[2], 2 * 0.5 / sd, 1e-6);
	CHECK_CLOSE(x[3], 1.5 / sd + 1, 1e-6);
}

void suite_lstm(void);

void
suite_lstm(void)
{
	RUN(test_lstm_matches_reference);
	RUN(test_lstm_hard_sigmoid_saturates);
	RUN(test_self_attention_matches_reference);
	RUN(test_layer_norm);
}
