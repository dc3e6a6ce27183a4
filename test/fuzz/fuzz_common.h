/*
 * fuzz_common.h - helpers shared by the libFuzzer targets: fixture loading and one scoring
 * call sized exactly as din_model_scratch_floats says, so ASan sees any overrun of scratch.
 */
#ifndef DIN_FUZZ_COMMON_H
#define DIN_FUZZ_COMMON_H

#include "format/format.h"
#include "models/model.h"

#include <stddef.h>
#include <stdint.h>

/* A fixture read from test/fixtures (directory from DIN_FUZZ_FIXTURES, else relative). */
typedef struct FuzzFixture {
	uint8_t *buf;
	size_t len;
	DinFile file;
	DinModel *model;
} FuzzFixture;

/* Loads and builds fixture `name`; aborts when it cannot (the harness itself is broken). */
void fuzz_fixture_load(FuzzFixture *fx, const char *name);

/* Scores one request with exact-size scratch; returns the status. */
DinStatus fuzz_score(const DinModel *m, const DinRequest *req, int want_weights);

/* A request with plausible inputs for m: some known ids, correct context/dense lengths. */
DinStatus fuzz_score_plausible(const DinModel *m);

#endif
