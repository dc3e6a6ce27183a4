#!/usr/bin/python3
"""Candidates per second of the PyTorch reference (tools/dinref.py; BST and DSIN in
batched stock torch here, their references being per-sample) on the bench's models and
inputs: one thread, batch 1024, eval mode, torch.no_grad(), the best of three runs.

    torch_bench.py MODELDIR INPUTDIR   reads INPUTDIR/pairs_<T>.csv (history,ad_id,user as
                                       exported by run.sh), prints "torch <model> <T> <cand/s>"
    torch_bench.py --check MODELDIR    TorchDsin and TorchBst against dsinref.py and bstref.py
                                       on random bench-layout inputs (MODELDIR from models.py)

Only the forward passes are timed: id-to-row lookups and tensor building happen before.
"""
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))  # dinref

try:
    import torch
except ImportError:
    print("skip torch is not installed (Debian package python3-torch); no PyTorch column")
    sys.exit(0)
import numpy as np

import dinref
import dsinref
import models

BATCH = 1024


class TorchBst(torch.nn.Module):
    """BST at the bench's config (models.bst_config) in stock torch modules, for timing only:
    bstref.py scores one sample at a time in float64, so it has no batched forward. Full
    histories of 20: index positions added, the target appended last, one post-norm
    nn.TransformerEncoderLayer, the target row read out, the LeakyReLU tower, sigmoid head."""

    def __init__(self, cfg, t):
        super().__init__()
        f = lambda k: torch.as_tensor(t[k], dtype=torch.float32)  # noqa: E731
        self.item, self.cate = f("fields.item.weight"), f("fields.cate.weight")
        self.user, self.pos = f("fields.user.weight"), f("transformer.positions.0.weight")
        tr = cfg["transformer"]
        D = self.item.shape[1] + self.cate.shape[1]
        self.block = torch.nn.TransformerEncoderLayer(
            D, tr["heads"], tr["ffn"]["units"], dropout=0.0,
            activation=torch.nn.LeakyReLU(0.01), layer_norm_eps=tr["eps"], batch_first=True)
        pre = "transformer.blocks.0."
        self.block.load_state_dict({
            "self_attn.in_proj_weight": f(pre + "attention.in_proj_weight"),
            "self_attn.in_proj_bias": f(pre + "attention.in_proj_bias"),
            "self_attn.out_proj.weight": f(pre + "attention.out_proj.weight"),
            "self_attn.out_proj.bias": f(pre + "attention.out_proj.bias"),
            "linear1.weight": f(pre + "ffn.0.weight"), "linear1.bias": f(pre + "ffn.0.bias"),
            "linear2.weight": f(pre + "ffn.1.weight"), "linear2.bias": f(pre + "ffn.1.bias"),
            "norm1.weight": f(pre + "norm1.weight"), "norm1.bias": f(pre + "norm1.bias"),
            "norm2.weight": f(pre + "norm2.weight"), "norm2.bias": f(pre + "norm2.bias")})
        layers = []
        for i in range(len(cfg["tower"]["layers"])):
            lin = torch.nn.Linear(*f("tower.%d.weight" % i).shape[::-1])
            lin.load_state_dict({"weight": f("tower.%d.weight" % i),
                                 "bias": f("tower.%d.bias" % i)})
            layers += [lin, torch.nn.LeakyReLU(0.01)]
        head = torch.nn.Linear(f("head.weight").shape[1], 1)
        head.load_state_dict({"weight": f("head.weight"), "bias": f("head.bias")})
        self.tower = torch.nn.Sequential(*layers, head)

    def prob(self, target, hist, hlen, ctx):
        seq = torch.cat([hist, target[:, None, :]], 1)
        x = torch.cat([self.item[seq[..., 0]], self.cate[seq[..., 1]]], -1) + self.pos
        q = torch.cat([self.item[target[:, 0]], self.cate[target[:, 1]]], -1)
        z = torch.cat([self.block(x)[:, -1], q, self.user[ctx[:, 0]]], -1)
        return torch.sigmoid(self.tower(z)[:, 0])


def _linear(w, b):
    lin = torch.nn.Linear(w.shape[1], w.shape[0])
    lin.load_state_dict({"weight": w, "bias": b})
    return lin


class TorchDsin(torch.nn.Module):
    """DSIN at the bench's config (models.dsin_config) in batched torch, for timing: dsinref.py
    scores one sample at a time in float64. The same math as dsinref for run.sh's layout only:
    full histories of K x L behaviours whose times make K full sessions, so no padding and no
    masks but the diagonal blinding. The Bi-LSTM is written out: nn.LSTM has no hard_sigmoid.
    dtype float64 is for check(): the scaled positions and summed biases are then rounded
    as dsinref rounds them, so only the math's differences are left."""

    def __init__(self, cfg, t, dtype=torch.float32):
        super().__init__()
        f = lambda k: torch.as_tensor(t[k], dtype=dtype)  # noqa: E731
        x, it, s = cfg["extractor"], cfg["interacting"], cfg["sessions"]
        # what prob() implements; anything else would need dsinref's other branches
        assert (x.get("encoding"), x.get("blinding"), x.get("pooling")) == \
            ("positional", True, "mean_all") and x.get("scale", "head") == "head" and \
            not x.get("output_projection") and x.get("layer_norm") is None and \
            x.get("feed_forward", True), x
        assert (it["type"], it["merge"], it["recurrent_activation"], it.get("steps", "all")) \
            == ("bilstm", "ave", "hard_sigmoid", "all"), it
        assert cfg["tower"]["inputs"] == ["context", "target", "session_interest",
                                          "session_interacting"] and \
            cfg["tower"]["head"]["type"] == "sigmoid", cfg["tower"]
        self.K, self.L, self.heads = s["count"], s["length"], x["heads"]
        self.layers = it["layers"]
        for name in ("item", "cate", "user"):
            self.register_buffer(name, f("fields.%s.weight" % name))
        E = self.item.shape[1] + self.cate.shape[1]
        self.scale = 1.0 / math.sqrt(E // self.heads)
        self.register_buffer("pos_q", math.sqrt(E) * f("extractor.position.query"))
        self.register_buffer("pos_k", math.sqrt(E) * f("extractor.position.key"))
        for name in ("query", "key", "value"):  # stored transposed: rows @ w
            self.register_buffer("w_" + name, f("extractor.%s.weight" % name).T.contiguous())
        self.register_buffer("ffn0", f("extractor.ffn.0.weight").T.contiguous())
        self.register_buffer("ffn1", f("extractor.ffn.1.weight").T.contiguous())
        self.register_buffer("blind", torch.eye(self.L, dtype=torch.bool))
        for d in ("forward", "backward"):
            for l in range(self.layers):
                g = lambda k: f("interacting.%s.%s_l%d" % (d, k, l))  # noqa: E731
                self.register_buffer("%s_ih_%d" % (d, l), g("weight_ih").T.contiguous())
                self.register_buffer("%s_hh_%d" % (d, l), g("weight_hh").T.contiguous())
                self.register_buffer("%s_b_%d" % (d, l), g("bias_ih") + g("bias_hh"))
        self.units = torch.nn.ModuleDict()
        for block in ("session_attention", "interacting_attention"):
            u = cfg[block]
            assert u.get("type", "din") == "din" and u["normalization"] == "softmax" and \
                u.get("out_bias", True), u
            mods = []
            for i, layer in enumerate(u["layers"]):
                assert layer["activation"]["type"] == "sigmoid", layer
                mods += [_linear(f("%s.mlp.%d.weight" % (block, i)),
                                 f("%s.mlp.%d.bias" % (block, i))), torch.nn.Sigmoid()]
            mods.append(_linear(f(block + ".out.weight"), f(block + ".out.bias")))
            self.units[block] = torch.nn.Sequential(*mods)
        mods = []
        for i, layer in enumerate(cfg["tower"]["layers"]):
            assert layer["activation"]["type"] == "relu", layer
            mods += [_linear(f("tower.%d.weight" % i), f("tower.%d.bias" % i)), torch.nn.ReLU()]
        mods.append(_linear(f("head.weight"), f("head.bias")))
        self.tower = torch.nn.Sequential(*mods)
        self.to(dtype)

    def _direction(self, d, x):
        """One direction's stacked LSTM over the K steps of x [B, K, in], from the zero state;
        layer l reads layer l-1 of the same direction, as dsinref does."""
        for l in range(self.layers):
            w_hh = getattr(self, "%s_hh_%d" % (d, l))
            gx = x @ getattr(self, "%s_ih_%d" % (d, l)) + getattr(self, "%s_b_%d" % (d, l))
            h = c = x.new_zeros(x.shape[0], w_hh.shape[0])
            out = []
            for step in range(x.shape[1]):
                i, f, g, o = (gx[:, step] + h @ w_hh).chunk(4, 1)
                i, f, o = [torch.clamp(0.2 * v + 0.5, 0.0, 1.0) for v in (i, f, o)]
                c = f * c + i * torch.tanh(g)
                h = o * torch.tanh(c)
                out.append(h)
            x = torch.stack(out, 1)
        return x

    def _unit(self, block, q, keys):
        """The DIN unit on [q, k, q-k, q*k] over the K rows, softmax (all K sessions valid)."""
        qq = q[:, None, :].expand_as(keys)
        s = self.units[block](torch.cat([qq, keys, qq - keys, qq * keys], -1))[..., 0]
        return (torch.softmax(s, 1)[:, :, None] * keys).sum(1)

    def prob(self, target, hist, hlen, ctx):
        B, K, L, h = hist.shape[0], self.K, self.L, self.heads
        assert hist.shape[1] == K * L and bool((hlen == K * L).all()), "bench layout only"
        X = torch.cat([self.item[hist[..., 0]], self.cate[hist[..., 1]]], -1)
        E = X.shape[-1]
        # oldest first -> [B, K, L, E] with session 0 the most recent, each oldest first
        X = X.view(B, K, L, E).flip(1)
        Xq, Xk = X + self.pos_q, X + self.pos_k
        split = lambda m: m.view(B, K, L, h, E // h).transpose(2, 3)  # noqa: E731
        Q, Kt, V = split(Xq @ self.w_query), split(Xk @ self.w_key), split(Xk @ self.w_value)
        S = (Q @ Kt.transpose(-1, -2) * self.scale).masked_fill(self.blind, dsinref.MASKED)
        R = (torch.softmax(S, -1) @ V).transpose(2, 3).reshape(B, K, L, E) + Xq
        R = R + torch.relu(R @ self.ffn0) @ self.ffn1
        I = R.mean(2)  # mean_all over the L rows: [B, K, E]
        Hs = (self._direction("forward", I) + self._direction("backward", I.flip(1)).flip(1)) / 2
        q = torch.cat([self.item[target[:, 0]], self.cate[target[:, 1]]], -1)
        z = torch.cat([self.user[ctx[:, 0]], q, self._unit("session_attention", q, I),
                       self._unit("interacting_attention", q, Hs)], -1)
        return torch.sigmoid(self.tower(z)[:, 0])


def load_pairs(path):
    hist, ads, users = [], [], []
    with open(path) as f:
        for line in f:
            h, a, u = line.rsplit(",", 2)
            hist.append([int(x) for x in h.strip('"{}').split(",")])
            ads.append(int(a))
            users.append(int(u))
    return np.array(hist, dtype=np.int64), np.array(ads, dtype=np.int64), np.array(users)


def cate_of(tensors):
    """Category of every item id (the bench's ids are the rows 0..ITEMS-1)."""
    cate = dict(zip(tensors["items.id"].tolist(), tensors["items.attributes"][:, 0].tolist()))
    return np.array([cate[i] for i in range(len(cate))], dtype=np.int64)


def batch(hist, ads, users, cates):
    """(target, hist rows, hist lengths, context) tensors as prob() takes them."""
    return (torch.as_tensor(np.stack([ads, cates[ads]], -1)),
            torch.as_tensor(np.stack([hist, cates[hist]], -1)),
            torch.full((len(ads),), hist.shape[1], dtype=torch.long),
            torch.as_tensor(users.reshape(-1, 1)))


def bench_times(n):
    """run.sh's bench_times(n) in microseconds: sessions of 10 a minute apart, an hour between."""
    i = np.arange(n)
    return [int(v) for v in 1704067200000000 + (i // 10) * 3600000000 + (i % 10) * 60000000]


def check(model_dir, n=64):
    """Not timed: TorchDsin and TorchBst against their per-sample float64 references on random
    full histories in the bench's layout (DSIN with run.sh's times, at a minute after the last
    behaviour); TorchDsin in float64 too, to tell its math from float32 rounding."""
    import bstref

    rng = np.random.default_rng(11)
    worst = {}
    for name in ("dsin", "bst"):
        cfg, tensors = dinref.read_model(os.path.join(model_dir, "amazon_%s.safetensors" % name))
        T = models.LENGTHS[name][0]
        hist = rng.integers(0, models.ITEMS, (n, T))
        ads = rng.integers(0, models.ITEMS, n)
        users = rng.integers(0, models.USERS, n)
        if name == "dsin":
            ref = dsinref.DsinRef(cfg, tensors)
            times = bench_times(T)
            want = [ref.score(h.tolist(), times, times[-1] + 60000000, int(a), [int(u)])
                    for h, a, u in zip(hist, ads, users)]
            m = {"float32": TorchDsin(cfg, tensors).eval(),
                 "float64": TorchDsin(cfg, tensors, torch.float64).eval()}
        else:
            ref = bstref.BstScorer(cfg, tensors)
            want = [ref.score(h.tolist(), int(a), [int(u)]) for h, a, u in zip(hist, ads, users)]
            m = {"float32": TorchBst(cfg, tensors).eval()}
        want = np.array(want)
        args = batch(hist, ads, users, cate_of(tensors))
        with torch.no_grad():
            for dtype, model in m.items():
                got = model.prob(*args).double().numpy()
                rel = float(np.max(np.abs(got - want) / np.abs(want)))
                worst[(name, dtype)] = rel
                print("check %s %s: %d samples, p in [%.3g, %.3g], max relative difference"
                      " %.2e" % (name, dtype, n, want.min(), want.max(), rel), flush=True)
    # float32 rounding leaves ~1e-6; a wrong session order, position or direction is far above
    bad = {k: v for k, v in worst.items() if v >= 1e-5}
    if bad:
        sys.exit("check failed: %s" % bad)


def main(model_dir, input_dir):
    torch.set_num_threads(1)
    for name in models.MODELS:
        if name not in models.TORCH:
            print("skip %s has no batched PyTorch reference (its reference scores one sample at a"
                  " time in float64); no PyTorch column" % name, flush=True)
            continue
        cfg, tensors = dinref.read_model(os.path.join(model_dir, "amazon_%s.safetensors" % name))
        if name == "bst":
            m = TorchBst(cfg, tensors)
        elif name == "dsin":
            m = TorchDsin(cfg, tensors)
        else:
            m = dinref.DinRef(cfg).load_tensors(tensors)
        m.eval()
        cates = cate_of(tensors)
        for T in models.LENGTHS[name]:
            hist, ads, users = load_pairs(os.path.join(input_dir, "pairs_%d.csv" % T))
            n = len(ads) - len(ads) % BATCH
            target, hrows, hlen, ctx = batch(hist, ads, users, cates)
            with torch.no_grad():
                m.prob(target[:BATCH], hrows[:BATCH], hlen[:BATCH], ctx[:BATCH])  # warm up
                dt = float("inf")
                for _ in range(3):  # the best of three runs, as din's timings
                    t0 = time.perf_counter()
                    for b in range(0, n, BATCH):
                        s = slice(b, b + BATCH)
                        m.prob(target[s], hrows[s], hlen[s], ctx[s])
                    dt = min(dt, time.perf_counter() - t0)
            print("torch %s %d %.1f" % (name, T, n / dt), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        main(sys.argv[1], sys.argv[2])
