/*
 * dien.h - architecture dien (docs/FORMAT.md "architecture dien"): an extractor GRU over the
 * behaviours, the target's attention over its states, and the attention-driven evolution GRU.
 * Bound by src/format/config_dien.c, run through its DinArchOps (dien.c).
 */
#ifndef DIN_DIEN_H
#define DIN_DIEN_H

#include "../nn/gru.h"
#include "../nn/nn.h"

/* The interest evolution (docs/FORMAT.md "evolution"). */
typedef enum DinEvolution {
	DIN_EVO_AUGRU = 0,
	DIN_EVO_AGRU,
	DIN_EVO_AIGRU,
	DIN_EVO_GRU_POOLING
} DinEvolution;

typedef enum DinDienScore { DIN_DIEN_SCORE_UNIT = 0, DIN_DIEN_SCORE_BILINEAR } DinDienScore;

/* The unit DinModel.att (with att_softmax) scores [q, h, q-h, q*h]; att_width = H. */
typedef struct DinDien {
	DinGru extractor;
	DinGru evolution;
	DinEvolution evo;
	DinGruGate gate; /* augru: its form; agru: DIN_GATE_AGRU */
	DinDienScore score;
	DinLayer query;        /* out == 0: the target itself is the query */
	const float *bilinear; /* [H, E] */
} DinDien;

#endif
