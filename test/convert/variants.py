#!/usr/bin/env python3
"""Small random state_dicts of every supported library option, with the libraries' key names
and shapes, and their SPECs: what test_convert.py maps and refuses. Seeded.

What din scores is checked against the libraries themselves on the peer fixtures
(test/fixtures/peer, made by make_peer_fixtures.py with DeepCTR-Torch and torch-rechub).
"""

import numpy as np

N_ITEMS, N_CATES, N_USERS, N_CITIES, T = 40, 6, 12, 5, 6
# One item -> category mapping for all variants (cate_of_item.npy, 0 = padding).
CATE_OF = np.concatenate([[0], np.random.default_rng(0).integers(1, N_CATES, N_ITEMS - 1)])


class Maker:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.sd = {}

    def normal(self, key, shape, scale):
        self.sd[key] = (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def uniform(self, key, shape, lo, hi):
        self.sd[key] = self.rng.uniform(lo, hi, shape).astype(np.float32)

    def linear(self, prefix, out, inp, bias=True):
        self.normal(prefix + ".weight", (out, inp), 1.5 / np.sqrt(inp))
        if bias:
            self.normal(prefix + ".bias", (out,), 0.1)

    def bn(self, prefix, n):
        self.normal(prefix + ".running_mean", (n,), 0.2)
        self.uniform(prefix + ".running_var", (n,), 0.5, 1.5)
        self.uniform(prefix + ".weight", (n,), 0.5, 1.5)
        self.normal(prefix + ".bias", (n,), 0.1)
        self.sd[prefix + ".num_batches_tracked"] = np.array(100, dtype=np.int64)

    def gru(self, prefix, suffix, inp, H, shared_bias=False):
        self.normal("%s.weight_ih%s" % (prefix, suffix), (3 * H, inp), 1 / np.sqrt(inp))
        self.normal("%s.weight_hh%s" % (prefix, suffix), (3 * H, H), 1 / np.sqrt(H))
        self.normal("%s.bias_ih%s" % (prefix, suffix), (3 * H,), 0.1)
        if shared_bias:
            self.sd["%s.bias_hh%s" % (prefix, suffix)] = self.sd["%s.bias_ih%s" % (prefix, suffix)]
        else:
            self.normal("%s.bias_hh%s" % (prefix, suffix), (3 * H,), 0.1)


# ---- DeepCTR-Torch ----------------------------------------------------------------------

def dctr_act(m, prefix, act, n):
    if act.lower() == "dice":
        m.uniform(prefix + ".alpha", (n, 1), -0.5, 0.5)
        m.bn(prefix + ".bn", n)
    elif act.lower() == "prelu":
        m.sd[prefix + ".weight"] = np.array([0.25], dtype=np.float32)


def dctr_dnn(m, prefix, inp, units, act, use_bn):
    for i, u in enumerate(units):
        m.linear("%s.linears.%d" % (prefix, i), u, inp)
        if use_bn:
            m.bn("%s.bn.%d" % (prefix, i), u)
        dctr_act(m, "%s.activation_layers.%d" % (prefix, i), act, u)
        inp = u
    return inp


def dctr_variant(name, seed, model, kwargs, separate=False, dense=False, city=False,
                 neg=False):
    m = Maker(seed)
    feats = [{"type": "sparse", "name": "user", "vocabulary_size": N_USERS, "embedding_dim": 3}]
    if city:  # another group: embedding_lookup puts its group after default_group
        feats.append({"type": "sparse", "name": "city", "vocabulary_size": N_CITIES,
                      "embedding_dim": 2, "group_name": "geo"})
    feats += [{"type": "sparse", "name": "item", "vocabulary_size": N_ITEMS, "embedding_dim": 4},
              {"type": "sparse", "name": "cate", "vocabulary_size": N_CATES, "embedding_dim": 4}]
    for f, n in (("item", N_ITEMS), ("cate", N_CATES)):
        emb_name = "hist_item" if separate and f == "item" else f
        feats.append({"type": "varlen", "name": "hist_" + f, "vocabulary_size": n,
                      "embedding_dim": 4, "embedding_name": emb_name, "maxlen": T,
                      "length_name": "seq_length"})
    if model == "DIEN":  # a varlen feature DIEN never reads
        feats.append({"type": "varlen", "name": "tags", "vocabulary_size": 7, "embedding_dim": 2,
                      "maxlen": 3, "combiner": "mean"})
    if dense:
        feats.append({"type": "dense", "name": "price", "dimension": 2})
    for f in feats:
        if f["type"] != "dense":
            key = "embedding_dict.%s.weight" % f.get("embedding_name", f["name"])
            if key not in m.sd:
                m.normal(key, (f["vocabulary_size"], f["embedding_dim"]), 0.7)
    E = 8
    spec = {"model": model, "features": feats, "history_feature_list": ["item", "cate"],
            "kwargs": kwargs}
    kw = dict(kwargs)
    if model == "DIN":
        att_units, att_act = kw.get("att_hidden_size", [64, 16]), kw.get("att_activation", "Dice")
        use_bn = kw.get("dnn_use_bn", False)
        prefix = "attention"
    else:
        att_units, att_act = kw.get("att_hidden_units", [64, 16]), kw.get("att_activation", "relu")
        use_bn = kw.get("use_bn", False)
        prefix = "interest_evolution.attention"
    last = dctr_dnn(m, prefix + ".local_att.dnn", 4 * E, att_units, att_act, False)
    m.linear(prefix + ".local_att.dense", 1, last)
    units, act = kw.get("dnn_hidden_units", [256, 128]), kw.get("dnn_activation", "relu")
    width = 3 + (2 if city else 0) + 8 + E + (2 if dense else 0)
    last = dctr_dnn(m, "dnn", width, units, act, use_bn)
    m.linear("dnn_linear" if model == "DIN" else "linear", 1, last, bias=False)
    m.normal("out.bias", (1,), 0.1)
    gru_type = kw.get("gru_type", "GRU")
    if model == "DIEN":
        m.gru("interest_extractor.gru", "_l0", E, E)
        evo = "interest_evolution.interest_evolution"
        if gru_type in ("GRU", "AIGRU"):
            m.gru(evo, "_l0", E, E)
        else:
            # AUGRUCell registers one bias vector under both names; AGRUCell has two
            m.gru(evo + ".rnn", "", E, E, shared_bias=gru_type == "AUGRU")
        if neg:  # the auxiliary net: training-only, the converter drops it
            m.linear("interest_extractor.auxiliary_net.dnn.linears.0", 100, 2 * E)
            m.linear("interest_extractor.auxiliary_net.dense", 1, 100)
    return name, spec, m.sd, CATE_OF


# ---- torch-rechub -----------------------------------------------------------------------

def rechub_mlp(m, inp, dims, act):
    for i, u in enumerate(dims):
        m.linear("mlp.mlp.%d" % (4 * i), u, inp)
        m.bn("mlp.mlp.%d" % (4 * i + 1), u)
        if act == "prelu":
            m.sd["mlp.mlp.%d.weight" % (4 * i + 2)] = np.array([0.25], dtype=np.float32)
        elif act == "dice":
            m.uniform("mlp.mlp.%d.alpha" % (4 * i + 2), (1,), -0.5, 0.5)
        inp = u
    m.linear("mlp.mlp.%d" % (4 * len(dims)), 1, inp)


def rechub_variant(name, seed, model, kwargs, padding, dense=False):
    m = Maker(seed)
    feats = [{"type": "sparse", "name": "user_id", "vocab_size": N_USERS, "embed_dim": 4}]
    if dense:
        feats.append({"type": "dense", "name": "age"})
    fields = [("item_id", N_ITEMS)] + ([("cate_id", N_CATES)] if model != "DIEN" else [])
    targ = [{"type": "sparse", "name": "target_" + f, "vocab_size": n, "embed_dim": 4,
             "padding_idx": 0} for f, n in fields]
    hist = [{"type": "sequence", "name": "hist_" + f, "vocab_size": n, "embed_dim": 4,
             "pooling": "concat", "shared_with": "target_" + f, "padding_idx": 0}
            for f, n in fields]
    spec = {"model": model, "features": feats, "history_features": hist,
            "target_features": targ, "kwargs": kwargs, "max_len": T, "padding": padding}
    for f in feats + targ:
        if f["type"] == "sparse":
            m.normal("embedding.embed_dict.%s.weight" % f["name"], (f["vocab_size"], 4), 0.7)
    D = 4 * len(fields)
    mlp = kwargs.get("mlp_params", {})
    dims, act = mlp.get("dims", []), mlp.get("activation", "relu" if model == "BST" else "dice")
    width = D + D + 4 + (1 if dense else 0)
    if model == "BST":
        blocks = kwargs.get("num_layers", 1)
        m.normal("pos_embedding.weight", (kwargs.get("max_seq_len", 51), D), 0.5)
        for b in range(blocks):
            p = "transformer_layers.layers.%d." % b
            m.linear(p + "self_attn.in_proj", 3 * D, D)
            m.sd[p + "self_attn.in_proj_weight"] = m.sd.pop(p + "self_attn.in_proj.weight")
            m.sd[p + "self_attn.in_proj_bias"] = m.sd.pop(p + "self_attn.in_proj.bias")
            m.linear(p + "self_attn.out_proj", D, D)
            m.linear(p + "linear1", 32, D)
            m.linear(p + "linear2", D, 32)
            for n in ("norm1", "norm2"):
                m.uniform(p + n + ".weight", (D,), 0.5, 1.5)
                m.normal(p + n + ".bias", (D,), 0.1)
    elif model == "DIN":
        att = kwargs.get("attention_mlp_params", {})
        for i in range(len(fields)):
            p, inp = "attention_layers.%d.attention.mlp." % i, 16
            for j, u in enumerate(att.get("dims", [36])):
                m.linear(p + str(4 * j), u, inp)
                m.bn(p + str(4 * j + 1), u)
                m.uniform(p + "%d.alpha" % (4 * j + 2), (1,), -0.5, 0.5)
                inp = u
            m.linear(p + str(4 * len(att.get("dims", [36]))), 1, inp)
    else:
        m.gru("interest_extractor_layers.0", "_l0", D, D)
        p = "interest_evolving_layers.0."
        m.normal(p + "Wa", (D, D), 0.5)
        for g in ("u", "r", "h"):
            m.normal(p + "augru_cell.W" + g, (D, D), 0.5)
            m.normal(p + "augru_cell.U" + g, (D, D), 0.5)
            m.normal(p + "augru_cell.b" + g, (1, D), 0.3)
    rechub_mlp(m, width, dims, act)

    return name, spec, m.sd, CATE_OF


VARIANTS = {
    "deepctr-torch": [
        lambda: dctr_variant("din_dice", 1, "DIN", {"att_hidden_size": [16, 8],
                             "dnn_hidden_units": [16, 8]}, dense=True),
        lambda: dctr_variant("din_prelu_softmax_bn_separate", 2, "DIN", {
            "att_hidden_size": [12], "att_activation": "prelu", "att_weight_normalization": True,
            "dnn_hidden_units": [16, 8], "dnn_activation": "sigmoid", "dnn_use_bn": True},
            separate=True, city=True),
        lambda: dctr_variant("din_sigmoid_linear", 3, "DIN", {
            "att_hidden_size": [8, 8], "att_activation": "sigmoid",
            "dnn_hidden_units": [8], "dnn_activation": "linear"}),
        lambda: dctr_variant("dien_gru", 4, "DIEN", {"dnn_hidden_units": [16, 8],
                             "att_hidden_units": [16, 8]}, dense=True),
        lambda: dctr_variant("dien_aigru", 5, "DIEN", {"gru_type": "AIGRU",
                             "dnn_hidden_units": [16], "att_hidden_units": [16, 8],
                             "att_activation": "dice"}, city=True),
        lambda: dctr_variant("dien_agru_unnormalized", 6, "DIEN", {
            "gru_type": "AGRU", "att_weight_normalization": False, "dnn_hidden_units": [16, 8],
            "att_hidden_units": [16], "att_activation": "sigmoid"}),
        lambda: dctr_variant("dien_augru_bn_neg", 7, "DIEN", {
            "gru_type": "AUGRU", "use_bn": True, "use_negsampling": True, "alpha": 0.5,
            "dnn_hidden_units": [16, 8], "att_hidden_units": [16, 8],
            "att_activation": "dice"}, separate=True, dense=True, neg=True),
    ],
    "torch-rechub": [
        lambda: rechub_variant("bst_pre", 11, "BST", {"mlp_params": {"dims": [16, 8]},
                               "nhead": 2, "num_layers": 2, "max_seq_len": 10}, "pre"),
        lambda: rechub_variant("bst_post_dice_dense", 12, "BST", {
            "mlp_params": {"dims": [8], "activation": "dice"}, "nhead": 4,
            "max_seq_len": T + 1}, "post", dense=True),
        lambda: rechub_variant("bst_prelu", 13, "BST", {"mlp_params": {"dims": [8],
                               "activation": "prelu"}, "nhead": 1}, "pre"),
        lambda: rechub_variant("dien_single_field", 14, "DIEN", {"mlp_params": {"dims": [16, 8]},
                               "alpha": 0.2}, "post", dense=True),
        lambda: rechub_variant("din_softmax", 15, "DIN", {
            "mlp_params": {"dims": [16, 8]},
            "attention_mlp_params": {"dims": [8, 4], "use_softmax": True}}, "pre"),
    ],
}

