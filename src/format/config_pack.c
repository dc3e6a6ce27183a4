/*
 * config_pack.c - every dense layer of a built model made ready for the kernels once
 * (src/nn/prepack.h): this file knows where a model keeps its layers, prepack.c what the
 * kernels want of each. Nothing is packed at the portable kernel level.
 */
#include "config_build.h"

#include "../models/bst.h"
#include "../models/dien.h"
#include "../models/dsin.h"
#include "../nn/prepack.h"

#include <stdlib.h>

static void
pack_layers(NnArena *a, DinLayer *l, int n)
{
	for (int i = 0; i < n; i++)
		nn_prepack_layer(a, &l[i]);
}

/*
 * A DIN unit's first layer regrouped (model.h DinAttUnit q/k/p; din over behaviours of width E
 * or its slots' W, dien over states of width H): a float sum of two weights differs from the
 * two products summed only in rounding, and every candidate, alone or in a batch, sees the
 * same regrouped weights.
 */
static void
combine_first_layer(NnArena *a, DinAttUnit *u)
{
	const DinLayer *l0 = &u->layers[0];
	int E = l0->in / 4, U = l0->out, ld = 4 * E;
	float *wq = arena_take(a, (size_t)U * E), *wk = arena_take(a, (size_t)U * E);
	float *wp = arena_take(a, (size_t)U * E);
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
	/* the packed forms read the combined weights, so the counting pass packs nothing here */
	if (wq != NULL) {
		nn_prepack_layer(a, &u->q);
		nn_prepack_layer(a, &u->k);
		nn_prepack_layer(a, &u->p);
	} else
		for (int i = 0; i < 3; i++)
			arena_take(a, nn_packed_floats(E, U));
}

/* split: the unit runs through din_unit.c, which reads the regrouped first layer. */
static void
pack_unit(NnArena *a, DinAttUnit *u, int split)
{
	if (split && u->n_layers > 0 && u->layers[0].in % 4 == 0) {
		combine_first_layer(a, u);
		nn_prepack_fold(a, &u->layers[0]); /* its product runs through q, k, p */
		pack_layers(a, u->layers + 1, u->n_layers - 1);
	} else if (u->layers != NULL)
		pack_layers(a, u->layers, u->n_layers);
}

static void
pack_model(NnArena *a, DinModel *m)
{
	int split =
	    m->arch == DIN_ARCH_DIN || (m->dien != NULL && m->dien->score == DIN_DIEN_SCORE_UNIT);

	pack_unit(a, &m->att, split);
	for (int i = 0; i < m->att_n_units; i++)
		pack_unit(a, &m->att_units[i], split);
	nn_prepack_batchnorm(a, &m->att_output_bn);
	nn_prepack_batchnorm(a, &m->tower_input_bn);
	nn_prepack_layer(a, &m->att_output);
	if (m->dien != NULL)
		nn_prepack_layer(a, &m->dien->query);
	pack_layers(a, m->tower, m->n_tower);
	if (m->dien != NULL) {
		nn_prepack_gru(a, &m->dien->extractor);
		nn_prepack_gru(a, &m->dien->evolution);
	}
	if (m->bst != NULL)
		for (int b = 0; b < m->bst->n_blocks; b++) {
			nn_prepack_layer(a, &m->bst->blocks[b].ffn1);
			nn_prepack_layer(a, &m->bst->blocks[b].ffn2);
		}
	if (m->dsin != NULL)
		for (int u = 0; u < 2; u++)
			pack_layers(a, m->dsin->unit[u].layers, m->dsin->unit[u].n_layers);
}

DinStatus
cfg_pack_model(DinModel *m, ModelOwned *own, DinError *err)
{
	NnArena a = {0};

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
