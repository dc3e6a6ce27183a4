/*
 * vec_avx2.h - sigmoid and the Dice gate on one AVX2 vector: the loops of sigmoid_kernels.c and
 * the one-pass epilogue of epilogue.c share them, so an element gets the same bits in either.
 */
#ifndef DIN_NN_VEC_AVX2_H
#define DIN_NN_VEC_AVX2_H

#include <immintrin.h>

/*
 * 1 / (1 + e^-z) with e^-z by Cephes' expf polynomial (as exp8 in
 * sigmoid_kernels.c), the negation folded into the reduction. z is
 * clamped to [-87, 87] first, so e^-z stays finite and normal and 1 + e^-z needs no sign split
 * (below -87 the result is about 1.6e-38 instead of underflowing to 0): a quarter fewer
 * instructions than the e^-|z| form, which matters because the attention unit is
 * sigmoid-bound. With the clamp, 2^n scales the polynomial by an integer add to its exponent.
 */
__attribute__((target("avx2,fma"))) static inline __m256
sigmoid8(__m256 z)
{
	const __m256 one = _mm256_set1_ps(1.0f), round = _mm256_set1_ps(12582912.0f); /* 1.5 2^23 */
	__m256 j, fx, r, r2, y, den, d;

	/* z second: min and max return their second operand for a NaN, which stays NaN */
	z = _mm256_min_ps(_mm256_set1_ps(87.0f), _mm256_max_ps(_mm256_set1_ps(-87.0f), z));
	/* j's low mantissa bits hold n = round(-z log2 e); fx = n */
	j = _mm256_fmadd_ps(z, _mm256_set1_ps(-1.44269504088896341f), round);
	fx = _mm256_sub_ps(j, round);
	r = _mm256_fnmsub_ps(fx, _mm256_set1_ps(0.693359375f), z); /* -z - n ln 2, in two parts */
	r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
	r2 = _mm256_mul_ps(r, r);
	y = _mm256_set1_ps(1.9875691500e-4f);
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
	y = _mm256_fmadd_ps(y, r2, _mm256_add_ps(r, one));
	/* y 2^n, |n| <= 126 */
	y = _mm256_castsi256_ps(
	    _mm256_add_epi32(_mm256_castps_si256(y), _mm256_slli_epi32(_mm256_castps_si256(j), 23)));
	/*
	 * 1 / (1 + e^-z): the reciprocal estimate and one Newton step are exact to about 1e-7 and
	 * cost a third of a division
	 */
	den = _mm256_add_ps(one, y);
	d = _mm256_rcp_ps(den);
	return _mm256_mul_ps(d, _mm256_fnmadd_ps(den, d, _mm256_set1_ps(2.0f)));
}

/* x (p + alpha (1 - p)) with p = sigmoid(x a + b): Dice's gate with folded coefficients */
__attribute__((target("avx2,fma"))) static inline __m256
dice8(__m256 x, __m256 a, __m256 b, __m256 alpha)
{
	__m256 p = sigmoid8(_mm256_fmadd_ps(x, a, b));

	return _mm256_mul_ps(x, _mm256_fmadd_ps(alpha, _mm256_sub_ps(_mm256_set1_ps(1.0f), p), p));
}

#endif
