/*
 * linear_avx512.c - the blocked kernel's tiles in 512-bit registers, for CPUs with AVX-512F.
 *
 * The same packed W and the same per-element FMA chain as the AVX2 tiles (the bias, then one
 * FMA per k in order), twice as wide: a 6-row x 32-output tile for batches. Masked loads and
 * stores handle every tail, so results equal the AVX2 kernel's to the last bit. Lone rows stay
 * on the AVX2 1 x 64 tile, which measured faster for a one-candidate score.
 */
#include "linear_strided.h"

#include <immintrin.h>

int
nn_has_avx512(void)
{
	static int have = -1;

	if (have < 0) {
		__builtin_cpu_init();
		have = nn_has_avx2() && __builtin_cpu_supports("avx512f");
	}
	return have;
}

__attribute__((target("avx512f"))) static inline __mmask16
mask16(int valid)
{
	return valid >= 16  ? (__mmask16)0xFFFF
	       : valid <= 0 ? (__mmask16)0
	                    : (__mmask16)((1u << valid) - 1);
}

__attribute__((target("avx512f"))) static void
tile6x32(const float *x, int ldx, int kc, const float *p, int ldp, float *y, int ldy, int first,
         const float *bp, int valid)
{
	__mmask16 m0 = mask16(valid), m1 = mask16(valid - 16);
	__m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
	const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * (size_t)ldx, *x3 = x + 3 * (size_t)ldx;
	const float *x4 = x + 4 * (size_t)ldx, *x5 = x + 5 * (size_t)ldx;

	if (first) {
		c00 = c10 = c20 = c30 = c40 = c50 = _mm512_maskz_loadu_ps(m0, bp);
		c01 = c11 = c21 = c31 = c41 = c51 = _mm512_maskz_loadu_ps(m1, bp + 16);
	} else {
#define LOADROW(r)                                                                                 \
	c##r##0 = _mm512_maskz_loadu_ps(m0, y + r * (size_t)ldy);                                      \
	c##r##1 = _mm512_maskz_loadu_ps(m1, y + r * (size_t)ldy + 16)
		LOADROW(0);
		LOADROW(1);
		LOADROW(2);
		LOADROW(3);
		LOADROW(4);
		LOADROW(5);
#undef LOADROW
	}
	for (int k = 0; k < kc; k++) {
		__m512 w0 = _mm512_maskz_loadu_ps(m0, p + (size_t)k * ldp);
		__m512 w1 = _mm512_maskz_loadu_ps(m1, p + (size_t)k * ldp + 16);
		__m512 a;

#define ROW(r)                                                                                     \
	a = _mm512_set1_ps(x##r[k]);                                                                   \
	c##r##0 = _mm512_fmadd_ps(a, w0, c##r##0);                                                     \
	c##r##1 = _mm512_fmadd_ps(a, w1, c##r##1)
		ROW(0);
		ROW(1);
		ROW(2);
		ROW(3);
		ROW(4);
		ROW(5);
#undef ROW
	}
#define STOREROW(r)                                                                                \
	_mm512_mask_storeu_ps(y + r * (size_t)ldy, m0, c##r##0);                                       \
	_mm512_mask_storeu_ps(y + r * (size_t)ldy + 16, m1, c##r##1)
	STOREROW(0);
	STOREROW(1);
	STOREROW(2);
	STOREROW(3);
	STOREROW(4);
	STOREROW(5);
#undef STOREROW
}

__attribute__((target("avx512f"))) void
nn_block_product_avx512(const float *x, int ldx, int n, const float *packed, int kc, int ldp,
                        int oc, int first, const float *bias, float *y, int ldy)
{
	for (int i0 = 0; i0 + 6 <= n; i0 += 6)
		for (int t = 0; t < oc; t += 32)
			tile6x32(x + (size_t)i0 * ldx, ldx, kc, packed + t, ldp, y + (size_t)i0 * ldy + t, ldy,
			         first, bias + t, oc - t);
}
