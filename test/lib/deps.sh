#!/bin/bash
# test/lib/deps.sh - install the Debian 12 packages that building and testing din need,
# only those missing (apt-get update runs only when something is missing).
#
#   bash test/lib/deps.sh [EXTRA-PACKAGE ...]     (as root; as another user it only checks)
#
# Exits 0 when everything is present afterwards, 1 otherwise.
set -euo pipefail

packages=(
	build-essential                       # gcc, make, libc headers
	postgresql-15                         # server binaries, pg_ctl, initdb
	postgresql-client-15                  # psql, pg_dump, PostgreSQL::Test::Cluster
	postgresql-server-dev-15              # PGXS, pg_regress, clang-14 for the JIT bitcode
	postgresql-15-pgtap                   # the pgtap extension
	libtap-parser-sourcehandler-pgtap-perl # pg_prove
	libopenblas-dev                       # cblas.h
	libopenblas0-serial                   # the single-threaded BLAS din links
	libipc-run-perl                       # IPC::Run, required by PostgreSQL::Test::Utils
	perl                                  # prove, Test::More
	python3-numpy                         # tools/din-convert and its tests
	python3-psycopg2                      # din-convert --import, the README's Python import (tested)
	python3-torch                         # tools/din-train and its tests (test/t/05*_train*.pl)
	python3-tqdm                          # din-train's progress bar
	clang-14                              # libFuzzer targets (the fuzz smoke suite)
	clang-format                          # make format-check
	libclang-rt-14-dev                    # ASan, UBSan and libFuzzer runtimes
	"$@"
)

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#packages[@]} packages present"
	exit 0
fi

echo "deps: missing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: not root, cannot install; run: apt-get install ${missing[*]}" >&2
	exit 1
fi

# Installing postgresql-15 would otherwise create and start Debian's own "main" cluster;
# a test run must leave no server behind, so forbid service starts during the install
# (only when no policy is in place already, and removed again whatever happens).
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi
remove_policy() {
	if [ "$own_policy" = 1 ]; then
		rm -f "$policy"
	fi
}
trap remove_policy EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

still=()
for p in "${packages[@]}"; do
	installed "$p" || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
	echo "deps: still missing after install: ${still[*]}" >&2
	exit 1
fi
echo "deps: installed ${missing[*]}"
