/*
 * attention.h - multi-head scaled dot-product attention and layer norm, the kernels of the
 * transformer blocks (BST; DeepCTR's Transformer layer of reference/models.md §1.10).
 *
 * The caller projects Q, K and V (any layout: PyTorch in_proj, DeepCTR's query/key/value) and
 * passes them with row strides, so one kernel serves both and a caller can reuse projections
 * that do not change between calls (the behaviours' K and V across candidates). Layer norm is
 * self_attention.h's layer_norm; self_attention.c is DSIN's whole DeepCTR block, which computes
 * padded rows too, where this kernel sees only the rows a caller needs.
 */
#ifndef DIN_NN_ATTENTION_H
#define DIN_NN_ATTENTION_H

/*
 * out[nq, D] (row stride D) = concat over heads h of softmax(q_h k_hᵀ / sqrt(D/heads)) v_h,
 * head h owning columns [h·d, (h+1)·d). q, k, v rows have strides ldq, ldk, ldv.
 * key_valid[nk] (NULL = all valid): a masked key gets weight 0 (PyTorch's key_padding_mask);
 * a query row with no valid key gets the zero vector. probs, when not NULL, receives [nq, nk]
 * weights averaged over the heads (what din_explain reports). work: nk floats.
 */
void nn_mha(const float *q, int ldq, int nq, const float *k, int ldk, const float *v, int ldv,
            int nk, int D, int heads, const unsigned char *key_valid, float *out, float *probs,
            float *work);

#endif
