/*
 * linear_avx512.c - the blocked kernel's tiles in 512-bit registers, for CPUs with AVX-512F.
 *
 * The same packed W and the same per-element FMA chain as the AVX2 tiles (the bias, then one
 * FMA per k in order), so results equal the AVX2 kernel's to the last bit whatever the tile.
 * What changes is the tile's shape: din's layers are narrow (80, 40, 200 outputs), and a fixed
 * 32-wide tile wasted up to 40% of its lanes on them (40 = 32 + 8). Here each output strip is
 * cut into column blocks of at most five 16-lane vectors, as even as possible (80 = 5, 40 = 3,
 * 200 = 5 + 4 + 4), and rows go in as many per tile as the 32 registers hold: about 24
 * accumulators, one weight load per vector and one broadcast per row for every k.
 */
#include "kernels.h"

#include <immintrin.h>

/*
 * Without UBSan: its trap-on-error checks on every unrolled tile's index arithmetic made one
 * fuzz build of this file take minutes. Indexes are bounded by the callers' shapes, which the
 * instrumented model code checks.
 */
#define AVX512 __attribute__((target("avx512f"), no_sanitize("undefined")))

AVX512 static inline __mmask16
mask16(int valid)
{
	return valid >= 16  ? (__mmask16)0xFFFF
	       : valid <= 0 ? (__mmask16)0
	                    : (__mmask16)((1u << valid) - 1);
}

/*
 * y[MR, valid] (+)= x[MR, kc] P[kc, 16 NR] for compile-time MR and NR (every call site passes
 * constants and the loops unroll, so the accumulators are registers). W is read unmasked: a
 * column block never runs more than 15 lanes past the packed row, and every packed block has
 * 64 floats of zeroed slack after it.
 */
AVX512 __attribute__((always_inline)) static inline void
tile(const float *x, int ldx, int kc, const float *p, int ldp, float *y, int ldy, int first,
     const float *bp, int valid, const int MR, const int NR)
{
	__m512 c[8][8]; /* fixed bounds, not a VLA: then the registers hold them */
	__mmask16 m[8];

#pragma GCC unroll 8
	for (int j = 0; j < NR; j++)
		m[j] = mask16(valid - 16 * j);
#pragma GCC unroll 8
	for (int r = 0; r < MR; r++)
#pragma GCC unroll 8
		for (int j = 0; j < NR; j++)
			c[r][j] =
			    _mm512_maskz_loadu_ps(m[j], first ? bp + 16 * j : y + (size_t)r * ldy + 16 * j);
	for (int k = 0; k < kc; k++) {
		__m512 w[8];

#pragma GCC unroll 8
		for (int j = 0; j < NR; j++)
			w[j] = _mm512_loadu_ps(p + (size_t)k * ldp + 16 * j);
#pragma GCC unroll 8
		for (int r = 0; r < MR; r++) {
			__m512 a = _mm512_set1_ps(x[(size_t)r * ldx + k]);

#pragma GCC unroll 8
			for (int j = 0; j < NR; j++)
				c[r][j] = _mm512_fmadd_ps(a, w[j], c[r][j]);
		}
	}
#pragma GCC unroll 8
	for (int r = 0; r < MR; r++)
#pragma GCC unroll 8
		for (int j = 0; j < NR; j++)
			_mm512_mask_storeu_ps(y + (size_t)r * ldy + 16 * j, m[j], c[r][j]);
}

/* Rows per tile for NR vectors: 24 or 25 accumulators of the 32 registers. */
#define ROWS_FOR(NR) ((NR) == 5 ? 5 : (NR) == 4 ? 6 : 8)

/* A tile of the last R rows; a case with R >= MR is dead, so it is not compiled. */
#define REST_ROWS(R, NR)                                                                           \
	case R:                                                                                        \
		if (R < MR)                                                                                \
			tile(x, ldx, kc, p, ldp, y, ldy, first, bp, valid, R, NR);                             \
		break;

/* Every row of one column block of NR vectors: full tiles, then one tile of the rest. */
#define COLUMN_BLOCK(NR)                                                                           \
	AVX512 static void column_block_##NR(const float *x, int ldx, int n, const float *p, int kc,   \
	                                     int ldp, float *y, int ldy, int first, const float *bp,   \
	                                     int valid)                                                \
	{                                                                                              \
		enum { MR = ROWS_FOR(NR) };                                                                \
		int i = 0;                                                                                 \
                                                                                                   \
		for (; i + MR <= n; i += MR)                                                               \
			tile(x + (size_t)i * ldx, ldx, kc, p, ldp, y + (size_t)i * ldy, ldy, first, bp, valid, \
			     MR, NR);                                                                          \
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
COLUMN_BLOCK(4)
COLUMN_BLOCK(5)

/*
 * One row (a per-row score's tower): up to eight vectors per pass, so eight independent FMA
 * chains hide the FMA latency that a five-vector block would be bound by.
 */
/* A one-row strip of V vectors. */
#define ROW_STRIP(V)                                                                               \
	case V:                                                                                        \
		tile(x, 0, kc, pt, ldp, yt, 0, first, bt, valid, 1, V);                                    \
		break;

AVX512 static void
single_row(const float *x, const float *p, int kc, int ldp, int oc, int first, const float *bias,
           float *y)
{
	for (int t = 0; t < oc; t += 128) {
		const float *pt = p + t, *bt = bias + t;
		float *yt = y + t;
		int valid = oc - t;

		switch (valid >= 128 ? 8 : (valid + 15) / 16) {
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
}

AVX512 void
nn_block_product_avx512(const float *x, int ldx, int n, const float *packed, int kc, int ldp,
                        int oc, int first, const float *bias, float *y, int ldy)
{
	int vectors = (oc + 15) / 16, blocks = (vectors + 4) / 5;

	if (n == 1) {
		single_row(x, packed, kc, ldp, oc, first, bias, y);
		return;
	}
	/* column blocks outer: a block of W (kc x 80 at most) stays in L1 while every row passes */
	for (int b = 0, t = 0; b < blocks; b++) {
		int nr = (vectors - t / 16 + (blocks - b) - 1) / (blocks - b);
		const float *p = packed + t;
		float *yt = y + t;

		switch (nr) {
		case 5:
			column_block_5(x, ldx, n, p, kc, ldp, yt, ldy, first, bias + t, oc - t);
			break;
		case 4:
			column_block_4(x, ldx, n, p, kc, ldp, yt, ldy, first, bias + t, oc - t);
			break;
		case 3:
			column_block_3(x, ldx, n, p, kc, ldp, yt, ldy, first, bias + t, oc - t);
			break;
		case 2:
			column_block_2(x, ldx, n, p, kc, ldp, yt, ldy, first, bias + t, oc - t);
			break;
		default:
			column_block_1(x, ldx, n, p, kc, ldp, yt, ldy, first, bias + t, oc - t);
			break;
		}
		t += 16 * nr;
	}
}
