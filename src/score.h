/*
 * score.h - per-call state and argument handling shared by the scoring functions (score.c,
 * rank.c), so din_rank reads its arguments and runs the model exactly as din_score does.
 */
#ifndef DIN_SCORE_H
#define DIN_SCORE_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/array.h"

#include "cache.h"
#include "history_cache.h"

/* Argument positions shared by din_score, din_explain and din_rank (k comes after target). */
enum { ARG_HISTORY, ARG_TARGET, ARG_MODEL, ARG_CONTEXT, ARG_DENSE, ARG_HISTORY_TIME, ARG_AT };

typedef struct ScoreState {
	bool called;            /* false on the first call of this query's function expression */
	bool padding_noticed;   /* the padding NOTICE was raised: once per call site, not per row */
	char name[NAMEDATALEN]; /* the model argument as a C string, without a palloc per row */
	float *scratch;
	size_t scratch_floats;
	uint64 scratch_model; /* the model load and chunk size scratch was last sized for */
	int scratch_chunk;
	HistoryCache *histories; /* states of earlier calls' histories */
	double *scores;
	int scores_cap;
	float *weights;
	size_t weights_cap;
	void *rank_order; /* rank.c: its sort buffer */
	size_t rank_cap;
} ScoreState;

/* The state in fn_extra, created zeroed on the first call. */
ScoreState *score_get_state(FunctionCallInfo fcinfo);

/* Grow *buf (in fn_mcxt) to at least need elements of size elem. */
void *score_ensure(FunctionCallInfo fcinfo, void *buf, size_t *cap, size_t need, size_t elem);

/* The model named by argument model_arg, or din.default_model. */
const char *score_model_name(FunctionCallInfo fcinfo, ScoreState *state, int model_arg);

/*
 * Elements of a one-dimensional array without NULLs (NULL data when empty); raises 2202E and
 * 22004 naming `what`.
 */
int score_array_elements(ArrayType *a, const char *what, const void **data);

/*
 * Fill req (all but the candidates) from the arguments, checking them against the model.
 * arg_shift is added to the positions of model, context, dense, history_time and at (din_rank
 * has k before them).
 */
void score_read_request(FunctionCallInfo fcinfo, int arg_shift, const char *name, const DinModel *m,
                        DinRequest *req);

/*
 * Score req's candidates with entry's model into state->scores; weights (may be NULL) as
 * din_model_score. The history's work comes from an earlier call of this call site with the
 * same model load and history inputs when one did it (history_cache.h).
 */
void score_run(FunctionCallInfo fcinfo, ScoreState *state, const DinCacheEntry *entry,
               const DinRequest *req, float *weights);

#endif
