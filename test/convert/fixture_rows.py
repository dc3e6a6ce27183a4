#!/usr/bin/env python3
"""Writes the rows of a peer fixture's NAME.test.npz as din_score inputs, for COPY ... CSV HEADER:
id,history,ad_id,context,dense,expected (arrays as PostgreSQL literals, NULL when empty).

    fixture_rows.py LIBRARY SPEC.json TEST.npz OUT.csv

The SPEC says which columns are the item, the history and the context (the converter's
sql_inputs); the history keeps only the real behaviours (the first seq_length slots, or the
non-zero slots of a front-padded torch-rechub sequence), oldest first.
"""

import csv
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "tools"))
from dinconvert.cli import sql_inputs  # noqa: E402


def literal(values):
    return "{" + ",".join(str(v) for v in values) + "}"


def main(library, spec_path, npz_path, out_path):
    with open(spec_path) as f:
        cols = sql_inputs(library, json.load(f))
    z = np.load(npz_path)
    hist = z[cols["history"]]
    with open(out_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "history", "ad_id", "context", "dense", "expected"])
        for i in range(len(z["pred"])):
            if cols["length"]:
                h = hist[i, :int(z[cols["length"]][i])]
            else:
                h = hist[i][hist[i] != 0]
            ctx = [int(z[c][i]) for c in cols["context"]]
            dense = [repr(float(x)) for c in cols["dense"] for x in np.atleast_1d(z[c][i])]
            w.writerow([i, literal(int(x) for x in h), int(z[cols["item"]][i]),
                        literal(ctx) if ctx else "", literal(dense) if dense else "",
                        repr(float(z["pred"][i]))])


if __name__ == "__main__":
    main(*sys.argv[1:])
