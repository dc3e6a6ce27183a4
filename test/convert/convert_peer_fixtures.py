#!/usr/bin/env python3
"""Converts every peer fixture (test/fixtures/peer/<library>/, made by make_peer_fixtures.py) with
tools/din-convert, so that `make unit` scores them without PostgreSQL:

    /usr/bin/python3 test/convert/convert_peer_fixtures.py [DIR]

writes per case CASE.safetensors (the converter's output) and CASE.csv (the test rows as
fixture_rows.py writes them: id,history,ad_id,context,dense,expected), and DIR/cases.txt, one line
per case for test/unit/test_fixtures.c: `library/case scope [reason]`, where scope is `ok`
(every row must match), `empty` (rows with an empty history are expected to differ), `all`
(every row may differ) or `refused` (the converter refuses the model). The expected failures
come from the manifests (make_peer_fixtures.py declares them with their reason). Needs numpy only.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
import fixture_rows  # noqa: E402


def main(d):
    lines, unexpected = [], []
    for library in sorted(os.listdir(d)):
        ld = os.path.join(d, library)
        if not os.path.isfile(os.path.join(ld, "manifest.json")):
            continue
        with open(os.path.join(ld, "manifest.json")) as f:
            manifest = json.load(f)
        for name, entry in manifest.items():
            base = os.path.join(ld, name)
            expect = entry.get("expected_failure") or {}
            scope, reason = expect.get("rows", "ok"), expect.get("reason", "")
            r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "din-convert"),
                                library, "--weights", base + ".weights.npz", "--spec",
                                base + ".spec.json", "--items",
                                os.path.join(ld, "cate_of_item.npy"), "-o", base + ".safetensors"],
                               capture_output=True, text=True)
            print("%s/%s: %s" % (library, name, r.stderr.strip().replace("\n", "\n  ")))
            if r.returncode != 0:
                for stale in (base + ".safetensors", base + ".csv"):
                    if os.path.exists(stale):
                        os.remove(stale)
                if scope != "refused":
                    unexpected.append("%s/%s" % (library, name))
                lines.append("%s/%s refused %s" % (library, name, reason or r.stderr.strip()))
                continue
            if scope == "refused":  # the refusal is gone: score it, still as expected to differ
                print("  converted although expected to be refused: scoring it as scope all")
                scope = "all"
            fixture_rows.main(library, base + ".spec.json", base + ".test.npz", base + ".csv")
            lines.append(("%s/%s %s %s" % (library, name, scope, reason)).rstrip())
    with open(os.path.join(d, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    if unexpected:
        sys.exit("refused by the converter: %s" % ", ".join(unexpected))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "test", "fixtures", "peer"))
