#!/bin/bash
# test/run-all.sh - `make test`: every test suite of din, from a bare Debian 12 (as root).
#
#   1. install missing Debian packages (test/lib/deps.sh)
#   2. build, install, run the pure-C unit tests
#   3. regression tests (pg_regress, the Makefile's REGRESS list), pgTAP tests (pg_prove
#      test/pgtap/*.sql) and the documentation's examples (test/doc/run_doc_tests.py)
#      against one throwaway cluster, then the Perl TAP tests (prove test/t/*.pl,
#      PostgreSQL::Test::Cluster makes its own nodes); Citus is built first from
#      ../shared/citus when missing (test/t/050_citus.pl)
#   4. stop every server, print a summary, exit 1 if anything failed
#
# Why a staging copy: CI runs from a root-owned clone, possibly under /root (mode 700), but
# the server runs as the postgres OS user and must read test fixtures
# (pg_read_binary_file of PG_ABS_SRCDIR/test/fixtures/...), and the Perl TAP tests run as
# postgres (initdb refuses root). Changing permissions of the clone's parent directories
# would touch things that are not ours, so the tree is copied to a fresh world-readable
# directory under /tmp and everything is built and run there. pg_regress runs as root
# (connecting as the postgres role through the socket), so results/ needs no special care;
# on failure regression.diffs, results/ and the TAP logs are copied back into the clone.
#
# Environment: DIN_TEST_PORT (default 5520) the port of the regression cluster;
# DIN_TEST_KEEP=1 keeps the staging directory; DIN_TEST_SKIP_DEPS=1 skips step 1.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${DIN_TEST_PORT:-5520}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG
started=$(date +%s)

suite_names=()
suite_results=()
record() { # record NAME passed|failed|skipped
	suite_names+=("$1")
	suite_results+=("$2")
	echo "=== $1: $2"
}

summary() {
	local i passed=0 failed=0 skipped=0
	echo
	echo "=== summary ($(($(date +%s) - started)) s)"
	for i in "${!suite_names[@]}"; do
		printf '  %-10s %s\n' "${suite_names[$i]}" "${suite_results[$i]}"
		case ${suite_results[$i]} in
		passed) passed=$((passed + 1)) ;;
		failed) failed=$((failed + 1)) ;;
		*) skipped=$((skipped + 1)) ;;
		esac
	done
	[ "$skipped" -gt 0 ] && echo "  ($skipped skipped)"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# --- 1. packages -------------------------------------------------------------------------
if [ "${DIN_TEST_SKIP_DEPS:-0}" != 1 ]; then
	if ! bash "$REPO/test/lib/deps.sh"; then
		record deps failed
		summary
		exit 1
	fi
fi

. "$REPO/test/lib/cluster.sh"
PGXS_DIR=$(dirname "$("$PG_CONFIG" --pgxs)")/..
PG_REGRESS=$(cd "$PGXS_DIR" && pwd)/test/regress/pg_regress
PERL_TEST_LIB=$(cd "$PGXS_DIR" && pwd)/test/perl

# --- staging copy ------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/din-test.XXXXXX)
chmod 755 "$WORK"
SRC=$WORK/src
mkdir "$SRC"
tar -C "$REPO" --exclude=./.git --exclude=./results --exclude=./tmp_check \
	--exclude=./regression.diffs --exclude=./regression.out --exclude=./build --exclude=__pycache__ \
	--exclude='*.o' --exclude='*.so' --exclude='*.bc' --exclude=./test/unit/din_unit --exclude=./test/fuzz/work --exclude=./test/fuzz/bin \
	-cf - . | tar -C "$SRC" -xf -
chmod -R a+rX "$SRC"
# The peer fixtures (../shared/fixtures beside the clone; DIN_SHARED overrides) go to the
# staging directory too, for the same reason; test/t/020 skips when there are none.
SHARED_SRC=${DIN_SHARED:-$REPO/../shared}
if [ -d "$SHARED_SRC/fixtures" ]; then
	mkdir -p "$WORK/shared"
	cp -r "$SHARED_SRC/fixtures" "$WORK/shared/"
	# the session-splitting unit test reads the Taobao head as ../shared/data/... too
	if [ -d "$SHARED_SRC/data/taobao-userbehavior-head" ]; then
		mkdir -p "$WORK/shared/data"
		cp -r "$SHARED_SRC/data/taobao-userbehavior-head" "$WORK/shared/data/"
	fi
	chmod -R a+rX "$WORK/shared"
fi

# Stops a TAP node left behind by a killed prove: nothing may keep running.
stop_stray_tap_nodes() {
	local pid_file
	for pid_file in "$WORK"/tap/tmp_check/t_*_data/pgdata/postmaster.pid; do
		[ -f "$pid_file" ] || continue
		cluster_as_owner "$PG_BINDIR/pg_ctl" stop -D "$(dirname "$pid_file")" -m immediate \
			>/dev/null 2>&1 || true
	done
}

cleanup() {
	local status=$?
	cluster_stop
	stop_stray_tap_nodes
	if [ "${DIN_TEST_KEEP:-0}" = 1 ]; then
		echo "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Keeps what a failed suite left, where CI (and a developer) will look: the clone's root.
save_artifacts() {
	local f
	for f in "$@"; do
		[ -e "$SRC/$f" ] || continue
		rm -rf "${REPO:?}/$f"
		mkdir -p "$(dirname "$REPO/$f")"
		cp -r "$SRC/$f" "$REPO/$f"
	done
}

# --- 2. build, install, unit tests -------------------------------------------------------
cd "$SRC" || exit 1
echo "=== build in $SRC"
# WERROR=1: in CI the compiler is known, so any warning is a mistake of ours.
if make -s -j"$(nproc)" WERROR=1 PG_CONFIG="$PG_CONFIG" && make -s install PG_CONFIG="$PG_CONFIG"; then
	record build passed
else
	record build failed
	summary
	exit 1
fi

# The committed .clang-format is the style: a file it would change fails the run.
if make -s format-check; then
	record format passed
else
	record format failed
fi

if [ -n "$(ls test/unit/*.c 2>/dev/null)" ]; then
	if make -s unit WERROR=1 PG_CONFIG="$PG_CONFIG"; then
		record unit passed
	else
		record unit failed
	fi
else
	record unit skipped
fi

# Smoke fuzz (issue 9): replay the seeds and every saved crash, then each libFuzzer target for
# FUZZ_SMOKE_SECONDS (10); `make fuzz` is the long run.
if command -v "${CLANG:-clang-14}" >/dev/null 2>&1; then
	if bash test/fuzz/run.sh smoke; then
		record fuzz passed
	else
		record fuzz failed
		save_artifacts test/fuzz/crashes
	fi
else
	record fuzz skipped
fi

# --- 3. one cluster for pg_regress and pgTAP ---------------------------------------------
if ! cluster_start "$PORT" "$WORK/cluster"; then
	record cluster failed
	summary
	exit 1
fi
trap cleanup EXIT # cluster_start installed its own; ours stops the cluster too

# The Makefile's own REGRESS list, so this never disagrees with `make installcheck`.
regress_tests=$(make -s --no-print-directory --eval 'print-regress: ; @echo $(REGRESS)' \
	print-regress PG_CONFIG="$PG_CONFIG")
if [ -n "$regress_tests" ]; then
	echo "=== regress: $regress_tests"
	if make installcheck PG_CONFIG="$PG_CONFIG"; then
		record regress passed
	else
		record regress failed
		if [ -f regression.diffs ]; then
			echo "=== regression.diffs (first 400 lines; full file in $REPO/regression.diffs)"
			head -n 400 regression.diffs
		fi
		save_artifacts regression.diffs regression.out results
	fi
else
	record regress skipped
fi

if [ -n "$(ls test/pgtap/*.sql 2>/dev/null)" ]; then
	cluster_psql -c 'CREATE DATABASE din_pgtap'
	if pg_prove --psql-bin "$PG_BINDIR/psql" --dbname din_pgtap --ext .sql \
		--failures test/pgtap/*.sql; then
		record pgtap passed
	else
		record pgtap failed
	fi
else
	record pgtap skipped
fi

# Every example README.md and docs/*.md show with output, run and compared (issue 19).
if [ -f test/doc/run_doc_tests.py ]; then
	if python3 test/doc/run_doc_tests.py --psql "$PG_BINDIR/psql"; then
		record doc passed
	else
		record doc failed
	fi
else
	record doc skipped
fi

cluster_stop

# --- 4. Perl TAP tests, as the cluster owner (initdb refuses root) -----------------------
# test/t/050_citus.pl needs Citus in this PostgreSQL: build it from ../shared/citus (beside the
# clone, or DIN_SHARED) when it is missing; the test skips, saying why, when neither exists.
CITUS_BUILD=$SHARED_SRC/citus/build.sh
if [ ! -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ] && [ -f "$CITUS_BUILD" ]; then
	if PATH="$PG_BINDIR:$PATH" bash "$CITUS_BUILD" "$WORK/citus"; then
		record citus passed
	else
		record citus failed
	fi
fi

if [ -n "$(ls test/t/*.pl 2>/dev/null)" ]; then
	mkdir -p "$WORK/tap"
	[ "$(id -u)" -eq 0 ] && chown "$CLUSTER_OWNER": "$WORK/tap"
	# LANG: the nodes' initdb takes its locale from it, and C.UTF-8 always exists on Debian
	# (a CI image may name a locale that was never generated).
	if cluster_as_owner env PATH="$PG_BINDIR:$PATH" PG_REGRESS="$PG_REGRESS" \
		TESTDIR="$WORK/tap" DIN_SRCDIR="$SRC" DIN_SHARED="$WORK/shared" HOME="$WORK/tap" \
		LANG=C.UTF-8 \
		prove -I "$PERL_TEST_LIB" -I "$SRC/test/t" test/t/*.pl; then
		record tap passed
	else
		record tap failed
		if [ -d "$WORK/tap/tmp_check/log" ]; then
			rm -rf "$REPO/tmp_check"
			mkdir -p "$REPO/tmp_check"
			cp -r "$WORK/tap/tmp_check/log" "$REPO/tmp_check/"
			echo "=== TAP logs copied to $REPO/tmp_check/log"
		fi
	fi
else
	record tap skipped
fi

summary
