/*
 * config_pack.c - weights rearranged once per model for the AVX2 kernels, and the batch norm
 * and Dice coefficients folded from them.
 *
 * The blocked kernel (src/nn/linear_blocked.c) reads W transposed in k-blocks. Packing it per
 * call cost a one-candidate din_score more than the product itself (the first tower layer went
 * from 3 to 10 us), so every layer is packed here, when the model is built. The copies live in
 * one allocation owned by the model, per backend: a model in shared memory shares its tensors
 * only, and each backend that binds it adds about the size of its dense weights (the embedding
 * tables, the bulk of a model, are not copied). Without AVX2 nothing is packed.
 */
#include "config_internal.h"

#include "../models/bst.h"
#include "../models/dien.h"
#include "../models/dsin.h"

#include <stdlib.h>
#include <string.h>

/* Pass 1 (arena NULL) counts floats; pass 2 hands them out. */
typedef struct Arena {
	float *base;
	size_t used;
} Arena;

static float *
take(Arena *a, size_t n)
{
	float *p = a->base ? a->base + a->used : NULL;

	a->used += (n + 15) & ~(size_t)15;
	return p;
}

static const float *
pack(Arena *a, const float *w, int ldw, int in, int out)
{
	size_t n = w ? nn_packed_floats(in, out) : 0;
	float *p;

	if (n == 0)
		return NULL;
	p = take(a, n);
	if (p)
		nn_pack_weight(w, ldw, in, out, p);
	return p;
}

static void
fold_bn(Arena *a, DinBN *bn)
{
	float *scale, *shift;

	if (bn->n <= 0)
		return;
	scale = take(a, bn->n);
	shift = take(a, bn->n);
	if (scale == NULL)
		return;
	nn_batchnorm_fold(bn, scale, shift);
	bn->scale = scale;
	bn->shift = shift;
}

/* The layer's batch norm and Dice coefficients, which depend on the weights only. */
static void
fold_layer(Arena *a, DinLayer *l)
{
	float *ga, *gb, *al;

	fold_bn(a, &l->bn);
	if (!nn_dice_foldable(&l->act) || l->out <= 0)
		return;
	ga = take(a, l->out);
	gb = take(a, l->out);
	al = take(a, l->out);
	if (ga == NULL)
		return;
	nn_dice_fold(&l->act, l->out, ga, gb, al);
	l->act.gate_a = ga;
	l->act.gate_b = gb;
	l->act.gate_alpha = al;
}

static void
pack_layer(Arena *a, DinLayer *l)
{
	fold_layer(a, l);
	if (l->out > 0)
		l->packed = pack(a, l->weight, l->in, l->in, l->out);
}

static void
pack_layers(Arena *a, DinLayer *l, int n)
{
	for (int i = 0; i < n; i++)
		pack_layer(a, &l[i]);
}

static void
pack_gru(Arena *a, DinGru *g)
{
	int H = g->hidden, ld = g->in + H;

	if (H <= 0)
		return;
	if (g->conv == DIN_GRU_PYTORCH) {
		g->ih_packed = pack(a, g->w_ih, g->in, g->in, 3 * H);
		g->hh_packed = pack(a, g->w_hh, H, H, 3 * H);
	} else {
		g->hh_packed = g->gate_w ? pack(a, g->gate_w + g->in, ld, H, 2 * H) : NULL;
		g->cand_packed = g->cand_w ? pack(a, g->cand_w + g->in, ld, H, H) : NULL;
	}
}

/*
 * A DIN unit's first layer regrouped (model.h DinAttUnit q/k/p; din over behaviours of width E
 * or its slots' W, dien over states of width H): a float sum of two weights differs from the
 * two products summed only in rounding, and every candidate, alone or in a batch, sees the
 * same regrouped weights.
 */
static void
combine_first_layer(Arena *a, DinAttUnit *u)
{
	const DinLayer *l0 = &u->layers[0];
	int E = l0->in / 4, U = l0->out, ld = 4 * E;
	float *wq = take(a, (size_t)U * E), *wk = take(a, (size_t)U * E), *wp = take(a, (size_t)U * E);
	DinLayer base = {.in = E, .out = U};

	u->q = u->k = u->p = base;
	u->q.bias = l0->bias;
	if (wq != NULL)
		for (int o = 0; o < U; o++) {
			const float *w = l0->weight + (size_t)o * ld;

			for (int j = 0; j < E; j++) {
				wq[(size_t)o * E + j] = w[j] + w[2 * E + j];
				wk[(size_t)o * E + j] = w[E + j] - w[2 * E + j];
				wp[(size_t)o * E + j] = w[3 * E + j];
			}
		}
	u->q.weight = wq;
	u->k.weight = wk;
	u->p.weight = wp;
	/* the packed forms read the combined weights, so pass 1 packs nothing here */
	if (wq != NULL) {
		pack_layer(a, &u->q);
		pack_layer(a, &u->k);
		pack_layer(a, &u->p);
	} else
		for (int i = 0; i < 3; i++)
			take(a, nn_packed_floats(E, U));
}

/* split: the unit runs through din_unit.c, which reads the regrouped first layer. */
static void
pack_unit(Arena *a, DinAttUnit *u, int split)
{
	if (split && u->n_layers > 0 && u->layers[0].in % 4 == 0) {
		combine_first_layer(a, u);
		fold_layer(a, &u->layers[0]); /* its product runs through q, k, p */
		pack_layers(a, u->layers + 1, u->n_layers - 1);
	} else if (u->layers != NULL)
		pack_layers(a, u->layers, u->n_layers);
}

static void
pack_model(Arena *a, DinModel *m)
{
	int split =
	    m->arch == DIN_ARCH_DIN || (m->dien != NULL && m->dien->score == DIN_DIEN_SCORE_UNIT);

	pack_unit(a, &m->att, split);
	for (int i = 0; i < m->att_n_units; i++)
		pack_unit(a, &m->att_units[i], split);
	fold_bn(a, &m->att_output_bn);
	fold_bn(a, &m->tower_input_bn);
	pack_layer(a, &m->att_output);
	if (m->dien != NULL)
		pack_layer(a, &m->dien->query);
	pack_layers(a, m->tower, m->n_tower);
	if (m->dien != NULL) {
		pack_gru(a, &m->dien->extractor);
		pack_gru(a, &m->dien->evolution);
	}
	if (m->bst != NULL)
		for (int b = 0; b < m->bst->n_blocks; b++) {
			pack_layer(a, &m->bst->blocks[b].ffn1);
			pack_layer(a, &m->bst->blocks[b].ffn2);
		}
	if (m->dsin != NULL)
		for (int u = 0; u < 2; u++)
			pack_layers(a, m->dsin->unit[u].layers, m->dsin->unit[u].n_layers);
}

DinStatus
cfg_pack_model(DinModel *m, ModelOwned *own, DinError *err)
{
	Arena a = {0};

	pack_model(&a, m);
	if (a.used == 0)
		return DIN_OK;
	own->packed = aligned_alloc(64, ((a.used * sizeof(float)) + 63) & ~(size_t)63);
	if (own->packed == NULL)
		return din_fail(err, DIN_ENOMEM, NULL, "out of memory packing the model's weights");
	a.base = own->packed;
	a.used = 0;
	pack_model(&a, m);
	return DIN_OK;
}
