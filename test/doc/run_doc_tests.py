#!/usr/bin/env python3
"""Runs the examples of README.md and docs/*.md and checks the output they show.

A block is tested when the line before its opening fence is `<!-- doctest -->` (an HTML comment:
readers of the rendered Markdown do not see it):

    <!-- doctest -->
    ```sql
    SELECT 1 AS one;
    ```
    ```
     one
    -----
       1
    ```

`sql` blocks run in psql (-X -q, no footer, from the repository root, so relative paths in
\\lo_import or \\copy name files of the checkout); consecutive ones share one session, as a
reader typing them in order would. `python` blocks run from the repository root with Debian's
/usr/bin/python3 (where test/lib/deps.sh installs python3-psycopg2), else this interpreter.
When a plain ``` block follows right after, it is what the block must print (trailing spaces
and surrounding blank lines ignored); a block without one must print no error. Each Markdown
file gets a fresh database, doctest_<name>, dropped first, reached through the usual PG*
environment variables (PGDATABASE is set to it for python blocks).

    test/doc/run_doc_tests.py [--psql PSQL] [--accept] [FILE.md ...]

--accept writes what the blocks printed into the files' output blocks (review the diff!).
Exits 1 when a block fails.
"""

import argparse
import difflib
import glob
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARKER = "<!-- doctest -->"
SEPARATOR = "<<<doctest block %d>>>"
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


class Block:
    def __init__(self, lang, start, code, expected, out_start, out_end):
        self.lang = lang  # "sql" or "python"
        self.start = start  # 1-based line of the opening fence
        self.code = code
        self.expected = expected  # None: no output block
        self.out_start, self.out_end = out_start, out_end  # 0-based lines inside the output fence
        self.actual = None


def parse(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != MARKER:
            i += 1
            continue
        fence = lines[i + 1] if i + 1 < len(lines) else ""
        m = re.match(r"^```(sql|python)\s*$", fence)
        if not m:
            raise SystemExit("%s:%d: %s must precede a ```sql or ```python block"
                             % (path, i + 1, MARKER))
        j = i + 2
        while j < len(lines) and lines[j] != "```":
            j += 1
        code = "\n".join(lines[i + 2:j]) + "\n"
        expected = out_start = out_end = None
        k = j + 1
        if k < len(lines) and lines[k] == "```":
            out_start = k + 1
            out_end = out_start
            while out_end < len(lines) and lines[out_end] != "```":
                out_end += 1
            expected = "\n".join(lines[out_start:out_end])
            k = out_end + 1
        blocks.append(Block(m.group(1), i + 2, code, expected, out_start, out_end))
        i = k
    return lines, blocks


def normalize(text):
    # psql prefixes messages read from a script with "psql:<stdin>:N: "; a reader sees none
    out = [re.sub(r"^psql:<stdin>:\d+: ", "", line).rstrip() for line in text.split("\n")]
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return out


def run(cmd, stdin=None, env=None):
    # one stream, so a message lands in the block that raised it
    p = subprocess.run(cmd, input=stdin, cwd=REPO, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def run_sql_group(psql, db, group):
    script = []
    for n, b in enumerate(group):
        script.append("\\echo '%s'\n" % (SEPARATOR % n))
        script.append(b.code)
    _, out = run([psql, "-X", "-q", "-P", "footer=off", "-d", db], "".join(script))
    parts = re.split(r"^<<<doctest block (\d+)>>>\n", out, flags=re.M)
    # parts: [before, "0", text0, "1", text1, ...]; a block cut short by a crash is missing
    texts = {int(parts[k]): parts[k + 1] for k in range(1, len(parts) - 1, 2)}
    for n, b in enumerate(group):
        b.actual = texts.get(n, "(no output: psql stopped before this block)\n" + parts[0])


def check_file(path, psql, accept):
    lines, blocks = parse(path)
    if not blocks:
        return 0, 0
    name = re.sub(r"[^a-z0-9]+", "_", os.path.splitext(os.path.basename(path))[0].lower())
    db = "doctest_" + name
    rc, out = run([psql, "-X", "-q", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS " + db,
                   "-c", "CREATE DATABASE " + db])
    if rc != 0:
        raise SystemExit("cannot create database %s: %s" % (db, out))
    env = dict(os.environ, PGDATABASE=db, PYTHONDONTWRITEBYTECODE="1")
    i = 0
    while i < len(blocks):
        if blocks[i].lang == "python":
            _, blocks[i].actual = run([PYTHON, "-"], blocks[i].code, env)
            i += 1
            continue
        j = i
        while j < len(blocks) and blocks[j].lang == "sql":
            j += 1
        run_sql_group(psql, db, blocks[i:j])
        i = j

    failed = 0
    rel = os.path.relpath(path, REPO)
    for b in blocks:
        actual = normalize(b.actual)
        if b.expected is None:
            ok = not any(re.search(r"\b(ERROR|FATAL|PANIC|Traceback)\b", l) for l in actual)
        else:
            ok = actual == normalize(b.expected)
        print("%s %s:%d (%s)" % ("ok    " if ok else "FAILED", rel, b.start, b.lang))
        if not ok:
            failed += 1
            want = normalize(b.expected) if b.expected is not None else ["(no error)"]
            sys.stdout.writelines(
                l + "\n" for l in difflib.unified_diff(want, actual, "shown", "printed",
                                                       lineterm=""))
    if accept:
        for b in sorted((b for b in blocks if b.expected is not None),
                        key=lambda b: b.out_start, reverse=True):
            lines[b.out_start:b.out_end] = normalize(b.actual)
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
    run([psql, "-X", "-q", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS " + db])
    return len(blocks), failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--psql", default="psql")
    ap.add_argument("--accept", action="store_true")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()
    files = args.files or [os.path.join(REPO, "README.md")] + sorted(
        glob.glob(os.path.join(REPO, "docs", "*.md")))
    total = failed = 0
    for path in files:
        n, f = check_file(os.path.abspath(path), args.psql, args.accept)
        total += n
        failed += f
    print("doc tests: %d blocks, %d failed" % (total, failed))
    return 1 if failed or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
