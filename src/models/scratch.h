/*
 * scratch.h - laying out buffers in the caller's scratch (din_model_scratch_floats) and in a
 * history state (arch.h), for the pipeline and every architecture. Internal to src/models.
 */
#ifndef DIN_MODELS_SCRATCH_H
#define DIN_MODELS_SCRATCH_H

#include "../nn/arena.h" /* take */

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

#endif
