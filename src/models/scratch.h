/*
 * scratch.h - laying out buffers in the caller's scratch (din_model_scratch_floats) and in a
 * history state (arch.h), for the pipeline and every architecture. Internal to src/models.
 */
#ifndef DIN_MODELS_SCRATCH_H
#define DIN_MODELS_SCRATCH_H

#include <stddef.h>

static inline int
max_int(int a, int b)
{
	return a > b ? a : b;
}

static inline int
min_int(int a, int b)
{
	return a < b ? a : b;
}

/* Offset of the next n floats from *at, which advances past them. */
static inline size_t
take(size_t *at, size_t n)
{
	size_t off = *at;

	/* 16-float alignment keeps each buffer on its own cache lines */
	*at += (n + 15) & ~(size_t)15;
	return off;
}

#endif
