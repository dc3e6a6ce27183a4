/*
 * config_read.h - reading a din.config: typed keys and the tensors they name.
 *
 * Every reader names the key path ("tower.layers[1].activation.slope") or tensor at fault, so a
 * user fixing an exporter sees exactly which entry to change. Used by every config_*.c.
 */
#ifndef DIN_CONFIG_READ_H
#define DIN_CONFIG_READ_H

#include "format.h"
#include "json.h"

#define CFG_PATH 192 /* bytes of a key path or tensor name built for a message */

#define TRY(x)                                                                                     \
	do {                                                                                           \
		DinStatus try_ = (x);                                                                      \
		if (try_ != DIN_OK)                                                                        \
			return try_;                                                                           \
	} while (0)

/* A config being read against the tensors of its file. */
typedef struct Cfg {
	DinError *err;
	const DinTensor *tensors;
	int n_tensors;
	const DinTensor **by_name; /* sorted by name, for binary search */
	unsigned char *used;       /* [n_tensors]: bound by the config */
} Cfg;

/* Fill c->err with code and the printf message; returns code. */
DinStatus cfg_fail(Cfg *c, DinStatus code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* printf into buf[CFG_PATH]. */
const char *cfg_path(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "prefix.suffix" (a tensor name) into buf[CFG_PATH]. */
const char *cfg_name(char *buf, const char *prefix, const char *suffix);

/* "path.key", or "key" at the root. */
const char *cfg_join(char *buf, const char *path, const char *key);

/* obj must be an object whose keys are all in allowed (NULL-terminated). */
DinStatus cfg_object(Cfg *c, const JsonValue *obj, const char *path, const char *const *allowed);

/*
 * How cfg_int reads an integer key: absent, it is dflt, or an error when required; present, it
 * must be an integer from min to max or to limit, whichever is set: above max breaks a rule of
 * the format (DIN_ECORRUPT), above limit exceeds what din allows (DIN_ELIMIT; widths it
 * allocates for, lengths it loops over).
 */
typedef struct IntRule {
	int required;
	int64_t dflt;
	int64_t min;
	int64_t max;
	int64_t limit;
} IntRule;

DinStatus cfg_int(Cfg *c, const JsonValue *obj, const char *path, const char *key, IntRule rule,
                  int64_t *out);
DinStatus cfg_number(Cfg *c, const JsonValue *obj, const char *path, const char *key, double dflt,
                     double lo, double *out);
DinStatus cfg_bool(Cfg *c, const JsonValue *obj, const char *path, const char *key, int dflt,
                   int *out);
/* String key, or *out NULL when absent. */
DinStatus cfg_string(Cfg *c, const JsonValue *obj, const char *path, const char *key,
                     const char **out);
/* "config key <path.key> has unknown value ...": a string key that names nothing din knows. */
DinStatus cfg_unknown_value(Cfg *c, const char *path, const char *key, const char *value);
/* String key that must be one of names (NULL-terminated); *out is its index, dflt when absent. */
#define CFG_REQUIRED (-1) /* the dflt of a key that must be present */
DinStatus cfg_enum(Cfg *c, const JsonValue *obj, const char *path, const char *key,
                   const char *const *names, int dflt, int *out);

/* The tensor of this name (marked used), or NULL. */
const DinTensor *cfg_find(Cfg *c, const char *name);
/* A required tensor of exactly this dtype and shape. */
DinStatus cfg_need(Cfg *c, const char *name, DinDtype dtype, int ndim, int64_t d0, int64_t d1,
                   const DinTensor **out);
/* The same for an optional tensor: *out NULL when absent. */
DinStatus cfg_maybe(Cfg *c, const char *name, DinDtype dtype, int ndim, int64_t d0, int64_t d1,
                    const DinTensor **out);

/* "[d0, d1, ...]" of a shape, for a message. */
void cfg_shape_text(char *buf, size_t size, int ndim, const int64_t *shape);

#endif
