/*
 * gru.c - GRU steps for DIEN's extractor and evolution layers (see gru.h).
 *
 * The gate formulas follow the framework that trained the weights: PyTorch multiplies the reset
 * gate into the hidden product (r * (W_hn h + b_hn)), TF into the state before it (W_c (r * h)).
 * The two are not interconvertible, so both are kept.
 */
#include "gru.h"
#include "linear_strided.h"
#include "nn.h"
#include "sigmoid_kernels.h"

#include <math.h>

void
gru_input(const DinGru *g, const float *x, int n, int with_bias, float *xp)
{
	int H = g->hidden, in = g->in;

	if (g->conv == DIN_GRU_PYTORCH) {
		nn_linear_prepacked(x, in, n, in, g->w_ih, in, g->ih_packed, 3 * H,
		                    with_bias ? g->b_ih : NULL, xp);
		return;
	}
	/* the x columns of the [out, in+H] kernels, written into one [n, 3H] row layout */
	for (int i = 0; i < n; i++) {
		const float *xi = x + (size_t)i * in;
		float *row = xp + (size_t)i * 3 * H;

		for (int o = 0; o < 2 * H; o++)
			row[o] = nn_dot(xi, g->gate_w + (size_t)o * (in + H), in) +
			         (with_bias ? g->gate_b[o] : 0.0f);
		for (int o = 0; o < H; o++)
			row[2 * H + o] = nn_dot(xi, g->cand_w + (size_t)o * (in + H), in) +
			                 (with_bias ? g->cand_b[o] : 0.0f);
	}
}

void
gru_input_bias(const DinGru *g, float *bias)
{
	int H = g->hidden;

	for (int o = 0; o < 3 * H; o++)
		bias[o] = g->conv == DIN_GRU_PYTORCH ? g->b_ih[o]
		                                     : (o < 2 * H ? g->gate_b[o] : g->cand_b[o - 2 * H]);
}

size_t
gru_work_floats(const DinGru *g, int n)
{
	/* pytorch: the hidden products [n, 3H]; tf: gates [n, 2H], r*h [n, H], candidate [n, H] */
	return (size_t)n * 4 * g->hidden;
}

/*
 * The next state h from update gates u, candidates c, old state h and score a, for H units:
 * one loop per gate form, so each vectorizes.
 */
static void
mix(DinGruGate gate, const float *u, const float *c, float *h, float a, int H)
{
	switch (gate) {
	case DIN_GATE_AUGRU_PAPER:
		for (int j = 0; j < H; j++) {
			float v = a * u[j];

			h[j] = (1.0f - v) * h[j] + v * c[j];
		}
		return;
	case DIN_GATE_AUGRU_CODE:
		for (int j = 0; j < H; j++) {
			float v = (1.0f - a) * u[j];

			h[j] = v * h[j] + (1.0f - v) * c[j];
		}
		return;
	case DIN_GATE_AGRU:
		for (int j = 0; j < H; j++)
			h[j] = (1.0f - a) * h[j] + a * c[j];
		return;
	case DIN_GATE_PLAIN:
		break;
	}
	for (int j = 0; j < H; j++)
		h[j] = u[j] * h[j] + (1.0f - u[j]) * c[j];
}

/*
 * Gates and candidates go through the vector sigmoid and tanh a row at a time: one row's
 * elements are then computed alike whether the row is alone (din_score) or in a batch.
 */
static void
step_pytorch(const DinGru *g, DinGruGate gate, const float *xp, int ldxp, const float *a, int n,
             float *h, float *hh)
{
	int H = g->hidden;

	nn_linear_prepacked(h, H, n, H, g->w_hh, H, g->hh_packed, 3 * H, g->b_hh, hh);
	for (int i = 0; i < n; i++) {
		const float *x = xp + (size_t)i * ldxp;
		float *p = hh + (size_t)i * 3 * H, *hi = h + (size_t)i * H, ai = a ? a[i] : 0.0f;

		/* p = [r; z; n] pre-activations, then r, z and the candidate in place */
		for (int j = 0; j < 2 * H; j++)
			p[j] += x[j];
		nn_sigmoid_inplace(p, (size_t)2 * H);
		for (int j = 0; j < H; j++)
			p[2 * H + j] = x[2 * H + j] + p[j] * p[2 * H + j];
		nn_tanh_inplace(p + 2 * H, H);
		mix(gate, p + H, p + 2 * H, hi, ai, H);
	}
}

static void
step_tf(const DinGru *g, DinGruGate gate, const float *xp, int ldxp, const float *a, int n,
        float *h, float *work)
{
	int H = g->hidden, ld = g->in + H;
	float *gates = work, *rh = work + (size_t)n * 2 * H, *cand = rh + (size_t)n * H;

	nn_linear_prepacked(h, H, n, H, g->gate_w + g->in, ld, g->hh_packed, 2 * H, NULL, gates);
	for (int i = 0; i < n; i++) {
		const float *x = xp + (size_t)i * ldxp;
		float *gi = gates + (size_t)i * 2 * H;

		for (int j = 0; j < 2 * H; j++)
			gi[j] += x[j];
		nn_sigmoid_inplace(gi, (size_t)2 * H);
		for (int j = 0; j < H; j++)
			rh[(size_t)i * H + j] = gi[j] * h[(size_t)i * H + j];
	}
	nn_linear_prepacked(rh, H, n, H, g->cand_w + g->in, ld, g->cand_packed, H, NULL, cand);
	for (int i = 0; i < n; i++) {
		const float *x = xp + (size_t)i * ldxp, *u = gates + (size_t)i * 2 * H + H;
		float *c = cand + (size_t)i * H, *hi = h + (size_t)i * H, ai = a ? a[i] : 0.0f;

		for (int j = 0; j < H; j++)
			c[j] += x[2 * H + j];
		nn_tanh_inplace(c, H);
		mix(gate, u, c, hi, ai, H);
	}
}

void
gru_step(const DinGru *g, DinGruGate gate, const float *xp, int ldxp, const float *a, int n,
         float *h, float *work)
{
	if (g->conv == DIN_GRU_PYTORCH)
		step_pytorch(g, gate, xp, ldxp, a, n, h, work);
	else
		step_tf(g, gate, xp, ldxp, a, n, h, work);
}
