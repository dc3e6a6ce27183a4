#!/bin/bash
# test/lib/pyunit.sh DIR MODULE - run a Python unittest module from DIR (the converter's and
# din-train's unit tests). Prints "N passed, N failed" and exits 1 on any failure. DIN_PYTHON
# picks the interpreter (default Debian's /usr/bin/python3, which has numpy and torch).
set -uo pipefail
dir=$1
module=$2
python=${DIN_PYTHON:-$([ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)}
export PYTHONDONTWRITEBYTECODE=1
out=$(cd "$dir" && "$python" -m unittest -v "$module" 2>&1)
status=$?
echo "$out" | grep -E ' \.\.\. |^(FAIL|ERROR):|^Traceback|Error' | sed 's/^/  /'
passed=$(echo "$out" | grep -c ' \.\.\. ok$')
failed=$(echo "$out" | grep -cE ' \.\.\. (FAIL|ERROR)$')
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] || { echo "$out" | tail -40; exit 1; }
