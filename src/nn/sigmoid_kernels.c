/*
 * sigmoid_kernels.c - sigmoid, tanh and the Dice gate, portable, AVX2/FMA and AVX-512.
 *
 * No variant overflows: the portable sigmoid takes e = exp(-|z|), p = 1/(1+e) for z >= 0 and
 * e/(1+e) otherwise; the vector ones clamp z to [-87, 87] and take 1/(1+e^-z) (vec_avx2.h,
 * sigmoid16). The AVX-512 loops run tails as masked vectors, so an element's bits do not
 * depend on where it sits in the array (a candidate alone or in a batch).
 */
#include "sigmoid_kernels.h"
#include "kernels.h"
#include "vec_avx2.h"

#include <immintrin.h>
#include <math.h>

static inline float
sigmoid1(float z)
{
	float e = expf(-fabsf(z));

	return z >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

__attribute__((target("avx2,fma"))) void
nn_sigmoid_avx2(float *x, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(x + i, sigmoid8(_mm256_loadu_ps(x + i)));
	for (; i < n; i++)
		x[i] = sigmoid1(x[i]);
}

__attribute__((target("avx2,fma"))) void
nn_dice_gate_avx2(float *x, const float *a, const float *b, const float *alpha, int n)
{
	int j = 0;

	for (; j + 8 <= n; j += 8)
		_mm256_storeu_ps(x + j, dice8(_mm256_loadu_ps(x + j), _mm256_loadu_ps(a + j),
		                              _mm256_loadu_ps(b + j), _mm256_loadu_ps(alpha + j)));
	for (; j < n; j++) {
		float p = sigmoid1(x[j] * a[j] + b[j]);

		x[j] = x[j] * (p + alpha[j] * (1.0f - p));
	}
}

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

/* exp8, and 0 below -87.3, where expf is subnormal or 0 and softmax wants 0 (as exp16) */
__attribute__((target("avx2,fma"))) static inline __m256
exp8_softmax(__m256 x)
{
	return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ), exp8(x));
}

/* The tail as one masked vector, like the AVX-512 loops. */
__attribute__((target("avx2,fma"))) void
nn_exp_avx2(float *x, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(x + i, exp8_softmax(_mm256_loadu_ps(x + i)));
	if (i < n) {
		__m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - i)),
		                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));

		_mm256_maskstore_ps(x + i, m, exp8_softmax(_mm256_maskload_ps(x + i, m)));
	}
}

/*
 * tanh as Cephes' tanhf computes it: x + x^3 P(x^2) below |x| = 0.625, where 1 - 2/(e^2|x| + 1)
 * would lose bits to cancellation, that with x's sign above. About 2 ulp.
 */
#define TANH_P0 -5.70498872745e-3f
#define TANH_P1 2.06390887954e-2f
#define TANH_P2 -5.37397155531e-2f
#define TANH_P3 1.33314422036e-1f
#define TANH_P4 -3.33332819422e-1f

__attribute__((target("avx2,fma"))) static inline __m256
tanh8(__m256 x)
{
	const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
	__m256 ax = _mm256_andnot_ps(sign, x), z = _mm256_mul_ps(x, x), p, small, e, den, r, large;

	p = _mm256_fmadd_ps(_mm256_set1_ps(TANH_P0), z, _mm256_set1_ps(TANH_P1));
	p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(TANH_P2));
	p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(TANH_P3));
	p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(TANH_P4));
	small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
	e = exp8(_mm256_add_ps(ax, ax));
	den = _mm256_add_ps(e, one);
	r = _mm256_rcp_ps(den);
	r = _mm256_mul_ps(r, _mm256_fnmadd_ps(den, r, _mm256_set1_ps(2.0f)));
	large = _mm256_or_ps(_mm256_fnmadd_ps(_mm256_set1_ps(2.0f), r, one), _mm256_and_ps(x, sign));
	return _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

__attribute__((target("avx2,fma"))) void
nn_tanh_avx2(float *x, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(x + i, tanh8(_mm256_loadu_ps(x + i)));
	for (; i < n; i++)
		x[i] = tanhf(x[i]);
}

/* exp8's polynomial, sixteen lanes; 2^n by scalef (no integer detour). */
__attribute__((target("avx512f"))) static inline __m512
exp16(__m512 x)
{
	const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
	__m512 fx, r, r2, y;

	/*
	 * Below -87.3 the result is 0: a subnormal result (expf's) costs a microcode assist of
	 * about a hundred cycles, which DSIN's blinded attention scores hit on every row. NaN stays
	 * NaN: the compare is false for it and x is min's and max's second operand.
	 */
	__mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);

	x = _mm512_min_ps(_mm512_set1_ps(88.3f), _mm512_max_ps(_mm512_set1_ps(-87.3f), x));
	fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
	                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	r = _mm512_fnmadd_ps(fx, ln2_hi, x);
	r = _mm512_fnmadd_ps(fx, ln2_lo, r);
	r2 = _mm512_mul_ps(r, r);
	y = _mm512_set1_ps(1.9875691500e-4f);
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
	y = _mm512_fmadd_ps(y, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_mask_mov_ps(_mm512_scalef_ps(y, fx), tiny, _mm512_setzero_ps());
}

/*
 * 1 / (1 + e^-z), e^-z by exp16's polynomial with the negation folded into the reduction. z is
 * clamped to [-87, 87] first, so e^-z stays finite and normal (below -87 the result is about
 * 1.6e-38 instead of underflowing to 0; a subnormal costs a microcode assist) and 1 + e^-z needs no
 * sign split: a third fewer instructions than the e^-|z| form, which mattered because the attention
 * unit is sigmoid-bound.
 */
__attribute__((target("avx512f"))) static inline __m512
sigmoid16(__m512 z)
{
	const __m512 one = _mm512_set1_ps(1.0f);
	__m512 fx, r, r2, y, den, d;

	/* z second: NaN stays NaN */
	z = _mm512_min_ps(_mm512_set1_ps(87.0f), _mm512_max_ps(_mm512_set1_ps(-87.0f), z));
	fx = _mm512_roundscale_ps(_mm512_mul_ps(z, _mm512_set1_ps(-1.44269504088896341f)),
	                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	r = _mm512_fnmsub_ps(fx, _mm512_set1_ps(0.693359375f), z); /* -z - fx ln2, in two parts */
	r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), r);
	r2 = _mm512_mul_ps(r, r);
	y = _mm512_set1_ps(1.9875691500e-4f);
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
	y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
	y = _mm512_fmadd_ps(y, r2, _mm512_add_ps(r, one));
	den = _mm512_add_ps(one, _mm512_scalef_ps(y, fx));
	/* the 14-bit reciprocal estimate and one Newton step: about 1e-7, a fraction of a division */
	d = _mm512_rcp14_ps(den);
	return _mm512_mul_ps(d, _mm512_fnmadd_ps(den, d, _mm512_set1_ps(2.0f)));
}

__attribute__((target("avx512f"))) static inline __mmask16
tail_mask(size_t left)
{
	return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

/* x[i] = FN(x[i]) over any n, the tail as one masked vector: nn_NAME_avx512(x, n). */
#define MAP_AVX512(NAME, FN)                                                                       \
	__attribute__((target("avx512f"))) void nn_##NAME##_avx512(float *x, size_t n)                 \
	{                                                                                              \
		for (size_t i = 0; i < n; i += 16) {                                                       \
			__mmask16 m = tail_mask(n - i);                                                        \
                                                                                                   \
			_mm512_mask_storeu_ps(x + i, m, FN(_mm512_maskz_loadu_ps(m, x + i)));                  \
		}                                                                                          \
	}

MAP_AVX512(sigmoid, sigmoid16)

__attribute__((target("avx512f"))) void
nn_dice_gate_avx512(float *x, const float *a, const float *b, const float *alpha, int n)
{
	const __m512 one = _mm512_set1_ps(1.0f);

	for (int j = 0; j < n; j += 16) {
		__mmask16 m = tail_mask((size_t)(n - j));
		__m512 xv = _mm512_maskz_loadu_ps(m, x + j);
		__m512 p = sigmoid16(
		    _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(m, a + j), _mm512_maskz_loadu_ps(m, b + j)));
		/* p + alpha (1 - p) */
		__m512 g = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, alpha + j), _mm512_sub_ps(one, p), p);

		_mm512_mask_storeu_ps(x + j, m, _mm512_mul_ps(xv, g));
	}
}

__attribute__((target("avx512f"))) static inline __m512
tanh16(__m512 x)
{
	const __m512 one = _mm512_set1_ps(1.0f);
	__m512 ax = _mm512_abs_ps(x), z = _mm512_mul_ps(x, x), p, small, e, den, r, large;

	p = _mm512_fmadd_ps(_mm512_set1_ps(TANH_P0), z, _mm512_set1_ps(TANH_P1));
	p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(TANH_P2));
	p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(TANH_P3));
	p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(TANH_P4));
	small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
	e = exp16(_mm512_add_ps(ax, ax));
	den = _mm512_add_ps(e, one);
	r = _mm512_rcp14_ps(den);
	r = _mm512_mul_ps(r, _mm512_fnmadd_ps(den, r, _mm512_set1_ps(2.0f)));
	large = _mm512_fnmadd_ps(_mm512_set1_ps(2.0f), r, one);
	large = _mm512_castsi512_ps(_mm512_or_si512(
	    _mm512_castps_si512(large),
	    _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
	return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ), large,
	                            small);
}

MAP_AVX512(tanh, tanh16)
MAP_AVX512(exp, exp16)

void
nn_exp_portable(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = expf(x[i]);
}

void
nn_tanh_portable(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = tanhf(x[i]);
}

void
nn_sigmoid_portable(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = sigmoid1(x[i]);
}

void
nn_dice_gate_portable(float *x, const float *a, const float *b, const float *alpha, int n)
{
	for (int j = 0; j < n; j++) {
		float p = sigmoid1(x[j] * a[j] + b[j]);

		x[j] = x[j] * (p + alpha[j] * (1.0f - p));
	}
}

void
nn_exp_inplace(float *x, size_t n)
{
	nn_kernels()->exp(x, n);
}

void
nn_tanh_inplace(float *x, size_t n)
{
	nn_kernels()->tanh(x, n);
}

void
nn_sigmoid_inplace(float *x, size_t n)
{
	nn_kernels()->sigmoid(x, n);
}

void
nn_dice_gate(float *x, const float *a, const float *b, const float *alpha, int n)
{
	nn_kernels()->dice_gate(x, a, b, alpha, n);
}
