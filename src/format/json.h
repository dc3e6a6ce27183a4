/*
 * json.h - a small strict JSON parser for safetensors headers and din configs.
 *
 * Strict RFC 8259: UTF-8 validated, no trailing garbage, no duplicate object keys, depth at
 * most JSON_MAX_DEPTH. The whole tree lives in one arena owned by the JsonDoc, so a failed
 * parse or a finished caller frees everything with one json_free.
 */
#ifndef DIN_JSON_H
#define DIN_JSON_H

#include "../models/status.h"

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64
#define JSON_MAX_NUMBER 128 /* characters of one number literal */

typedef enum JsonType {
	JSON_NULL = 0,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT
} JsonType;

typedef struct JsonMember JsonMember;

typedef struct JsonValue {
	JsonType type;
	uint32_t n; /* string bytes, array items or object members */
	union {
		double number;
		const char *str; /* NUL-terminated, may hold \u0000 (then strlen < n) */
		struct JsonValue *items;
		JsonMember *members; /* sorted by key (bytewise), for lookup */
	} u;
} JsonValue;

struct JsonMember {
	const char *key;
	uint32_t key_len;
	JsonValue value;
};

typedef struct JsonDoc JsonDoc;

/*
 * json_parse - parse text[0..len) into *doc. `what` names the text in errors ("config",
 * "safetensors header"). On failure *doc is NULL and err says where and why (DIN_ECORRUPT),
 * or DIN_ENOMEM.
 */
DinStatus json_parse(const char *text, size_t len, const char *what, JsonDoc **doc, DinError *err);
const JsonValue *json_root(const JsonDoc *doc);
void json_free(JsonDoc *doc);

/* Member `key` of an object, or NULL (also when obj is not an object). */
const JsonValue *json_get(const JsonValue *obj, const char *key);

/* 1 when v is a number with an integral value in [lo, hi], storing it in *out. */
int json_int(const JsonValue *v, int64_t lo, int64_t hi, int64_t *out);

const char *json_type_name(JsonType t);

/* Length of the valid UTF-8 sequence starting at s[0..avail), or 0 when it is not valid. */
size_t json_utf8_len(const unsigned char *s, size_t avail);

#endif
