/*
 * arena.h - float buffers laid out one after another in one block: a scorer's scratch
 * (src/models) and a model's prepacked weights (prepack.h).
 */
#ifndef DIN_NN_ARENA_H
#define DIN_NN_ARENA_H

#include <stddef.h>

/* Offset of the next n floats from *at, which advances past them. */
static inline size_t
take(size_t *at, size_t n)
{
	size_t off = *at;

	/* 16-float alignment keeps each buffer on its own cache lines */
	*at += (n + 15) & ~(size_t)15;
	return off;
}

/*
 * A block filled in two passes: with base NULL the pass only counts (used); the caller then
 * allocates `used` floats, resets used and runs the same pass again to fill them.
 */
typedef struct NnArena {
	float *base;
	size_t used;
} NnArena;

/* The next n floats of the arena, or NULL in the counting pass. */
static inline float *
arena_take(NnArena *a, size_t n)
{
	size_t off = take(&a->used, n);

	return a->base ? a->base + off : NULL;
}

#endif
