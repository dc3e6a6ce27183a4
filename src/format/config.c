/*
 * config.c - din.config (docs/FORMAT.md "The config") validated against the tensors and bound
 * into a DinModel whose weight pointers point into the tensors' data.
 *
 * Order of checks: the config alone, then each block's tensors as the block is read, then
 * tensors nobody asked for, then the values (finite floats, unique ids). A model that builds is
 * safe to score: every index the scorer computes from it is in range.
 */
#include "config_layers.h"
#include "../models/arch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_MAX_FIELDS 64
#define CFG_MAX_INPUTS 64 /* tower inputs */

static const char *const root_keys[] = {"format",
                                        "architecture",
                                        "max_len",
                                        "fields",
                                        "item",
                                        "target",
                                        "behaviour",
                                        "context",
                                        "dense",
                                        "attention",
                                        "tower",
                                        "sequence",
                                        "evolution",
                                        "sessions",
                                        "extractor",
                                        "interacting",
                                        "session_attention",
                                        "interacting_attention",
                                        "transformer",
                                        NULL};

static int
valid_field_name(const JsonValue *v)
{
	if (v->type != JSON_STRING || v->n < 1 || v->n > DIN_MAX_NAME)
		return 0;
	for (uint32_t i = 0; i < v->n; i++) {
		char ch = v->u.str[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_'))
			return 0;
	}
	return 1;
}

static DinStatus
read_field(Cfg *c, DinModel *m, const JsonValue *v, int i)
{
	static const char *const keys[] = {"name", "rows", "dim", "oov", "padding_id", NULL};
	DinField *f = &m->fields[i];
	const JsonValue *name, *oov;
	char path[CFG_PATH], tname[CFG_PATH], sub[CFG_PATH];
	const DinTensor *t;
	int64_t x;

	cfg_path(path, "fields[%d]", i);
	TRY(cfg_object(c, v, path, keys));
	name = json_get(v, "name");
	if (name == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s.name is missing", path);
	if (!valid_field_name(name))
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key %s.name must be 1 to %d characters of [A-Za-z0-9_]", path,
		                DIN_MAX_NAME);
	memcpy(f->name, name->u.str, name->n + 1);
	for (int j = 0; j < i; j++)
		if (strcmp(m->fields[j].name, f->name) == 0)
			return cfg_fail(c, DIN_ECORRUPT, "config key %s.name repeats field %s", path, f->name);
	TRY(cfg_int(c, v, path, "rows", (IntRule){.required = 1, .min = 1, .max = DIN_MAX_DIM},
	            &f->rows));
	TRY(cfg_int(c, v, path, "dim", (IntRule){.required = 1, .min = 1, .limit = CFG_MAX_UNITS}, &x));
	f->dim = (int)x;
	oov = json_get(v, "oov");
	f->oov = DIN_OOV_ERROR;
	if (oov != NULL && oov->type == JSON_NUMBER) {
		if (!json_int(oov, 0, f->rows - 1, &f->oov_row))
			return cfg_fail(c, DIN_ECORRUPT, "config key %s is %.17g, not a row in [0, %lld)",
			                cfg_join(sub, path, "oov"), oov->u.number, (long long)f->rows);
		f->oov = DIN_OOV_ROW;
	} else if (oov != NULL) {
		static const char *const oov_names[] = {"error", "zero", NULL};
		int k;

		TRY(cfg_enum(c, v, path, "oov", oov_names, 0, &k));
		f->oov = k ? DIN_OOV_ZERO : DIN_OOV_ERROR;
	}
	/* any raw id, in the vocabulary or not; JSON numbers are exact up to 2^53 */
	f->has_padding_id = json_get(v, "padding_id") != NULL;
	TRY(cfg_int(c, v, path, "padding_id",
	            (IntRule){.min = -(INT64_C(1) << 53), .max = INT64_C(1) << 53}, &f->padding_id));
	cfg_path(tname, "fields.%s.weight", f->name);
	TRY(cfg_need(c, tname, DIN_F32, 2, f->rows, f->dim, &t));
	f->weight = t->data;
	cfg_path(tname, "vocab.%s", f->name);
	TRY(cfg_maybe(c, tname, DIN_I64, 1, f->rows, 0, &t));
	if (t != NULL)
		TRY(din_idmap_build(&f->vocab, t->data, f->rows, t->name, c->err));
	return DIN_OK;
}

/* The required non-empty array at path, of at most max entries. */
static DinStatus
need_list(Cfg *c, const JsonValue *arr, const char *path, int max)
{
	if (arr == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s is missing", path);
	if (arr->type != JSON_ARRAY || arr->n == 0)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s must be a non-empty array", path);
	if (arr->n > (uint32_t)max)
		return cfg_fail(c, DIN_ELIMIT, "config key %s has %u entries, at most %d allowed", path,
		                arr->n, max);
	return DIN_OK;
}

static DinStatus
read_fields(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	const JsonValue *arr = json_get(root, "fields");

	TRY(need_list(c, arr, "fields", CFG_MAX_FIELDS));
	own->fields = calloc(arr->n, sizeof(DinField));
	if (own->fields == NULL)
		return cfg_fail(c, DIN_ENOMEM, "out of memory binding fields");
	m->fields = own->fields;
	for (uint32_t i = 0; i < arr->n; i++) {
		own->n_fields = m->n_fields = (int)i + 1;
		TRY(read_field(c, m, &arr->u.items[i], (int)i));
	}
	return DIN_OK;
}

/* A list of field names at `path` (absent: empty unless required) into field indexes. */
static DinStatus
read_field_list(Cfg *c, const DinModel *m, const JsonValue *arr, const char *path, int required,
                int max, int *idx, int *n)
{
	*n = 0;
	if (arr == NULL) {
		if (required)
			return cfg_fail(c, DIN_ECORRUPT, "config key %s is missing", path);
		return DIN_OK;
	}
	if (arr->type != JSON_ARRAY)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s must be an array of field names", path);
	if (arr->n > (uint32_t)max)
		return cfg_fail(c, DIN_ELIMIT, "config key %s has %u entries, at most %d allowed", path,
		                arr->n, max);
	for (uint32_t i = 0; i < arr->n; i++) {
		const JsonValue *v = &arr->u.items[i];
		int found = -1;

		if (v->type != JSON_STRING)
			return cfg_fail(c, DIN_ECORRUPT, "config key %s[%u] must be a field name", path, i);
		for (int j = 0; j < m->n_fields && found < 0; j++)
			if (strcmp(m->fields[j].name, v->u.str) == 0)
				found = j;
		if (found < 0)
			return cfg_fail(c, DIN_ECORRUPT, "config key %s[%u] names unknown field \"%.64s\"",
			                path, i, v->u.str);
		idx[i] = found;
	}
	*n = (int)arr->n;
	return DIN_OK;
}

static DinStatus
read_slots(Cfg *c, DinModel *m, const JsonValue *root)
{
	static const char *const item_keys[] = {"attributes", NULL};
	const JsonValue *item = json_get(root, "item");
	int attrs[DIN_MAX_SLOTS], n_behaviour;

	m->n_attr = 0;
	if (item != NULL) {
		TRY(cfg_object(c, item, "item", item_keys));
		TRY(read_field_list(c, m, json_get(item, "attributes"), "item.attributes", 0,
		                    DIN_MAX_SLOTS - 1, attrs, &m->n_attr));
	}
	TRY(read_field_list(c, m, json_get(root, "target"), "target", 1, DIN_MAX_SLOTS, m->target,
	                    &m->n_slots));
	TRY(read_field_list(c, m, json_get(root, "behaviour"), "behaviour", 1, DIN_MAX_SLOTS,
	                    m->behaviour, &n_behaviour));
	if (m->n_slots != 1 + m->n_attr)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key target has %d entries, expected 1 + %d item attributes",
		                m->n_slots, m->n_attr);
	if (n_behaviour != m->n_slots)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key behaviour has %d entries, expected 1 + %d item attributes",
		                n_behaviour, m->n_attr);
	m->E = 0;
	for (int k = 0; k < m->n_slots; k++) {
		const DinField *t = &m->fields[m->target[k]], *b = &m->fields[m->behaviour[k]];

		if (t->dim != b->dim)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config keys target[%d] (%s, dim %d) and behaviour[%d] (%s, dim %d) "
			                "differ in dim",
			                k, t->name, t->dim, k, b->name, b->dim);
		m->slot_offset[k] = m->E;
		m->E += t->dim;
	}
	m->slot_offset[m->n_slots] = m->E;
	/* the caller passes raw ids of this field only: a padding id elsewhere could never be seen */
	for (int i = 0; i < m->n_fields; i++)
		if (m->fields[i].has_padding_id && i != m->behaviour[0])
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key fields[%d].padding_id is allowed only on the history's "
			                "item field (behaviour[0], %s)",
			                i, m->fields[m->behaviour[0]].name);
	return DIN_OK;
}

static DinStatus
read_context(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	int64_t dense;

	own->context = calloc(CFG_MAX_FIELDS, sizeof(int));
	own->context_offset = calloc(CFG_MAX_FIELDS + 1, sizeof(int));
	if (own->context == NULL || own->context_offset == NULL)
		return cfg_fail(c, DIN_ENOMEM, "out of memory binding context");
	m->context = own->context;
	m->context_offset = own->context_offset;
	TRY(read_field_list(c, m, json_get(root, "context"), "context", 0, CFG_MAX_FIELDS, m->context,
	                    &m->n_context));
	for (int k = 0; k < m->n_context; k++)
		m->context_offset[k + 1] = m->context_offset[k] + m->fields[m->context[k]].dim;
	TRY(cfg_int(c, root, "", "dense", (IntRule){.min = 0, .limit = CFG_MAX_UNITS}, &dense));
	m->n_dense = (int)dense;
	return DIN_OK;
}

/* items.id [n] and items.attributes [n, A]: required when A > 0, absent otherwise. */
static DinStatus
read_items(Cfg *c, DinModel *m, ModelOwned *own)
{
	const DinTensor *ids, *attrs;

	if (m->n_attr == 0)
		return DIN_OK; /* leftover items.* tensors are reported as unexpected */
	ids = cfg_find(c, "items.id");
	if (ids == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "missing tensor items.id");
	if (ids->dtype != DIN_I64 || ids->ndim != 1)
		return cfg_fail(c, DIN_ECORRUPT, "tensor items.id must be I64 of one dimension");
	TRY(cfg_need(c, "items.attributes", DIN_I64, 2, ids->shape[0], m->n_attr, &attrs));
	TRY(din_idmap_build(&m->items, ids->data, ids->shape[0], "items.id", c->err));
	own->items_slots = m->items.slots;
	m->item_attrs = attrs->data;
	return DIN_OK;
}

/*
 * attention.units: one unit per group of behaviour slots, each group ascending, every slot in
 * exactly one group (torch-rechub DIN: one group per history field). Tensors
 * attention.units.i.mlp.*, attention.units.i.out.*.
 */
static DinStatus
read_units(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *att)
{
	const JsonValue *arr = json_get(att, "units");
	int owner[DIN_MAX_SLOTS];
	char path[CFG_PATH], prefix[CFG_PATH];

	if (arr == NULL)
		return cfg_attention_mlp(c, att, 4 * m->E, m, own);
	if (arr->type != JSON_ARRAY || arr->n < 1 || arr->n > (uint32_t)m->n_slots)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key attention.units must be an array of 1 to %d slot lists",
		                m->n_slots);
	own->att_units = calloc(arr->n, sizeof(DinAttUnit));
	if (own->att_units == NULL)
		return cfg_fail(c, DIN_ENOMEM, "out of memory binding attention.units");
	own->att_n_units = (int)arr->n;
	m->att_units = own->att_units;
	m->att_n_units = (int)arr->n;
	for (int k = 0; k < m->n_slots; k++)
		owner[k] = -1;
	for (uint32_t i = 0; i < arr->n; i++) {
		const JsonValue *slots = &arr->u.items[i];
		DinAttUnit *u = &m->att_units[i];

		cfg_path(path, "attention.units[%u]", i);
		if (slots->type != JSON_ARRAY || slots->n < 1)
			return cfg_fail(c, DIN_ECORRUPT, "config key %s must be a non-empty array of slots",
			                path);
		for (uint32_t j = 0; j < slots->n; j++) {
			int64_t k;

			if (!json_int(&slots->u.items[j], 0, m->n_slots - 1, &k))
				return cfg_fail(c, DIN_ECORRUPT,
				                "config key %s[%u] must be a behaviour slot in [0, %d)", path, j,
				                m->n_slots);
			if (owner[k] >= 0 || (u->n_slots > 0 && k < u->slots[u->n_slots - 1]))
				return cfg_fail(c, DIN_ECORRUPT,
				                "config key %s[%u]: slot %lld is repeated or out of order", path, j,
				                (long long)k);
			owner[k] = (int)i;
			u->slots[u->n_slots++] = (int)k;
			u->width += m->slot_offset[k + 1] - m->slot_offset[k];
		}
		cfg_path(prefix, "attention.units.%u", i);
		TRY(cfg_attention_unit(c, att, prefix, 4 * u->width, u));
	}
	for (int k = 0; k < m->n_slots; k++)
		if (owner[k] < 0)
			return cfg_fail(c, DIN_ECORRUPT, "config key attention.units: slot %d is in no unit",
			                k);
	return DIN_OK;
}

/*
 * attention.pool, attention.empty and attention.padding_row: which slots the attention sees
 * (the libraries that pad and do not mask, or mask by a softmax that an all-padding row
 * defeats).
 */
static DinStatus
read_padding(Cfg *c, DinModel *m, const JsonValue *att)
{
	static const char *const pools[] = {"valid", "all_slots", NULL};
	static const char *const empties[] = {"zero", "padding", NULL};
	int pool, empty;

	TRY(cfg_enum(c, att, "attention", "pool", pools, 0, &pool));
	TRY(cfg_enum(c, att, "attention", "empty", empties, 0, &empty));
	m->att_pool = pool ? DIN_POOL_ALL_SLOTS : DIN_POOL_VALID;
	m->att_empty = empty ? DIN_EMPTY_PADDING : DIN_EMPTY_ZERO;
	if (pool && json_get(att, "empty") != NULL)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key attention.empty applies to pool valid only (with all_slots "
		                "an empty history pools its max_len padding slots)");
	if (!pool && !empty) {
		if (json_get(att, "padding_row") != NULL)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key attention.padding_row applies to pool all_slots or empty "
			                "padding only");
		return DIN_OK;
	}
	return cfg_padding_row(c, att, "attention", m, &m->att_pad_row);
}

static DinStatus
read_attention(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	static const char *const keys[] = {"type",  "layers",      "out_bias", "normalization",
	                                   "scale", "output",      "units",    "pool",
	                                   "empty", "padding_row", NULL};
	static const char *const out_keys[] = {"batch_norm", "units", NULL};
	static const char *const types[] = {"din", NULL};
	static const char *const norms[] = {"none", "softmax", NULL};
	const JsonValue *att = json_get(root, "attention"), *output;
	const DinTensor *t;
	int type;

	m->att_width = m->E;
	if (m->arch == DIN_ARCH_BASE) {
		if (att != NULL)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key attention is not allowed with architecture base");
		return DIN_OK;
	}
	if (att == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key attention is missing (architecture din)");
	TRY(cfg_object(c, att, "attention", keys));
	TRY(cfg_enum(c, att, "attention", "type", types, 0, &type));
	TRY(read_units(c, m, own, att));
	TRY(read_padding(c, m, att));
	TRY(cfg_enum(c, att, "attention", "normalization", norms, 0, &m->att_softmax));
	TRY(cfg_bool(c, att, "attention", "scale", 0, &m->att_scale));
	output = json_get(att, "output");
	if (output != NULL && output->type != JSON_NULL) {
		int64_t units;

		TRY(cfg_object(c, output, "attention.output", out_keys));
		TRY(cfg_batchnorm(c, json_get(output, "batch_norm"), "attention.output.batch_norm",
		                  "attention.output.bn", m->E, &m->att_output_bn));
		TRY(cfg_int(c, output, "attention.output", "units",
		            (IntRule){.min = 1, .limit = CFG_MAX_UNITS}, &units));
		if (units > 0) {
			DinLayer *o = &m->att_output;

			o->in = m->E;
			o->out = (int)units;
			TRY(cfg_need(c, "attention.output.weight", DIN_F32, 2, units, m->E, &t));
			o->weight = t->data;
			TRY(cfg_need(c, "attention.output.bias", DIN_F32, 1, units, 0, &t));
			o->bias = t->data;
			o->act.kind = DIN_ACT_LINEAR;
			o->act.units = (int)units;
			m->att_width = (int)units;
		}
	}
	return DIN_OK;
}

/* The inputs a tower can take; "name:k" takes slot k (or context field k) of a sliceable one. */
typedef struct InputName {
	const char *name;
	DinInputKind kind;
	int sliceable;
} InputName;

static const InputName input_names[] = {{"target", DIN_IN_TARGET, 1},
                                        {"context", DIN_IN_CONTEXT, 1},
                                        {"history_sum", DIN_IN_HISTORY_SUM, 1},
                                        {"history_mean", DIN_IN_HISTORY_MEAN, 1},
                                        {"attention", DIN_IN_ATTENTION, 1},
                                        {"interest", DIN_IN_ATTENTION, 0},
                                        {"target*attention", DIN_IN_TARGET_X_ATTENTION, 0},
                                        {"target*history_sum", DIN_IN_TARGET_X_HISTORY_SUM, 0},
                                        {"dense", DIN_IN_DENSE, 0},
                                        {"session_interest", DIN_IN_ATTENTION, 0},
                                        {"session_interacting", DIN_IN_ATTENTION, 0}};

/* A tower input being read: its text and index, for messages, and its slice (-1: none). */
typedef struct InputRef {
	const char *text;
	int index;
	int slice;
} InputRef;

/* The k of "name:k": 1 to 3 digits without a leading zero; -1 when it is not. */
static int
parse_slice(const char *d)
{
	int k = 0;

	if (*d == '\0' || strlen(d) > 3 || (d[0] == '0' && d[1]))
		return -1;
	for (; *d; d++) {
		if (*d < '0' || *d > '9')
			return -1;
		k = k * 10 + (*d - '0');
	}
	return k;
}

/* The entry of "name" or "name:k", setting r->slice; NULL when there is none. */
static const InputName *
parse_input(InputRef *r)
{
	const char *colon = strchr(r->text, ':');
	size_t len = colon ? (size_t)(colon - r->text) : strlen(r->text);

	r->slice = -1;
	for (size_t k = 0; k < sizeof(input_names) / sizeof(input_names[0]); k++) {
		const InputName *n = &input_names[k];

		if (strlen(n->name) != len || strncmp(n->name, r->text, len) != 0)
			continue;
		if (colon == NULL)
			return n;
		r->slice = n->sliceable ? parse_slice(colon + 1) : -1;
		return r->slice >= 0 ? n : NULL;
	}
	return NULL;
}

/* target, history_sum, history_mean, attention: all slots (E wide) or slot k. */
static DinStatus
slot_input(Cfg *c, const DinModel *m, const InputRef *r, DinTowerInput *in)
{
	if (r->slice < 0) {
		in->width = m->E;
		return DIN_OK;
	}
	if (r->slice >= m->n_slots)
		return cfg_fail(c, DIN_ECORRUPT, "config key tower.inputs[%d] is %s, beyond the %d slots",
		                r->index, r->text, m->n_slots);
	in->offset = m->slot_offset[r->slice];
	in->width = m->slot_offset[r->slice + 1] - m->slot_offset[r->slice];
	return DIN_OK;
}

static DinStatus
context_input(Cfg *c, const DinModel *m, const InputRef *r, DinTowerInput *in)
{
	if (m->n_context == 0)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key tower.inputs[%d] is %s but the model has no context fields",
		                r->index, r->text);
	if (r->slice >= m->n_context)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key tower.inputs[%d] is %s, beyond the %d context fields", r->index,
		                r->text, m->n_context);
	in->offset = r->slice < 0 ? 0 : m->context_offset[r->slice];
	in->width =
	    r->slice < 0 ? m->context_offset[m->n_context] : m->fields[m->context[r->slice]].dim;
	return DIN_OK;
}

/* attention and target*attention: DIN's pooled interest, whole or slot k. */
static DinStatus
attention_input(Cfg *c, const DinModel *m, const InputRef *r, DinTowerInput *in)
{
	if (m->arch != DIN_ARCH_DIN)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key tower.inputs[%d] is %s, which needs architecture din", r->index,
		                r->text);
	if (in->kind == DIN_IN_TARGET_X_ATTENTION && m->att_width != m->E)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key tower.inputs[%d] is %s but attention is %d wide and target %d",
		                r->index, r->text, m->att_width, m->E);
	if (r->slice >= 0 && m->att_output.out > 0)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key tower.inputs[%d] is %s, not allowed after attention.output",
		                r->index, r->text);
	if (r->slice < 0) {
		in->width = in->kind == DIN_IN_ATTENTION ? m->att_width : m->E;
		return DIN_OK;
	}
	return slot_input(c, m, r, in);
}

/* interest: DIEN's evolved interest or BST's read-out, in the attention slot (att_width wide). */
static DinStatus
interest_input(Cfg *c, const DinModel *m, const InputRef *r, DinTowerInput *in)
{
	if (m->arch != DIN_ARCH_DIEN && m->arch != DIN_ARCH_BST)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key tower.inputs[%d] is %s, which needs architecture dien or bst",
		                r->index, r->text);
	in->width = m->att_width;
	return DIN_OK;
}

/* One tower input "name" or "name:k" into its kind, offset and width. */
static DinStatus
read_input(Cfg *c, const DinModel *m, const JsonValue *v, int i, DinTowerInput *in)
{
	InputRef r = {.index = i};
	const InputName *name;

	if (v->type != JSON_STRING)
		return cfg_fail(c, DIN_ECORRUPT, "config key tower.inputs[%d] must be a string", i);
	r.text = v->u.str;
	name = parse_input(&r);
	if (name == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key tower.inputs[%d] has unknown input \"%.64s\"",
		                i, r.text);
	in->kind = name->kind;
	in->offset = 0;
	/* a dsin model's attention inputs are its two units' */
	if (strncmp(name->name, "session_", 8) == 0 ||
	    (m->arch == DIN_ARCH_DSIN &&
	     (in->kind == DIN_IN_ATTENTION || in->kind == DIN_IN_TARGET_X_ATTENTION)))
		return cfg_dsin_input(c, m, name->name, i, in);
	if (strcmp(name->name, "interest") == 0)
		return interest_input(c, m, &r, in);
	switch (in->kind) {
	case DIN_IN_CONTEXT:
		return context_input(c, m, &r, in);
	case DIN_IN_DENSE:
		if (m->n_dense == 0)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key tower.inputs[%d] is dense but the model has dense 0", i);
		in->width = m->n_dense;
		return DIN_OK;
	case DIN_IN_ATTENTION:
	case DIN_IN_TARGET_X_ATTENTION:
		return attention_input(c, m, &r, in);
	case DIN_IN_TARGET_X_HISTORY_SUM:
		in->width = m->E;
		return DIN_OK;
	default:
		return slot_input(c, m, &r, in);
	}
}

static DinStatus
read_head(Cfg *c, DinModel *m, const JsonValue *tower)
{
	static const char *const keys[] = {"type", "bias", "item_bias", "column", "epsilon", NULL};
	static const char *const types[] = {"sigmoid", "softmax2", NULL};
	const JsonValue *head = json_get(tower, "head");
	const DinTensor *t;
	int type, bias, item_bias, outputs;
	int64_t column;
	double epsilon;

	if (head == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key tower.head is missing");
	TRY(cfg_object(c, head, "tower.head", keys));
	TRY(cfg_enum(c, head, "tower.head", "type", types, 0, &type));
	m->head = type ? DIN_HEAD_SOFTMAX2 : DIN_HEAD_SIGMOID;
	outputs = type ? 2 : 1;
	TRY(cfg_bool(c, head, "tower.head", "bias", 1, &bias));
	TRY(cfg_bool(c, head, "tower.head", "item_bias", 0, &item_bias));
	TRY(cfg_int(c, head, "tower.head", "column", (IntRule){.min = 0, .max = 1}, &column));
	TRY(cfg_number(c, head, "tower.head", "epsilon", 0.0, 0.0, &epsilon));
	if (m->head == DIN_HEAD_SIGMOID && (json_get(head, "column") || json_get(head, "epsilon")))
		return cfg_fail(c, DIN_ECORRUPT, "config key tower.head.%s applies to softmax2 only",
		                json_get(head, "column") ? "column" : "epsilon");
	if (m->head == DIN_HEAD_SOFTMAX2 && item_bias)
		return cfg_fail(c, DIN_ECORRUPT, "config key tower.head.item_bias applies to sigmoid only");
	m->head_column = (int)column;
	m->head_epsilon = (float)epsilon;
	m->head_in = m->n_tower ? m->tower[m->n_tower - 1].out : m->tower_in;
	TRY(cfg_need(c, "head.weight", DIN_F32, 2, outputs, m->head_in, &t));
	m->head_weight = t->data;
	m->head_bias = NULL;
	if (bias) {
		TRY(cfg_need(c, "head.bias", DIN_F32, 1, outputs, 0, &t));
		m->head_bias = t->data;
	}
	m->item_bias = NULL;
	if (item_bias) {
		TRY(cfg_need(c, "head.item_bias", DIN_F32, 1, m->fields[m->target[0]].rows, 0, &t));
		m->item_bias = t->data;
	}
	return DIN_OK;
}

static DinStatus
read_tower(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	static const char *const keys[] = {"inputs", "input_batch_norm", "layers", "head", NULL};
	const JsonValue *tower = json_get(root, "tower"), *inputs;

	if (tower == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key tower is missing");
	TRY(cfg_object(c, tower, "tower", keys));
	inputs = json_get(tower, "inputs");
	TRY(need_list(c, inputs, "tower.inputs", CFG_MAX_INPUTS));
	own->inputs = calloc(inputs->n, sizeof(DinTowerInput));
	if (own->inputs == NULL)
		return cfg_fail(c, DIN_ENOMEM, "out of memory binding tower.inputs");
	m->inputs = own->inputs;
	m->tower_in = 0;
	for (uint32_t i = 0; i < inputs->n; i++) {
		TRY(read_input(c, m, &inputs->u.items[i], (int)i, &m->inputs[i]));
		m->tower_in += m->inputs[i].width;
		m->n_inputs = (int)i + 1;
	}
	TRY(cfg_batchnorm(c, json_get(tower, "input_batch_norm"), "tower.input_batch_norm",
	                  "tower.input_bn", m->tower_in, &m->tower_input_bn));
	TRY(cfg_layers(c, json_get(tower, "layers"), "tower.layers", "tower", m->tower_in, 0,
	               &own->tower, &m->n_tower));
	m->tower = own->tower;
	return read_head(c, m, tower);
}

/* Every float finite; checked on the bits so it vectorizes and ignores the FP environment. */
static DinStatus
check_values(Cfg *c)
{
	for (int i = 0; i < c->n_tensors; i++) {
		const DinTensor *t = &c->tensors[i];
		const unsigned char *p = t->data;
		size_t n = t->nbytes / 4;

		if (t->dtype != DIN_F32)
			continue;
		for (size_t j = 0; j < n; j++) {
			uint32_t bits;

			memcpy(&bits, p + 4 * j, 4);
			if ((bits & 0x7F800000u) == 0x7F800000u)
				return cfg_fail(c, DIN_ECORRUPT, "tensor %s holds a non-finite value at index %zu",
				                t->name, j);
		}
	}
	return DIN_OK;
}

static int
tensor_ptr_cmp(const void *a, const void *b)
{
	return strcmp((*(const DinTensor *const *)a)->name, (*(const DinTensor *const *)b)->name);
}

/* The first of keys (NULL-terminated) that obj has, or NULL. */
static const char *
first_present(const JsonValue *obj, const char *const *keys)
{
	for (; *keys != NULL; keys++)
		if (json_get(obj, *keys) != NULL)
			return *keys;
	return NULL;
}

/* A root block of another architecture is an error naming the architecture it needs. */
static DinStatus
check_foreign_blocks(Cfg *c, const DinModel *m, const JsonValue *root)
{
	static const char *const dsin_only[] = {
	    "sessions", "extractor", "interacting", "session_attention", "interacting_attention", NULL};
	static const char *const dien_only[] = {"sequence", "evolution", NULL};
	static const char *const not_dsin[] = {"sequence", "evolution", "attention", NULL};
	const char *key;

	if (m->arch != DIN_ARCH_DSIN && (key = first_present(root, dsin_only)) != NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s is allowed only with architecture dsin",
		                key);
	if (m->arch != DIN_ARCH_BST && json_get(root, "transformer") != NULL)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key transformer is allowed only with architecture bst");
	if (m->arch == DIN_ARCH_BST && (key = first_present(root, dien_only)) != NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s is not allowed with architecture bst", key);
	if (m->arch == DIN_ARCH_DSIN && (key = first_present(root, not_dsin)) != NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s is not allowed with architecture dsin",
		                key);
	if ((m->arch == DIN_ARCH_DIN || m->arch == DIN_ARCH_BASE) &&
	    (key = first_present(root, dien_only)) != NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s is allowed only with architecture dien",
		                key);
	return DIN_OK;
}

static DinStatus
build(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	int64_t x;
	const char *arch;

	TRY(cfg_object(c, root, "", root_keys));
	TRY(cfg_int(c, root, "", "format", (IntRule){.required = 1, .min = INT32_MIN, .max = INT32_MAX},
	            &x));
	if (x != 1)
		return cfg_fail(c, DIN_ECORRUPT, "config key format is %lld, this din reads format 1",
		                (long long)x);
	TRY(cfg_string(c, root, "", "architecture", &arch));
	if (arch == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key architecture is missing");
	if (!din_arch_from_name(arch, &m->arch))
		return cfg_unknown_value(c, "", "architecture", arch);
	TRY(cfg_int(c, root, "", "max_len",
	            (IntRule){.required = 1, .min = 1, .limit = DIN_MAX_LEN_LIMIT}, &x));
	m->max_len = (int)x;
	TRY(read_fields(c, m, own, root));
	TRY(read_slots(c, m, root));
	TRY(read_context(c, m, own, root));
	TRY(read_items(c, m, own));
	TRY(check_foreign_blocks(c, m, root));
	if (m->arch == DIN_ARCH_DIEN)
		TRY(cfg_dien(c, m, own, root));
	else if (m->arch == DIN_ARCH_BST)
		TRY(cfg_bst(c, m, own, root));
	else if (m->arch == DIN_ARCH_DSIN)
		TRY(cfg_dsin(c, m, own, root));
	else
		TRY(read_attention(c, m, own, root));
	TRY(read_tower(c, m, own, root));
	for (int i = 0; i < c->n_tensors; i++)
		if (!c->used[i])
			return cfg_fail(c, DIN_ECORRUPT, "unexpected tensor %s", c->tensors[i].name);
	return check_values(c);
}

DinStatus
din_model_build(const char *config, size_t config_len, const DinTensor *tensors, int n_tensors,
                DinModel **out, DinError *err)
{
	Cfg c = {.err = err, .tensors = tensors, .n_tensors = n_tensors};
	JsonDoc *doc = NULL;
	ModelOwned *own;
	DinModel *m;
	DinStatus s;

	*out = NULL;
	m = calloc(1, sizeof(DinModel));
	own = calloc(1, sizeof(ModelOwned));
	c.by_name = calloc((size_t)n_tensors + 1, sizeof(*c.by_name));
	c.used = calloc((size_t)n_tensors + 1, 1);
	if (m)
		m->owned = own;
	if (m == NULL || own == NULL || c.by_name == NULL || c.used == NULL)
		s = din_fail(err, DIN_ENOMEM, NULL, "out of memory building a model");
	else {
		for (int i = 0; i < n_tensors; i++)
			c.by_name[i] = &tensors[i];
		qsort(c.by_name, (size_t)n_tensors, sizeof(*c.by_name), tensor_ptr_cmp);
		s = json_parse(config, config_len, "config", &doc, err);
		if (s == DIN_OK)
			s = build(&c, m, own, json_root(doc));
		if (s == DIN_OK)
			s = cfg_pack_model(m, own, err);
	}
	json_free(doc);
	free(c.by_name);
	free(c.used);
	if (s != DIN_OK) {
		if (m == NULL)
			free(own);
		din_model_free(m);
		return s;
	}
	*out = m;
	return DIN_OK;
}

void
din_model_free(DinModel *m)
{
	ModelOwned *own;

	if (m == NULL)
		return;
	own = m->owned;
	if (own != NULL) {
		for (int i = 0; i < own->n_fields; i++)
			din_idmap_free(&own->fields[i].vocab);
		free(own->fields);
		free(own->items_slots);
		free(own->context);
		free(own->context_offset);
		free(own->att_layers);
		for (int i = 0; i < own->att_n_units; i++)
			free(own->att_units[i].layers);
		free(own->att_units);
		free(own->tower);
		free(own->inputs);
		free(own->dien);
		cfg_dsin_free(own->dsin);
		free(own->bst);
		free(own->packed);
		free(own);
	}
	free(m);
}
