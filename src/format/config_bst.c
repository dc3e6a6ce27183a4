/*
 * config_bst.c - the `transformer` block of architecture bst (docs/FORMAT.md "architecture
 * bst"): positions, N blocks in PyTorch or DeepCTR layout, the read-out, and for the attention
 * read-out the DIN unit of the `attention` block; bound to their tensors.
 */
#include "config_layers.h"
#include "../models/bst.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* transformer.layout: how the blocks' attention tensors are named (in the order of layouts). */
typedef enum BstLayout { LAYOUT_PYTORCH = 0, LAYOUT_DEEPCTR } BstLayout;

static const char *const layouts[] = {"pytorch", "deepctr", NULL};
static const char *const aligns[] = {"start", "end", NULL};

/* An index position: behaviour t at slot t (or width - T + t), the target at slot width. */
static DinStatus
read_index_position(Cfg *c, const DinModel *m, const DinBst *b, const JsonValue *v,
                    const char *path, DinBstPosition *pos, int *rows)
{
	int64_t width;

	if (json_get(v, "boundaries") != NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s.boundaries applies to time_gap only", path);
	TRY(cfg_enum(c, v, path, "align", aligns, 0, &pos->align_end));
	TRY(cfg_int(c, v, path, "width",
	            (IntRule){.dflt = m->max_len, .min = m->max_len, .limit = DIN_MAX_LEN_LIMIT},
	            &width));
	pos->width = (int)width;
	*rows = pos->width + (b->target ? 1 : 0);
	return DIN_OK;
}

/* A time-gap position: the bucket of at - t_i among its boundaries (seconds). */
static DinStatus
read_time_gap_position(Cfg *c, const JsonValue *v, const char *path, DinBstPosition *pos, int *rows)
{
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
	*rows = pos->n_bounds + 1;
	return DIN_OK;
}

/* transformer.positions[k] and its table transformer.positions.<k>.weight. */
static DinStatus
read_position(Cfg *c, DinModel *m, DinBst *b, const JsonValue *v, int k)
{
	static const char *const keys[] = {"type",  "combine", "dim",        "scale",
	                                   "align", "width",   "boundaries", NULL};
	static const char *const types[] = {"index", "time_gap", NULL};
	static const char *const combines[] = {"add", "concat", NULL};
	DinBstPosition *pos = &b->pos[k];
	char path[CFG_PATH], name[CFG_PATH];
	const DinTensor *t;
	int rows = 0;
	int64_t dim;
	double scale;

	cfg_path(path, "transformer.positions[%d]", k);
	TRY(cfg_object(c, v, path, keys));
	TRY(cfg_enum(c, v, path, "type", types, CFG_REQUIRED, &pos->time_gap));
	TRY(cfg_enum(c, v, path, "combine", combines, 0, &pos->concat));
	TRY(cfg_number(c, v, path, "scale", 1.0, -HUGE_VAL, &scale));
	pos->scale = (float)scale;
	/* an added position is as wide as the rows, D, known once every concatenated width is */
	pos->dim = b->D;
	if (pos->concat) {
		TRY(cfg_int(c, v, path, "dim", (IntRule){.required = 1, .min = 1, .limit = CFG_MAX_UNITS},
		            &dim));
		pos->dim = (int)dim;
	} else if (json_get(v, "dim") != NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s.dim applies to combine concat only", path);
	if (pos->time_gap) {
		TRY(read_time_gap_position(c, v, path, pos, &rows));
		b->uses_time = 1;
	} else
		TRY(read_index_position(c, m, b, v, path, pos, &rows));
	cfg_path(name, "transformer.positions.%d.weight", k);
	TRY(cfg_need(c, name, DIN_F32, 2, rows, pos->dim, &t));
	pos->table = t->data;
	return DIN_OK;
}

/* The block's query, key and value projections (and PyTorch's output projection and biases). */
static DinStatus
read_projections(Cfg *c, DinBstBlock *blk, const char *pre, int D, BstLayout layout)
{
	char name[CFG_PATH];
	const DinTensor *t;

	if (layout == LAYOUT_DEEPCTR) {
		TRY(cfg_need(c, cfg_name(name, pre, "attention.query.weight"), DIN_F32, 2, D, D, &t));
		blk->wq = t->data;
		TRY(cfg_need(c, cfg_name(name, pre, "attention.key.weight"), DIN_F32, 2, D, D, &t));
		blk->wk = t->data;
		TRY(cfg_need(c, cfg_name(name, pre, "attention.value.weight"), DIN_F32, 2, D, D, &t));
		blk->wv = t->data;
		return DIN_OK;
	}
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
	return DIN_OK;
}

/* The FFN: one layer as transformer.ffn says (units, bias, activation), then linear back to D. */
static DinStatus
read_ffn(Cfg *c, DinBstBlock *blk, const char *pre, int D, const JsonValue *ffn)
{
	static const char *const keys[] = {"units", "bias", "activation", NULL};
	char name[CFG_PATH];
	const DinTensor *t;
	int bias;

	TRY(cfg_object(c, ffn, "transformer.ffn", keys));
	TRY(cfg_layer(c, ffn, "transformer.ffn", cfg_name(name, pre, "ffn.0"), D, &blk->ffn1));
	TRY(cfg_bool(c, ffn, "transformer.ffn", "bias", 1, &bias));
	blk->ffn2.in = blk->ffn1.out;
	blk->ffn2.out = D;
	TRY(cfg_need(c, cfg_name(name, pre, "ffn.1.weight"), DIN_F32, 2, D, blk->ffn1.out, &t));
	blk->ffn2.weight = t->data;
	if (bias) {
		TRY(cfg_need(c, cfg_name(name, pre, "ffn.1.bias"), DIN_F32, 1, D, 0, &t));
		blk->ffn2.bias = t->data;
	}
	return DIN_OK;
}

/* The two layer norms, or the one both places share (transformer.shared_norm). */
static DinStatus
read_norms(Cfg *c, DinBstBlock *blk, const char *pre, int D, int shared)
{
	char name[CFG_PATH];
	const DinTensor *t;

	TRY(cfg_need(c, cfg_name(name, pre, shared ? "norm.weight" : "norm1.weight"), DIN_F32, 1, D, 0,
	             &t));
	blk->ln1_w = t->data;
	TRY(cfg_need(c, cfg_name(name, pre, shared ? "norm.bias" : "norm1.bias"), DIN_F32, 1, D, 0,
	             &t));
	blk->ln1_b = t->data;
	blk->ln2_w = blk->ln1_w;
	blk->ln2_b = blk->ln1_b;
	if (shared)
		return DIN_OK;
	TRY(cfg_need(c, cfg_name(name, pre, "norm2.weight"), DIN_F32, 1, D, 0, &t));
	blk->ln2_w = t->data;
	TRY(cfg_need(c, cfg_name(name, pre, "norm2.bias"), DIN_F32, 1, D, 0, &t));
	blk->ln2_b = t->data;
	return DIN_OK;
}

/* Block bi, tensors transformer.blocks.<bi>.* */
static DinStatus
read_block(Cfg *c, DinBst *b, BstLayout layout, int shared, int bi, const JsonValue *ffn)
{
	DinBstBlock *blk = &b->blocks[bi];
	char pre[CFG_PATH], name[CFG_PATH];
	const DinTensor *t;

	cfg_path(pre, "transformer.blocks.%d", bi);
	TRY(read_projections(c, blk, pre, b->D, layout));
	TRY(read_ffn(c, blk, pre, b->D, ffn));
	TRY(read_norms(c, blk, pre, b->D, shared));
	if (b->bp_width > 0) {
		TRY(cfg_need(c, cfg_name(name, pre, "query_pe"), DIN_F32, 2, b->bp_width, b->D, &t));
		blk->pe_q = t->data;
		TRY(cfg_need(c, cfg_name(name, pre, "key_pe"), DIN_F32, 2, b->bp_width, b->D, &t));
		blk->pe_k = t->data;
	}
	return DIN_OK;
}

/* The N blocks, tensors transformer.blocks.<i>.*, all with the FFN transformer.ffn describes. */
static DinStatus
read_blocks(Cfg *c, DinBst *b, const JsonValue *tr, BstLayout layout, int shared)
{
	const JsonValue *ffn = json_get(tr, "ffn");

	if (ffn == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key transformer.ffn is missing");
	for (int bi = 0; bi < b->n_blocks; bi++)
		TRY(read_block(c, b, layout, shared, bi, ffn));
	b->ffn_units = b->blocks[0].ffn1.out;
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
read_padding(Cfg *c, DinModel *m, DinBst *b, const JsonValue *tr, BstLayout layout)
{
	int64_t row;

	if (b->readout != DIN_BST_READ_MEAN_ALL) {
		if (json_get(tr, "padding_row") != NULL)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key transformer.padding_row applies to readout mean_all only");
		return DIN_OK;
	}
	if (b->target || layout != LAYOUT_DEEPCTR)
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

/* transformer.blocks: the DinBst with room for them, owned by the model. */
static DinStatus
alloc_bst(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *tr, DinBst **out)
{
	int64_t blocks;
	DinBst *b;

	TRY(cfg_int(c, tr, "transformer", "blocks",
	            (IntRule){.dflt = 1, .min = 1, .limit = CFG_MAX_LAYERS}, &blocks));
	b = calloc(1, sizeof(DinBst) + (size_t)blocks * sizeof(DinBstBlock));
	if (b == NULL)
		return cfg_fail(c, DIN_ENOMEM, "out of memory building a model");
	own->bst = b;
	m->bst = b;
	b->n_blocks = (int)blocks;
	*out = b;
	return DIN_OK;
}

/* transformer.readout, which decides whether the candidate may be a row (transformer.target). */
static DinStatus
read_readout(Cfg *c, DinBst *b, const JsonValue *tr, const JsonValue *root)
{
	static const char *const readouts[] = {"target", "mean", "attention", "mean_all", NULL};
	int readout;

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
	return DIN_OK;
}

/*
 * The columns the concatenated positions append, looked up before any position is read: an
 * added position's table is D = E + that wide. Invalid entries count nothing here; reading
 * them reports them.
 */
static int
concat_width(const JsonValue *pos)
{
	int width = 0;

	for (uint32_t k = 0; k < pos->n; k++) {
		const JsonValue *cb = json_get(&pos->u.items[k], "combine");
		const JsonValue *dim = json_get(&pos->u.items[k], "dim");
		int64_t x;

		if (cb && cb->type == JSON_STRING && strcmp(cb->u.str, "concat") == 0 && dim &&
		    json_int(dim, 1, CFG_MAX_UNITS, &x))
			width += (int)x;
	}
	return width;
}

/* transformer.positions, and the model width D = E + the concatenated positions' columns. */
static DinStatus
read_positions(Cfg *c, DinModel *m, DinBst *b, const JsonValue *tr)
{
	const JsonValue *pos = json_get(tr, "positions");

	if (pos != NULL && (pos->type != JSON_ARRAY || pos->n > DIN_BST_MAX_POSITIONS))
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key transformer.positions must be an array of "
		                "at most %d positions",
		                DIN_BST_MAX_POSITIONS);
	b->D = m->E + (pos ? concat_width(pos) : 0);
	b->n_pos = pos ? (int)pos->n : 0;
	for (int k = 0; k < b->n_pos; k++)
		TRY(read_position(c, m, b, &pos->u.items[k], k));
	return DIN_OK;
}

/* transformer.block_positions: DeepCTR's position embeddings of each block's queries and keys. */
static DinStatus
read_block_positions(Cfg *c, const DinModel *m, DinBst *b, const JsonValue *tr, BstLayout layout)
{
	static const char *const keys[] = {"align", "width", NULL};
	const JsonValue *bp = json_get(tr, "block_positions");
	int64_t width;

	if (bp == NULL || bp->type == JSON_NULL)
		return DIN_OK;
	if (layout != LAYOUT_DEEPCTR || b->target)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key transformer.block_positions needs layout deepctr and "
		                "target false");
	TRY(cfg_object(c, bp, "transformer.block_positions", keys));
	TRY(cfg_enum(c, bp, "transformer.block_positions", "align", aligns, 0, &b->bp_align_end));
	TRY(cfg_int(c, bp, "transformer.block_positions", "width",
	            (IntRule){.dflt = m->max_len, .min = m->max_len, .limit = DIN_MAX_LEN_LIMIT},
	            &width));
	b->bp_width = (int)width;
	return DIN_OK;
}

DinStatus
cfg_bst(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	static const char *const keys[] = {
	    "target", "layout",    "heads",           "blocks",  "norm",        "eps", "shared_norm",
	    "ffn",    "positions", "block_positions", "readout", "padding_row", NULL};
	static const char *const norms[] = {"post", "pre", NULL};
	const JsonValue *tr = json_get(root, "transformer");
	DinBst *b = NULL;
	int64_t heads;
	int layout, shared;

	if (tr == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key transformer is missing (architecture bst)");
	TRY(cfg_object(c, tr, "transformer", keys));
	TRY(alloc_bst(c, m, own, tr, &b));
	TRY(cfg_bool(c, tr, "transformer", "target", 1, &b->target));
	TRY(cfg_enum(c, tr, "transformer", "layout", layouts, LAYOUT_PYTORCH, &layout));
	TRY(cfg_int(c, tr, "transformer", "heads",
	            (IntRule){.required = 1, .min = 1, .limit = CFG_MAX_UNITS}, &heads));
	b->heads = (int)heads;
	TRY(cfg_enum(c, tr, "transformer", "norm", norms, 0, &b->pre_norm));
	TRY(cfg_positive_eps(c, tr, "transformer", 1e-5, &b->eps));
	TRY(cfg_bool(c, tr, "transformer", "shared_norm", 0, &shared));
	TRY(read_readout(c, b, tr, root));
	TRY(read_positions(c, m, b, tr));
	if (b->D % b->heads != 0)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key transformer.heads is %d, which does not divide the model width "
		                "%d",
		                b->heads, b->D);
	TRY(read_block_positions(c, m, b, tr, (BstLayout)layout));
	TRY(read_padding(c, m, b, tr, (BstLayout)layout));
	TRY(read_blocks(c, b, tr, (BstLayout)layout, shared));
	m->att_width = b->D;
	if (b->readout != DIN_BST_READ_ATTENTION)
		return DIN_OK;
	if (b->D != m->E)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key transformer.readout is attention but the sequence rows are "
		                "%d wide and the target %d (concatenated positions)",
		                b->D, m->E);
	return read_pooling(c, m, own, root);
}
