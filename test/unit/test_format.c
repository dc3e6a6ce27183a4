/*
 * test_format.c - the model-file layer: strict JSON, the safetensors container, and the config
 * bound against its tensors. Each rejection asserts that the message names the culprit.
 */
#include "format/format.h"
#include "format/json.h"
#include "models/arch.h"
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>

/* ---- JSON ---- */

static DinStatus
parse_text(const char *text, DinError *err)
{
	JsonDoc *doc;
	DinStatus s = json_parse(text, strlen(text), "test", &doc, err);

	json_free(doc);
	return s;
}

static void
test_json_values_and_escapes(void)
{
	const char *text = " {\"b\": {\"c\": \"x\\u00e9\\ud83d\\ude00\\n\\\"\\/\\\\\\t\"},"
	                   " \"a\": [1, -2.5e3, 0.125, true, false, null, \"\"], \"\\u0041\": {}} ";
	JsonDoc *doc;
	DinError err;
	const JsonValue *root, *a, *c;
	int64_t x;

	CHECK_INT(json_parse(text, strlen(text), "test", &doc, &err), DIN_OK);
	root = json_root(doc);
	CHECK_INT(root->type, JSON_OBJECT);
	CHECK_INT(root->n, 3);
	a = json_get(root, "a");
	CHECK(a != NULL && a->type == JSON_ARRAY && a->n == 7);
	CHECK_CLOSE(a->u.items[0].u.number, 1.0, 0);
	CHECK_CLOSE(a->u.items[1].u.number, -2500.0, 0);
	CHECK_CLOSE(a->u.items[2].u.number, 0.125, 0);
	CHECK_INT(a->u.items[3].type, JSON_TRUE);
	CHECK_INT(a->u.items[4].type, JSON_FALSE);
	CHECK_INT(a->u.items[5].type, JSON_NULL);
	CHECK_INT(a->u.items[6].n, 0);
	CHECK(json_int(&a->u.items[0], 0, 10, &x) && x == 1);
	CHECK(!json_int(&a->u.items[2], 0, 10, &x)); /* not integral */
	CHECK(!json_int(&a->u.items[1], 0, 10, &x)); /* out of range */
	c = json_get(json_get(root, "b"), "c");
	CHECK(c != NULL && c->type == JSON_STRING);
	CHECK_INT(c->n, 12);
	CHECK(memcmp(c->u.str, "x\xc3\xa9\xf0\x9f\x98\x80\n\"/\\\t", 12) == 0);
	CHECK(json_get(root, "A") != NULL); /* \u0041 */
	CHECK(json_get(root, "zz") == NULL);
	CHECK(json_get(a, "a") == NULL); /* not an object */
	json_free(doc);
}

static void
test_json_rejects_invalid(void)
{
	static const char *const bad[] = {
	    "",
	    " ",
	    "{",
	    "[1,]",
	    "{\"a\":1,}",
	    "01",
	    "1.",
	    "-",
	    "+1",
	    ".5",
	    "1e",
	    "\"abc",
	    "{\"a\" 1}",
	    "{\"a\":1}x",
	    "{\"a\":1} {}",
	    "\"\\x\"",
	    "\"\\u12G4\"",
	    "\"\\ud800\"",
	    "\"\\udc00\"",
	    "\"\\ud800\\u0041\"",
	    "\"\x01\"",
	    "\"\xc0\xaf\"",
	    "\"\xed\xa0\x80\"",
	    "\"\xf4\x90\x80\x80\"",
	    "\"\xe2\x82\"",
	    "\"\xff\"",
	    "\"\x80\"",
	    "tru",
	    "nul",
	    "True",
	    "1e999",
	    "-1e999",
	    "NaN",
	    "'a'",
	    "{1:2}",
	    "[1 2]",
	    "\xef\xbb\xbf{}",
	};
	char longnum[200];
	DinError err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		DinStatus s = parse_text(bad[i], &err);

		if (s != DIN_ECORRUPT)
			fprintf(stderr, "  accepted invalid JSON #%zu\n", i);
		CHECK_INT(s, DIN_ECORRUPT);
		CHECK_STR_CONTAINS(err.msg, "invalid test at byte");
	}
	memset(longnum, '1', 150);
	longnum[150] = '\0';
	CHECK_INT(parse_text(longnum, &err), DIN_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, "longer than");
	CHECK_INT(parse_text("{\"k\":1,\"j\":2,\"k\":3}", &err), DIN_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, "duplicate key \"k\"");
	CHECK_INT(parse_text("\"a\xc3\x28\"", &err), DIN_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, "invalid UTF-8");
	/* an embedded NUL byte outside a string is garbage, inside one a control character */
	{
		JsonDoc *doc;

		CHECK_INT(json_parse("[1]\0", 4, "test", &doc, &err), DIN_ECORRUPT);
		CHECK_INT(json_parse("\"a\0\"", 4, "test", &doc, &err), DIN_ECORRUPT);
		CHECK_STR_CONTAINS(err.msg, "control character");
	}
}

static void
test_json_depth_limit(void)
{
	char text[2 * (JSON_MAX_DEPTH + 1) + 1];
	DinError err;
	int d;

	for (d = 0; d < JSON_MAX_DEPTH; d++) {
		text[d] = '[';
		text[JSON_MAX_DEPTH + d] = ']';
	}
	text[2 * JSON_MAX_DEPTH] = '\0';
	CHECK_INT(parse_text(text, &err), DIN_OK);
	for (d = 0; d <= JSON_MAX_DEPTH; d++) {
		text[d] = '[';
		text[JSON_MAX_DEPTH + 1 + d] = ']';
	}
	text[2 * (JSON_MAX_DEPTH + 1)] = '\0';
	CHECK_INT(parse_text(text, &err), DIN_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, "nesting deeper than 64");
}

/* ---- the safetensors container ---- */

/* A file from a header text and a data section (the header is used as is, unpadded). */
static uint8_t *
make_file(const char *header, const void *data, size_t data_len, size_t *len)
{
	size_t n = strlen(header);
	uint8_t *buf = malloc(8 + n + data_len + 1);

	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)(((uint64_t)n >> (8 * i)) & 0xFF);
	memcpy(buf + 8, header, n);
	if (data_len > 0)
		memcpy(buf + 8 + n, data, data_len);
	*len = 8 + n + data_len;
	return buf;
}

#define META "\"__metadata__\":{\"din.config\":\"{}\"}"

/* Reads header + data; returns the status and leaves the message in err. */
static DinStatus
read_header(const char *header, size_t data_len, DinError *err)
{
	uint8_t data[64] = {0};
	size_t len;
	uint8_t *buf = make_file(header, data, data_len, &len);
	DinFile f;
	DinStatus s = din_file_read(buf, len, &f, err);

	if (s == DIN_OK)
		din_file_free(&f);
	free(buf);
	return s;
}

static void
test_file_reads_valid_header(void)
{
	const char *header = "{\"b\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[8,24]},"
	                     "\"__metadata__\":{\"format\":\"pt\",\"din.config\":\"{\\\"x\\\":1}\"},"
	                     "\"a\":{\"shape\":[2,1],\"data_offsets\":[0,8],\"dtype\":\"F32\"},"
	                     "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[24,24]}}   ";
	uint8_t data[24];
	float a[2] = {1.5f, -2.0f};
	int64_t b[2] = {7, -9};
	size_t len;
	uint8_t *buf;
	DinFile f;
	DinError err;

	memcpy(data, a, 8);
	memcpy(data + 8, b, 16);
	buf = make_file(header, data, sizeof(data), &len);
	CHECK_INT(din_file_read(buf, len, &f, &err), DIN_OK);
	CHECK_INT(f.n_tensors, 3);
	CHECK(strcmp(f.config, "{\"x\":1}") == 0);
	CHECK_INT(f.config_len, 7);
	/* in file order */
	CHECK(strcmp(f.tensors[0].name, "a") == 0);
	CHECK(strcmp(f.tensors[1].name, "b") == 0);
	CHECK(strcmp(f.tensors[2].name, "z") == 0);
	CHECK_INT(f.tensors[0].dtype, DIN_F32);
	CHECK_INT(f.tensors[0].ndim, 2);
	CHECK_INT(f.tensors[0].shape[0], 2);
	CHECK_INT(f.tensors[0].shape[1], 1);
	CHECK_INT(f.tensors[0].nbytes, 8);
	CHECK(f.tensors[0].data == buf + len - 24);
	CHECK_CLOSE(((const float *)f.tensors[0].data)[1], -2.0, 0);
	CHECK_INT(f.tensors[1].dtype, DIN_I64);
	CHECK_INT(((const int64_t *)f.tensors[1].data)[1], -9);
	CHECK_INT(f.tensors[2].nbytes, 0);
	din_file_free(&f);
	free(buf);
	CHECK_INT(din_dtype_size(DIN_F32), 4);
	CHECK_INT(din_dtype_size(DIN_I64), 8);
	CHECK(strcmp(din_dtype_name(DIN_I64), "I64") == 0);
}

static void
test_file_rejects_bad_container(void)
{
	static const struct {
		const char *header;
		size_t data_len;
		DinStatus code;
		const char *needle;
	} cases[] = {
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,100]}," META "}", 8,
	     DIN_ECORRUPT, "tensor a has data_offsets [0, 100] outside"},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}," META "}",
	     12, DIN_ECORRUPT, "tensor b overlaps"},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}," META "}",
	     20, DIN_ECORRUPT, "gap of 4 bytes before tensor b"},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}," META "}", 12,
	     DIN_ECORRUPT, "gap of 4 bytes before tensor a"},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," META "}", 12,
	     DIN_ECORRUPT, "4 bytes after the last tensor"},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}," META "}", 8,
	     DIN_ECORRUPT, "tensor a has 8 bytes of data, its shape and dtype need 12"},
	    {"{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}," META "}", 8,
	     DIN_ECORRUPT, "tensor a has unsupported dtype F16"},
	    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}," META "}", 8,
	     DIN_ECORRUPT, "tensor w has 5 dimensions"},
	    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647,2147483647],"
	     "\"data_offsets\":[0,8]}," META "}",
	     8, DIN_ELIMIT, "tensor w is too large"},
	    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483648],\"data_offsets\":[0,8]}," META "}", 8,
	     DIN_ECORRUPT, "tensor w has an invalid dimension 0"},
	    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}," META "}", 8,
	     DIN_ECORRUPT, "tensor w has an invalid dimension 0"},
	    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}," META "}", 8,
	     DIN_ECORRUPT, "tensor w has data_offsets [8, 0]"},
	    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}," META "}", 8, DIN_ECORRUPT,
	     "tensor w has data_offsets that are not"},
	    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}," META "}", 8, DIN_ECORRUPT,
	     "tensor w lacks data_offsets"},
	    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}," META "}", 8,
	     DIN_ECORRUPT, "tensor w has unknown key x"},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	     "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}," META "}",
	     16, DIN_ECORRUPT, "duplicate key \"a\""},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	     "\"__metadata__\":{\"format\":\"pt\"}}",
	     8, DIN_ECORRUPT, "__metadata__ has no din.config"},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, DIN_ECORRUPT,
	     "no __metadata__"},
	    {"{\"__metadata__\":{\"din.config\":\"{}\",\"n\":3}}", 0, DIN_ECORRUPT,
	     "__metadata__ key n is not a string"},
	    {"{\"__metadata__\":[]}", 0, DIN_ECORRUPT, "__metadata__ is an array"},
	    {"{\"\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," META "}", 8,
	     DIN_ECORRUPT, "invalid UTF-8"},
	    {"{\"caf\xc3\xa9\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," META "}", 8,
	     DIN_ECORRUPT, "invalid tensor name \"caf??\""},
	    {"{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," META "}", 8,
	     DIN_ECORRUPT, "invalid tensor name"},
	    {"{\"a\\n\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," META "}", 8,
	     DIN_ECORRUPT, "invalid tensor name \"a?\""},
	    {"[]", 0, DIN_ECORRUPT, "safetensors header is an array, not an object"},
	    {"{" META "} x", 0, DIN_ECORRUPT, "trailing characters"},
	};
	DinError err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		DinStatus s = read_header(cases[i].header, cases[i].data_len, &err);

		CHECK_INT(s, cases[i].code);
		if (s != DIN_OK)
			CHECK_STR_CONTAINS(err.msg, cases[i].needle);
	}
}

static void
test_file_rejects_bad_length(void)
{
	uint8_t short_file[5] = {0};
	uint8_t *buf;
	size_t len;
	DinFile f;
	DinError err;

	CHECK_INT(din_file_read(short_file, sizeof(short_file), &f, &err), DIN_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, "too short");
	buf = make_file("{" META "}", NULL, 0, &len);
	buf[0] += 1; /* header length one past the end */
	CHECK_INT(din_file_read(buf, len, &f, &err), DIN_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, "runs past the end");
	buf[0] -= 1;
	buf[7] = 0x80; /* 2^63 */
	CHECK_INT(din_file_read(buf, len, &f, &err), DIN_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, "runs past the end");
	buf[7] = 0;
	CHECK_INT(din_file_read(buf, len - 1, &f, &err), DIN_ECORRUPT); /* truncated */
	CHECK_INT(din_file_read(buf, len, &f, &err), DIN_OK);
	CHECK_INT(f.n_tensors, 0);
	din_file_free(&f);
	free(buf);
}

static void
test_file_round_trip(void)
{
	float w[6] = {0.5f, -1.0f, 2.25f, 3.0f, -0.0f, 1e-30f};
	int64_t ids[3] = {INT64_MIN, 0, INT64_MAX};
	float scalar = 42.0f;
	DinTensor t[4] = {
	    {.name = "w", .dtype = DIN_F32, .ndim = 2, .shape = {2, 3}, .data = w, .nbytes = 24},
	    {.name = "ids", .dtype = DIN_I64, .ndim = 1, .shape = {3}, .data = ids, .nbytes = 24},
	    {.name = "empty", .dtype = DIN_F32, .ndim = 2, .shape = {0, 5}, .data = NULL, .nbytes = 0},
	    {.name = "s", .dtype = DIN_F32, .ndim = 0, .data = &scalar, .nbytes = 4},
	};
	char config[] = "{\"q\": \"a\\\"b\", \"n\": \"\xc3\xa9\xf0\x9f\x98\x80\"}\n\t\x01";
	DinFile in = {.config = config, .config_len = sizeof(config) - 1, .n_tensors = 4, .tensors = t};
	DinFile back;
	DinError err;
	uint8_t *buf;
	size_t len;
	uint64_t n = 0;

	CHECK_INT(din_file_write(&in, &buf, &len, &err), DIN_OK);
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | buf[i];
	CHECK_INT((8 + n) % 8, 0);
	CHECK_INT(len, 8 + n + 24 + 24 + 4);
	CHECK_INT(din_file_read(buf, len, &back, &err), DIN_OK);
	CHECK_INT(back.config_len, in.config_len);
	CHECK(memcmp(back.config, config, in.config_len + 1) == 0);
	CHECK_INT(back.n_tensors, 4);
	for (int i = 0; i < 4 && back.n_tensors == 4; i++) {
		CHECK(strcmp(back.tensors[i].name, t[i].name) == 0);
		CHECK_INT(back.tensors[i].dtype, t[i].dtype);
		CHECK_INT(back.tensors[i].ndim, t[i].ndim);
		CHECK(memcmp(back.tensors[i].shape, t[i].shape, sizeof(int64_t) * t[i].ndim) == 0);
		CHECK_INT(back.tensors[i].nbytes, t[i].nbytes);
		if (t[i].nbytes > 0)
			CHECK(memcmp(back.tensors[i].data, t[i].data, t[i].nbytes) == 0);
	}
	din_file_free(&back);
	free(buf);

	/* the writer refuses what the reader would reject */
	t[1].name = "w";
	CHECK_INT(din_file_write(&in, &buf, &len, &err), DIN_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "duplicate or reserved tensor name w");
	t[1].name = "ids";
	t[0].nbytes = 20;
	CHECK_INT(din_file_write(&in, &buf, &len, &err), DIN_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "tensor w has 20 bytes");
	t[0].nbytes = 24;
	config[3] = (char)0xff;
	CHECK_INT(din_file_write(&in, &buf, &len, &err), DIN_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "din.config is not valid UTF-8");
}

/* ---- the config ---- */

#define MAX_T 48

/* Tensors of a test model, with values in a pool the set owns. */
typedef struct TSet {
	DinTensor t[MAX_T];
	int n;
	float f[4096];
	int64_t i[256];
	size_t nf, ni;
} TSet;

static DinTensor *
find_t(TSet *s, const char *name)
{
	for (int k = 0; k < s->n; k++)
		if (strcmp(s->t[k].name, name) == 0)
			return &s->t[k];
	return NULL;
}

/* F32 of ndim 1 (d1 == 0) or 2, values small, nonzero and distinct. */
static DinTensor *
add_f(TSet *s, const char *name, int64_t d0, int64_t d1)
{
	DinTensor *t = &s->t[s->n++];
	int64_t count = d0 * (d1 ? d1 : 1);

	memset(t, 0, sizeof(*t));
	t->name = (char *)name;
	t->dtype = DIN_F32;
	t->ndim = d1 ? 2 : 1;
	t->shape[0] = d0;
	t->shape[1] = d1;
	t->data = &s->f[s->nf];
	t->nbytes = (size_t)count * 4;
	for (int64_t k = 0; k < count; k++)
		s->f[s->nf++] = 0.01f * (float)((k % 7) + 1);
	return t;
}

static DinTensor *
add_i(TSet *s, const char *name, int64_t d0, int64_t d1, const int64_t *vals)
{
	DinTensor *t = &s->t[s->n++];
	int64_t count = d0 * (d1 ? d1 : 1);

	memset(t, 0, sizeof(*t));
	t->name = (char *)name;
	t->dtype = DIN_I64;
	t->ndim = d1 ? 2 : 1;
	t->shape[0] = d0;
	t->shape[1] = d1;
	t->data = &s->i[s->ni];
	t->nbytes = (size_t)count * 8;
	memcpy(&s->i[s->ni], vals, (size_t)count * 8);
	s->ni += (size_t)count;
	return t;
}

static void
drop_t(TSet *s, const char *name)
{
	DinTensor *t = find_t(s, name);

	if (t != NULL)
		*t = s->t[--s->n];
}

static const char din_config[] =
    "{\"format\": 1, \"architecture\": \"din\", \"max_len\": 5,"
    " \"fields\": [{\"name\": \"item\", \"rows\": 6, \"dim\": 2},"
    "  {\"name\": \"cate\", \"rows\": 3, \"dim\": 2, \"oov\": 0},"
    "  {\"name\": \"user\", \"rows\": 4, \"dim\": 3, \"oov\": \"zero\"}],"
    " \"item\": {\"attributes\": [\"cate\"]},"
    " \"target\": [\"item\", \"cate\"], \"behaviour\": [\"item\", \"cate\"],"
    " \"context\": [\"user\"], \"dense\": 2,"
    " \"attention\": {\"type\": \"din\","
    "  \"layers\": [{\"units\": 3, \"activation\": {\"type\": \"dice\", \"eps\": 1e-8, \"affine\": "
    "true}},"
    "   {\"units\": 2, \"activation\": {\"type\": \"prelu\"}}],"
    "  \"normalization\": \"softmax\", \"scale\": true},"
    " \"tower\": {\"inputs\": [\"context\", \"target:1\", \"attention\", \"target*attention\", "
    "\"dense\"],"
    "  \"input_batch_norm\": {\"eps\": 0.001},"
    "  \"layers\": [{\"units\": 4, \"batch_norm\": {\"eps\": 1e-5}, \"activation\": {\"type\": "
    "\"relu\"}},"
    "   {\"units\": 3, \"bias\": false, \"activation\": {\"type\": \"leaky_relu\", \"slope\": "
    "0.2}}],"
    "  \"head\": {\"type\": \"sigmoid\", \"bias\": true, \"item_bias\": true}}}";

static void
din_tensors(TSet *s)
{
	static const int64_t vocab[6] = {10, 20, 30, 40, 50, 60};
	static const int64_t item_ids[3] = {10, 20, 30};
	static const int64_t item_attrs[3] = {0, 1, 2};

	memset(s, 0, sizeof(*s));
	add_f(s, "fields.item.weight", 6, 2);
	add_f(s, "fields.cate.weight", 3, 2);
	add_f(s, "fields.user.weight", 4, 3);
	add_i(s, "vocab.item", 6, 0, vocab);
	add_i(s, "items.id", 3, 0, item_ids);
	add_i(s, "items.attributes", 3, 1, item_attrs);
	add_f(s, "attention.mlp.0.weight", 3, 16);
	add_f(s, "attention.mlp.0.bias", 3, 0);
	add_f(s, "attention.mlp.0.act.alpha", 3, 1);
	add_f(s, "attention.mlp.0.act.running_mean", 3, 0);
	add_f(s, "attention.mlp.0.act.running_var", 3, 0);
	add_f(s, "attention.mlp.0.act.weight", 3, 0);
	add_f(s, "attention.mlp.0.act.bias", 3, 0);
	add_f(s, "attention.mlp.1.weight", 2, 3);
	add_f(s, "attention.mlp.1.bias", 2, 0);
	add_f(s, "attention.mlp.1.act.alpha", 1, 0);
	add_f(s, "attention.out.weight", 1, 2);
	add_f(s, "attention.out.bias", 1, 0);
	s->f[s->nf - 1] = 0.5f;
	add_f(s, "tower.input_bn.running_mean", 15, 0);
	add_f(s, "tower.input_bn.running_var", 15, 0);
	add_f(s, "tower.input_bn.weight", 15, 0);
	add_f(s, "tower.input_bn.bias", 15, 0);
	add_f(s, "tower.0.weight", 4, 15);
	add_f(s, "tower.0.bias", 4, 0);
	add_f(s, "tower.0.bn.running_mean", 4, 0);
	add_f(s, "tower.0.bn.running_var", 4, 0);
	add_f(s, "tower.1.weight", 3, 4);
	add_f(s, "head.weight", 1, 3);
	add_f(s, "head.bias", 1, 0);
	add_f(s, "head.item_bias", 6, 0);
}

static const char base_config[] =
    "{\"format\": 1, \"architecture\": \"base\", \"max_len\": 10,"
    " \"fields\": [{\"name\": \"item\", \"rows\": 5, \"dim\": 4}],"
    " \"target\": [\"item\"], \"behaviour\": [\"item\"],"
    " \"tower\": {\"inputs\": [\"history_mean\", \"target\"],"
    "  \"layers\": [{\"units\": 3, \"activation\": {\"type\": \"dice\", \"stats\": \"sample\", "
    "\"eps\": 0.001}}],"
    "  \"head\": {\"type\": \"softmax2\", \"column\": 1, \"epsilon\": 1e-8}}}";

static void
base_tensors(TSet *s)
{
	memset(s, 0, sizeof(*s));
	add_f(s, "fields.item.weight", 5, 4);
	add_f(s, "tower.0.weight", 3, 8);
	add_f(s, "tower.0.bias", 3, 0);
	add_f(s, "tower.0.act.alpha", 3, 0);
	add_f(s, "head.weight", 2, 3);
	add_f(s, "head.bias", 2, 0);
}

static DinStatus
build(const char *config, TSet *s, DinError *err)
{
	DinModel *m = NULL;
	DinStatus st = din_model_build(config, strlen(config), s->t, s->n, &m, err);

	din_model_free(m);
	return st;
}

/* config with the first `from` replaced by `to` (the test fails when `from` is absent). */
static char *
edit(const char *config, const char *from, const char *to)
{
	const char *at = strstr(config, from);
	char *out = malloc(strlen(config) + strlen(to) + 1);

	CHECK(at != NULL);
	if (at == NULL) {
		strcpy(out, config);
		return out;
	}
	memcpy(out, config, (size_t)(at - config));
	strcpy(out + (at - config), to);
	strcat(out, at + strlen(from));
	return out;
}

static void
expect_fail(const char *config, TSet *s, DinStatus code, const char *needle)
{
	DinError err;
	DinStatus st = build(config, s, &err);

	CHECK_INT(st, code);
	if (st != DIN_OK)
		CHECK_STR_CONTAINS(err.msg, needle);
}

static void
expect_edit_fail(const char *config, TSet *s, const char *from, const char *to, DinStatus code,
                 const char *needle)
{
	char *c = edit(config, from, to);

	expect_fail(c, s, code, needle);
	free(c);
}

static void
test_config_binds_din(void)
{
	TSet s;
	DinModel *m;
	DinError err;

	din_tensors(&s);
	CHECK_INT(din_model_build(din_config, strlen(din_config), s.t, s.n, &m, &err), DIN_OK);
	if (m == NULL) {
		fprintf(stderr, "  %s\n", err.msg);
		return;
	}
	CHECK_INT(m->arch, DIN_ARCH_DIN);
	CHECK_INT(m->max_len, 5);
	CHECK_INT(m->n_fields, 3);
	CHECK(strcmp(m->fields[2].name, "user") == 0);
	CHECK_INT(m->fields[0].rows, 6);
	CHECK(m->fields[0].weight == find_t(&s, "fields.item.weight")->data);
	CHECK_INT(m->fields[0].oov, DIN_OOV_ERROR);
	CHECK_INT(m->fields[1].oov, DIN_OOV_ROW);
	CHECK_INT(m->fields[1].oov_row, 0);
	CHECK_INT(m->fields[2].oov, DIN_OOV_ZERO);
	CHECK_INT(din_field_row(&m->fields[0], 50), 4);
	CHECK_INT(din_field_row(&m->fields[0], 4), -1);
	CHECK_INT(din_field_row(&m->fields[1], 2), 2); /* no vocabulary: the id is the row */
	CHECK_INT(m->n_attr, 1);
	CHECK_INT(din_idmap_find(&m->items, 20), 1);
	CHECK(m->item_attrs == find_t(&s, "items.attributes")->data);
	CHECK_INT(m->n_slots, 2);
	CHECK_INT(m->target[1], 1);
	CHECK_INT(m->behaviour[0], 0);
	CHECK_INT(m->slot_offset[1], 2);
	CHECK_INT(m->slot_offset[2], 4);
	CHECK_INT(m->E, 4);
	CHECK_INT(m->n_context, 1);
	CHECK_INT(m->context[0], 2);
	CHECK_INT(m->context_offset[1], 3);
	CHECK_INT(m->n_dense, 2);

	CHECK_INT(m->att.n_layers, 2);
	CHECK_INT(m->att.layers[0].in, 16);
	CHECK_INT(m->att.layers[0].out, 3);
	CHECK_INT(m->att.layers[0].act.kind, DIN_ACT_DICE);
	CHECK_INT(m->att.layers[0].act.units, 3);
	CHECK_INT(m->att.layers[0].act.alpha_n, 3);
	CHECK_INT(m->att.layers[0].act.dice_sample, 0);
	CHECK_CLOSE(m->att.layers[0].act.eps, 1e-8, 1e-6);
	CHECK(m->att.layers[0].act.weight == find_t(&s, "attention.mlp.0.act.weight")->data);
	CHECK(m->att.layers[0].act.mean == find_t(&s, "attention.mlp.0.act.running_mean")->data);
	CHECK(m->att.layers[0].act.beta == NULL);
	CHECK_INT(m->att.layers[0].bn.n, 0);
	CHECK_INT(m->att.layers[1].in, 3);
	CHECK_INT(m->att.layers[1].act.kind, DIN_ACT_PRELU);
	CHECK_INT(m->att.layers[1].act.alpha_n, 1);
	CHECK(m->att.out_weight == find_t(&s, "attention.out.weight")->data);
	CHECK_CLOSE(m->att.out_bias, 0.5, 0);
	CHECK_INT(m->att_softmax, 1);
	CHECK_INT(m->att_scale, 1);
	CHECK_INT(m->att_output_bn.n, 0);
	CHECK_INT(m->att_output.out, 0);
	CHECK_INT(m->att_width, 4);

	CHECK_INT(m->n_inputs, 5);
	CHECK_INT(m->inputs[0].kind, DIN_IN_CONTEXT);
	CHECK_INT(m->inputs[0].width, 3);
	CHECK_INT(m->inputs[1].kind, DIN_IN_TARGET);
	CHECK_INT(m->inputs[1].offset, 2);
	CHECK_INT(m->inputs[1].width, 2);
	CHECK_INT(m->inputs[2].kind, DIN_IN_ATTENTION);
	CHECK_INT(m->inputs[2].width, 4);
	CHECK_INT(m->inputs[3].kind, DIN_IN_TARGET_X_ATTENTION);
	CHECK_INT(m->inputs[4].kind, DIN_IN_DENSE);
	CHECK_INT(m->inputs[4].width, 2);
	CHECK_INT(m->tower_in, 15);
	CHECK_INT(m->tower_input_bn.n, 15);
	CHECK_CLOSE(m->tower_input_bn.eps, 1e-3, 1e-6);
	CHECK(m->tower_input_bn.weight == find_t(&s, "tower.input_bn.weight")->data);
	CHECK_INT(m->n_tower, 2);
	CHECK_INT(m->tower[0].in, 15);
	CHECK_INT(m->tower[0].bn.n, 4);
	CHECK(m->tower[0].bn.weight == NULL && m->tower[0].bn.bias == NULL);
	CHECK_INT(m->tower[0].act.kind, DIN_ACT_RELU);
	CHECK(m->tower[1].bias == NULL);
	CHECK_INT(m->tower[1].act.kind, DIN_ACT_LEAKY_RELU);
	CHECK_CLOSE(m->tower[1].act.slope, 0.2, 1e-6);
	CHECK_INT(m->head, DIN_HEAD_SIGMOID);
	CHECK_INT(m->head_in, 3);
	CHECK(m->head_bias == find_t(&s, "head.bias")->data);
	CHECK(m->item_bias == find_t(&s, "head.item_bias")->data);
	din_model_free(m);
}

static void
test_config_binds_base(void)
{
	TSet s;
	DinModel *m;
	DinError err;

	base_tensors(&s);
	CHECK_INT(din_model_build(base_config, strlen(base_config), s.t, s.n, &m, &err), DIN_OK);
	if (m == NULL) {
		fprintf(stderr, "  %s\n", err.msg);
		return;
	}
	CHECK_INT(m->arch, DIN_ARCH_BASE);
	CHECK_INT(m->E, 4);
	CHECK_INT(m->n_context, 0);
	CHECK_INT(m->n_attr, 0);
	CHECK_INT(m->items.cap, 0);
	CHECK(m->item_attrs == NULL);
	CHECK_INT(m->att.n_layers, 0);
	CHECK_INT(m->inputs[0].kind, DIN_IN_HISTORY_MEAN);
	CHECK_INT(m->inputs[1].kind, DIN_IN_TARGET);
	CHECK_INT(m->tower_in, 8);
	CHECK_INT(m->tower_input_bn.n, 0);
	CHECK_INT(m->tower[0].act.kind, DIN_ACT_DICE);
	CHECK_INT(m->tower[0].act.dice_sample, 1);
	CHECK(m->tower[0].act.mean == NULL);
	CHECK_INT(m->head, DIN_HEAD_SOFTMAX2);
	CHECK_INT(m->head_column, 1);
	CHECK_CLOSE(m->head_epsilon, 1e-8, 1e-6);
	CHECK(m->item_bias == NULL);
	din_model_free(m);
}

/* The names a config spells architectures with, both ways. */
static void
test_architecture_names(void)
{
	static const char *const names[] = {"base", "din", "dien", "dsin", "bst"};
	DinArch a;

	for (int i = 0; i < 5; i++) {
		CHECK(din_arch_from_name(names[i], &a));
		CHECK(strcmp(din_arch_name(a), names[i]) == 0);
	}
	CHECK_INT(din_arch_from_name("sasr", &a), 0);
	CHECK_INT(din_arch_from_name("DIN", &a), 0);
}

/* A file written from the tensors reads back and builds. */
static void
test_config_through_file(void)
{
	TSet s;
	DinFile in, back;
	DinModel *m;
	DinError err;
	uint8_t *buf;
	size_t len;

	din_tensors(&s);
	in.config = (char *)din_config;
	in.config_len = strlen(din_config);
	in.n_tensors = s.n;
	in.tensors = s.t;
	CHECK_INT(din_file_write(&in, &buf, &len, &err), DIN_OK);
	CHECK_INT(din_file_read(buf, len, &back, &err), DIN_OK);
	CHECK_INT(din_model_build(back.config, back.config_len, back.tensors, back.n_tensors, &m, &err),
	          DIN_OK);
	if (m != NULL)
		CHECK_CLOSE(m->fields[2].weight[5], 0.06, 1e-6);
	din_model_free(m);
	din_file_free(&back);
	free(buf);
}

static void
test_config_rejects_bad_keys(void)
{
	TSet s;

	din_tensors(&s);
	expect_edit_fail(din_config, &s, "\"slope\": 0.2", "\"sloap\": 0.2", DIN_ECORRUPT,
	                 "unknown config key tower.layers[1].activation.sloap");
	expect_edit_fail(din_config, &s, "\"dense\": 2", "\"dense\": 2, \"dien\": {}", DIN_ECORRUPT,
	                 "unknown config key dien");
	expect_edit_fail(din_config, &s, "\"format\": 1", "\"format\": 2", DIN_ECORRUPT,
	                 "config key format is 2");
	expect_edit_fail(din_config, &s, "\"format\": 1,", "", DIN_ECORRUPT,
	                 "config key format is missing");
	expect_edit_fail(din_config, &s, "\"type\": \"relu\"", "\"type\": \"swish\"", DIN_ECORRUPT,
	                 "config key tower.layers[0].activation.type has unknown value \"swish\"");
	expect_edit_fail(din_config, &s, "\"max_len\": 5", "\"max_len\": 10001", DIN_ELIMIT, "max_len");
	expect_edit_fail(din_config, &s, "\"max_len\": 5", "\"max_len\": 0", DIN_ECORRUPT, "max_len");
	expect_edit_fail(din_config, &s, "\"max_len\": 5", "\"max_len\": 5.5", DIN_ECORRUPT,
	                 "config key max_len must be an integer");
	expect_edit_fail(din_config, &s, "\"units\": 4", "\"units\": 65537", DIN_ELIMIT,
	                 "tower.layers[0].units");
	expect_edit_fail(din_config, &s, "\"rows\": 6", "\"rows\": 0", DIN_ECORRUPT, "fields[0].rows");
	expect_edit_fail(din_config, &s, "\"dim\": 3", "\"dim\": -3", DIN_ECORRUPT, "fields[2].dim");
	expect_edit_fail(din_config, &s, "\"oov\": 0", "\"oov\": 3", DIN_ECORRUPT,
	                 "config key fields[1].oov is 3, not a row in [0, 3)");
	expect_edit_fail(din_config, &s, "\"oov\": \"zero\"", "\"oov\": \"skip\"", DIN_ECORRUPT,
	                 "fields[2].oov");
	expect_edit_fail(din_config, &s, "\"name\": \"user\"", "\"name\": \"us-er\"", DIN_ECORRUPT,
	                 "fields[2].name");
	expect_edit_fail(din_config, &s, "\"name\": \"user\"", "\"name\": \"item\"", DIN_ECORRUPT,
	                 "fields[2].name repeats field item");
	expect_edit_fail(din_config, &s, "\"behaviour\": [\"item\", \"cate\"]",
	                 "\"behaviour\": [\"item\"]", DIN_ECORRUPT, "config key behaviour has 1");
	expect_edit_fail(din_config, &s, "\"behaviour\": [\"item\", \"cate\"]",
	                 "\"behaviour\": [\"item\", \"user\"]", DIN_ECORRUPT,
	                 "target[1] (cate, dim 2) and behaviour[1] (user, dim 3)");
	expect_edit_fail(din_config, &s, "\"context\": [\"user\"]", "\"context\": [\"usr\"]",
	                 DIN_ECORRUPT, "context[0] names unknown field \"usr\"");
	expect_edit_fail(din_config, &s, "\"scale\": true", "\"scale\": 1", DIN_ECORRUPT,
	                 "attention.scale must be true or false");
	expect_edit_fail(din_config, &s, "\"architecture\": \"din\"", "\"architecture\": \"base\"",
	                 DIN_ECORRUPT, "attention is not allowed with architecture base");
	expect_edit_fail(din_config, &s, "\"architecture\": \"din\"", "\"architecture\": \"sasr\"",
	                 DIN_ECORRUPT, "config key architecture has unknown value \"sasr\"");
	expect_edit_fail(din_config, &s, "\"architecture\": \"din\"", "\"architecture\": 1",
	                 DIN_ECORRUPT, "config key architecture must be a string");
	expect_edit_fail(din_config, &s, "\"architecture\": \"din\",", "", DIN_ECORRUPT,
	                 "config key architecture is missing");
	expect_edit_fail(din_config, &s, "\"activation\": {\"type\": \"relu\"}", "\"bias\": true",
	                 DIN_ECORRUPT, "tower.layers[0].activation is missing");
	expect_edit_fail(din_config, &s, "\"type\": \"sigmoid\", ", "\"column\": 1, ", DIN_ECORRUPT,
	                 "tower.head.column applies to softmax2 only");
	expect_fail("[1]", &s, DIN_ECORRUPT, "must be an object");
	expect_fail("{\"format\": 1", &s, DIN_ECORRUPT, "invalid config at byte");

	base_tensors(&s);
	expect_edit_fail(base_config, &s, "\"architecture\": \"base\"", "\"architecture\": \"din\"",
	                 DIN_ECORRUPT, "config key attention is missing");
}

static void
test_config_rejects_bad_inputs(void)
{
	TSet s;

	din_tensors(&s);
	expect_edit_fail(din_config, &s, "\"target:1\"", "\"targt\"", DIN_ECORRUPT,
	                 "tower.inputs[1] has unknown input \"targt\"");
	expect_edit_fail(din_config, &s, "\"target:1\"", "\"target:7\"", DIN_ECORRUPT,
	                 "tower.inputs[1] is target:7, beyond the 2 slots");
	expect_edit_fail(din_config, &s, "\"target:1\"", "\"target:01\"", DIN_ECORRUPT,
	                 "unknown input \"target:01\"");
	expect_edit_fail(din_config, &s, "\"target:1\"", "\"dense:1\"", DIN_ECORRUPT,
	                 "unknown input \"dense:1\"");
	expect_edit_fail(din_config, &s, "\"context\", \"target:1\"", "\"context:1\", \"target:1\"",
	                 DIN_ECORRUPT, "beyond the 1 context fields");
	expect_edit_fail(din_config, &s, "\"dense\": 2", "\"dense\": 0", DIN_ECORRUPT,
	                 "tower.inputs[4] is dense but the model has dense 0");
	expect_edit_fail(din_config, &s, "\"context\": [\"user\"], ", "", DIN_ECORRUPT,
	                 "tower.inputs[0] is context but the model has no context fields");
	/* attention.output of 3 units: target*attention and attention:k no longer fit */
	expect_edit_fail(din_config, &s, "\"scale\": true",
	                 "\"scale\": true, \"output\": {\"units\": 3}", DIN_ECORRUPT,
	                 "missing tensor attention.output.weight");
	add_f(&s, "attention.output.weight", 3, 4);
	add_f(&s, "attention.output.bias", 3, 0);
	expect_edit_fail(din_config, &s, "\"scale\": true",
	                 "\"scale\": true, \"output\": {\"units\": 3}", DIN_ECORRUPT,
	                 "tower.inputs[3] is target*attention but attention is 3 wide");
	{
		char *c1 =
		    edit(din_config, "\"scale\": true", "\"scale\": true, \"output\": {\"units\": 3}");
		char *c2 = edit(c1, "\"target*attention\"", "\"attention:1\"");

		expect_fail(c2, &s, DIN_ECORRUPT, "tower.inputs[3] is attention:1, not allowed after");
		free(c1);
		free(c2);
	}

	base_tensors(&s);
	expect_edit_fail(base_config, &s, "\"history_mean\"", "\"attention\"", DIN_ECORRUPT,
	                 "tower.inputs[0] is attention, which needs architecture din");
}

static void
test_config_rejects_bad_tensors(void)
{
	static const int64_t dup_vocab[6] = {10, 20, 30, 20, 50, 60};
	static const int64_t dup_items[3] = {10, 30, 30};
	TSet s;
	DinTensor *t;
	float *v;

	din_tensors(&s);
	drop_t(&s, "tower.0.bias");
	expect_fail(din_config, &s, DIN_ECORRUPT, "missing tensor tower.0.bias");

	din_tensors(&s);
	add_f(&s, "tower.9.weight", 2, 2);
	expect_fail(din_config, &s, DIN_ECORRUPT, "unexpected tensor tower.9.weight");

	din_tensors(&s);
	find_t(&s, "tower.0.weight")->shape[1] = 14;
	expect_fail(din_config, &s, DIN_ECORRUPT,
	            "tensor tower.0.weight has shape [4, 14], expected [4, 15]");

	din_tensors(&s);
	find_t(&s, "head.weight")->shape[0] = 2;
	expect_fail(din_config, &s, DIN_ECORRUPT,
	            "tensor head.weight has shape [2, 3], expected [1, 3]");

	din_tensors(&s);
	find_t(&s, "fields.cate.weight")->dtype = DIN_I64;
	expect_fail(din_config, &s, DIN_ECORRUPT,
	            "tensor fields.cate.weight has dtype I64, expected F32");

	din_tensors(&s);
	t = find_t(&s, "tower.0.weight");
	v = (float *)t->data;
	v[7] = NAN;
	expect_fail(din_config, &s, DIN_ECORRUPT,
	            "tensor tower.0.weight holds a non-finite value at index 7");
	v[7] = 0.0f;
	v[59] = -INFINITY;
	expect_fail(din_config, &s, DIN_ECORRUPT,
	            "tensor tower.0.weight holds a non-finite value at index 59");

	din_tensors(&s);
	find_t(&s, "vocab.item")->data = dup_vocab;
	expect_fail(din_config, &s, DIN_ECORRUPT, "vocab.item has duplicate id 20");

	din_tensors(&s);
	find_t(&s, "items.id")->data = dup_items;
	expect_fail(din_config, &s, DIN_ECORRUPT, "items.id has duplicate id 30");

	din_tensors(&s);
	drop_t(&s, "items.attributes");
	expect_fail(din_config, &s, DIN_ECORRUPT, "missing tensor items.attributes");

	din_tensors(&s);
	t = find_t(&s, "attention.mlp.0.act.alpha");
	t->shape[0] = 2;
	t->nbytes = 8;
	expect_fail(din_config, &s, DIN_ECORRUPT,
	            "tensor attention.mlp.0.act.alpha has shape [2, 1], expected [1], [3] or [3, 1]");

	din_tensors(&s);
	drop_t(&s, "tower.input_bn.bias");
	expect_fail(din_config, &s, DIN_ECORRUPT,
	            "tensor tower.input_bn.weight needs tensor tower.input_bn.bias");

	din_tensors(&s);
	drop_t(&s, "attention.mlp.0.act.running_var");
	expect_fail(din_config, &s, DIN_ECORRUPT, "missing tensor attention.mlp.0.act.running_var");

	/* a base model has no items table: its tensors are unexpected */
	base_tensors(&s);
	{
		static const int64_t ids[1] = {1};

		add_i(&s, "items.id", 1, 0, ids);
		expect_fail(base_config, &s, DIN_ECORRUPT, "unexpected tensor items.id");
	}
	base_tensors(&s);
	t = find_t(&s, "tower.0.act.alpha");
	t->ndim = 2;
	t->shape[1] = 1; /* [U, 1] is DeepCTR-Torch's layout: accepted */
	CHECK_INT(build(base_config, &s, NULL), DIN_OK);
}

/* Negative variances, and variance + eps <= 0, would make every score NaN or one constant. */
static void
test_config_rejects_bad_variances(void)
{
	TSet s;

	din_tensors(&s);
	((float *)find_t(&s, "attention.mlp.0.act.running_var")->data)[1] = -1.0f;
	expect_fail(din_config, &s, DIN_ECORRUPT,
	            "tensor attention.mlp.0.act.running_var holds the negative variance -1 at 1");

	din_tensors(&s);
	((float *)find_t(&s, "attention.mlp.0.act.running_var")->data)[2] = 0.0f;
	expect_edit_fail(din_config, &s, "\"eps\": 1e-8, \"affine\"", "\"eps\": 0, \"affine\"",
	                 DIN_ECORRUPT,
	                 "tensor attention.mlp.0.act.running_var holds variance 0 at 2, and with eps "
	                 "0 it is not positive");

	din_tensors(&s);
	((float *)find_t(&s, "tower.0.bn.running_var")->data)[0] = -1e-9f; /* var + eps > 0 */
	expect_fail(din_config, &s, DIN_ECORRUPT,
	            "tensor tower.0.bn.running_var holds the negative variance");

	/* eps below float's smallest value rounds to 0 */
	base_tensors(&s);
	expect_edit_fail(base_config, &s, "\"eps\": 0.001", "\"eps\": 1e-50", DIN_ECORRUPT,
	                 "config key tower.layers[0].activation.eps is 1e-50: it must be positive");
}

/* attention.units, pool, empty and padding_row (docs/FORMAT.md "attention"). */
static void
test_config_attention_units(void)
{
	TSet s;
	DinModel *m;
	DinError err;
	char *c;

	din_tensors(&s);
	c = edit(din_config, "\"normalization\": \"softmax\",",
	         "\"normalization\": \"softmax\", \"empty\": \"padding\", \"padding_row\": 2,");
	CHECK_INT(din_model_build(c, strlen(c), s.t, s.n, &m, &err), DIN_OK);
	if (m != NULL) {
		CHECK_INT(m->att_empty, DIN_EMPTY_PADDING);
		CHECK_INT(m->att_pool, DIN_POOL_VALID);
		CHECK_INT((int)m->att_pad_row, 2);
		CHECK_INT(m->att_n_units, 0);
	}
	din_model_free(m);
	free(c);
	expect_edit_fail(din_config, &s, "\"normalization\"", "\"padding_row\": 1, \"normalization\"",
	                 DIN_ECORRUPT, "attention.padding_row applies to pool all_slots or empty");
	expect_edit_fail(din_config, &s, "\"normalization\"",
	                 "\"pool\": \"all_slots\", \"padding_row\": 3, \"normalization\"", DIN_ECORRUPT,
	                 "config key attention.padding_row is 3 but behaviour field cate has 3 rows");
	expect_edit_fail(din_config, &s, "\"normalization\"",
	                 "\"pool\": \"all_slots\", \"empty\": \"zero\", \"normalization\"",
	                 DIN_ECORRUPT, "attention.empty applies to pool valid only");

	/* one unit per slot: tensors attention.units.i.*, first layer [3, 4 dim] */
	din_tensors(&s);
	for (int i = 0; i < 2; i++) {
		static const char *const names[2][9] = {
		    {"attention.units.0.mlp.0.weight", "attention.units.0.mlp.0.bias",
		     "attention.units.0.mlp.0.act.alpha", "attention.units.0.mlp.0.act.running_mean",
		     "attention.units.0.mlp.0.act.running_var", "attention.units.0.mlp.0.act.weight",
		     "attention.units.0.mlp.0.act.bias", "attention.units.0.out.weight",
		     "attention.units.0.out.bias"},
		    {"attention.units.1.mlp.0.weight", "attention.units.1.mlp.0.bias",
		     "attention.units.1.mlp.0.act.alpha", "attention.units.1.mlp.0.act.running_mean",
		     "attention.units.1.mlp.0.act.running_var", "attention.units.1.mlp.0.act.weight",
		     "attention.units.1.mlp.0.act.bias", "attention.units.1.out.weight",
		     "attention.units.1.out.bias"}};

		add_f(&s, names[i][0], 3, 8);
		for (int k = 1; k < 7; k++)
			add_f(&s, names[i][k], 3, 0);
		add_f(&s, names[i][7], 1, 3);
		add_f(&s, names[i][8], 1, 0);
	}
	for (int k = 0; k < 10; k++)
		drop_t(
		    &s,
		    k < 8
		        ? (const char *[]){"attention.mlp.0.weight", "attention.mlp.0.bias",
		                           "attention.mlp.0.act.alpha", "attention.mlp.0.act.running_mean",
		                           "attention.mlp.0.act.running_var", "attention.mlp.0.act.weight",
		                           "attention.mlp.0.act.bias", "attention.mlp.1.weight"}[k]
		        : (const char *[]){"attention.mlp.1.bias", "attention.mlp.1.act.alpha"}[k - 8]);
	drop_t(&s, "attention.out.weight");
	drop_t(&s, "attention.out.bias");
	c = edit(din_config, "},   {\"units\": 2, \"activation\": {\"type\": \"prelu\"}}],",
	         "}], \"units\": [[0], [1]], \"pool\": \"all_slots\",");
	CHECK_INT(din_model_build(c, strlen(c), s.t, s.n, &m, &err), DIN_OK);
	if (m != NULL) {
		CHECK_INT(m->att_n_units, 2);
		CHECK_INT(m->att_units[1].slots[0], 1);
		CHECK_INT(m->att_units[1].width, 2);
		CHECK_INT(m->att_units[0].layers[0].in, 8);
		CHECK_INT(m->att_pool, DIN_POOL_ALL_SLOTS);
	}
	din_model_free(m);
	expect_edit_fail(c, &s, "[[0], [1]]", "[[1], [1]]", DIN_ECORRUPT,
	                 "slot 1 is repeated or out of order");
	expect_edit_fail(c, &s, "[[0], [1]]", "[[0], [2]]", DIN_ECORRUPT,
	                 "attention.units[1][0] must be a behaviour slot in [0, 2)");
	free(c);
}

/* fields[].padding_id (docs/FORMAT.md "fields"): any raw id, on the history's item field only. */
static void
test_config_padding_id(void)
{
	static const char *const ok[] = {"0", "-1", "30", "9007199254740992"};
	TSet s;
	DinModel *m;
	DinError err;
	char *c;

	din_tensors(&s);
	CHECK_INT(din_model_build(din_config, strlen(din_config), s.t, s.n, &m, &err), DIN_OK);
	if (m != NULL)
		CHECK_INT(m->fields[0].has_padding_id, 0); /* absent: unknown */
	din_model_free(m);
	/* in the item's vocabulary (30) or not (0, -1): both are raw ids a trainer may pad with */
	for (int i = 0; i < 4; i++) {
		char to[96];

		snprintf(to, sizeof(to), "\"rows\": 6, \"padding_id\": %s", ok[i]);
		c = edit(din_config, "\"rows\": 6", to);
		CHECK_INT(din_model_build(c, strlen(c), s.t, s.n, &m, &err), DIN_OK);
		if (m != NULL) {
			CHECK_INT(m->fields[0].has_padding_id, 1);
			CHECK(m->fields[0].padding_id == strtoll(ok[i], NULL, 10));
		}
		din_model_free(m);
		free(c);
	}
	expect_edit_fail(din_config, &s, "\"rows\": 6", "\"rows\": 6, \"padding_id\": 0.5",
	                 DIN_ECORRUPT, "config key fields[0].padding_id must be an integer");
	expect_edit_fail(din_config, &s, "\"rows\": 6", "\"rows\": 6, \"padding_id\": \"0\"",
	                 DIN_ECORRUPT, "config key fields[0].padding_id must be an integer");
	expect_edit_fail(din_config, &s, "\"rows\": 6", "\"rows\": 6, \"padding_id\": 1e16",
	                 DIN_ECORRUPT, "config key fields[0].padding_id is 10000000000000000, at most");
	expect_edit_fail(din_config, &s, "\"oov\": 0", "\"oov\": 0, \"padding_id\": 0", DIN_ECORRUPT,
	                 "config key fields[1].padding_id is allowed only on the history's item field "
	                 "(behaviour[0], item)");
	expect_edit_fail(din_config, &s, "\"oov\": \"zero\"", "\"oov\": \"zero\", \"padding_id\": 0",
	                 DIN_ECORRUPT, "config key fields[2].padding_id is allowed only");
}

/*
 * A model whose finite weights overflow for an input fails that call with DIN_ECORRUPT
 * (XX001): with embeddings of 3e38, q*k is Inf, the unit's ReLU-free layers give NaN, and a
 * later clamp or ReLU used to turn every score into the same constant.
 */
static void
test_score_overflow_is_corrupt(void)
{
	static const int64_t history[3] = {10, 20, 30}, candidates[2] = {40, 50}, context[1] = {1};
	static const double dense[2] = {0.5, -0.5};
	DinRequest req = {.history = history,
	                  .history_len = 3,
	                  .context = context,
	                  .context_len = 1,
	                  .dense = dense,
	                  .dense_len = 2,
	                  .candidates = candidates,
	                  .n_candidates = 2};
	TSet s;
	DinModel *m = NULL;
	DinError err;
	double scores[2];
	float *scratch, *w;

	din_tensors(&s);
	CHECK_INT(din_model_build(din_config, strlen(din_config), s.t, s.n, &m, &err), DIN_OK);
	if (m == NULL)
		return;
	scratch = malloc(sizeof(float) * din_model_scratch_floats(m, 2));
	CHECK_INT(din_model_score(m, &req, scratch, scores, NULL, &err), DIN_OK);
	w = (float *)find_t(&s, "fields.item.weight")->data;
	for (int k = 0; k < 12; k++)
		w[k] = 3e38f;
	CHECK_INT(din_model_score(m, &req, scratch, scores, NULL, &err), DIN_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, "is not finite");
	CHECK_STR_CONTAINS(err.msg, "attention score");
	/* an empty history pools nothing, but the tower reads the candidate's category */
	req.history_len = 0;
	CHECK_INT(din_model_score(m, &req, scratch, scores, NULL, &err), DIN_OK);
	din_model_free(m);
	/* its first tower layer overflows to Inf; ReLU and sigmoid used to make that p = 1 */
	w = (float *)find_t(&s, "fields.cate.weight")->data;
	for (int k = 0; k < 6; k++)
		w[k] = 3e38f;
	w = (float *)find_t(&s, "tower.0.weight")->data;
	for (int k = 0; k < 60; k++)
		w[k] = 1e3f;
	CHECK_INT(din_model_build(din_config, strlen(din_config), s.t, s.n, &m, &err), DIN_OK);
	if (m == NULL)
		return;
	CHECK_INT(din_model_score(m, &req, scratch, scores, NULL, &err), DIN_ECORRUPT);
	CHECK_STR_CONTAINS(err.msg, "tower layer output is not finite");
	free(scratch);
	din_model_free(m);
}

void
suite_format(void)
{
	RUN(test_json_values_and_escapes);
	RUN(test_json_rejects_invalid);
	RUN(test_json_depth_limit);
	RUN(test_file_reads_valid_header);
	RUN(test_file_rejects_bad_container);
	RUN(test_file_rejects_bad_length);
	RUN(test_file_round_trip);
	RUN(test_config_binds_din);
	RUN(test_config_binds_base);
	RUN(test_architecture_names);
	RUN(test_config_through_file);
	RUN(test_config_rejects_bad_keys);
	RUN(test_config_rejects_bad_inputs);
	RUN(test_config_rejects_bad_tensors);
	RUN(test_config_rejects_bad_variances);
	RUN(test_config_attention_units);
	RUN(test_config_padding_id);
	RUN(test_score_overflow_is_corrupt);
}
