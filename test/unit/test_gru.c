/*
 * test_gru.c - src/nn/gru.c against the cell equations written out here in double, one row at
 * a time, for both conventions and every gate (docs/FORMAT.md "GRU tensors and conventions"
 * and "evolution").
 */
#include "unit.h"
#include "nn/gru.h"

#include <stdint.h>
#include <stdlib.h>

#define IN 5
#define HID 4
#define ROWS 3

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static double
sg(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

/* Weights of both conventions, independent random values. */
static float w_ih[3 * HID * IN], w_hh[3 * HID * HID], b_ih[3 * HID], b_hh[3 * HID];
static float gate_w[2 * HID * (IN + HID)], gate_b[2 * HID], cand_w[HID * (IN + HID)], cand_b[HID];

static DinGru
make_gru(DinGruConv conv)
{
	DinGru g = {.conv = conv, .in = IN, .hidden = HID};

	unit_fill(w_ih, sizeof(w_ih) / sizeof(float), &rng_state);
	unit_fill(w_hh, sizeof(w_hh) / sizeof(float), &rng_state);
	unit_fill(b_ih, sizeof(b_ih) / sizeof(float), &rng_state);
	unit_fill(b_hh, sizeof(b_hh) / sizeof(float), &rng_state);
	unit_fill(gate_w, sizeof(gate_w) / sizeof(float), &rng_state);
	unit_fill(gate_b, sizeof(gate_b) / sizeof(float), &rng_state);
	unit_fill(cand_w, sizeof(cand_w) / sizeof(float), &rng_state);
	unit_fill(cand_b, sizeof(cand_b) / sizeof(float), &rng_state);
	g.w_ih = w_ih;
	g.w_hh = w_hh;
	g.b_ih = b_ih;
	g.b_hh = b_hh;
	g.gate_w = gate_w;
	g.gate_b = gate_b;
	g.cand_w = cand_w;
	g.cand_b = cand_b;
	return g;
}

/* One step of one row, straight from the equations: out = h'. */
static void
ref_step(DinGruConv conv, DinGruGate gate, const float *x, const float *h, double a, double *out)
{
	double u[HID], c[HID], r[HID];

	if (conv == DIN_GRU_PYTORCH) {
		for (int j = 0; j < HID; j++) {
			double ir = b_ih[j], iz = b_ih[HID + j], in = b_ih[2 * HID + j];
			double hr = b_hh[j], hz = b_hh[HID + j], hn = b_hh[2 * HID + j];

			for (int k = 0; k < IN; k++) {
				ir += (double)w_ih[j * IN + k] * x[k];
				iz += (double)w_ih[(HID + j) * IN + k] * x[k];
				in += (double)w_ih[(2 * HID + j) * IN + k] * x[k];
			}
			for (int k = 0; k < HID; k++) {
				hr += (double)w_hh[j * HID + k] * h[k];
				hz += (double)w_hh[(HID + j) * HID + k] * h[k];
				hn += (double)w_hh[(2 * HID + j) * HID + k] * h[k];
			}
			r[j] = sg(ir + hr);
			u[j] = sg(iz + hz);
			c[j] = tanh(in + r[j] * hn);
		}
	} else {
		/* [r | u] = sigmoid([x, h] Wg + bg); c = tanh([x, r*h] Wc + bc), kernels as [out, in] */
		for (int j = 0; j < 2 * HID; j++) {
			double s = gate_b[j];

			for (int k = 0; k < IN; k++)
				s += (double)gate_w[j * (IN + HID) + k] * x[k];
			for (int k = 0; k < HID; k++)
				s += (double)gate_w[j * (IN + HID) + IN + k] * h[k];
			if (j < HID)
				r[j] = sg(s);
			else
				u[j - HID] = sg(s);
		}
		for (int j = 0; j < HID; j++) {
			double s = cand_b[j];

			for (int k = 0; k < IN; k++)
				s += (double)cand_w[j * (IN + HID) + k] * x[k];
			for (int k = 0; k < HID; k++)
				s += (double)cand_w[j * (IN + HID) + IN + k] * r[k] * h[k];
			c[j] = tanh(s);
		}
	}
	for (int j = 0; j < HID; j++) {
		double v;

		switch (gate) {
		case DIN_GATE_PLAIN:
			out[j] = u[j] * h[j] + (1 - u[j]) * c[j];
			break;
		case DIN_GATE_AUGRU_PAPER:
			v = a * u[j];
			out[j] = (1 - v) * h[j] + v * c[j];
			break;
		case DIN_GATE_AUGRU_CODE:
			v = (1 - a) * u[j];
			out[j] = v * h[j] + (1 - v) * c[j];
			break;
		case DIN_GATE_AGRU:
			out[j] = (1 - a) * h[j] + a * c[j];
			break;
		}
	}
}

/* ROWS rows stepped together (own inputs, then one shared input) equal the reference. */
static void
check_cell(DinGruConv conv, DinGruGate gate)
{
	DinGru g = make_gru(conv);
	float x[ROWS * IN], h[ROWS * HID], h0[ROWS * HID], a[ROWS], xp[ROWS * 3 * HID];
	float work[ROWS * 4 * HID];
	double want[HID];

	CHECK(gru_work_floats(&g, ROWS) <= sizeof(work) / sizeof(float));
	unit_fill(x, ROWS * IN, &rng_state);
	unit_fill(h0, ROWS * HID, &rng_state);
	for (int i = 0; i < ROWS; i++)
		a[i] = 0.5f * (unit_rand(&rng_state) + 1.0f);
	a[0] = 0.0f; /* the edges where the two AUGRU forms differ most */
	a[1] = 1.0f;

	gru_input(&g, x, ROWS, 1, xp);
	memcpy(h, h0, sizeof(h));
	gru_step(&g, gate, xp, 3 * HID, gate == DIN_GATE_PLAIN ? NULL : a, ROWS, h, work);
	for (int i = 0; i < ROWS; i++) {
		ref_step(conv, gate, x + i * IN, h0 + i * HID, a[i], want);
		for (int j = 0; j < HID; j++)
			CHECK_CLOSE(h[i * HID + j], want[j], 1e-6);
	}

	memcpy(h, h0, sizeof(h));
	gru_step(&g, gate, xp, 0, a, ROWS, h, work);
	for (int i = 0; i < ROWS; i++) {
		ref_step(conv, gate, x, h0 + i * HID, a[i], want);
		for (int j = 0; j < HID; j++)
			CHECK_CLOSE(h[i * HID + j], want[j], 1e-6);
	}
}

static void
test_gru_pytorch_plain(void)
{
	check_cell(DIN_GRU_PYTORCH, DIN_GATE_PLAIN);
}

static void
test_gru_pytorch_augru_paper(void)
{
	check_cell(DIN_GRU_PYTORCH, DIN_GATE_AUGRU_PAPER);
}

static void
test_gru_pytorch_augru_code(void)
{
	check_cell(DIN_GRU_PYTORCH, DIN_GATE_AUGRU_CODE);
}

static void
test_gru_pytorch_agru(void)
{
	check_cell(DIN_GRU_PYTORCH, DIN_GATE_AGRU);
}

static void
test_gru_tf_plain(void)
{
	check_cell(DIN_GRU_TF, DIN_GATE_PLAIN);
}

static void
test_gru_tf_augru_paper(void)
{
	check_cell(DIN_GRU_TF, DIN_GATE_AUGRU_PAPER);
}

static void
test_gru_tf_augru_code(void)
{
	check_cell(DIN_GRU_TF, DIN_GATE_AUGRU_CODE);
}

static void
test_gru_tf_agru(void)
{
	check_cell(DIN_GRU_TF, DIN_GATE_AGRU);
}

/* The paper AUGRU keeps the state at a = 0; the code AUGRU at a = 0 is a plain step. */
static void
test_gru_augru_forms_at_zero(void)
{
	for (int conv = 0; conv < 2; conv++) {
		DinGru g = make_gru((DinGruConv)conv);
		float x[IN], h0[HID], hp[HID], hc[HID], hg[HID], xp[3 * HID], work[4 * HID];
		float zero = 0.0f;

		unit_fill(x, IN, &rng_state);
		unit_fill(h0, HID, &rng_state);
		gru_input(&g, x, 1, 1, xp);
		memcpy(hp, h0, sizeof(hp));
		memcpy(hc, h0, sizeof(hc));
		memcpy(hg, h0, sizeof(hg));
		gru_step(&g, DIN_GATE_AUGRU_PAPER, xp, 0, &zero, 1, hp, work);
		gru_step(&g, DIN_GATE_AUGRU_CODE, xp, 0, &zero, 1, hc, work);
		gru_step(&g, DIN_GATE_PLAIN, xp, 0, NULL, 1, hg, work);
		for (int j = 0; j < HID; j++) {
			CHECK_CLOSE(hp[j], h0[j], 1e-7);
			CHECK_CLOSE(hc[j], hg[j], 1e-7);
		}
	}
}

/* AIGRU's trick: a (x W^T) + b equals (a x) W^T + b. */
static void
test_gru_input_linear(void)
{
	for (int conv = 0; conv < 2; conv++) {
		DinGru g = make_gru((DinGruConv)conv);
		float x[IN], ax[IN], p[3 * HID], q[3 * HID], b[3 * HID];
		float a = 0.37f;

		unit_fill(x, IN, &rng_state);
		for (int k = 0; k < IN; k++)
			ax[k] = a * x[k];
		gru_input(&g, x, 1, 0, p);
		gru_input_bias(&g, b);
		gru_input(&g, ax, 1, 1, q);
		for (int j = 0; j < 3 * HID; j++)
			CHECK_CLOSE(a * p[j] + b[j], q[j], 1e-6);
	}
}

void suite_gru(void);

void
suite_gru(void)
{
	RUN(test_gru_pytorch_plain);
	RUN(test_gru_pytorch_augru_paper);
	RUN(test_gru_pytorch_augru_code);
	RUN(test_gru_pytorch_agru);
	RUN(test_gru_tf_plain);
	RUN(test_gru_tf_augru_paper);
	RUN(test_gru_tf_augru_code);
	RUN(test_gru_tf_agru);
	RUN(test_gru_augru_forms_at_zero);
	RUN(test_gru_input_linear);
}
