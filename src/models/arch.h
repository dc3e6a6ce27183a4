/*
 * arch.h - one table of operations per architecture, the interface the scoring pipeline
 * (pipeline.c) calls.
 *
 * Scoring a request is a history part and a candidate part. The pipeline gathers the kept
 * behaviours' vectors and their sum and mean; the architecture's history part turns them
 * (with their times, when it reads them) into its history state: floats that depend on the
 * history inputs alone, laid out from the model and the number of kept behaviours, holding no
 * pointer, so a state can be copied and serve any later request with the same history inputs.
 * The candidate part reads only that state and the candidates' vectors, and writes each
 * candidate's interest for the tower. Adding an architecture is one file defining its
 * DinArchOps and one entry in arch.c's table (plus its config block in src/format).
 *
 * The names are the config's (docs/FORMAT.md, key `architecture`); src/format and the glue
 * read them here. Everything else is internal to src/models.
 */
#ifndef DIN_MODELS_ARCH_H
#define DIN_MODELS_ARCH_H

#include "model.h"
#include "poll.h"

#include <stddef.h>
#include <stdint.h>

/* The config's name of arch ("din"), or NULL for a value that is no architecture. */
const char *din_arch_name(DinArch arch);

/* The architecture called name: 1 and *arch set, or 0 when there is none of that name. */
int din_arch_from_name(const char *name, DinArch *arch);

/* What the pipeline hands an architecture's history part. */
typedef struct DinHistory {
	const float *keys;    /* [T, E]: the kept behaviours' vectors, oldest first */
	int T;                /* kept behaviours: min(history_len, max_len) */
	const int64_t *times; /* [T]: their times (DinRequest.history_time's tail), or NULL */
	int64_t at;           /* the target's time (DinRequest.at) */
} DinHistory;

typedef struct DinArchOps {
	const char *name; /* the config's name */
	/* Whether the history part reads times and at (NULL: it never does). */
	int (*reads_time)(const DinModel *m);
	/* Floats of the history state for T kept behaviours: non-decreasing in T. */
	size_t (*state_floats)(const DinModel *m, int T);
	/* Floats of work either part needs for up to n_cand candidates (n_cand >= 1). */
	size_t (*work_floats)(const DinModel *m, int n_cand);
	/*
	 * The history part: state[state_floats(m, h->T)] from h alone. Fails on inputs the
	 * architecture cannot read (missing or unordered times); when poll says stop it returns
	 * early, and the state is not usable.
	 */
	DinStatus (*history)(const DinModel *m, const DinHistory *h, float *state, float *work,
	                     Poll *poll, DinError *err);
	/*
	 * The candidate part: interest[C, m->att_width] of the candidates' vectors queries[C, E]
	 * from the state of T kept behaviours. weights (NULL, or [C, T]) receives what din_explain
	 * shows: each kept behaviour's weight for each candidate. When poll says stop it returns
	 * early, and nothing written is usable.
	 */
	DinStatus (*candidates)(const DinModel *m, const float *state, int T, const float *queries,
	                        int C, float *work, float *interest, float *weights, Poll *poll,
	                        DinError *err);
} DinArchOps;

/* Each architecture's table (base.c, din_attention.c, dien.c, dsin.c, bst.c). */
extern const DinArchOps din_ops_base, din_ops_din, din_ops_dien, din_ops_dsin, din_ops_bst;

/* The table of m's architecture. */
const DinArchOps *din_arch_ops(const DinModel *m);

/* DIN_ECORRUPT (XX001) for a value a score depends on that overflowed float (pipeline.c). */
DinStatus din_overflow(DinError *err, const char *what);

#endif
