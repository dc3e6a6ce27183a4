#include "status.h"

#include <stdarg.h>
#include <stdio.h>

DinStatus
din_fail(DinError *err, DinStatus code, const char *detail, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	snprintf(err->detail, sizeof(err->detail), "%s", detail ? detail : "");
	return code;
}
