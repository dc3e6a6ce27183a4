/*
 * config_dien.c - the blocks of architecture dien (docs/FORMAT.md "architecture dien"): the
 * extractor GRU (`sequence`), the attention between its states and the target, and the
 * interest evolution (`evolution`), bound to their tensors.
 */
#include "config_layers.h"
#include "../models/dien.h"

#include <stdlib.h>
#include <string.h>

static const char *const conventions[] = {"pytorch", "tensorflow", NULL};

/* GRU tensors prefix.* for input width in, hidden H, in the given convention. */
static DinStatus
read_gru_tensors(Cfg *c, const char *prefix, DinGruConv conv, int in, int H, DinGru *g)
{
	char name[CFG_PATH];
	const DinTensor *t;

	memset(g, 0, sizeof(*g));
	g->conv = conv;
	g->in = in;
	g->hidden = H;
	if (conv == DIN_GRU_PYTORCH) {
		TRY(cfg_need(c, cfg_name(name, prefix, "weight_ih"), DIN_F32, 2, 3 * H, in, &t));
		g->w_ih = t->data;
		TRY(cfg_need(c, cfg_name(name, prefix, "weight_hh"), DIN_F32, 2, 3 * H, H, &t));
		g->w_hh = t->data;
		TRY(cfg_need(c, cfg_name(name, prefix, "bias_ih"), DIN_F32, 1, 3 * H, 0, &t));
		g->b_ih = t->data;
		TRY(cfg_need(c, cfg_name(name, prefix, "bias_hh"), DIN_F32, 1, 3 * H, 0, &t));
		g->b_hh = t->data;
		return DIN_OK;
	}
	TRY(cfg_need(c, cfg_name(name, prefix, "gates.weight"), DIN_F32, 2, 2 * H, in + H, &t));
	g->gate_w = t->data;
	TRY(cfg_need(c, cfg_name(name, prefix, "gates.bias"), DIN_F32, 1, 2 * H, 0, &t));
	g->gate_b = t->data;
	TRY(cfg_need(c, cfg_name(name, prefix, "candidate.weight"), DIN_F32, 2, H, in + H, &t));
	g->cand_w = t->data;
	TRY(cfg_need(c, cfg_name(name, prefix, "candidate.bias"), DIN_F32, 1, H, 0, &t));
	g->cand_b = t->data;
	return DIN_OK;
}

static DinStatus
read_sequence(Cfg *c, DinModel *m, const JsonValue *root, int *conv)
{
	static const char *const keys[] = {"type", "hidden", "convention", NULL};
	static const char *const types[] = {"gru", NULL};
	const JsonValue *seq = json_get(root, "sequence");
	int64_t hidden;
	int type;

	if (seq == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key sequence is missing (architecture dien)");
	TRY(cfg_object(c, seq, "sequence", keys));
	TRY(cfg_enum(c, seq, "sequence", "type", types, CFG_REQUIRED, &type));
	TRY(cfg_int(c, seq, "sequence", "hidden",
	            (IntRule){.required = 1, .min = 1, .limit = CFG_MAX_UNITS}, &hidden));
	TRY(cfg_enum(c, seq, "sequence", "convention", conventions, CFG_REQUIRED, conv));
	return read_gru_tensors(c, "sequence.gru", (DinGruConv)*conv, m->E, (int)hidden,
	                        &m->dien->extractor);
}

static DinStatus
read_dien_attention(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	static const char *const unit_keys[] = {"type",          "layers",           "out_bias",
	                                        "normalization", "query_projection", NULL};
	static const char *const bilinear_keys[] = {"type", "normalization", NULL};
	static const char *const types[] = {"din", "bilinear", NULL};
	static const char *const norms[] = {"none", "softmax", NULL};
	const JsonValue *att = json_get(root, "attention"), *qp;
	const DinTensor *t;
	int type, H = m->dien->extractor.hidden, qwidth = m->E;

	if (att == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key attention is missing (architecture dien)");
	if (att->type != JSON_OBJECT)
		return cfg_object(c, att, "attention", unit_keys);
	TRY(cfg_enum(c, att, "attention", "type", types, 0, &type));
	TRY(cfg_object(c, att, "attention", type ? bilinear_keys : unit_keys));
	/* DIEN normalizes by default: the paper's Eq. 8 and both DeepCTR libraries */
	TRY(cfg_enum(c, att, "attention", "normalization", norms, 1, &m->att_softmax));
	m->dien->score = type ? DIN_DIEN_SCORE_BILINEAR : DIN_DIEN_SCORE_UNIT;
	if (type) {
		TRY(cfg_need(c, "attention.bilinear.weight", DIN_F32, 2, H, m->E, &t));
		m->dien->bilinear = t->data;
		return DIN_OK;
	}
	qp = json_get(att, "query_projection");
	if (qp != NULL && qp->type != JSON_NULL) {
		TRY(cfg_layer(c, qp, "attention.query_projection", "attention.query", m->E,
		              &m->dien->query));
		qwidth = m->dien->query.out;
	}
	if (qwidth != H)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key attention: the query is %d wide but sequence.hidden is %d "
		                "(the din unit compares them elementwise; add query_projection)",
		                qwidth, H);
	return cfg_attention_mlp(c, att, 4 * H, m, own);
}

static DinStatus
read_evolution(Cfg *c, DinModel *m, const JsonValue *root, int seq_conv)
{
	static const char *const keys[] = {"type", "form", "convention", NULL};
	static const char *const types[] = {"augru", "agru", "aigru", "gru_attention_pooling", NULL};
	static const char *const forms[] = {"paper", "code", NULL};
	const JsonValue *evo = json_get(root, "evolution");
	int type, form, conv, H = m->dien->extractor.hidden;

	if (evo == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key evolution is missing (architecture dien)");
	TRY(cfg_object(c, evo, "evolution", keys));
	TRY(cfg_enum(c, evo, "evolution", "type", types, CFG_REQUIRED, &type));
	m->dien->evo = (DinEvolution)type;
	if (m->dien->evo != DIN_EVO_AUGRU && json_get(evo, "form") != NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key evolution.form applies to augru only");
	TRY(cfg_enum(c, evo, "evolution", "form", forms, 0, &form));
	m->dien->gate = m->dien->evo == DIN_EVO_AGRU ? DIN_GATE_AGRU
	                : m->dien->evo == DIN_EVO_AUGRU
	                    ? (form ? DIN_GATE_AUGRU_CODE : DIN_GATE_AUGRU_PAPER)
	                    : DIN_GATE_PLAIN;
	TRY(cfg_enum(c, evo, "evolution", "convention", conventions, seq_conv, &conv));
	return read_gru_tensors(c, "evolution.gru", (DinGruConv)conv, H, H, &m->dien->evolution);
}

DinStatus
cfg_dien(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	int conv;

	m->dien = own->dien = calloc(1, sizeof(DinDien));
	if (m->dien == NULL)
		return cfg_fail(c, DIN_ENOMEM, "out of memory building a model");
	TRY(read_sequence(c, m, root, &conv));
	m->att_width = m->dien->extractor.hidden;
	TRY(read_dien_attention(c, m, own, root));
	return read_evolution(c, m, root, conv);
}
