/*
 * rowops.c - AVX2/FMA and portable versions of the attention unit's elementwise steps.
 *
 * Row tails (E = 36 is 4 x 8 + 4) use masked loads and stores, so a row never falls back to
 * scalar code. Sums keep the order of the portable loops where it matters for the 1e-6
 * agreement: only the dot product reassociates, as nn_dot always has.
 */
#include "nn.h"
#include "rowops.h"
#include "kernels.h"

#include <immintrin.h>

__attribute__((target("avx2,fma"))) static inline __m256i
tail_mask(int valid)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2,fma"))) void
nn_rows_mul_avx2(float *p, const float *q, const float *k, int T, int E)
{
	int full = E & ~7;
	__m256i m = tail_mask(E - full);

	for (int t = 0; t < T; t++) {
		const float *kt = k + (size_t)t * E;
		float *pt = p + (size_t)t * E;
		int j = 0;

		for (; j < full; j += 8)
			_mm256_storeu_ps(pt + j,
			                 _mm256_mul_ps(_mm256_loadu_ps(q + j), _mm256_loadu_ps(kt + j)));
		if (j < E) {
			__m256 v = _mm256_mul_ps(_mm256_maskload_ps(q + j, m), _mm256_maskload_ps(kt + j, m));

			/*
			 * A masked store is microcoded on AMD cores; a whole one spills into the next row,
			 * which is written after it. Only the last row's tail stays within p by a mask.
			 */
			if (t < T - 1)
				_mm256_storeu_ps(pt + j, v);
			else
				_mm256_maskstore_ps(pt + j, m, v);
		}
	}
}

__attribute__((target("avx2,fma"))) void
nn_rows_add2_avx2(float *a, const float *h, const float *g, int T, int U)
{
	int full = U & ~7;
	__m256i m = tail_mask(U - full);

	for (int t = 0; t < T; t++) {
		const float *gt = g + (size_t)t * U;
		float *at = a + (size_t)t * U;
		int j = 0;

		for (; j < full; j += 8)
			_mm256_storeu_ps(at + j, _mm256_add_ps(_mm256_loadu_ps(at + j),
			                                       _mm256_add_ps(_mm256_loadu_ps(h + j),
			                                                     _mm256_loadu_ps(gt + j))));
		if (j < U)
			_mm256_maskstore_ps(at + j, m,
			                    _mm256_add_ps(_mm256_maskload_ps(at + j, m),
			                                  _mm256_add_ps(_mm256_maskload_ps(h + j, m),
			                                                _mm256_maskload_ps(gt + j, m))));
	}
}

/*
 * [sum of a0's lanes, a1's, a2's, a3's]: each sum ((l0 + l1) + (l2 + l3)) + ((l4 + l5) +
 * (l6 + l7)), whichever row it is and whatever its neighbours.
 */
__attribute__((target("avx2,fma"))) static inline __m128
sums4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
	__m256 r = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));

	return _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
}

/* x_i . v over width, eight lanes: the masked tail adds zeros. */
__attribute__((target("avx2,fma"))) static inline __m256
row_dot(const float *xi, const float *v, int full, int width, __m256i m)
{
	__m256 acc = _mm256_setzero_ps();
	int j = 0;

	for (; j < full; j += 8)
		acc = _mm256_fmadd_ps(_mm256_loadu_ps(xi + j), _mm256_loadu_ps(v + j), acc);
	if (j < width)
		acc = _mm256_fmadd_ps(_mm256_maskload_ps(xi + j, m), _mm256_maskload_ps(v + j, m), acc);
	return acc;
}

/* Four rows at a time: four independent FMA chains and one horizontal reduction for all. */
__attribute__((target("avx2,fma"))) void
nn_rows_dot_avx2(float *s, const float *x, int n, int width, const float *v, float bias)
{
	int full = width & ~7, i = 0;
	__m256i m = tail_mask(width - full);
	__m128 b = _mm_set1_ps(bias);

	for (; i + 4 <= n; i += 4) {
		const float *xi = x + (size_t)i * width;

		_mm_storeu_ps(s + i, _mm_add_ps(sums4(row_dot(xi, v, full, width, m),
		                                      row_dot(xi + width, v, full, width, m),
		                                      row_dot(xi + 2 * (size_t)width, v, full, width, m),
		                                      row_dot(xi + 3 * (size_t)width, v, full, width, m)),
		                                b));
	}
	if (i < n) {
		__m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
		               _mm256_setzero_ps()};
		float rest[4];

		for (int r = 0; r < n - i; r++)
			a[r] = row_dot(x + (size_t)(i + r) * width, v, full, width, m);
		_mm_storeu_ps(rest, _mm_add_ps(sums4(a[0], a[1], a[2], a[3]), b));
		for (int r = 0; r < n - i; r++)
			s[i + r] = rest[r];
	}
}

__attribute__((target("avx2,fma"))) void
nn_rows_pool_avx2(float *u, const float *w, const float *k, int T, int E)
{
	int full = E & ~7;
	__m256i m = tail_mask(E - full);

	for (int j = 0; j < E; j += 8) {
		__m256 acc = _mm256_setzero_ps();

		if (j < full) {
			for (int t = 0; t < T; t++)
				acc = _mm256_fmadd_ps(_mm256_set1_ps(w[t]), _mm256_loadu_ps(k + (size_t)t * E + j),
				                      acc);
			_mm256_storeu_ps(u + j, acc);
		} else {
			for (int t = 0; t < T; t++)
				acc = _mm256_fmadd_ps(_mm256_set1_ps(w[t]),
				                      _mm256_maskload_ps(k + (size_t)t * E + j, m), acc);
			_mm256_maskstore_ps(u + j, m, acc);
		}
	}
}

void
nn_rows_mul_portable(float *p, const float *q, const float *k, int T, int E)
{
	for (int t = 0; t < T; t++)
		for (int j = 0; j < E; j++)
			p[(size_t)t * E + j] = q[j] * k[(size_t)t * E + j];
}

void
nn_rows_add2_portable(float *a, const float *h, const float *g, int T, int U)
{
	for (int t = 0; t < T; t++)
		for (int j = 0; j < U; j++)
			a[(size_t)t * U + j] += h[j] + g[(size_t)t * U + j];
}

void
nn_rows_dot_portable(float *s, const float *x, int n, int width, const float *v, float bias)
{
	for (int i = 0; i < n; i++)
		s[i] = nn_dot(x + (size_t)i * width, v, width) + bias;
}

void
nn_rows_pool_portable(float *u, const float *w, const float *k, int T, int E)
{
	for (int j = 0; j < E; j++)
		u[j] = 0.0f;
	for (int t = 0; t < T; t++)
		for (int j = 0; j < E; j++)
			u[j] += w[t] * k[(size_t)t * E + j];
}

void
nn_rows_mul(float *p, const float *q, const float *k, int T, int E)
{
	nn_kernels()->rows_mul(p, q, k, T, E);
}

void
nn_rows_add2(float *a, const float *h, const float *g, int T, int U)
{
	nn_kernels()->rows_add2(a, h, g, T, U);
}

void
nn_rows_dot(float *s, const float *x, int n, int width, const float *v, float bias)
{
	nn_kernels()->rows_dot(s, x, n, width, v, bias);
}

void
nn_rows_pool(float *u, const float *w, const float *k, int T, int E)
{
	nn_kernels()->rows_pool(u, w, k, T, E);
}

/* x * 0 is 0 for a finite x and NaN for Inf or NaN: sums of them, branchless */
int
nn_all_finite_portable(const float *x, size_t n)
{
	float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
	size_t i = 0;

	for (; i + 4 <= n; i += 4)
		for (int j = 0; j < 4; j++)
			acc[j] += x[i + j] * 0.0f;
	for (; i < n; i++)
		acc[0] += x[i] * 0.0f;
	return acc[0] + acc[1] + acc[2] + acc[3] == 0.0f;
}

/* Four independent sums, eight lanes each: the check runs on every tower row and score. */
__attribute__((target("avx2,fma"))) int
nn_all_finite_avx2(const float *x, size_t n)
{
	const __m256 zero = _mm256_setzero_ps();
	__m256 a0 = zero, a1 = zero, a2 = zero, a3 = zero;
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), zero, a0);
		a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), zero, a1);
		a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), zero, a2);
		a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), zero, a3);
	}
	for (; i < n; i += 8)
		a0 = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, tail_mask((int)(n - i < 8 ? n - i : 8))),
		                     zero, a0);
	a0 = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
	/* every lane 0: no lane compares unequal (NaN compares unequal to 0) */
	return _mm256_movemask_ps(_mm256_cmp_ps(a0, zero, _CMP_NEQ_UQ)) == 0;
}

int
nn_all_finite(const float *x, size_t n)
{
	return nn_kernels()->all_finite(x, n);
}
