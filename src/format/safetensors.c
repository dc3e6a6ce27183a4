/*
 * safetensors.c - the container of a din model file (docs/FORMAT.md, "Rules of the container").
 *
 * The reader trusts nothing: every offset, size and name is checked before a pointer into the
 * buffer is handed out, so the config layer and the scorer can index tensors freely.
 */
#include "format.h"
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 255

size_t
din_dtype_size(DinDtype dtype)
{
	switch (dtype) {
	case DIN_F32:
		return 4;
	case DIN_I64:
		return 8;
	}
	return 0;
}

const char *
din_dtype_name(DinDtype dtype)
{
	switch (dtype) {
	case DIN_F32:
		return "F32";
	case DIN_I64:
		return "I64";
	}
	return "unknown";
}

int
din_dtype_from_name(const char *name, DinDtype *dtype)
{
	if (strcmp(name, "F32") == 0)
		*dtype = DIN_F32;
	else if (strcmp(name, "I64") == 0)
		*dtype = DIN_I64;
	else
		return 0;
	return 1;
}

void
din_file_free(DinFile *f)
{
	if (f == NULL)
		return;
	for (int i = 0; i < f->n_tensors; i++)
		free(f->tensors[i].name);
	free(f->tensors);
	free(f->config);
	memset(f, 0, sizeof(*f));
}

/* 1..255 bytes of printable ASCII. */
static int
valid_name(const char *name, size_t len)
{
	if (len < 1 || len > MAX_NAME)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (name[i] < 0x20 || name[i] > 0x7E)
			return 0;
	return 1;
}

/* A name made safe to print in a message (non-printable bytes become '?'). */
static const char *
printable(const char *name, size_t len, char *buf, size_t size)
{
	size_t n = len < size - 1 ? len : size - 1;

	for (size_t i = 0; i < n; i++)
		buf[i] = (name[i] >= 0x20 && name[i] <= 0x7E) ? name[i] : '?';
	buf[n] = '\0';
	return buf;
}

/* Bytes of a tensor of this shape, or a failure when above DIN_MAX_TENSOR_BYTES. */
static DinStatus
tensor_bytes(const char *name, DinDtype dtype, int ndim, const int64_t *shape, uint64_t *bytes,
             DinError *err)
{
	uint64_t n = din_dtype_size(dtype);

	for (int d = 0; d < ndim; d++) {
		/* n <= 2^40 and shape[d] < 2^31, so the product cannot wrap */
		n *= (uint64_t)shape[d];
		if (n > DIN_MAX_TENSOR_BYTES)
			return din_fail(err, DIN_ELIMIT, "A tensor may hold at most 2^40 bytes.",
			                "tensor %s is too large", name);
	}
	*bytes = n;
	return DIN_OK;
}

typedef struct Entry {
	uint64_t begin, end;
	int index; /* in out->tensors */
} Entry;

static int
entry_cmp(const void *a, const void *b)
{
	const Entry *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

static DinStatus
read_metadata(const JsonValue *meta, DinFile *out, DinError *err)
{
	const JsonValue *config;

	if (meta->type != JSON_OBJECT)
		return din_fail(err, DIN_ECORRUPT, NULL, "__metadata__ is %s, not an object",
		                json_type_name(meta->type));
	for (uint32_t i = 0; i < meta->n; i++)
		if (meta->u.members[i].value.type != JSON_STRING)
			return din_fail(err, DIN_ECORRUPT, "safetensors metadata values are strings.",
			                "__metadata__ key %.100s is not a string", meta->u.members[i].key);
	config = json_get(meta, "din.config");
	if (config == NULL)
		return din_fail(err, DIN_ECORRUPT,
		                "A din model file holds its config in the metadata key din.config.",
		                "__metadata__ has no din.config");
	out->config = malloc((size_t)config->n + 1);
	if (out->config == NULL)
		return din_fail(err, DIN_ENOMEM, NULL, "out of memory reading din.config");
	memcpy(out->config, config->u.str, (size_t)config->n + 1);
	out->config_len = config->n;
	return DIN_OK;
}

/* One header entry: {"dtype": .., "shape": [..], "data_offsets": [b, e]}. */
static DinStatus
read_entry(const JsonMember *m, size_t data_len, DinTensor *t, Entry *e, DinError *err)
{
	const char *name = m->key;
	const JsonValue *v = &m->value, *dtype, *shape, *offsets;
	int64_t begin, end;
	uint64_t bytes = 0;
	DinStatus s;

	if (v->type != JSON_OBJECT)
		return din_fail(err, DIN_ECORRUPT, NULL, "tensor %s is %s, not an object", name,
		                json_type_name(v->type));
	for (uint32_t i = 0; i < v->n; i++) {
		const char *k = v->u.members[i].key;

		if (strcmp(k, "dtype") != 0 && strcmp(k, "shape") != 0 && strcmp(k, "data_offsets") != 0)
			return din_fail(err, DIN_ECORRUPT, NULL, "tensor %s has unknown key %.100s", name, k);
	}
	dtype = json_get(v, "dtype");
	shape = json_get(v, "shape");
	offsets = json_get(v, "data_offsets");
	if (dtype == NULL || shape == NULL || offsets == NULL)
		return din_fail(err, DIN_ECORRUPT, NULL, "tensor %s lacks %s", name,
		                dtype == NULL   ? "dtype"
		                : shape == NULL ? "shape"
		                                : "data_offsets");
	if (dtype->type != JSON_STRING)
		return din_fail(err, DIN_ECORRUPT, NULL, "tensor %s has a dtype that is not a string",
		                name);
	if (!din_dtype_from_name(dtype->u.str, &t->dtype))
		return din_fail(err, DIN_ECORRUPT, "din reads F32 weights and I64 ids only.",
		                "tensor %s has unsupported dtype %.20s", name, dtype->u.str);
	if (shape->type != JSON_ARRAY)
		return din_fail(err, DIN_ECORRUPT, NULL, "tensor %s has a shape that is not an array",
		                name);
	if (shape->n > DIN_MAX_DIMS)
		return din_fail(err, DIN_ECORRUPT, NULL, "tensor %s has %u dimensions, at most %d allowed",
		                name, shape->n, DIN_MAX_DIMS);
	t->ndim = (int)shape->n;
	for (int d = 0; d < t->ndim; d++)
		if (!json_int(&shape->u.items[d], 0, DIN_MAX_DIM, &t->shape[d]))
			return din_fail(err, DIN_ECORRUPT, "Dimensions are integers from 0 to 2^31-1.",
			                "tensor %s has an invalid dimension %d", name, d);
	if ((s = tensor_bytes(name, t->dtype, t->ndim, t->shape, &bytes, err)) != DIN_OK)
		return s;
	if (offsets->type != JSON_ARRAY || offsets->n != 2 ||
	    !json_int(&offsets->u.items[0], 0, INT64_C(1) << 52, &begin) ||
	    !json_int(&offsets->u.items[1], 0, INT64_C(1) << 52, &end))
		return din_fail(err, DIN_ECORRUPT, NULL,
		                "tensor %s has data_offsets that are not two non-negative integers", name);
	if (begin > end || (uint64_t)end > data_len)
		return din_fail(err, DIN_ECORRUPT, NULL,
		                "tensor %s has data_offsets [%lld, %lld] outside the data section of %zu "
		                "bytes",
		                name, (long long)begin, (long long)end, data_len);
	if ((uint64_t)(end - begin) != bytes)
		return din_fail(err, DIN_ECORRUPT, NULL,
		                "tensor %s has %lld bytes of data, its shape and dtype need %llu", name,
		                (long long)(end - begin), (unsigned long long)bytes);
	t->nbytes = (size_t)bytes;
	e->begin = (uint64_t)begin;
	e->end = (uint64_t)end;
	return DIN_OK;
}

static DinStatus
read_header(const JsonValue *root, const uint8_t *data, size_t data_len, DinFile *out,
            DinError *err)
{
	const JsonValue *meta = json_get(root, "__metadata__");
	Entry *entries;
	DinTensor *sorted;
	DinStatus s = DIN_OK;
	int n = (int)root->n - (meta != NULL), k = 0;
	uint64_t at = 0;
	char buf[80];

	if (meta == NULL)
		return din_fail(err, DIN_ECORRUPT,
		                "A din model file holds its config in the metadata key din.config.",
		                "safetensors header has no __metadata__");
	if ((s = read_metadata(meta, out, err)) != DIN_OK)
		return s;
	out->tensors = calloc((size_t)n + 1, sizeof(DinTensor));
	entries = calloc((size_t)n + 1, sizeof(Entry));
	if (out->tensors == NULL || entries == NULL) {
		free(entries);
		return din_fail(err, DIN_ENOMEM, NULL, "out of memory reading the safetensors header");
	}
	for (uint32_t i = 0; i < root->n && s == DIN_OK; i++) {
		const JsonMember *m = &root->u.members[i];
		DinTensor *t = &out->tensors[k];

		if (&m->value == meta)
			continue;
		if (!valid_name(m->key, m->key_len)) {
			s = din_fail(err, DIN_ECORRUPT, "Tensor names are 1 to 255 bytes of printable ASCII.",
			             "invalid tensor name \"%s\"", printable(m->key, m->key_len, buf, 64));
			break;
		}
		t->name = malloc(m->key_len + 1);
		if (t->name == NULL) {
			s = din_fail(err, DIN_ENOMEM, NULL, "out of memory reading the safetensors header");
			break;
		}
		memcpy(t->name, m->key, m->key_len + 1);
		out->n_tensors = ++k;
		entries[k - 1].index = k - 1;
		s = read_entry(m, data_len, t, &entries[k - 1], err);
	}
	if (s != DIN_OK) {
		free(entries);
		return s;
	}
	/* JSON keys are unique, so names are; now the bytes must tile the data section exactly */
	qsort(entries, (size_t)n, sizeof(Entry), entry_cmp);
	for (int i = 0; i < n && s == DIN_OK; i++) {
		const char *name = out->tensors[entries[i].index].name;

		if (entries[i].begin > at)
			s = din_fail(err, DIN_ECORRUPT, "Every byte of the data section belongs to one tensor.",
			             "gap of %llu bytes before tensor %s",
			             (unsigned long long)(entries[i].begin - at), name);
		else if (entries[i].begin < at)
			s = din_fail(err, DIN_ECORRUPT, "Every byte of the data section belongs to one tensor.",
			             "tensor %s overlaps the tensor before it", name);
		at = entries[i].end;
	}
	if (s == DIN_OK && at != data_len)
		s = din_fail(err, DIN_ECORRUPT, "The file ends at the end of its last tensor.",
		             "%llu bytes after the last tensor", (unsigned long long)(data_len - at));
	if (s == DIN_OK) {
		sorted = calloc((size_t)n + 1, sizeof(DinTensor));
		if (sorted == NULL)
			s = din_fail(err, DIN_ENOMEM, NULL, "out of memory reading the safetensors header");
		else {
			for (int i = 0; i < n; i++) {
				sorted[i] = out->tensors[entries[i].index];
				sorted[i].data = data + entries[i].begin;
			}
			free(out->tensors);
			out->tensors = sorted;
		}
	}
	free(entries);
	return s;
}

DinStatus
din_file_read(const uint8_t *buf, size_t len, DinFile *out, DinError *err)
{
	JsonDoc *doc;
	const JsonValue *root;
	uint64_t n = 0;
	DinStatus s;

	memset(out, 0, sizeof(*out));
	if (len < 8)
		return din_fail(err, DIN_ECORRUPT, "A safetensors file starts with an 8-byte length.",
		                "file of %zu bytes is too short", len);
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | buf[i];
	if (n > len - 8)
		return din_fail(err, DIN_ECORRUPT, NULL,
		                "header length %llu runs past the end of the file of %zu bytes",
		                (unsigned long long)n, len);
	if (n > DIN_MAX_HEADER)
		return din_fail(err, DIN_ELIMIT, "A header may hold at most 100 MB.",
		                "header length %llu exceeds the limit", (unsigned long long)n);
	if ((s = json_parse((const char *)buf + 8, (size_t)n, "safetensors header", &doc, err)) !=
	    DIN_OK)
		return s;
	root = json_root(doc);
	if (root->type != JSON_OBJECT)
		s = din_fail(err, DIN_ECORRUPT, NULL, "safetensors header is %s, not an object",
		             json_type_name(root->type));
	else
		s = read_header(root, buf + 8 + n, len - 8 - (size_t)n, out, err);
	json_free(doc);
	if (s != DIN_OK)
		din_file_free(out);
	return s;
}

/* A growing output buffer; `failed` makes every later append a no-op. */
typedef struct Out {
	char *p;
	size_t n, cap;
	int failed;
} Out;

static void
put(Out *o, const char *s, size_t n)
{
	if (o->failed)
		return;
	if (o->cap - o->n < n) {
		size_t cap = o->cap ? o->cap : 4096;
		char *p;

		while (cap - o->n < n)
			cap *= 2;
		p = realloc(o->p, cap);
		if (p == NULL) {
			o->failed = 1;
			return;
		}
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
}

static void putf(Out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
putf(Out *o, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	put(o, buf, (size_t)n);
}

/* s as a JSON string; 0 when s is not valid UTF-8. */
static int
put_json_string(Out *o, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	put(o, "\"", 1);
	for (size_t i = 0; i < len;) {
		size_t k;

		if (u[i] == '"' || u[i] == '\\') {
			put(o, "\\", 1);
			put(o, s + i, 1);
			i++;
		} else if (u[i] < 0x20) {
			putf(o, "\\u%04x", u[i]);
			i++;
		} else {
			if ((k = json_utf8_len(u + i, len - i)) == 0)
				return 0;
			put(o, s + i, k);
			i += k;
		}
	}
	put(o, "\"", 1);
	return 1;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static DinStatus
check_for_write(const DinFile *f, DinError *err)
{
	const char **names;
	DinStatus s = DIN_OK;

	if (f->config == NULL)
		return din_fail(err, DIN_EINVAL, NULL, "model file has no config");
	for (int i = 0; i < f->n_tensors; i++) {
		const DinTensor *t = &f->tensors[i];
		uint64_t bytes = 0;

		if (t->name == NULL || !valid_name(t->name, strlen(t->name)))
			return din_fail(err, DIN_EINVAL, "Tensor names are 1 to 255 bytes of printable ASCII.",
			                "invalid tensor name at position %d", i);
		if (din_dtype_size(t->dtype) == 0 || t->ndim < 0 || t->ndim > DIN_MAX_DIMS)
			return din_fail(err, DIN_EINVAL, NULL, "tensor %s has an invalid dtype or rank",
			                t->name);
		for (int d = 0; d < t->ndim; d++)
			if (t->shape[d] < 0 || t->shape[d] > DIN_MAX_DIM)
				return din_fail(err, DIN_EINVAL, NULL, "tensor %s has an invalid dimension %d",
				                t->name, d);
		if ((s = tensor_bytes(t->name, t->dtype, t->ndim, t->shape, &bytes, err)) != DIN_OK)
			return s;
		if (bytes != t->nbytes || (bytes > 0 && t->data == NULL))
			return din_fail(err, DIN_EINVAL, NULL,
			                "tensor %s has %zu bytes of data, its shape and dtype need %llu",
			                t->name, t->nbytes, (unsigned long long)bytes);
	}
	names = malloc(((size_t)f->n_tensors + 1) * sizeof(char *));
	if (names == NULL)
		return din_fail(err, DIN_ENOMEM, NULL, "out of memory writing a model file");
	for (int i = 0; i < f->n_tensors; i++)
		names[i] = f->tensors[i].name;
	qsort(names, (size_t)f->n_tensors, sizeof(char *), name_cmp);
	for (int i = 1; i < f->n_tensors && s == DIN_OK; i++)
		if (strcmp(names[i - 1], names[i]) == 0 || strcmp(names[i], "__metadata__") == 0)
			s = din_fail(err, DIN_EINVAL, NULL, "duplicate or reserved tensor name %s", names[i]);
	if (s == DIN_OK && f->n_tensors > 0 && strcmp(names[0], "__metadata__") == 0)
		s = din_fail(err, DIN_EINVAL, NULL, "reserved tensor name __metadata__");
	free(names);
	return s;
}

DinStatus
din_file_write(const DinFile *f, uint8_t **out, size_t *out_len, DinError *err)
{
	Out o = {0};
	uint64_t offset = 0, header;
	DinStatus s;

	*out = NULL;
	*out_len = 0;
	if ((s = check_for_write(f, err)) != DIN_OK)
		return s;
	put(&o, "\0\0\0\0\0\0\0\0", 8); /* the length, filled in below */
	put(&o, "{\"__metadata__\":{\"din.config\":", 30);
	if (!put_json_string(&o, f->config, f->config_len)) {
		free(o.p);
		return din_fail(err, DIN_EINVAL, NULL, "din.config is not valid UTF-8");
	}
	put(&o, "}", 1);
	for (int i = 0; i < f->n_tensors; i++) {
		const DinTensor *t = &f->tensors[i];

		put(&o, ",", 1);
		put_json_string(&o, t->name, strlen(t->name));
		putf(&o, ":{\"dtype\":\"%s\",\"shape\":[", din_dtype_name(t->dtype));
		for (int d = 0; d < t->ndim; d++)
			putf(&o, d ? ",%lld" : "%lld", (long long)t->shape[d]);
		putf(&o, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
		     (unsigned long long)(offset + t->nbytes));
		offset += t->nbytes;
	}
	put(&o, "}", 1);
	/* safetensors allows trailing spaces: they make the data start 8-byte aligned */
	while (o.n % 8 != 0)
		put(&o, " ", 1);
	header = o.n - 8;
	if (header > DIN_MAX_HEADER) {
		free(o.p);
		return din_fail(err, DIN_ELIMIT, "A header may hold at most 100 MB.",
		                "header of %llu bytes exceeds the limit", (unsigned long long)header);
	}
	for (int i = 0; i < f->n_tensors; i++)
		if (f->tensors[i].nbytes > 0)
			put(&o, f->tensors[i].data, f->tensors[i].nbytes);
	if (o.failed) {
		free(o.p);
		return din_fail(err, DIN_ENOMEM, NULL, "out of memory writing a model file");
	}
	for (int i = 0; i < 8; i++)
		o.p[i] = (char)((header >> (8 * i)) & 0xFF);
	*out = (uint8_t *)o.p;
	*out_len = o.n;
	return DIN_OK;
}
