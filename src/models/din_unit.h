/*
 * din_unit.h - the first layer of DIN's activation unit, split so that a request's work is
 * shared: z W^T with z = [q, k, q-k, q*k] is q (Wq+Wd)^T + k (Wk-Wd)^T + (q*k) Wp^T, the query
 * part once per candidate, the key part once per request, only Wp per (candidate, key) pair.
 * DIN runs the unit over the behaviours, DIEN over the extractor states. Internal to src/models.
 */
#ifndef DIN_MODELS_DIN_UNIT_H
#define DIN_MODELS_DIN_UNIT_H

#include "model.h"
#include "poll.h"

/* hk[T, U] = k (Wk-Wd)^T for keys[T, W]; tmp holds T x U floats. W = layers[0].in / 4. */
void din_unit_keys(const DinAttUnit *u, const float *keys, int T, float *hk, float *tmp);

/*
 * scores[nc T] = the unit's raw output (before any scaling or softmax) on
 * [q_c, k_t, q_c - k_t, q_c * k_t], row c T + t, for the queries q[nc, W] and keys[T, W] with
 * hk from din_unit_keys. Scratch: hq and tmp nc x U floats (U = layers[0].out), buf_a and
 * buf_b `rows` rows as wide as W and every layer. nc T <= rows, or nc = 1: a long history then
 * goes in pieces of `rows` keys. Each piece's work is reported to poll; returns nonzero when it
 * said stop.
 */
int din_unit_scores(const DinAttUnit *u, const float *q, int nc, const float *keys, const float *hk,
                    int T, int rows, float *hq, float *tmp, float *buf_a, float *buf_b,
                    float *scores, Poll *poll);

/* Multiply-adds of din_unit_scores per (query, key) pair. */
double din_unit_pair_work(const DinAttUnit *u);

#endif
