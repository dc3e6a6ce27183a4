/*
 * linear_strided.h - nn_linear over sub-matrices, for callers that split a weight by columns.
 *
 * The DIN attention unit splits its first weight [U, 4E] into four [U, E] column blocks so the
 * query and key parts are computed once per candidate and once per behaviour instead of once
 * per pair; each block is a strided view of the stored tensor.
 */
#ifndef DIN_LINEAR_STRIDED_H
#define DIN_LINEAR_STRIDED_H

/* Products at or above this many multiply-adds (with n >= NN_SGEMM_MIN_ROWS) go to sgemm. */
#define NN_SGEMM_MIN_MACS 65536
#define NN_SGEMM_MIN_ROWS 8

/*
 * y[n, out] (row stride out) = x[n, in] (row stride ldx) W^T + b, W [out, in] with row stride
 * ldw. b may be NULL. x and y must not overlap.
 */
void nn_linear_strided(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
                       const float *b, float *y);

/* The small-product kernels, exposed so tests can compare them; avx2 needs nn_has_avx2(). */
void nn_linear_portable(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
                        const float *b, float *y);
void nn_linear_avx2(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
                    const float *b, float *y);
int nn_has_avx2(void);

/* Register-blocked AVX2/FMA kernel (linear_blocked.c) for products of many rows; needs
 * nn_has_avx2(). */
void nn_linear_avx2_blocked(const float *x, int ldx, int n, int in, const float *w, int ldw,
                            int out, const float *b, float *y);

/* The blocked kernel on a weight prepacked by nn_pack_weight (packed NULL: packs w itself). */
void nn_linear_avx2_packed(const float *x, int ldx, int n, int in, const float *w, int ldw,
                           const float *packed, int out, const float *b, float *y);

/*
 * nn_linear_strided with W's packed form when there is one (packed from nn_pack_weight, or
 * NULL): the same kernel and the same bits as without, minus the packing.
 */
void nn_linear_prepacked(const float *x, int ldx, int n, int in, const float *w, int ldw,
                         const float *packed, int out, const float *b, float *y);

/*
 * AVX-512F tiles of the blocked kernel (linear_avx512.c) over one packed k-block: the AVX2
 * tiles' results, to the bit; needs nn_has_avx512().
 */
int nn_has_avx512(void);
/* Tests: off = 1 keeps the blocked kernel on its AVX2 tiles, to compare the two. */
void nn_linear_avx512_disable(int off);
void nn_block_product_avx512(const float *x, int ldx, int n, const float *packed, int kc, int ldp,
                             int oc, int first, const float *bias, float *y, int ldy);

/* The large-product path (OpenBLAS sgemm), whatever nn_init decided, for tests and benches. */
void nn_linear_sgemm(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
                     const float *b, float *y);

#endif
