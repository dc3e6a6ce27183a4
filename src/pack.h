/*
 * pack.h - a stored model (config and tensors) as one self-describing block of memory.
 *
 * The block is what the shared cache keeps in dynamic shared memory: a backend that finds it
 * there rebuilds its DinTensor list (names, shapes, data pointers into the block) without
 * reading the tables. Offsets, not pointers, so the block means the same at any address.
 */
#ifndef DIN_PACK_H
#define DIN_PACK_H

#include "postgres.h"

#include "catalog.h"

/* pack_size - bytes of the block of stored (tensor data 8-byte aligned inside it). */
Size pack_size(const DinStored *stored);

/* pack_write - write the block of stored into dst (8-byte aligned, pack_size bytes). */
void pack_write(void *dst, const DinStored *stored);

/*
 * pack_read - a DinStored whose config and tensor data point into block (keep it mapped);
 * the tensor array is allocated in mcxt.
 */
void pack_read(const void *block, MemoryContext mcxt, DinStored *out);

#endif
