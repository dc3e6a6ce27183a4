#!/bin/bash
# test/convert/run.sh - the converter's unit tests (python3 with numpy; no torch, no database).
# Prints "N passed, N failed" and exits 1 on any failure. DIN_PYTHON picks the interpreter.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec bash "$here/../lib/pyunit.sh" "$here" test_convert
