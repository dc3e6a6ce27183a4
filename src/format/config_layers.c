/*
 * config_layers.c - the layer vocabulary shared by every block (dense layers, batch norm,
 * activations, attention units; docs/FORMAT.md "Layers and activations").
 */
#include "config_layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Required F32 [n] tensor prefix.suffix. */
static DinStatus
need_vector(Cfg *c, const char *prefix, const char *suffix, int n, const float **out)
{
	char name[CFG_PATH];
	const DinTensor *t;

	cfg_name(name, prefix, suffix);
	TRY(cfg_need(c, name, DIN_F32, 1, n, 0, &t));
	*out = t->data;
	return DIN_OK;
}

/* Optional pair prefix.w / prefix.b of F32 [n]: both or neither. */
static DinStatus
maybe_affine(Cfg *c, const char *prefix, const char *w, const char *b, int n, const float **wout,
             const float **bout)
{
	char wname[CFG_PATH], bname[CFG_PATH];
	const DinTensor *wt, *bt;

	cfg_name(wname, prefix, w);
	cfg_name(bname, prefix, b);
	TRY(cfg_maybe(c, wname, DIN_F32, 1, n, 0, &wt));
	TRY(cfg_maybe(c, bname, DIN_F32, 1, n, 0, &bt));
	if ((wt == NULL) != (bt == NULL))
		return cfg_fail(c, DIN_ECORRUPT, "tensor %s needs tensor %s too", wt ? wname : bname,
		                wt ? bname : wname);
	*wout = wt ? wt->data : NULL;
	*bout = bt ? bt->data : NULL;
	return DIN_OK;
}

/*
 * A running variance must be >= 0 and var + eps > 0 (in float, as scoring adds them): else
 * sqrt gives a NaN or the division an Inf, and every score turns into the same constant or
 * NaN, which no single input would reveal.
 */
static DinStatus
check_variance(Cfg *c, const char *prefix, const float *var, int n, float eps)
{
	char name[CFG_PATH];

	cfg_name(name, prefix, "running_var");
	for (int i = 0; i < n; i++) {
		if (!(var[i] >= 0.0f))
			return cfg_fail(c, DIN_ECORRUPT, "tensor %s holds the negative variance %g at %d", name,
			                (double)var[i], i);
		if (!(var[i] + eps > 0.0f))
			return cfg_fail(c, DIN_ECORRUPT,
			                "tensor %s holds variance %g at %d, and with eps %g it is not positive",
			                name, (double)var[i], i, (double)eps);
	}
	return DIN_OK;
}

DinStatus
cfg_positive_eps(Cfg *c, const JsonValue *obj, const char *path, double dflt, float *eps)
{
	double x;
	char name[CFG_PATH];

	TRY(cfg_number(c, obj, path, "eps", dflt, 0.0, &x));
	*eps = (float)x;
	if (!(*eps > 0.0f))
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key %s is %.17g: it must be positive in single precision (the "
		                "variance it is added to can be 0)",
		                cfg_join(name, path, "eps"), x);
	return DIN_OK;
}

DinStatus
cfg_batchnorm(Cfg *c, const JsonValue *bn, const char *path, const char *prefix, int n, DinBN *out)
{
	static const char *const keys[] = {"eps", NULL};
	double eps;

	memset(out, 0, sizeof(*out));
	if (bn == NULL || bn->type == JSON_NULL)
		return DIN_OK;
	TRY(cfg_object(c, bn, path, keys));
	TRY(cfg_number(c, bn, path, "eps", 1e-5, 0.0, &eps));
	out->n = n;
	out->eps = (float)eps;
	TRY(need_vector(c, prefix, "running_mean", n, &out->mean));
	TRY(need_vector(c, prefix, "running_var", n, &out->var));
	TRY(check_variance(c, prefix, out->var, n, out->eps));
	return maybe_affine(c, prefix, "weight", "bias", n, &out->weight, &out->bias);
}

/* alpha of prelu/dice: [1] (scalar), [U] or [U, 1] (DeepCTR-Torch's Dice with dim 3). */
static DinStatus
need_alpha(Cfg *c, const char *prefix, int units, DinAct *act)
{
	char name[CFG_PATH], shape[96];
	const DinTensor *t;

	cfg_name(name, prefix, "alpha");
	t = cfg_find(c, name);
	if (t == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "missing tensor %s", name);
	if (t->dtype != DIN_F32)
		return cfg_fail(c, DIN_ECORRUPT, "tensor %s has dtype %s, expected F32", name,
		                din_dtype_name(t->dtype));
	if (t->ndim == 1 && t->shape[0] == 1)
		act->alpha_n = 1;
	else if ((t->ndim == 1 && t->shape[0] == units) ||
	         (t->ndim == 2 && t->shape[0] == units && t->shape[1] == 1))
		act->alpha_n = units;
	else {
		cfg_shape_text(shape, sizeof(shape), t->ndim, t->shape);
		return cfg_fail(c, DIN_ECORRUPT, "tensor %s has shape %s, expected [1], [%d] or [%d, 1]",
		                name, shape, units, units);
	}
	act->alpha = t->data;
	return DIN_OK;
}

static const char *const act_names[] = {"linear", "relu",         "sigmoid", "tanh", "leaky_relu",
                                        "gelu",   "hard_sigmoid", "prelu",   "dice", NULL};

/* An activation object at path, tensors prefix.* (prefix = "B.i.act"). */
static DinStatus
cfg_activation(Cfg *c, const JsonValue *v, const char *path, const char *prefix, int units,
               DinAct *act)
{
	static const char *const plain[] = {"type", NULL};
	static const char *const leaky[] = {"type", "slope", NULL};
	static const char *const gelu[] = {"type", "approximate", NULL};
	static const char *const hard[] = {"type", "slope", "offset", NULL};
	static const char *const dice[] = {"type", "eps", "stats", "affine", "beta", NULL};
	static const char *const approx[] = {"none", "tanh", NULL};
	static const char *const stats[] = {"running", "sample", NULL};
	int kind, flag;
	double x;

	memset(act, 0, sizeof(*act));
	if (v->type != JSON_OBJECT)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s must be an object, not %s", path,
		                json_type_name(v->type));
	TRY(cfg_enum(c, v, path, "type", act_names, CFG_REQUIRED, &kind));
	act->kind = (DinActKind)kind;
	act->units = units;
	switch (act->kind) {
	case DIN_ACT_LEAKY_RELU:
		TRY(cfg_object(c, v, path, leaky));
		TRY(cfg_number(c, v, path, "slope", 0.01, -INFINITY, &x));
		act->slope = (float)x;
		return DIN_OK;
	case DIN_ACT_GELU:
		TRY(cfg_object(c, v, path, gelu));
		return cfg_enum(c, v, path, "approximate", approx, 0, &act->gelu_tanh);
	case DIN_ACT_HARD_SIGMOID:
		TRY(cfg_object(c, v, path, hard));
		TRY(cfg_number(c, v, path, "slope", 0.2, -INFINITY, &x));
		act->slope = (float)x;
		TRY(cfg_number(c, v, path, "offset", 0.5, -INFINITY, &x));
		act->offset = (float)x;
		return DIN_OK;
	case DIN_ACT_PRELU:
		TRY(cfg_object(c, v, path, plain));
		return need_alpha(c, prefix, units, act);
	case DIN_ACT_DICE:
		TRY(cfg_object(c, v, path, dice));
		TRY(cfg_enum(c, v, path, "stats", stats, 0, &act->dice_sample));
		if (act->dice_sample) /* a row of equal units has variance 0 */
			TRY(cfg_positive_eps(c, v, path, 1e-8, &act->eps));
		else {
			TRY(cfg_number(c, v, path, "eps", 1e-8, 0.0, &x));
			act->eps = (float)x;
		}
		TRY(need_alpha(c, prefix, units, act));
		if (!act->dice_sample) {
			TRY(need_vector(c, prefix, "running_mean", units, &act->mean));
			TRY(need_vector(c, prefix, "running_var", units, &act->var));
			TRY(check_variance(c, prefix, act->var, units, act->eps));
		}
		TRY(cfg_bool(c, v, path, "affine", 0, &flag));
		if (flag) {
			TRY(need_vector(c, prefix, "weight", units, &act->weight));
			TRY(need_vector(c, prefix, "bias", units, &act->bias));
		}
		TRY(cfg_bool(c, v, path, "beta", 0, &flag));
		if (flag)
			TRY(need_vector(c, prefix, "beta", units, &act->beta));
		return DIN_OK;
	default:
		return cfg_object(c, v, path, plain);
	}
}

/* One layer {"units", "bias", "batch_norm", "activation"} with tensors prefix.* */
DinStatus
cfg_layer(Cfg *c, const JsonValue *v, const char *path, const char *prefix, int in, DinLayer *layer)
{
	static const char *const keys[] = {"units", "bias", "batch_norm", "activation", NULL};
	char sub[CFG_PATH], tname[CFG_PATH];
	const DinTensor *t;
	const JsonValue *act;
	int64_t units;
	int bias;

	TRY(cfg_object(c, v, path, keys));
	TRY(cfg_int(c, v, path, "units", (IntRule){.required = 1, .min = 1, .limit = CFG_MAX_UNITS},
	            &units));
	TRY(cfg_bool(c, v, path, "bias", 1, &bias));
	layer->in = in;
	layer->out = (int)units;
	cfg_name(tname, prefix, "weight");
	TRY(cfg_need(c, tname, DIN_F32, 2, units, in, &t));
	layer->weight = t->data;
	if (bias) {
		cfg_name(tname, prefix, "bias");
		TRY(cfg_need(c, tname, DIN_F32, 1, units, 0, &t));
		layer->bias = t->data;
	}
	cfg_name(tname, prefix, "bn");
	TRY(cfg_batchnorm(c, json_get(v, "batch_norm"), cfg_join(sub, path, "batch_norm"), tname,
	                  (int)units, &layer->bn));
	act = json_get(v, "activation");
	if (act == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s is missing",
		                cfg_join(sub, path, "activation"));
	cfg_name(tname, prefix, "act");
	return cfg_activation(c, act, cfg_join(sub, path, "activation"), tname, (int)units,
	                      &layer->act);
}

DinStatus
cfg_layers(Cfg *c, const JsonValue *arr, const char *path, const char *prefix, int in,
           int min_layers, DinLayer **layers, int *n_layers)
{
	char sub[CFG_PATH], tprefix[CFG_PATH];

	*n_layers = 0;
	if (arr == NULL) {
		if (min_layers > 0)
			return cfg_fail(c, DIN_ECORRUPT, "config key %s is missing", path);
		return DIN_OK;
	}
	if (arr->type != JSON_ARRAY)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s must be an array", path);
	if ((int64_t)arr->n < min_layers)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s needs at least %d layer", path, min_layers);
	if (arr->n > CFG_MAX_LAYERS)
		return cfg_fail(c, DIN_ELIMIT, "config key %s has %u layers, at most %d allowed", path,
		                arr->n, CFG_MAX_LAYERS);
	*layers = calloc((size_t)arr->n + 1, sizeof(DinLayer));
	if (*layers == NULL)
		return cfg_fail(c, DIN_ENOMEM, "out of memory binding %s", path);
	for (uint32_t i = 0; i < arr->n; i++) {
		cfg_path(sub, "%s[%u]", path, i);
		cfg_path(tprefix, "%s.%u", prefix, i);
		TRY(cfg_layer(c, &arr->u.items[i], sub, tprefix, in, &(*layers)[i]));
		in = (*layers)[i].out;
		*n_layers = (int)i + 1;
	}
	return DIN_OK;
}

DinStatus
cfg_attention_unit(Cfg *c, const JsonValue *att, const char *prefix, int in, DinAttUnit *u)
{
	char tname[CFG_PATH], sub[CFG_PATH];
	const DinTensor *t;
	int out_bias;

	TRY(cfg_layers(c, json_get(att, "layers"), "attention.layers", cfg_name(sub, prefix, "mlp"), in,
	               1, &u->layers, &u->n_layers));
	TRY(cfg_need(c, cfg_name(tname, prefix, "out.weight"), DIN_F32, 2, 1,
	             u->layers[u->n_layers - 1].out, &t));
	u->out_weight = t->data;
	TRY(cfg_bool(c, att, "attention", "out_bias", 1, &out_bias));
	u->out_bias = 0.0f;
	if (out_bias) {
		TRY(cfg_need(c, cfg_name(tname, prefix, "out.bias"), DIN_F32, 1, 1, 0, &t));
		memcpy(&u->out_bias, t->data, sizeof(float));
	}
	return DIN_OK;
}

DinStatus
cfg_attention_mlp(Cfg *c, const JsonValue *att, int in, DinModel *m, ModelOwned *own)
{
	DinStatus s = cfg_attention_unit(c, att, "attention", in, &m->att);

	own->att_layers = m->att.layers; /* bound or not, din_model_free releases them */
	return s;
}

DinStatus
cfg_padding_row(Cfg *c, const JsonValue *obj, const char *path, const DinModel *m, int64_t *row)
{
	char sub[CFG_PATH];

	TRY(cfg_int(c, obj, path, "padding_row", (IntRule){.min = 0, .max = DIN_MAX_DIM}, row));
	for (int k = 0; k < m->n_slots; k++) {
		const DinField *f = &m->fields[m->behaviour[k]];

		if (*row >= f->rows)
			return cfg_fail(
			    c, DIN_ECORRUPT, "config key %s is %lld but behaviour field %s has %lld rows",
			    cfg_join(sub, path, "padding_row"), (long long)*row, f->name, (long long)f->rows);
	}
	return DIN_OK;
}
