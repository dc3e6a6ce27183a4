/*
 * prepack.c - weights rearranged once per model for the kernels, and the batch norm and Dice
 * coefficients folded from them (prepack.h).
 *
 * The blocked kernel (linear_blocked.c) reads W transposed in k-blocks. Packing it per call
 * cost a one-candidate din_score more than the product itself (the first tower layer went from
 * 3 to 10 us), so the format layer packs every layer when it builds the model. The copies live
 * in one allocation owned by the model, per backend: a model in shared memory shares its
 * tensors only, and each backend that binds it adds about the size of its dense weights, twice
 * for layers of 256 kB or more, which get a second copy for one-row products (linear_blocked.c;
 * the embedding tables, the bulk of a model, are not copied). At the portable level nothing is
 * packed.
 */
#include "prepack.h"

const float *
nn_prepack_weight(NnArena *a, const float *w, int ldw, int in, int out)
{
	size_t n = w ? nn_packed_floats(in, out) : 0;
	float *p;

	if (n == 0)
		return NULL;
	p = arena_take(a, n);
	if (p)
		nn_pack_weight(w, ldw, in, out, p);
	return p;
}

void
nn_prepack_batchnorm(NnArena *a, DinBN *bn)
{
	float *scale, *shift;

	if (bn->n <= 0)
		return;
	scale = arena_take(a, bn->n);
	shift = arena_take(a, bn->n);
	if (scale == NULL)
		return;
	nn_batchnorm_fold(bn, scale, shift);
	bn->scale = scale;
	bn->shift = shift;
}

void
nn_prepack_fold(NnArena *a, DinLayer *l)
{
	float *ga, *gb, *al;

	nn_prepack_batchnorm(a, &l->bn);
	if (!nn_dice_foldable(&l->act) || l->out <= 0)
		return;
	ga = arena_take(a, l->out);
	gb = arena_take(a, l->out);
	al = arena_take(a, l->out);
	if (ga == NULL)
		return;
	nn_dice_fold(&l->act, l->out, ga, gb, al);
	l->act.gate_a = ga;
	l->act.gate_b = gb;
	l->act.gate_alpha = al;
}

void
nn_prepack_layer(NnArena *a, DinLayer *l)
{
	nn_prepack_fold(a, l);
	if (l->out > 0)
		l->packed = nn_prepack_weight(a, l->weight, l->in, l->in, l->out);
}

void
nn_prepack_gru(NnArena *a, DinGru *g)
{
	int H = g->hidden, ld = g->in + H;

	if (H <= 0)
		return;
	if (g->conv == DIN_GRU_PYTORCH) {
		g->ih_packed = nn_prepack_weight(a, g->w_ih, g->in, g->in, 3 * H);
		g->hh_packed = nn_prepack_weight(a, g->w_hh, H, H, 3 * H);
	} else {
		g->hh_packed = g->gate_w ? nn_prepack_weight(a, g->gate_w + g->in, ld, H, 2 * H) : NULL;
		g->cand_packed = g->cand_w ? nn_prepack_weight(a, g->cand_w + g->in, ld, H, H) : NULL;
	}
}
