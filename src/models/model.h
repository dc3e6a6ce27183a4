/*
 * model.h - a bound, executable din model and the scoring entry points.
 *
 * A DinModel is plain data: the config as parsed and validated by src/format (config.c) and
 * pointers into weight tensors owned by the caller (a file buffer, a backend's cache, shared
 * memory). Scoring reads it only, so one model serves any number of concurrent callers.
 * No PostgreSQL headers.
 */
#ifndef DIN_MODEL_H
#define DIN_MODEL_H

#include "../nn/nn.h"
#include "status.h"

#include <stdint.h>

#define DIN_MAX_SLOTS 16 /* item id + side attributes */
#define DIN_MAX_NAME 64
#define DIN_MAX_LEN_LIMIT 10000

typedef enum DinArch {
	DIN_ARCH_BASE = 0,
	DIN_ARCH_DIN,
	DIN_ARCH_DIEN,
	DIN_ARCH_DSIN,
	DIN_ARCH_BST
} DinArch;

typedef enum DinOovKind { DIN_OOV_ERROR = 0, DIN_OOV_ZERO, DIN_OOV_ROW } DinOovKind;

/* raw id -> row; open addressing over a power-of-two table of row+1 (0 = empty). */
typedef struct DinIdMap {
	const int64_t *keys; /* key of each entry index */
	int64_t n;           /* number of keys */
	int64_t *slots;      /* [cap]: entry index + 1, 0 = empty */
	int64_t cap;         /* 0 = no hash table: no map, or a consecutive one */
	int consecutive;     /* keys[i] = keys[0] + i: the index is key - keys[0], no table */
} DinIdMap;

typedef struct DinField {
	char name[DIN_MAX_NAME + 1];
	int64_t rows;
	int dim;
	const float *weight; /* [rows, dim] */
	DinOovKind oov;
	int64_t oov_row;
	DinIdMap vocab;     /* cap == 0: the id is the row */
	int has_padding_id; /* the config names the raw id its trainer padded histories with */
	int64_t padding_id;
} DinField;

typedef enum DinInputKind {
	DIN_IN_TARGET = 0,
	DIN_IN_CONTEXT,
	DIN_IN_HISTORY_SUM,
	DIN_IN_HISTORY_MEAN,
	DIN_IN_ATTENTION,
	DIN_IN_TARGET_X_ATTENTION,
	DIN_IN_TARGET_X_HISTORY_SUM,
	DIN_IN_DENSE
} DinInputKind;

/* One tower input: `width` floats starting at `offset` of the source vector. */
typedef struct DinTowerInput {
	DinInputKind kind;
	int offset;
	int width;
} DinTowerInput;

typedef enum DinHeadKind { DIN_HEAD_SIGMOID = 0, DIN_HEAD_SOFTMAX2 } DinHeadKind;

/*
 * DIN's local activation unit: layers on z = [q, k, q-k, q*k] of W-wide q and k, then the score
 * h out_weight^T + out_bias. Per-slot units (attention.units) read the W-wide part of the
 * target and behaviour vectors that their slots make.
 */
typedef struct DinAttUnit {
	int n_layers;
	DinLayer *layers;
	const float *out_weight; /* [layers[last].out] */
	float out_bias;
	/*
	 * Set by din_model_build (config_pack.c): layers[0] regrouped as q (Wq+Wd)^T + b,
	 * k (Wk-Wd)^T and (q*k) Wp^T, each [U, W] and packed, so the query and key parts are one
	 * product each. q.weight NULL (a model filled by hand): din_unit.c splits layers[0] itself.
	 */
	DinLayer q, k, p;
	int n_slots; /* per-slot units: the behaviour slots read, ascending; 0 for m->att */
	int slots[DIN_MAX_SLOTS];
	int width; /* W: the sum of those slots' dims */
} DinAttUnit;

/* Which slots the DIN attention pools (docs/FORMAT.md "attention"). */
typedef enum DinAttPool {
	DIN_POOL_VALID = 0, /* the kept behaviours only */
	DIN_POOL_ALL_SLOTS  /* all max_len slots, the missing ones holding the padding key */
} DinAttPool;

/* What an empty history pools under DIN_POOL_VALID. */
typedef enum DinAttEmpty {
	DIN_EMPTY_ZERO = 0, /* u = 0 */
	DIN_EMPTY_PADDING   /* u = the padding key: a softmax over max_len masked slots */
} DinAttEmpty;

typedef struct DinModel {
	DinArch arch;
	int max_len;

	int n_fields;
	DinField *fields;

	/* items: raw item id -> attribute raw ids */
	int n_attr;
	DinIdMap items;            /* keys = item ids (items.id) */
	const int64_t *item_attrs; /* [items.n, n_attr] */

	/* slots: 0 = item id, k >= 1 = attribute k-1; each names a field index */
	int n_slots;
	int target[DIN_MAX_SLOTS];
	int behaviour[DIN_MAX_SLOTS];
	int slot_offset[DIN_MAX_SLOTS + 1]; /* offsets in the E-wide vector; [n_slots] = E */
	int E;

	int n_context;
	int *context;        /* field index of each context entry */
	int *context_offset; /* [n_context + 1] */
	int n_dense;

	/*
	 * Target attention: architecture din's block; dien's unit and bst's attention read-out use
	 * att, att_softmax and att_scale of it.
	 */
	DinAttUnit att;  /* the unit over all slots, or none when att_units is set */
	int att_n_units; /* > 0: one unit per group of behaviour slots (attention.units) */
	DinAttUnit *att_units;
	int att_softmax;
	int att_scale;
	DinAttPool att_pool;
	DinAttEmpty att_empty;
	int64_t att_pad_row; /* the behaviour tables' row a padding slot looks up */
	DinBN att_output_bn; /* n == 0: absent */
	DinLayer att_output; /* out == 0: absent (linear, no activation) */
	int att_width;       /* width of the interest each candidate feeds the tower */

	/* The other architectures' own parts: each NULL unless the model is of it. */
	struct DinDien *dien; /* dien.h: the two GRUs; att_width = H */
	struct DinDsin *dsin; /* dsin.h: sessions, extractor, Bi-LSTM, two units; att_width = E + W */
	struct DinBst *bst;   /* bst.h: positions and transformer blocks; att_width = D */

	/* tower */
	int n_inputs;
	DinTowerInput *inputs;
	int tower_in;
	DinBN tower_input_bn;
	int n_tower;
	DinLayer *tower;
	DinHeadKind head;
	int head_in;
	const float *head_weight; /* [1 or 2, head_in] */
	const float *head_bias;   /* [1 or 2] or NULL */
	const float *item_bias;   /* [rows of target field 0] or NULL */
	int head_column;
	float head_epsilon;

	void *owned; /* private to config.c: what din_model_free releases */
} DinModel;

/* One scoring request: one history, one or more candidates. */
typedef struct DinRequest {
	const int64_t *history; /* raw item ids, oldest first; NULL when history_len == 0 */
	int history_len;        /* may exceed max_len: the most recent max_len are used */
	const int64_t *context;
	int context_len;
	const double *dense;
	int dense_len;
	const int64_t *candidates;
	int n_candidates;
	/*
	 * Times for session and time-position models (dsin, bst), as PostgreSQL timestamptz:
	 * microseconds since 2000-01-01 UTC. history_time has history_len entries or is NULL;
	 * at is the target's time (the SQL `at`, by default the statement's start).
	 */
	const int64_t *history_time;
	int64_t at;
	/*
	 * NULL, or asked between pieces of about the same work (poll.h) whether to stop; a
	 * nonzero answer makes din_model_score return DIN_EINTERRUPTED promptly. It must not
	 * longjmp: it only answers, the caller acts once scoring has returned.
	 */
	int (*interrupted)(void *arg);
	void *interrupted_arg;
} DinRequest;

/* Floats of scratch din_model_score needs for up to n_candidates candidates. */
size_t din_model_scratch_floats(const DinModel *m, int n_candidates);

/*
 * din_model_score - probability of a click for each candidate.
 *
 * scores[n_candidates]. weights, when not NULL, receives [n_candidates, kept] attention
 * weights, kept = min(history_len, max_len), for the behaviours history[history_len - kept ..]
 * (base models write the uniform 1/kept). Returns DIN_OK or fills err (DIN_EINTERRUPTED when
 * req->interrupted said stop: then nothing written is usable).
 */
DinStatus din_model_score(const DinModel *m, const DinRequest *req, float *scratch, double *scores,
                          float *weights, DinError *err);

/*
 * din_model_score in two parts, so that requests sharing a history share its work. The
 * history part writes the request's history state: floats that depend only on the inputs
 * din_model_history_key names, holding no pointer (a copy serves as well). The candidate part
 * scores the candidates from such a state: the same scores and weights, bit for bit, as
 * din_model_score of a request with the same candidates and other inputs.
 */

/*
 * What a request's history state depends on: the kept behaviours, and their times and the
 * target's time when the model's architecture reads them (reads_time; else times is NULL and
 * at 0). Requests with equal keys have equal states. The pointers point into req.
 */
typedef struct DinHistoryKey {
	const int64_t *history; /* the kept behaviours: the last len of req->history */
	int len;
	int reads_time;
	const int64_t *times; /* their times (len), or NULL when not read or not given */
	int64_t at;
} DinHistoryKey;

void din_model_history_key(const DinModel *m, const DinRequest *req, DinHistoryKey *key);

/* Floats of the history state of a request keeping `kept` behaviours (kept <= max_len). */
size_t din_model_state_floats(const DinModel *m, int kept);

/*
 * din_model_history - req's history state into state[din_model_state_floats(m, kept)];
 * scratch as din_model_score's for any number of candidates. The candidates are not read.
 * Fails on what the history part reads (an unknown behaviour id under oov "error", missing or
 * unordered times) and with DIN_EINTERRUPTED as din_model_score does; the state is then not
 * usable.
 */
DinStatus din_model_history(const DinModel *m, const DinRequest *req, float *scratch, float *state,
                            DinError *err);

/* din_model_score_state - din_model_score's results from the state of req's history. */
DinStatus din_model_score_state(const DinModel *m, const DinRequest *req, const float *state,
                                float *scratch, double *scores, float *weights, DinError *err);

/*
 * key[E] = the behaviour vector of a padding slot: row `row` of every behaviour table (the
 * libraries pad with id 0 and look its row up like any other).
 */
void din_padding_key(const DinModel *m, int64_t row, float *key);

/* Row of raw id `id` in field f, or -1 when unknown (the caller applies the oov rule). */
int64_t din_field_row(const DinField *f, int64_t id);

/* Index of key in the map, or -1 (also for no map). */
int64_t din_idmap_find(const DinIdMap *map, int64_t key);

/* Whether the map indexes anything (a field without vocabulary has no map). */
static inline int
din_idmap_exists(const DinIdMap *map)
{
	return map->cap > 0 || map->consecutive;
}

/* Start loading the hash slot that finding key probes first (a consecutive map has none). */
void din_idmap_prefetch(const DinIdMap *map, int64_t key);

/*
 * din_idmap_build - index keys[0..n) (kept by reference; must outlive the map). Fails with
 * DIN_ECORRUPT on a duplicate key, naming `what` ("vocabulary of field item").
 */
DinStatus din_idmap_build(DinIdMap *map, const int64_t *keys, int64_t n, const char *what,
                          DinError *err);
void din_idmap_free(DinIdMap *map);

#endif
