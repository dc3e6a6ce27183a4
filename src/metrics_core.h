/*
 * metrics_core.h - exact ranking metrics over sorted keys, without PostgreSQL.
 *
 * Scores are stored as order-preserving 64-bit keys so one radix sort orders them and equal
 * keys mean equal scores (ties). AUC records are one key (the score); GAUC records are two
 * keys, the user first and the score second, sorted lexicographically. Positives and
 * negatives live in separate arrays, so no bit is spent on the label.
 */
#ifndef DIN_METRICS_CORE_H
#define DIN_METRICS_CORE_H

#include <stddef.h>
#include <stdint.h>

/* Called between radix passes; the PostgreSQL glue checks for interrupts there. */
typedef void (*MetricsPassHook)(void);

/* The key of a finite score: unsigned order equals numeric order, -0.0 and 0.0 share a key. */
uint64_t metrics_score_key(double score);

/* The key of a user id: unsigned order equals signed order. */
uint64_t metrics_user_key(int64_t user_id);

#define METRICS_DIGIT_BITS 11
#define METRICS_DIGITS_PER_WORD ((64 + METRICS_DIGIT_BITS - 1) / METRICS_DIGIT_BITS)
/* Entries of the counts workspace metrics_sort needs (records of at most 2 words). */
#define METRICS_SORT_COUNTS (2 * METRICS_DIGITS_PER_WORD * (1 << METRICS_DIGIT_BITS))

/* Below this many records a comparison sort beats clearing the radix counts. */
#define METRICS_RADIX_MIN 2048

/*
 * Sorts n records of width 64-bit words (1 or 2) ascending, comparing word 0 first. scratch
 * holds n * width words, counts METRICS_SORT_COUNTS entries (both may be NULL when n is below
 * METRICS_RADIX_MIN). Returns the buffer holding the sorted records (data or scratch; the
 * other one holds some permutation of them).
 */
uint64_t *metrics_sort(uint64_t *data, uint64_t *scratch, size_t *counts, size_t n, int width,
                       MetricsPassHook hook);

/*
 * AUC of positives against negatives, both sorted ascending; each key is word `offset` of a
 * record of `width` words. Ties count one half. Returns -1 when either class is empty.
 */
double metrics_auc_sorted(const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg,
                          int width, int offset);

/* How GAUC weighs each user's AUC. */
typedef enum MetricsGaucWeight {
	METRICS_WEIGHT_IMPRESSIONS,
	METRICS_WEIGHT_CLICKS
} MetricsGaucWeight;

/*
 * GAUC over (user, score) records sorted by user then score, positives and negatives apart:
 * the weighted mean of the per-user AUC over users with both classes. Returns -1 when no user
 * has both classes.
 */
double metrics_gauc_sorted(const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg,
                           MetricsGaucWeight weight);

#endif
