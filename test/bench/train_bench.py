#!/usr/bin/python3
"""Training samples/s of din-train's loop next to DeepCTR-Torch's own (its fit()) on the same
DIN and DIEN, in one process with 2 torch threads: the same random rows at Amazon Beauty's
sizes (12,101 items in 195 categories, histories of 1 to 20, embeddings 8 wide), the same
layers (attention 80-40 Dice, tower 200-80 PReLU; DIEN: GRU and AUGRU 16 wide, softmax
attention), batch 256, Adam. The loops take turns, one epoch each, ROUNDS times; each reports
its best epoch.

    DEEPCTR_TORCH_SRC=DIR /usr/bin/python3 test/bench/train_bench.py [ROWS] [ROUNDS]

DEEPCTR_TORCH_SRC is a source tree of DeepCTR-Torch (the directory holding deepctr_torch/),
imported from there, not installed (0.2.9 was measured). Prints "train <model> <loop>
<samples/s>" lines, or "skip ..." when DEEPCTR_TORCH_SRC or torch is missing. Times are the
training loops only: din-train's from its encoded tensors (Trainer.step over the batches,
what each epoch of din-train runs), DeepCTR-Torch's fit() from its numpy inputs (its
DataLoader included, as a user of it runs it), no validation in either.
"""

import contextlib
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# Both loops in this process: OpenMP threads that sleep when idle, as din-train sets them.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
try:
    import numpy as np
    import torch
except ImportError:
    print("skip train: torch is not installed (Debian package python3-torch)")
    sys.exit(0)
SRC = os.environ.get("DEEPCTR_TORCH_SRC")
if not SRC or not os.path.isdir(os.path.join(SRC, "deepctr_torch")):
    print("skip train: set DEEPCTR_TORCH_SRC to a DeepCTR-Torch source tree to compare "
          "din-train's training loop with its own")
    sys.exit(0)

sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, os.path.join(HERE, "..", "convert"))
from dintrain import config, core, data  # noqa: E402
from make_peer_fixtures import package, stub_imports  # noqa: E402

ITEMS, CATES, MAX_LEN, DIM, BATCH = 12101, 195, 20, 8, 256


def random_rows(n, rng):
    """Histories of 1..MAX_LEN items, one candidate and a label each; item i has one category."""
    cate = rng.integers(1, CATES + 1, ITEMS + 1)
    lengths = rng.integers(1, MAX_LEN + 1, n)
    hist = rng.integers(1, ITEMS + 1, (n, MAX_LEN))
    hist[np.arange(MAX_LEN) >= lengths[:, None]] = 0
    ads = rng.integers(1, ITEMS + 1, n)
    labels = rng.integers(0, 2, n).astype(np.float32)
    return cate, lengths, hist, ads, labels


def din_train_loop(arch, cate, lengths, hist, ads, labels, aux):
    rows = [{"history": hist[i, :lengths[i]].tolist(), "ad_id": int(ads[i]),
             "label": int(labels[i])} for i in range(len(ads))]
    items = {i: [int(cate[i])] for i in range(1, ITEMS + 1)}
    enc = data.Encoder(rows, MAX_LEN, items, ["cate"])
    cfg = config.make_config(arch, enc, DIM, (80, 40), "dice", (200, 80), "prelu")
    trainer = core.Trainer(config.build_model(cfg, enc), enc,
                           core.Options(batch_size=BATCH, aux=aux))

    def epoch():
        for idx in trainer.batches():
            trainer.step(idx)
    return epoch


def deepctr_loop(arch, cate, lengths, hist, ads, labels, aux):
    from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat, get_feature_names
    from deepctr_torch.models.dien import DIEN
    from deepctr_torch.models.din import DIN
    vocab = {"item": ITEMS + 1, "cate": CATES + 1}
    fc = [SparseFeat(f, vocab[f], embedding_dim=DIM) for f in vocab]
    fc += [VarLenSparseFeat(SparseFeat(prefix + f, vocab[f], embedding_dim=DIM,
                                       embedding_name=f), MAX_LEN, length_name="seq_length")
           for prefix in ("hist_",) + (("neg_hist_",) if aux else ()) for f in vocab]
    x = {"item": ads, "cate": cate[ads], "hist_item": hist, "hist_cate": cate[hist],
         "seq_length": lengths}
    if aux:
        # DeepCTR-Torch takes the sampled negatives as inputs; din-train draws its own
        neg = np.random.default_rng(1).integers(1, ITEMS + 1, hist.shape) * (hist > 0)
        x.update({"neg_hist_item": neg, "neg_hist_cate": cate[neg]})
    common = {"dnn_hidden_units": (200, 80), "dnn_activation": "prelu",
              "att_activation": "dice", "l2_reg_embedding": 0.0}
    if arch == "din":
        model = DIN(fc, ["item", "cate"], att_hidden_size=(80, 40), **common)
    else:
        model = DIEN(fc, ["item", "cate"], gru_type="AUGRU", use_negsampling=bool(aux),
                     alpha=aux or 1.0, att_hidden_units=(80, 40),
                     att_weight_normalization=True, **common)
    model.compile("adam", "binary_crossentropy")
    inputs = {n: x[n] for n in get_feature_names(fc)}

    def epoch():
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            model.fit(inputs, labels, batch_size=BATCH, epochs=1, verbose=0)
    return epoch


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20480
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    torch.set_num_threads(2)
    stub_imports(tempfile.mkdtemp())
    package("deepctr_torch", os.path.realpath(SRC))
    data_ = random_rows(n, np.random.default_rng(0))
    for name, arch, aux in (("din", "din", 0.0), ("dien", "dien", 0.0),
                            ("dien_aux", "dien", 1.0)):
        torch.manual_seed(0)
        loops = {"din-train": din_train_loop(arch, *data_, aux),
                 "deepctr-torch": deepctr_loop(arch, *data_, aux)}
        best = {k: 0.0 for k in loops}
        for _ in range(rounds):
            for loop, epoch in loops.items():
                start = time.perf_counter()
                epoch()
                best[loop] = max(best[loop], n / (time.perf_counter() - start))
        for loop, rate in best.items():
            print("train %s %s %.0f" % (name, loop, rate), flush=True)


if __name__ == "__main__":
    main()
