/*
 * test_interrupt.c - DinRequest.interrupted: a poll that says stop ends scoring with
 * DIN_EINTERRUPTED, one that does not changes no bit, and polls come by work, not by count.
 *
 * The models are the committed fixtures with max_len raised to a long history where their
 * tensors allow it (positions tables fix it otherwise). DIN_UNIT_POLL_GAPS=1 also prints the
 * largest wall-clock gap between polls of each at T = 10,000 (no check: machines are noisy).
 */
#include "unit.h"

#include "format/format.h"

#include <stdlib.h>
#include <time.h>

#define FIXTURES "../fixtures/"

typedef struct Loaded {
	uint8_t *buf;
	DinFile file;
	DinModel *m;
	int64_t ids[512]; /* candidate ids of the fixture's rows, every one valid */
	int n_ids;
} Loaded;

/* The fixture `variant`, with max_len set to max_len (0: as written). */
static int
load(Loaded *L, const char *variant, int max_len)
{
	char path[256], line[1 << 16], *config, *at, *end;
	DinError err;
	FILE *f;
	long n;

	memset(L, 0, sizeof(*L));
	snprintf(path, sizeof(path), FIXTURES "%s.safetensors", variant);
	f = fopen(path, "rb");
	CHECK(f != NULL);
	if (f == NULL)
		return 0;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	L->buf = aligned_alloc(8, ((size_t)n + 15) & ~(size_t)7);
	CHECK(fread(L->buf, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	CHECK_INT(din_file_read(L->buf, (size_t)n, &L->file, &err), DIN_OK);
	config = malloc(L->file.config_len + 16);
	at = strstr(L->file.config, "\"max_len\": ") + 11;
	end = at + strspn(at, "0123456789");
	if (max_len > 0)
		sprintf(config, "%.*s%d%s", (int)(at - L->file.config), L->file.config, max_len, end);
	else
		strcpy(config, L->file.config);
	CHECK_INT(
	    din_model_build(config, strlen(config), L->file.tensors, L->file.n_tensors, &L->m, &err),
	    DIN_OK);
	free(config);

	/* ad_id, the column after the history: "id,history,ad_id,..." */
	snprintf(path, sizeof(path), FIXTURES "%s.csv", variant);
	f = fopen(path, "r");
	CHECK(f != NULL && fgets(line, sizeof(line), f) != NULL);
	while (L->n_ids < 512 && fgets(line, sizeof(line), f) != NULL) {
		char *p = strchr(line, ',') + 1;

		p = *p == '"' ? strchr(p + 1, '"') + 2 : strchr(p, ',') + 1;
		L->ids[L->n_ids++] = strtoll(p, NULL, 10);
	}
	fclose(f);
	return L->m != NULL;
}

static void
unload(Loaded *L)
{
	din_model_free(L->m);
	din_file_free(&L->file);
	free(L->buf);
}

/* A poll that counts its calls, records when they came, and says stop at call stop_at. */
typedef struct Counter {
	int calls, stop_at;
	double start, last, max_gap, first_gap;
} Counter;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
count_poll(void *arg)
{
	Counter *c = arg;
	double t = now();

	if (c->calls == 0)
		c->first_gap = t - c->start;
	else if (t - c->last > c->max_gap)
		c->max_gap = t - c->last;
	c->last = t;
	return ++c->calls == c->stop_at;
}

/*
 * Score C candidates after a history of T (sessions of ten a minute apart, an hour between
 * sessions) with poll counter (NULL: no poll); scores[C].
 */
static DinStatus
run(const Loaded *L, int T, int C, Counter *counter, double *scores, DinError *err)
{
	const DinModel *m = L->m;
	int64_t *hist = malloc(sizeof(int64_t) * T + 8), *times = malloc(sizeof(int64_t) * T + 8);
	int64_t *cands = malloc(sizeof(int64_t) * C), ctx[16] = {0};
	double dense[16] = {0};
	float *scratch = malloc(sizeof(float) * din_model_scratch_floats(m, C));
	DinRequest req = {.history = hist,
	                  .history_len = T,
	                  .context = ctx,
	                  .context_len = m->n_context,
	                  .dense = dense,
	                  .dense_len = m->n_dense,
	                  .candidates = cands,
	                  .n_candidates = C,
	                  .history_time = times};
	DinStatus st;

	for (int t = 0; t < T; t++) {
		hist[t] = L->ids[(t * 13) % L->n_ids];
		times[t] = t * 60000000LL + t / 10 * 3600000000LL;
	}
	req.at = T > 0 ? times[T - 1] + 60000000LL : 0;
	for (int c = 0; c < C; c++)
		cands[c] = L->ids[(c * 7 + 3) % L->n_ids];
	if (counter) {
		req.interrupted = count_poll;
		req.interrupted_arg = counter;
		counter->start = counter->last = now();
	}
	st = din_model_score(m, &req, scratch, scores, NULL, err);
	if (counter && counter->calls > 0 && now() - counter->last > counter->max_gap)
		counter->max_gap = now() - counter->last; /* the last poll to the return */
	free(hist);
	free(times);
	free(cands);
	free(scratch);
	return st;
}

/*
 * One fixture per scoring path, with the longest max_len its tensors allow. by_history: its
 * work grows with the history (base only sums it; dsin keeps a fixed number of sessions), so
 * tests load it with a long history and few candidates, the others with many candidates.
 */
static const struct {
	const char *variant;
	int long_max_len; /* 0: fixed by its position tables */
	int by_history;
} models[] = {
    {"base_mean", 10000, 0},
    {"din_repo", 10000, 1},
    {"dien_deepctr_torch_augru", 10000, 1},
    {"dien_aigru", 10000, 1},
    {"dien_bilinear", 10000, 1},
    {"dien_gru_pooling", 10000, 1},
    {"dsin_deepctr", 10000, 0},
    {"bst_timegap_prenorm", 10000, 1},
    {"bst_deepctr", 0, 0},
    {"bst_deepctr_mean_all", 0, 0},
};
#define N_MODELS (int)(sizeof(models) / sizeof(models[0]))

/*
 * A poll that never says stop changes no bit; one that says stop at its third call ends
 * scoring there, with DIN_EINTERRUPTED and no call after.
 */
static void
test_interrupt_stops_scoring(void)
{
	for (int i = 0; i < N_MODELS; i++) {
		Loaded L;
		int T = models[i].by_history ? 1000 : 20, C = models[i].by_history ? 16 : 8192;
		int failed = unit_failed_checks;
		double *plain = malloc(sizeof(double) * C), *polled = malloc(sizeof(double) * C);
		Counter never = {0}, stop = {.stop_at = 3};
		DinError err = {0};

		if (!load(&L, models[i].variant, models[i].long_max_len))
			continue;
		CHECK_INT(run(&L, T, C, NULL, plain, &err), DIN_OK);
		CHECK_INT(run(&L, T, C, &never, polled, &err), DIN_OK);
		CHECK(memcmp(plain, polled, sizeof(double) * C) == 0);
		CHECK(never.calls >= 3);
		if (never.calls >= 3) {
			CHECK_INT(run(&L, T, C, &stop, polled, &err), DIN_EINTERRUPTED);
			CHECK_STR_CONTAINS(err.msg, "interrupted");
			CHECK_INT(stop.calls, 3);
		}
		if (unit_failed_checks != failed)
			fprintf(stderr, "  in %s (%d polls)\n", models[i].variant, never.calls);
		free(plain);
		free(polled);
		unload(&L);
	}
}

/*
 * Polls come by work: four times the history (the work of din, dien and bst with the target
 * grows with it) or four times the candidates (every model) bring at least three times the polls.
 */
static void
test_polls_grow_with_work(void)
{
	for (int i = 0; i < N_MODELS; i++) {
		Loaded L;
		int grows_with_T = models[i].by_history;
		int T = grows_with_T ? 1000 : 20, C = grows_with_T ? 4 : 8192;
		double *scores = malloc(sizeof(double) * 4 * C);
		Counter small = {0}, large = {0};
		DinError err;

		if (!load(&L, models[i].variant, models[i].long_max_len))
			continue;
		CHECK_INT(run(&L, T, C, &small, scores, &err), DIN_OK);
		CHECK_INT(run(&L, grows_with_T ? 4 * T : T, grows_with_T ? C : 4 * C, &large, scores, &err),
		          DIN_OK);
		CHECK(small.calls >= 1);
		CHECK(large.calls >= 3 * small.calls);
		if (large.calls < 3 * small.calls || small.calls < 1)
			fprintf(stderr, "  %s: %d polls, then %d\n", models[i].variant, small.calls,
			        large.calls);
		free(scores);
		unload(&L);
	}
}

/* DIN_UNIT_POLL_GAPS=1: the largest gaps between polls at T = 10,000 (printed, not checked). */
static void
test_poll_gaps(void)
{
	const char *env = getenv("DIN_UNIT_POLL_GAPS");

	if (env == NULL || strcmp(env, "1") != 0)
		return;
	for (int i = 0; i < N_MODELS; i++) {
		Loaded L;
		/* with the target appended BST runs its blocks over 10,001 rows per candidate */
		int C = strcmp(models[i].variant, "bst_timegap_prenorm") == 0 ? 4 : 4096;
		int T = models[i].long_max_len ? 10000 : 10000;
		double *scores = malloc(sizeof(double) * C), t0;
		Counter c = {0};
		DinError err;

		if (!load(&L, models[i].variant, models[i].long_max_len))
			continue;
		t0 = now();
		CHECK_INT(run(&L, T, C, &c, scores, &err), DIN_OK);
		printf("# %-26s T=%d (max_len %d) C=%-5d %.3f s, %6d polls, largest gap %.2f ms, "
		       "first after %.2f ms\n",
		       models[i].variant, T, L.m->max_len, C, now() - t0, c.calls, c.max_gap * 1e3,
		       c.first_gap * 1e3);
		free(scores);
		unload(&L);
	}
}

void
suite_interrupt(void)
{
	RUN(test_interrupt_stops_scoring);
	RUN(test_polls_grow_with_work);
	RUN(test_poll_gaps);
}
