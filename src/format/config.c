/*
 * config.c - din.config (docs/FORMAT.md "The config") validated against the tensors and bound
 * into a DinModel whose weight pointers point into the tensors' data.
 *
 * Order of checks: the config alone, then each block's tensors as the block is read, then
 * tensors nobody asked for, then the values (finite floats, unique ids). A model that builds is
 * safe to score: every index the scorer computes from it is in range.
 */
#include "config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static const char *const arch_names[] = {"base", "din", "dien", "dsin", "bst", NULL};

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
	TRY(cfg_int(c, v, path, "rows", 1, 0, 1, INT64_C(2147483647), 0, &f->rows));
	TRY(cfg_int(c, v, path, "dim", 1, 0, 1, CFG_MAX_UNITS, 1, &x));
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
	TRY(cfg_int(c, v, path, "padding_id", 0, 0, -(INT64_C(1) << 53), INT64_C(1) << 53, 0,
	            &f->padding_id));
	cfg_path(tname, "fields.%s.weight", f->name);
	TRY(cfg_need(c, tname, DIN_F32, 2, f->rows, f->dim, &t));
	f->weight = t->data;
	cfg_path(tname, "vocab.%s", f->name);
	TRY(cfg_maybe(c, tname, DIN_I64, 1, f->rows, 0, &t));
	if (t != NULL)
		TRY(din_idmap_build(&f->vocab, t->data, f->rows, t->name, c->err));
	return DIN_OK;
}

static DinStatus
read_fields(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	const JsonValue *arr = json_get(root, "fields");

	if (arr == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key fields is missing");
	if (arr->type != JSON_ARRAY || arr->n == 0)
		return cfg_fail(c, DIN_ECORRUPT, "config key fields must be a non-empty array");
	if (arr->n > CFG_MAX_FIELDS)
		return cfg_fail(c, DIN_ELIMIT, "config key fields has %u entries, at most %d allowed",
		                arr->n, CFG_MAX_FIELDS);
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
	TRY(cfg_int(c, root, "", "dense", 0, 0, 0, CFG_MAX_UNITS, 1, &dense));
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
		TRY(cfg_int(c, output, "attention.output", "units", 0, 0, 1, CFG_MAX_UNITS, 1, &units));
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

/* One tower input "name" or "name:k" into its kind, offset and width. */
static DinStatus
read_input(Cfg *c, const DinModel *m, const JsonValue *v, int i, DinTowerInput *in)
{
	static const struct {
		const char *name;
		DinInputKind kind;
		int sliceable;
	} kinds[] = {{"target", DIN_IN_TARGET, 1},
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
	const char *colon, *s;
	size_t base_len;
	int kind = -1, slice = -1;

	if (v->type != JSON_STRING)
		return cfg_fail(c, DIN_ECORRUPT, "config key tower.inputs[%d] must be a string", i);
	s = v->u.str;
	colon = strchr(s, ':');
	base_len = colon ? (size_t)(colon - s) : strlen(s);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]) && kind < 0; k++)
		if (strlen(kinds[k].name) == base_len && strncmp(kinds[k].name, s, base_len) == 0)
			kind = (int)k;
	if (kind >= 0 && colon != NULL) {
		const char *d = colon + 1;
		long k = 0;

		if (!kinds[kind].sliceable || *d == '\0' || strlen(d) > 3 || (d[0] == '0' && d[1]))
			kind = -1;
		for (; kind >= 0 && *d; d++) {
			if (*d < '0' || *d > '9')
				kind = -1;
			k = k * 10 + (*d - '0');
		}
		slice = (int)k;
	}
	if (kind < 0)
		return cfg_fail(c, DIN_ECORRUPT, "config key tower.inputs[%d] has unknown input \"%.64s\"",
		                i, s);
	in->kind = kinds[kind].kind;
	in->offset = 0;
	if (strncmp(kinds[kind].name, "session_", 8) == 0 ||
	    (m->arch == DIN_ARCH_DSIN &&
	     (in->kind == DIN_IN_ATTENTION || in->kind == DIN_IN_TARGET_X_ATTENTION)))
		return cfg_dsin_input(c, m, kinds[kind].name, i, in);
	/* DIEN's interest feeds the tower through the attention slot (m->att_width wide) */
	if ((m->arch == DIN_ARCH_DIEN || m->arch == DIN_ARCH_BST) !=
	        (strcmp(kinds[kind].name, "interest") == 0) &&
	    (in->kind == DIN_IN_ATTENTION || in->kind == DIN_IN_TARGET_X_ATTENTION))
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key tower.inputs[%d] is %s, which needs "
		                "architecture %s",
		                i, s, m->arch == DIN_ARCH_DIEN ? "din" : "dien or bst");
	if ((m->arch == DIN_ARCH_DIEN || m->arch == DIN_ARCH_BST) && in->kind == DIN_IN_ATTENTION) {
		in->width = m->att_width;
		return DIN_OK;
	}
	switch (in->kind) {
	case DIN_IN_CONTEXT:
		if (m->n_context == 0)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key tower.inputs[%d] is %s but the model has no context "
			                "fields",
			                i, s);
		if (slice >= m->n_context)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key tower.inputs[%d] is %s, beyond the %d context fields", i, s,
			                m->n_context);
		in->offset = slice < 0 ? 0 : m->context_offset[slice];
		in->width = slice < 0 ? m->context_offset[m->n_context] : m->fields[m->context[slice]].dim;
		return DIN_OK;
	case DIN_IN_DENSE:
		if (m->n_dense == 0)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key tower.inputs[%d] is dense but the model has dense 0", i);
		in->width = m->n_dense;
		return DIN_OK;
	case DIN_IN_ATTENTION:
	case DIN_IN_TARGET_X_ATTENTION:
		if (m->arch != DIN_ARCH_DIN)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key tower.inputs[%d] is %s, which needs architecture din", i,
			                s);
		if (in->kind == DIN_IN_TARGET_X_ATTENTION && m->att_width != m->E)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key tower.inputs[%d] is %s but attention is %d wide and "
			                "target %d",
			                i, s, m->att_width, m->E);
		if (slice >= 0 && m->att_output.out > 0)
			return cfg_fail(c, DIN_ECORRUPT,
			                "config key tower.inputs[%d] is %s, not allowed after "
			                "attention.output",
			                i, s);
		if (slice < 0) {
			in->width = in->kind == DIN_IN_ATTENTION ? m->att_width : m->E;
			return DIN_OK;
		}
		break;
	case DIN_IN_TARGET_X_HISTORY_SUM:
		in->width = m->E;
		return DIN_OK;
	default:
		if (slice < 0) {
			in->width = m->E;
			return DIN_OK;
		}
		break;
	}
	if (slice >= m->n_slots)
		return cfg_fail(c, DIN_ECORRUPT, "config key tower.inputs[%d] is %s, beyond the %d slots",
		                i, s, m->n_slots);
	in->offset = m->slot_offset[slice];
	in->width = m->slot_offset[slice + 1] - m->slot_offset[slice];
	return DIN_OK;
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
	TRY(cfg_int(c, head, "tower.head", "column", 0, 0, 0, 1, 0, &column));
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
	if (inputs == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "config key tower.inputs is missing");
	if (inputs->type != JSON_ARRAY || inputs->n == 0)
		return cfg_fail(c, DIN_ECORRUPT, "config key tower.inputs must be a non-empty array");
	if (inputs->n > CFG_MAX_INPUTS)
		return cfg_fail(c, DIN_ELIMIT, "config key tower.inputs has %u entries, at most %d allowed",
		                inputs->n, CFG_MAX_INPUTS);
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

static DinStatus
build(Cfg *c, DinModel *m, ModelOwned *own, const JsonValue *root)
{
	int64_t x;
	int arch;

	TRY(cfg_object(c, root, "", root_keys));
	TRY(cfg_int(c, root, "", "format", 1, 0, INT32_MIN, INT32_MAX, 0, &x));
	if (x != 1)
		return cfg_fail(c, DIN_ECORRUPT, "config key format is %lld, this din reads format 1",
		                (long long)x);
	TRY(cfg_enum(c, root, "", "architecture", arch_names, -1, &arch));
	m->arch = (DinArch)arch;
	TRY(cfg_int(c, root, "", "max_len", 1, 0, 1, DIN_MAX_LEN_LIMIT, 1, &x));
	m->max_len = (int)x;
	TRY(read_fields(c, m, own, root));
	TRY(read_slots(c, m, root));
	TRY(read_context(c, m, own, root));
	TRY(read_items(c, m, own));
	if (m->arch != DIN_ARCH_DSIN) {
		static const char *const dsin_only[] = {
		    "sessions", "extractor", "interacting", "session_attention", "interacting_attention",
		    NULL};

		for (int i = 0; dsin_only[i] != NULL; i++)
			if (json_get(root, dsin_only[i]) != NULL)
				return cfg_fail(c, DIN_ECORRUPT,
				                "config key %s is allowed only with architecture dsin",
				                dsin_only[i]);
	}
	if (m->arch != DIN_ARCH_BST && json_get(root, "transformer") != NULL)
		return cfg_fail(c, DIN_ECORRUPT,
		                "config key transformer is allowed only with architecture bst");
	if (m->arch == DIN_ARCH_DIEN)
		TRY(cfg_dien(c, m, own, root));
	else if (m->arch == DIN_ARCH_BST) {
		static const char *const not_bst[] = {"sequence", "evolution", NULL};

		for (int i = 0; not_bst[i] != NULL; i++)
			if (json_get(root, not_bst[i]) != NULL)
				return cfg_fail(c, DIN_ECORRUPT,
				                "config key %s is not allowed with architecture bst", not_bst[i]);
		TRY(cfg_bst(c, m, own, root));
	} else if (m->arch == DIN_ARCH_DSIN) {
		static const char *const not_dsin[] = {"sequence", "evolution", "attention", NULL};

		for (int i = 0; not_dsin[i] != NULL; i++)
			if (json_get(root, not_dsin[i]) != NULL)
				return cfg_fail(c, DIN_ECORRUPT,
				                "config key %s is not allowed with architecture dsin", not_dsin[i]);
		TRY(cfg_dsin(c, m, own, root));
	} else {
		static const char *const dien_only[] = {"sequence", "evolution", NULL};

		for (int i = 0; dien_only[i] != NULL; i++)
			if (json_get(root, dien_only[i]) != NULL)
				return cfg_fail(c, DIN_ECORRUPT,
				                "config key %s is allowed only with architecture dien",
				                dien_only[i]);
		TRY(read_attention(c, m, own, root));
	}
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

DinStatus
din_config_architecture(const char *config, size_t len, char *arch, size_t arch_len, DinError *err)
{
	Cfg c = {.err = err};
	JsonDoc *doc;
	const JsonValue *root;
	DinStatus s;
	int k;

	TRY(json_parse(config, len, "config", &doc, err));
	root = json_root(doc);
	if (root->type != JSON_OBJECT)
		s = cfg_fail(&c, DIN_ECORRUPT, "config is %s, not an object", json_type_name(root->type));
	else
		s = cfg_enum(&c, root, "", "architecture", arch_names, -1, &k);
	if (s == DIN_OK) {
		if (strlen(arch_names[k]) >= arch_len)
			s = din_fail(err, DIN_EINVAL, NULL, "architecture buffer too small");
		else
			strcpy(arch, arch_names[k]);
	}
	json_free(doc);
	return s;
}
