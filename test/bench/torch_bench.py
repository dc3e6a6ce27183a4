#!/usr/bin/python3
"""Candidates per second of the PyTorch reference (test/reference/dinref.py) on the bench's
models and inputs: one thread, batch 1024, eval mode, torch.no_grad().

    torch_bench.py MODELDIR INPUTDIR   reads INPUTDIR/pairs_<T>.csv (history,ad_id,user as
                                       exported by run.sh), prints "torch <model> <T> <cand/s>"

Only the forward passes are timed: id-to-row lookups and tensor building happen before.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))

try:
    import torch
except ImportError:
    print("skip torch is not installed (Debian package python3-torch); no PyTorch column")
    sys.exit(0)
import numpy as np

import dinref
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


def load_pairs(path):
    hist, ads, users = [], [], []
    with open(path) as f:
        for line in f:
            h, a, u = line.rsplit(",", 2)
            hist.append([int(x) for x in h.strip('"{}').split(",")])
            ads.append(int(a))
            users.append(int(u))
    return np.array(hist, dtype=np.int64), np.array(ads, dtype=np.int64), np.array(users)


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
        else:
            m = dinref.DinRef(cfg).load_tensors(tensors)
        m.eval()
        cate = dict(zip(tensors["items.id"].tolist(), tensors["items.attributes"][:, 0].tolist()))
        cate_of = np.array([cate[i] for i in range(len(cate))], dtype=np.int64)
        for T in models.LENGTHS[name]:
            hist, ads, users = load_pairs(os.path.join(input_dir, "pairs_%d.csv" % T))
            n = len(ads) - len(ads) % BATCH
            target = torch.as_tensor(np.stack([ads, cate_of[ads]], -1))
            hrows = torch.as_tensor(np.stack([hist, cate_of[hist]], -1))
            hlen = torch.full((len(ads),), T, dtype=torch.long)
            ctx = torch.as_tensor(users.reshape(-1, 1))
            with torch.no_grad():
                m.prob(target[:BATCH], hrows[:BATCH], hlen[:BATCH], ctx[:BATCH])  # warm up
                t0 = time.perf_counter()
                for b in range(0, n, BATCH):
                    s = slice(b, b + BATCH)
                    m.prob(target[s], hrows[s], hlen[s], ctx[s])
                dt = time.perf_counter() - t0
            print("torch %s %d %.1f" % (name, T, n / dt), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
