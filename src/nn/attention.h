/*
 * attention.h - multi-head scaled dot-product attention and layer norm, the kernels of the
 * transformer blocks: BST's, and DeepCTR's Transformer layer that DSIN's self_attention.c
 * builds around them (docs/FORMAT.md "Architecture bst" and DSIN's "extractor").
 *
 * The caller projects Q, K and V (any layout: PyTorch in_proj, DeepCTR's query/key/value) and
 * passes them with row strides, so one kernel serves both and a caller can reuse projections
 * that do not change between calls (the behaviours' K and V across candidates).
 */
#ifndef DIN_NN_ATTENTION_H
#define DIN_NN_ATTENTION_H

/* The score a masked entry gets in DeepCTR: -2^32 + 1, which float32 rounds to -2^32. */
#define DIN_ATT_MASKED (-4294967296.0f)

/*
 * Which keys a query sees and how scores are formed; a NULL NnMhaMask (or a zeroed one) is
 * PyTorch's MultiheadAttention: every key valid, scale 1/sqrt(D/heads).
 */
typedef struct NnMhaMask {
	const unsigned char *key_valid; /* [nk] or NULL: every key valid */
	int blind_diagonal;             /* query i may not see key i (DeepCTR's blinding) */
	/*
	 * 0: a masked key gets weight 0 and a query with no key left gets the zero vector
	 * (PyTorch's key_padding_mask). 1: a masked key scores DIN_ATT_MASKED and stays in the
	 * softmax (DeepCTR), so a query whose keys are all masked averages every value row.
	 */
	int deepctr_scores;
	float scale; /* scores are multiplied by this; 0 means 1/sqrt(D/heads) */
} NnMhaMask;

/*
 * out[nq, D] (row stride D) = concat over heads h of softmax(q_h k_hᵀ · scale) v_h,
 * head h owning columns [h·d, (h+1)·d). q, k, v rows have strides ldq, ldk, ldv.
 * probs, when not NULL, receives [nq, nk] weights averaged over the heads (what din_explain
 * reports). work: nk floats.
 */
void nn_mha(const float *q, int ldq, int nq, const float *k, int ldk, const float *v, int ldv,
            int nk, int D, int heads, const NnMhaMask *mask, float *out, float *probs, float *work);

/* In place over x[n, E]: (x - mean)/sqrt(var + eps) w + b, population variance. */
void layer_norm(float *x, int n, int E, const float *w, const float *b, float eps);

#endif
