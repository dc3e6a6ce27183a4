/*
 * config_bst.c - the `transformer` block of architecture bst (docs/FORMAT.md "architecture
 * bst"): positions, N blocks in PyTorch or DeepCTR layout, the read-out, and for the attention
 * read-out the DIN unit of the `attention` block; bound to their tensors.
 */
#include "config_internal.h"
#include "../models/bst.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static DinStatus
read_position(Cfg *c, DinModel *m, DinBst *b, const JsonValue *v, int k)
{
	static const char *const keys[] = {"type",  "combine", "dim",        "scale",
	                                   "align", "width",   "boundaries", NULL};
	static const char *const types[] = {"index", "time_gap", NULL};
	static const char *const combines[] = {"add", "concat", NULL};
	static const char *const aligns[] = {"start", "end", NULL};
	DinBstPosition *pos = &b->pos[k];
	char path[CFG_PATH], name[CFG_PATH];
	const DinTensor *t;
	int type, rows;
	int64_t x;
	double scale;

	cfg_path(path, "transformer.positions[%d]", k);
	TRY(cfg_object(c, v, path, keys));
	TRY(cfg_enum(c, v, path, "type", types, CFG_REQUIRED, &type));
	TRY(cfg_enum(c, v, path, "combine", combines, 0, &pos->concat));
	TRY(cfg_number(c, v, path, "scale", 1.0, -HUGE_VAL, &scale));
	pos->scale = (float)scale;
	pos->time_gap = type;
	if (pos->concat) {
		TRY(cfg_int(c, v, path, "dim", (IntRule){.required = 1, .min = 1, .limit = CFG_MAX_UNITS},
		            &x));
		pos->dim = (int)x;
	} else if (json_get(v, "dim") != NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s.dim applies to combine concat only", path);
	if (type == 0) {
		if (json_get(v, "boundaries") != NULL)
			return cfg_fail(c, DIN_ECORRUPT, "config key %s.boundaries applies to time_gap only",
			                path);
		TRY(cfg_enum(c, v, path, "align", aligns, 0, &pos->align_end));
		TRY(cfg_int(c, v, path, "width",
		            (IntRule){.dflt = m->max_len, .min = m->max_len, .limit = DIN_MAX_LEN_LIMIT},
		            &x));
		pos->width = (int)x;
		rows = pos->width + (b->target ? 1 : 0);
	} else {
		const JsonValue *bd = json_get(v, "boundaries");

		if (json_get(v, "align") != NULL || json_get(v, "width") != NULL)
			return cfg_fail(c, DIN_ECORRUPT, "config key %s: align and width apply to index only",
			                path);
		if (bd == NULL || bd->type != JSON_ARRAY || bd->n < 1 || bd->n > DIN_BST_MAX_BOUNDARIES)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key %s.boundaries must be an array of 1 to %d numbers", path,
			                DIN_BST_MAX_BOUNDARIES);
		for (uint32_t i = 0; i < bd->n; i++) {
			const JsonValue *e = &bd->u.items[i];

			if (e->type != JSON_NUMBER || (i > 0 && e->u.number <= pos->bounds[i - 1]))
				return cfg_fail(c, DIN_ECORRUPT,
				                "config key %s.boundaries must be strictly increasing numbers "
				                "(seconds)",
				                path);
			pos->bounds[i] = e->u.number;
		}
		pos->n_bounds = (int)bd->n;
		rows = pos->n_bounds + 1;
		b->uses_time = 1;
	}
	if (pos->concat)
		b->concat_width += pos->dim;
	else
		pos->dim = b->D;
	cfg_path(name, "transformer.positions.%d.weight", k);
	/* added positions are D wide; D is known once every concat width is */
	TRY(cfg_need(c, name, DIN_F32, 2, rows, pos->concat ? pos->dim : b->D, &t));
	pos->table = t->data;
	return DIN_OK;
}

static DinStatus
read_block(Cfg *c, DinBst *b, int layout, int shared, int bi, const JsonValue *ffn)
{
	DinBstBlock *blk = &b->blocks[bi];
	int D = b->D;
	char pre[CFG_PATH], name[CFG_PATH], path[CFG_PATH];
	const DinTensor *t;
	int bias;

	cfg_path(pre, "transformer.blocks.%d", bi);
	if (layout == 0) {
		TRY(cfg_need(c, cfg_name(name, pre, "attention.in_proj_weight"), DIN_F32, 2, 3 * D, D, &t));
		blk->wq = t->data;
		blk->wk = blk->wq + (size_t)D * D;
		blk->wv = blk->wk + (size_t)D * D;
		TRY(cfg_need(c, cfg_name(name, pre, "attention.in_proj_bias"), DIN_F32, 1, 3 * D, 0, &t));
		blk->bq = t->data;
		blk->bk = blk->bq + D;
		blk->bv = blk->bk + D;
		TRY(cfg_need(c, cfg_name(name, pre, "attention.out_proj.weight"), DIN_F32, 2, D, D, &t));
		blk->wo = t->data;
		TRY(cfg_need(c, cfg_name(name, pre, "attention.out_proj.bias"), DIN_F32, 1, D, 0, &t));
		blk->bo = t->data;
	} else {
		TRY(cfg_need(c, cfg_name(name, pre, "attention.query.weight"), DIN_F32, 2, D, D, &t));
		blk->wq = t->data;
		TRY(cfg_need(c, cfg_name(name, pre, "attention.key.weight"), DIN_F32, 2, D, D, &t));
		blk->wk = t->data;
		TRY(cfg_need(c, cfg_name(name, pre, "attention.value.weight"), DIN_F32, 2, D, D, &t));
		blk->wv = t->data;
	}
	/* the FFN is one layer (units, bias, activation) then a linear layer back to D */
	cfg_path(path, "transformer.ffn");
	{
		static const char *const keys[] = {"units", "bias", "activation", NULL};

		TRY(cfg_object(c, ffn, path, keys));
	}
	TRY(cfg_layer(c, ffn, path, cfg_name(name, pre, "ffn.0"), D, &blk->ffn1));
	TRY(cfg_bool(c, ffn, path, "bias", 1, &bias));
	blk->ffn2.in = blk->ffn1.out;
	blk->ffn2.out = D;
	TRY(cfg_need(c, cfg_name(name, pre, "ffn.1.weight"), DIN_F32, 2, D, blk->ffn1.out, &t));
	blk->ffn2.weight = t->data;
	if (bias) {
		TRY(cfg_need(c, cfg_name(name, pre, "ffn.1.bias"), DIN_F32, 1, D, 0, &t));
		blk->ffn2.bias = t->data;
	}
	TRY(cfg_need(c, cfg_name(name, pre, shared ? "norm.weight" : "norm1.weight"), DIN_F32, 1, D, 0,
	             &t));
	blk->ln1_w = t->data;
	TRY(cfg_need(c, cfg_name(name, pre, shared ? "norm.bias" : "norm1.bias"), DIN_F32, 1, D, 0,
	             &t));
	blk->ln1_b = t->data;
	blk->ln2_w = blk->ln1_w;
	blk->ln2_b = blk->ln1_b;
	if (!shared) {
		TRY(cfg_need(c, cfg_name(name, pre, "norm2.weight"), DIN_F32, 1, D, 0, &t));
		blk->ln2_w = t->data;
		TRY(cfg_need(c, cfg_name(name, pre, "norm2.bias"), DIN_F32, 1, D, 0, &t));
		blk->ln2_b = t->data;
	}
	if (b->bp_width > 0) {
		TRY(cfg_need(c, cfg_name(name, pre, "query_pe"), DIN_F32, 2, b->bp_width, D, &t));
		blk->pe_q = t->data;
		TRY(cfg_need(c, cfg_name(name, pre, "key_pe"), DIN_F32, 2, b->bp_width, D, &t));
		blk->pe_k = t->data;
	}
	return DIN_OK;
}

/* The DIN unit of the attention read-out on [q, x_t, q - x_t, q * x_t]. */
static DinStatus
read_pooling(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	static const char *const keys[] = {"type",          "layers", "out_bias",
	                                   "normalization", "scale",  NULL};
	static const char *const types[] = {"din", NULL};
	static const char *const norms[] = {"none", "softmax", NULL};
	const JsonValue *att = json_get(root, "attention");
	int type;

	if (att == NULL)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key attention is missing (transformer.readout attention)");
	TRY(cfg_object(c, att, "attention", keys));
	TRY(cfg_enum(c, att, "attention", "type", types, 0, &type));
	TRY(cfg_attention_mlp(c, att, 4 * m->E, m, own));
	TRY(cfg_enum(c, att, "attention", "normalization", norms, 0, &m->att_softmax));
	return cfg_bool(c, att, "attention", "scale", 0, &m->att_scale);
}

/*
 * mean_all is DeepCTR's Transformer output_type "mean": every one of the max_len post-padded
 * slots counts, a padded one holding row padding_row of each behaviour table. Its padded rows
 * follow DeepCTR's query mask (attention output 0), so only that layout is accepted, and only
 * slot-indexed positions that put behaviour t at slot t.
 */
static DinStatus
read_padding(Cfg *c, DinModel *m, DinBst *b, const JsonValue *tr, int layout)
{
	int64_t row;

	if (b->readout != DIN_BST_READ_MEAN_ALL) {
		if (json_get(tr, "padding_row") != NULL)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key transformer.padding_row applies to readout mean_all only");
		return DIN_OK;
	}
	if (b->target || layout != 1)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key transformer.readout is mean_all, which needs layout deepctr "
		                "and target false");
	for (int k = 0; k < b->n_pos; k++)
		if (b->pos[k].time_gap || b->pos[k].align_end)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key transformer.positions[%d] must be an index position with "
			                "align start for readout mean_all (padded slots have no time)",
			                k);
	if (b->bp_width > 0 && b->bp_align_end)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key transformer.block_positions.align must be start for readout "
		                "mean_all (DeepCTR pads after the behaviours)");
	TRY(cfg_padding_row(c, tr, "transformer", m, &row));
	b->pad_row = row;
	return DIN_OK;
}

DinStatus
cfg_bst(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	static const char *const keys[] = {
	    "target", "layout",    "heads",           "blocks",  "norm",        "eps", "shared_norm",
	    "ffn",    "positions", "block_positions", "readout", "padding_row", NULL};
	static const char *const bp_keys[] = {"align", "width", NULL};
	static const char *const layouts[] = {"pytorch", "deepctr", NULL};
	static const char *const norms[] = {"post", "pre", NULL};
	static const char *const readouts[] = {"target", "mean", "attention", "mean_all", NULL};
	static const char *const aligns[] = {"start", "end", NULL};
	const JsonValue *tr = json_get(root, "transformer"), *pos, *bp, *ffn;
	DinBst *b;
	int64_t blocks, heads, x;
	int layout, shared, readout;

	if (tr == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key transformer is missing (architecture bst)");
	TRY(cfg_object(c, tr, "transformer", keys));
	TRY(cfg_int(c, tr, "transformer", "blocks",
	            (IntRule){.dflt = 1, .min = 1, .limit = CFG_MAX_LAYERS}, &blocks));
	b = calloc(1, sizeof(DinBst) + (size_t)blocks * sizeof(DinBstBlock));
	if (b == NULL)
		return cfg_fail(c, DIN_ENOMEM, "out of memory building a model");
	own->bst = b;
	m->bst = b;
	b->n_blocks = (int)blocks;
	TRY(cfg_bool(c, tr, "transformer", "target", 1, &b->target));
	TRY(cfg_enum(c, tr, "transformer", "layout", layouts, 0, &layout));
	TRY(cfg_int(c, tr, "transformer", "heads",
	            (IntRule){.required = 1, .min = 1, .limit = CFG_MAX_UNITS}, &heads));
	b->heads = (int)heads;
	TRY(cfg_enum(c, tr, "transformer", "norm", norms, 0, &b->pre_norm));
	TRY(cfg_positive_eps(c, tr, "transformer", 1e-5, &b->eps));
	TRY(cfg_bool(c, tr, "transformer", "shared_norm", 0, &shared));
	TRY(cfg_enum(c, tr, "transformer", "readout", readouts, b->target ? 0 : 1, &readout));
	b->readout = (DinBstReadout)readout;
	if (b->readout == DIN_BST_READ_TARGET && !b->target)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key transformer.readout is target but transformer.target is false");
	if (b->readout == DIN_BST_READ_ATTENTION && b->target)
		return cfg_fail(
		    c, DIN_ECORRUPT,
		    "config key transformer.readout is attention, which needs transformer.target "
		    "false (the candidate would attend to itself)");
	if (b->readout != DIN_BST_READ_ATTENTION && json_get(root, "attention") != NULL)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key attention is allowed with architecture bst only for "
		                "transformer.readout attention");

	pos = json_get(tr, "positions");
	if (pos != NULL && (pos->type != JSON_ARRAY || pos->n > DIN_BST_MAX_POSITIONS))
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key transformer.positions must be an array of "
		                "at most %d positions",
		                DIN_BST_MAX_POSITIONS);
	/* concat widths first: an added table is D = E + concat wide */
	for (uint32_t k = 0; pos != NULL && k < pos->n; k++) {
		const JsonValue *cb = json_get(&pos->u.items[k], "combine"), *dim;

		dim = json_get(&pos->u.items[k], "dim");
		if (cb && cb->type == JSON_STRING && strcmp(cb->u.str, "concat") == 0 && dim &&
		    json_int(dim, 1, CFG_MAX_UNITS, &x))
			b->concat_width += (int)x;
	}
	b->D = m->E + b->concat_width;
	b->concat_width = 0;
	b->n_pos = pos ? (int)pos->n : 0;
	for (int k = 0; k < b->n_pos; k++)
		TRY(read_position(c, m, b, &pos->u.items[k], k));
	if (b->D % b->heads != 0)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key transformer.heads is %d, which does not divide the model width "
		                "%d",
		                b->heads, b->D);
	bp = json_get(tr, "block_positions");
	if (bp != NULL && bp->type != JSON_NULL) {
		if (layout != 1 || b->target)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key transformer.block_positions needs layout deepctr and "
			                "target false");
		TRY(cfg_object(c, bp, "transformer.block_positions", bp_keys));
		TRY(cfg_enum(c, bp, "transformer.block_positions", "align", aligns, 0, &b->bp_align_end));
		TRY(cfg_int(c, bp, "transformer.block_positions", "width",
		            (IntRule){.dflt = m->max_len, .min = m->max_len, .limit = DIN_MAX_LEN_LIMIT},
		            &x));
		b->bp_width = (int)x;
	}
	TRY(read_padding(c, m, b, tr, layout));
	ffn = json_get(tr, "ffn");
	if (ffn == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key transformer.ffn is missing");
	for (int bi = 0; bi < b->n_blocks; bi++)
		TRY(read_block(c, b, layout, shared, bi, ffn));
	b->ffn_units = b->blocks[0].ffn1.out;
	m->att_width = b->D;
	if (b->readout == DIN_BST_READ_ATTENTION) {
		if (b->D != m->E)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key transformer.readout is attention but the sequence rows are "
			                "%d wide and the target %d (concatenated positions)",
			                b->D, m->E);
		TRY(read_pooling(c, m, own, root));
	}
	return DIN_OK;
}
