# din - deep-interest CTR models inside PostgreSQL.
#
#   make            build the extension (PGXS); WERROR=1 makes warnings errors (make test does)
#   make install    install it into the PostgreSQL that pg_config names
#   make test       as root on Debian 12: install what is missing, build, run every test
#                   suite against a throwaway cluster, stop it (see test/run-all.sh)
#   make demo       the same for the demo (demo/run.sh); DEMO_DATA=<ml-latest-small dir> for real data
#   make unit       the pure-C unit tests (no PostgreSQL needed)
#   make doctest    run the examples of README.md and docs/*.md against the server the PG*
#                   variables name (din installed there; test/doc/run_doc_tests.py)
#   make format     clang-format every C file
#   make fuzz       libFuzzer targets with ASan+UBSan, FUZZ_SECONDS (60) each (test/fuzz/run.sh)
#   make valgrind   the unit tests under valgrind
#   make bench      speed against the PyTorch reference, metrics, parallel plans (test/bench)
#   make bench-parallel  only the parallel plans: serial against 2 workers

EXTENSION = din
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" din.control)

CORE_SRCS = $(wildcard src/nn/*.c src/models/*.c src/format/*.c)
GLUE_SRCS = $(wildcard src/*.c)
MODULE_big = din
OBJS = $(GLUE_SRCS:.c=.o) $(CORE_SRCS:.c=.o)

# The current version's install script is built from sql/din.sql and sql/metrics.sql; released
# install scripts and upgrade scripts are committed as they shipped (sql/din--*.sql). Before
# raising default_version, commit the built din--<old>.sql to sql/ and add
# sql/din--<old>--<new>.sql (test/t/040_upgrade.pl checks that it leads to a fresh install).
DATA_built = din--$(EXTVERSION).sql
DATA = $(wildcard sql/din--*.sql)
EXTRA_CLEAN = test/unit/din_unit

# pg_regress inputs are test/sql/*.sql, outputs test/expected/*.out (files they include live in
# test/sql/include/): sql/ holds install scripts only, so a new one never becomes a test. Inside a
# test, PG_ABS_SRCDIR is the absolute test/ directory.
REGRESS = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --load-extension=din

# OpenBLAS, single-threaded: a backend must never start BLAS threads. Debian ships the serial
# build apart (libopenblas0-serial) while its default (and pkg-config's openblas) is threaded,
# so that directory wins when it exists; OPENBLAS_SERIAL=<dir> names another one holding a
# single-threaded libopenblas.so.0. Elsewhere pkg-config's openblas is used (it must be a
# single-threaded build there), else plain -lopenblas.
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null)
OPENBLAS_SERIAL ?= $(wildcard /usr/lib/$(MULTIARCH)/openblas-serial)
ifneq ($(OPENBLAS_SERIAL),)
BLAS_LIBS = -L$(OPENBLAS_SERIAL) -l:libopenblas.so.0 -Wl,-rpath,$(OPENBLAS_SERIAL)
else ifeq ($(shell pkg-config --exists openblas 2>/dev/null && echo yes),yes)
BLAS_CFLAGS := $(shell pkg-config --cflags openblas)
BLAS_LIBS := $(shell pkg-config --libs openblas)
else
BLAS_LIBS = -lopenblas
endif
SHLIB_LINK += $(BLAS_LIBS) -lm

# Warnings are errors only where the compiler is known (CI and make test pass WERROR=1): a
# newer compiler's new warnings must not break a user's build.
WERROR ?= 0
ifeq ($(WERROR),1)
DIN_WERROR = -Werror
endif

PG_CPPFLAGS = -I$(srcdir)/src $(BLAS_CFLAGS)
# -O2 vectorizes only loops without a scalar tail, and never one whose select might raise a
# floating-point exception; din's elementwise loops (batch norm, ReLU, PReLU) need both.
VECTORIZE = -fvect-cost-model=cheap -fno-trapping-math
PG_CFLAGS = -std=gnu11 -Wall -Wextra $(DIN_WERROR) -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare $(VECTORIZE)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild every object when any header changes, since
# the core's structs are shared by all layers.
$(OBJS): $(wildcard src/*.h src/*/*.h)

din--$(EXTVERSION).sql: sql/din.sql $(wildcard sql/metrics.sql)
	cat $^ > $@

# Pure-C unit tests of src/nn, src/models, src/format and src/metrics_core.c: no PostgreSQL
# headers or server.
UNIT_CFLAGS = -std=gnu11 -O2 $(VECTORIZE) -g -Wall -Wextra $(DIN_WERROR) -Wno-unused-parameter -Isrc $(BLAS_CFLAGS)
UNIT_SRCS = $(CORE_SRCS) src/metrics_core.c
test/unit/din_unit: $(wildcard test/unit/*.c test/unit/*.h) $(UNIT_SRCS) $(wildcard src/*/*.h) \
		src/metrics_core.h
	$(CC) $(UNIT_CFLAGS) -o $@ $(wildcard test/unit/*.c) $(UNIT_SRCS) \
		$(BLAS_LIBS) -lm

.PHONY: unit test doctest demo bench bench-parallel format format-check fixtures fuzz valgrind
unit: test/unit/din_unit
	cd test/unit && ./din_unit

test:
	bash test/run-all.sh

doctest:
	python3 test/doc/run_doc_tests.py --psql $(bindir)/psql

FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash test/fuzz/run.sh

valgrind: test/unit/din_unit
	cd test/unit && valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite ./din_unit

demo:
	bash demo/run.sh $(DEMO_DATA)

bench:
	bash test/bench/run.sh

bench-parallel:
	bash test/bench/run.sh parallel

fixtures:
	/usr/bin/python3 test/reference/make_fixtures.py

FORMATTED = $(wildcard src/*.c src/*.h src/*/*.c src/*/*.h test/unit/*.c test/unit/*.h \
	test/fuzz/*.c test/fuzz/*.h test/bench/*.c)
format:
	clang-format -i $(FORMATTED)

format-check:
	clang-format --dry-run -Werror $(FORMATTED)
