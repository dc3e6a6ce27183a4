/*
 * score.c - din_score (one ad, or an array of candidates) and din_explain.
 *
 * Per-call state lives in fn_extra: the scratch buffer the core needs, sized by
 * din_model_scratch_floats and grown only when a call needs more, so scoring a large SELECT
 * allocates nothing per row after the first (beyond what PostgreSQL does to pass arrays), and
 * the history states later rows of the query may reuse (history_cache.h). A call is the core's
 * history part (din_model_history), unless an earlier call did it for the same inputs, then its
 * candidate part (din_model_score_state) in chunks.
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "cache.h"
#include "din.h"
#include "errors.h"
#include "score.h"

PG_FUNCTION_INFO_V1(din_score);
PG_FUNCTION_INFO_V1(din_score_array);
PG_FUNCTION_INFO_V1(din_explain);

ScoreState *
score_get_state(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
		fcinfo->flinfo->fn_extra =
		    MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ScoreState));
	return (ScoreState *)fcinfo->flinfo->fn_extra;
}

/* Grow *buf (in fn_mcxt) to at least need elements of size elem. */
void *
score_ensure(FunctionCallInfo fcinfo, void *buf, size_t *cap, size_t need, size_t elem)
{
	if (buf != NULL && *cap >= need)
		return buf;
	if (buf != NULL)
		pfree(buf);
	need = Max(need, 16);
	buf = MemoryContextAllocHuge(fcinfo->flinfo->fn_mcxt, need * elem);
	*cap = need;
	return buf;
}

/* The model named by the call, or din.default_model. */
const char *
score_model_name(FunctionCallInfo fcinfo, ScoreState *state, int model_arg)
{
	text *t;
	int len;

	if (PG_ARGISNULL(model_arg)) {
		if (din_default_model == NULL || din_default_model[0] == '\0')
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("no model given"),
			                errhint("Pass model => or SET din.default_model.")));
		return din_default_model;
	}
	t = PG_GETARG_TEXT_PP(model_arg);
	len = VARSIZE_ANY_EXHDR(t);
	if (len >= NAMEDATALEN)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
		                errmsg("model \"%s\" does not exist", text_to_cstring(t))));
	memcpy(state->name, VARDATA_ANY(t), len);
	state->name[len] = '\0';
	return state->name;
}

/* Elements of a one-dimensional array without NULLs (NULL data when empty). */
int
score_array_elements(ArrayType *a, const char *what, const void **data)
{
	if (ARR_NDIM(a) > 1)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
		                errmsg("%s must be a one-dimensional array", what)));
	if (ARR_NDIM(a) == 0) {
		*data = NULL;
		return 0;
	}
	if (array_contains_nulls(a))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
		                errmsg("%s must not contain NULL elements", what)));
	*data = ARR_DATA_PTR(a);
	return ARR_DIMS(a)[0];
}

static int
optional_array(FunctionCallInfo fcinfo, int arg, const char *what, const void **data)
{
	if (PG_ARGISNULL(arg)) {
		*data = NULL;
		return 0;
	}
	return score_array_elements(PG_GETARG_ARRAYTYPE_P(arg), what, data);
}

/*
 * A history holding the id the model's trainer padded its histories with (fields[].padding_id)
 * is most likely a padded row: din has no mask and would score the padding as behaviours. An
 * error under the item field's oov "error", else a NOTICE once per call site. Only the kept
 * behaviours matter, so at most max_len ids are read, and none without a padding id.
 */
static void
check_padding(FunctionCallInfo fcinfo, const char *name, const DinModel *m, const DinRequest *req)
{
	const DinField *f = &m->fields[m->behaviour[0]];
	bool error = f->oov == DIN_OOV_ERROR;
	ScoreState *state;
	int t;

	if (!f->has_padding_id)
		return;
	for (t = Max(req->history_len - m->max_len, 0); t < req->history_len; t++)
		if (req->history[t] == f->padding_id)
			break;
	if (t == req->history_len)
		return;
	state = score_get_state(fcinfo);
	if (!error && state->padding_noticed)
		return;
	state->padding_noticed = true;
	ereport(
	    error ? ERROR : NOTICE,
	    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
	     errmsg("history holds padding id " INT64_FORMAT " at position %d", f->padding_id, t + 1),
	     errdetail(error ? "Model \"%s\" was trained with id " INT64_FORMAT
	                       " as the padding of field %s, whose oov rule is \"error\"."
	                     : "Model \"%s\" was trained with id " INT64_FORMAT
	                       " as the padding of field %s; din scores it as a behaviour (this "
	                       "notice is shown once per call in the query).",
	               name, f->padding_id, f->name),
	     errhint(
	         "Pass only the real behaviours, oldest first: e.g. array_remove(history, " INT64_FORMAT
	         ").",
	         f->padding_id)));
}

/* Fill req (all but the candidates) from the arguments, checking them against the model. */
void
score_read_request(FunctionCallInfo fcinfo, int arg_shift, const char *name, const DinModel *m,
                   DinRequest *req)
{
	const void *data;
	int n;

	memset(req, 0, sizeof(*req));
	req->history_len = optional_array(fcinfo, ARG_HISTORY, "history", &data);
	req->history = data;
	check_padding(fcinfo, name, m, req);

	n = optional_array(fcinfo, ARG_CONTEXT + arg_shift, "context", &data);
	if (n != m->n_context)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("wrong number of context values for model \"%s\"", name),
		                errdetail_plural("The model has %d context field; %d were given.",
		                                 "The model has %d context fields; %d were given.",
		                                 m->n_context, m->n_context, n)));
	req->context = data;
	req->context_len = n;

	n = optional_array(fcinfo, ARG_DENSE + arg_shift, "dense", &data);
	if (n != m->n_dense)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("wrong number of dense values for model \"%s\"", name),
		                errdetail_plural("The model has %d dense feature; %d were given.",
		                                 "The model has %d dense features; %d were given.",
		                                 m->n_dense, m->n_dense, n)));
	for (int i = 0; i < n; i++)
		if (isnan(((const double *)data)[i]) || isinf(((const double *)data)[i]))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			                errmsg("dense must not contain NaN or infinity")));
	req->dense = data;
	req->dense_len = n;

	/* base, din and dien do not use times, but mismatched arrays are still a mistake */
	if (!PG_ARGISNULL(ARG_HISTORY_TIME + arg_shift)) {
		n = optional_array(fcinfo, ARG_HISTORY_TIME + arg_shift, "history_time", &data);
		if (n != req->history_len)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			                errmsg("history_time must have as many elements as history"),
			                errdetail("history has %d elements; history_time has %d.",
			                          req->history_len, n)));
		req->history_time = data;
	}
	req->at = PG_ARGISNULL(ARG_AT + arg_shift) ? GetCurrentStatementStartTimestamp()
	                                           : PG_GETARG_TIMESTAMPTZ(ARG_AT + arg_shift);
}

/*
 * Candidates scored per core call: at most SCORE_CHUNK (bounds the scratch), and at most about
 * SCORE_PAIRS (candidate, behaviour) pairs, so that an interrupt that is not an error, after
 * which the chunk is scored again, wastes little work. Cancels are polled inside the core.
 */
#define SCORE_CHUNK 4096
#define SCORE_PAIRS (1 << 18)

/*
 * The core's poll (DinRequest.interrupted): whether CHECK_FOR_INTERRUPTS would act now. The
 * core cannot take a longjmp, so it only asks; score_run services the interrupt once the core
 * has returned.
 */
static int
score_interrupted(void *arg)
{
	return INTERRUPTS_PENDING_CONDITION() && INTERRUPTS_CAN_BE_PROCESSED();
}

/*
 * The history state of req: that of an earlier call with equal history inputs under the same
 * model load, which is the state computing would give, to the bit; or computed now.
 */
static const float *
history_state(FunctionCallInfo fcinfo, ScoreState *state, const DinCacheEntry *entry,
              const DinRequest *req)
{
	const DinModel *m = entry->model;
	DinHistoryKey key;
	const float *kept;
	float *fill;
	DinError err;
	DinStatus st;

	if (state->histories == NULL)
		state->histories = history_cache_create(fcinfo->flinfo->fn_mcxt);
	din_model_history_key(m, req, &key);
	kept = history_cache_get(state->histories, entry->serial, &key,
	                         din_model_state_floats(m, key.len), &fill);
	if (kept != NULL)
		return kept;
	do {
		CHECK_FOR_INTERRUPTS();
		st = din_model_history(m, req, state->scratch, fill, &err);
	} while (st == DIN_EINTERRUPTED); /* as in score_run */
	if (st != DIN_OK)
		din_report(&err, NULL);
	history_cache_filled(state->histories);
	return fill;
}

void
score_run(FunctionCallInfo fcinfo, ScoreState *state, const DinCacheEntry *entry,
          const DinRequest *req, float *weights)
{
	const DinModel *m = entry->model;
	size_t cap;
	DinRequest all = *req;
	const float *history;
	int kept = Min(req->history_len, m->max_len);
	int chunk =
	    Min(Max(req->n_candidates, 1), Min(SCORE_CHUNK, Max(SCORE_PAIRS / Max(kept, 1), 1)));

	if (state->scratch_model != entry->serial || state->scratch_chunk != chunk) {
		state->scratch = score_ensure(fcinfo, state->scratch, &state->scratch_floats,
		                              din_model_scratch_floats(m, chunk), sizeof(float));
		state->scratch_model = entry->serial;
		state->scratch_chunk = chunk;
	}
	cap = state->scores_cap;
	state->scores =
	    score_ensure(fcinfo, state->scores, &cap, Max(req->n_candidates, 1), sizeof(double));
	state->scores_cap = (int)cap;
	all.interrupted = score_interrupted;
	history = history_state(fcinfo, state, entry, &all);
	for (int c0 = 0; c0 == 0 || c0 < req->n_candidates; c0 += chunk) {
		DinRequest sub = all;
		DinError err;
		DinStatus st;

		sub.candidates = req->candidates ? req->candidates + c0 : NULL;
		sub.n_candidates = Min(chunk, req->n_candidates - c0);
		do {
			CHECK_FOR_INTERRUPTS();
			st = din_model_score_state(m, &sub, history, state->scratch, state->scores + c0,
			                           weights ? weights + (size_t)c0 * kept : NULL, &err);
			/*
			 * Interrupted: CHECK_FOR_INTERRUPTS raises the cancel or timeout error; when the
			 * pending interrupt was not an error (a catch-up, a barrier) it returns, and the
			 * chunk is scored again from the start (the core keeps nothing between calls).
			 */
		} while (st == DIN_EINTERRUPTED);
		if (st != DIN_OK)
			din_report(&err, NULL);
	}
}

/*
 * din_score(history, ad_id, ...) - click probability of one ad (README, "SQL API"); NULL ad_id
 * gives NULL.
 */
Datum
din_score(PG_FUNCTION_ARGS)
{
	ScoreState *state;
	const char *name;
	const DinCacheEntry *entry;
	DinRequest req;
	int64 ad_id;

	if (PG_ARGISNULL(ARG_TARGET))
		PG_RETURN_NULL();
	state = score_get_state(fcinfo);
	name = score_model_name(fcinfo, state, ARG_MODEL);
	entry = cache_get(name, !state->called);
	state->called = true;
	score_read_request(fcinfo, 0, name, entry->model, &req);
	ad_id = PG_GETARG_INT64(ARG_TARGET);
	req.candidates = &ad_id;
	req.n_candidates = 1;
	score_run(fcinfo, state, entry, &req, NULL);
	PG_RETURN_FLOAT8(state->scores[0]);
}

/* din_score(history, candidates, ...) - scores in candidate order; NULL candidates give NULL. */
Datum
din_score_array(PG_FUNCTION_ARGS)
{
	ScoreState *state;
	const char *name;
	const DinCacheEntry *entry;
	DinRequest req;
	const void *candidates;
	int n;
	Datum *datums;
	ArrayType *result;

	if (PG_ARGISNULL(ARG_TARGET))
		PG_RETURN_NULL();
	state = score_get_state(fcinfo);
	name = score_model_name(fcinfo, state, ARG_MODEL);
	entry = cache_get(name, !state->called);
	state->called = true;
	score_read_request(fcinfo, 0, name, entry->model, &req);
	n = score_array_elements(PG_GETARG_ARRAYTYPE_P(ARG_TARGET), "candidates", &candidates);
	if (n == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(FLOAT8OID));
	req.candidates = candidates;
	req.n_candidates = n;
	score_run(fcinfo, state, entry, &req, NULL);

	datums = palloc(n * sizeof(Datum));
	for (int i = 0; i < n; i++)
		datums[i] = Float8GetDatum(state->scores[i]);
	result = construct_array(datums, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	PG_RETURN_ARRAYTYPE_P(result);
}

/*
 * din_explain - one row (pos, item_id, weight) per behaviour the model used for ad_id: the
 * most recent max_len of the history; pos is 1-based in the given array.
 */
Datum
din_explain(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
	ScoreState *state;
	const char *name;
	const DinCacheEntry *entry;
	DinRequest req;
	int64 ad_id;
	int kept;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(ARG_TARGET))
		return (Datum)0;
	state = score_get_state(fcinfo);
	name = score_model_name(fcinfo, state, ARG_MODEL);
	entry = cache_get(name, !state->called);
	state->called = true;
	score_read_request(fcinfo, 0, name, entry->model, &req);
	ad_id = PG_GETARG_INT64(ARG_TARGET);
	req.candidates = &ad_id;
	req.n_candidates = 1;
	kept = Min(req.history_len, entry->model->max_len);
	state->weights =
	    score_ensure(fcinfo, state->weights, &state->weights_cap, Max(kept, 1), sizeof(float));
	score_run(fcinfo, state, entry, &req, state->weights);

	for (int t = 0; t < kept; t++) {
		int index = req.history_len - kept + t;
		Datum values[3] = {Int32GetDatum(index + 1), Int64GetDatum(req.history[index]),
		                   Float8GetDatum((double)state->weights[t])};
		bool nulls[3] = {false, false, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum)0;
}
