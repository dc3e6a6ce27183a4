/*
 * fuzz_file.c - libFuzzer target: arbitrary bytes as a model file. din_file_read, then
 * din_model_build, then (when it builds) one scoring call: whatever the bytes, each step
 * either succeeds or fails with a message, never crashes, leaks or invokes UB.
 */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly `size` bytes, so ASan catches any read past the end */
	uint8_t *buf = malloc(size ? size : 1);
	DinFile file;
	DinModel *model = NULL;
	DinError err = {0};

	memcpy(buf, data, size);
	if (din_file_read(buf, size, &file, &err) == DIN_OK) {
		void *aligned = fuzz_realign(&file);

		if (din_model_build(file.config, file.config_len, file.tensors, file.n_tensors, &model,
		                    &err) == DIN_OK) {
			fuzz_score_plausible(model);
			din_model_free(model);
		} else if (err.msg[0] == '\0')
			abort(); /* every failure names its cause */
		din_file_free(&file);
		free(aligned);
	} else if (err.msg[0] == '\0')
		abort();
	free(buf);
	return 0;
}
