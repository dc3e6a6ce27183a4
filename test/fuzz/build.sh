#!/bin/bash
# test/fuzz/build.sh - build the libFuzzer targets into test/fuzz/bin with ASan + UBSan.
# Called by `make fuzz` and test/fuzz/run.sh; needs clang 14 and its runtimes.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLANG=${CLANG:-clang-14}
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
OPENBLAS=${OPENBLAS_SERIAL:-/usr/lib/$MULTIARCH/openblas-serial}
cd "$REPO"
mkdir -p test/fuzz/bin
# -fno-sanitize-recover: UB is a finding, not a warning scrolling past.
FLAGS=(-std=gnu11 -g -O1 -Isrc -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=all -fno-omit-frame-pointer -Wall -Wno-unused-parameter)
# The core is compiled once, two files at a time, and linked into every target.
OBJ=test/fuzz/bin/obj
rm -rf "$OBJ"
mkdir -p "$OBJ"
pids=()
for f in src/nn/*.c src/models/*.c src/format/*.c src/metrics_core.c test/fuzz/fuzz_common.c; do
	[ "$(jobs -rp | wc -l)" -lt 2 ] || wait -n
	"$CLANG" "${FLAGS[@]}" -c -o "$OBJ/$(echo "${f%.c}" | tr / _).o" "$f" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for t in file config score state; do
	"$CLANG" "${FLAGS[@]}" -o "test/fuzz/bin/fuzz_$t" "test/fuzz/fuzz_$t.c" "$OBJ"/*.o \
		-L"$OPENBLAS" -l:libopenblas.so.0 -Wl,-rpath,"$OPENBLAS" -lm
done
