/*
 * config_layers.h - the layer vocabulary every block shares (docs/FORMAT.md "Layers and
 * activations"): dense layers, batch norms, activations, DIN attention units, the padding row.
 */
#ifndef DIN_CONFIG_LAYERS_H
#define DIN_CONFIG_LAYERS_H

#include "config_build.h"

#define CFG_MAX_LAYERS 32   /* layers of one block */
#define CFG_MAX_UNITS 65536 /* width of a layer or an embedding */

/* Batch norm over n features: bn is JSON null/absent (then out->n = 0) or {"eps": e}. */
DinStatus cfg_batchnorm(Cfg *c, const JsonValue *bn, const char *path, const char *prefix, int n,
                        DinBN *out);

/*
 * Key eps of obj (default dflt) for a normalization whose variance can be 0 (layer norm, Dice's
 * sample statistics): it must be positive as a float.
 */
DinStatus cfg_positive_eps(Cfg *c, const JsonValue *obj, const char *path, double dflt, float *eps);

/* One layer object at path (units, bias, batch_norm, activation), tensors prefix.* */
DinStatus cfg_layer(Cfg *c, const JsonValue *v, const char *path, const char *prefix, int in,
                    DinLayer *layer);

/* A block's layers: arr is a JSON array; first layer input width `in`; tensors prefix.i.* */
DinStatus cfg_layers(Cfg *c, const JsonValue *arr, const char *path, const char *prefix, int in,
                     int min_layers, DinLayer **layers, int *n_layers);

/*
 * The activation unit's MLP of an attention object: layers (first input width `in`),
 * attention.out.weight and the optional attention.out.bias, into m->att_*.
 */
DinStatus cfg_attention_mlp(Cfg *c, const JsonValue *att, int in, DinModel *m, ModelOwned *own);

/* The same for one unit whose tensors are prefix.mlp.i.*, prefix.out.*; u owns its layers. */
DinStatus cfg_attention_unit(Cfg *c, const JsonValue *att, const char *prefix, int in,
                             DinAttUnit *u);

/*
 * Key padding_row of obj (default 0): the row of every behaviour table that a padding slot looks
 * up, below each one's rows.
 */
DinStatus cfg_padding_row(Cfg *c, const JsonValue *obj, const char *path, const DinModel *m,
                          int64_t *row);

#endif
