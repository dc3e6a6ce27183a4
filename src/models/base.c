/*
 * base.c - architecture base (Embedding&MLP): no interest. The tower reads the behaviours'
 * sum or mean, which the pipeline keeps in every history state, so the architecture keeps
 * nothing of its own.
 */
#include "arch.h"

static size_t
base_state_floats(const DinModel *m, int T)
{
	return 0;
}

static size_t
base_work_floats(const DinModel *m, int n_cand)
{
	return 0;
}

static DinStatus
base_history(const DinModel *m, const DinHistory *h, float *state, float *work, Poll *poll,
             DinError *err)
{
	return DIN_OK;
}

/* No interest; din_explain shows every kept behaviour the uniform weight 1/T. */
static DinStatus
base_candidates(const DinModel *m, const float *state, int T, const float *queries, int C,
                float *work, float *interest, float *weights, Poll *poll, DinError *err)
{
	for (size_t i = 0; weights != NULL && i < (size_t)C * T; i++)
		weights[i] = 1.0f / (float)T;
	return DIN_OK;
}

const DinArchOps din_ops_base = {
    .name = "base",
    .state_floats = base_state_floats,
    .work_floats = base_work_floats,
    .history = base_history,
    .candidates = base_candidates,
};
