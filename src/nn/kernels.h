/*
 * kernels.h - every level's variant of each hand-vectorized kernel, and the table cpu.c fills
 * with one level's variants. Internal to src/nn: callers use the entry points of nn.h,
 * linear_strided.h, sigmoid_kernels.h and rowops.h, which go through nn_kernels().
 */
#ifndef DIN_NN_KERNELS_H
#define DIN_NN_KERNELS_H

#include "cpu.h"
#include "nn.h"

#include <stddef.h>

/*
 * y[n, out] (row stride out) = x[n, in] (row stride ldx) W^T + b, W [out, in] with row stride
 * ldw, b NULL or [out]. packed: NULL, or nn_pack_weight(w) when the level packs (then W is not
 * read).
 */
typedef void (*NnLinear)(const float *x, int ldx, int n, int in, const float *w, int ldw,
                         const float *packed, int out, const float *b, float *y);

typedef struct NnKernels {
	int packs; /* linear reads nn_pack_weight's layout: worth packing weights once per model */
	NnLinear linear;
	void (*epilogue)(const NnEpilogue *ep, float *y, int n, int out);
	void (*sigmoid)(float *x, size_t n);
	void (*tanh)(float *x, size_t n);
	void (*exp)(float *x, size_t n);
	void (*dice_gate)(float *x, const float *a, const float *b, const float *alpha, int n);
	void (*rows_mul)(float *p, const float *q, const float *k, int T, int E);
	void (*rows_add2)(float *a, const float *h, const float *g, int T, int U);
	void (*rows_dot)(float *s, const float *x, int n, int width, const float *v, float bias);
	void (*rows_pool)(float *u, const float *w, const float *k, int T, int E);
	int (*all_finite)(const float *x, size_t n);
} NnKernels;

/* The running level's table (cpu.c). */
const NnKernels *nn_kernels(void);

/* linear.c: dot products, and OpenBLAS sgemm for products it runs faster */
void nn_linear_portable(const float *x, int ldx, int n, int in, const float *w, int ldw,
                        const float *packed, int out, const float *b, float *y);

/* epilogue.c: the steps as passes (nn_rows_add2, nn_batchnorm, nn_activate), or AVX2's one pass */
void nn_epilogue_steps(const NnEpilogue *ep, float *y, int n, int out);
void nn_epilogue_avx2(const NnEpilogue *ep, float *y, int n, int out);

/* linear_blocked.c: register-blocked tiles over packed k-blocks */
void nn_linear_avx2(const float *x, int ldx, int n, int in, const float *w, int ldw,
                    const float *packed, int out, const float *b, float *y);
void nn_linear_avx512(const float *x, int ldx, int n, int in, const float *w, int ldw,
                      const float *packed, int out, const float *b, float *y);
/* linear_avx512.c: the blocked kernel's tiles in 512-bit registers */
void nn_block_product_avx512(const float *x, int ldx, int n, const float *packed, int kc, int ldp,
                             int oc, int first, const float *bias, float *y, int ldy);

/* sigmoid_kernels.c */
void nn_sigmoid_portable(float *x, size_t n);
void nn_sigmoid_avx2(float *x, size_t n);
void nn_sigmoid_avx512(float *x, size_t n);
void nn_tanh_portable(float *x, size_t n);
void nn_tanh_avx2(float *x, size_t n);
void nn_tanh_avx512(float *x, size_t n);
void nn_exp_portable(float *x, size_t n);
void nn_exp_avx2(float *x, size_t n);
void nn_exp_avx512(float *x, size_t n);
void nn_dice_gate_portable(float *x, const float *a, const float *b, const float *alpha, int n);
void nn_dice_gate_avx2(float *x, const float *a, const float *b, const float *alpha, int n);
void nn_dice_gate_avx512(float *x, const float *a, const float *b, const float *alpha, int n);

/* rowops.c */
void nn_rows_mul_portable(float *p, const float *q, const float *k, int T, int E);
void nn_rows_mul_avx2(float *p, const float *q, const float *k, int T, int E);
void nn_rows_add2_portable(float *a, const float *h, const float *g, int T, int U);
void nn_rows_add2_avx2(float *a, const float *h, const float *g, int T, int U);
void nn_rows_dot_portable(float *s, const float *x, int n, int width, const float *v, float bias);
void nn_rows_dot_avx2(float *s, const float *x, int n, int width, const float *v, float bias);
void nn_rows_pool_portable(float *u, const float *w, const float *k, int T, int E);
void nn_rows_pool_avx2(float *u, const float *w, const float *k, int T, int E);
int nn_all_finite_portable(const float *x, size_t n);
int nn_all_finite_avx2(const float *x, size_t n);

#endif
