#!/bin/bash
# test/train/run.sh - din-train's unit tests (python3 with numpy and torch; no database).
# Prints "N passed, N failed" and exits 1 on any failure. DIN_PYTHON picks the interpreter.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec bash "$here/../lib/pyunit.sh" "$here" test_train
