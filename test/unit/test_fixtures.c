/*
 * test_fixtures.c - the pure core against the PyTorch reference, without PostgreSQL.
 *
 * Reads each committed fixture (test/fixtures/<variant>.safetensors + .csv + .explain.csv,
 * written by test/reference/make_fixtures.py), scores every row through din_file_read,
 * din_model_build and din_model_score, and compares with the reference probability and
 * attention weights to 1e-5 relative.
 */
#include "unit.h"

#include "format/format.h"
#include "nn/cpu.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "../fixtures/"
#define MAX_IDS 4096

static uint8_t *
read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	/* 8-byte aligned, as the catalog hands it over */
	buf = aligned_alloc(8, ((size_t)n + 15) & ~(size_t)7);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* A fixture model file read, parsed and built; the model refers into buf. */
typedef struct Fixture {
	uint8_t *buf;
	DinFile file;
	DinModel *m;
} Fixture;

/* Load path into f; false (each failed step a failed check, the reason printed) on failure. */
static int
fixture_load(Fixture *f, const char *path)
{
	size_t len;
	DinError err;

	memset(f, 0, sizeof(*f));
	f->buf = read_all(path, &len);
	CHECK(f->buf != NULL);
	if (f->buf == NULL)
		return 0;
	CHECK_INT(din_file_read(f->buf, len, &f->file, &err), DIN_OK);
	CHECK_INT(din_model_build(f->file.config, f->file.config_len, f->file.tensors,
	                          f->file.n_tensors, &f->m, &err),
	          DIN_OK);
	if (f->m == NULL)
		fprintf(stderr, "  %s: %s\n", path, err.msg);
	return f->m != NULL;
}

static void
fixture_free(Fixture *f)
{
	din_model_free(f->m);
	din_file_free(&f->file);
	free(f->buf);
}

/*
 * Parse one CSV field at *p: empty (NULL array), a quoted "{...}" array literal, or a bare
 * number. Returns the number of values, -1 for NULL; advances *p past the separator.
 */
static int
parse_field(char **p, double *vals)
{
	char *s = *p;
	int n = 0;

	if (*s == ',' || *s == '\n' || *s == '\0') {
		if (*s == ',')
			s++;
		*p = s;
		return -1;
	}
	if (*s == '"')
		s++;
	if (*s == '{') {
		s++;
		while (*s != '}') {
			vals[n++] = strtod(s, &s);
			if (*s == ',')
				s++;
		}
		s++;
	} else
		vals[n++] = strtod(s, &s);
	if (*s == '"')
		s++;
	if (*s == ',')
		s++;
	*p = s;
	return n;
}

typedef struct Row {
	int id;
	int n_hist, n_ctx, n_dense;
	int64_t hist[MAX_IDS], ctx[64], ad;
	double dense[64];
	double expected;
	int n_times; /* -1: NULL history_time */
	int64_t times[MAX_IDS], at;
} Row;

/*
 * A row of id,history,ad_id,context,dense[,history_time,at],expected; `timed` when the header
 * has the two time columns (timestamptz microseconds since 2000-01-01).
 */
static int
parse_row(char *line, Row *r, int timed)
{
	static double vals[MAX_IDS];
	char *p = line;
	int n;

	r->id = (int)strtol(p, &p, 10);
	p++;
	n = parse_field(&p, vals);
	r->n_hist = n < 0 ? 0 : n;
	for (int i = 0; i < r->n_hist; i++)
		r->hist[i] = (int64_t)vals[i];
	parse_field(&p, vals);
	r->ad = (int64_t)vals[0];
	n = parse_field(&p, vals);
	r->n_ctx = n < 0 ? 0 : n;
	for (int i = 0; i < r->n_ctx; i++)
		r->ctx[i] = (int64_t)vals[i];
	n = parse_field(&p, vals);
	r->n_dense = n < 0 ? 0 : n;
	for (int i = 0; i < r->n_dense; i++)
		r->dense[i] = vals[i];
	r->n_times = -1;
	r->at = INT64_MAX;
	if (timed) {
		r->n_times = parse_field(&p, vals);
		for (int i = 0; i < r->n_times; i++)
			r->times[i] = (int64_t)vals[i];
		if (parse_field(&p, vals) > 0)
			r->at = (int64_t)vals[0];
	}
	parse_field(&p, vals);
	r->expected = vals[0];
	return 1;
}

/* Attention weight the reference gave for (row id, pos), or NAN when not listed. */
static double
explain_weight(FILE *f, int id, int pos)
{
	char line[256];

	rewind(f);
	if (fgets(line, sizeof(line), f) == NULL)
		return NAN;
	while (fgets(line, sizeof(line), f) != NULL) {
		int rid, rpos;
		double w;

		if (sscanf(line, "%d,%d,%lf", &rid, &rpos, &w) == 3 && rid == id && rpos == pos)
			return w;
	}
	return NAN;
}

static void
check_variant(const char *variant)
{
	char path[256];
	static char line[1 << 16];
	Fixture fx;
	DinModel *m;
	DinError err;
	FILE *csv, *explain;
	Row *r;
	float *scratch;
	float *weights;
	int rows = 0, bad = 0, explained = 0, timed;
	double worst = 0;

	snprintf(path, sizeof(path), FIXTURES "%s.safetensors", variant);
	if (!fixture_load(&fx, path))
		return;
	m = fx.m;
	r = malloc(sizeof(Row));
	scratch = malloc(din_model_scratch_floats(m, 1) * sizeof(float));
	weights = malloc((size_t)m->max_len * sizeof(float));

	snprintf(path, sizeof(path), FIXTURES "%s.csv", variant);
	csv = fopen(path, "r");
	snprintf(path, sizeof(path), FIXTURES "%s.explain.csv", variant);
	explain = fopen(path, "r");
	CHECK(csv != NULL);
	if (fgets(line, sizeof(line), csv) == NULL)
		return;
	timed = strstr(line, "history_time") != NULL;
	while (fgets(line, sizeof(line), csv) != NULL) {
		DinRequest req = {0};
		double score;
		double rel;
		int kept;

		parse_row(line, r, timed);
		req.history = r->hist;
		req.history_time = r->n_times >= 0 ? r->times : NULL;
		req.at = r->at;
		req.history_len = r->n_hist;
		req.context = r->ctx;
		req.context_len = r->n_ctx;
		req.dense = r->dense;
		req.dense_len = r->n_dense;
		req.candidates = &r->ad;
		req.n_candidates = 1;
		rows++;
		if (din_model_score(m, &req, scratch, &score, weights, &err) != DIN_OK) {
			bad++;
			fprintf(stderr, "  %s row %d: %s\n", variant, r->id, err.msg);
			continue;
		}
		rel = fabs(score - r->expected) / fabs(r->expected);
		if (rel > worst)
			worst = rel;
		if (rel > 1e-5) {
			bad++;
			fprintf(stderr, "  %s row %d: din %.9g, reference %.9g\n", variant, r->id, score,
			        r->expected);
		}
		kept = r->n_hist < m->max_len ? r->n_hist : m->max_len;
		for (int t = 0; explain != NULL && t < kept; t++) {
			double w = explain_weight(explain, r->id, r->n_hist - kept + t + 1);

			if (isnan(w))
				continue;
			explained++;
			if (fabs(weights[t] - w) > 1e-5 * fmax(1.0, fabs(w))) {
				bad++;
				fprintf(stderr, "  %s row %d pos %d: weight %.9g, reference %.9g\n", variant, r->id,
				        r->n_hist - kept + t + 1, weights[t], w);
			}
		}
	}
	printf("# %s: %d rows, %d attention weights, worst relative error %.2e\n", variant, rows,
	       explained, worst);
	CHECK(rows >= 300);
	CHECK_INT(bad, 0);
	if (explain != NULL) {
		CHECK(explained >= 20);
		fclose(explain);
	}
	fclose(csv);
	free(weights);
	free(scratch);
	free(r);
	fixture_free(&fx);
}

static void
test_fixture_din_deepctr_torch(void)
{
	check_variant("din_deepctr_torch");
}

static void
test_fixture_din_repo(void)
{
	check_variant("din_repo");
}

static void
test_fixture_din_fuxi_vocab(void)
{
	check_variant("din_fuxi_vocab");
}

static void
test_fixture_din_misc_acts(void)
{
	check_variant("din_misc_acts");
}

static void
test_fixture_base_mean(void)
{
	check_variant("base_mean");
}

static void
test_fixture_base_dien_dnn(void)
{
	check_variant("base_dien_dnn");
}

static void
test_fixture_dien_deepctr_torch_augru(void)
{
	check_variant("dien_deepctr_torch_augru");
}

static void
test_fixture_dien_code_augru_tf(void)
{
	check_variant("dien_code_augru_tf");
}

static void
test_fixture_dien_agru(void)
{
	check_variant("dien_agru");
}

static void
test_fixture_dien_aigru(void)
{
	check_variant("dien_aigru");
}

static void
test_fixture_dien_gru_pooling(void)
{
	check_variant("dien_gru_pooling");
}

static void
test_fixture_dien_bilinear(void)
{
	check_variant("dien_bilinear");
}

static void
test_fixture_dsin_deepctr(void)
{
	check_variant("dsin_deepctr");
}

static void
test_fixture_dsin_bias_ln(void)
{
	check_variant("dsin_bias_ln");
}

/*
 * The fixture file dir/name.safetensors is refused, with a message containing needle. With
 * container_ok the reader must accept it and the builder refuse it as corrupt; otherwise
 * either may refuse it.
 */
static void
check_refused(const char *dir, const char *name, const char *needle, int container_ok)
{
	char path[256];
	size_t len;
	uint8_t *buf;
	DinFile file;
	DinModel *m = NULL;
	DinError err;
	DinStatus st;

	snprintf(path, sizeof(path), FIXTURES "%s/%s.safetensors", dir, name);
	buf = read_all(path, &len);
	CHECK(buf != NULL);
	if (buf == NULL)
		return;
	st = din_file_read(buf, len, &file, &err);
	if (container_ok)
		CHECK_INT(st, DIN_OK);
	if (st == DIN_OK) {
		st = din_model_build(file.config, file.config_len, file.tensors, file.n_tensors, &m, &err);
		din_file_free(&file);
		if (container_ok)
			CHECK_INT(st, DIN_ECORRUPT);
	}
	CHECK(st != DIN_OK);
	if (st != DIN_OK)
		CHECK_STR_CONTAINS(err.msg, needle);
	din_model_free(m);
	free(buf);
}

/* Every file in fixtures/bad is refused by the reader or the builder, naming the culprit. */
static void
test_fixture_bad_files(void)
{
	static const struct {
		const char *file;
		const char *needle;
	} cases[] = {
	    {"truncated", ""},
	    {"header_past_end", ""},
	    {"nan_weight", "tower.0.weight"},
	    {"unknown_dtype", "F16"},
	    {"wrong_shape", "fields.item.weight"},
	    {"unknown_config_key", "tower.dropout"},
	    {"missing_tensor", "tower.1.bias"},
	    {"extra_tensor", "tower.2.weight"},
	    {"format_2", "format"},
	    {"unknown_activation", "swish"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_refused("bad", cases[i].file, cases[i].needle, 0);
}

/* Every file in fixtures/bad_dien is refused by the builder, naming the culprit. */
static void
test_fixture_bad_dien_files(void)
{
	static const struct {
		const char *file;
		const char *needle;
	} cases[] = {
	    {"evolution_type", "evolution.type has unknown value \"lstm\""},
	    {"form_on_agru", "evolution.form applies to augru only"},
	    {"query_width", "the query is 16 wide but sequence.hidden is 12"},
	    {"missing_gru_bias", "missing tensor evolution.gru.bias_hh"},
	    {"wrong_convention", "missing tensor sequence.gru.gates.weight"},
	    {"aux_net_tensor", "unexpected tensor aux.0.weight"},
	    {"attention_input", "needs architecture din"},
	    {"sequence_on_din", "config key sequence is allowed only with architecture dien"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_refused("bad_dien", cases[i].file, cases[i].needle, 1);
}

/* Many candidates in one call score as each alone, and the weights line up per candidate. */
static void
test_fixture_dien_batch(void)
{
	static const char *const variants[] = {"dien_deepctr_torch_augru", "dien_code_augru_tf",
	                                       "dien_aigru", "dien_gru_pooling", "dien_bilinear"};

	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		char path[256];
		Fixture fx;
		DinModel *m;
		DinError err;
		int64_t hist[30], cand[40], ctx[1] = {3};
		double many[40], one;
		float *scratch, *w_many, w_one[30];
		DinRequest req = {0};

		snprintf(path, sizeof(path), FIXTURES "%s.safetensors", variants[v]);
		if (!fixture_load(&fx, path))
			continue;
		m = fx.m;
		for (int i = 0; i < 30; i++)
			hist[i] = (i * 37 + 11) % 150;
		for (int i = 0; i < 40; i++)
			cand[i] = (i * 53 + 7) % 150;
		scratch = malloc(din_model_scratch_floats(m, 40) * sizeof(float));
		w_many = malloc((size_t)40 * m->max_len * sizeof(float));
		req.history = hist;
		req.history_len = 30;
		req.context = ctx;
		req.context_len = m->n_context;
		req.candidates = cand;
		req.n_candidates = 40;
		CHECK_INT(din_model_score(m, &req, scratch, many, w_many, &err), DIN_OK);
		for (int c = 0; c < 40; c++) {
			req.candidates = &cand[c];
			req.n_candidates = 1;
			CHECK_INT(din_model_score(m, &req, scratch, &one, w_one, &err), DIN_OK);
			CHECK_CLOSE(many[c], one, 1e-6);
			for (int t = 0; t < m->max_len; t++)
				CHECK_CLOSE(w_many[c * m->max_len + t], w_one[t], 1e-6);
		}
		free(scratch);
		free(w_many);
		fixture_free(&fx);
	}
}

static void
test_fixture_bst_rechub(void)
{
	check_variant("bst_rechub");
}

static void
test_fixture_bst_fuxi(void)
{
	check_variant("bst_fuxi");
}

static void
test_fixture_bst_deepctr(void)
{
	check_variant("bst_deepctr");
}

static void
test_fixture_bst_timegap_prenorm(void)
{
	check_variant("bst_timegap_prenorm");
}

static void
test_fixture_bst_deepctr_mean_all(void)
{
	check_variant("bst_deepctr_mean_all");
}

/* Every fixture model of din's own (test/fixtures), one per architecture variant. */
static const char *const fixture_variants[] = {"din_deepctr_torch",
                                               "din_repo",
                                               "din_fuxi_vocab",
                                               "din_misc_acts",
                                               "base_mean",
                                               "base_dien_dnn",
                                               "dien_deepctr_torch_augru",
                                               "dien_code_augru_tf",
                                               "dien_agru",
                                               "dien_aigru",
                                               "dien_gru_pooling",
                                               "dien_bilinear",
                                               "dsin_deepctr",
                                               "dsin_bias_ln",
                                               "bst_rechub",
                                               "bst_fuxi",
                                               "bst_deepctr",
                                               "bst_timegap_prenorm",
                                               "bst_deepctr_mean_all"};
#define N_FIXTURE_VARIANTS (sizeof(fixture_variants) / sizeof(fixture_variants[0]))

/* The request of row r, its candidate alone. */
static DinRequest
row_request(const Row *r)
{
	DinRequest req = {.history = r->hist,
	                  .history_len = r->n_hist,
	                  .context = r->ctx,
	                  .context_len = r->n_ctx,
	                  .dense = r->dense,
	                  .dense_len = r->n_dense,
	                  .candidates = &r->ad,
	                  .n_candidates = 1,
	                  .history_time = r->n_times >= 0 ? r->times : NULL,
	                  .at = r->at};

	return req;
}

/* Whether a and b name the same history inputs (DinHistoryKey), compared in full. */
static int
same_key(const DinHistoryKey *a, const DinHistoryKey *b)
{
	size_t n = sizeof(int64_t) * a->len;

	return a->len == b->len && a->reads_time == b->reads_time && a->at == b->at &&
	       (a->times == NULL) == (b->times == NULL) &&
	       (n == 0 || memcmp(a->history, b->history, n) == 0) &&
	       (a->times == NULL || n == 0 || memcmp(a->times, b->times, n) == 0);
}

/*
 * A history state serves every request with the same history inputs, to the bit: for each row
 * of each fixture, its state (computed once, then copied to another alignment, as a cache
 * keeps it) scores the row, and a request mixing the row's history inputs with the previous
 * row's candidate, context and dense, exactly as din_model_score does afresh; both requests
 * have equal keys and equal states. Only dsin and time-gap bst read times.
 */
static void
test_fixture_history_states(void)
{
	static char line[1 << 16];
	Row *rows = malloc(2 * sizeof(Row));

	for (size_t v = 0; v < N_FIXTURE_VARIANTS; v++) {
		char path[256];
		Fixture fx;
		DinModel *m;
		DinError err;
		FILE *csv;
		float *scratch, *state, *other, *moved, *w_fresh, *w_reused;
		size_t nf;
		int timed, n = 0, bad = 0;
		int reads_time = strncmp(fixture_variants[v], "dsin", 4) == 0 ||
		                 strcmp(fixture_variants[v], "bst_timegap_prenorm") == 0;

		snprintf(path, sizeof(path), FIXTURES "%s.safetensors", fixture_variants[v]);
		if (!fixture_load(&fx, path))
			continue;
		m = fx.m;
		nf = din_model_state_floats(m, m->max_len);
		scratch = malloc(din_model_scratch_floats(m, 1) * sizeof(float));
		state = malloc(nf * sizeof(float));
		other = malloc(nf * sizeof(float));
		moved = malloc((nf + 1) * sizeof(float));
		w_fresh = malloc((size_t)m->max_len * sizeof(float));
		w_reused = malloc((size_t)m->max_len * sizeof(float));
		snprintf(path, sizeof(path), FIXTURES "%s.csv", fixture_variants[v]);
		csv = fopen(path, "r");
		CHECK(csv != NULL);
		if (csv == NULL || fgets(line, sizeof(line), csv) == NULL)
			continue;
		timed = strstr(line, "history_time") != NULL;
		while (fgets(line, sizeof(line), csv) != NULL) {
			Row *r = &rows[n % 2], *prev = &rows[(n + 1) % 2];
			DinRequest req, mixed;
			DinHistoryKey key, mixed_key;
			double fresh, reused;
			size_t used;
			int kept;

			parse_row(line, r, timed);
			if (n++ == 0)
				continue;
			req = row_request(r);
			mixed = row_request(prev);
			mixed.history = req.history;
			mixed.history_len = req.history_len;
			mixed.history_time = req.history_time;
			mixed.at = req.at;
			kept = req.history_len < m->max_len ? req.history_len : m->max_len;
			used = din_model_state_floats(m, kept);
			din_model_history_key(m, &req, &key);
			din_model_history_key(m, &mixed, &mixed_key);
			bad += !same_key(&key, &mixed_key) || key.reads_time != reads_time;
			/* what a state leaves unwritten (alignment gaps, an unused padding row): equal */
			memset(state, 0, used * sizeof(float));
			memset(other, 0, used * sizeof(float));
			CHECK_INT(din_model_history(m, &req, scratch, state, &err), DIN_OK);
			CHECK_INT(din_model_history(m, &mixed, scratch, other, &err), DIN_OK);
			bad += memcmp(state, other, used * sizeof(float)) != 0;
			memcpy(moved + 1, state, used * sizeof(float));
			for (int mix = 0; mix < 2; mix++) {
				const DinRequest *q = mix ? &mixed : &req;

				CHECK_INT(din_model_score(m, q, scratch, &fresh, w_fresh, &err), DIN_OK);
				CHECK_INT(din_model_score_state(m, q, moved + 1, scratch, &reused, w_reused, &err),
				          DIN_OK);
				bad += memcmp(&fresh, &reused, sizeof(double)) != 0 ||
				       memcmp(w_fresh, w_reused, (size_t)kept * sizeof(float)) != 0;
			}
		}
		printf("# %s: %d rows scored from their history states\n", fixture_variants[v], n - 1);
		CHECK(n >= 300);
		CHECK_INT(bad, 0);
		fclose(csv);
		free(scratch);
		free(state);
		free(other);
		free(moved);
		free(w_fresh);
		free(w_reused);
		fixture_free(&fx);
	}
	free(rows);
}

/*
 * The peer fixtures (test/fixtures/peer/<library>/<case>.*): models trained by DeepCTR-Torch and
 * torch-rechub themselves, converted by tools/din-convert (test/convert/
 * convert_peer_fixtures.py); every row must give the library's own prediction to 1e-5
 * relative. peer/cases.txt lists them as `library/case scope [reason]`: scope `empty` marks rows
 * with an empty history as expected to differ until the format can express what the library
 * does there, `all` every row, `refused` a model the converter refuses (no file to score). Those
 * are reported with their reason and measured error, and do not fail the run.
 */
static void
check_peer(const char *name, const char *scope, const char *reason)
{
	char path[512];
	static char line[1 << 16];
	Fixture fx;
	DinModel *m;
	DinError err;
	FILE *csv;
	Row *r;
	float *scratch, *weights;
	int rows = 0, empty = 0, bad = 0, expected_bad = 0;
	int skip_empty = strcmp(scope, "empty") == 0, skip_all = strcmp(scope, "all") == 0;
	double worst = 0, worst_empty = 0;

	if (strcmp(scope, "refused") == 0) {
		printf("# peer %s: skipped, expected to fail (the converter refuses it): %s\n", name,
		       reason);
		return;
	}
	CHECK(skip_empty || skip_all || strcmp(scope, "ok") == 0);
	snprintf(path, sizeof(path), FIXTURES "peer/%s.safetensors", name);
	if (!fixture_load(&fx, path))
		return;
	m = fx.m;
	r = malloc(sizeof(Row));
	scratch = malloc(din_model_scratch_floats(m, 1) * sizeof(float));
	weights = malloc((size_t)m->max_len * sizeof(float));
	snprintf(path, sizeof(path), FIXTURES "peer/%s.csv", name);
	csv = fopen(path, "r");
	CHECK(csv != NULL);
	if (csv != NULL && fgets(line, sizeof(line), csv) != NULL) {
		while (fgets(line, sizeof(line), csv) != NULL) {
			DinRequest req = {0};
			double score, rel;
			int expected_to_differ;

			parse_row(line, r, 0);
			req.history = r->hist;
			req.history_len = r->n_hist;
			req.at = INT64_MAX;
			req.context = r->ctx;
			req.context_len = r->n_ctx;
			req.dense = r->dense;
			req.dense_len = r->n_dense;
			req.candidates = &r->ad;
			req.n_candidates = 1;
			rows++;
			empty += r->n_hist == 0;
			if (din_model_score(m, &req, scratch, &score, weights, &err) != DIN_OK) {
				bad++;
				fprintf(stderr, "  peer %s row %d: %s\n", name, r->id, err.msg);
				continue;
			}
			rel = fabs(score - r->expected) / fmax(fabs(r->expected), 1e-30);
			worst = fmax(worst, rel);
			if (r->n_hist == 0)
				worst_empty = fmax(worst_empty, rel);
			if (rel <= 1e-5)
				continue;
			expected_to_differ = skip_all || (skip_empty && r->n_hist == 0);
			if (expected_to_differ)
				expected_bad++;
			else {
				bad++;
				fprintf(stderr, "  peer %s row %d: din %.9g, library %.9g\n", name, r->id, score,
				        r->expected);
			}
		}
		fclose(csv);
	}
	printf("# peer %s: %d rows (%d with an empty history), worst relative error %.2e, on empty "
	       "histories %.2e\n",
	       name, rows, empty, worst, worst_empty);
	if (skip_empty || skip_all)
		printf("#   expected to fail on %s rows (%d beyond 1e-5, not counted): %s\n",
		       skip_all ? "all" : "empty-history", expected_bad, reason);
	CHECK(rows >= 200);
	CHECK(empty >= 10);
	CHECK_INT(bad, 0);
	free(weights);
	free(scratch);
	free(r);
	fixture_free(&fx);
}

static void
test_fixture_peer(void)
{
	char line[1024];
	FILE *f = fopen(FIXTURES "peer/cases.txt", "r");
	int cases = 0;

	CHECK(f != NULL);
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char name[200], scope[32];
		int used = 0;

		if (sscanf(line, "%199s %31s %n", name, scope, &used) < 2)
			continue;
		line[strcspn(line, "\n")] = '\0';
		check_peer(name, scope, line + used);
		cases++;
	}
	fclose(f);
	CHECK(cases >= 18);
}

/*
 * Every fixture and peer case again at each kernel level below the CPU's best (the tests above
 * ran at the best): the portable loops and OpenBLAS, and AVX2 on an AVX-512 CPU, must also give
 * the references' scores to 1e-5.
 */
static void
test_fixtures_every_level(void)
{

	for (int level = NN_LEVEL_PORTABLE; level < (int)nn_cpu_level(); level++) {
		nn_set_level((NnLevel)level);
		printf("# kernel level %d:\n", level);
		for (size_t v = 0; v < N_FIXTURE_VARIANTS; v++)
			check_variant(fixture_variants[v]);
		test_fixture_peer();
	}
	nn_init();
}

void suite_fixtures(void);

void
suite_fixtures(void)
{
	RUN(test_fixture_din_deepctr_torch);
	RUN(test_fixture_din_repo);
	RUN(test_fixture_din_fuxi_vocab);
	RUN(test_fixture_din_misc_acts);
	RUN(test_fixture_base_mean);
	RUN(test_fixture_base_dien_dnn);
	RUN(test_fixture_dien_deepctr_torch_augru);
	RUN(test_fixture_dien_code_augru_tf);
	RUN(test_fixture_dien_agru);
	RUN(test_fixture_dsin_deepctr);
	RUN(test_fixture_dsin_bias_ln);
	RUN(test_fixture_bst_rechub);
	RUN(test_fixture_bst_fuxi);
	RUN(test_fixture_bst_deepctr);
	RUN(test_fixture_bst_timegap_prenorm);
	RUN(test_fixture_bst_deepctr_mean_all);
	RUN(test_fixture_dien_aigru);
	RUN(test_fixture_dien_gru_pooling);
	RUN(test_fixture_dien_bilinear);
	RUN(test_fixture_bad_files);
	RUN(test_fixture_bad_dien_files);
	RUN(test_fixture_dien_batch);
	RUN(test_fixture_history_states);
	RUN(test_fixture_peer);
	RUN(test_fixtures_every_level);
}
