#!/usr/bin/python3
"""Write the tiny models of the pg_regress tests (test/fixtures/tiny_*.safetensors) and print
the scores din must give for the requests the tests make, computed here independently in
double precision with nothing but the standard library (docs/FORMAT.md is the contract).

Weights are multiples of 1/8, so float32 holds them exactly and din's float32 results agree with
these to about 1e-6.

    /usr/bin/python3 test/reference/make_tiny.py [outdir]
"""
import json
import math
import os
import struct
import sys


def values(n, seed):
    """n deterministic weights in [-1, 1], multiples of 1/8."""
    return [(((k + seed) * 37 + 11) % 17 - 8) / 8.0 for k in range(n)]


def write_safetensors(path, config, tensors):
    """tensors: list of (name, dtype, shape, flat values) in file order."""
    header = {"__metadata__": {"din.config": json.dumps(config), "format": "pt"}}
    blobs = []
    offset = 0
    for name, dtype, shape, flat in tensors:
        code = "<%d%s" % (len(flat), "f" if dtype == "F32" else "q")
        blob = struct.pack(code, *flat)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned, as safetensors does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def matvec(w, x, rows, cols, b=None):
    return [sum(w[r * cols + c] * x[c] for c in range(cols)) + (b[r] if b else 0.0)
            for r in range(rows)]


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


# ---- tiny_din: vocabulary, items table with one attribute, a context field, one dense value
DIN_CONFIG = {
    "format": 1,
    "architecture": "din",
    "max_len": 3,
    "fields": [
        {"name": "item", "rows": 5, "dim": 2},
        {"name": "cate", "rows": 3, "dim": 2, "oov": "zero"},
        {"name": "user", "rows": 4, "dim": 2, "oov": 0},
    ],
    "item": {"attributes": ["cate"]},
    "target": ["item", "cate"],
    "behaviour": ["item", "cate"],
    "context": ["user"],
    "dense": 1,
    "attention": {
        "type": "din",
        "layers": [{"units": 3, "activation": {"type": "sigmoid"}}],
        "normalization": "none",
    },
    "tower": {
        "inputs": ["context", "target", "attention", "dense"],
        "layers": [{"units": 3, "activation": {"type": "relu"}}],
        "head": {"type": "sigmoid", "bias": True},
    },
}
D = {
    "fields.item.weight": ([5, 2], values(10, 1)),
    "fields.cate.weight": ([3, 2], values(6, 2)),
    "fields.user.weight": ([4, 2], values(8, 3)),
    "attention.mlp.0.weight": ([3, 16], values(48, 4)),
    "attention.mlp.0.bias": ([3], values(3, 5)),
    "attention.out.weight": ([1, 3], values(3, 6)),
    "attention.out.bias": ([1], values(1, 7)),
    "tower.0.weight": ([3, 11], values(33, 8)),
    "tower.0.bias": ([3], values(3, 9)),
    "head.weight": ([1, 3], values(3, 10)),
    "head.bias": ([1], [0.125]),
}
VOCAB_ITEM = [100, 101, 102, 103, 104]
ITEMS = {100: 0, 101: 1, 102: 2, 103: 1}  # item 104 has no row: its cate is unknown -> zero


def din_row(table, dim, row):
    return table[row * dim:(row + 1) * dim] if row is not None else [0.0] * dim


def din_item_vector(item):
    row = VOCAB_ITEM.index(item)  # unknown item: oov "error"
    cate = ITEMS.get(item)
    return din_row(D["fields.item.weight"][1], 2, row) + din_row(D["fields.cate.weight"][1], 2, cate)


def din_forward(history, ad, user, dense):
    kept = history[-DIN_CONFIG["max_len"]:] if history else []
    q = din_item_vector(ad)
    weights = []
    u = [0.0] * 4
    for item in kept:
        k = din_item_vector(item)
        z = q + k + [a - b for a, b in zip(q, k)] + [a * b for a, b in zip(q, k)]
        h = [sigmoid(v) for v in matvec(D["attention.mlp.0.weight"][1], z, 3, 16,
                                         D["attention.mlp.0.bias"][1])]
        s = matvec(D["attention.out.weight"][1], h, 1, 3, D["attention.out.bias"][1])[0]
        weights.append(s)
        u = [a + s * b for a, b in zip(u, k)]
    urow = user if 0 <= user < 4 else 0  # oov row 0
    x = din_row(D["fields.user.weight"][1], 2, urow) + q + u + [dense]
    h = [max(v, 0.0) for v in matvec(D["tower.0.weight"][1], x, 3, 11, D["tower.0.bias"][1])]
    p = sigmoid(matvec(D["head.weight"][1], h, 1, 3, D["head.bias"][1])[0])
    return p, weights


# ---- tiny_base: Embedding&MLP, ids are rows, oov zero
BASE_CONFIG = {
    "format": 1,
    "architecture": "base",
    "max_len": 4,
    "fields": [{"name": "item", "rows": 6, "dim": 2, "oov": "zero"}],
    "target": ["item"],
    "behaviour": ["item"],
    "tower": {
        "inputs": ["history_mean", "target"],
        "layers": [{"units": 2, "activation": {"type": "tanh"}}],
        "head": {"type": "sigmoid", "bias": True},
    },
}
B = {
    "fields.item.weight": ([6, 2], values(12, 11)),
    "tower.0.weight": ([2, 4], values(8, 12)),
    "tower.0.bias": ([2], values(2, 13)),
    "head.weight": ([1, 2], values(2, 14)),
    "head.bias": ([1], [-0.25]),
}


def base_forward(history, ad):
    table = B["fields.item.weight"][1]
    emb = lambda i: din_row(table, 2, i if 0 <= i < 6 else None)
    kept = history[-BASE_CONFIG["max_len"]:] if history else []
    mean = [0.0, 0.0]
    for item in kept:
        mean = [a + b / len(kept) for a, b in zip(mean, emb(item))]
    x = mean + emb(ad)
    h = [math.tanh(v) for v in matvec(B["tower.0.weight"][1], x, 2, 4, B["tower.0.bias"][1])]
    return sigmoid(matvec(B["head.weight"][1], h, 1, 2, B["head.bias"][1])[0])


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    # id tensors in the middle on purpose: din_export moves them after the weights
    din_tensors = [("fields.item.weight", "F32") + D["fields.item.weight"],
                   ("vocab.item", "I64", [5], VOCAB_ITEM),
                   ("items.id", "I64", [4], list(ITEMS.keys())),
                   ("items.attributes", "I64", [4, 1], list(ITEMS.values()))]
    din_tensors += [(name, "F32") + D[name] for name in D if name != "fields.item.weight"]
    write_safetensors(os.path.join(outdir, "tiny_din.safetensors"), DIN_CONFIG, din_tensors)
    write_safetensors(os.path.join(outdir, "tiny_base.safetensors"), BASE_CONFIG,
                      [(name, "F32") + B[name] for name in B])

    print("tiny_din")
    for history, ad, user, dense in [([100, 101, 102], 103, 1, 0.5),
                                     ([104, 100, 101, 102, 103], 100, 2, -1.0),
                                     ([], 101, 3, 0.0),
                                     ([103], 104, 7, 2.0),
                                     ([100, 101, 102], 100, 1, 0.5),
                                     ([100, 101, 102], 104, 1, 0.5)]:
        p, w = din_forward(history, ad, user, dense)
        print("  history=%s ad=%d user=%d dense=%g: p=%.9f weights=%s"
              % (history, ad, user, dense, p, ["%.9f" % v for v in w]))
    print("tiny_base")
    for history, ad in [([1, 2, 3], 4), ([0, 1, 2, 3, 4, 5], 2), ([], 5), ([9], 9), ([1, 2, 3], 0)]:
        print("  history=%s ad=%d: p=%.9f" % (history, ad, base_forward(history, ad)))


if __name__ == "__main__":
    main()
