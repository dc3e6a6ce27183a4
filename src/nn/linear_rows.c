/*
 * linear_rows.c - AVX2/FMA product y = x W^T + b that reads W as stored ([out, in]).
 *
 * Each output is a dot product whose k lanes are summed by one fixed tree, and every element
 * goes through the same instructions whether its row is computed alone or with three others:
 * a candidate's score does not depend on how many candidates share its request, and one row
 * (a per-row din_score's tower) needs no packing of W. Four rows x two outputs share each
 * load; the input's tail (36 = 4 x 8 + 4) is one masked step, not scalar code.
 */
#include "linear_strided.h"

#include <immintrin.h>

__attribute__((target("avx2,fma"))) static inline __m256i
lanes_below(int valid)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* [sum a, sum b, sum c, sum d]: lane j of the result depends on its own vector only. */
__attribute__((target("avx2,fma"))) static inline __m128
sum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
	__m256 r = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));

	return _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
}

/*
 * y[r, o], y[r, o+1] for R rows (R constant after inlining). two = 0: only output o exists
 * (the second accumulator then multiplies row o again and is dropped).
 */
__attribute__((target("avx2,fma"), always_inline)) static inline void
block(int R, const float *x, int ldx, int in, const float *w0, const float *w1, float b0,
      float b1, int two, float *y, int ldy)
{
	__m256 a0[4], a1[4];
	__m256i m = lanes_below(in & 7);
	int k = 0;

	for (int r = 0; r < R; r++)
		a0[r] = a1[r] = _mm256_setzero_ps();
	for (; k + 8 <= in; k += 8) {
		__m256 v0 = _mm256_loadu_ps(w0 + k), v1 = _mm256_loadu_ps(w1 + k);

		for (int r = 0; r < R; r++) {
			__m256 xv = _mm256_loadu_ps(x + (size_t)r * ldx + k);

			a0[r] = _mm256_fmadd_ps(xv, v0, a0[r]);
			a1[r] = _mm256_fmadd_ps(xv, v1, a1[r]);
		}
	}
	if (k < in) {
		__m256 v0 = _mm256_maskload_ps(w0 + k, m), v1 = _mm256_maskload_ps(w1 + k, m);

		for (int r = 0; r < R; r++) {
			__m256 xv = _mm256_maskload_ps(x + (size_t)r * ldx + k, m);

			a0[r] = _mm256_fmadd_ps(xv, v0, a0[r]);
			a1[r] = _mm256_fmadd_ps(xv, v1, a1[r]);
		}
	}
	for (int r = 0; r < R; r += 2) {
		float s[4];

		_mm_storeu_ps(s, sum4(a0[r], a1[r], r + 1 < R ? a0[r + 1] : a0[r],
		                      r + 1 < R ? a1[r + 1] : a1[r]));
		y[(size_t)r * ldy] = s[0] + b0;
		if (two)
			y[(size_t)r * ldy + 1] = s[1] + b1;
		if (r + 1 < R) {
			y[(size_t)(r + 1) * ldy] = s[2] + b0;
			if (two)
				y[(size_t)(r + 1) * ldy + 1] = s[3] + b1;
		}
	}
}

__attribute__((target("avx2,fma"))) void
nn_linear_avx2_rows(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
                    const float *b, float *y)
{
	for (int i = 0; i < n; i += 4) {
		int R = n - i < 4 ? n - i : 4;

		for (int o = 0; o < out; o += 2) {
			int two = o + 1 < out;
			const float *w0 = w + (size_t)o * ldw, *w1 = two ? w0 + ldw : w0;
			float b0 = b ? b[o] : 0.0f, b1 = b && two ? b[o + 1] : 0.0f;
			const float *xi = x + (size_t)i * ldx;
			float *yo = y + (size_t)i * out + o;

			switch (R) {
			case 4:
				block(4, xi, ldx, in, w0, w1, b0, b1, two, yo, out);
				break;
			case 3:
				block(3, xi, ldx, in, w0, w1, b0, b1, two, yo, out);
				break;
			case 2:
				block(2, xi, ldx, in, w0, w1, b0, b1, two, yo, out);
				break;
			default:
				block(1, xi, ldx, in, w0, w1, b0, b1, two, yo, out);
				break;
			}
		}
	}
}
