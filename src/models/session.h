/*
 * session.h - DSIN's session division (docs/FORMAT.md "architecture dsin", sessions): split a
 * timed history where two neighbours are more than `gap` apart, keep the K most recent sessions
 * of at least `min_length` behaviours, each cut to its last T behaviours.
 */
#ifndef DIN_SESSION_H
#define DIN_SESSION_H

#include "status.h"

#include <stdint.h>

typedef struct DinSessionRule {
	int64_t gap;    /* microseconds; a gap of exactly `gap` stays in the session */
	int count;      /* K */
	int length;     /* T */
	int min_length; /* shorter sessions are dropped (DSIN's 1_gen_sessions.py: 3) */
} DinSessionRule;

/*
 * din_sessions - divide time[0..n) (oldest first, non-decreasing, PostgreSQL timestamptz
 * microseconds). Behaviours at or after `at` are ignored, as DSIN's input generator keeps only
 * those strictly before the sample time. Fills start[k], len[k] (index of the first kept
 * behaviour in time[], and how many follow) for k < *n_sessions <= K, session 0 the most
 * recent. A decreasing time is DIN_EINVAL naming its 1-based position.
 */
DinStatus din_sessions(const DinSessionRule *r, const int64_t *time, int n, int64_t at, int *start,
                       int *len, int *n_sessions, DinError *err);

#endif
