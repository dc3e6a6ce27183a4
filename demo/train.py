#!/usr/bin/python3
"""Train the demo's DIN and base models with the project's reference (tools/dinref.py).

    /usr/bin/python3 demo/train.py            synthetic data (demo/gen_synthetic.py) ->
                                              demo/models/synthetic_{din,base}.safetensors
                                              and demo/models/synthetic.json (held-out metrics,
                                              SHA-256 of the test set they were measured on)

The functions here are shared with demo/movielens.py: both datasets come as impressions
(user, history of raw item ids oldest first, raw ad id, clicked) plus an items table
(raw item id -> raw category id); the model files carry vocabularies, so SQL passes raw ids.
"""

import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import dinref  # noqa: E402

MAX_LEN = 20
TOWER = [{"units": 128, "activation": {"type": "relu"}},
         {"units": 64, "activation": {"type": "relu"}}]
# DeepCTR-Torch's Dice: running statistics (PyTorch BatchNorm1d), eps 1e-8, affine.
DICE = {"type": "dice", "eps": 1e-8, "stats": "running", "affine": True}


def config(architecture, item_rows, cate_rows, dim=8, max_len=MAX_LEN):
    """DIN (attention 64-16 Dice, no normalization) or the base model (history mean)."""
    cfg = {
        "format": 1,
        "architecture": architecture,
        "max_len": max_len,
        # Unknown items and categories embed as zero rather than failing the query.
        "fields": [{"name": "item", "rows": item_rows, "dim": dim, "oov": "zero"},
                   {"name": "cate", "rows": cate_rows, "dim": dim, "oov": "zero"}],
        "item": {"attributes": ["cate"]},
        "target": ["item", "cate"],
        "behaviour": ["item", "cate"],
        "tower": {"layers": TOWER, "head": {"type": "sigmoid", "bias": True}},
    }
    if architecture == "din":
        cfg["attention"] = {"type": "din",
                            "layers": [{"units": 64, "activation": DICE},
                                       {"units": 16, "activation": DICE}],
                            "normalization": "none"}
        cfg["tower"]["inputs"] = ["target", "attention"]
    else:
        cfg["tower"]["inputs"] = ["history_mean", "target"]
    return cfg


class Data:
    """Impressions as row tensors for DinRef: raw ids mapped through the vocabularies, the
    category through the items table, as din does (-1 = unknown, the zero vector)."""

    def __init__(self, rows, item_row, cate_row, items, max_len=MAX_LEN):
        n = len(rows)
        self.user = np.zeros(n, np.int64)
        self.label = np.zeros(n, np.float32)
        self.target = np.zeros((n, 2), np.int64)
        self.hist = np.full((n, max_len, 2), -1, np.int64)
        self.hist_len = np.zeros(n, np.int64)

        def rows_of(item):
            return (item_row.get(item, -1), cate_row.get(items.get(item), -1))

        for i, (user, history, ad, clicked) in enumerate(rows):
            self.user[i] = user
            self.label[i] = clicked
            self.target[i] = rows_of(ad)
            kept = history[-max_len:]  # din keeps the most recent max_len behaviours
            for t, h in enumerate(kept):
                self.hist[i, t] = rows_of(h)
            self.hist_len[i] = len(kept)
        self.target = torch.from_numpy(self.target)
        self.hist = torch.from_numpy(self.hist)
        self.hist_len = torch.from_numpy(self.hist_len)

    def __len__(self):
        return len(self.label)

    def batch(self, idx):
        return self.target[idx], self.hist[idx], self.hist_len[idx]


def auc(score, label):
    """Exact ROC AUC, ties counted one half (rank-sum form, as scikit-learn)."""
    score = np.asarray(score, np.float64)
    label = np.asarray(label) > 0.5
    pos, neg = label.sum(), (~label).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2.0 + 1.0
        i = j + 1
    r = np.empty(len(s))
    r[order] = ranks
    return float((r[label].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def gauc(user, score, label):
    """Per-user AUC weighted by the user's impressions; one-class users are skipped."""
    user = np.asarray(user)
    label = np.asarray(label) > 0.5
    order = np.argsort(user, kind="mergesort")
    bounds = np.flatnonzero(np.diff(user[order])) + 1
    total = weight = 0.0
    for g in np.split(order, bounds):
        if 0 < label[g].sum() < len(g):
            total += len(g) * auc(score[g], label[g])
            weight += len(g)
    return total / weight


def predict(model, data, batch=4096):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(data), batch):
            idx = torch.arange(i, min(i + batch, len(data)))
            out.append(model.prob(*data.batch(idx)).numpy())
    return np.concatenate(out).astype(np.float64)


def fit(model, train, test, epochs, lr=1e-3, batch=256, seed=0, log=print):
    """Adam on the BCE of the logits; returns the held-out (auc, gauc) after training."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    labels = torch.from_numpy(train.label)
    start = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(train), generator=gen)
        total = 0.0
        for i in range(0, len(train), batch):
            idx = perm[i:i + batch]
            loss = model.loss(labels[idx], *train.batch(idx))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        log("  epoch %d: training log loss %.4f (%.0f s)" % (epoch + 1, total / len(train),
                                                             time.time() - start))
    p = predict(model, test)
    return auc(p, test.label), gauc(test.user, p, test.label)


def check_file(path, rows, model_probs):
    """Score a few impressions from the written file with dinref.Scorer (raw ids, float64,
    as din's SQL sees them) and compare with the trained module."""
    cfg, tensors = dinref.read_model(path)
    scorer = dinref.Scorer(cfg, tensors)
    for (user, history, ad, clicked), p in zip(rows, model_probs):
        q = scorer.score(history, ad)
        if abs(q - p) > 1e-4 * max(1.0, abs(p)):
            raise SystemExit("%s: file scores %.6f where the module gave %.6f" % (path, q, p))


def train_pair(train_rows, test_rows, items, out_dir, prefix, epochs, log=print):
    """Train DIN and base on impressions; write <prefix>_{din,base}.safetensors into out_dir.

    items: {raw item id: raw category id}, written whole as the model's items table. The item
    vocabulary holds the items seen in training (an unseen item's embedding would be an
    untrained random row; with oov "zero" it is zero and the category still counts).
    Returns {"din": (auc, gauc), "base": (auc, gauc)} on test_rows.
    """
    torch.set_num_threads(2)
    seen = set()
    for _, history, ad, _ in train_rows:
        seen.add(ad)
        seen.update(history[-MAX_LEN:])
    item_ids = sorted(seen)
    cate_ids = sorted(set(items.values()))
    item_row = {raw: r for r, raw in enumerate(item_ids)}
    cate_row = {raw: r for r, raw in enumerate(cate_ids)}
    train = Data(train_rows, item_row, cate_row, items)
    test = Data(test_rows, item_row, cate_row, items)
    log("%d training and %d held-out impressions, %d items (%d in the vocabulary), "
        "%d categories" % (len(train), len(test), len(items), len(item_ids), len(cate_ids)))
    table = sorted(items)
    results = {}
    for arch in ("din", "base"):
        torch.manual_seed(0)
        cfg = config(arch, len(item_ids), len(cate_ids))
        model = dinref.DinRef(cfg,
                              items=(np.array(table, np.int64),
                                     np.array([[items[i]] for i in table], np.int64)),
                              vocab={"item": np.array(item_ids, np.int64),
                                     "cate": np.array(cate_ids, np.int64)})
        log("training %s" % arch)
        results[arch] = fit(model, train, test, epochs, log=log)
        path = os.path.join(out_dir, "%s_%s.safetensors" % (prefix, arch))
        dinref.write_model(path, cfg, model.tensors())
        check_file(path, test_rows[:50], predict(model, test)[:50])
        log("wrote %s (%d bytes); held-out AUC %.4f GAUC %.4f" % (path, os.path.getsize(path),
                                                                 *results[arch]))
    return results


def read_impressions(path):
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            history = [int(x) for x in r["history"].strip("{}").split(",") if x]
            rows.append((int(r["user_id"]), history, int(r["ad_id"]), int(r["clicked"])))
    return rows


def read_items(path):
    with open(path, newline="") as f:
        return {int(r["item_id"]): int(r["category"]) for r in csv.DictReader(f)}


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    out_dir = os.path.join(HERE, "models")
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.join(HERE, "gen_synthetic.py"), tmp], check=True)
        items = read_items(os.path.join(tmp, "items.csv"))
        train_rows = read_impressions(os.path.join(tmp, "train.csv"))
        test_rows = read_impressions(os.path.join(tmp, "test.csv"))
        digest = sha256(os.path.join(tmp, "test.csv"))
    results = train_pair(train_rows, test_rows, items, out_dir, "synthetic", epochs=4)
    summary = {"test_sha256": digest,
               "python": {arch: {"auc": round(a, 6), "gauc": round(g, 6)}
                          for arch, (a, g) in results.items()}}
    with open(os.path.join(out_dir, "synthetic.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    for arch, (a, g) in results.items():
        print("%-4s held-out AUC %.4f GAUC %.4f (PyTorch)" % (arch, a, g))


if __name__ == "__main__":
    main()
