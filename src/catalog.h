/*
 * catalog.h - the model tables of sql/din.sql (din_models, din_tensors, din_items, din_vocab)
 * read and written through SPI.
 */
#ifndef DIN_CATALOG_H
#define DIN_CATALOG_H

#include "postgres.h"

#include "format/format.h"

/* The rows of one model turned back into a config and a tensor list. */
typedef struct DinStored {
	char *config; /* config::text of din_models, NUL-terminated */
	size_t config_len;
	int n_tensors;
	/* weights in ord order, then vocab.<field> in the config's field order, then items.id,
	 * items.attributes: the order din_export writes */
	DinTensor *tensors;
	int64 generation;
	TransactionId xmin; /* of the din_models row: with generation, names the version */
	int32 version;
} DinStored;

/*
 * din_catalog_writing - din_import or din_drop is writing the model tables: they set the
 * generation of the one model they change, so the tables' triggers need not bump any.
 */
extern bool din_catalog_writing;

/*
 * What the cache needs to know of a model's din_models row. A version is named by generation
 * and the row's xmin together: a restore can set the generation sequence back below values it
 * already drew, so a generation alone may repeat, but every new generation is a new row
 * version written by a later transaction (or, within one transaction, a new generation).
 */
typedef struct DinGeneration {
	int64 generation;
	TransactionId xmin;
	Oid relid;        /* din_models itself: a re-created extension starts generations anew */
	bool uncommitted; /* written by this transaction: its weights are not for other backends */
} DinGeneration;

/*
 * catalog_import - validate the model file bytes[0..len) completely, then store it as model
 * `name` in the caller's transaction; returns its version (1, then +1 per replace). Raises
 * duplicate_object when the model exists and replace is false, and data_corrupted (or
 * program_limit_exceeded) naming what is wrong with a bad file, before writing anything.
 */
int32 catalog_import(const char *name, const uint8 *bytes, size_t len, bool replace,
                     const char *comment);

/* catalog_drop - delete model `name` (its tensors, items and vocabularies cascade); false when
 * there was none. */
bool catalog_drop(const char *name);

/* catalog_generation - the din_models row of model `name`; false when there is no such model. */
bool catalog_generation(const char *name, DinGeneration *out);

/*
 * catalog_load - read every row of model `name`, allocating in mcxt (tensor data 8-byte
 * aligned); false when there is no such model. Rows that cannot form a model raise
 * data_corrupted.
 */
bool catalog_load(const char *name, MemoryContext mcxt, DinStored *out);

/*
 * catalog_pin_search_path - until catalog_unpin_search_path(level), or the end of the
 * (sub)transaction, search_path is "pg_catalog, <din's schema>, pg_temp" (pg_temp last, so no
 * temporary object shadows anything) whatever the caller set; returns that level. Every query
 * din runs, in its C functions and triggers, runs so and qualifies every name besides.
 */
int catalog_pin_search_path(void);
void catalog_unpin_search_path(int level);

#endif
