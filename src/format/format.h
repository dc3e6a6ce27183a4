/*
 * format.h - din model files (docs/FORMAT.md): the safetensors container and the config.
 *
 * No PostgreSQL headers. Everything returns a DinStatus and fills a DinError naming the key or
 * tensor at fault; nothing longjmps. Memory comes from malloc and is released by the matching
 * free function, also on error.
 */
#ifndef DIN_FORMAT_H
#define DIN_FORMAT_H

#include "../models/model.h"

#include <stddef.h>
#include <stdint.h>

/* Limits of the container (docs/FORMAT.md "Rules of the container"); the catalog's rows too. */
#define DIN_MAX_HEADER (100 * 1024 * 1024)
#define DIN_MAX_DIMS 4
#define DIN_MAX_DIM INT64_C(2147483647)          /* one dimension */
#define DIN_MAX_TENSOR_BYTES ((uint64_t)1 << 40) /* one tensor's data */

typedef enum DinDtype { DIN_F32 = 0, DIN_I64 = 1 } DinDtype;

typedef struct DinTensor {
	char *name;
	DinDtype dtype;
	int ndim;
	int64_t shape[DIN_MAX_DIMS];
	const void *data; /* little-endian, row-major; not owned */
	size_t nbytes;
} DinTensor;

/* A model as a set of tensors plus its config JSON text. */
typedef struct DinFile {
	char *config; /* NUL-terminated JSON text of din.config */
	size_t config_len;
	int n_tensors;
	DinTensor *tensors; /* names owned, data points into the source buffer */
} DinFile;

/*
 * din_file_read - parse a safetensors buffer (container rules of FORMAT.md). Tensor data
 * point into buf, which must outlive *out. Does not validate the config (din_model_build does).
 */
DinStatus din_file_read(const uint8_t *buf, size_t len, DinFile *out, DinError *err);

/* din_file_write - serialize to a new malloc'd buffer; tensors in the given order. */
DinStatus din_file_write(const DinFile *f, uint8_t **out, size_t *out_len, DinError *err);

void din_file_free(DinFile *f);

/* Bytes of one element. */
size_t din_dtype_size(DinDtype dtype);
/* "F32", "I64": the names of the safetensors header. */
const char *din_dtype_name(DinDtype dtype);
/* 1 and *dtype when name is a dtype's name, else 0. */
int din_dtype_from_name(const char *name, DinDtype *dtype);

/*
 * din_model_build - validate the config and tensors against each other (FORMAT.md) and bind
 * a model whose weight pointers point into the tensors' data (not copied: keep them alive).
 * Checks every float is finite, every id tensor is consistent (unique vocab/items ids, oov
 * rows in range). On success *out is malloc'd; free with din_model_free.
 */
DinStatus din_model_build(const char *config, size_t config_len, const DinTensor *tensors,
                          int n_tensors, DinModel **out, DinError *err);

void din_model_free(DinModel *m);

#endif
