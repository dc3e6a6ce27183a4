/*
 * din.c - module entry point: settings and one-time CPU kernel selection.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "cache.h"
#include "din.h"
#include "nn/cpu.h"
#include "shmem.h"

PG_MODULE_MAGIC;

char *din_default_model = NULL;

void _PG_init(void);

void
_PG_init(void)
{
	DefineCustomStringVariable("din.default_model",
	                           "Model that din_score, din_explain use when model is NULL.",
	                           "Empty means no default: a call must name its model.",
	                           &din_default_model, "", PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("din.allow_drop_models",
	                         "Lets DROP EXTENSION din drop the models it stores.",
	                         "Off: DROP EXTENSION din fails while din_models has rows.",
	                         &din_allow_drop_models, false, PGC_USERSET, 0, NULL, NULL, NULL);
	shmem_init();
	MarkGUCPrefixReserved("din");
	cache_init();
	nn_init();
}
