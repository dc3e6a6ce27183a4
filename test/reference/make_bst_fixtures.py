"""BST fixtures (run: /usr/bin/python3 test/reference/make_fixtures.py --bst).

Five variants, each <variant>.safetensors, <variant>.csv with the columns
id,history,ad_id,context,dense,history_time,at,expected (history_time: epoch microseconds since
2000-01-01 UTC, PostgreSQL's timestamptz origin, one per behaviour, or empty; at: the target's
time in the same unit) and <variant>.explain.csv (id,pos,weight). The expected values come from
bstref.BstScorer in float64; bstref.check_against_torch runs the transformer blocks through
torch.nn.TransformerEncoderLayer / nn.MultiheadAttention on padded, masked batches as the
independent check.
"""

import math
import os

import numpy as np
import torch

import bstref
import dinref
import make_fixtures as mf

OUT = mf.OUT
N_EXPLAIN = 20
AT0 = 820_000_000 * 1_000_000  # 2025-12 in microseconds since 2000-01-01


def _items(n_items, n_cate, mul, add):
    ids = np.arange(n_items)
    return ids, (ids * mul + add) % n_cate


def _bst(max_len, fields, transformer, tower, context=(), attention=None):
    cfg = {"format": 1, "architecture": "bst", "max_len": max_len, "fields": fields,
           "item": {"attributes": ["cate"]}, "target": ["item", "cate"],
           "behaviour": ["item", "cate"], "context": list(context), "transformer": transformer,
           "tower": tower}
    if attention is not None:
        cfg["attention"] = attention
    return cfg


def bst_rechub():
    """torch-rechub BST: target appended, learned index positions added (slots of a front-padded
    window of max_len, target at slot max_len), post-norm, LeakyReLU FFN, 8 heads, target
    read-out; tower Linear+BN+ReLU (its MLP) on interest, target, user."""
    cfg = _bst(10, [{"name": "item", "rows": 300, "dim": 8},
                    {"name": "cate", "rows": 40, "dim": 8},
                    {"name": "user", "rows": 100, "dim": 4}],
               {"target": True, "layout": "pytorch", "heads": 8, "blocks": 1, "norm": "post",
                "eps": 1e-5,
                "ffn": {"units": 64, "activation": {"type": "leaky_relu", "slope": 0.01}},
                "positions": [{"type": "index", "combine": "add", "align": "end", "width": 10}],
                "readout": "target"},
               {"inputs": ["interest", "target:0", "target:1", "context"],
                "layers": [{"units": 32, "batch_norm": {"eps": 1e-5},
                            "activation": {"type": "relu"}}],
                "head": {"type": "sigmoid", "bias": True}},
               context=["user"])
    return dict(config=cfg, items=_items(300, 40, 7, 3), item_pool=list(range(300)),
                unknown_items=[], ctx_pools=[list(range(100))], unknown_ctx=[[]], times=False)


def bst_fuxi():
    """FuxiCTR BST: target appended, index position embedding CONCATENATED (post-padded
    sequence: behaviour t at position t, target at max_len), 2 heads, FFN D->D LeakyReLU,
    post-norm, masked mean over behaviours and target."""
    cfg = _bst(8, [{"name": "item", "rows": 200, "dim": 6, "oov": "zero"},
                   {"name": "cate", "rows": 25, "dim": 4, "oov": "zero"},
                   {"name": "user", "rows": 60, "dim": 5}],
               {"target": True, "layout": "pytorch", "heads": 2, "blocks": 1, "norm": "post",
                "eps": 1e-5,
                "ffn": {"units": 20, "activation": {"type": "leaky_relu"}},
                "positions": [{"type": "index", "combine": "concat", "dim": 10,
                               "align": "start", "width": 8}],
                "readout": "mean"},
               {"inputs": ["context", "target", "interest"],
                "layers": [{"units": 24, "activation": {"type": "relu"}},
                           {"units": 12, "activation": {"type": "relu"}}],
                "head": {"type": "sigmoid", "bias": True}},
               context=["user"])
    return dict(config=cfg, items=_items(200, 25, 5, 2), item_pool=list(range(200)),
                unknown_items=[200, 201, 999], ctx_pools=[list(range(60))], unknown_ctx=[[]],
                times=False)


def bst_deepctr():
    """DeepCTR BST: no target in the sequence; Q/K/V without biases, no output projection, V
    from the key side; per-block query/key position tables (trainable sinusoid) added x sqrt(D);
    one LayerNorm shared by both sub-layers, eps 1e-9; ReLU FFN 4D without biases; 2 blocks;
    DIN pooling (LAU sigmoid, softmax) over the block outputs."""
    cfg = _bst(9, [{"name": "item", "rows": 180, "dim": 8},
                   {"name": "cate", "rows": 15, "dim": 4},
                   {"name": "user", "rows": 50, "dim": 4}],
               {"target": False, "layout": "deepctr", "heads": 4, "blocks": 2, "norm": "post",
                "eps": 1e-9, "shared_norm": True,
                "ffn": {"units": 48, "bias": False, "activation": {"type": "relu"}},
                "block_positions": {"align": "start", "width": 9},
                "readout": "attention"},
               {"inputs": ["context", "target:0", "target:1", "interest"],
                "layers": [{"units": 32, "activation": {"type": "relu"}},
                           {"units": 16, "activation": {"type": "relu"}}],
                "head": {"type": "sigmoid", "bias": True}},
               context=["user"],
               attention={"type": "din", "normalization": "softmax",
                          "layers": [{"units": 16, "activation": {"type": "sigmoid"}},
                                     {"units": 8, "activation": {"type": "sigmoid"}}]})
    return dict(config=cfg, items=_items(180, 15, 3, 1), item_pool=list(range(180)),
                unknown_items=[], ctx_pools=[list(range(50))], unknown_ctx=[[]], times=False)


BOUNDARIES = [60, 600, 3600, 21600, 86400, 604800, 2592000]


def bst_timegap_prenorm():
    """The paper's time-gap position (bucketed at - t_i, embedded, concatenated), pre-norm
    blocks, GELU FFN, 3 heads, 2 blocks, target read-out."""
    cfg = _bst(11, [{"name": "item", "rows": 260, "dim": 6},
                    {"name": "cate", "rows": 30, "dim": 2}],
               {"target": True, "layout": "pytorch", "heads": 3, "blocks": 2, "norm": "pre",
                "eps": 1e-6,
                "ffn": {"units": 24, "activation": {"type": "gelu"}},
                "positions": [{"type": "time_gap", "combine": "concat", "dim": 4,
                               "boundaries": BOUNDARIES}],
                "readout": "target"},
               {"inputs": ["target", "interest"],
                "layers": [{"units": 16, "activation": {"type": "relu"}}],
                "head": {"type": "sigmoid", "bias": True}})
    return dict(config=cfg, items=_items(260, 30, 7, 2), item_pool=list(range(260)),
                unknown_items=[], ctx_pools=[], unknown_ctx=[], times=True)


def bst_deepctr_mean_all():
    """DeepCTR's Transformer with output_type "mean": the mean over all max_len post-padded
    slots, a padded slot holding row 0 of each behaviour table (DeepCTR's padding id), with
    its query-masked rows (attention 0, then residual, shared LN, FFN) and per-block position
    tables; 3 heads, 2 blocks. Item 0 is the padding id, so histories never contain it."""
    cfg = _bst(7, [{"name": "item", "rows": 160, "dim": 8},
                   {"name": "cate", "rows": 12, "dim": 4},
                   {"name": "user", "rows": 40, "dim": 4}],
               {"target": False, "layout": "deepctr", "heads": 3, "blocks": 2, "norm": "post",
                "eps": 1e-9, "shared_norm": True,
                "ffn": {"units": 48, "bias": False, "activation": {"type": "relu"}},
                "block_positions": {"align": "start", "width": 7},
                "readout": "mean_all", "padding_row": 0},
               {"inputs": ["context", "target", "interest"],
                "layers": [{"units": 24, "activation": {"type": "relu"}}],
                "head": {"type": "sigmoid", "bias": True}},
               context=["user"])
    return dict(config=cfg, items=_items(160, 12, 5, 1), item_pool=list(range(1, 160)),
                unknown_items=[], ctx_pools=[list(range(40))], unknown_ctx=[[]], times=False)


VARIANTS = [bst_rechub, bst_fuxi, bst_deepctr, bst_timegap_prenorm, bst_deepctr_mean_all]


# ---------------------------------------------------------------------------------------------

def random_weights(v, rng):
    cfg = v["config"]
    tr = dinref.bst_defaults(cfg)
    L = dinref.BstLayout(cfg)
    E = L.E
    D = dinref.bst_width(cfg, E)
    t = {}
    for f in cfg["fields"]:
        t["fields.%s.weight" % f["name"]] = rng.normal(0, 0.6, (f["rows"], f["dim"]))
    for name, shape in bstref.tensor_shapes(cfg, E).items():
        leaf = name.rsplit(".", 1)[1]
        if name.endswith("_pe"):
            # DeepCTR initializes its position tables with the sinusoid, then trains them
            pos = np.arange(shape[0])[:, None]
            i = np.arange(shape[1])[None, :]
            ang = pos / np.power(10000, 2 * (i // 2) / shape[1])
            val = np.where(i % 2 == 0, np.sin(ang), np.cos(ang)) * 0.1 + \
                rng.normal(0, 0.05, shape)
        elif name.startswith("transformer.positions"):
            val = rng.normal(0, 0.5, shape)
        elif ".norm" in name:
            val = rng.uniform(0.7, 1.3, shape) if leaf == "weight" else rng.normal(0, 0.2, shape)
        elif len(shape) == 2:
            val = rng.normal(0, 1.2 / np.sqrt(shape[1]), shape)
        else:
            val = rng.normal(0, 0.2, shape)
        t[name] = val
    if tr["readout"] == "attention":
        layers = dinref._layer_specs(cfg["attention"]["layers"])
        inp = 4 * E
        for i, spec in enumerate(layers):
            t["attention.mlp.%d.weight" % i] = rng.normal(0, 1.4 / np.sqrt(inp),
                                                          (spec["units"], inp))
            t["attention.mlp.%d.bias" % i] = rng.normal(0, 0.2, spec["units"])
            inp = spec["units"]
        t["attention.out.weight"] = rng.normal(0, 3.0 / np.sqrt(inp), (1, inp))
        t["attention.out.bias"] = rng.normal(0, 0.2, 1)
    inp = L.in_width
    for i, spec in enumerate(L.tower_layers):
        p = "tower.%d" % i
        t[p + ".weight"] = rng.normal(0, 1.4 / np.sqrt(inp), (spec["units"], inp))
        t[p + ".bias"] = rng.normal(0, 0.2, spec["units"])
        if spec["batch_norm"] is not None:
            t[p + ".bn.running_mean"] = rng.normal(0, 0.2, spec["units"])
            t[p + ".bn.running_var"] = rng.uniform(0.5, 2.0, spec["units"])
            t[p + ".bn.weight"] = rng.uniform(0.7, 1.3, spec["units"])
            t[p + ".bn.bias"] = rng.normal(0, 0.2, spec["units"])
        inp = spec["units"]
    t["head.weight"] = rng.normal(0, 1.0 / np.sqrt(inp), (1, inp))
    t["head.bias"] = np.zeros(1)
    out = {k: np.asarray(val, np.float32) for k, val in t.items()}
    out["items.id"] = np.asarray(v["items"][0], np.int64)
    out["items.attributes"] = np.asarray(v["items"][1], np.int64).reshape(-1, 1)
    return out


def add_times(v, rows, rng):
    """(history, cand, ctx, dense, history_time, at) with times spanning every bucket."""
    out = []
    for h, c, ctx, d in rows:
        if not v["times"]:
            out.append((h, c, ctx, d, None, 0))
            continue
        at = AT0 + int(rng.integers(0, 10 ** 12))
        if h is None:
            out.append((h, c, ctx, d, None, at))
            continue
        # gaps from seconds to months, newest last; some exactly on a bucket boundary
        gaps = np.sort(np.exp(rng.uniform(0, math.log(6e6), len(h))))[::-1]
        times = []
        for g in gaps:
            if rng.random() < 0.1:
                g = float(rng.choice(BOUNDARIES))
            times.append(at - int(round(g * 1e6)))
        if h and rng.random() < 0.05:
            times[-1] = at + 5_000_000  # a behaviour after `at`: negative gap, bucket 0
        out.append((h, c, ctx, d, times, at))
    return out


def calibrate(scorer, weights, rows):
    z = np.array([scorer.logit(h, c, ctx, d, ht, at) for h, c, ctx, d, ht, at in rows])
    s = 1.3 / np.std(z)
    weights["head.weight"] = (weights["head.weight"] * s).astype(np.float32)
    weights["head.bias"] = np.array([-np.mean(z) * s + 0.1], np.float32)


def write_variant(name, v, seed):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    cfg = v["config"]
    weights = random_weights(v, rng)
    rows = add_times(v, mf.make_rows(v, rng), rng)
    calibrate(BstScorer(cfg, weights), weights, rows)
    path = os.path.join(OUT, name)
    dinref.write_model(path + ".safetensors", cfg, weights)
    cfg2, tensors = dinref.read_model(path + ".safetensors")
    assert cfg2 == cfg
    scorer = BstScorer(cfg, tensors)
    expected = []
    with open(path + ".csv", "w") as f:
        f.write("id,history,ad_id,context,dense,history_time,at,expected\n")
        for i, (h, c, ctx, d, ht, at) in enumerate(rows, 1):
            p = scorer.score(h, c, ctx, d, ht, at)
            expected.append(p)
            f.write("%d,%s,%d,%s,%s,%s,%d,%.17g\n" % (i, mf.pg_array(h), c, mf.pg_array(ctx),
                                                      mf.pg_array(d), mf.pg_array(ht), at, p))
    nonempty = [i for i, r in enumerate(rows) if r[0]]
    long = [i for i in nonempty if len(rows[i][0]) > cfg["max_len"]][:5]
    pick = sorted(set(long) | set(nonempty[:N_EXPLAIN - len(long)]))
    spread = []
    with open(path + ".explain.csv", "w") as f:
        f.write("id,pos,weight\n")
        for i in pick:
            h, c, ctx, d, ht, at = rows[i]
            ws = scorer.explain(h, c, ctx, d, ht, at)
            spread.append(np.ptp([w for _, w in ws]))
            for pos, w in ws:
                f.write("%d,%d,%.17g\n" % (i + 1, pos, w))
    # the independent check: the blocks through torch's modules on padded, masked batches
    samples = []
    for h, c, ctx, d, ht, at in rows[:60]:
        trow, hrows, _, _ = scorer.encode(h, c, ctx)
        q = scorer._embed(scorer.L.target, trow)
        K = np.array([scorer._embed(scorer.L.behaviour, r) for r in hrows]).reshape(
            len(hrows), scorer.L.E)
        times = list(ht)[len(h) - len(hrows):] if ht is not None else None
        samples.append((q, K, times, at))
    worst = bstref.check_against_torch(scorer, samples, rng)
    assert worst < 1e-10, (name, worst)
    e = np.array(expected)
    q = np.quantile(e, [0.05, 0.5, 0.95])
    print("%-20s rows %d  p5/p50/p95 %.3f %.3f %.3f  vs torch modules %.1e  weight range %.3f"
          % (name, len(rows), q[0], q[1], q[2], worst, np.median(spread)))


BstScorer = bstref.BstScorer


def main():
    os.makedirs(OUT, exist_ok=True)
    for seed, fn in enumerate(VARIANTS, 201):
        write_variant(fn.__name__, fn(), 1000 + seed)


if __name__ == "__main__":
    main()
