/*
 * linear.c - dense products y = x W^T + b.
 *
 * Small products (one candidate, a few behaviours) run a dot-product kernel: portable C the
 * compiler vectorizes, or an AVX2/FMA variant picked at run time so the build stays portable.
 * Large ones go to serial OpenBLAS sgemm, whose packing pays off only above a measured size.
 */
#include "nn.h"
#include "linear_strided.h"

#include <cblas.h>
#include <immintrin.h>
#include <string.h>
#include <strings.h>

typedef void (*LinearKernel)(const float *, int, int, int, const float *, int, int, const float *,
                             float *);

/* Written once by nn_init (always with the same value), read by every caller. */
static LinearKernel linear_small = nn_linear_portable;
static int have_avx2 = -1;
static int use_sgemm = 1;

int
nn_has_avx2(void)
{
	if (have_avx2 < 0) {
		__builtin_cpu_init();
		have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	}
	return have_avx2;
}

/*
 * OpenBLAS kernels named for pre-AVX cores. A DYNAMIC_ARCH OpenBLAS falls back to one of them
 * on CPUs it does not recognize (virtual machines often report a generic model); its sgemm then
 * runs at about half the speed of our AVX2 kernel even on large products, so keep our kernel.
 * OPENBLAS_CORETYPE=Haswell (or SkylakeX) in the environment restores the fast sgemm.
 */
static int
openblas_core_is_pre_avx(void)
{
	static const char *const old[] = {"prescott", "core2",    "penryn",  "dunnington",
	                                  "nehalem",  "atom",     "opteron", "barcelona",
	                                  "katmai",   "northwood"};
	const char *name = openblas_get_corename();

	if (name == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++)
		if (strncasecmp(name, old[i], strlen(old[i])) == 0)
			return 1;
	return 0;
}

void
nn_init(void)
{
	int avx2 = nn_has_avx2();

	linear_small = avx2 ? nn_linear_avx2 : nn_linear_portable;
	use_sgemm = !(avx2 && openblas_core_is_pre_avx());
}

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

void
nn_linear_portable(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
                   const float *b, float *y)
{
	for (int i = 0; i < n; i++) {
		const float *xi = x + (size_t)i * ldx;
		float *yi = y + (size_t)i * out;

		for (int o = 0; o < out; o++)
			yi[o] = dot_portable(xi, w + (size_t)o * ldw, in) + (b ? b[o] : 0.0f);
	}
}

__attribute__((target("avx2,fma"))) static inline float
hsum_avx2(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* The four sums of a0..a3 as one vector [sum a0, sum a1, sum a2, sum a3]. */
__attribute__((target("avx2,fma"))) static inline __m128
hsum4_avx2(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
	__m256 r = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));

	return _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
}

/* y[o..o+4) of one row: four output neurons share each load of the input row. */
__attribute__((target("avx2,fma"))) static inline void
block4_avx2(const float *xi, int in, const float *w, int ldw, const float *b, float *yo)
{
	const float *w0 = w, *w1 = w + ldw, *w2 = w + 2 * (size_t)ldw, *w3 = w + 3 * (size_t)ldw;
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	__m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
	float s[4];
	int k = 0;

	for (; k + 8 <= in; k += 8) {
		__m256 xv = _mm256_loadu_ps(xi + k);

		a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w0 + k), a0);
		a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w1 + k), a1);
		a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w2 + k), a2);
		a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w3 + k), a3);
	}
	_mm_storeu_ps(s, hsum4_avx2(a0, a1, a2, a3));
	for (; k < in; k++) {
		s[0] += xi[k] * w0[k];
		s[1] += xi[k] * w1[k];
		s[2] += xi[k] * w2[k];
		s[3] += xi[k] * w3[k];
	}
	for (int j = 0; j < 4; j++)
		yo[j] = s[j] + (b ? b[j] : 0.0f);
}

__attribute__((target("avx2,fma"))) void
nn_linear_avx2(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
               const float *b, float *y)
{
	for (int i = 0; i < n; i++) {
		const float *xi = x + (size_t)i * ldx;
		float *yi = y + (size_t)i * out;
		int o = 0;

		for (; o + 4 <= out; o += 4)
			block4_avx2(xi, in, w + (size_t)o * ldw, ldw, b ? b + o : NULL, yi + o);
		for (; o < out; o++) {
			const float *wo = w + (size_t)o * ldw;
			__m256 a = _mm256_setzero_ps();
			float sum;
			int k = 0;

			for (; k + 8 <= in; k += 8)
				a = _mm256_fmadd_ps(_mm256_loadu_ps(xi + k), _mm256_loadu_ps(wo + k), a);
			sum = hsum_avx2(a);
			for (; k < in; k++)
				sum += xi[k] * wo[k];
			yi[o] = sum + (b ? b[o] : 0.0f);
		}
	}
}

void
nn_linear_sgemm(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
                const float *b, float *y)
{
	float beta = 0.0f;

	if (n <= 0 || out <= 0)
		return;
	if (in <= 0) {
		/* BLAS rejects a zero leading dimension; the product is just the bias */
		for (int i = 0; i < n; i++)
			for (int o = 0; o < out; o++)
				y[(size_t)i * out + o] = b ? b[o] : 0.0f;
		return;
	}
	if (b != NULL) {
		for (int i = 0; i < n; i++)
			memcpy(y + (size_t)i * out, b, sizeof(float) * out);
		beta = 1.0f;
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, ldx, w, ldw, beta, y,
	            out);
}

void
nn_linear_strided(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
                  const float *b, float *y)
{
	if (n <= 0 || out <= 0)
		return;
	/*
	 * With AVX2 every product goes to the blocked kernel, whatever its size: it runs at about
	 * serial OpenBLAS's speed on din's narrow shapes (test/bench/sgemm_peak.c measures both),
	 * and one kernel makes a candidate's score independent of how many candidates share its
	 * request (din_rank and the array form equal per-row din_score to the last bit).
	 */
	if (linear_small == nn_linear_avx2)
		nn_linear_avx2_blocked(x, ldx, n, in, w, ldw, out, b, y);
	else if (use_sgemm && n >= NN_SGEMM_MIN_ROWS && (double)n * in * out >= NN_SGEMM_MIN_MACS)
		nn_linear_sgemm(x, ldx, n, in, w, ldw, out, b, y);
	else
		linear_small(x, ldx, n, in, w, ldw, out, b, y);
}

void
nn_linear_prepacked(const float *x, int ldx, int n, int in, const float *w, int ldw,
                    const float *packed, int out, const float *b, float *y)
{
	if (packed != NULL && linear_small == nn_linear_avx2)
		nn_linear_avx2_packed(x, ldx, n, in, w, ldw, packed, out, b, y);
	else
		nn_linear_strided(x, ldx, n, in, w, ldw, out, b, y);
}

void
nn_layer_product(const DinLayer *layer, const float *x, int n, float *y)
{
	nn_linear_prepacked(x, layer->in, n, layer->in, layer->weight, layer->in, layer->packed,
	                    layer->out, layer->bias, y);
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
