/*
 * linear_blocked.c - the dense product of the AVX2 and AVX-512 levels: register-blocked tiles
 * over W packed transposed.
 *
 * W is packed k-block by k-block (once per model by nn_pack_weight, or per call on the stack).
 * A tile of y, MR rows by NR vectors of 8 outputs, stays in registers while every k broadcasts
 * one x per row and loads NR vectors of W: 4 x 3 or 6 x 2 vectors, 12 accumulators, about one
 * load per FMA. Column blocks of three vectors (two where three would leave one) fit din's
 * narrow layers (40 outputs = 3 + 2 vectors, 80 = 3 + 3 + 2 + 2) without idle lanes; a
 * block's strip of W stays in L1 while the rows pass. One row (a per-row score) runs strips of
 * eight vectors, eight independent FMA chains.
 *
 * One row reads every weight once and reuses none, so a large layer's one-row product runs at
 * the speed W streams in from L2 or L3. Strips of the blocked layout read 256 bytes of each
 * packed k-row, ldp floats apart; measured here, a layer such as BST's 1024 x 512 then streamed
 * at 50-53 GB/s, and at 73 GB/s from row panels, 64 outputs by every k, each panel one
 * contiguous run. So weights of ROW_PANEL_FLOATS or more are packed a second time as row panels
 * (after the blocked copy), which only one-row products read. Smaller layers (din's towers of
 * 200 and 80 outputs) stay in L2 and gained nothing, so they get no second copy.
 *
 * Every product of these levels runs here, whatever its size, and every output element is the
 * bias plus one FMA per k in order, whatever tile computes it: a candidate's score is the same
 * to the bit alone or in a batch (din_rank and the array form equal per-row din_score).
 */
#include "nn.h"
#include "kernels.h"

#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))

/*
 * k-block and output strip: a block packed per call (on the stack) is 64 KB. Prepacked blocks
 * are KCP deep, so din's layers (at most 200 inputs) are one block: no reload of the
 * accumulators halfway. Splitting k changes no bit (each partial sum is stored and reloaded
 * exactly).
 */
enum { KC = 64, KCP = 256, OC = 256 };

/* Row panels: outputs per panel, and the smallest weight (in x out floats, 256 kB) given them. */
enum { PANEL = 64, ROW_PANEL_FLOATS = 1 << 16 };

AVX2 static inline __m256i
mask_of(int valid)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
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

/* Floats of the blocked copy alone: where the row panels start. */
static size_t
blocked_floats(int in, int out)
{
	size_t n = 0;

	for (int o0 = 0; o0 < out; o0 += OC) {
		int oc = out - o0 < OC ? out - o0 : OC, ldp = (oc + 15) & ~15;

		for (int k0 = 0; k0 < in; k0 += KCP)
			n += block_floats(in - k0 < KCP ? in - k0 : KCP, ldp);
	}
	return n;
}

static int
has_row_panels(int in, int out)
{
	return (size_t)in * out >= ROW_PANEL_FLOATS;
}

/* Outputs of the panel that starts at output o0: PANEL, or the rest. */
static int
panel_outputs(int out, int o0)
{
	return out - o0 < PANEL ? out - o0 : PANEL;
}

/* Floats per k of that panel: its outputs in whole vectors. */
static int
panel_width(int out, int o0)
{
	return (panel_outputs(out, o0) + 7) & ~7;
}

size_t
nn_packed_floats(int in, int out)
{
	size_t n;

	if (!nn_kernels()->packs || in <= 0 || out <= 0)
		return 0;
	n = blocked_floats(in, out);
	if (has_row_panels(in, out))
		for (int o0 = 0; o0 < out; o0 += PANEL)
			n += (size_t)in * panel_width(out, o0);
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
	if (has_row_panels(in, out))
		for (int o0 = 0; o0 < out; o0 += PANEL) {
			int pw = panel_width(out, o0);

			pack(w + (size_t)o0 * ldw, ldw, panel_outputs(out, o0), in, packed, pw);
			packed += (size_t)in * pw;
		}
}

/*
 * y[MR, valid] (+)= x[MR, kc] P[kc, 8 NR] for compile-time MR and NR: every call site passes
 * constants and the loops unroll, so the accumulators are registers. Only a last vector short
 * of 8 outputs is loaded and stored masked (W is read whole: a packed row is padded with zeros
 * to ldp).
 */
AVX2 __attribute__((always_inline)) static inline void
tile(const float *x, int ldx, int kc, const float *p, int ldp, float *y, int ldy, int first,
     const float *bias, int valid, const int MR, const int NR)
{
	__m256 c[8][8]; /* fixed bounds, not a VLA: then the registers hold them */
	__m256i m = mask_of(valid - 8 * (NR - 1));
	int whole = valid >= 8 * NR;

#pragma GCC unroll 8
	for (int r = 0; r < MR; r++)
#pragma GCC unroll 8
		for (int j = 0; j < NR; j++) {
			const float *yj = y + (size_t)r * ldy + 8 * j;

			if (first)
				c[r][j] = _mm256_loadu_ps(bias + 8 * j);
			else
				c[r][j] = j < NR - 1 || whole ? _mm256_loadu_ps(yj) : _mm256_maskload_ps(yj, m);
		}
	for (int k = 0; k < kc; k++) {
		__m256 w[8];

#pragma GCC unroll 8
		for (int j = 0; j < NR; j++)
			w[j] = _mm256_loadu_ps(p + (size_t)k * ldp + 8 * j);
#pragma GCC unroll 8
		for (int r = 0; r < MR; r++) {
			__m256 a = _mm256_broadcast_ss(x + (size_t)r * ldx + k);

#pragma GCC unroll 8
			for (int j = 0; j < NR; j++)
				c[r][j] = _mm256_fmadd_ps(a, w[j], c[r][j]);
		}
	}
#pragma GCC unroll 8
	for (int r = 0; r < MR; r++)
#pragma GCC unroll 8
		for (int j = 0; j < NR; j++) {
			float *yj = y + (size_t)r * ldy + 8 * j;

			if (j < NR - 1 || whole)
				_mm256_storeu_ps(yj, c[r][j]);
			else
				_mm256_maskstore_ps(yj, m, c[r][j]);
		}
}

/* Rows per tile for NR vectors: 12 accumulators, a W vector each and a broadcast. */
#define ROWS_FOR(NR) ((NR) == 3 ? 4 : (NR) == 2 ? 6 : 8)

/* A tile of the last R rows; a case with R >= MR is dead, so it is not compiled. */
#define REST_ROWS(R, NR)                                                                           \
	case R:                                                                                        \
		if (R < MR)                                                                                \
			tile(x, ldx, kc, p, ldp, y, ldy, first, bias, valid, R, NR);                           \
		break;

/* Every row of one column block of NR vectors: whole tiles, then one tile of the rest. */
#define COLUMN_BLOCK(NR)                                                                           \
	AVX2 static void column_block_##NR(const float *x, int ldx, int n, const float *p, int kc,     \
	                                   int ldp, float *y, int ldy, int first, const float *bias,   \
	                                   int valid)                                                  \
	{                                                                                              \
		enum { MR = ROWS_FOR(NR) };                                                                \
		int i = 0;                                                                                 \
                                                                                                   \
		for (; i + MR <= n; i += MR)                                                               \
			tile(x + (size_t)i * ldx, ldx, kc, p, ldp, y + (size_t)i * ldy, ldy, first, bias,      \
			     valid, MR, NR);                                                                   \
		x += (size_t)i * ldx;                                                                      \
		y += (size_t)i * ldy;                                                                      \
		switch (n - i) {                                                                           \
			REST_ROWS(7, NR)                                                                       \
			REST_ROWS(6, NR)                                                                       \
			REST_ROWS(5, NR)                                                                       \
			REST_ROWS(4, NR)                                                                       \
			REST_ROWS(3, NR)                                                                       \
			REST_ROWS(2, NR)                                                                       \
			REST_ROWS(1, NR)                                                                       \
		}                                                                                          \
	}

COLUMN_BLOCK(1)
COLUMN_BLOCK(2)
COLUMN_BLOCK(3)

/* A one-row strip of V vectors. */
#define ROW_STRIP(V)                                                                               \
	case V:                                                                                        \
		tile(x, 0, kc, p + t, ldp, y + t, 0, first, bias + t, oc - t, 1, V);                       \
		break;

/* One row (a per-row score's tower): up to eight vectors per pass, eight FMA chains. */
AVX2 static void
single_row(const float *x, const float *p, int kc, int ldp, int oc, int first, const float *bias,
           float *y)
{
	for (int t = 0; t < oc; t += 64)
		switch (oc - t >= 64 ? 8 : (oc - t + 7) / 8) {
			ROW_STRIP(8)
			ROW_STRIP(7)
			ROW_STRIP(6)
			ROW_STRIP(5)
			ROW_STRIP(4)
			ROW_STRIP(3)
			ROW_STRIP(2)
			ROW_STRIP(1)
		}
}

/*
 * One row over the row panels of a layer (after its blocked copy): a panel is a one-strip
 * single_row, the bias first, then one FMA per k in order, so the bits are the blocked copy's.
 */
AVX2 static void
row_panels(const float *x, int in, const float *panels, int out, const float *b, float *y)
{
	float bias[PANEL] __attribute__((aligned(32)));

	for (int o0 = 0; o0 < out; o0 += PANEL) {
		int pw = panel_width(out, o0), oc = panel_outputs(out, o0);

		memset(bias, 0, sizeof(bias));
		if (b)
			memcpy(bias, b + o0, sizeof(float) * oc);
		single_row(x, panels, in, pw, oc, 1, bias, y + o0);
		panels += (size_t)in * pw;
	}
}

/*
 * The product over one packed block, y[n, oc] (row stride ldy) (+)= x[n, kc] P[kc, oc]: column
 * blocks outer, so a block's strip of W stays in L1 while every row passes.
 */
AVX2 static void
block_product(const float *x, int ldx, int n, const float *packed, int kc, int ldp, int oc,
              int first, const float *bias, float *y, int ldy)
{
	int vectors = (oc + 7) / 8;

	if (n == 1) {
		single_row(x, packed, kc, ldp, oc, first, bias, y);
		return;
	}
	for (int v = 0, nr; v < vectors; v += nr) {
		int col = 8 * v;

		/* threes, then twos where a three would leave a one */
		nr = vectors - v == 4 ? 2 : vectors - v < 3 ? vectors - v : 3;
		if (nr == 3)
			column_block_3(x, ldx, n, packed + col, kc, ldp, y + col, ldy, first, bias + col,
			               oc - col);
		else if (nr == 2)
			column_block_2(x, ldx, n, packed + col, kc, ldp, y + col, ldy, first, bias + col,
			               oc - col);
		else
			column_block_1(x, ldx, n, packed + col, kc, ldp, y + col, ldy, first, bias + col,
			               oc - col);
	}
}

/* The product over one packed block by a level's tiles (block_product, AVX-512's). */
typedef void (*BlockProduct)(const float *x, int ldx, int n, const float *packed, int kc, int ldp,
                             int oc, int first, const float *bias, float *y, int ldy);

/*
 * packed NULL: W is packed here, block by block, on the stack (a one-row call then spends
 * most of its time packing); otherwise packed holds nn_pack_weight(w) and w is not read.
 */
AVX2 static void
linear_blocked(const float *x, int ldx, int n, int in, const float *w, int ldw, const float *packed,
               int out, const float *b, float *y, BlockProduct product)
{
	float stack[KC * OC + 64] __attribute__((aligned(32)));
	float bias[OC + 64] __attribute__((aligned(32)));
	int kmax = packed ? KCP : KC;

	if (n == 1 && packed && has_row_panels(in, out)) {
		row_panels(x, in, packed + blocked_floats(in, out), out, b, y);
		return;
	}
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
