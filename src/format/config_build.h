/*
 * config_build.h - the parts of din_model_build (config.c) that live in other files: the blocks
 * of each architecture (config_dien.c, config_dsin.c, config_bst.c) and the packing of the
 * weights (config_pack.c), and ModelOwned, where they leave what they allocate.
 */
#ifndef DIN_CONFIG_BUILD_H
#define DIN_CONFIG_BUILD_H

#include "config_read.h"

/* What din_model_free releases (DinModel.owned). */
typedef struct ModelOwned {
	DinField *fields;
	int n_fields;
	int64_t *items_slots;
	int *context;
	int *context_offset;
	DinLayer *att_layers;
	DinAttUnit *att_units; /* [att_n_units], each owning its layers */
	int att_n_units;
	DinLayer *tower;
	DinTowerInput *inputs;
	struct DinDien *dien;
	struct DinDsin *dsin;
	struct DinBst *bst;
	float *packed; /* config_pack.c: prepacked weights, folded coefficients */
} ModelOwned;

/* The dien blocks (config_dien.c): sequence, attention, evolution. */
DinStatus cfg_dien(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root);

/* The dsin blocks (config_dsin.c): sessions, extractor, interacting and the two units. */
DinStatus cfg_dsin(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root);
/* Tower input session_interest / session_interacting (or a din input a dsin model lacks). */
DinStatus cfg_dsin_input(Cfg *c, const DinModel *m, const char *name, int i, DinTowerInput *in);
void cfg_dsin_free(struct DinDsin *d);

/* The bst block (config_bst.c): transformer, and attention for the attention read-out. */
DinStatus cfg_bst(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root);

/* Prepare every dense layer of a built model for the kernels once (config_pack.c). */
DinStatus cfg_pack_model(DinModel *m, ModelOwned *own, DinError *err);

#endif
