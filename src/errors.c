/*
 * errors.c - SQLSTATEs for the core's status codes.
 */
#include "postgres.h"

#include "errors.h"

int
din_sqlstate(DinStatus status)
{
	switch (status) {
	case DIN_EINVAL:
		return ERRCODE_INVALID_PARAMETER_VALUE;
	case DIN_ECORRUPT:
		return ERRCODE_DATA_CORRUPTED;
	case DIN_ELIMIT:
		return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
	case DIN_ENOMEM:
		return ERRCODE_OUT_OF_MEMORY;
	case DIN_EINTERRUPTED:
		return ERRCODE_QUERY_CANCELED; /* score_run handles it before reporting anything */
	case DIN_OK:
		break;
	}
	return ERRCODE_INTERNAL_ERROR;
}

void
din_report(const DinError *err, const char *prefix)
{
	ereport(ERROR, (errcode(din_sqlstate(err->code)),
	                errmsg("%s%s", prefix ? prefix : "", err->msg[0] ? err->msg : "unknown error"),
	                err->detail[0] ? errdetail("%s", err->detail) : 0));
	pg_unreachable();
}
