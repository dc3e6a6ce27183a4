/*
 * fuzz_config.c - libFuzzer target: arbitrary config JSON against a real tensor set.
 *
 * Input: byte 0 picks a fixture (its tensors stay fixed), the rest is the din.config text.
 * Seeds are each fixture's own config, so mutations explore near-valid configs: wrong widths,
 * unknown keys, huge or negative numbers, deep nesting, non-UTF-8 strings.
 */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const FuzzFixture *fixtures;
	int n_fixtures;
	const FuzzFixture *fx;
	DinModel *model = NULL;
	DinError err = {0};
	char *config;

	fixtures = fuzz_fixtures(&n_fixtures);
	if (size < 1)
		return 0;
	fx = &fixtures[data[0] % n_fixtures];
	/* exactly size - 1 bytes and no terminator: the parser must honour config_len */
	config = malloc(size - 1 ? size - 1 : 1);
	memcpy(config, data + 1, size - 1);
	if (din_model_build(config, size - 1, fx->file.tensors, fx->file.n_tensors, &model, &err) ==
	    DIN_OK) {
		fuzz_score_plausible(model);
		din_model_free(model);
	} else if (err.msg[0] == '\0')
		abort();
	free(config);
	return 0;
}
