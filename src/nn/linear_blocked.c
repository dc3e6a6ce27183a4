/*
 * linear_blocked.c - the dense product of the AVX2 and AVX-512 levels: register-blocked tiles
 * over W packed transposed.
 *
 * W is packed k-block by k-block (once per model by nn_pack_weight, or per call on the stack),
 * and a 6-row x 16-output tile of y stays in twelve registers while every k broadcasts one x per
 * row and loads two W vectors: 12 FMAs per 8 loads, no horizontal sums, tails by masked loads
 * and stores instead of scalar code. Every product of these levels runs here, whatever its size:
 * one kernel makes a candidate's score independent of how many candidates share its request
 * (din_rank and the array form equal per-row din_score to the last bit).
 */
#include "nn.h"
#include "kernels.h"

#include <immintrin.h>
#include <string.h>

/*
 * k-block and output strip: a block packed per call (on the stack) is 64 KB. Prepacked blocks
 * are KCP deep, so din's 80-wide attention layer is one block: no reload of the accumulators
 * halfway. Splitting k changes no bit (each partial sum is stored and reloaded exactly).
 */
enum { KC = 64, KCP = 128, OC = 256 };

__attribute__((target("avx2,fma"))) static inline __m256i
mask_of(int valid)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/*
 * The full 6 x 16 tile: y[6, 16] (+)= x[6, kc] P[kc, 16], written out so the twelve
 * accumulators are registers whatever the compiler's unrolling heuristics decide.
 */
__attribute__((target("avx2,fma"))) static void
tile6x16(const float *x, int ldx, int kc, const float *p, int ldp, float *y, int ldy, int first,
         const float *bp, int valid)
{
	__m256i m0 = mask_of(valid), m1 = mask_of(valid - 8);
	__m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
	const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * (size_t)ldx, *x3 = x + 3 * (size_t)ldx;
	const float *x4 = x + 4 * (size_t)ldx, *x5 = x + 5 * (size_t)ldx;

	if (first) {
		c00 = c10 = c20 = c30 = c40 = c50 = _mm256_loadu_ps(bp);
		c01 = c11 = c21 = c31 = c41 = c51 = _mm256_loadu_ps(bp + 8);
	} else {
#define LOADROW(r)                                                                                 \
	c##r##0 = _mm256_maskload_ps(y + r * (size_t)ldy, m0);                                         \
	c##r##1 = _mm256_maskload_ps(y + r * (size_t)ldy + 8, m1)
		LOADROW(0);
		LOADROW(1);
		LOADROW(2);
		LOADROW(3);
		LOADROW(4);
		LOADROW(5);
#undef LOADROW
	}
	for (int k = 0; k < kc; k++) {
		__m256 w0 = _mm256_loadu_ps(p + (size_t)k * ldp);
		__m256 w1 = _mm256_loadu_ps(p + (size_t)k * ldp + 8);
		__m256 a;

#define ROW(r)                                                                                     \
	a = _mm256_broadcast_ss(x##r + k);                                                             \
	c##r##0 = _mm256_fmadd_ps(a, w0, c##r##0);                                                     \
	c##r##1 = _mm256_fmadd_ps(a, w1, c##r##1)
		ROW(0);
		ROW(1);
		ROW(2);
		ROW(3);
		ROW(4);
		ROW(5);
#undef ROW
	}
#define STOREROW(r)                                                                                \
	_mm256_maskstore_ps(y + r * (size_t)ldy, m0, c##r##0);                                         \
	_mm256_maskstore_ps(y + r * (size_t)ldy + 8, m1, c##r##1)
	STOREROW(0);
	STOREROW(1);
	STOREROW(2);
	STOREROW(3);
	STOREROW(4);
	STOREROW(5);
#undef STOREROW
}

/*
 * One row, up to 64 outputs: y[0, valid] (+)= x[0, kc] P[kc, valid] with eight independent
 * accumulators, so a lone row (a per-row din_score's tower) is not bound by FMA latency.
 * Each element sees the same FMA chain as in tile6x16: results do not depend on the tiling.
 */
__attribute__((target("avx2,fma"))) static void
tile1x64(const float *x, int kc, const float *p, int ldp, float *y, int first, const float *bp,
         int valid)
{
	__m256 c0, c1, c2, c3, c4, c5, c6, c7;
	__m256i m0 = mask_of(valid), m1 = mask_of(valid - 8), m2 = mask_of(valid - 16);
	__m256i m3 = mask_of(valid - 24), m4 = mask_of(valid - 32), m5 = mask_of(valid - 40);
	__m256i m6 = mask_of(valid - 48), m7 = mask_of(valid - 56);

#define INIT(v) c##v = first ? _mm256_loadu_ps(bp + 8 * v) : _mm256_maskload_ps(y + 8 * v, m##v)
	INIT(0);
	INIT(1);
	INIT(2);
	INIT(3);
	INIT(4);
	INIT(5);
	INIT(6);
	INIT(7);
#undef INIT
	for (int k = 0; k < kc; k++) {
		const float *pk = p + (size_t)k * ldp;
		__m256 a = _mm256_broadcast_ss(x + k);

		c0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(pk), c0);
		c1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(pk + 8), c1);
		c2 = _mm256_fmadd_ps(a, _mm256_loadu_ps(pk + 16), c2);
		c3 = _mm256_fmadd_ps(a, _mm256_loadu_ps(pk + 24), c3);
		c4 = _mm256_fmadd_ps(a, _mm256_loadu_ps(pk + 32), c4);
		c5 = _mm256_fmadd_ps(a, _mm256_loadu_ps(pk + 40), c5);
		c6 = _mm256_fmadd_ps(a, _mm256_loadu_ps(pk + 48), c6);
		c7 = _mm256_fmadd_ps(a, _mm256_loadu_ps(pk + 56), c7);
	}
	_mm256_maskstore_ps(y, m0, c0);
	_mm256_maskstore_ps(y + 8, m1, c1);
	_mm256_maskstore_ps(y + 16, m2, c2);
	_mm256_maskstore_ps(y + 24, m3, c3);
	_mm256_maskstore_ps(y + 32, m4, c4);
	_mm256_maskstore_ps(y + 40, m5, c5);
	_mm256_maskstore_ps(y + 48, m6, c6);
	_mm256_maskstore_ps(y + 56, m7, c7);
}

/* 8 x 8 transpose: rows r of src (stride lds) become columns of dst (stride ldd). */
__attribute__((target("avx2,fma"))) static inline void
transpose8(const float *src, size_t lds, float *dst, size_t ldd)
{
	__m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds);
	__m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
	__m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
	__m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
	__m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
	__m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
	__m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
	__m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
	__m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
	__m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
	__m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
	__m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);

	_mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
	_mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
	_mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
	_mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
	_mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
	_mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
	_mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
	_mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/*
 * packed[k, o] = w[o, k] for k < kc, o < oc, zero for oc <= o < ldp. Packing runs on every
 * call (a one-candidate call packs the whole tower), so it goes 8 x 8 blocks at a time.
 */
__attribute__((target("avx2,fma"))) static void
pack(const float *w, int ldw, int oc, int kc, float *packed, int ldp)
{
	int o8 = oc & ~7, k8 = kc & ~7;

	for (int o = 0; o < o8; o += 8) {
		for (int k = 0; k < k8; k += 8)
			transpose8(w + (size_t)o * ldw + k, ldw, packed + (size_t)k * ldp + o, ldp);
		for (int k = k8; k < kc; k++)
			for (int r = 0; r < 8; r++)
				packed[(size_t)k * ldp + o + r] = w[(size_t)(o + r) * ldw + k];
	}
	for (int k = 0; k < kc; k++) {
		float *pk = packed + (size_t)k * ldp;

		for (int o = o8; o < oc; o++)
			pk[o] = w[(size_t)o * ldw + k];
		for (int o = oc; o < ldp; o++)
			pk[o] = 0.0f;
	}
}

/* Floats of one packed block: kc rows of ldp plus the slack a 64-wide strip reads past it. */
static inline size_t
block_floats(int kc, int ldp)
{
	return (size_t)kc * ldp + 64;
}

size_t
nn_packed_floats(int in, int out)
{
	size_t n = 0;

	if (!nn_kernels()->packs || in <= 0 || out <= 0)
		return 0;
	for (int o0 = 0; o0 < out; o0 += OC) {
		int oc = out - o0 < OC ? out - o0 : OC, ldp = (oc + 15) & ~15;

		for (int k0 = 0; k0 < in; k0 += KCP)
			n += block_floats(in - k0 < KCP ? in - k0 : KCP, ldp);
	}
	return n;
}

__attribute__((target("avx2,fma"))) void
nn_pack_weight(const float *w, int ldw, int in, int out, float *packed)
{
	for (int o0 = 0; o0 < out; o0 += OC) {
		int oc = out - o0 < OC ? out - o0 : OC, ldp = (oc + 15) & ~15;

		for (int k0 = 0; k0 < in; k0 += KCP) {
			int kc = in - k0 < KCP ? in - k0 : KCP;

			pack(w + (size_t)o0 * ldw + k0, ldw, oc, kc, packed, ldp);
			memset(packed + (size_t)kc * ldp, 0, sizeof(float) * 64);
			packed += block_floats(kc, ldp);
		}
	}
}

/*
 * The product over one packed block: rows in 6-row tiles, the rest one by one. Every output
 * element sees the same FMA chain whichever tile computes it.
 */
__attribute__((target("avx2,fma"))) static void
block_product(const float *x, int ldx, int n, const float *packed, int kc, int ldp, int oc,
              int first, const float *bias, float *y, int ldy)
{
	for (int i0 = 0; i0 < n; i0 += 6) {
		int mr = n - i0 < 6 ? n - i0 : 6;

		if (mr == 6)
			for (int t = 0; t < oc; t += 16)
				tile6x16(x + (size_t)i0 * ldx, ldx, kc, packed + t, ldp, y + (size_t)i0 * ldy + t,
				         ldy, first, bias + t, oc - t);
		else
			/* rows short of a 6-row tile */
			for (int r = 0; r < mr; r++)
				for (int t = 0; t < oc; t += 64)
					tile1x64(x + (size_t)(i0 + r) * ldx, kc, packed + t, ldp,
					         y + (size_t)(i0 + r) * ldy + t, first, bias + t, oc - t);
	}
}

/* The product over one packed block by a level's tiles (block_product, AVX-512's). */
typedef void (*BlockProduct)(const float *x, int ldx, int n, const float *packed, int kc, int ldp,
                             int oc, int first, const float *bias, float *y, int ldy);

/*
 * packed NULL: W is packed here, block by block, on the stack (a one-row call then spends
 * most of its time packing); otherwise packed holds nn_pack_weight(w) and w is not read.
 */
__attribute__((target("avx2,fma"))) static void
linear_blocked(const float *x, int ldx, int n, int in, const float *w, int ldw, const float *packed,
               int out, const float *b, float *y, BlockProduct product)
{
	/*
	 * A 64-wide strip may run past ldp: its extra lanes read the next packed row (or the zeroed
	 * slack at the end) and are never stored.
	 */
	float stack[KC * OC + 64] __attribute__((aligned(32)));
	float bias[OC + 64] __attribute__((aligned(32)));
	int kmax = packed ? KCP : KC;

	if (n <= 0 || out <= 0)
		return;
	for (int o0 = 0; o0 < out; o0 += OC) {
		int oc = out - o0 < OC ? out - o0 : OC;
		int ldp = (oc + 15) & ~15; /* whole 16-wide tiles: the padding is zero */

		memset(bias, 0, sizeof(bias));
		if (b)
			memcpy(bias, b + o0, sizeof(float) * oc);
		if (in <= 0)
			for (int i = 0; i < n; i++)
				memcpy(y + (size_t)i * out + o0, bias, sizeof(float) * oc);
		for (int k0 = 0; k0 < in; k0 += kmax) {
			int kc = in - k0 < kmax ? in - k0 : kmax;
			const float *blk = packed;

			if (packed)
				packed += block_floats(kc, ldp);
			else {
				pack(w + (size_t)o0 * ldw + k0, ldw, oc, kc, stack, ldp);
				memset(stack + (size_t)kc * ldp, 0, sizeof(float) * 64);
				blk = stack;
			}
			product(x + k0, ldx, n, blk, kc, ldp, oc, k0 == 0, bias, y + o0, out);
		}
	}
}

void
nn_linear_avx2(const float *x, int ldx, int n, int in, const float *w, int ldw, const float *packed,
               int out, const float *b, float *y)
{
	linear_blocked(x, ldx, n, in, w, ldw, packed, out, b, y, block_product);
}

/* The AVX-512 tiles give the AVX2 tiles' bits (linear_avx512.c). */
void
nn_linear_avx512(const float *x, int ldx, int n, int in, const float *w, int ldw,
                 const float *packed, int out, const float *b, float *y)
{
	linear_blocked(x, ldx, n, in, w, ldw, packed, out, b, y, nn_block_product_avx512);
}
