/*
 * session.c - session division for DSIN (see session.h). The walk runs from the most recent
 * behaviour back, so a long history costs only the sessions kept, after one pass checking the
 * order.
 */
#include "session.h"

#include <stdio.h>

DinStatus
din_sessions(const DinSessionRule *r, const int64_t *time, int n, int64_t at, int *start, int *len,
             int *n_sessions, DinError *err)
{
	int end;

	*n_sessions = 0;
	for (int i = 1; i < n; i++)
		if (time[i] < time[i - 1]) {
			char detail[128];

			snprintf(detail, sizeof(detail),
			         "Behaviours must be oldest first; element %d is earlier than element %d.",
			         i + 1, i);
			return din_fail(err, DIN_EINVAL, detail, "history_time is not in order at position %d",
			                i + 1);
		}
	end = n;
	while (end > 0 && time[end - 1] >= at)
		end--;
	while (end > 0 && *n_sessions < r->count) {
		int begin = end - 1, size;

		while (begin > 0 && (uint64_t)time[begin] - (uint64_t)time[begin - 1] <= (uint64_t)r->gap)
			begin--;
		size = end - begin;
		if (size >= r->min_length) {
			int kept = size < r->length ? size : r->length;

			start[*n_sessions] = end - kept;
			len[*n_sessions] = kept;
			(*n_sessions)++;
		}
		end = begin;
	}
	return DIN_OK;
}
