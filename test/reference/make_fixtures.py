"""Regenerate test/fixtures/ from dinref.py (run: make fixtures, with /usr/bin/python3).

For each variant: <variant>.safetensors (random but unsaturated weights), <variant>.csv
(id,history,ad_id,context,dense,expected) and, for DIN variants, <variant>.explain.csv
(id,pos,weight). Then bad/*.safetensors, files din must refuse. Everything is seeded, so a rerun
writes the same bytes. The script checks what it wrote before it exits (see check_*).
"""

import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))  # dinref
import dinref  # noqa: E402

OUT = os.path.join(HERE, "..", "fixtures")
N_ROWS = 300
N_EXPLAIN = 20


# ---------------------------------------------------------------------------------------------
# Variants
# ---------------------------------------------------------------------------------------------

def _dice(eps, **kw):
    return dict({"type": "dice", "eps": eps}, **kw)


def din_deepctr_torch():
    """DeepCTR-Torch DIN: shared item/cate tables, user context, 64-16 Dice with affine BN."""
    cfg = {
        "format": 1, "architecture": "din", "max_len": 10,
        "fields": [{"name": "item", "rows": 300, "dim": 8},
                   {"name": "cate", "rows": 40, "dim": 8},
                   {"name": "user", "rows": 100, "dim": 4, "oov": "zero"}],
        "item": {"attributes": ["cate"]},
        "target": ["item", "cate"], "behaviour": ["item", "cate"], "context": ["user"],
        "dense": 0,
        "attention": {"type": "din",
                      "layers": [{"units": 64, "activation": _dice(1e-8, affine=True)},
                                 {"units": 16, "activation": _dice(1e-8, affine=True)}],
                      "normalization": "none"},
        "tower": {"inputs": ["context", "target:0", "target:1", "attention"],
                  "layers": [{"units": 32, "activation": {"type": "relu"}},
                             {"units": 16, "activation": {"type": "relu"}}],
                  "head": {"type": "sigmoid", "bias": True}},
    }
    ids = np.arange(300)
    items = (ids, (ids * 7 + 3) % 40)
    return dict(config=cfg, items=items, vocab=None, scalar_alpha=False,
                item_pool=list(range(300)), unknown_items=[], ctx_pools=[list(range(100))],
                unknown_ctx=[[100, 250, -1]])


def din_repo():
    """zhougr1993/DeepInterestNetwork din/model.py, the score_i path (eval)."""
    cfg = {
        "format": 1, "architecture": "din", "max_len": 20,
        "fields": [{"name": "item", "rows": 250, "dim": 8},
                   {"name": "cate", "rows": 30, "dim": 8}],
        "item": {"attributes": ["cate"]},
        "target": ["item", "cate"], "behaviour": ["item", "cate"],
        "attention": {"type": "din",
                      "layers": [{"units": 80, "activation": {"type": "sigmoid"}},
                                 {"units": 40, "activation": {"type": "sigmoid"}}],
                      "normalization": "softmax", "scale": True,
                      "output": {"batch_norm": {"eps": 1e-3}, "units": 16}},
        "tower": {"inputs": ["attention", "target", "target*attention"],
                  "input_batch_norm": {"eps": 1e-3},
                  "layers": [{"units": 80, "activation": _dice(1e-3, beta=True)},
                             {"units": 40, "activation": _dice(1e-3, beta=True)}],
                  "head": {"type": "sigmoid", "bias": True, "item_bias": True}},
    }
    ids = np.arange(250)
    items = (ids, (ids * 11 + 5) % 30)
    return dict(config=cfg, items=items, vocab=None, scalar_alpha=False,
                item_pool=list(range(250)), unknown_items=[], ctx_pools=[], unknown_ctx=[],
                frozen_dice=True)


def din_fuxi_vocab():
    """FuxiCTR DIN with raw-id vocabularies, oov zero/row, attention:k slices, dense, BN MLP."""
    rng = np.random.default_rng(11)
    item_raw = 10 ** 9 + np.sort(rng.choice(10 ** 6, 200, replace=False))
    cate_raw = 5 * 10 ** 9 + np.sort(rng.choice(10 ** 4, 30, replace=False))
    unknown_items = [int(x) for x in 10 ** 9 + 10 ** 6 + np.arange(20) * 13] + [7, -3]
    # The items table knows 180 vocab items and 15 raw items outside the vocabulary (their
    # embedding is zero but their category is known); 10 items carry a category unknown to
    # the cate vocabulary (oov row 0); 20 vocab items are absent (category oov).
    tab_ids = list(item_raw[:180]) + unknown_items[:15]
    tab_cate = [int(cate_raw[i % 30]) for i in range(len(tab_ids))]
    for j in range(0, 100, 10):
        tab_cate[j] = 7 * 10 ** 9 + j
    cfg = {
        "format": 1, "architecture": "din", "max_len": 12,
        "fields": [{"name": "item", "rows": 200, "dim": 6, "oov": "zero"},
                   {"name": "cate", "rows": 30, "dim": 6, "oov": 0}],
        "item": {"attributes": ["cate"]},
        "target": ["item", "cate"], "behaviour": ["item", "cate"],
        "dense": 3,
        "attention": {"type": "din",
                      "layers": [{"units": 32, "activation": {"type": "prelu"}},
                                 {"units": 16, "activation": _dice(1e-9)}]},
        "tower": {"inputs": ["target:0", "target:1", "attention:0", "attention:1", "dense"],
                  "layers": [{"units": 32, "batch_norm": {"eps": 1e-5},
                              "activation": _dice(1e-9)},
                             {"units": 16, "batch_norm": {"eps": 1e-5},
                              "activation": {"type": "prelu"}}],
                  "head": {"type": "sigmoid"}},
    }
    return dict(config=cfg, items=(np.array(tab_ids), np.array(tab_cate)),
                vocab={"item": item_raw, "cate": cate_raw}, scalar_alpha=False,
                item_pool=[int(x) for x in item_raw], unknown_items=unknown_items,
                ctx_pools=[], unknown_ctx=[],
                # FuxiCTR's last BN without affine: exercises the optional BN tensors.
                drop=["tower.1.bn.weight", "tower.1.bn.bias"])


def din_misc_acts():
    """torch-rechub style Dice (sample stats) plus every other activation, separate tables."""
    cfg = {
        "format": 1, "architecture": "din", "max_len": 15,
        "fields": [{"name": "item", "rows": 150, "dim": 5},
                   {"name": "hist_item", "rows": 150, "dim": 5},
                   {"name": "cate", "rows": 20, "dim": 3},
                   {"name": "user", "rows": 50, "dim": 4, "oov": 3}],
        "item": {"attributes": ["cate"]},
        "target": ["item", "cate"], "behaviour": ["hist_item", "cate"], "context": ["user"],
        "attention": {"type": "din",
                      "layers": [{"units": 12, "activation": _dice(1e-3, stats="sample")},
                                 {"units": 8, "activation": {"type": "leaky_relu",
                                                             "slope": 0.1}},
                                 {"units": 6, "activation": {"type": "tanh"}}],
                      "out_bias": False, "normalization": "softmax"},
        "tower": {"inputs": ["context", "target", "history_mean:1", "attention",
                             "target*history_sum", "history_sum:0"],
                  "layers": [{"units": 16, "bias": False,
                              "activation": {"type": "gelu", "approximate": "tanh"}},
                             {"units": 12, "activation": {"type": "hard_sigmoid",
                                                          "slope": 1 / 6, "offset": 0.5}},
                             {"units": 8, "activation": {"type": "prelu"}},
                             {"units": 6, "activation": {"type": "gelu"}},
                             {"units": 6, "activation": {"type": "leaky_relu"}},
                             {"units": 6, "activation": {"type": "linear"}}],
                  "head": {"type": "sigmoid", "bias": False}},
    }
    ids = np.arange(150)
    items = (ids, (ids * 3 + 1) % 20)
    return dict(config=cfg, items=items, vocab=None,
                scalar_alpha={"attention.mlp.0", "tower.2"},
                item_pool=list(range(150)), unknown_items=[], ctx_pools=[list(range(50))],
                unknown_ctx=[[50, 77, -2]])


def base_mean():
    """DIN repo base model: mean-pooled history next to the target."""
    cfg = {
        "format": 1, "architecture": "base", "max_len": 10,
        "fields": [{"name": "item", "rows": 200, "dim": 6},
                   {"name": "cate", "rows": 25, "dim": 4}],
        "item": {"attributes": ["cate"]},
        "target": ["item", "cate"], "behaviour": ["item", "cate"],
        "tower": {"inputs": ["history_mean", "target"],
                  "layers": [{"units": 24, "activation": {"type": "relu"}},
                             {"units": 12, "activation": {"type": "sigmoid"}}],
                  "head": {"type": "sigmoid"}},
    }
    ids = np.arange(200)
    items = (ids, (ids * 5 + 2) % 25)
    return dict(config=cfg, items=items, vocab=None, scalar_alpha=False,
                item_pool=list(range(200)), unknown_items=[], ctx_pools=[], unknown_ctx=[])


def base_dien_dnn():
    """DIEN repo Model_DNN: user, target, history sum; bn1, PReLU tower, 2-way softmax."""
    cfg = {
        "format": 1, "architecture": "base", "max_len": 16,
        "fields": [{"name": "user", "rows": 80, "dim": 4},
                   {"name": "item", "rows": 220, "dim": 6},
                   {"name": "cate", "rows": 18, "dim": 6}],
        "item": {"attributes": ["cate"]},
        "target": ["item", "cate"], "behaviour": ["item", "cate"], "context": ["user"],
        "tower": {"inputs": ["context", "target", "history_sum"],
                  "input_batch_norm": {"eps": 1e-3},
                  "layers": [{"units": 20, "activation": {"type": "prelu"}},
                             {"units": 10, "activation": {"type": "prelu"}}],
                  "head": {"type": "softmax2", "column": 0, "epsilon": 1e-8}},
    }
    ids = np.arange(220)
    items = (ids, (ids * 13 + 4) % 18)
    return dict(config=cfg, items=items, vocab=None, scalar_alpha=False,
                item_pool=list(range(220)), unknown_items=[], ctx_pools=[list(range(80))],
                unknown_ctx=[[]])


def _dien_items(n_items, n_cate, mul, add):
    ids = np.arange(n_items)
    return ids, (ids * mul + add) % n_cate


def _dien(max_len, fields, sequence, attention, evolution, tower, context=()):
    return {"format": 1, "architecture": "dien", "max_len": max_len, "fields": fields,
            "item": {"attributes": ["cate"]}, "target": ["item", "cate"],
            "behaviour": ["item", "cate"], "context": list(context),
            "sequence": sequence, "attention": attention, "evolution": evolution,
            "tower": tower}


def dien_deepctr_torch_augru():
    """DeepCTR-Torch DIEN(gru_type="AUGRU"): nn.GRU extractor, LAU 64-16 Dice, softmax, paper
    AUGRU whose bias_ih and bias_hh are one tensor (its registration bug), interest first."""
    cfg = _dien(10, [{"name": "item", "rows": 300, "dim": 8},
                     {"name": "cate", "rows": 40, "dim": 8},
                     {"name": "user", "rows": 100, "dim": 4, "oov": "zero"}],
                {"type": "gru", "hidden": 16, "convention": "pytorch"},
                {"type": "din", "normalization": "softmax",
                 "layers": [{"units": 64, "activation": _dice(1e-8, affine=True)},
                            {"units": 16, "activation": _dice(1e-8, affine=True)}]},
                {"type": "augru", "form": "paper", "convention": "pytorch"},
                {"inputs": ["interest", "context", "target:0", "target:1"],
                 "layers": [{"units": 32, "activation": {"type": "relu"}},
                            {"units": 16, "activation": {"type": "relu"}}],
                 "head": {"type": "sigmoid", "bias": True}},
                context=["user"])
    return dict(config=cfg, items=_dien_items(300, 40, 7, 3), vocab=None, scalar_alpha=False,
                item_pool=list(range(300)), unknown_items=[], ctx_pools=[list(range(100))],
                unknown_ctx=[[100, 250, -1]],
                tie=[("evolution.gru.bias_ih", "evolution.gru.bias_hh")])


def dien_code_augru_tf():
    """mouna99/dien Model_DIN_V2_Gru_Vec_attGru: TF GRUCells, query projection f1 + PReLU,
    80-40 sigmoid unit + softmax, code-form AUGRU, bn1 + 2-way softmax head."""
    cfg = _dien(12, [{"name": "user", "rows": 60, "dim": 6},
                     {"name": "item", "rows": 240, "dim": 6},
                     {"name": "cate", "rows": 20, "dim": 6}],
                {"type": "gru", "hidden": 10, "convention": "tensorflow"},
                {"type": "din", "normalization": "softmax",
                 "query_projection": {"units": 10, "activation": {"type": "prelu"}},
                 "layers": [{"units": 80, "activation": {"type": "sigmoid"}},
                            {"units": 40, "activation": {"type": "sigmoid"}}]},
                {"type": "augru", "form": "code", "convention": "tensorflow"},
                {"inputs": ["context", "target", "history_sum", "target*history_sum",
                            "interest"],
                 "input_batch_norm": {"eps": 1e-3},
                 "layers": [{"units": 20, "activation": {"type": "prelu"}},
                            {"units": 8, "activation": {"type": "prelu"}}],
                 "head": {"type": "softmax2", "column": 0, "epsilon": 1e-8}},
                context=["user"])
    return dict(config=cfg, items=_dien_items(240, 20, 11, 5), vocab=None, scalar_alpha=False,
                item_pool=list(range(240)), unknown_items=[], ctx_pools=[list(range(60))],
                unknown_ctx=[[]])


def dien_agru():
    """AGRU (DeepCTR-Torch gru_type="AGRU"): the attention score replaces the update gate."""
    cfg = _dien(8, [{"name": "item", "rows": 200, "dim": 6},
                    {"name": "cate", "rows": 25, "dim": 4}],
                {"type": "gru", "hidden": 10, "convention": "pytorch"},
                {"type": "din",
                 "layers": [{"units": 16, "activation": {"type": "relu"}},
                            {"units": 8, "activation": {"type": "relu"}}]},
                {"type": "agru", "convention": "pytorch"},
                {"inputs": ["interest", "target"],
                 "layers": [{"units": 16, "activation": {"type": "relu"}}],
                 "head": {"type": "sigmoid"}})
    return dict(config=cfg, items=_dien_items(200, 25, 5, 2), vocab=None, scalar_alpha=False,
                item_pool=list(range(200)), unknown_items=[], ctx_pools=[], unknown_ctx=[])


def dien_aigru():
    """AIGRU on raw (unnormalized) scores, TF extractor feeding a PyTorch-convention GRU."""
    cfg = _dien(9, [{"name": "item", "rows": 180, "dim": 5},
                    {"name": "cate", "rows": 15, "dim": 5}],
                {"type": "gru", "hidden": 10, "convention": "tensorflow"},
                {"type": "din", "normalization": "none",
                 "layers": [{"units": 12, "activation": _dice(1e-9)}]},
                {"type": "aigru", "convention": "pytorch"},
                {"inputs": ["target", "interest"],
                 "layers": [{"units": 16, "activation": {"type": "relu"}},
                            {"units": 8, "activation": {"type": "sigmoid"}}],
                 "head": {"type": "sigmoid"}})
    return dict(config=cfg, items=_dien_items(180, 15, 3, 1), vocab=None, scalar_alpha=False,
                item_pool=list(range(180)), unknown_items=[], ctx_pools=[], unknown_ctx=[])


def dien_gru_pooling():
    """DeepCTR-Torch DIEN defaults (gru_type="GRU"): GRU -> GRU -> LAU (relu) pooling."""
    cfg = _dien(10, [{"name": "item", "rows": 220, "dim": 6},
                     {"name": "cate", "rows": 30, "dim": 6},
                     {"name": "user", "rows": 50, "dim": 4}],
                {"type": "gru", "hidden": 12, "convention": "pytorch"},
                {"type": "din", "normalization": "softmax",
                 "layers": [{"units": 64, "activation": {"type": "relu"}},
                            {"units": 16, "activation": {"type": "relu"}}]},
                {"type": "gru_attention_pooling", "convention": "pytorch"},
                {"inputs": ["interest", "context", "target:0", "target:1"],
                 "layers": [{"units": 32, "activation": {"type": "relu"}},
                            {"units": 16, "activation": {"type": "relu"}}],
                 "head": {"type": "sigmoid"}},
                context=["user"])
    return dict(config=cfg, items=_dien_items(220, 30, 13, 4), vocab=None, scalar_alpha=False,
                item_pool=list(range(220)), unknown_items=[], ctx_pools=[list(range(50))],
                unknown_ctx=[[]])


def dien_bilinear():
    """FuxiCTR / torch-rechub style: bilinear h_t W e_a + softmax, paper AUGRU, BN tower."""
    cfg = _dien(11, [{"name": "item", "rows": 260, "dim": 8, "oov": "zero"},
                     {"name": "cate", "rows": 30, "dim": 8}],
                {"type": "gru", "hidden": 12, "convention": "pytorch"},
                {"type": "bilinear", "normalization": "softmax"},
                {"type": "augru", "convention": "pytorch"},
                {"inputs": ["interest", "target"],
                 "layers": [{"units": 24, "batch_norm": {"eps": 1e-5},
                             "activation": {"type": "relu"}},
                            {"units": 12, "batch_norm": {"eps": 1e-5},
                             "activation": {"type": "relu"}}],
                 "head": {"type": "sigmoid"}})
    return dict(config=cfg, items=_dien_items(260, 30, 7, 2), vocab=None, scalar_alpha=False,
                item_pool=list(range(260)), unknown_items=[], ctx_pools=[], unknown_ctx=[])


VARIANTS = [din_deepctr_torch, din_repo, din_fuxi_vocab, din_misc_acts, base_mean,
            base_dien_dnn]
DIEN_VARIANTS = [dien_deepctr_torch_augru, dien_code_augru_tf, dien_agru, dien_aigru,
                 dien_gru_pooling, dien_bilinear]


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------

def _f32(x):
    """Dense values exactly representable in float32, so float4 or float8 give one answer."""
    return [float(np.float32(round(v * 256) / 256)) for v in x]


def make_rows(v, rng):
    """[(history or None, candidate, context or None, dense or None)], edge cases first."""
    cfg = v["config"]
    M = cfg["max_len"]
    pool = v["item_pool"]
    unk = v["unknown_items"]
    n_ctx = len(cfg.get("context", []))
    n_dense = cfg.get("dense", 0)

    def item():
        if unk and rng.random() < 0.1:
            return int(rng.choice(unk))
        return int(rng.choice(pool))

    def hist(n):
        return [item() for _ in range(n)]

    def ctx():
        if not n_ctx:
            return None if rng.random() < 0.8 else []
        out = []
        for k in range(n_ctx):
            bad = v["unknown_ctx"][k] if v["unknown_ctx"] else []
            out.append(int(rng.choice(bad)) if bad and rng.random() < 0.15
                       else int(rng.choice(v["ctx_pools"][k])))
        return out

    def dense():
        if not n_dense:
            return None if rng.random() < 0.8 else []
        return _f32(rng.normal(size=n_dense))

    lengths = [None, 0, 0, 1, 1, 1, M, M, M, M + 1, 2 * M, 2 * M, 3 * M, 3 * M - 1, M - 1, 2]
    rows = []
    for n in lengths:
        rows.append((None if n is None else hist(n), item(), ctx(), dense()))
    # Repeats: one item many times, the candidate inside its own history, an alternating pair.
    a, b = int(rng.choice(pool)), int(rng.choice(pool))
    rows.append(([a] * M, a, ctx(), dense()))
    rows.append(([a] * (2 * M), b, ctx(), dense()))
    rows.append(([a, b] * M, a, ctx(), dense()))
    rows.append((hist(M // 2) + [b] + hist(2), b, ctx(), dense()))
    if unk:
        rows.append(([unk[0]] * 3, unk[1], ctx(), dense()))
        rows.append((hist(M) + [unk[-1]], unk[-2], ctx(), dense()))
        rows.append(([unk[0]], int(rng.choice(pool)), ctx(), dense()))
    while len(rows) < N_ROWS:
        r = rng.random()
        n = int(rng.integers(M + 1, 3 * M + 1)) if r < 0.15 else int(rng.integers(0, M + 1))
        h = hist(n)
        if n and rng.random() < 0.2:
            h[int(rng.integers(0, n))] = h[0]
        rows.append((h, item(), ctx(), dense()))
    return rows


def pg_array(x):
    """A PostgreSQL array literal as a CSV field: quoted, or empty (unquoted) for NULL, as
    COPY ... CSV reads them."""
    if x is None:
        return ""
    return '"{' + ",".join(repr(e) if isinstance(e, float) else str(e) for e in x) + '}"'


# ---------------------------------------------------------------------------------------------
# Weights: random, then calibrated so nothing saturates
# ---------------------------------------------------------------------------------------------

def random_tensors(model, rng):
    out = {}
    for name, arr in model.tensors().items():
        if name.startswith("items.") or name.startswith("vocab."):
            continue
        shape = arr.shape
        leaf = name.rsplit(".", 1)[1]
        if name.startswith("fields."):
            val = rng.normal(0, 0.6, shape)
        elif leaf in ("weight_ih", "weight_hh"):
            val = rng.normal(0, 1.2 / np.sqrt(shape[1]), shape)
        elif name == "head.item_bias":
            val = rng.normal(0, 0.3, shape)
        elif ".bn." in name or name.startswith("tower.input_bn") or ".act." in name:
            val = {"running_mean": lambda: rng.normal(0, 0.2, shape),
                   "running_var": lambda: rng.uniform(0.5, 2.0, shape),
                   "weight": lambda: rng.uniform(0.7, 1.3, shape),
                   "bias": lambda: rng.normal(0, 0.2, shape),
                   "alpha": lambda: rng.uniform(0.05, 0.5, shape),
                   "beta": lambda: rng.uniform(0.5, 1.5, shape)}[leaf]()
        elif leaf == "weight":
            val = rng.normal(0, 1.4 / np.sqrt(shape[1]), shape)
        else:
            val = rng.normal(0, 0.2, shape)
        out[name] = val.astype(np.float32)
    return out


def set_running_stats(model, batch):
    """One train-mode pass with momentum 1: running stats become this batch's statistics."""
    model.momentum = 1.0
    model.train()
    with torch.no_grad():
        model.logits(*batch)
    model.eval()


def calibrate(v, model, batch, rng):
    L = model.L
    with torch.no_grad():
        if L.att is not None:
            set_running_stats(model, batch)
            s = model.attention_scores(*batch[:3]).numpy()
            valid = np.arange(s.shape[1])[None, :] < batch[2][:, None]
            spread = np.std(s[valid])
            w = model.t("attention.out.weight")
            if w is None:
                w = model.t("attention.bilinear.weight")
            if L.normalization == "softmax":
                # Softmax weights that differ visibly within a row.
                target = 1.5 * (np.sqrt(L.E) if L.scale else 1.0)
            else:
                target = 0.5
            w.mul_(target / max(spread, 1e-6))
        set_running_stats(model, batch)
        if v.get("frozen_dice"):
            # The DIN repo never updates its Dice BN: moving mean 0, variance 1.
            for name in model._names:
                if ".act.running_mean" in name:
                    model.t(name).zero_()
                if ".act.running_var" in name:
                    model.t(name).fill_(1.0)
        z = model.logits(*batch).numpy()
        hw = model.t("head.weight")
        hb = model.t("head.bias")
        if L.head["type"] == "softmax2":
            d = z[:, 0] - z[:, 1]
            c = 1.3 / np.std(d)
            hw.mul_(c)
            if hb is not None:
                hb.mul_(c)
                hb[0] -= float(np.mean(c * d))
        else:
            base = z - (float(hb[0]) if hb is not None else 0.0)
            c = 1.3 / np.std(base)
            hw.mul_(c)
            shift = -float(np.mean(c * base)) + 0.1
            if hb is not None:
                hb.fill_(shift)
            else:
                # No head bias: move the last (linear) layer's bias along the head weight.
                last = "tower.%d" % (len(L.tower_layers) - 1)
                assert L.tower_layers[-1]["activation"]["type"] == "linear"
                w = hw[0]
                model.t(last + ".bias").add_(shift * w / (w @ w))


def build(v, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = dinref.DinRef(v["config"], items=v["items"], vocab=v["vocab"],
                          scalar_alpha=v["scalar_alpha"])
    weights = random_tensors(model, rng)
    for a, b in v.get("tie", []):
        weights[a] = weights[b]
    model.load_tensors(weights)
    rows = make_rows(v, rng)
    scorer = dinref.Scorer(v["config"], model.tensors())
    batch = scorer.encode_batch(rows)
    calibrate(v, model, batch, rng)
    tensors = model.tensors()
    for name in v.get("drop", []):
        del tensors[name]
    return tensors, rows, rng


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def write_variant(name, v, seed):
    tensors, rows, rng = build(v, seed)
    path = os.path.join(OUT, name)
    dinref.write_model(path + ".safetensors", v["config"], tensors)
    scorer = dinref.Scorer(v["config"], tensors)
    with open(path + ".csv", "w") as f:
        f.write("id,history,ad_id,context,dense,expected\n")
        for i, (h, c, ctx, d) in enumerate(rows, 1):
            p = scorer.score(h, c, ctx, d)
            f.write("%d,%s,%d,%s,%s,%.17g\n" % (i, pg_array(h), c, pg_array(ctx), pg_array(d),
                                                p))
    if v["config"]["architecture"] in ("din", "dien"):
        nonempty = [i for i, r in enumerate(rows) if r[0]]
        long = [i for i in nonempty if len(rows[i][0]) > v["config"]["max_len"]][:5]
        pick = sorted(set(long) | set(nonempty[:N_EXPLAIN - len(long)]))
        with open(path + ".explain.csv", "w") as f:
            f.write("id,pos,weight\n")
            for i in pick:
                h, c, ctx, d = rows[i]
                for pos, w in scorer.explain(h, c, ctx, d):
                    f.write("%d,%d,%.17g\n" % (i + 1, pos, w))
    return tensors, rows


# ---------------------------------------------------------------------------------------------
# Files din must refuse
# ---------------------------------------------------------------------------------------------

def raw_file(header, data):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def header_of(config, tensors):
    """(header dict, data bytes) of a valid model, to be spoiled by one change."""
    buf = dinref.encode_model(config, tensors)
    (n,) = struct.unpack("<Q", buf[:8])
    return json.loads(buf[8:8 + n]), buf[8 + n:]


BAD = []


def bad(name, expectation):
    def wrap(fn):
        BAD.append((name, expectation, fn))
        return fn
    return wrap


@bad("truncated", "rejected: the data section ends before the last tensor (file truncated)")
def _truncated(cfg, t):
    buf = dinref.encode_model(cfg, t)
    return buf[:len(buf) - 37]


@bad("header_past_end", "rejected: header length points past the end of the file")
def _header_past_end(cfg, t):
    buf = dinref.encode_model(cfg, t)
    return struct.pack("<Q", len(buf) + 1000) + buf[8:]


@bad("nan_weight", "rejected: tensor tower.0.weight holds a non-finite value (NaN)")
def _nan(cfg, t):
    t = dict(t)
    t["tower.0.weight"] = t["tower.0.weight"].copy()
    t["tower.0.weight"][1, 2] = np.nan
    return dinref.encode_model(cfg, t)


@bad("unknown_dtype", "rejected: tensor head.bias has unknown dtype F16")
def _dtype(cfg, t):
    h, data = header_of(cfg, t)
    # Re-lay the data with head.bias as one F16 value (2 bytes) so only the dtype is wrong.
    order = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])
    out = b""
    for k in order:
        b, e = h[k]["data_offsets"]
        chunk = np.float16(t[k].ravel()[0]).tobytes() if k == "head.bias" else data[b:e]
        if k == "head.bias":
            h[k]["dtype"] = "F16"
        h[k]["data_offsets"] = [len(out), len(out) + len(chunk)]
        out += chunk
    return raw_file(h, out)


@bad("wrong_shape", "rejected: tensor fields.item.weight has shape [200,7], expected [200,6]")
def _shape(cfg, t):
    t = dict(t)
    w = t["fields.item.weight"]
    t["fields.item.weight"] = np.concatenate([w, w[:, :1]], 1)
    return dinref.encode_model(cfg, t)


@bad("unknown_config_key", "rejected: unknown config key tower.dropout")
def _key(cfg, t):
    cfg = json.loads(json.dumps(cfg))
    cfg["tower"]["dropout"] = 0.1
    return dinref.encode_model(cfg, t)


@bad("missing_tensor", "rejected: tensor tower.1.bias missing")
def _missing(cfg, t):
    t = dict(t)
    del t["tower.1.bias"]
    return dinref.encode_model(cfg, t)


@bad("extra_tensor", "rejected: unexpected tensor tower.2.weight")
def _extra(cfg, t):
    t = dict(t)
    t["tower.2.weight"] = np.ones((1, 12), np.float32)
    return dinref.encode_model(cfg, t)


@bad("format_2", "rejected: config format 2 (only format 1 is supported)")
def _format(cfg, t):
    cfg = dict(cfg, format=2)
    return dinref.encode_model(cfg, t)


@bad("unknown_activation", "rejected: unknown activation type swish (tower.layers[0])")
def _act(cfg, t):
    cfg = json.loads(json.dumps(cfg))
    cfg["tower"]["layers"][0]["activation"] = {"type": "swish"}
    return dinref.encode_model(cfg, t)


def write_bad(cfg, tensors):
    d = os.path.join(OUT, "bad")
    os.makedirs(d, exist_ok=True)
    lines = ["# Files din must refuse (generated by test/reference/make_fixtures.py)", "",
             "Each is `base_mean.safetensors` spoiled in one way; the message should name the",
             "key or tensor at fault.", ""]
    for name, expectation, fn in BAD:
        with open(os.path.join(d, name + ".safetensors"), "wb") as f:
            f.write(fn(cfg, tensors))
        lines.append("- `%s.safetensors`: %s" % (name, expectation))
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# Checks of what was written
# ---------------------------------------------------------------------------------------------

def parse_array(s, conv):
    if s == "":
        return None
    s = s.strip("{}")
    return [conv(x) for x in s.split(",")] if s else []


def read_csv(path):
    import csv
    with open(path) as f:
        for r in csv.DictReader(f):
            yield (int(r["id"]), parse_array(r["history"], int), int(r["ad_id"]),
                   parse_array(r["context"], int), parse_array(r["dense"], float),
                   float(r["expected"]))


def check_variant(name, v):
    cfg, tensors = dinref.read_model(os.path.join(OUT, name + ".safetensors"))
    assert cfg == v["config"]
    scorer = dinref.Scorer(cfg, tensors)
    rows, expected = [], []
    for _, h, c, ctx, d, exp in read_csv(os.path.join(OUT, name + ".csv")):
        p = scorer.score(h, c, ctx, d)
        assert abs(p - exp) <= 1e-15 * max(1.0, abs(exp)), (name, p, exp)
        rows.append((h, c, ctx, d))
        expected.append(exp)
    expected = np.array(expected)
    batch = scorer.encode_batch(rows)
    model = dinref.DinRef(cfg).load_tensors(tensors).eval()
    with torch.no_grad():
        p32 = model.prob(*batch).numpy().astype(np.float64)
        p64 = model.double().prob(*batch).numpy()
    rel32 = np.max(np.abs(p32 - expected) / expected)
    rel64 = np.max(np.abs(p64 - expected) / expected)
    assert rel32 < 1e-5 and rel64 < 1e-12, (name, rel32, rel64)
    if cfg["architecture"] in ("din", "dien"):
        with torch.no_grad():
            w = model.attention_weights(*batch).numpy()
        for i, pos, weight in _read_explain(os.path.join(OUT, name + ".explain.csv")):
            h = rows[i - 1][0]
            t = pos - 1 - max(0, len(h) - cfg["max_len"])
            assert abs(w[i - 1, t] - weight) < 1e-12 * max(1.0, abs(weight)), (name, i, pos)
    q = np.quantile(expected, [0.05, 0.5, 0.95])
    att = ""
    if cfg["architecture"] in ("din", "dien"):
        spread = [np.ptp(w[i, :n]) for i, n in enumerate(batch[2]) if n > 1]
        att = "  weight range in a row (median) %.3f" % np.median(spread)
    print("%-18s rows %d  p5/p50/p95 %.3f %.3f %.3f  f32 rel %.1e  f64 rel %.1e%s"
          % (name, len(rows), q[0], q[1], q[2], rel32, rel64, att))


def _read_explain(path):
    import csv
    with open(path) as f:
        for r in csv.DictReader(f):
            yield int(r["id"]), int(r["pos"]), float(r["weight"])


def check_deepctr_torch_modules():
    """din_deepctr_torch against plain nn.Embedding / nn.Linear / nn.BatchNorm1d modules."""
    nn = torch.nn
    cfg, t = dinref.read_model(os.path.join(OUT, "din_deepctr_torch.safetensors"))
    T = {k: torch.tensor(v, dtype=torch.float64) for k, v in t.items() if v.dtype.kind == "f"}
    cate_of = dict(zip(t["items.id"].tolist(), t["items.attributes"][:, 0].tolist()))

    def linear(prefix, inp, out):
        m = nn.Linear(inp, out).double()
        m.weight.data, m.bias.data = T[prefix + ".weight"], T[prefix + ".bias"]
        return m

    def dice_bn(prefix, n):
        bn = nn.BatchNorm1d(n, eps=1e-8).double().eval()
        bn.running_mean.data = T[prefix + ".act.running_mean"]
        bn.running_var.data = T[prefix + ".act.running_var"]
        bn.weight.data, bn.bias.data = T[prefix + ".act.weight"], T[prefix + ".act.bias"]
        return bn

    emb = {f: nn.Embedding.from_pretrained(T["fields.%s.weight" % f]) for f in
           ("item", "cate", "user")}
    l0, l1 = linear("attention.mlp.0", 64, 64), linear("attention.mlp.1", 64, 16)
    b0, b1 = dice_bn("attention.mlp.0", 64), dice_bn("attention.mlp.1", 16)
    a0, a1 = T["attention.mlp.0.act.alpha"], T["attention.mlp.1.act.alpha"]
    out = linear("attention.out", 16, 1)
    dnn = nn.Sequential(linear("tower.0", 4 + 8 + 8 + 16, 32), nn.ReLU(),
                        linear("tower.1", 32, 16), nn.ReLU(), linear("head", 16, 1))

    def dice(x, bn, alpha):
        p = torch.sigmoid(bn(x))
        return p * x + (1 - p) * alpha * x

    worst = 0.0
    with torch.no_grad():
        for _, h, c, ctx, _, exp in read_csv(os.path.join(OUT, "din_deepctr_torch.csv")):
            h = (h or [])[-cfg["max_len"]:]
            q = torch.cat([emb["item"](torch.tensor([c])), emb["cate"](torch.tensor([cate_of[c]]))],
                          1)
            u = torch.zeros(1, 16, dtype=torch.float64)
            if h:
                k = torch.cat([emb["item"](torch.tensor(h)),
                               emb["cate"](torch.tensor([cate_of[i] for i in h]))], 1)
                qq = q.expand_as(k)
                z = torch.cat([qq, k, qq - k, qq * k], 1)
                s = out(dice(l1(dice(l0(z), b0, a0)), b1, a1))
                u = (s * k).sum(0, keepdim=True)
            user = ctx[0]
            ue = emb["user"](torch.tensor([user])) if 0 <= user < 100 else \
                torch.zeros(1, 4, dtype=torch.float64)
            x = torch.cat([ue, q[:, :8], q[:, 8:], u], 1)
            p = torch.sigmoid(dnn(x)).item()
            worst = max(worst, abs(p - exp) / exp)
    assert worst < 1e-12, worst
    print("din_deepctr_torch vs plain torch modules: max rel %.1e" % worst)


def _spoil(name, change=None, drop=(), add=None):
    """A DIEN fixture's model with its config changed (change(cfg) edits a deep copy) and/or
    tensors dropped or added."""
    cfg, t = dinref.read_model(os.path.join(OUT, name + ".safetensors"))
    cfg = json.loads(json.dumps(cfg))
    if change:
        change(cfg)
    t = {k: v for k, v in t.items() if k not in drop}
    t.update(add or {})
    return dinref.encode_model(cfg, t)


BAD_DIEN = [
    ("evolution_type", "unknown config value evolution.type \"lstm\"",
     lambda: _spoil("dien_agru", lambda c: c["evolution"].update(type="lstm"))),
    ("form_on_agru", "config key evolution.form applies to augru only",
     lambda: _spoil("dien_agru", lambda c: c["evolution"].update(form="code"))),
    ("query_width", "the din unit needs the query as wide as sequence.hidden (16 vs 12)",
     lambda: _spoil("dien_bilinear", lambda c: c.update(attention={
         "type": "din", "layers": [{"units": 4, "activation": {"type": "relu"}}]}))),
    ("missing_gru_bias", "missing tensor evolution.gru.bias_hh",
     lambda: _spoil("dien_agru", drop=["evolution.gru.bias_hh"])),
    ("wrong_convention", "tensorflow convention on PyTorch weights: missing gates.weight",
     lambda: _spoil("dien_agru", lambda c: c["sequence"].update(convention="tensorflow"))),
    ("aux_net_tensor", "unexpected tensor (the training-only auxiliary net)",
     lambda: _spoil("dien_agru", add={"aux.0.weight": np.ones((4, 20), np.float32)})),
    ("attention_input", "tower input attention needs architecture din",
     lambda: _spoil("dien_agru", lambda c: c["tower"].update(inputs=["attention", "target"]))),
    ("sequence_on_din", "config key sequence is allowed only with architecture dien",
     lambda: _spoil("din_deepctr_torch", lambda c: c.update(
         sequence={"type": "gru", "hidden": 16, "convention": "pytorch"}))),
]


def write_bad_dien():
    d = os.path.join(OUT, "bad_dien")
    os.makedirs(d, exist_ok=True)
    lines = ["# DIEN files din must refuse (generated by test/reference/make_fixtures.py)", "",
             "Each is a valid fixture model spoiled in one way.", ""]
    for name, expectation, fn in BAD_DIEN:
        with open(os.path.join(d, name + ".safetensors"), "wb") as f:
            f.write(fn())
        lines.append("- `%s.safetensors`: %s" % (name, expectation))
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def check_gru_cells(name):
    """The written-out PyTorch cell (used by the attentional GRUs) against nn.GRU itself."""
    cfg, t = dinref.read_model(os.path.join(OUT, name + ".safetensors"))
    model = dinref.DinRef(cfg).load_tensors(t).double().eval()
    torch.manual_seed(5)
    H = cfg["sequence"]["hidden"]
    worst, checked = 0.0, []
    for prefix, block in (("sequence.gru", "sequence"), ("evolution.gru", "evolution")):
        conv = cfg[block].get("convention", cfg["sequence"]["convention"])
        if conv != "pytorch":
            continue
        checked.append(prefix)
        inp = model.t(prefix + ".weight_ih").shape[1]
        x = torch.randn(7, 9, inp, dtype=torch.float64)
        with torch.no_grad():
            ref = model._torch_gru(prefix, x)
            h = torch.zeros(7, H, dtype=torch.float64)
            for s in range(9):
                h = model._gru_cell(prefix, "pytorch", x[:, s], h)
                worst = max(worst, float((h - ref[:, s]).abs().max()))
    assert worst < 1e-12, (name, worst)
    if checked:
        print("%s: written-out GRU cell vs nn.GRU (%s) max abs %.1e"
              % (name, ", ".join(checked), worst))


def main():
    os.makedirs(OUT, exist_ok=True)
    written = {}
    if "--dsin" in sys.argv:
        import make_dsin_fixtures
        make_dsin_fixtures.main()
        return
    if "--bst" in sys.argv:
        import make_bst_fixtures
        make_bst_fixtures.main()
        return
    only_dien = "--dien" in sys.argv
    for seed, fn in enumerate(DIEN_VARIANTS, 101):
        write_variant(fn.__name__, fn(), 1000 + seed)
    for fn in DIEN_VARIANTS:
        check_variant(fn.__name__, fn())
        check_gru_cells(fn.__name__)
    write_bad_dien()
    if only_dien:
        return
    for seed, fn in enumerate(VARIANTS, 1):
        v = fn()
        written[fn.__name__] = write_variant(fn.__name__, v, 1000 + seed)
    base = base_mean()
    write_bad(base["config"], written["base_mean"][0])
    for fn in VARIANTS:
        check_variant(fn.__name__, fn())
    check_deepctr_torch_modules()
    # The container-level faults must already fail in dinref's reader.
    for name in ("truncated", "header_past_end", "nan_weight", "unknown_dtype"):
        try:
            dinref.read_model(os.path.join(OUT, "bad", name + ".safetensors"))
        except ValueError as e:
            print("bad/%s.safetensors: %s" % (name, e))
        else:
            raise AssertionError("bad/%s.safetensors was accepted" % name)


if __name__ == "__main__":
    main()
