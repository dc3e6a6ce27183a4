/*
 * config_dsin.c - the blocks of architecture dsin (docs/FORMAT.md "architecture dsin"):
 * `sessions`, `extractor`, `interacting`, `session_attention`, `interacting_attention`, and
 * the two tower inputs they feed, bound to their tensors.
 */
#include "config_layers.h"

#include "../models/dsin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static DinStatus
read_sessions(Cfg *c, DinDsin *d, const JsonValue *root)
{
	static const char *const keys[] = {"count", "length", "gap", "min_length", NULL};
	const JsonValue *s = json_get(root, "sessions");
	int64_t k, t, gap, min;

	if (s == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key sessions is missing (architecture dsin)");
	TRY(cfg_object(c, s, "sessions", keys));
	TRY(cfg_int(c, s, "sessions", "count",
	            (IntRule){.required = 1, .min = 1, .limit = DSIN_MAX_SESSIONS}, &k));
	TRY(cfg_int(c, s, "sessions", "length",
	            (IntRule){.required = 1, .min = 1, .limit = DSIN_MAX_SESSION_LEN}, &t));
	/* seconds, as the paper's 30 minutes; at most a year */
	TRY(cfg_int(c, s, "sessions", "gap", (IntRule){.dflt = 1800, .min = 0, .max = 366 * 86400},
	            &gap));
	TRY(cfg_int(c, s, "sessions", "min_length",
	            (IntRule){.dflt = 1, .min = 1, .max = DSIN_MAX_SESSION_LEN}, &min));
	d->rule.count = (int)k;
	d->rule.length = (int)t;
	d->rule.gap = gap * 1000000;
	d->rule.min_length = (int)min;
	return DIN_OK;
}

static DinStatus
need(Cfg *c, const char *name, int64_t d0, int64_t d1, const float **out)
{
	const DinTensor *t;

	TRY(cfg_need(c, name, DIN_F32, d1 ? 2 : 1, d0, d1, &t));
	*out = t->data;
	return DIN_OK;
}

static DinStatus
read_extractor(Cfg *c, DinDsin *d, int E, const JsonValue *root)
{
	static const char *const keys[] = {"heads",        "encoding",          "scale",
	                                   "blinding",     "output_projection", "layer_norm",
	                                   "feed_forward", "pooling",           NULL};
	static const char *const encodings[] = {"positional", "bias", "none", NULL};
	static const char *const scales[] = {"head", "model", NULL};
	static const char *const poolings[] = {"mean_all", "mean_valid", NULL};
	static const char *const ln_keys[] = {"eps", NULL};
	const JsonValue *x = json_get(root, "extractor"), *ln;
	DinSelfAttention *a = &d->sa;
	int64_t heads;
	int enc, scale, proj, ffn, T = d->rule.length, K = d->rule.count;

	if (x == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key extractor is missing (architecture dsin)");
	TRY(cfg_object(c, x, "extractor", keys));
	TRY(cfg_int(c, x, "extractor", "heads", (IntRule){.required = 1, .min = 1, .max = E}, &heads));
	if (E % heads != 0)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key extractor.heads is %lld, which does not divide the behaviour "
		                "width %d",
		                (long long)heads, E);
	TRY(cfg_enum(c, x, "extractor", "encoding", encodings, 0, &enc));
	TRY(cfg_enum(c, x, "extractor", "scale", scales, 0, &scale));
	TRY(cfg_bool(c, x, "extractor", "blinding", 1, &a->blinding));
	TRY(cfg_bool(c, x, "extractor", "output_projection", 0, &proj));
	TRY(cfg_bool(c, x, "extractor", "feed_forward", 1, &ffn));
	TRY(cfg_enum(c, x, "extractor", "pooling", poolings, 0, &d->pool_valid));
	a->E = E;
	a->heads = (int)heads;
	a->T = T;
	a->residual = 1;
	a->scale = 1.0f / sqrtf((float)(scale ? E : E / heads));
	TRY(need(c, "extractor.query.weight", E, E, &a->wq));
	TRY(need(c, "extractor.key.weight", E, E, &a->wk));
	TRY(need(c, "extractor.value.weight", E, E, &a->wv));
	if (proj)
		TRY(need(c, "extractor.output.weight", E, E, &a->wo));
	d->enc = (DinDsinEncoding)enc;
	if (d->enc == DSIN_ENC_POSITIONAL) {
		TRY(need(c, "extractor.position.query", T, E, &a->pos_q));
		TRY(need(c, "extractor.position.key", T, E, &a->pos_k));
	} else if (d->enc == DSIN_ENC_BIAS) {
		TRY(need(c, "extractor.bias.session", K, 0, &d->bias_session));
		TRY(need(c, "extractor.bias.position", T, 0, &d->bias_position));
		TRY(need(c, "extractor.bias.item", E, 0, &d->bias_item));
	}
	if (ffn) {
		a->ffn_units = 4 * E;
		TRY(need(c, "extractor.ffn.0.weight", 4 * E, E, &a->ffn1));
		TRY(need(c, "extractor.ffn.1.weight", E, 4 * E, &a->ffn2));
	}
	ln = json_get(x, "layer_norm");
	if (ln != NULL && ln->type != JSON_NULL) {
		TRY(cfg_object(c, ln, "extractor.layer_norm", ln_keys));
		TRY(cfg_positive_eps(c, ln, "extractor.layer_norm", 1e-9, &a->ln_eps));
		TRY(need(c, "extractor.layer_norm.weight", E, 0, &a->ln_w));
		TRY(need(c, "extractor.layer_norm.bias", E, 0, &a->ln_b));
	}
	return DIN_OK;
}

static DinStatus
read_lstm(Cfg *c, const char *dir, int l, int in, int H, DinLstmGate gate, DinLstm *out)
{
	char name[CFG_PATH];

	out->in = in;
	out->hidden = H;
	out->gate = gate;
	TRY(need(c, cfg_path(name, "interacting.%s.weight_ih_l%d", dir, l), 4 * H, in, &out->w_ih));
	TRY(need(c, cfg_path(name, "interacting.%s.weight_hh_l%d", dir, l), 4 * H, H, &out->w_hh));
	TRY(need(c, cfg_path(name, "interacting.%s.bias_ih_l%d", dir, l), 4 * H, 0, &out->b_ih));
	TRY(need(c, cfg_path(name, "interacting.%s.bias_hh_l%d", dir, l), 4 * H, 0, &out->b_hh));
	return DIN_OK;
}

static DinStatus
read_interacting(Cfg *c, DinDsin *d, int E, const JsonValue *root)
{
	static const char *const keys[] = {"type",  "hidden", "layers", "merge", "recurrent_activation",
	                                   "steps", NULL};
	static const char *const types[] = {"bilstm", "none", NULL};
	static const char *const merges[] = {"ave", "concat", "sum", "mul", "fw", "bw", NULL};
	static const char *const gates[] = {"sigmoid", "hard_sigmoid", NULL};
	static const char *const steps[] = {"all", "valid", NULL};
	const JsonValue *x = json_get(root, "interacting");
	int64_t H, layers;
	int type, merge, gate;

	if (x == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key interacting is missing (architecture dsin)");
	TRY(cfg_object(c, x, "interacting", keys));
	TRY(cfg_enum(c, x, "interacting", "type", types, CFG_REQUIRED, &type));
	if (type == 1) {
		if (x->n > 1)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key interacting has type none, which takes no other key");
		return DIN_OK;
	}
	TRY(cfg_int(c, x, "interacting", "hidden",
	            (IntRule){.dflt = E, .min = 1, .limit = CFG_MAX_UNITS}, &H));
	TRY(cfg_int(c, x, "interacting", "layers",
	            (IntRule){.dflt = 1, .min = 1, .limit = DSIN_MAX_LSTM_LAYERS}, &layers));
	TRY(cfg_enum(c, x, "interacting", "merge", merges, 1, &merge));
	TRY(cfg_enum(c, x, "interacting", "recurrent_activation", gates, CFG_REQUIRED, &gate));
	TRY(cfg_enum(c, x, "interacting", "steps", steps, 0, &d->steps_valid));
	d->has_lstm = 1;
	d->lstm_hidden = (int)H;
	d->lstm_layers = (int)layers;
	d->merge = (DinDsinMerge)merge;
	d->inter_w = d->merge == DSIN_MERGE_CONCAT ? 2 * (int)H : (int)H;
	for (int l = 0; l < layers; l++) {
		TRY(read_lstm(c, "forward", l, l ? (int)H : E, (int)H, (DinLstmGate)gate, &d->fw[l]));
		TRY(read_lstm(c, "backward", l, l ? (int)H : E, (int)H, (DinLstmGate)gate, &d->bw[l]));
	}
	return DIN_OK;
}

static DinStatus
read_unit(Cfg *c, DinDsin *d, const char *block, int key_w, int E, const JsonValue *root,
          DinDsinUnit *u)
{
	static const char *const unit_keys[] = {"type", "layers", "out_bias", "normalization", NULL};
	static const char *const bilinear_keys[] = {"type", "normalization", NULL};
	static const char *const types[] = {"din", "bilinear", NULL};
	static const char *const norms[] = {"none", "softmax", NULL};
	const JsonValue *att = json_get(root, block);
	char path[CFG_PATH], name[CFG_PATH];
	const DinTensor *t;
	int out_bias;

	u->key_w = key_w;
	if (att == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s is missing (architecture dsin)", block);
	if (att->type != JSON_OBJECT)
		return cfg_object(c, att, block, unit_keys);
	TRY(cfg_enum(c, att, block, "type", types, 0, &u->bilinear));
	TRY(cfg_object(c, att, block, u->bilinear ? bilinear_keys : unit_keys));
	TRY(cfg_enum(c, att, block, "normalization", norms, 1, &u->softmax));
	if (u->bilinear)
		return need(c, cfg_name(name, block, "bilinear.weight"), key_w, E, &u->bilinear_w);
	if (key_w != E)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key %s: the sessions are %d wide but the target %d (the din unit "
		                "compares them elementwise; use type bilinear)",
		                block, key_w, E);
	TRY(cfg_layers(c, json_get(att, "layers"), cfg_join(path, block, "layers"),
	               cfg_name(name, block, "mlp"), 4 * E, 1, &u->layers, &u->n_layers));
	TRY(need(c, cfg_name(name, block, "out.weight"), 1, u->layers[u->n_layers - 1].out, &u->out_w));
	TRY(cfg_bool(c, att, block, "out_bias", 1, &out_bias));
	u->out_b = 0.0f;
	if (out_bias) {
		TRY(cfg_need(c, cfg_name(name, block, "out.bias"), DIN_F32, 1, 1, 0, &t));
		memcpy(&u->out_b, t->data, sizeof(float));
	}
	(void)d;
	return DIN_OK;
}

DinStatus
cfg_dsin(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	DinDsin *d = calloc(1, sizeof(DinDsin));

	if (d == NULL)
		return cfg_fail(c, DIN_ENOMEM, "out of memory building a model");
	own->dsin = d;
	m->dsin = d;
	TRY(read_sessions(c, d, root));
	TRY(read_extractor(c, d, m->E, root));
	TRY(read_interacting(c, d, m->E, root));
	TRY(read_unit(c, d, "session_attention", m->E, m->E, root, &d->unit[0]));
	if (d->has_lstm)
		TRY(read_unit(c, d, "interacting_attention", d->inter_w, m->E, root, &d->unit[1]));
	else if (json_get(root, "interacting_attention") != NULL)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key interacting_attention needs interacting type bilstm");
	m->att_width = m->E + d->inter_w;
	return DIN_OK;
}

DinStatus
cfg_dsin_input(Cfg *c, const DinModel *m, const char *name, int i, DinTowerInput *in)
{
	if (m->arch != DIN_ARCH_DSIN)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key tower.inputs[%d] is %s, which needs architecture dsin", i,
		                name);
	in->kind = DIN_IN_ATTENTION;
	if (strcmp(name, "session_interest") == 0) {
		in->offset = 0;
		in->width = m->E;
		return DIN_OK;
	}
	if (strcmp(name, "session_interacting") == 0 && m->dsin->has_lstm) {
		in->offset = m->E;
		in->width = m->dsin->inter_w;
		return DIN_OK;
	}
	if (strcmp(name, "session_interacting") == 0)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key tower.inputs[%d] is session_interacting but interacting has "
		                "type none",
		                i);
	return cfg_fail(c, DIN_ECORRUPT,
	                "config key tower.inputs[%d] is %s, which architecture dsin does not have", i,
	                name);
}

void
cfg_dsin_free(struct DinDsin *d)
{
	if (d == NULL)
		return;
	free(d->unit[0].layers);
	free(d->unit[1].layers);
	free(d);
}
