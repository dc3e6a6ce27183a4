/*
 * dien.h - the interest of a DIEN model (docs/FORMAT.md "architecture dien"), called by the
 * scorer in din.c between gathering the behaviours and running the tower.
 */
#ifndef DIN_DIEN_H
#define DIN_DIEN_H

#include "model.h"
#include "poll.h"

/* Floats of work dien_interest needs for n_cand candidates. */
size_t dien_scratch_floats(const DinModel *m, int n_cand);

/*
 * interest[C, H] of each candidate from the T kept behaviour vectors keys[T, E] (oldest first)
 * and the candidates' target vectors queries[C, E]. weights (may be NULL) receives [C, T]
 * attention weights. T == 0 gives zero interests. Returns early, with nothing usable, when poll
 * says stop.
 */
void dien_interest(const DinModel *m, const float *keys, int T, const float *queries, int C,
                   float *work, float *interest, float *weights, Poll *poll);

#endif
