/*
 * prepack.h - a model's dense layers made ready for the kernels once, when the model is built:
 * weights in the linear kernel's packed layout (nn_pack_weight) and batch norms and Dice gates
 * folded into per-unit coefficients. Every call lays its floats out in an arena (arena.h): the
 * counting pass sets nothing, the filling pass points the layer at them.
 */
#ifndef DIN_NN_PREPACK_H
#define DIN_NN_PREPACK_H

#include "arena.h"
#include "gru.h"
#include "nn.h"

/* W [out, in] (row stride ldw) packed, or NULL: no W, the level packs nothing, counting pass. */
const float *nn_prepack_weight(NnArena *a, const float *w, int ldw, int in, int out);

/* bn->scale and bn->shift (nn_batchnorm_fold); nothing for an absent batch norm. */
void nn_prepack_batchnorm(NnArena *a, DinBN *bn);

/* The layer's batch norm and Dice gates (nn_dice_fold), which depend on the weights only. */
void nn_prepack_fold(NnArena *a, DinLayer *l);

/* nn_prepack_fold and the layer's packed weight. */
void nn_prepack_layer(NnArena *a, DinLayer *l);

/*
 * The GRU's recurrent weights packed (pytorch also W_ih): what gru_input and gru_step read
 * through nn_linear_prepacked.
 */
void nn_prepack_gru(NnArena *a, DinGru *g);

#endif
