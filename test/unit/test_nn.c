/*
 * test_nn.c - the numeric kernels of src/nn against formulas written out here, at every kernel
 * level this CPU runs (cpu.h), portable included.
 */
#include "unit.h"
#include "nn/nn.h"
#include "nn/cpu.h"
#include "nn/linear_strided.h"
#include "nn/rowops.h"
#include "nn/sigmoid_kernels.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

/* y = x W^T + b in double, with strides, written independently of src/nn */
static void
linear_double(const float *x, int ldx, int n, int in, const float *w, int ldw, int out,
              const float *b, double *y)
{
	for (int i = 0; i < n; i++)
		for (int o = 0; o < out; o++) {
			double s = b ? b[o] : 0.0;

			for (int k = 0; k < in; k++)
				s += (double)x[(size_t)i * ldx + k] * w[(size_t)o * ldw + k];
			y[(size_t)i * out + o] = s;
		}
}

/* fn at every kernel level this CPU runs, portable first; then the best level again. */
static void
at_every_level(void (*fn)(void))
{
	for (int level = NN_LEVEL_PORTABLE; nn_set_level((NnLevel)level); level++)
		fn();
	nn_init();
}

#define MAXN 96
#define MAXIN 320
#define MAXOUT 320

static float lx[MAXN * MAXIN], lw[MAXOUT * MAXIN], lb[MAXOUT], ly[MAXN * MAXOUT],
    lref[MAXN * MAXOUT], lpacked[MAXOUT * MAXIN + 4096];
static double ld[MAXN * MAXOUT];

/* nn_linear, and with the weight packed where the level packs, against a double reference */
static void
check_linear_shape(int n, int in, int out, int with_bias)
{
	const float *b = with_bias ? lb : NULL;

	unit_fill(lx, (size_t)n * in, &rng_state);
	unit_fill(lw, (size_t)out * in, &rng_state);
	unit_fill(lb, out, &rng_state);
	linear_double(lx, in, n, in, lw, in, out, b, ld);
	nn_linear_ref(lx, n, in, out, lw, b, lref);
	nn_linear(lx, n, in, out, lw, b, ly);
	for (int i = 0; i < n * out; i++) {
		CHECK_CLOSE(lref[i], ld[i], 1e-5);
		CHECK_CLOSE(ly[i], ld[i], 1e-5);
	}
	if (nn_packed_floats(in, out) > 0) {
		CHECK(nn_packed_floats(in, out) <= sizeof(lpacked) / sizeof(lpacked[0]));
		nn_pack_weight(lw, in, in, out, lpacked);
		nn_linear_prepacked(lx, in, n, in, lw, in, lpacked, out, b, ly);
		for (int i = 0; i < n * out; i++)
			CHECK_CLOSE(ly[i], ld[i], 1e-5);
	}
}

static void
linear_small_products(void)
{
	for (int r = 0; r < 40; r++) {
		int n = 1 + (int)((unit_rand(&rng_state) + 1) * 3.5f); /* 1..7: across sgemm's 4 rows */
		int in = 1 + (int)((unit_rand(&rng_state) + 1) *
		                   40.0f); /* 1..80, odd sizes exercise the tails */
		int out = 1 + (int)((unit_rand(&rng_state) + 1) * 20.0f); /* 1..40 */

		check_linear_shape(n, in, out, r % 3 != 0);
	}
	check_linear_shape(1, 0, 3, 1); /* an empty product is the bias */
}

static void
test_linear_small_products_match_reference(void)
{
	at_every_level(linear_small_products);
}

/* Products of many rows: the portable level's sgemm, the blocked kernel's 6-row tiles. */
static void
linear_large_products(void)
{
	for (int r = 0; r < 6; r++) {
		int n = 8 + (int)((unit_rand(&rng_state) + 1) * 44.0f);   /* 8..95 */
		int in = 64 + (int)((unit_rand(&rng_state) + 1) * 48.0f); /* 64..159 */
		int out = 64 + (int)((unit_rand(&rng_state) + 1) * 8.0f); /* 64..79 */

		check_linear_shape(n, in, out, r % 2);
	}
}

static void
test_linear_large_products_match_reference(void)
{
	at_every_level(linear_large_products);
}

/* The blocked kernel across k-blocks (in > 64), output strips (out > 256) and row tails. */
static void
linear_blocked_shapes(void)
{
	static const int shapes[][3] = {{13, 162, 200}, {9, 36, 80},   {21, 70, 300},
	                                {8, 1, 3},      {11, 130, 17}, {5, 0, 9}};

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		check_linear_shape(shapes[s][0], shapes[s][1], shapes[s][2], s % 2 == 0);
}

static void
test_linear_blocked_shapes(void)
{
	at_every_level(linear_blocked_shapes);
}

/*
 * Weights packed once (nn_pack_weight, k-blocks of 128) give the bits of the kernel that packs
 * per call (k-blocks of 64), and each row the same bits whether computed alone or in a batch
 * (row tiles of every height, one-row tiles alone): din_rank equals din_score.
 */
static void
linear_prepacked_bits(void)
{
	/* from 300 x 270 on, one row reads the row panels: outputs of whole panels and not */
	static const int shapes[][3] = {{13, 162, 200}, {12, 36, 80},  {25, 80, 40},
	                                {7, 300, 270},  {6, 130, 17},  {1, 5, 3},
	                                {3, 82, 1024},  {2, 1100, 70}, {4, 257, 300}};
	enum { CAP = 82 * 1024 };
	static float x[CAP], w[CAP], b[1024], y[CAP], yp[CAP], y1[1024];

	if (nn_packed_floats(36, 80) == 0)
		return; /* the portable level packs nothing */
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		int n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
		float *packed = malloc(sizeof(float) * nn_packed_floats(in, out));
		int same = 1;

		unit_fill(x, (size_t)n * in, &rng_state);
		unit_fill(w, (size_t)out * in, &rng_state);
		unit_fill(b, out, &rng_state);
		CHECK(packed != NULL);
		nn_pack_weight(w, in, in, out, packed);
		nn_linear(x, n, in, out, w, b, y);
		nn_linear_prepacked(x, in, n, in, w, in, packed, out, b, yp);
		CHECK(memcmp(y, yp, sizeof(float) * n * out) == 0);
		for (int i = 0; i < n; i++) {
			nn_linear_prepacked(x + (size_t)i * in, in, 1, in, w, in, packed, out, b, y1);
			same &= memcmp(y1, yp + (size_t)i * out, sizeof(float) * out) == 0;
		}
		CHECK(same);
		free(packed);
	}
}

static void
test_linear_prepacked_bits(void)
{
	at_every_level(linear_prepacked_bits);
}

/*
 * The AVX-512 tiles (column blocks of 1 to 5 vectors, one-row strips of up to 8) give the AVX2
 * tiles' bits for every width and row count: a score does not depend on the CPU's vector width.
 */
static void
test_linear_avx512_bits(void)
{
	enum { CAP = 20 * 300 };
	static float x[CAP], w[300 * 300], b[300], y2[CAP], y5[CAP];
	int same = 1;

	if (nn_cpu_level() < NN_LEVEL_AVX512)
		return;
	for (int out = 1; out <= 300; out += out < 100 ? 1 : 37)
		for (int n = 1; n <= 20; n += n < 10 ? 1 : 5) {
			int in = 1 + (out * 7 + n) % 140; /* crosses the 128-deep k-block too */

			unit_fill(x, (size_t)n * in, &rng_state);
			unit_fill(w, (size_t)out * in, &rng_state);
			unit_fill(b, out, &rng_state);
			nn_set_level(NN_LEVEL_AVX2);
			nn_linear(x, n, in, out, w, b, y2);
			nn_set_level(NN_LEVEL_AVX512);
			nn_linear(x, n, in, out, w, b, y5);
			same &= memcmp(y2, y5, sizeof(float) * n * out) == 0;
		}
	nn_init();
	CHECK(same);
}

/* Column blocks of a wider weight, as the attention unit splits its first layer. */
static void
linear_strided_views(void)
{
	enum { N = 12, IN = 9, OUT = 70, LDX = 40, LDW = 36 };
	static float x[N * LDX], w[OUT * LDW], b[OUT], y[N * OUT];
	static double d[N * OUT];

	unit_fill(x, sizeof(x) / sizeof(x[0]), &rng_state);
	unit_fill(w, sizeof(w) / sizeof(w[0]), &rng_state);
	unit_fill(b, OUT, &rng_state);
	linear_double(x + 3, LDX, N, IN, w + 18, LDW, OUT, b, d);
	nn_linear_strided(x + 3, LDX, N, IN, w + 18, LDW, OUT, b, y);
	for (int i = 0; i < N * OUT; i++)
		CHECK_CLOSE(y[i], d[i], 1e-5);
	linear_double(x + 3, LDX, N, IN, w + 18, LDW, OUT, NULL, d);
	nn_linear_strided(x + 3, LDX, N, IN, w + 18, LDW, OUT, NULL, y);
	for (int i = 0; i < N * OUT; i++)
		CHECK_CLOSE(y[i], d[i], 1e-5);
}

static void
test_linear_strided_views(void)
{
	at_every_level(linear_strided_views);
}

/* Each level is the level asked for, and no level above the CPU's can be set. */
static void
test_levels(void)
{
	for (int level = NN_LEVEL_PORTABLE; level <= NN_LEVEL_AVX512; level++) {
		int ok = nn_set_level((NnLevel)level);

		CHECK_INT(ok, level <= (int)nn_cpu_level());
		if (ok)
			CHECK_INT(nn_level(), level);
	}
	nn_init();
	CHECK_INT(nn_level(), nn_cpu_level());
	CHECK_INT(nn_packed_floats(36, 80) > 0, nn_cpu_level() >= NN_LEVEL_AVX2);
}

/* Every length and position: one Inf or NaN anywhere is found, the largest floats are finite. */
static void
all_finite(void)
{
	static float x[80];
	int ok = 1;

	for (int n = 0; n <= 80; n++) {
		for (int i = 0; i < n; i++)
			x[i] = i % 3 == 0 ? FLT_MAX : -1e-45f * i;
		ok &= nn_all_finite(x, n);
		for (int i = 0; i < n; i++) {
			float keep = x[i];

			x[i] = i % 3 == 0 ? INFINITY : i % 3 == 1 ? -INFINITY : NAN;
			ok &= !nn_all_finite(x, n);
			x[i] = keep;
		}
	}
	CHECK(ok);
}

static void
test_all_finite_every_level(void)
{
	at_every_level(all_finite);
}

static void
test_dot(void)
{
	float a[37], b[37];
	double s = 0;

	unit_fill(a, 37, &rng_state);
	unit_fill(b, 37, &rng_state);
	for (int i = 0; i < 37; i++)
		s += (double)a[i] * b[i];
	CHECK_CLOSE(nn_dot(a, b, 37), s, 1e-5);
	CHECK_CLOSE(nn_dot(a, b, 0), 0.0, 0);
}

static void
test_sigmoid_extremes(void)
{
	float x[6] = {-1e30f, -100.0f, 0.0f, 2.0f, 100.0f, 1e30f};
	DinAct act = {.kind = DIN_ACT_SIGMOID, .units = 6};

	CHECK_CLOSE(nn_sigmoid(0.0), 0.5, 1e-12);
	CHECK_CLOSE(nn_sigmoid(2.0), 0.8807970779778823, 1e-12);
	CHECK_CLOSE(nn_sigmoid(-2.0), 1 - 0.8807970779778823, 1e-12);
	CHECK(nn_sigmoid(-1000.0) == 0.0);
	CHECK(nn_sigmoid(1000.0) == 1.0);
	CHECK(nn_sigmoid(-745.0) >= 0.0 && !isnan(nn_sigmoid(-745.0)));
	nn_activate(&act, x, 1);
	/* the vector kernels stop at sigmoid(-88), about 6e-39, where PyTorch underflows to 0 */
	CHECK(x[0] >= 0.0f && x[0] < 1e-37f);
	CHECK(x[1] >= 0.0f && x[1] < 1e-37f);
	CHECK_CLOSE(x[2], 0.5, 1e-7);
	CHECK_CLOSE(x[3], 0.8807970779778823, 1e-6);
	CHECK(x[4] == 1.0f);
	CHECK(x[5] == 1.0f);
}

static void
test_softmax_extremes(void)
{
	float a[3] = {1000.0f, 0.0f, -1000.0f};
	float b[2] = {88.0f, 89.0f};
	float c[4] = {-3e38f, -3e38f, -3e38f, -3e38f};
	float d[1] = {5.0f};

	nn_softmax(a, 3);
	CHECK_CLOSE(a[0], 1.0, 1e-7);
	CHECK(a[1] == 0.0f && a[2] == 0.0f);
	nn_softmax(b, 2);
	CHECK_CLOSE(b[0], 1.0 / (1.0 + exp(1.0)), 1e-6);
	CHECK_CLOSE(b[1], 1.0 / (1.0 + exp(-1.0)), 1e-6);
	nn_softmax(c, 4);
	for (int i = 0; i < 4; i++)
		CHECK_CLOSE(c[i], 0.25, 1e-7);
	nn_softmax(d, 1);
	CHECK(d[0] == 1.0f);
	nn_softmax(NULL, 0); /* n == 0 touches nothing */
}

static void
test_batchnorm_plain_and_affine(void)
{
	float mean[2] = {1.0f, -1.0f}, var[2] = {4.0f, 0.25f}, w[2] = {2.0f, -1.0f},
	      b[2] = {0.5f, 0.0f};
	float x[4] = {3.0f, -1.0f, 1.0f, 0.0f};
	DinBN bn = {.n = 2, .eps = 1e-5f, .mean = mean, .var = var};

	nn_batchnorm(&bn, x, 2);
	CHECK_CLOSE(x[0], 0.9999987500023437, 1e-6);
	CHECK_CLOSE(x[1], 0.0, 1e-7);
	CHECK_CLOSE(x[2], 0.0, 1e-7);
	CHECK_CLOSE(x[3], 1.0 / sqrt(0.25 + 1e-5), 1e-6);
	x[0] = 3.0f;
	x[1] = 0.0f;
	bn.weight = w;
	bn.bias = b;
	nn_batchnorm(&bn, x, 1);
	CHECK_CLOSE(x[0], 2.4999975000046875, 1e-6);
	CHECK_CLOSE(x[1], -1.0 / sqrt(0.25 + 1e-5), 1e-6);
}

static void
test_simple_activations_by_hand(void)
{
	float r[2] = {-2.0f, 3.0f}, t[1] = {0.5f}, l[2] = {-2.0f, 3.0f};
	float g[2] = {1.0f, -1.0f}, gt[2] = {1.0f, -2.0f}, h[3] = {-3.0f, 1.0f, 3.0f};
	float lin[2] = {-7.5f, 2.0f};
	DinAct act = {.units = 2};

	act.kind = DIN_ACT_LINEAR;
	nn_activate(&act, lin, 1);
	CHECK(lin[0] == -7.5f && lin[1] == 2.0f);
	act.kind = DIN_ACT_RELU;
	nn_activate(&act, r, 1);
	CHECK(r[0] == 0.0f && r[1] == 3.0f);
	act.kind = DIN_ACT_TANH;
	act.units = 1;
	nn_activate(&act, t, 1);
	CHECK_CLOSE(t[0], 0.46211715726000974, 1e-6);
	act.kind = DIN_ACT_LEAKY_RELU;
	act.units = 2;
	act.slope = 0.1f;
	nn_activate(&act, l, 1);
	CHECK_CLOSE(l[0], -0.2, 1e-7);
	CHECK_CLOSE(l[1], 3.0, 1e-7);
	act.kind = DIN_ACT_GELU;
	nn_activate(&act, g, 1);
	CHECK_CLOSE(g[0], 0.8413447460685429, 1e-6);
	CHECK_CLOSE(g[1], -0.15865525393145707, 1e-6);
	act.gelu_tanh = 1;
	nn_activate(&act, gt, 1);
	CHECK_CLOSE(gt[0], 0.8411919906082768, 1e-6);
	CHECK_CLOSE(gt[1], -0.04540230591222494, 1e-6);
	act.kind = DIN_ACT_HARD_SIGMOID;
	act.units = 3;
	act.slope = 0.2f;
	act.offset = 0.5f;
	nn_activate(&act, h, 1);
	CHECK(h[0] == 0.0f);
	CHECK_CLOSE(h[1], 0.7, 1e-6);
	CHECK(h[2] == 1.0f);
}

static void
test_prelu_scalar_and_per_channel(void)
{
	float a1[1] = {0.25f}, a2[2] = {0.1f, 0.2f};
	float x[4] = {-2.0f, 3.0f, -1.0f, -1.0f};
	DinAct act = {.kind = DIN_ACT_PRELU, .units = 2, .alpha_n = 1, .alpha = a1};

	nn_activate(&act, x, 1);
	CHECK_CLOSE(x[0], -0.5, 1e-7);
	CHECK(x[1] == 3.0f);
	act.alpha_n = 2;
	act.alpha = a2;
	nn_activate(&act, x + 2, 1);
	CHECK_CLOSE(x[2], -0.1, 1e-7);
	CHECK_CLOSE(x[3], -0.2, 1e-7);
}

static void
test_dice_variants_by_hand(void)
{
	float mean[2] = {1.0f, 0.0f}, var[2] = {3.0f, 0.25f}, zero[2] = {0, 0}, one[2] = {1, 1};
	float a_s[1] = {0.5f}, a_c[2] = {0.5f, -0.25f}, w[2] = {2.0f, 0.5f}, b[2] = {0.1f, -0.3f};
	float beta[2] = {1.5f, -2.0f}, a3[1] = {0.3f};
	float x[2] = {2.0f, -1.0f}, s[3] = {1.0f, 2.0f, 4.0f};
	DinAct act = {.kind = DIN_ACT_DICE,
	              .units = 2,
	              .eps = 1e-8f,
	              .alpha_n = 1,
	              .alpha = a_s,
	              .mean = mean,
	              .var = var};

	/* running statistics, scalar alpha (DeepCTR, paper) */
	nn_activate(&act, x, 1);
	CHECK_CLOSE(x[0], 1.6404574754590484, 1e-6);
	CHECK_CLOSE(x[1], -0.5596014631109305, 1e-6);
	/* affine, per-channel alpha (DeepCTR-Torch) */
	x[0] = 2.0f;
	x[1] = -1.0f;
	act.alpha_n = 2;
	act.alpha = a_c;
	act.weight = w;
	act.bias = b;
	nn_activate(&act, x, 1);
	CHECK_CLOSE(x[0], 1.778112485818015, 1e-6);
	CHECK_CLOSE(x[1], -0.017706275404260674, 1e-6);
	/* frozen 0/1 statistics with beta inside the sigmoid (DIN repo) */
	x[0] = 2.0f;
	x[1] = -1.0f;
	act.weight = act.bias = NULL;
	act.mean = zero;
	act.var = one;
	act.eps = 1e-3f;
	act.beta = beta;
	nn_activate(&act, x, 1);
	CHECK_CLOSE(x[0], 1.9525063666616767, 1e-6);
	CHECK_CLOSE(x[1], -0.8508651539303667, 1e-6);
	/* per-row sample statistics, sum of squares (torch-rechub) */
	act = (DinAct){.kind = DIN_ACT_DICE,
	               .units = 3,
	               .eps = 1e-3f,
	               .dice_sample = 1,
	               .alpha_n = 1,
	               .alpha = a3};
	nn_activate(&act, s, 1);
	CHECK_CLOSE(s[0], 0.5453224361857869, 1e-6);
	CHECK_CLOSE(s[1], 1.2461179760242165, 1e-6);
	CHECK_CLOSE(s[2], 3.114626880340768, 1e-6);
}

/* Sigmoid, tanh and the Dice gate of the level running against double formulas. */
static void
sigmoid_kernels(void)
{
	enum { N = 203 };
	float z[N], x[N], a[N], b[N], al[N], g[N];

	unit_fill(z, N, &rng_state);
	for (int i = 0; i < N; i++)
		z[i] *= 40.0f;
	z[0] = -1e30f;
	z[1] = 1e30f;
	z[2] = -90.0f;
	z[3] = 0.0f;
	unit_fill(a, N, &rng_state);
	unit_fill(b, N, &rng_state);
	unit_fill(al, N, &rng_state);
	memcpy(x, z, sizeof(x));
	nn_sigmoid_inplace(x, N);
	for (int i = 0; i < N; i++) {
		CHECK(!isnan(x[i]));
		CHECK_CLOSE(x[i], 1.0 / (1.0 + exp(-(double)z[i])), 1e-6);
	}
	/* tanh: both sides of its 0.625 switch, tiny and huge values; NaN stays NaN */
	for (int i = 0; i < N; i++)
		x[i] = z[i] / (float)(1 + i % 64);
	x[4] = 0.625f;
	x[5] = -0.62499994f;
	x[6] = 1e-30f;
	x[7] = NAN;
	memcpy(g, x, sizeof(x));
	nn_tanh_inplace(x, N);
	CHECK(isnan(x[7]));
	CHECK(x[6] == 1e-30f); /* no cancellation near zero */
	for (int i = 0; i < N; i++)
		if (i != 7)
			CHECK_CLOSE(x[i], tanh((double)g[i]), 3e-7);
	x[0] = NAN;
	nn_sigmoid_inplace(x, 1);
	CHECK(isnan(x[0]));
	for (int i = 0; i < N; i++)
		g[i] = z[i] / 8.0f;
	nn_dice_gate(g, a, b, al, N);
	for (int i = 0; i < N; i++) {
		double v = z[i] / 8.0, p = 1.0 / (1.0 + exp(-(v * a[i] + b[i])));

		CHECK_CLOSE(g[i], p * v + al[i] * (1 - p) * v, 1e-5);
	}
	/* exp over softmax's range: 0 and below, down to where it underflows */
	for (int i = 0; i < N; i++)
		x[i] = -fabsf(z[i]) * 3.0f;
	memcpy(g, x, sizeof(x));
	nn_exp_inplace(x, N);
	for (int i = 0; i < N; i++)
		CHECK(fabs(x[i] - exp((double)g[i])) <= 1e-6 * exp((double)g[i]) + 1e-38);
	test_dice_variants_by_hand();
}

static void
test_sigmoid_kernels_every_level(void)
{
	at_every_level(sigmoid_kernels);
}

/*
 * Batch norm and Dice coefficients folded once per model (config_pack.c) give the bits of the
 * per-call path, over widths that cross its 64-unit blocks.
 */
static void
folded_bn_and_dice_bits(void)
{
	enum { N = 3, U = 150 };
	float mean[U], var[U], w[U], b[U], alpha[U], x[N * U], y[N * U];
	float scale[U], shift[U], ga[U], gb[U], gal[U];
	DinBN bn = {.n = U, .eps = 1e-3f, .mean = mean, .var = var, .weight = w, .bias = b};
	DinAct act = {.kind = DIN_ACT_DICE,
	              .units = U,
	              .eps = 1e-9f,
	              .alpha_n = U,
	              .alpha = alpha,
	              .mean = mean,
	              .var = var,
	              .weight = w,
	              .bias = b};

	unit_fill(mean, U, &rng_state);
	unit_fill(w, U, &rng_state);
	unit_fill(b, U, &rng_state);
	unit_fill(alpha, U, &rng_state);
	unit_fill(x, N * U, &rng_state);
	for (int j = 0; j < U; j++)
		var[j] = 0.1f + (float)j / U;
	memcpy(y, x, sizeof(x));
	nn_batchnorm(&bn, x, N);
	nn_activate(&act, x, N);
	CHECK(nn_dice_foldable(&act));
	nn_batchnorm_fold(&bn, scale, shift);
	nn_dice_fold(&act, U, ga, gb, gal);
	bn.scale = scale;
	bn.shift = shift;
	act.gate_a = ga;
	act.gate_b = gb;
	act.gate_alpha = gal;
	nn_batchnorm(&bn, y, N);
	nn_activate(&act, y, N);
	CHECK(memcmp(x, y, sizeof(x)) == 0);
	act.dice_sample = 1;
	CHECK(!nn_dice_foldable(&act));
}

static void
test_folded_bn_and_dice_bits(void)
{
	at_every_level(folded_bn_and_dice_bits);
}

/* act(BN(x W^T + b)) over several rows equals the three steps done by hand. */
static void
test_layer_composes_linear_bn_activation(void)
{
	enum { N = 3, IN = 5, OUT = 4 };
	float x[N * IN], w[OUT * IN], b[OUT], mean[OUT], var[OUT], y[N * OUT];
	float alpha[1] = {0.2f};
	DinLayer layer = {.in = IN, .out = OUT, .weight = w, .bias = b};

	unit_fill(x, N * IN, &rng_state);
	unit_fill(w, OUT * IN, &rng_state);
	unit_fill(b, OUT, &rng_state);
	unit_fill(mean, OUT, &rng_state);
	for (int j = 0; j < OUT; j++)
		var[j] = 0.5f + (float)j;
	layer.bn = (DinBN){.n = OUT, .eps = 1e-3f, .mean = mean, .var = var};
	layer.act = (DinAct){.kind = DIN_ACT_PRELU, .units = OUT, .alpha_n = 1, .alpha = alpha};
	nn_layer(&layer, x, N, y);
	for (int i = 0; i < N; i++)
		for (int o = 0; o < OUT; o++) {
			double s = b[o], v;

			for (int k = 0; k < IN; k++)
				s += (double)x[i * IN + k] * w[o * IN + k];
			v = (s - mean[o]) / sqrt(var[o] + 1e-3);
			v = v > 0 ? v : 0.2 * v;
			CHECK_CLOSE(y[i * OUT + o], v, 1e-5);
		}
}

/* act(bn(y + q[i / period] + k[i % period])) of one element, in double; bn NULL: none */
static double
epilogue_double(double y, const NnEpilogue *ep, const float *scale, const float *shift, int i,
                int o, int out)
{
	const DinAct *act = ep->act;
	double p;

	if (ep->add_q != NULL)
		y += (double)ep->add_q[(size_t)(i / ep->period) * out + o] +
		     ep->add_k[(size_t)(i % ep->period) * out + o];
	if (scale != NULL)
		y = y * scale[o] + shift[o];
	switch (act->kind) {
	case DIN_ACT_SIGMOID:
		return 1.0 / (1.0 + exp(-y));
	case DIN_ACT_DICE:
		p = 1.0 / (1.0 + exp(-(y * act->gate_a[o] + act->gate_b[o])));
		return y * (p + act->gate_alpha[o] * (1.0 - p));
	case DIN_ACT_PRELU:
		return y >= 0 ? y : act->alpha[0] * y;
	default:
		return y;
	}
}

/*
 * A product with an epilogue (the DIN unit's row additions, sigmoid, a folded Dice gate, PReLU,
 * a batch norm) gives the bits of the product followed by the epilogue's separate passes,
 * whether the tiles run it (whole vectors, no batch norm) or not, and the formula to 1e-5:
 * one row, row tails, two k-blocks, widths that are not whole vectors.
 */
static void
layer_epilogues(void)
{
	static const int shapes[][4] = {{1, 36, 80, 1},    {13, 36, 80, 13}, {96, 80, 40, 12},
	                                {50, 162, 200, 7}, {7, 300, 24, 3},  {20, 9, 17, 5}};
	enum { CAP = 96 * 300, W = 300 * 200 };
	static float x[CAP], w[W], b[300], q[CAP], k[CAP], y1[CAP], y2[CAP], packed[W + 4096];
	static float ga[300], gb[300], gal[300], scale[300], shift[300], mean[300], var[300];
	static double ref[300];
	float alpha[1] = {0.25f};

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		for (int form = 0; form < 6; form++) {
			int n = shapes[s][0], in = shapes[s][1], out = shapes[s][2], period = shapes[s][3];
			DinLayer l = {.in = in, .out = out, .weight = w, .bias = b};
			DinAct act = {.kind = DIN_ACT_SIGMOID, .units = out};
			DinBN bn = {.n = out, .eps = 1e-3f, .mean = mean, .var = var};
			NnEpilogue ep = {.act = &act};
			int same = 1;

			unit_fill(x, (size_t)n * in, &rng_state);
			unit_fill(w, (size_t)out * in, &rng_state);
			unit_fill(b, out, &rng_state);
			unit_fill(q, CAP, &rng_state);
			unit_fill(k, CAP, &rng_state);
			unit_fill(ga, out, &rng_state);
			unit_fill(gb, out, &rng_state);
			unit_fill(gal, out, &rng_state);
			unit_fill(mean, out, &rng_state);
			for (int o = 0; o < out; o++)
				var[o] = 0.5f + (float)o / out;
			if (form % 2 == 1) { /* the DIN unit's row additions */
				ep.add_q = q;
				ep.add_k = k;
				ep.period = period;
			}
			if (form >= 2 && form < 4)
				act = (DinAct){.kind = DIN_ACT_DICE,
				               .units = out,
				               .gate_a = ga,
				               .gate_b = gb,
				               .gate_alpha = gal};
			if (form >= 4) {
				act = (DinAct){.kind = DIN_ACT_PRELU, .units = out, .alpha_n = 1, .alpha = alpha};
				nn_batchnorm_fold(&bn, scale, shift);
				bn.scale = scale;
				bn.shift = shift;
				ep.bn = &bn;
			}
			if (nn_packed_floats(in, out) > 0 && form % 3 == 0) {
				nn_pack_weight(w, in, in, out, packed);
				l.packed = packed;
			}
			nn_layer_product_ep(&l, &ep, x, n, y1);
			nn_layer_product(&l, x, n, y2);
			nn_epilogue(&ep, y2, n, out);
			CHECK(memcmp(y1, y2, sizeof(float) * n * out) == 0);
			for (int i = 0; i < n; i++) {
				linear_double(x + (size_t)i * in, in, 1, in, w, in, out, b, ref);
				for (int o = 0; o < out; o++) {
					double v = epilogue_double(ref[o], &ep, ep.bn ? scale : NULL, shift, i, o, out);

					same &= fabs(y1[(size_t)i * out + o] - v) <= 1e-5 * fmax(1.0, fabs(v));
				}
			}
			CHECK(same);
		}
}

static void
test_layer_epilogues_every_level(void)
{
	at_every_level(layer_epilogues);
}

/*
 * The attention unit's row steps, with E and U not multiples of 8 (masked tails). Products and
 * sums in the loops' order give the portable level's bits at every level.
 */
static void
rows_ops(void)
{
	enum { T = 7, E = 36, U = 43 };
	static float q[E], k[T * E], p[T * E], h[U], g[T * U], a[T * U], a0[T * U], w[T], u[E], s[T];
	static float p_portable[T * E], a_portable[T * U];
	NnLevel level = nn_level();
	uint64_t rng = 0x853c49e6748fea9bULL; /* the same inputs at every level */

	unit_fill(q, E, &rng);
	unit_fill(k, T * E, &rng);
	unit_fill(h, U, &rng);
	unit_fill(g, T * U, &rng);
	unit_fill(a, T * U, &rng);
	unit_fill(w, T, &rng);
	for (int i = 0; i < T * U; i++)
		a0[i] = a[i];
	nn_rows_mul(p, q, k, T, E);
	nn_rows_add2(a, h, g, T, U);
	nn_rows_dot(s, g, T, U, h, 0.5f);
	nn_rows_pool(u, w, k, T, E);
	for (int t = 0; t < T; t++) {
		double d = 0.5;

		for (int j = 0; j < E; j++)
			CHECK_CLOSE(p[t * E + j], (double)q[j] * k[t * E + j], 1e-6);
		for (int j = 0; j < U; j++) {
			CHECK_CLOSE(a[t * U + j], (double)a0[t * U + j] + h[j] + g[t * U + j], 1e-5);
			d += (double)g[t * U + j] * h[j];
		}
		CHECK_CLOSE(s[t], d, 1e-5);
	}
	for (int j = 0; j < E; j++) {
		double d = 0;

		for (int t = 0; t < T; t++)
			d += (double)w[t] * k[t * E + j];
		CHECK_CLOSE(u[j], d, 1e-5);
	}
	if (level == NN_LEVEL_PORTABLE) {
		memcpy(p_portable, p, sizeof(p));
		memcpy(a_portable, a, sizeof(a));
	}
	CHECK(memcmp(p, p_portable, sizeof(p)) == 0);
	CHECK(memcmp(a, a_portable, sizeof(a)) == 0);
}

static void
test_rows_ops_every_level(void)
{
	at_every_level(rows_ops);
}

void
suite_nn(void)
{
	RUN(test_levels);
	RUN(test_linear_small_products_match_reference);
	RUN(test_linear_large_products_match_reference);
	RUN(test_linear_strided_views);
	RUN(test_linear_blocked_shapes);
	RUN(test_linear_prepacked_bits);
	RUN(test_linear_avx512_bits);
	RUN(test_rows_ops_every_level);
	RUN(test_all_finite_every_level);
	RUN(test_dot);
	RUN(test_sigmoid_extremes);
	RUN(test_softmax_extremes);
	RUN(test_batchnorm_plain_and_affine);
	RUN(test_simple_activations_by_hand);
	RUN(test_prelu_scalar_and_per_channel);
	RUN(test_dice_variants_by_hand);
	RUN(test_sigmoid_kernels_every_level);
	RUN(test_folded_bn_and_dice_bits);
	RUN(test_layer_composes_linear_bn_activation);
	RUN(test_layer_epilogues_every_level);
}
