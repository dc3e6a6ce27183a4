/*
 * config_internal.h - shared by config.c (the model as a whole) and config_layers.c (layers,
 * activations, batch norms, and the typed readers of config keys and tensors).
 *
 * Every reader names the key path ("tower.layers[1].activation.slope") or tensor at fault, so a
 * user fixing an exporter sees exactly which entry to change.
 */
#ifndef DIN_CONFIG_INTERNAL_H
#define DIN_CONFIG_INTERNAL_H

#include "format.h"
#include "json.h"

#define CFG_MAX_FIELDS 64
#define CFG_MAX_LAYERS 32
#define CFG_MAX_UNITS 65536
#define CFG_MAX_INPUTS 64
#define CFG_PATH 192

#define TRY(x)                                                                                     \
	do {                                                                                           \
		DinStatus try_ = (x);                                                                      \
		if (try_ != DIN_OK)                                                                        \
			return try_;                                                                           \
	} while (0)

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
	float *packed; /* config_pack.c: weights in the AVX2 kernel's layout */
} ModelOwned;

typedef struct Cfg {
	DinError *err;
	const DinTensor *tensors;
	int n_tensors;
	const DinTensor **by_name; /* sorted by name, for binary search */
	unsigned char *used;       /* [n_tensors]: bound by the config */
} Cfg;

DinStatus cfg_fail(Cfg *c, DinStatus code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* printf into buf[CFG_PATH]. */
const char *cfg_path(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "prefix.suffix" (a tensor name) into buf[CFG_PATH]. */
const char *cfg_name(char *buf, const char *prefix, const char *suffix);

/* "path.key", or "key" at the root. */
const char *cfg_join(char *buf, const char *path, const char *key);

/* obj must be an object whose keys are all in allowed (NULL-terminated). */
DinStatus cfg_object(Cfg *c, const JsonValue *obj, const char *path, const char *const *allowed);

/* Integer key in [lo, hi]; absent: dflt, or an error when required. Above hi is DIN_ELIMIT when
 * hi_is_limit (a din limit, not a format rule). */
DinStatus cfg_int(Cfg *c, const JsonValue *obj, const char *path, const char *key, int required,
                  int64_t dflt, int64_t lo, int64_t hi, int hi_is_limit, int64_t *out);
DinStatus cfg_number(Cfg *c, const JsonValue *obj, const char *path, const char *key, double dflt,
                     double lo, double *out);
DinStatus cfg_bool(Cfg *c, const JsonValue *obj, const char *path, const char *key, int dflt,
                   int *out);
/* String key that must be one of names (NULL-terminated); *out is its index. dflt < 0: required. */
DinStatus cfg_enum(Cfg *c, const JsonValue *obj, const char *path, const char *key,
                   const char *const *names, int dflt, int *out);

/* The tensor of this name (marked used), or NULL. */
const DinTensor *cfg_find(Cfg *c, const char *name);
/* A required tensor of exactly this dtype and shape. */
DinStatus cfg_need(Cfg *c, const char *name, DinDtype dtype, int ndim, int64_t d0, int64_t d1,
                   const DinTensor **out);
/* The same for an optional tensor: *out NULL when absent. */
DinStatus cfg_maybe(Cfg *c, const char *name, DinDtype dtype, int ndim, int64_t d0, int64_t d1,
                    const DinTensor **out);

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

/* The dien blocks (config_dien.c): sequence, attention, evolution. */
DinStatus cfg_dien(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root);

/* The dsin blocks (config_dsin.c): sessions, extractor, interacting and the two units. */
DinStatus cfg_dsin(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root);
/* Tower input session_interest / session_interacting (or a din input a dsin model lacks). */
DinStatus cfg_dsin_input(Cfg *c, const DinModel *m, const char *name, int i, DinTowerInput *in);
void cfg_dsin_free(struct DinDsin *d);

/* The bst block (config_bst.c): transformer, and attention for the attention read-out. */
DinStatus cfg_bst(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root);

/* Pack every dense weight of a built model once (config_pack.c); a no-op without AVX2. */
DinStatus cfg_pack_model(DinModel *m, ModelOwned *own, DinError *err);

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
