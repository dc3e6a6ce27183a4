/*
 * json.c - strict JSON into an arena-allocated tree (see json.h).
 *
 * Arrays and objects are first collected in one scratch vector per nesting level, then copied
 * to the arena at their exact size, so a hostile header costs at most a small constant times
 * its length. Object members are sorted by key: lookups are binary searches and duplicates
 * are adjacent.
 */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_TEXT ((size_t)1 << 30)
#define ARENA_BLOCK ((size_t)64 * 1024)

typedef struct ArenaBlock {
	struct ArenaBlock *next;
	size_t used, cap;
	max_align_t data[];
} ArenaBlock;

struct JsonDoc {
	ArenaBlock *blocks;
	JsonValue root;
};

typedef struct Vec {
	char *data;
	size_t n, cap; /* in bytes */
} Vec;

typedef struct Parser {
	const unsigned char *s;
	size_t len, pos;
	int depth;
	const char *what;
	JsonDoc *doc;
	DinError *err;
	DinStatus status;
	Vec scratch[JSON_MAX_DEPTH + 1];
} Parser;

static void *
arena_alloc(JsonDoc *doc, size_t size)
{
	ArenaBlock *b = doc->blocks;

	size = (size + 7) & ~(size_t)7;
	if (b == NULL || b->cap - b->used < size) {
		size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;

		b = malloc(sizeof(ArenaBlock) + cap);
		if (b == NULL)
			return NULL;
		b->cap = cap;
		b->used = 0;
		b->next = doc->blocks;
		doc->blocks = b;
	}
	b->used += size;
	return (char *)b->data + b->used - size;
}

void
json_free(JsonDoc *doc)
{
	if (doc == NULL)
		return;
	while (doc->blocks != NULL) {
		ArenaBlock *next = doc->blocks->next;

		free(doc->blocks);
		doc->blocks = next;
	}
	free(doc);
}

const JsonValue *
json_root(const JsonDoc *doc)
{
	return &doc->root;
}

static DinStatus fail(Parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static DinStatus
fail(Parser *p, const char *fmt, ...)
{
	char reason[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	p->status =
	    din_fail(p->err, DIN_ECORRUPT, NULL, "invalid %s at byte %zu: %s", p->what, p->pos, reason);
	return p->status;
}

static DinStatus
no_memory(Parser *p)
{
	p->status = din_fail(p->err, DIN_ENOMEM, NULL, "out of memory parsing %s", p->what);
	return p->status;
}

static int
vec_push(Vec *v, const void *item, size_t size)
{
	if (v->cap - v->n < size) {
		size_t cap = v->cap ? v->cap * 2 : 256;
		char *data;

		while (cap - v->n < size)
			cap *= 2;
		data = realloc(v->data, cap);
		if (data == NULL)
			return 0;
		v->data = data;
		v->cap = cap;
	}
	memcpy(v->data + v->n, item, size);
	v->n += size;
	return 1;
}

static void
skip_ws(Parser *p)
{
	while (p->pos < p->len) {
		unsigned char c = p->s[p->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

/* Length of the valid UTF-8 sequence at s[0..avail), or 0 (Unicode table 3-7). */
size_t
json_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F; /* no encoded surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

static int
hex4(const unsigned char *s, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return 0;
	}
	*out = v;
	return 1;
}

static size_t
put_utf8(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* At the opening quote. Decodes into the arena: the result is never longer than the source. */
/* The escape at p->pos (a backslash before end) decoded onto out[*out_n]; p->pos past it. */
static DinStatus
parse_escape(Parser *p, size_t end, char *out, size_t *out_n)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	unsigned char c = p->s[p->pos + 1];
	const char *simple = c != '\0' ? strchr(from, c) : NULL;
	unsigned cp, lo;

	if (simple != NULL) {
		out[(*out_n)++] = to[simple - from];
		p->pos += 2;
		return DIN_OK;
	}
	if (c != 'u')
		return fail(p, "bad escape in string");
	p->pos += 2;
	if (end - p->pos < 4 || !hex4(p->s + p->pos, &cp))
		return fail(p, "bad \\u escape");
	p->pos += 4;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return fail(p, "lone low surrogate in \\u escape");
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (end - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
		    !hex4(p->s + p->pos + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
			return fail(p, "high surrogate without a low surrogate in \\u escape");
		p->pos += 6;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	*out_n += put_utf8(out + *out_n, cp);
	return DIN_OK;
}

static DinStatus
parse_string(Parser *p, const char **str, uint32_t *n)
{
	size_t start = ++p->pos, end = start, out_n = 0;
	char *out;

	while (end < p->len && p->s[end] != '"')
		end += (p->s[end] == '\\') ? 2 : 1;
	if (end >= p->len)
		return fail(p, "unterminated string");
	out = arena_alloc(p->doc, end - start + 1);
	if (out == NULL)
		return no_memory(p);
	while (p->pos < end) {
		unsigned char c = p->s[p->pos];
		size_t k;

		if (c < 0x20)
			return fail(p, "control character in string");
		if (c != '\\') {
			k = json_utf8_len(p->s + p->pos, end - p->pos);
			if (k == 0)
				return fail(p, "invalid UTF-8 in string");
			memcpy(out + out_n, p->s + p->pos, k);
			out_n += k;
			p->pos += k;
			continue;
		}
		if (parse_escape(p, end, out, &out_n) != DIN_OK)
			return p->status;
	}
	out[out_n] = '\0';
	p->pos = end + 1;
	*str = out;
	*n = (uint32_t)out_n;
	return DIN_OK;
}

static size_t
digits(Parser *p)
{
	size_t start = p->pos;

	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	return p->pos - start;
}

static DinStatus
parse_number(Parser *p, JsonValue *out)
{
	size_t start = p->pos;
	char buf[JSON_MAX_NUMBER + 1];
	char *endp;
	double v;

	if (p->s[p->pos] == '-')
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '0')
		p->pos++;
	else if (digits(p) == 0)
		return fail(p, "bad number");
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (digits(p) == 0)
			return fail(p, "bad number");
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (digits(p) == 0)
			return fail(p, "bad number");
	}
	if (p->pos - start > JSON_MAX_NUMBER) {
		p->pos = start;
		return fail(p, "number longer than %d characters", JSON_MAX_NUMBER);
	}
	/* strtod needs a terminator; the grammar above already fixed the token's extent */
	memcpy(buf, p->s + start, p->pos - start);
	buf[p->pos - start] = '\0';
	v = strtod(buf, &endp);
	if (*endp != '\0' || !isfinite(v)) {
		p->pos = start;
		return fail(p, "number out of range");
	}
	out->type = JSON_NUMBER;
	out->u.number = v;
	return DIN_OK;
}

static int
member_cmp(const void *a, const void *b)
{
	const JsonMember *x = a, *y = b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static DinStatus parse_value(Parser *p, JsonValue *out);

/* Past the opening bracket: true, and past the closing one, when the list is empty. */
static int
list_empty(Parser *p, char close)
{
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return 1;
	}
	return 0;
}

/* After an element: 1 past a ',' (another follows), 0 past the closing bracket, -1 neither. */
static int
list_next(Parser *p, char close)
{
	skip_ws(p);
	if (p->pos < p->len && (p->s[p->pos] == ',' || p->s[p->pos] == close))
		return p->s[p->pos++] == ',';
	return -1;
}

/* The elements collected in v copied to the arena at their exact size (NULL: out of memory). */
static void *
vec_to_arena(Parser *p, Vec *v)
{
	void *copy = arena_alloc(p->doc, v->n + 1);

	if (copy != NULL && v->n > 0)
		memcpy(copy, v->data, v->n);
	v->n = 0;
	return copy;
}

static DinStatus
parse_array(Parser *p, JsonValue *out)
{
	Vec *v = &p->scratch[p->depth];
	int more = 0;

	p->pos++;
	if (!list_empty(p, ']'))
		do {
			JsonValue item;

			if (parse_value(p, &item) != DIN_OK)
				return p->status;
			if (!vec_push(v, &item, sizeof(item)))
				return no_memory(p);
			more = list_next(p, ']');
		} while (more > 0);
	if (more < 0)
		return fail(p, "expected ',' or ']' in array");
	out->type = JSON_ARRAY;
	out->n = (uint32_t)(v->n / sizeof(JsonValue));
	out->u.items = vec_to_arena(p, v);
	return out->u.items != NULL ? DIN_OK : no_memory(p);
}

static DinStatus
parse_object(Parser *p, JsonValue *out)
{
	Vec *v = &p->scratch[p->depth];
	size_t start = p->pos, count;
	JsonMember *m;
	int more = 0;

	p->pos++;
	if (!list_empty(p, '}'))
		do {
			JsonMember member;

			skip_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != '"')
				return fail(p, "expected a string key in object");
			if (parse_string(p, &member.key, &member.key_len) != DIN_OK)
				return p->status;
			skip_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':')
				return fail(p, "expected ':' after object key");
			p->pos++;
			if (parse_value(p, &member.value) != DIN_OK)
				return p->status;
			if (!vec_push(v, &member, sizeof(member)))
				return no_memory(p);
			more = list_next(p, '}');
		} while (more > 0);
	if (more < 0)
		return fail(p, "expected ',' or '}' in object");
	count = v->n / sizeof(JsonMember);
	m = vec_to_arena(p, v);
	if (m == NULL)
		return no_memory(p);
	qsort(m, count, sizeof(JsonMember), member_cmp);
	for (size_t i = 1; i < count; i++)
		if (member_cmp(&m[i - 1], &m[i]) == 0) {
			p->pos = start;
			return fail(p, "duplicate key \"%.100s\" in object", m[i].key);
		}
	out->type = JSON_OBJECT;
	out->n = (uint32_t)count;
	out->u.members = m;
	return DIN_OK;
}

static DinStatus
parse_literal(Parser *p, const char *word, JsonType type, JsonValue *out)
{
	size_t n = strlen(word);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return fail(p, "unexpected character");
	p->pos += n;
	out->type = type;
	return DIN_OK;
}

static DinStatus
parse_value(Parser *p, JsonValue *out)
{
	DinStatus s;

	memset(out, 0, sizeof(*out));
	skip_ws(p);
	if (p->pos >= p->len)
		return fail(p, "unexpected end of text");
	switch (p->s[p->pos]) {
	case '{':
	case '[':
		if (p->depth >= JSON_MAX_DEPTH)
			return fail(p, "nesting deeper than %d", JSON_MAX_DEPTH);
		p->depth++;
		s = p->s[p->pos] == '{' ? parse_object(p, out) : parse_array(p, out);
		p->depth--;
		return s;
	case '"':
		out->type = JSON_STRING;
		return parse_string(p, &out->u.str, &out->n);
	case 't':
		return parse_literal(p, "true", JSON_TRUE, out);
	case 'f':
		return parse_literal(p, "false", JSON_FALSE, out);
	case 'n':
		return parse_literal(p, "null", JSON_NULL, out);
	default:
		if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
			return parse_number(p, out);
		return fail(p, "unexpected character");
	}
}

DinStatus
json_parse(const char *text, size_t len, const char *what, JsonDoc **doc, DinError *err)
{
	Parser p;

	*doc = NULL;
	if (len > JSON_MAX_TEXT)
		return din_fail(err, DIN_ELIMIT, NULL, "%s of %zu bytes is too long", what, len);
	memset(&p, 0, sizeof(p));
	p.s = (const unsigned char *)text;
	p.len = len;
	p.what = what;
	p.err = err;
	p.doc = calloc(1, sizeof(JsonDoc));
	if (p.doc == NULL)
		return din_fail(err, DIN_ENOMEM, NULL, "out of memory parsing %s", what);
	if (parse_value(&p, &p.doc->root) == DIN_OK) {
		skip_ws(&p);
		if (p.pos < p.len)
			fail(&p, "trailing characters after the value");
	}
	for (int i = 0; i <= JSON_MAX_DEPTH; i++)
		free(p.scratch[i].data);
	if (p.status != DIN_OK) {
		json_free(p.doc);
		return p.status;
	}
	*doc = p.doc;
	return DIN_OK;
}

const JsonValue *
json_get(const JsonValue *obj, const char *key)
{
	JsonMember probe;
	const JsonMember *hit;

	if (obj == NULL || obj->type != JSON_OBJECT)
		return NULL;
	probe.key = key;
	probe.key_len = (uint32_t)strlen(key);
	hit = bsearch(&probe, obj->u.members, obj->n, sizeof(JsonMember), member_cmp);
	return hit ? &hit->value : NULL;
}

int
json_int(const JsonValue *v, int64_t lo, int64_t hi, int64_t *out)
{
	double d;

	if (v == NULL || v->type != JSON_NUMBER)
		return 0;
	d = v->u.number;
	if (d != floor(d) || d < (double)lo || d > (double)hi)
		return 0;
	*out = (int64_t)d;
	return 1;
}

const char *
json_type_name(JsonType t)
{
	switch (t) {
	case JSON_NULL:
		return "null";
	case JSON_FALSE:
	case JSON_TRUE:
		return "a boolean";
	case JSON_NUMBER:
		return "a number";
	case JSON_STRING:
		return "a string";
	case JSON_ARRAY:
		return "an array";
	case JSON_OBJECT:
		return "an object";
	}
	return "unknown";
}
