/*
 * sgemm_peak.c - this core's single-precision matrix-multiply speed, the bench's "peak".
 *
 * Serial OpenBLAS sgemm and din's own kernel (the CPU's best level, weights packed once as a
 * model's are) on square products and on the shapes din feeds them; the best is the peak the
 * bench compares din against. Prints "name gflops" lines; then "rowtower_NAME us" lines: one row
 * through the towers of the bench's base and BST models (models.py), which per-row scoring of
 * those models cannot go below.
 */
#include "nn/cpu.h"
#include "nn/linear_strided.h"
#include "nn/nn.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *
randoms(size_t n)
{
	float *x = malloc(n * sizeof(float));

	for (size_t i = 0; i < n; i++)
		x[i] = (float)rand() / RAND_MAX - 0.5f;
	return x;
}

/*
 * GFLOP/s of y[n,out] = x[n,in] W^T by cblas_sgemm (din = 0) or by din's kernel (din = 1), best
 * of several runs.
 */
static double
measure(int din, int n, int in, int out)
{
	float *x = randoms((size_t)n * in), *w = randoms((size_t)out * in);
	float *y = malloc((size_t)n * out * sizeof(float));
	float *packed = malloc((nn_packed_floats(in, out) + 1) * sizeof(float));
	double best = 0, flops = 2.0 * n * in * out;
	int reps = (int)(2e8 / flops) + 1;

	if (din)
		nn_pack_weight(w, in, in, out, packed);
	for (int trial = 0; trial < 5; trial++) {
		double t0 = now(), dt;

		for (int r = 0; r < reps; r++) {
			if (din)
				nn_linear_prepacked(x, in, n, in, w, in, packed, out, NULL, y);
			else
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in,
				            0.0f, y, out);
		}
		dt = now() - t0;
		if (flops * reps / dt / 1e9 > best)
			best = flops * reps / dt / 1e9;
	}
	free(x);
	free(w);
	free(y);
	free(packed);
	return best;
}

/*
 * Microseconds of one row through dense layers dims[0] -> dims[1] -> ..., packed as a model's
 * are: a per-row call streams all their weights through the core and reuses none.
 */
static double
row_tower_us(const int *dims, int layers)
{
	float *w[4], *packed[4], *a = randoms(2048), *b = randoms(2048);
	double best = 1e9;

	for (int l = 0; l < layers; l++) {
		size_t floats = nn_packed_floats(dims[l], dims[l + 1]); /* 0: this level packs nothing */

		w[l] = randoms((size_t)dims[l] * dims[l + 1]);
		packed[l] = floats ? malloc(floats * sizeof(float)) : NULL;
		if (packed[l])
			nn_pack_weight(w[l], dims[l], dims[l], dims[l + 1], packed[l]);
	}
	for (int trial = 0; trial < 5; trial++) {
		double t0 = now(), dt;

		for (int r = 0; r < 2000; r++)
			for (int l = 0; l < layers; l++)
				nn_linear_prepacked(l % 2 ? b : a, dims[l], 1, dims[l], w[l], dims[l], packed[l],
				                    dims[l + 1], NULL, l % 2 ? a : b);
		dt = (now() - t0) / 2000 * 1e6;
		best = dt < best ? dt : best;
	}
	for (int l = 0; l < layers; l++) {
		free(w[l]);
		free(packed[l]);
	}
	free(a);
	free(b);
	return best;
}

int
main(void)
{
	static const int shapes[][3] = {
	    {1024, 1024, 1024}, {2048, 36, 80}, {1024, 80, 40}, {1024, 162, 200}, {512, 256, 256}};
	double best = 0;

	printf("openblas_core %s\n", openblas_get_corename());
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		int n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
		double g = measure(0, n, in, out);

		printf("sgemm_%dx%dx%d %.2f\n", n, in, out, g);
		best = g > best ? g : best;
		if (nn_level() >= NN_LEVEL_AVX2) {
			g = measure(1, n, in, out);
			printf("din_%dx%dx%d %.2f\n", n, in, out, g);
			best = g > best ? g : best;
		}
	}
	printf("peak %.2f\n", best);
	printf("rowtower_base %.2f\n", row_tower_us((const int[]){162, 200, 80}, 2));
	printf("rowtower_bst %.2f\n", row_tower_us((const int[]){82, 1024, 512, 256}, 3));
	return 0;
}
