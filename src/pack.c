/*
 * pack.c - the packed block of a model (see pack.h).
 *
 * Layout: PackHeader, n_tensors PackTensor descriptors, the config and the tensor names (NUL
 * terminated), then each tensor's data at an 8-byte aligned offset, so float and int64 loads
 * from it are aligned whatever the block's address (dsa_allocate returns MAXALIGNed memory).
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "pack.h"

#define PACK_MAGIC 0x316b6170u /* "pak1" */

typedef struct PackHeader {
	uint32 magic;
	int32 n_tensors;
	int64 generation;
	int32 version;
	TransactionId xmin;
	uint64 config_off;
	uint64 config_len;
} PackHeader;

typedef struct PackTensor {
	uint64 name_off;
	int32 dtype;
	int32 ndim;
	int64 shape[DIN_MAX_DIMS];
	uint64 data_off;
	uint64 nbytes;
} PackTensor;

/* Offsets of the strings and of the first tensor's data for stored. */
static Size
strings_end(const DinStored *stored)
{
	Size off = sizeof(PackHeader) + stored->n_tensors * sizeof(PackTensor);

	off += stored->config_len + 1;
	for (int i = 0; i < stored->n_tensors; i++)
		off += strlen(stored->tensors[i].name) + 1;
	return off;
}

Size
pack_size(const DinStored *stored)
{
	Size off = TYPEALIGN(8, strings_end(stored));

	for (int i = 0; i < stored->n_tensors; i++)
		off += TYPEALIGN(8, stored->tensors[i].nbytes);
	return off;
}

void
pack_write(void *dst, const DinStored *stored)
{
	char *base = dst;
	PackHeader *h = dst;
	PackTensor *pt = (PackTensor *)(base + sizeof(PackHeader));
	Size str = sizeof(PackHeader) + stored->n_tensors * sizeof(PackTensor);
	Size data = TYPEALIGN(8, strings_end(stored));

	h->magic = PACK_MAGIC;
	h->n_tensors = stored->n_tensors;
	h->generation = stored->generation;
	h->xmin = stored->xmin;
	h->version = stored->version;
	h->config_off = str;
	h->config_len = stored->config_len;
	memcpy(base + str, stored->config, stored->config_len);
	base[str + stored->config_len] = '\0';
	str += stored->config_len + 1;

	for (int i = 0; i < stored->n_tensors; i++) {
		const DinTensor *t = &stored->tensors[i];
		Size name_len = strlen(t->name) + 1;

		memset(&pt[i], 0, sizeof(PackTensor));
		pt[i].name_off = str;
		memcpy(base + str, t->name, name_len);
		str += name_len;
		pt[i].dtype = t->dtype;
		pt[i].ndim = t->ndim;
		for (int d = 0; d < t->ndim; d++)
			pt[i].shape[d] = t->shape[d];
		pt[i].data_off = data;
		pt[i].nbytes = t->nbytes;
		if (t->nbytes > 0)
			memcpy(base + data, t->data, t->nbytes);
		data += TYPEALIGN(8, t->nbytes);
	}
}

void
pack_read(const void *block, MemoryContext mcxt, DinStored *out)
{
	const char *base = block;
	const PackHeader *h = block;
	const PackTensor *pt = (const PackTensor *)(base + sizeof(PackHeader));

	if (h->magic != PACK_MAGIC)
		elog(ERROR, "din shared model block is damaged");
	out->config = (char *)base + h->config_off;
	out->config_len = h->config_len;
	out->n_tensors = h->n_tensors;
	out->generation = h->generation;
	out->xmin = h->xmin;
	out->version = h->version;
	out->tensors = MemoryContextAllocZero(mcxt, Max(h->n_tensors, 1) * sizeof(DinTensor));
	for (int i = 0; i < h->n_tensors; i++) {
		DinTensor *t = &out->tensors[i];

		t->name = (char *)base + pt[i].name_off;
		t->dtype = (DinDtype)pt[i].dtype;
		t->ndim = pt[i].ndim;
		for (int d = 0; d < pt[i].ndim; d++)
			t->shape[d] = pt[i].shape[d];
		t->data = base + pt[i].data_off;
		t->nbytes = pt[i].nbytes;
	}
}
