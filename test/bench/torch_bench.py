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
