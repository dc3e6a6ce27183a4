/*
 * self_attention.h - one block of multi-head self-attention over a short padded sequence, in
 * DeepCTR's `Transformer` form (DSIN's session interest extractor, docs/FORMAT.md "extractor")
 * with the paper's output projection W^O as an option.
 *
 * Rows t < len of x are behaviours, the rest padding; every row is computed (DeepCTR pools the
 * padded rows too), the masks only shape the attention weights.
 */
#ifndef DIN_SELF_ATTENTION_H
#define DIN_SELF_ATTENTION_H

#include "attention.h" /* layer_norm, DIN_ATT_MASKED */

#include <stddef.h>

typedef struct DinSelfAttention {
	int E;                      /* model width = heads * head width */
	int heads;                  /* head h reads columns [h d, (h+1) d), d = E / heads */
	int T;                      /* rows of the sequence (and of the position tables) */
	float scale;                /* scores are multiplied by this (DeepCTR 1/sqrt(d)) */
	const float *wq, *wk, *wv;  /* [E, E], no biases */
	const float *wo;            /* [E, E] or NULL: the paper's output projection W^O */
	const float *pos_q, *pos_k; /* [T, E] or NULL: added times sqrt(E) to the query/key input */
	int blinding;               /* a row may not attend to itself */
	int residual;               /* add the (encoded) query input, and the FFN input */
	const float *ffn1, *ffn2;   /* [F, E], [E, F] or NULL: relu(x W1^T) W2^T, no biases */
	int ffn_units;              /* F */
	const float *ln_w, *ln_b;   /* [E] or NULL: one layer norm, applied after both sublayers */
	float ln_eps;
} DinSelfAttention;

/* Floats of work self_attention_run needs. */
size_t self_attention_work_floats(const DinSelfAttention *a);

/* out[T, E] from x[T, E] whose first len rows are valid. out must not overlap x. */
void self_attention_run(const DinSelfAttention *a, const float *x, int len, float *out,
                        float *work);

#endif
