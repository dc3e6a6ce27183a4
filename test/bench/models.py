#!/usr/bin/python3
"""The bench's models, as rows of the table make bench prints, and their FLOP counts.

Each architecture is one entry of MODELS: a config at its paper's sizes and a function that
counts the multiply-adds of one candidate. DIEN, DSIN and BST are added here as rows once din
implements them; until then the table names them as not implemented.

    /usr/bin/python3 models.py OUTDIR      writes OUTDIR/<name>.safetensors (random weights)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))

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


# name -> (config builder, macs counter); later architectures become rows here
MODELS = {"din": (din_config, din_macs), "base": (base_config, base_macs)}
NOT_YET = ["dien", "dsin", "bst"]


def write(outdir):
    import torch
    import dinref

    torch.manual_seed(8)
    ids = np.arange(ITEMS)
    items = (ids, (ids * 7919 + 13) % CATES)
    for name, (build, _) in MODELS.items():
        cfg = build(100)
        m = dinref.DinRef(cfg, items=items)
        dinref.write_model(os.path.join(outdir, "amazon_%s.safetensors" % name), cfg,
                           m.tensors())


if __name__ == "__main__":
    write(sys.argv[1])
