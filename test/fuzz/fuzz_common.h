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
	void *aligned;
} FuzzFixture;

/*
 * Loads and builds fixture `name`: 1 on success, 0 (with a warning on stderr) when it does not
 * build, so an architecture still under construction does not stop the other targets.
 */
int fuzz_fixture_load(FuzzFixture *fx, const char *name);

/*
 * The fixtures the config and scoring targets use (one per architecture variant family),
 * loaded on the first call; aborts when none builds. *n receives how many did.
 */
const FuzzFixture *fuzz_fixtures(int *n);

/*
 * Copies every tensor whose data is not aligned to its element size (file offsets need not
 * be) into one malloc'd block, as the glue does before din_model_build; returns the block.
 */
void *fuzz_realign(DinFile *f);

/* Scores one request with exact-size scratch; returns the status. */
DinStatus fuzz_score(const DinModel *m, const DinRequest *req, int want_weights);

/* A request with plausible inputs for m: some known ids, correct context/dense lengths. */
DinStatus fuzz_score_plausible(const DinModel *m);

#endif
