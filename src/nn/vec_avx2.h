/*
 * vec_avx2.h - exp, sigmoid and the Dice gate on one AVX2 vector: the loops of
 * sigmoid_kernels.c and the fused epilogues of linear_blocked.c share them, so an element gets
 * the same bits in either.
 */
#ifndef DIN_NN_VEC_AVX2_H
#define DIN_NN_VEC_AVX2_H

#include <immintrin.h>

/* exp for x in any range: clamped where float exp under/overflows (p is then 0 or 1 anyway). */
__attribute__((target("avx2,fma"))) static inline __m256
exp8(__m256 x)
{
	const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
	const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
	__m256 fx, r, r2, y;
	__m256i n;

	/* x second: min and max return their second operand for a NaN, which must stay NaN */
	x = _mm256_min_ps(_mm256_set1_ps(88.3f), _mm256_max_ps(_mm256_set1_ps(-87.3f), x));
	fx = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	r = _mm256_fnmadd_ps(fx, ln2_hi, x);
	r = _mm256_fnmadd_ps(fx, ln2_lo, r);
	r2 = _mm256_mul_ps(r, r);
	y = _mm256_set1_ps(1.9875691500e-4f);
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
	y = _mm256_fmadd_ps(y, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
	return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}

__attribute__((target("avx2,fma"))) static inline __m256
sigmoid8(__m256 z)
{
	const __m256 one = _mm256_set1_ps(1.0f);
	__m256 az = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
	__m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), az));
	/*
	 * 1 / (1 + e) with 1 + e in [1, 2]: the reciprocal estimate and one Newton step are exact
	 * to about 1e-7 and cost a third of a division, which dominated the attention unit.
	 */
	__m256 den = _mm256_add_ps(one, e), r = _mm256_rcp_ps(den);
	__m256 d = _mm256_mul_ps(r, _mm256_fnmadd_ps(den, r, _mm256_set1_ps(2.0f)));
	__m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);

	return _mm256_blendv_ps(d, _mm256_mul_ps(e, d), neg);
}

/* x (p + alpha (1 - p)) with p = sigmoid(x a + b): Dice's gate with folded coefficients */
__attribute__((target("avx2,fma"))) static inline __m256
dice8(__m256 x, __m256 a, __m256 b, __m256 alpha)
{
	__m256 p = sigmoid8(_mm256_fmadd_ps(x, a, b));

	return _mm256_mul_ps(x, _mm256_fmadd_ps(alpha, _mm256_sub_ps(_mm256_set1_ps(1.0f), p), p));
}

#endif
