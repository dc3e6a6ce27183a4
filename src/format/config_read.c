/*
 * config_read.c - the typed readers of config keys and tensors (config_read.h).
 */
#include "config_read.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

DinStatus
cfg_fail(Cfg *c, DinStatus code, const char *fmt, ...)
{
	char msg[sizeof(((DinError *)0)->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return din_fail(c->err, code, NULL, "%s", msg);
}

const char *
cfg_path(char *buf, const char *fmt, ...)
{
	va_list ap;

	/* paths are built from short fixed parts and field names of at most 64 bytes: they fit */
	va_start(ap, fmt);
	vsnprintf(buf, CFG_PATH, fmt, ap);
	va_end(ap);
	return buf;
}

const char *
cfg_name(char *buf, const char *prefix, const char *suffix)
{
	return cfg_path(buf, "%s.%s", prefix, suffix);
}

const char *
cfg_join(char *buf, const char *path, const char *key)
{
	return cfg_path(buf, "%s%s%s", path, *path ? "." : "", key);
}

DinStatus
cfg_object(Cfg *c, const JsonValue *obj, const char *path, const char *const *allowed)
{
	char key[CFG_PATH];

	if (obj->type != JSON_OBJECT)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s must be an object, not %s",
		                *path ? path : "(root)", json_type_name(obj->type));
	for (uint32_t i = 0; i < obj->n; i++) {
		const char *k = obj->u.members[i].key;
		int known = 0;

		for (const char *const *a = allowed; *a != NULL && !known; a++)
			known = strcmp(k, *a) == 0;
		if (!known)
			return cfg_fail(c, DIN_ECORRUPT, "unknown config key %s",
			                cfg_join(key, path, obj->u.members[i].key));
	}
	return DIN_OK;
}

DinStatus
cfg_int(Cfg *c, const JsonValue *obj, const char *path, const char *key, IntRule rule, int64_t *out)
{
	const JsonValue *v = json_get(obj, key);
	int64_t max = rule.limit ? rule.limit : rule.max;
	char name[CFG_PATH];

	cfg_join(name, path, key);
	if (v == NULL) {
		if (rule.required)
			return cfg_fail(c, DIN_ECORRUPT, "config key %s is missing", name);
		*out = rule.dflt;
		return DIN_OK;
	}
	if (v->type != JSON_NUMBER || v->u.number != floor(v->u.number))
		return cfg_fail(c, DIN_ECORRUPT, "config key %s must be an integer", name);
	if (v->u.number > (double)max)
		return cfg_fail(c, rule.limit ? DIN_ELIMIT : DIN_ECORRUPT,
		                "config key %s is %.17g, at most %lld allowed", name, v->u.number,
		                (long long)max);
	if (v->u.number < (double)rule.min)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s is %.17g, at least %lld required", name,
		                v->u.number, (long long)rule.min);
	*out = (int64_t)v->u.number;
	return DIN_OK;
}

DinStatus
cfg_number(Cfg *c, const JsonValue *obj, const char *path, const char *key, double dflt, double lo,
           double *out)
{
	const JsonValue *v = json_get(obj, key);
	char name[CFG_PATH];

	if (v == NULL) {
		*out = dflt;
		return DIN_OK;
	}
	if (v->type != JSON_NUMBER)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s must be a number",
		                cfg_join(name, path, key));
	if (v->u.number < lo || (float)v->u.number != (float)v->u.number || isinf((float)v->u.number))
		return cfg_fail(c, DIN_ECORRUPT, "config key %s is %.17g, out of range",
		                cfg_join(name, path, key), v->u.number);
	*out = v->u.number;
	return DIN_OK;
}

DinStatus
cfg_bool(Cfg *c, const JsonValue *obj, const char *path, const char *key, int dflt, int *out)
{
	const JsonValue *v = json_get(obj, key);
	char name[CFG_PATH];

	if (v == NULL) {
		*out = dflt;
		return DIN_OK;
	}
	if (v->type != JSON_TRUE && v->type != JSON_FALSE)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s must be true or false",
		                cfg_join(name, path, key));
	*out = v->type == JSON_TRUE;
	return DIN_OK;
}

DinStatus
cfg_string(Cfg *c, const JsonValue *obj, const char *path, const char *key, const char **out)
{
	const JsonValue *v = json_get(obj, key);
	char name[CFG_PATH];

	*out = NULL;
	if (v == NULL)
		return DIN_OK;
	if (v->type != JSON_STRING)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s must be a string",
		                cfg_join(name, path, key));
	*out = v->u.str;
	return DIN_OK;
}

DinStatus
cfg_unknown_value(Cfg *c, const char *path, const char *key, const char *value)
{
	char name[CFG_PATH];

	return cfg_fail(c, DIN_ECORRUPT, "config key %s has unknown value \"%.64s\"",
	                cfg_join(name, path, key), value);
}

DinStatus
cfg_enum(Cfg *c, const JsonValue *obj, const char *path, const char *key, const char *const *names,
         int dflt, int *out)
{
	const char *s;
	char name[CFG_PATH];

	TRY(cfg_string(c, obj, path, key, &s));
	if (s == NULL && dflt == CFG_REQUIRED)
		return cfg_fail(c, DIN_ECORRUPT, "config key %s is missing", cfg_join(name, path, key));
	if (s == NULL) {
		*out = dflt;
		return DIN_OK;
	}
	for (int i = 0; names[i] != NULL; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return DIN_OK;
		}
	return cfg_unknown_value(c, path, key, s);
}

static int
by_name_cmp(const void *a, const void *b)
{
	const char *x = a;
	const DinTensor *const *y = b;

	return strcmp(x, (*y)->name);
}

const DinTensor *
cfg_find(Cfg *c, const char *name)
{
	const DinTensor **hit;

	hit = bsearch(name, c->by_name, (size_t)c->n_tensors, sizeof(*c->by_name), by_name_cmp);
	if (hit == NULL)
		return NULL;
	c->used[*hit - c->tensors] = 1;
	return *hit;
}

void
cfg_shape_text(char *buf, size_t size, int ndim, const int64_t *shape)
{
	size_t n = (size_t)snprintf(buf, size, "[");

	for (int d = 0; d < ndim && n < size; d++)
		n += (size_t)snprintf(buf + n, size - n, d ? ", %lld" : "%lld", (long long)shape[d]);
	if (n < size)
		snprintf(buf + n, size - n, "]");
}

static DinStatus
check_tensor(Cfg *c, const DinTensor *t, DinDtype dtype, int ndim, int64_t d0, int64_t d1)
{
	int64_t want[2] = {d0, d1};
	char got_s[96], want_s[64];

	if (t->dtype != dtype)
		return cfg_fail(c, DIN_ECORRUPT, "tensor %s has dtype %s, expected %s", t->name,
		                din_dtype_name(t->dtype), din_dtype_name(dtype));
	if (t->ndim != ndim || t->shape[0] != d0 || (ndim > 1 && t->shape[1] != d1)) {
		cfg_shape_text(got_s, sizeof(got_s), t->ndim, t->shape);
		cfg_shape_text(want_s, sizeof(want_s), ndim, want);
		return cfg_fail(c, DIN_ECORRUPT, "tensor %s has shape %s, expected %s", t->name, got_s,
		                want_s);
	}
	return DIN_OK;
}

DinStatus
cfg_maybe(Cfg *c, const char *name, DinDtype dtype, int ndim, int64_t d0, int64_t d1,
          const DinTensor **out)
{
	*out = cfg_find(c, name);
	return *out ? check_tensor(c, *out, dtype, ndim, d0, d1) : DIN_OK;
}

DinStatus
cfg_need(Cfg *c, const char *name, DinDtype dtype, int ndim, int64_t d0, int64_t d1,
         const DinTensor **out)
{
	TRY(cfg_maybe(c, name, dtype, ndim, d0, d1, out));
	if (*out == NULL)
		return cfg_fail(c, DIN_ECORRUPT, "missing tensor %s", name);
	return DIN_OK;
}
