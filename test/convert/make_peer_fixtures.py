#!/usr/bin/env python3
"""Trains small models with DeepCTR-Torch and torch-rechub themselves and records what their own
eval() forward predicts: the peer fixtures in test/fixtures/peer/ (see its README.md).

    DEEPCTR_TORCH_SRC=DIR TORCH_RECHUB_SRC=DIR /usr/bin/python3 test/convert/make_peer_fixtures.py

DEEPCTR_TORCH_SRC is a source tree of DeepCTR-Torch 0.2.9 (the directory holding deepctr_torch/),
TORCH_RECHUB_SRC one of torch-rechub (holding torch_rechub/). Neither is installed nor copied: they
are imported from there. AMAZON_S3REC (default ../shared/data/amazon-s3rec beside the clone) holds
Beauty.txt and Beauty_item2attributes.json. OUT (default test/fixtures/peer) receives, per library,
manifest.json, cate_of_item.npy and per case CASE.weights.npz (the state_dict), CASE.spec.json
(docs/CONVERT.md) and CASE.test.npz (the test rows and `pred`). Needs torch (Debian's python3 has
1.13). Seeded and single-threaded: a rerun on the same torch writes the same numbers.
Afterwards run test/convert/convert_peer_fixtures.py to make what `make unit` scores.
"""

import json
import os
import sys
import tempfile
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.join(HERE, "..", "..")
T = 10            # history slots
N_ITEMS = 1000    # the most frequent items, ids 1..N_ITEMS (0 = padding)
N_USERS = 1200    # users 1..1000 train, the rest give the test rows
TRAIN_USERS, ROWS, EPOCHS = 1000, 200, 2


# ---- data: Amazon Beauty, next item (label 1) or a random item (label 0) -----------------

def load_data(rng):
    d = os.environ.get("AMAZON_S3REC", os.path.join(ROOT, "..", "shared", "data", "amazon-s3rec"))
    seqs = [[int(x) for x in line.split()[1:]] for line in open(os.path.join(d, "Beauty.txt"))]
    counts = {}
    for s in seqs:
        for i in s:
            counts[i] = counts.get(i, 0) + 1
    top = sorted(counts, key=lambda i: (-counts[i], i))[:N_ITEMS]
    item_id = {raw: k + 1 for k, raw in enumerate(top)}
    # Category: the most common attribute that fewer than half of the kept items carry (the
    # first attribute level is shared by nearly all); items without one get their own id.
    attrs = json.load(open(os.path.join(d, "Beauty_item2attributes.json")))
    carried = {}
    for raw in top:
        for a in attrs.get(str(raw), []):
            carried[a] = carried.get(a, 0) + 1
    cate_raw = {}
    for raw in top:
        ok = [a for a in attrs.get(str(raw), []) if carried[a] < N_ITEMS / 2]
        cate_raw[raw] = max(ok, key=lambda a: (carried[a], -a)) if ok else -1
    cate_id = {c: k + 1 for k, c in enumerate(sorted(set(cate_raw.values())))}
    cate_of = np.zeros(N_ITEMS + 1, dtype=np.int64)
    for raw, k in item_id.items():
        cate_of[k] = cate_id[cate_raw[raw]]
    pop = np.zeros(N_ITEMS + 1, dtype=np.float32)
    for raw, k in item_id.items():
        pop[k] = np.log1p(counts[raw]) / 10
    users = [s for s in ([item_id[i] for i in s if i in item_id] for s in seqs) if s][:N_USERS]

    def row(u, seq, p, positive):
        hist = seq[max(0, p - T):p]
        item = seq[p] if positive else int(rng.integers(1, N_ITEMS + 1))
        return u + 1, hist, item, int(positive)

    train = [row(u, s, int(rng.integers(0, len(s))), k % 2 == 0)
             for u, s in enumerate(users[:TRAIN_USERS]) for k in range(8)]
    # Test rows: empty histories (new users), length 1, full length and any other position.
    want = {"empty": 30, "one": 30, "full": 60, "any": ROWS - 120}
    test = []
    for u in range(TRAIN_USERS, len(users)):
        s = users[u]
        for kind, p in (("empty", 0), ("one", 1), ("full", len(s) - 1),
                        ("any", int(rng.integers(1, len(s))) if len(s) > 1 else 0)):
            if want[kind] and p < len(s) and (kind != "full" or p >= T):
                want[kind] -= 1
                test.append(row(u, s, p, len(test) % 2 == 0))
    while len(test) < ROWS:  # not enough long histories: fill with the longest of a few users
        u = max(rng.integers(TRAIN_USERS, len(users), 5), key=lambda u: len(users[u]))
        test.append(row(u, users[u], len(users[u]) - 1, len(test) % 2 == 0))
    return train, test[:ROWS], cate_of, pop, len(cate_id) + 1


def columns(rows, cate_of, pop, padding):
    """The rows as named numpy columns; histories padded to T slots at the end or the front."""
    n = len(rows)
    hist = np.zeros((n, T), dtype=np.int64)
    for i, (_, h, _, _) in enumerate(rows):
        if h:
            if padding == "post":
                hist[i, :len(h)] = h
            else:
                hist[i, T - len(h):] = h
    item = np.array([r[2] for r in rows], dtype=np.int64)
    user = np.array([r[0] for r in rows], dtype=np.int64)
    return {"user": user, "ubucket": user % 8, "item": item, "cate": cate_of[item],
            "hist_item": hist, "hist_cate": cate_of[hist],
            "seq_length": np.array([len(r[1]) for r in rows], dtype=np.int64),
            "pop": pop[item], "label": np.array([r[3] for r in rows], dtype=np.float32)}


# ---- importing the libraries from their source trees ------------------------------------

def package(name, path):
    """Registers `name` as a package at `path` without running its __init__: DeepCTR-Torch's asks
    the package registry for newer versions, torch-rechub's reads installed metadata."""
    m = types.ModuleType(name)
    m.__path__ = [os.path.join(path, name)]
    sys.modules[name] = m


def stub_imports(tmp):
    """DeepCTR-Torch imports tensorflow only for Keras-style callbacks (fit() needs a CallbackList
    that accepts every hook) and tqdm only for a progress bar."""
    with open(os.path.join(tmp, "tqdm.py"), "w") as f:
        f.write("class tqdm:\n"
                "    def __init__(self, iterable, *a, **k): self.iterable = iterable\n"
                "    def __iter__(self): return iter(self.iterable)\n"
                "    def __enter__(self): return self\n"
                "    def __exit__(self, *a): pass\n"
                "    def close(self): pass\n")
    d = os.path.join(tmp, "tensorflow", "python", "keras")
    os.makedirs(d)
    for p in ("tensorflow", "tensorflow/python", "tensorflow/python/keras"):
        open(os.path.join(tmp, p, "__init__.py"), "w").close()
    with open(os.path.join(d, "callbacks.py"), "w") as f:
        f.write("class Callback:\n"
                "    def __init__(self, *a, **k): self.history = {}\n"
                "    def set_model(self, model): self.model = model\n"
                "    def __getattr__(self, name): return lambda *a, **k: None\n"
                "CallbackList = EarlyStopping = ModelCheckpoint = History = Callback\n")
    sys.path.insert(0, tmp)


def source(var):
    path = os.environ.get(var)
    if not path or not os.path.isdir(path):
        sys.exit("set %s to the library's source tree" % var)
    return os.path.realpath(path)


# ---- DeepCTR-Torch ----------------------------------------------------------------------

DCTR_CASES = [
    # name, model, kwargs, options (separate tables, second context field in group "geo",
    # dense field, negative sampling), expected failure
    ("din_dice", "DIN", {"att_activation": "dice", "att_hidden_size": [8, 4],
                         "dnn_hidden_units": [16, 8]}, {"dense": True}, None),
    ("din_relu_softmax_prelu_bn", "DIN", {
        "att_activation": "relu", "att_weight_normalization": True, "att_hidden_size": [8],
        "dnn_activation": "prelu", "dnn_use_bn": True, "dnn_hidden_units": [16, 8]},
        {"dense": True}, None),  # empty histories: attention empty padding
    ("din_sigmoid_separate_geo", "DIN", {
        "att_activation": "sigmoid", "att_hidden_size": [8, 4], "dnn_activation": "sigmoid",
        "dnn_hidden_units": [16]}, {"separate": True, "geo": True}, None),
    # No Dice tower: DeepCTR-Torch's DNN builds Dice for 3-d input there and asserts on the 2-d.
    ("din_prelu_bn", "DIN", {
        "att_activation": "prelu", "att_hidden_size": [8], "dnn_activation": "prelu",
        "dnn_use_bn": True, "dnn_hidden_units": [16, 8]}, {"dense": True, "geo": True}, None),
    ("din_linear", "DIN", {"att_activation": "linear", "att_hidden_size": [8],
                           "dnn_activation": "linear", "dnn_hidden_units": [8]},
     {"separate": True}, None),
    ("dien_gru", "DIEN", {"gru_type": "GRU", "att_hidden_units": [8, 4],
                          "dnn_hidden_units": [16, 8]}, {"dense": True}, None),
    ("dien_aigru_bn", "DIEN", {"gru_type": "AIGRU", "att_activation": "dice", "use_bn": True,
                               "att_hidden_units": [8], "dnn_hidden_units": [16, 8]},
     {"geo": True}, None),
    ("dien_agru", "DIEN", {"gru_type": "AGRU", "att_activation": "sigmoid",
                           "att_hidden_units": [8], "dnn_activation": "prelu",
                           "dnn_hidden_units": [16]}, {"dense": True}, None),
    ("dien_agru_unnormalized", "DIEN", {
        "gru_type": "AGRU", "att_weight_normalization": False, "att_activation": "relu",
        "att_hidden_units": [8], "dnn_hidden_units": [16, 8]}, {"separate": True}, None),
    ("dien_augru_bn_neg", "DIEN", {
        "gru_type": "AUGRU", "att_activation": "dice", "use_bn": True, "use_negsampling": True,
        "att_hidden_units": [8, 4], "dnn_hidden_units": [16, 8]},
     {"dense": True, "geo": True, "neg": True}, None),
    ("dien_augru_unnormalized", "DIEN", {
        "gru_type": "AUGRU", "att_weight_normalization": False, "att_activation": "prelu",
        "att_hidden_units": [8], "dnn_activation": "sigmoid", "dnn_hidden_units": [16]}, {}, None),
]


def dctr_case(name, model, kwargs, opt, train, test, n_cates):
    from deepctr_torch.inputs import DenseFeat, SparseFeat, VarLenSparseFeat
    from deepctr_torch.models.dien import DIEN
    from deepctr_torch.models.din import DIN

    spec = [{"type": "sparse", "name": "user", "vocabulary_size": N_USERS + 1, "embedding_dim": 4},
            {"type": "sparse", "name": "item", "vocabulary_size": N_ITEMS + 1, "embedding_dim": 4},
            {"type": "sparse", "name": "cate", "vocabulary_size": n_cates, "embedding_dim": 4}]
    if opt.get("geo"):  # another group: embedding_lookup puts it after the default group
        spec.insert(1, {"type": "sparse", "name": "ubucket", "vocabulary_size": 8,
                        "embedding_dim": 2, "group_name": "geo"})
    hist = ["hist_"] + (["neg_hist_"] if opt.get("neg") else [])
    for prefix in hist:
        for f, n in (("item", N_ITEMS + 1), ("cate", n_cates)):
            table = prefix + f if opt.get("separate") and f == "item" and prefix == "hist_" else f
            spec.append({"type": "varlen", "name": prefix + f, "vocabulary_size": n,
                         "embedding_dim": 4, "embedding_name": table, "maxlen": T,
                         "length_name": "seq_length"})
    if opt.get("dense"):
        spec.append({"type": "dense", "name": "pop", "dimension": 1})
    cols = []
    for f in spec:
        if f["type"] == "sparse":
            cols.append(SparseFeat(f["name"], f["vocabulary_size"], f["embedding_dim"],
                                   group_name=f.get("group_name", "default_group")))
        elif f["type"] == "varlen":
            cols.append(VarLenSparseFeat(SparseFeat(f["name"], f["vocabulary_size"],
                                                    f["embedding_dim"],
                                                    embedding_name=f["embedding_name"]),
                                         f["maxlen"], length_name=f["length_name"]))
        else:
            cols.append(DenseFeat(f["name"], f["dimension"]))
    kw = dict(kwargs, init_std=0.05, seed=1024)
    torch.manual_seed(1024)
    net = (DIN if model == "DIN" else DIEN)(cols, ["item", "cate"], **kw)
    net.compile(torch.optim.Adam(net.parameters(), lr=0.01), "binary_crossentropy")

    def inputs(c, rng):
        x = {k: c[k] for k in ("user", "ubucket", "item", "cate", "hist_item", "hist_cate",
                               "seq_length", "pop")}
        if opt.get("neg"):  # negative behaviours for the auxiliary loss: random items
            neg = rng.integers(1, N_ITEMS + 1, c["hist_item"].shape) * (c["hist_item"] != 0)
            x["neg_hist_item"], x["neg_hist_cate"] = neg, CATE_OF[neg]
        return x

    rng = np.random.default_rng(7)
    tr = columns(train, CATE_OF, POP, "post")
    net.fit(inputs(tr, rng), tr["label"], batch_size=256, epochs=EPOCHS, verbose=0)
    te = columns(test, CATE_OF, POP, "post")
    x = inputs(te, rng)
    te["pred"] = net.predict(x, batch_size=ROWS)[:, 0]  # predict(): eval() and forward
    return ({"model": model, "features": spec, "history_feature_list": ["item", "cate"],
             "kwargs": kw}, net, dict(te, **x))


# ---- torch-rechub -----------------------------------------------------------------------

RECHUB_CASES = [
    # name, model, kwargs, padding, options, expected failure
    ("bst_pre_relu", "BST", {"mlp_params": {"dims": [16, 8]}, "nhead": 2, "num_layers": 1,
                             "max_seq_len": T + 1}, "pre", {"dense": True}, None),
    ("bst_post_dice_2layers", "BST", {"mlp_params": {"dims": [16], "activation": "dice"},
                                      "nhead": 4, "num_layers": 2, "max_seq_len": 16}, "post",
     {"padding_idx": True}, None),
    ("bst_pre_prelu_1head", "BST", {"mlp_params": {"dims": [8], "activation": "prelu"},
                                    "nhead": 1, "max_seq_len": 21}, "pre",
     {"dense": True, "padding_idx": True}, None),
    ("bst_post_leakyrelu_8heads", "BST", {
        "mlp_params": {"dims": [16, 8], "activation": "leakyrelu"}, "nhead": 8,
        "max_seq_len": T + 1}, "post", {}, None),
    ("bst_pre_sigmoid_2layers", "BST", {"mlp_params": {"dims": [8], "activation": "sigmoid"},
                                        "nhead": 2, "num_layers": 2, "max_seq_len": T + 1},
     "pre", {"dense": True}, None),
    ("dien_single_field", "DIEN", {"mlp_params": {"dims": [16, 8]}, "alpha": 0.2}, "post",
     {"dense": True}, None),
    ("din", "DIN", {"mlp_params": {"dims": [16, 8]},
                    "attention_mlp_params": {"dims": [8], "activation": "dice"}}, "pre",
     {}, None),  # its DIN cannot take a dense feature (the tower width miscounts)
]


def rechub_case(name, model, kwargs, padding, opt, train, test, n_cates):
    from torch_rechub.basic.features import DenseFeature, SequenceFeature, SparseFeature
    from torch_rechub.basic.initializers import RandomNormal
    from torch_rechub.models.ranking.bst import BST
    from torch_rechub.models.ranking.dien import DIEN
    from torch_rechub.models.ranking.din import DIN

    pad = {"padding_idx": 0} if opt.get("padding_idx") or model == "DIEN" else {}
    fields = [("item", N_ITEMS + 1)] + ([] if model == "DIEN" else [("cate", n_cates)])
    feats = [{"type": "sparse", "name": "user", "vocab_size": N_USERS + 1, "embed_dim": 4}]
    if opt.get("dense"):
        feats.append({"type": "dense", "name": "pop"})
    targ = [dict({"type": "sparse", "name": f, "vocab_size": n, "embed_dim": 4}, **pad)
            for f, n in fields]
    hist = [dict({"type": "sequence", "name": "hist_" + f, "vocab_size": n, "embed_dim": 4,
                  "pooling": "concat", "shared_with": f}, **pad) for f, n in fields]
    neg = [dict(h, name="neg_" + h["name"]) for h in hist]
    init = RandomNormal(0, 0.05)

    def make(f):
        if f["type"] == "dense":
            return DenseFeature(f["name"])
        args = {k: f[k] for k in ("shared_with", "padding_idx") if k in f}
        if f["type"] == "sparse":
            return SparseFeature(f["name"], f["vocab_size"], f["embed_dim"], initializer=init,
                                 **args)
        return SequenceFeature(f["name"], f["vocab_size"], f["embed_dim"], pooling="concat",
                               initializer=init, **args)

    torch.manual_seed(1024)
    F, H, Tg = [make(f) for f in feats], [make(f) for f in hist], [make(f) for f in targ]
    if model == "BST":
        net = BST(F, H, Tg, **kwargs)
    elif model == "DIEN":
        net = DIEN(F, H, [make(f) for f in neg], Tg, **kwargs)
    else:
        net = DIN(F, H, Tg, **kwargs)
    spec = {"model": model, "features": feats, "history_features": hist,
            "target_features": targ, "kwargs": kwargs, "max_len": T, "padding": padding}
    if model == "DIEN":
        spec["neg_history_features"] = neg
    rng = np.random.default_rng(7)

    def inputs(c):
        x = {k: torch.from_numpy(np.ascontiguousarray(c[k])) for k in
             ("user", "item", "cate", "hist_item", "hist_cate", "pop")}
        n = rng.integers(1, N_ITEMS + 1, c["hist_item"].shape) * (c["hist_item"] != 0)
        x["neg_hist_item"] = torch.from_numpy(n)
        return x

    def forward(x):
        y = net(x)
        return y[0] if isinstance(y, tuple) else y

    tr = columns(train, CATE_OF, POP, padding)
    opt_ = torch.optim.Adam(net.parameters(), lr=0.01)
    order = np.random.default_rng(3)
    for _ in range(EPOCHS):
        net.train()
        perm = order.permutation(len(train))
        for b in range(0, len(perm), 256):
            idx = perm[b:b + 256]
            x = inputs({k: v[idx] for k, v in tr.items()})
            y = net(x)
            p, aux = y if isinstance(y, tuple) else (y, 0)
            loss = torch.nn.functional.binary_cross_entropy(
                p, torch.from_numpy(tr["label"][idx])) + aux
            opt_.zero_grad()
            loss.backward()
            opt_.step()
    net.eval()
    te = columns(test, CATE_OF, POP, padding)
    x = inputs(te)
    with torch.no_grad():
        te["pred"] = forward(x).numpy().astype(np.float64)
    te["neg_hist_item"] = x["neg_hist_item"].numpy()
    return spec, net, te


# ---- output -----------------------------------------------------------------------------

def write_case(d, name, spec, net, test, expect, manifest):
    sd = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    np.savez_compressed(os.path.join(d, name + ".weights.npz"), **sd)
    # ids fit in int32; compressed, since the histories are mostly padding
    np.savez_compressed(os.path.join(d, name + ".test.npz"), **{
        k: v.astype(np.int32) if v.dtype == np.int64 else v for k, v in test.items()})
    with open(os.path.join(d, name + ".spec.json"), "w") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")
    p = test["pred"]
    entry = {"test_rows": len(p), "empty_rows": int((test["seq_length"] == 0).sum()),
             "pred_min": round(float(p.min()), 6), "pred_max": round(float(p.max()), 6)}
    if expect:
        entry["expected_failure"] = {"rows": expect[0], "reason": expect[1]}
    manifest[name] = entry
    print("%s: %d rows, pred %.4f..%.4f" % (name, len(p), p.min(), p.max()))


def main():
    global CATE_OF, POP
    torch.set_num_threads(1)
    out = os.environ.get("OUT", os.path.join(ROOT, "test", "fixtures", "peer"))
    only = sys.argv[1:]
    train, test, CATE_OF, POP, n_cates = load_data(np.random.default_rng(2024))
    tmp = tempfile.mkdtemp()
    stub_imports(tmp)
    for var, pkg in (("DEEPCTR_TORCH_SRC", "deepctr_torch"), ("TORCH_RECHUB_SRC", "torch_rechub")):
        package(pkg, source(var))
    for library, cases in (("deepctr-torch", DCTR_CASES), ("torch-rechub", RECHUB_CASES)):
        d = os.path.join(out, library)
        os.makedirs(d, exist_ok=True)
        mpath = os.path.join(d, "manifest.json")
        manifest = json.load(open(mpath)) if only and os.path.exists(mpath) else {}
        np.save(os.path.join(d, "cate_of_item.npy"), CATE_OF)
        for case in cases:
            if only and case[0] not in only:
                continue
            if library == "deepctr-torch":
                name, model, kw, opt, expect = case
                spec, net, te = dctr_case(name, model, kw, opt, train, test, n_cates)
            else:
                name, model, kw, padding, opt, expect = case
                spec, net, te = rechub_case(name, model, kw, padding, opt, train, test, n_cates)
            write_case(d, name, spec, net, te, expect, manifest)
        with open(mpath, "w") as f:
            json.dump(dict(sorted(manifest.items())), f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
