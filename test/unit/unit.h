/*
 * unit.h - a minimal test harness for the pure-C core (no PostgreSQL).
 *
 * Each test file defines functions `void test_xxx(void)` and lists them in its
 * `UNIT_SUITE(name)` registration function called from main.c. A failing check prints the
 * values it compared. The run ends with "N passed, N failed".
 */
#ifndef DIN_UNIT_H
#define DIN_UNIT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int unit_failed_checks;
void unit_run(const char *name, void (*fn)(void));

#define CHECK(cond)                                                                                \
	do {                                                                                           \
		if (!(cond)) {                                                                             \
			unit_failed_checks++;                                                                  \
			fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);             \
		}                                                                                          \
	} while (0)

#define CHECK_INT(a, b)                                                                            \
	do {                                                                                           \
		long long a_ = (long long)(a), b_ = (long long)(b);                                        \
		if (a_ != b_) {                                                                            \
			unit_failed_checks++;                                                                  \
			fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a,  \
			        a_, #b, b_);                                                                   \
		}                                                                                          \
	} while (0)

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_CLOSE(a, b, tol)                                                                     \
	do {                                                                                           \
		double a_ = (double)(a), b_ = (double)(b);                                                 \
		double s_ = fabs(b_) > 1.0 ? fabs(b_) : 1.0;                                               \
		if (!(fabs(a_ - b_) <= (tol)*s_)) {                                                        \
			unit_failed_checks++;                                                                  \
			fprintf(stderr, "  %s:%d: %s = %.9g, expected %s = %.9g (tol %g)\n", __FILE__,         \
			        __LINE__, #a, a_, #b, b_, (double)(tol));                                      \
		}                                                                                          \
	} while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                            \
	do {                                                                                           \
		if (strstr((hay), (needle)) == NULL) {                                                     \
			unit_failed_checks++;                                                                  \
			fprintf(stderr, "  %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,       \
			        (hay), (needle));                                                              \
		}                                                                                          \
	} while (0)

#define RUN(fn) unit_run(#fn, fn)

/* Uniform in [-1, 1) from the caller's generator state (test_util.c); x[0, n) of them. */
float unit_rand(uint64_t *state);
void unit_fill(float *x, size_t n, uint64_t *state);

#endif
