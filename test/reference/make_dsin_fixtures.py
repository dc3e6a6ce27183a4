"""Regenerate the dsin fixtures (make_fixtures.py --dsin, with /usr/bin/python3).

test/fixtures/dsin_<variant>.safetensors, .csv (id,history,ad_id,context,dense,history_time,at,
expected) and .explain.csv (id,pos,weight), scored by dsinref.py. Seeded: a rerun writes the same
bytes. Times are PostgreSQL timestamptz microseconds (since 2000-01-01).
"""

import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))  # dinref
import dinref  # noqa: E402
import dsinref  # noqa: E402

OUT = os.path.join(HERE, "..", "fixtures")
N_ROWS = 300
N_EXPLAIN = 30
GAP = 1800 * 1000000
T0 = (1511568000 - 946684800) * 1000000  # 2017-11-25 00:00 UTC
N_ITEMS, N_CATE, N_USER = 120, 20, 30


def _fields():
    return [{"name": "item", "rows": N_ITEMS, "dim": 4},
            {"name": "cate", "rows": N_CATE, "dim": 4},
            {"name": "user", "rows": N_USER, "dim": 3}]


def _base(**blocks):
    cfg = {"format": 1, "architecture": "dsin", "max_len": 200, "fields": _fields(),
           "item": {"attributes": ["cate"]}, "target": ["item", "cate"],
           "behaviour": ["item", "cate"], "context": ["user"]}
    cfg.update(blocks)
    return cfg


def dsin_deepctr():
    """DeepCTR DSIN as shipped: positional encoding, blinding, no LN, mean over all T, 2-layer
    Bi-LSTM per direction averaged, hard_sigmoid (TF1), DIN units (sigmoid), sigmoid head."""
    unit = {"type": "din", "normalization": "softmax",
            "layers": [{"units": 16, "activation": {"type": "sigmoid"}},
                       {"units": 8, "activation": {"type": "sigmoid"}}]}
    return _base(sessions={"count": 5, "length": 6, "gap": 1800},
                 extractor={"heads": 8, "encoding": "positional", "blinding": True,
                            "pooling": "mean_all"},
                 interacting={"type": "bilstm", "layers": 2, "merge": "ave",
                              "recurrent_activation": "hard_sigmoid"},
                 session_attention=unit, interacting_attention=unit,
                 tower={"inputs": ["context", "target", "session_interest",
                                   "session_interacting"],
                        "layers": [{"units": 16, "activation": {"type": "relu"}}],
                        "head": {"type": "sigmoid"}})


def dsin_bias_ln():
    """The paper's form: bias encoding, W^O, residual + layer norm, no blinding, scale by
    sqrt(d_model), average of the valid rows, one Bi-LSTM layer concatenated (sigmoid gates,
    valid sessions only), bilinear units; sessions of at least 2 behaviours."""
    unit = {"type": "bilinear"}
    return _base(sessions={"count": 4, "length": 5, "gap": 1800, "min_length": 2},
                 extractor={"heads": 2, "encoding": "bias", "blinding": False, "scale": "model",
                            "output_projection": True, "layer_norm": {"eps": 1e-9},
                            "pooling": "mean_valid"},
                 interacting={"type": "bilstm", "hidden": 6, "layers": 1, "merge": "concat",
                              "recurrent_activation": "sigmoid", "steps": "valid"},
                 session_attention=unit, interacting_attention=unit,
                 tower={"inputs": ["session_interacting", "target", "session_interest",
                                   "context"],
                        "layers": [{"units": 12, "activation": {"type": "relu"}}],
                        "head": {"type": "sigmoid"}})


VARIANTS = [dsin_deepctr, dsin_bias_ln]


def _sinusoid(T, E):
    P = np.array([[pos / np.power(10000, 2.0 * (i // 2) / E) for i in range(E)]
                  for pos in range(T)])
    P[:, 0::2] = np.sin(P[:, 0::2])
    P[:, 1::2] = np.cos(P[:, 1::2])
    return P


def tensors_for(cfg, rng):
    E = 8
    K, T = cfg["sessions"]["count"], cfg["sessions"]["length"]
    t = {}

    def normal(shape, sd):
        return rng.normal(0, sd, shape).astype(np.float32)

    for f in cfg["fields"]:
        t["fields.%s.weight" % f["name"]] = normal((f["rows"], f["dim"]), 0.6)
    t["items.id"] = np.arange(1, N_ITEMS, dtype=np.int64)
    t["items.attributes"] = ((np.arange(1, N_ITEMS) * 7 + 3) % N_CATE).astype(np.int64)[:, None]
    x = cfg["extractor"]
    for k in ("query", "key", "value"):
        t["extractor.%s.weight" % k] = normal((E, E), 0.6)
    if x.get("output_projection"):
        t["extractor.output.weight"] = normal((E, E), 1 / math.sqrt(E))
    if x.get("encoding", "positional") == "positional":
        # the sinusoid DeepCTR starts from, moved as training would
        P = _sinusoid(T, E) * 0.15
        t["extractor.position.query"] = (P + normal((T, E), 0.05)).astype(np.float32)
        t["extractor.position.key"] = (P + normal((T, E), 0.05)).astype(np.float32)
    elif x["encoding"] == "bias":
        t["extractor.bias.session"] = normal((K,), 0.3)
        t["extractor.bias.position"] = normal((T,), 0.3)
        t["extractor.bias.item"] = normal((E,), 0.3)
    if x.get("layer_norm") is not None:
        t["extractor.layer_norm.weight"] = rng.uniform(0.7, 1.3, E).astype(np.float32)
        t["extractor.layer_norm.bias"] = normal((E,), 0.2)
    if x.get("feed_forward", True):
        t["extractor.ffn.0.weight"] = normal((4 * E, E), 1 / math.sqrt(E))
        t["extractor.ffn.1.weight"] = normal((E, 4 * E), 0.5 / math.sqrt(4 * E))
    it = cfg["interacting"]
    H = it.get("hidden", E)
    for d in ("forward", "backward"):
        for l in range(it.get("layers", 1)):
            inp = E if l == 0 else H
            t["interacting.%s.weight_ih_l%d" % (d, l)] = normal((4 * H, inp), 1.2 / math.sqrt(inp))
            t["interacting.%s.weight_hh_l%d" % (d, l)] = normal((4 * H, H), 1.2 / math.sqrt(H))
            t["interacting.%s.bias_ih_l%d" % (d, l)] = normal((4 * H,), 0.3) + np.float32(0.5)
            t["interacting.%s.bias_hh_l%d" % (d, l)] = normal((4 * H,), 0.3)
    W = 2 * H if it.get("merge", "concat") == "concat" else H
    for block, kw in (("session_attention", E), ("interacting_attention", W)):
        u = cfg[block]
        if u.get("type", "din") == "bilinear":
            t[block + ".bilinear.weight"] = normal((kw, E), 2.0 / math.sqrt(E))
            continue
        inp = 4 * E
        for i, layer in enumerate(u["layers"]):
            t["%s.mlp.%d.weight" % (block, i)] = normal((layer["units"], inp), 1.4 / math.sqrt(inp))
            t["%s.mlp.%d.bias" % (block, i)] = normal((layer["units"],), 0.2)
            inp = layer["units"]
        t[block + ".out.weight"] = normal((1, inp), 6.0 / math.sqrt(inp))
        t[block + ".out.bias"] = normal((1,), 0.2)
    widths = {"context": 3, "target": E, "session_interest": E, "session_interacting": W}
    inp = sum(widths[n] for n in cfg["tower"]["inputs"])
    for i, layer in enumerate(cfg["tower"]["layers"]):
        t["tower.%d.weight" % i] = normal((layer["units"], inp), 1.4 / math.sqrt(inp))
        t["tower.%d.bias" % i] = normal((layer["units"],), 0.2)
        inp = layer["units"]
    t["head.weight"] = normal((1, inp), 1.0)
    t["head.bias"] = np.zeros(1, np.float32)
    return t


def make_rows(cfg, rng):
    """(history, times, at, candidate, context), edge cases first."""
    K, T = cfg["sessions"]["count"], cfg["sessions"]["length"]

    def item():
        return int(rng.integers(1, N_ITEMS))

    def timed(sizes, inner=None, between=None):
        h, ts, now = [], [], T0 + int(rng.integers(0, 86400)) * 1000000
        for si, n in enumerate(sizes):
            if si:
                now += between(si) if between else GAP + int(rng.integers(1, 7200)) * 1000000
            for j in range(n):
                if j:
                    now += inner(j) if inner else int(rng.integers(0, 1800)) * 1000000
                h.append(item())
                ts.append(now)
        return h, ts

    def at_after(ts):
        return (ts[-1] if ts else T0) + int(rng.integers(1, 3600)) * 1000000

    rows = []

    def add(h, ts, at=None):
        rows.append((h, ts, at if at is not None else at_after(ts), item(),
                     [int(rng.integers(0, N_USER))]))

    add(None, None)
    add([], [])
    add(*timed([1]))
    add(*timed([T]))
    add(*timed([3 * T]))  # one long session keeps its last T
    add(*timed([2] * (K + 3)))  # more than K sessions
    add(*timed([1, 2, 1, 3, 1, 1, 2, 4]))  # short sessions (dropped under min_length 2)
    # exactly 30 minutes stays in the session, 30 minutes and 1 us starts a new one
    add(*timed([4], inner=lambda j: GAP))
    add(*timed([2, 2, 2], inner=lambda j: GAP, between=lambda si: GAP + 1))
    add(*timed([3, 3], inner=lambda j: 0, between=lambda si: GAP + 1))
    h, ts = timed([3, 3])
    add(h, ts, at=ts[-2])  # behaviours at or after `at` are ignored
    add(h, ts, at=ts[0])   # nothing before `at`
    while len(rows) < N_ROWS:
        n_sess = int(rng.integers(0, K + 3))
        sizes = [int(rng.integers(1, 2 * T + 1)) for _ in range(n_sess)]
        add(*timed(sizes))
    return rows


def pg_array(x):
    return dinref_pg_array(x)


def dinref_pg_array(x):
    if x is None:
        return ""
    return '"{' + ",".join(str(e) for e in x) + '}"'


def write_variant(fn, seed):
    cfg = fn()
    name = fn.__name__
    rng = np.random.default_rng(seed)
    t = tensors_for(cfg, rng)
    rows = make_rows(cfg, rng)
    ref = dsinref.DsinRef(cfg, t)
    # calibrate the head so probabilities spread over (0, 1)
    hid = np.array([ref.hidden(h, ts, at, c, ctx, None).numpy() for h, ts, at, c, ctx in rows])
    z = hid @ t["head.weight"][0].astype(np.float64)
    c = 1.3 / max(np.std(z), 1e-6)
    t["head.weight"] = (t["head.weight"] * c).astype(np.float32)
    t["head.bias"] = np.array([-np.mean(z) * c + 0.1], np.float32)
    ref = dsinref.DsinRef(cfg, t)
    path = os.path.join(OUT, name)
    dinref.write_model(path + ".safetensors", cfg, t)
    with open(path + ".csv", "w") as f:
        f.write("id,history,ad_id,context,dense,history_time,at,expected\n")
        for i, (h, ts, at, cand, ctx) in enumerate(rows, 1):
            p = ref.score(h, ts, at, cand, ctx)
            f.write("%d,%s,%d,%s,,%s,%d,%.17g\n" % (i, pg_array(h), cand, pg_array(ctx),
                                                    pg_array(ts), at, p))
    with open(path + ".explain.csv", "w") as f:
        f.write("id,pos,weight\n")
        picked = [i for i, r in enumerate(rows) if r[0]][:N_EXPLAIN]
        for i in picked:
            h, ts, at, cand, ctx = rows[i]
            for pos, w in ref.explain(h, ts, at, cand, ctx):
                f.write("%d,%d,%.17g\n" % (i + 1, pos, w))
    probs = [ref.score(h, ts, at, cand, ctx) for h, ts, at, cand, ctx in rows]
    print("%s: %d rows, p in [%.3f, %.3f], std %.3f" % (name, len(rows), min(probs), max(probs),
                                                        np.std(probs)))


def main():
    os.makedirs(OUT, exist_ok=True)
    print("explicit LSTM cell vs torch.nn.LSTM: max abs %.1e" % dsinref.check_lstm_cell())
    for seed, fn in enumerate(VARIANTS, 601):
        write_variant(fn, seed)


if __name__ == "__main__":
    main()
