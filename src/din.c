/*
 * din.c - module entry point: settings and one-time CPU kernel selection.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "utils/guc.h"

#include "cache.h"
#include "din.h"
#include "history_cache.h"
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
	DefineCustomIntVariable(
	    "din.history_cache_size",
	    "Memory for the history work a scoring call site keeps for later rows with the same "
	    "history.",
	    "Per call site of a query, released at its end; 0 turns reuse off.",
	    &din_history_cache_size, 65536, 0, MAX_KILOBYTES, PGC_USERSET, GUC_UNIT_KB, NULL, NULL,
	    NULL);
	shmem_init();
	MarkGUCPrefixReserved("din");
	cache_init();
	nn_init();
}
