/*
 * rank.c - din_rank: the top k candidates of one history, best first.
 *
 * It scores through the same batched path as the array form of din_score (one request, every
 * candidate at once), then orders by score descending, ties by ad id ascending, so a ranking
 * is reproducible whatever order the candidates came in.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/tuplestore.h"

#include "cache.h"
#include "score.h"

PG_FUNCTION_INFO_V1(din_rank);

/* din_rank(history, candidates, k, model, context, dense, history_time, at) */
#define ARG_K 2
#define RANK_SHIFT 1

typedef struct Ranked {
	double score;
	int64 ad_id;
} Ranked;

static int
ranked_cmp(const void *a, const void *b)
{
	const Ranked *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->ad_id != y->ad_id)
		return x->ad_id < y->ad_id ? -1 : 1;
	return 0;
}

Datum
din_rank(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
	ScoreState *state;
	const char *name;
	const DinCacheEntry *entry;
	DinRequest req;
	const void *data;
	const int64 *candidates;
	Ranked *order;
	int n, k;

	if (!PG_ARGISNULL(ARG_K) && PG_GETARG_INT32(ARG_K) < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("k must not be negative"),
		                errhint("Pass k => NULL to rank every candidate.")));
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(ARG_TARGET))
		return (Datum)0;
	state = score_get_state(fcinfo);
	name = score_model_name(fcinfo, state, ARG_MODEL + RANK_SHIFT);
	entry = cache_get(name, !state->called);
	state->called = true;
	score_read_request(fcinfo, RANK_SHIFT, name, entry->model, &req);
	n = score_array_elements(PG_GETARG_ARRAYTYPE_P(ARG_TARGET), "candidates", &data);
	k = PG_ARGISNULL(ARG_K) ? n : Min(PG_GETARG_INT32(ARG_K), n);
	if (n == 0 || k == 0)
		return (Datum)0;
	candidates = data;
	req.candidates = candidates;
	req.n_candidates = n;
	score_run(fcinfo, state, entry, &req, NULL);

	state->rank_order =
	    score_ensure(fcinfo, state->rank_order, &state->rank_cap, n, sizeof(Ranked));
	order = state->rank_order;
	for (int i = 0; i < n; i++) {
		order[i].score = state->scores[i];
		order[i].ad_id = candidates[i];
	}
	/* n log n on a few thousand candidates is noise next to scoring them */
	qsort(order, n, sizeof(Ranked), ranked_cmp);
	for (int i = 0; i < k; i++) {
		Datum values[3] = {Int64GetDatum(order[i].ad_id), Float8GetDatum(order[i].score),
		                   Int32GetDatum(i + 1)};
		bool nulls[3] = {false, false, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum)0;
}
