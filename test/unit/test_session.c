/*
 * test_session.c - DSIN's session division: the gap rule at its boundary, truncation to the
 * newest T of a session and the newest K sessions, min_length, `at`, order errors, and the
 * session counts of the Taobao UserBehavior head against test/reference/taobao_sessions.py.
 */
#include "unit.h"

#include "models/session.h"

#include <stdlib.h>
#include <string.h>

#define MIN 60000000LL /* one minute in microseconds */
#define TAOBAO "../../../shared/data/taobao-userbehavior-head/UserBehavior_head.csv"

static const DinSessionRule deepctr = {30 * MIN, 5, 10, 1};

static void
test_session_gap_boundary(void)
{
	/* exactly 30 minutes stays; 30 minutes and 1 us starts a new session */
	int64_t t[] = {0, 30 * MIN, 60 * MIN, 90 * MIN + 1, 120 * MIN + 1};
	int start[5], len[5], n;
	DinError err;

	CHECK_INT(din_sessions(&deepctr, t, 5, INT64_MAX, start, len, &n, &err), DIN_OK);
	CHECK_INT(n, 2);
	CHECK_INT(start[0], 3); /* most recent first */
	CHECK_INT(len[0], 2);
	CHECK_INT(start[1], 0);
	CHECK_INT(len[1], 3);
}

static void
test_session_truncation(void)
{
	/* 12 sessions: 3 behaviours, then 14, then ten of 1; keep K = 5 newest, each its last T */
	DinSessionRule r = {30 * MIN, 5, 10, 1};
	int64_t t[64];
	int start[8], len[8], n, m = 0;
	DinError err;
	int64_t now = 0;

	for (int i = 0; i < 3; i++)
		t[m++] = now += MIN;
	now += 31 * MIN;
	for (int i = 0; i < 14; i++)
		t[m++] = now += MIN;
	CHECK_INT(din_sessions(&r, t, m, INT64_MAX, start, len, &n, &err), DIN_OK);
	CHECK_INT(n, 2);
	CHECK_INT(start[0], 3 + 4); /* the last 10 of 14 */
	CHECK_INT(len[0], 10);
	CHECK_INT(start[1], 0);
	CHECK_INT(len[1], 3);
	for (int i = 0; i < 10; i++)
		t[m++] = now += 31 * MIN;
	CHECK_INT(din_sessions(&r, t, m, INT64_MAX, start, len, &n, &err), DIN_OK);
	CHECK_INT(n, 5);
	for (int k = 0; k < 5; k++) {
		CHECK_INT(start[k], m - 1 - k);
		CHECK_INT(len[k], 1);
	}
	/* min_length 3 drops the ten singles */
	r.min_length = 3;
	CHECK_INT(din_sessions(&r, t, m, INT64_MAX, start, len, &n, &err), DIN_OK);
	CHECK_INT(n, 2);
	CHECK_INT(len[0], 10);
	CHECK_INT(len[1], 3);
	/* behaviours at or after `at` are not seen */
	CHECK_INT(din_sessions(&r, t, m, t[2], start, len, &n, &err), DIN_OK);
	CHECK_INT(n, 0);
	CHECK_INT(din_sessions(&r, t, m, t[2] + 1, start, len, &n, &err), DIN_OK);
	CHECK_INT(n, 1);
	CHECK_INT(len[0], 3);
}

static void
test_session_order_errors(void)
{
	int64_t t[] = {10, 10, 20, 15, 30};
	int start[5], len[5], n;
	DinError err;

	/* equal times are in order (same-second behaviours are common) */
	CHECK_INT(din_sessions(&deepctr, t, 3, INT64_MAX, start, len, &n, &err), DIN_OK);
	CHECK_INT(n, 1);
	CHECK_INT(din_sessions(&deepctr, t, 5, INT64_MAX, start, len, &n, &err), DIN_EINVAL);
	CHECK_STR_CONTAINS(err.msg, "history_time is not in order at position 4");
	CHECK_STR_CONTAINS(err.detail, "element 4 is earlier than element 3");
	/* extreme times (PostgreSQL's -infinity, infinity) neither overflow nor merge */
	{
		int64_t e[] = {INT64_MIN, 0, INT64_MAX};

		CHECK_INT(din_sessions(&deepctr, e, 3, INT64_MAX, start, len, &n, &err), DIN_OK);
		CHECK_INT(n, 2);
	}
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Sessions of every user of the Taobao head equal the independent Python count. */
static void
test_session_taobao(void)
{
	FILE *data = fopen(TAOBAO, "r"), *want = fopen("../fixtures/taobao_sessions.csv", "r");
	static int64_t users[8192], times[8192], t[8192];
	int n = 0, checked = 0;
	char line[256];

	/* the data set lives in ../shared beside the clone (as in CI), never in the repository */
	if (data == NULL) {
		printf("# skipped: %s not found (the shared data sets are not beside this clone)\n",
		       TAOBAO);
		if (want != NULL)
			fclose(want);
		return;
	}
	CHECK(want != NULL);
	if (want == NULL)
		return;
	while (fgets(line, sizeof(line), data) != NULL && n < 8192) {
		long long u, item, cate, ts;
		char kind[16];

		if (sscanf(line, "%lld,%lld,%lld,%15[^,],%lld", &u, &item, &cate, kind, &ts) == 5) {
			users[n] = u;
			times[n++] = ts * 1000000LL;
		}
	}
	fclose(data);
	if (fgets(line, sizeof(line), want) == NULL)
		return;
	while (fgets(line, sizeof(line), want) != NULL) {
		long long u;
		int behaviours, sessions, sessions3, kept3, m = 0, start[1024], len[1024], got, total = 0;
		DinSessionRule all = {30 * MIN, 1024, 1024, 1}, dsin = {30 * MIN, 5, 10, 3};
		DinError err;

		if (sscanf(line, "%lld,%d,%d,%d,%d", &u, &behaviours, &sessions, &sessions3, &kept3) != 5)
			continue;
		for (int i = 0; i < n; i++)
			if (users[i] == u)
				t[m++] = times[i];
		qsort(t, (size_t)m, sizeof(int64_t), cmp_i64);
		CHECK_INT(m, behaviours);
		CHECK_INT(din_sessions(&all, t, m, INT64_MAX, start, len, &got, &err), DIN_OK);
		CHECK_INT(got, sessions);
		all.min_length = 3;
		CHECK_INT(din_sessions(&all, t, m, INT64_MAX, start, len, &got, &err), DIN_OK);
		CHECK_INT(got, sessions3);
		CHECK_INT(din_sessions(&dsin, t, m, INT64_MAX, start, len, &got, &err), DIN_OK);
		for (int k = 0; k < got; k++)
			total += len[k];
		CHECK_INT(total, kept3);
		checked++;
	}
	fclose(want);
	printf("# taobao head: %d users' sessions checked\n", checked);
	CHECK(checked >= 40);
}

void suite_session(void);

void
suite_session(void)
{
	RUN(test_session_gap_boundary);
	RUN(test_session_truncation);
	RUN(test_session_order_errors);
	RUN(test_session_taobao);
}
