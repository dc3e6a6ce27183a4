#!/usr/bin/python3
"""The bench's models, as rows of the table make bench prints, and their FLOP counts.

Each architecture is one entry of MODELS: a config at its paper's sizes and a function that
counts the multiply-adds of one candidate. TORCH names the models timed in PyTorch: DIN, base
and DIEN through the project's reference (dinref.DinRef); BST and DSIN through batched stock
torch ops in torch_bench.py (bstref.py and dsinref.py score one sample at a time in float64;
torch_bench.py --check compares the two). DSIN's inputs need a time per behaviour: run.sh
gives every bench history times in sessions of 10 behaviours a minute apart, an hour between
sessions.

    /usr/bin/python3 models.py OUTDIR      writes OUTDIR/<name>.safetensors (random weights)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))  # dinref

ITEMS = 100000   # Amazon Books in DIEN has ~368k items; 100k keeps import fast, cost is the same
CATES = 1601
USERS = 10000
DIM = 18         # DIEN paper, Amazon: 18 per field


def _fields():
    return [{"name": "user", "rows": USERS, "dim": DIM},
            {"name": "item", "rows": ITEMS, "dim": DIM},
            {"name": "cate", "rows": CATES, "dim": DIM}]


def din_config(max_len):
    """DIEN repository's Model_DIN: attention 80-40 sigmoid with softmax, Dice tower 200-80."""
    return {
        "format": 1, "architecture": "din", "max_len": max_len,
        "fields": _fields(), "item": {"attributes": ["cate"]},
        "target": ["item", "cate"], "behaviour": ["item", "cate"], "context": ["user"],
        "attention": {"type": "din",
                      "layers": [{"units": 80, "activation": {"type": "sigmoid"}},
                                 {"units": 40, "activation": {"type": "sigmoid"}}],
                      "normalization": "softmax"},
        "tower": {"inputs": ["context", "target", "history_sum", "target*history_sum",
                             "attention"],
                  "input_batch_norm": {"eps": 1e-3},
                  "layers": [{"units": 200, "activation": {"type": "dice", "eps": 1e-9}},
                             {"units": 80, "activation": {"type": "dice", "eps": 1e-9}}],
                  "head": {"type": "softmax2", "column": 0, "epsilon": 1e-8}},
    }


def base_config(max_len):
    """DIEN repository's Model_DNN (Embedding&MLP): PReLU tower 200-80 over the history sum."""
    return {
        "format": 1, "architecture": "base", "max_len": max_len,
        "fields": _fields(), "item": {"attributes": ["cate"]},
        "target": ["item", "cate"], "behaviour": ["item", "cate"], "context": ["user"],
        "tower": {"inputs": ["context", "target", "history_sum"],
                  "input_batch_norm": {"eps": 1e-3},
                  "layers": [{"units": 200, "activation": {"type": "prelu"}},
                             {"units": 80, "activation": {"type": "prelu"}}],
                  "head": {"type": "softmax2", "column": 0, "epsilon": 1e-8}},
    }


def dien_config(max_len):
    """DIEN paper, Amazon: embedding 18 per field, GRU hidden 36 (= item + cate), AUGRU, the
    attention unit 80-40 on [q, h, q-h, q*h] with softmax, tower 200-80 (DeepCTR-Torch form:
    PyTorch GRU conventions, paper AUGRU, interest first)."""
    return {
        "format": 1, "architecture": "dien", "max_len": max_len,
        "fields": _fields(), "item": {"attributes": ["cate"]},
        "target": ["item", "cate"], "behaviour": ["item", "cate"], "context": ["user"],
        "sequence": {"type": "gru", "hidden": 2 * DIM, "convention": "pytorch"},
        "attention": {"type": "din", "normalization": "softmax",
                      "layers": [{"units": 80, "activation": {"type": "sigmoid"}},
                                 {"units": 40, "activation": {"type": "sigmoid"}}]},
        "evolution": {"type": "augru", "form": "paper", "convention": "pytorch"},
        "tower": {"inputs": ["interest", "context", "target", "history_sum"],
                  "layers": [{"units": 200, "activation": {"type": "prelu"}},
                             {"units": 80, "activation": {"type": "prelu"}}],
                  "head": {"type": "softmax2", "column": 0, "epsilon": 1e-8}},
    }


BST_DIM = 16  # per field: D = 32 splits into the paper's 8 heads


def bst_config(max_len):
    """BST paper (Alibaba): 8 heads, one block, sequence 20 + the target, MLP 1024-512-256
    LeakyReLU; torch-rechub's layout (index positions added, post-norm, target read-out)."""
    D = 2 * BST_DIM
    return {
        "format": 1, "architecture": "bst", "max_len": 20,
        "fields": [{"name": "user", "rows": USERS, "dim": DIM},
                   {"name": "item", "rows": ITEMS, "dim": BST_DIM},
                   {"name": "cate", "rows": CATES, "dim": BST_DIM}],
        "item": {"attributes": ["cate"]}, "target": ["item", "cate"],
        "behaviour": ["item", "cate"], "context": ["user"],
        "transformer": {"target": True, "layout": "pytorch", "heads": 8, "blocks": 1,
                        "norm": "post", "eps": 1e-5,
                        "ffn": {"units": 4 * D,
                                "activation": {"type": "leaky_relu", "slope": 0.01}},
                        "positions": [{"type": "index", "combine": "add", "align": "end",
                                       "width": 20}],
                        "readout": "target"},
        "tower": {"inputs": ["interest", "target", "context"],
                  "layers": [{"units": u, "activation": {"type": "leaky_relu", "slope": 0.01}}
                             for u in (1024, 512, 256)],
                  "head": {"type": "sigmoid", "bias": True}},
    }


DSIN_DIM = 4  # per field: E = 8 splits into the paper's 8 heads (DeepCTR's DSIN default)


def dsin_config(max_len):
    """DSIN paper: K = 5 sessions of T = 10, self-attention with 8 heads and positional bias,
    a Bi-LSTM over the sessions, the DIN unit over both; DeepCTR's DSIN layout (2-layer Bi-LSTM
    averaged, hard_sigmoid, unit 64-16), tower 200-80."""
    unit = {"type": "din", "normalization": "softmax",
            "layers": [{"units": 64, "activation": {"type": "sigmoid"}},
                       {"units": 16, "activation": {"type": "sigmoid"}}]}
    return {
        "format": 1, "architecture": "dsin", "max_len": 50,
        "fields": [{"name": "item", "rows": ITEMS, "dim": DSIN_DIM},
                   {"name": "cate", "rows": CATES, "dim": DSIN_DIM},
                   {"name": "user", "rows": USERS, "dim": 3}],
        "item": {"attributes": ["cate"]}, "target": ["item", "cate"],
        "behaviour": ["item", "cate"], "context": ["user"],
        "sessions": {"count": 5, "length": 10, "gap": 1800},
        "extractor": {"heads": 8, "encoding": "positional", "blinding": True,
                      "pooling": "mean_all"},
        "interacting": {"type": "bilstm", "layers": 2, "merge": "ave",
                        "recurrent_activation": "hard_sigmoid"},
        "session_attention": unit, "interacting_attention": unit,
        "tower": {"inputs": ["context", "target", "session_interest", "session_interacting"],
                  "layers": [{"units": 200, "activation": {"type": "relu"}},
                             {"units": 80, "activation": {"type": "relu"}}],
                  "head": {"type": "sigmoid"}},
    }


def _tower_macs(cfg, tower_in):
    macs, width = 0, tower_in
    for layer in cfg["tower"]["layers"]:
        macs += width * layer["units"]
        width = layer["units"]
    return macs + width * 2


def din_macs(cfg, T, per_history_share):
    """Multiply-adds per candidate. din: the first attention layer split into a history part
    (T E U1, shared by the history's candidates: per_history_share = 1/candidates), a query
    part (E U1) and a per-pair product part (E U1); torch: the unsplit 4E-wide first layer."""
    E, U1, U2 = 2 * DIM, 80, 40
    tower = _tower_macs(cfg, DIM + 4 * E)
    pair = E * U1 + U1 * U2 + U2 + E      # product part, layer 2, out, pooling
    din = E * U1 + T * pair + tower + per_history_share * (T * E * U1 + T * E)
    torch = T * (4 * E * U1 + U1 * U2 + U2 + E) + tower + T * E
    return din, torch


def base_macs(cfg, T, per_history_share):
    tower = _tower_macs(cfg, DIM + 2 * 2 * DIM)
    return tower + per_history_share * T * 2 * DIM, tower + T * 2 * DIM


def dien_macs(cfg, T, per_history_share):
    """din: the extractor GRU (T steps, input and hidden products) once per history, then per
    candidate the unit over T states and the evolution GRU (hidden products per step; its input
    products are the extractor states' and shared); torch: everything per candidate."""
    E, H, U1, U2 = 2 * DIM, 2 * DIM, 80, 40
    extractor = T * (3 * H * E + 3 * H * H)
    unit = T * (4 * H * U1 + U1 * U2 + U2)
    evolution = T * 3 * H * H
    shared_in = T * 3 * H * H  # evolution input products over the extractor states
    tower = _tower_macs(cfg, H + DIM + 2 * E)
    din = unit + evolution + tower + per_history_share * (extractor + shared_in)
    torch = extractor + unit + evolution + shared_in + tower
    return din, torch


def bst_macs(cfg, T, per_history_share):
    """torch: one transformer block over the 20 behaviours and the target, every row, then the
    tower. din: the behaviours' projections once per history; per candidate only the target
    row's projections, its attention over the 21 rows, its output projection and feed-forward
    (the target read-out reads no other row of the last block), then the tower."""
    D, F, L = 2 * BST_DIM, 4 * 2 * BST_DIM, 21
    block = L * 3 * D * D + 2 * L * L * D + L * D * D + L * 2 * D * F
    target_row = 3 * D * D + 2 * L * D + D * D + 2 * D * F
    tower = _tower_macs(cfg, D + D + DIM)
    return target_row + tower + per_history_share * (L - 1) * 3 * D * D, block + tower


def dsin_macs(cfg, T, per_history_share):
    """Per history: the session extractor (q, k, v, scores, values, FFN 4E over K x 10 rows)
    and the 2-layer Bi-LSTM over K steps; per candidate: both units over K rows, the tower."""
    E, K, L, H = 2 * DSIN_DIM, 5, 10, 2 * DSIN_DIM
    extractor = K * (3 * L * E * E + 2 * L * L * E + 2 * L * E * 4 * E)
    lstm = 2 * 2 * K * 4 * H * (E + H)
    units = 2 * K * (4 * E * 64 + 64 * 16 + 16 + E)
    tower = _tower_macs(cfg, 3 + E + E + H)
    return units + tower + per_history_share * (extractor + lstm), \
        units + tower + extractor + lstm


# name -> (config builder, macs counter); the T each is benched at
MODELS = {"din": (din_config, din_macs), "base": (base_config, base_macs),
          "dien": (dien_config, dien_macs), "dsin": (dsin_config, dsin_macs),
          "bst": (bst_config, bst_macs)}
LENGTHS = {"din": (10, 50, 100), "base": (10, 50, 100), "dien": (50,), "dsin": (50,),
           "bst": (20,)}
TORCH = ["din", "base", "dien", "dsin", "bst"]
# per-row din_score with repeated histories: REUSE_USERS histories (at each model's REUSE
# length) with REUSE_IMPRESSIONS candidates each, against the array form on the same pairs
REUSE = {"din": 50, "base": 50, "dien": 50, "dsin": 50, "bst": 20}
REUSE_USERS = 500
REUSE_IMPRESSIONS = 20
NOT_YET = []


def write(outdir):
    import torch
    import dinref

    torch.manual_seed(8)
    ids = np.arange(ITEMS)
    items = (ids, (ids * 7919 + 13) % CATES)
    for name, (build, _) in MODELS.items():
        cfg = build(100)
        path = os.path.join(outdir, "amazon_%s.safetensors" % name)
        if name == "dsin":
            import make_dsin_fixtures
            t = make_dsin_fixtures.tensors_for(cfg, np.random.default_rng(8))
            t["items.id"], t["items.attributes"] = ids, items[1].reshape(-1, 1)
            dinref.write_model(path, cfg, t)
            continue
        if name == "bst":
            import make_bst_fixtures
            t = make_bst_fixtures.random_weights(dict(config=cfg, items=items),
                                                 np.random.default_rng(8))
            dinref.write_model(path, cfg, t)
            continue
        m = dinref.DinRef(cfg, items=items)
        dinref.write_model(path, cfg, m.tensors())


if __name__ == "__main__":
    write(sys.argv[1])
