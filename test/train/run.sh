#!/bin/bash
# test/train/run.sh - din-train's unit tests (python3 with numpy and torch; no database).
# Prints "N passed, N failed" and exits 1 on any failure. DIN_PYTHON picks the interpreter.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${DIN_PYTHON:-$([ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)}
export PYTHONDONTWRITEBYTECODE=1
out=$(cd "$here" && "$python" -m unittest -v test_train 2>&1)
status=$?
echo "$out" | grep -E ' \.\.\. |^(FAIL|ERROR):|^Traceback|Error' | sed 's/^/  /'
passed=$(echo "$out" | grep -c ' \.\.\. ok$')
failed=$(echo "$out" | grep -cE ' \.\.\. (FAIL|ERROR)$')
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] || { echo "$out" | tail -40; exit 1; }
