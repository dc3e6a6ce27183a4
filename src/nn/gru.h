/*
 * gru.h - GRU cells in the two weight conventions din reads, and the attentional variants of
 * DIEN (docs/FORMAT.md "Architecture dien": "GRU tensors and conventions", "evolution").
 *
 * A step runs n rows at once: DIEN's evolution GRU carries one state per candidate, all fed
 * the same extractor states, so the input part of a step is computed once and shared (row
 * stride 0) while only the hidden-side products are per candidate.
 */
#ifndef DIN_GRU_H
#define DIN_GRU_H

#include <stddef.h>

typedef enum DinGruConv {
	DIN_GRU_PYTORCH = 0, /* rows [r; z; n], reset applied after the hidden product */
	DIN_GRU_TF           /* TF GRUCell: [r | u] gates on [x, h], reset applied before */
} DinGruConv;

/* How a step uses its row's attention score a. u is the update gate's sigmoid output. */
typedef enum DinGruGate {
	DIN_GATE_PLAIN = 0,   /* standard GRU (u weights the old state); a unused */
	DIN_GATE_AUGRU_PAPER, /* v = a u; h' = (1 - v) h + v c (DIEN paper, DeepCTR-Torch) */
	DIN_GATE_AUGRU_CODE,  /* v = (1 - a) u; h' = v h + (1 - v) c (DIEN repo, DeepCTR TF) */
	DIN_GATE_AGRU         /* h' = (1 - a) h + a c */
} DinGruGate;

typedef struct DinGru {
	DinGruConv conv;
	int in;
	int hidden;
	/* pytorch: w_ih [3H, in], w_hh [3H, H], b_ih, b_hh [3H] */
	const float *w_ih, *w_hh, *b_ih, *b_hh;
	/* tf (kernels transposed to [out, in]): gate_w [2H, in+H], gate_b [2H], cand_w [H, in+H],
	 * cand_b [H]; columns 0..in-1 act on x, the rest on h (or r*h) */
	const float *gate_w, *gate_b, *cand_w, *cand_b;
	/*
	 * nn_pack_weight forms, set once per model (or NULL): pytorch w_ih and w_hh; tf the h
	 * columns of gate_w (hh_packed) and of cand_w (cand_packed).
	 */
	const float *ih_packed, *hh_packed, *cand_packed;
} DinGru;

/*
 * xp[n, 3H] = the input side of each step for inputs x[n, in]: pytorch x W_ih^T (+ b_ih),
 * tf [x Wg_x^T (+ b_g), x Wc_x^T (+ b_c)]. Linear in x without biases, which AIGRU uses to
 * scale a shared product per candidate.
 */
void gru_input(const DinGru *g, const float *x, int n, int with_bias, float *xp);

/* The biases gru_input leaves out: bias[3H]. */
void gru_input_bias(const DinGru *g, float *bias);

/* Floats of work gru_step needs for n rows. */
size_t gru_work_floats(const DinGru *g, int n);

/*
 * One step of n rows: h[n, H] is replaced by the next state. Row i reads xp + i * ldxp (ldxp 0:
 * every row shares one input) and a[i] (a may be NULL for DIN_GATE_PLAIN).
 */
void gru_step(const DinGru *g, DinGruGate gate, const float *xp, int ldxp, const float *a, int n,
              float *h, float *work);

#endif
