/*
 * test_util.c - random inputs shared by the test files (unit.h): each file keeps its own
 * generator state, so its inputs do not depend on which other tests ran first.
 */
#include "unit.h"

/* xorshift64*: uniform in [-1, 1), the same sequence on every run */
float
unit_rand(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return (float)((double)((*state * 0x2545f4914f6cdd1dULL) >> 11) / 4503599627370496.0 - 1.0);
}

void
unit_fill(float *x, size_t n, uint64_t *state)
{
	for (size_t i = 0; i < n; i++)
		x[i] = unit_rand(state);
}
