/*
 * linear_strided.h - nn_linear over sub-matrices, for callers that split a weight by columns.
 *
 * The DIN attention unit splits its first weight [U, 4E] into four [U, E] column blocks so the
 * query and key parts are computed once per candidate and once per behaviour instead of once
 * per pair; each block is a strided view of the stored tensor.
 */
#ifndef DIN_LINEAR_STRIDED_H
#define DIN_LINEAR_STRIDED_H

/*
 * y[n, out] (row stride out) = x[n, in] (row stride ldx) W^T + b, W [out, in] with row stride
 * ldw. b may be NULL. x and y must not overlap.
 */
void nn_linear_strided(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
                       const float *b, float *y);

/*
 * nn_linear_strided with W's packed form when there is one (packed from nn_pack_weight, or
 * NULL): the same kernel and the same bits as without, minus the packing.
 */
void nn_linear_prepacked(const float *x, int ldx, int n, int in, const float *w, int ldw,
                         const float *packed, int out, const float *b, float *y);

#endif
