/*
 * rowops.h - the elementwise steps of the DIN attention unit over a candidate's behaviours.
 *
 * PostgreSQL builds extensions with plain -O2, where GCC 12 vectorizes almost no loop; these
 * run with AVX2/FMA when the CPU has it (portable loops otherwise), once per candidate over all
 * its T behaviours so the call costs nothing next to the work.
 */
#ifndef DIN_ROWOPS_H
#define DIN_ROWOPS_H

#include <stddef.h>

/* p[t, j] = q[j] * k[t, j] for t < T, j < E (rows of p and k are E wide). */
void nn_rows_mul(float *p, const float *q, const float *k, int T, int E);

/* a[t, j] += h[j] + g[t, j] for t < T, j < U (rows U wide). */
void nn_rows_add2(float *a, const float *h, const float *g, int T, int U);

/* s[i] = dot(x[i, :], v) + bias for i < n (rows of x are width wide). */
void nn_rows_dot(float *s, const float *x, int n, int width, const float *v, float bias);

/* u[j] = sum over t < T of w[t] k[t, j], j < E. */
void nn_rows_pool(float *u, const float *w, const float *k, int T, int E);

/*
 * 1 when x[0..n) holds no NaN or Inf. Cheap enough to run on every vector a score depends on:
 * an activation that saturates (sigmoid, clamp, ReLU's max) can turn an overflow into a
 * plausible probability.
 */
int nn_all_finite(const float *x, size_t n);

#endif
