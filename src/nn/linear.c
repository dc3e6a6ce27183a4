/*
 * linear.c - dense products y = x W^T + b: the entry points, and the portable level's kernel.
 *
 * Each entry point runs the level's kernel (kernels.h). The portable level computes products
 * of a few rows as dot products in C the compiler vectorizes and hands the others to serial
 * OpenBLAS sgemm.
 */
#include "nn.h"
#include "kernels.h"
#include "linear_strided.h"

#include <cblas.h>
#include <string.h>

/*
 * Products of this many rows or more go to sgemm. Measured on one AMD EPYC core over din's
 * shapes (8 to 200 inputs and outputs): sgemm ran 4 rows 1.2 to 3.5 times as fast as the dot
 * products, 8 rows 2 to 5 times, 96 rows (a tower chunk) 4 to 10 times; 2 rows about even, and
 * one row 2 to 4 times slower.
 */
#define SGEMM_MIN_ROWS 4

/* Eight independent partial sums let the compiler use SIMD without reassociating one sum. */
static inline float
dot_portable(const float *a, const float *b, int n)
{
	float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	float s;
	int k = 0;

	/* Auto-vectorized */
	for (; k + 8 <= n; k += 8)
		for (int j = 0; j < 8; j++)
			acc[j] += a[k + j] * b[k + j];
	s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
	for (; k < n; k++)
		s += a[k] * b[k];
	return s;
}

float
nn_dot(const float *a, const float *b, int n)
{
	return dot_portable(a, b, n);
}

static void
linear_sgemm(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
             const float *b, float *y)
{
	float beta = 0.0f;

	if (b != NULL) {
		for (int i = 0; i < n; i++)
			memcpy(y + (size_t)i * out, b, sizeof(float) * out);
		beta = 1.0f;
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, ldx, w, ldw, beta, y,
	            out);
}

void
nn_linear_portable(const float *x, int ldx, int n, int in, const float *w, int ldw,
                   const float *packed, int out, const float *b, float *y)
{
	/* in = 0 (the product is the bias) stays here: BLAS rejects a zero leading dimension */
	if (n >= SGEMM_MIN_ROWS && in > 0) {
		linear_sgemm(x, ldx, n, in, w, ldw, out, b, y);
		return;
	}
	for (int i = 0; i < n; i++) {
		const float *xi = x + (size_t)i * ldx;
		float *yi = y + (size_t)i * out;

		for (int o = 0; o < out; o++)
			yi[o] = dot_portable(xi, w + (size_t)o * ldw, in) + (b ? b[o] : 0.0f);
	}
}

static void
linear(const float *x, int ldx, int n, int in, const float *w, int ldw, const float *packed,
       int out, const float *b, const NnEpilogue *ep, float *y)
{
	if (n <= 0 || out <= 0)
		return;
	nn_kernels()->linear(x, ldx, n, in, w, ldw, packed, out, b, y);
	if (ep != NULL)
		nn_kernels()->epilogue(ep, y, n, out);
}

void
nn_linear_prepacked(const float *x, int ldx, int n, int in, const float *w, int ldw,
                    const float *packed, int out, const float *b, float *y)
{
	linear(x, ldx, n, in, w, ldw, packed, out, b, NULL, y);
}

void
nn_linear_strided(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
                  const float *b, float *y)
{
	nn_linear_prepacked(x, ldx, n, in, w, ldw, NULL, out, b, y);
}

void
nn_layer_product(const DinLayer *layer, const float *x, int n, float *y)
{
	nn_layer_product_ep(layer, NULL, x, n, y);
}

void
nn_layer_product_ep(const DinLayer *layer, const NnEpilogue *ep, const float *x, int n, float *y)
{
	linear(x, layer->in, n, layer->in, layer->weight, layer->in, layer->packed, layer->out,
	       layer->bias, ep, y);
}

void
nn_linear(const float *x, int n, int in, int out, const float *w, const float *b, float *y)
{
	nn_linear_strided(x, in, n, in, w, in, out, b, y);
}

void
nn_linear_ref(const float *x, int n, int in, int out, const float *w, const float *b, float *y)
{
	for (int i = 0; i < n; i++)
		for (int o = 0; o < out; o++) {
			float s = b ? b[o] : 0.0f;

			for (int k = 0; k < in; k++)
				s += x[(size_t)i * in + k] * w[(size_t)o * in + k];
			y[(size_t)i * out + o] = s;
		}
}
