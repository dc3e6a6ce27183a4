/*
 * errors.h - turn the pure core's DinStatus/DinError into PostgreSQL errors.
 */
#ifndef DIN_ERRORS_H
#define DIN_ERRORS_H

#include "models/status.h"

/* din_sqlstate - the SQLSTATE of a core status (the error table of README "SQL API"). */
int din_sqlstate(DinStatus status);

/*
 * din_report - ereport(ERROR) a failed core call; prefix (may be NULL) goes before the core's
 * message, e.g. "invalid model file: ". Never returns. Free core memory before calling it.
 */
void din_report(const DinError *err, const char *prefix) pg_attribute_noreturn();

#endif
