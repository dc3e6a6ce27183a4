/*
 * linear_blocked.c - register-blocked AVX2/FMA product for many rows and narrow inputs.
 *
 * The dot-product kernel (linear.c) reduces each output horizontally and runs the input's
 * tail (36 = 4*8 + 4 for DIN's E) in scalar code; with sgemm unavailable or slow this left the
 * attention unit at a third of the core's speed. Here W is packed transposed, k-block by
 * k-block, on the stack, and a 6-row x 16-output tile of y stays in twelve registers while
 * every k broadcasts one x per row and loads two W vectors: 12 FMAs per 8 loads, no horizontal
 * sums, tails by masked loads and stores instead of scalar code.
 */
#include "linear_strided.h"

#include <immintrin.h>
#include <string.h>

enum { KC = 64, OC = 256 }; /* k-block and output strip: the packed block is 64 KB */

__attribute__((target("avx2,fma"))) static inline __m256i
mask_of(int valid)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/*
 * y[mr, nv*8] (+)= x[mr, kc] P[kc, nv*8]: P packed with row stride ldp. first: start from the
 * bias (bp, padded) instead of y. valid: outputs of this tile that exist (tail masking).
 */
/* always_inline: constant mr and nv keep the accumulators in registers */
__attribute__((target("avx2,fma"), always_inline)) static inline void
tile(int mr, int nv, const float *x, int ldx, int kc, const float *p, int ldp, float *y, int ldy,
     int first, const float *bp, int valid)
{
	__m256 acc[6][2];
	__m256i m0 = mask_of(valid), m1 = mask_of(valid - 8);

	for (int r = 0; r < mr; r++)
		for (int v = 0; v < nv; v++) {
			if (first)
				acc[r][v] = _mm256_loadu_ps(bp + 8 * v);
			else
				acc[r][v] = _mm256_maskload_ps(y + (size_t)r * ldy + 8 * v, v ? m1 : m0);
		}
	for (int k = 0; k < kc; k++) {
		__m256 w0 = _mm256_loadu_ps(p + (size_t)k * ldp);
		__m256 w1 = nv > 1 ? _mm256_loadu_ps(p + (size_t)k * ldp + 8) : w0;

		/* keep w in registers: folding the loads into each FMA makes the loop load-bound */
		__asm__("" : "+x"(w0), "+x"(w1));

		for (int r = 0; r < mr; r++) {
			__m256 xr = _mm256_broadcast_ss(x + (size_t)r * ldx + k);

			acc[r][0] = _mm256_fmadd_ps(xr, w0, acc[r][0]);
			if (nv > 1)
				acc[r][1] = _mm256_fmadd_ps(xr, w1, acc[r][1]);
		}
	}
	for (int r = 0; r < mr; r++)
		for (int v = 0; v < nv; v++)
			_mm256_maskstore_ps(y + (size_t)r * ldy + 8 * v, v ? m1 : m0, acc[r][v]);
}

/* tile() with constant mr and nv, so the accumulators live in registers. */
__attribute__((target("avx2,fma"))) static void
tile_dispatch(int mr, int nv, const float *x, int ldx, int kc, const float *p, int ldp, float *y,
              int ldy, int first, const float *bp, int valid)
{
#define TILE(R, V) tile(R, V, x, ldx, kc, p, ldp, y, ldy, first, bp, valid)
	if (nv == 2)
		switch (mr) {
		case 6:
			TILE(6, 2);
			return;
		case 5:
			TILE(5, 2);
			return;
		case 4:
			TILE(4, 2);
			return;
		case 3:
			TILE(3, 2);
			return;
		case 2:
			TILE(2, 2);
			return;
		default:
			TILE(1, 2);
			return;
		}
	switch (mr) {
	case 6:
		TILE(6, 1);
		return;
	case 5:
		TILE(5, 1);
		return;
	case 4:
		TILE(4, 1);
		return;
	case 3:
		TILE(3, 1);
		return;
	case 2:
		TILE(2, 1);
		return;
	default:
		TILE(1, 1);
		return;
	}
#undef TILE
}

__attribute__((target("avx2,fma"))) void
nn_linear_avx2_blocked(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
                       const float *b, float *y)
{
	float packed[KC * OC] __attribute__((aligned(32)));
	float bias[OC + 16] __attribute__((aligned(32)));

	if (n <= 0 || out <= 0)
		return;
	for (int o0 = 0; o0 < out; o0 += OC) {
		int oc = out - o0 < OC ? out - o0 : OC;
		int ldp = (oc + 15) & ~15; /* whole 16-wide tiles: the padding is zero */

		memset(bias, 0, sizeof(float) * ldp);
		if (b)
			memcpy(bias, b + o0, sizeof(float) * oc);
		if (in <= 0)
			for (int i = 0; i < n; i++)
				memcpy(y + (size_t)i * out + o0, bias, sizeof(float) * oc);
		for (int k0 = 0; k0 < in; k0 += KC) {
			int kc = in - k0 < KC ? in - k0 : KC;

			for (int k = 0; k < kc; k++) {
				float *pk = packed + (size_t)k * ldp;

				for (int o = 0; o < oc; o++)
					pk[o] = w[(size_t)(o0 + o) * ldw + k0 + k];
				for (int o = oc; o < ldp; o++)
					pk[o] = 0.0f;
			}
			for (int i0 = 0; i0 < n; i0 += 6) {
				int mr = n - i0 < 6 ? n - i0 : 6;

				for (int t = 0; t < oc; t += 16) {
					int valid = oc - t, nv = valid > 8 ? 2 : 1;

					tile_dispatch(mr, nv, x + (size_t)i0 * ldx + k0, ldx, kc, packed + t, ldp,
					              y + (size_t)i0 * out + o0 + t, out, k0 == 0, bias + t, valid);
				}
			}
		}
	}
}
