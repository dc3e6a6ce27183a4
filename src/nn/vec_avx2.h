/*
 * vec_avx2.h - sigmoid and the Dice gate on one AVX2 vector: the loops of sigmoid_kernels.c and
 * the one-pass epilogue of epilogue.c share them, so an element gets the same bits in either.
 */
#ifndef DIN_NN_VEC_AVX2_H
#define DIN_NN_VEC_AVX2_H

#include <immintrin.h>

/*
 * 1 / (1 + e^-z). z is clamped to [-87, 87] first, so e^-z stays finite and normal and needs no
 * sign split (below -87 the result is about 1.6e-38 instead of underflowing to 0; a subnormal
 * would cost a microcode assist downstream). e^-z = 2^(n/8) e^r with n = round(-8 z log2 e) and
 * |r| <= ln 2 / 16: 2^(n mod 8 / 8) from an eight-entry table in a register (one permute),
 * 2^floor(n/8) by an integer add to its exponent, e^r by a cubic (minimax, 2.6e-8). The
 * attention unit is sigmoid-bound, and the core keeps only a few of sigmoid's long dependency
 * chains in flight: this chain is about half as long as a degree-7 polynomial and a Newton
 * step for the reciprocal (measured: a third fewer cycles per vector than that form, with the
 * same accuracy, 1.9e-7 relative at worst over [-90, 90]).
 */
__attribute__((target("avx2,fma"))) static inline __m256
sigmoid8(__m256 z)
{
	const __m256 one = _mm256_set1_ps(1.0f), round = _mm256_set1_ps(12582912.0f); /* 1.5 2^23 */
	const __m256 pow2 = _mm256_setr_ps(1.0f, 1.09050775f, 1.18920708f, 1.29683959f, 1.41421354f,
	                                   1.54221082f, 1.68179286f, 1.8340081f); /* 2^(i/8) */
	__m256 j, fx, r, p, s;
	__m256i n;

	/* z second: min and max return their second operand for a NaN, which stays NaN */
	z = _mm256_min_ps(_mm256_set1_ps(87.0f), _mm256_max_ps(_mm256_set1_ps(-87.0f), z));
	/* j's low mantissa bits hold n; fx = n */
	j = _mm256_fmadd_ps(z, _mm256_set1_ps(-11.5415603271117f), round);
	fx = _mm256_sub_ps(j, round);
	r = _mm256_fnmsub_ps(fx, _mm256_set1_ps(0.086669921875f), z); /* -z - n ln2 / 8, in two parts */
	r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.65243052e-5f), r);
	p = _mm256_fmadd_ps(_mm256_set1_ps(0.16666882f), r, _mm256_set1_ps(0.5000643f));
	p = _mm256_fmadd_ps(p, r, one);
	p = _mm256_fmadd_ps(p, r, one);
	/* the permute reads n's low three bits; floor(n / 8) <= 125 shifts into the exponent */
	n = _mm256_castps_si256(j);
	s = _mm256_permutevar8x32_ps(pow2, n);
	s = _mm256_castsi256_ps(
	    _mm256_add_epi32(_mm256_castps_si256(s), _mm256_slli_epi32(_mm256_srai_epi32(n, 3), 23)));
	return _mm256_div_ps(one, _mm256_fmadd_ps(s, p, one));
}

/* x (p + alpha (1 - p)) with p = sigmoid(x a + b): Dice's gate with folded coefficients */
__attribute__((target("avx2,fma"))) static inline __m256
dice8(__m256 x, __m256 a, __m256 b, __m256 alpha)
{
	__m256 p = sigmoid8(_mm256_fmadd_ps(x, a, b));

	return _mm256_mul_ps(x, _mm256_fmadd_ps(alpha, _mm256_sub_ps(_mm256_set1_ps(1.0f), p), p));
}

#endif
