"""torch-rechub (>= 0.8, 2026) DIN, BST and single-field DIEN -> din (docs/CONVERT.md)."""

import math

import numpy as np

from . import Refusal
from .common import (attach_items, batch_norm, check_keys, field_name, kwargs_with_defaults, linear,
                     mark_padding)

FEATURE_KEYS = {
    "sparse": {"type", "name", "vocab_size", "embed_dim", "shared_with", "padding_idx",
               "initializer"},
    "sequence": {"type", "name", "vocab_size", "embed_dim", "pooling", "shared_with",
                 "padding_idx", "initializer"},
    "dense": {"type", "name", "embed_dim"},
}
BST_DEFAULTS = {"mlp_params": {}, "nhead": 8, "num_layers": 1, "max_seq_len": 51}
DIEN_DEFAULTS = {"mlp_params": {}}
DIN_DEFAULTS = {"mlp_params": {}, "attention_mlp_params": {}}
ATTENTION_MLP_KEYS = {"dims", "activation", "dropout", "use_softmax"}
IGNORED = {"dropout", "alpha"}  # inactive in eval(), or training-only (DIEN's aux-loss weight)
MLP_KEYS = {"dims", "activation", "dropout", "output_layer"}


class Feature:
    def __init__(self, f, where):
        if not isinstance(f, dict) or f.get("type") not in FEATURE_KEYS:
            raise Refusal("%s: type must be one of sparse, sequence, dense" % where)
        check_keys(f, FEATURE_KEYS[f["type"]], where)
        self.kind = f["type"]
        self.name = f.get("name")
        if not isinstance(self.name, str):
            raise Refusal("%s: name is required" % where)
        where = "feature %s" % self.name
        if self.kind == "dense":
            self.dim = int(f.get("embed_dim", 1))
            return
        self.vocab = f.get("vocab_size")
        if not isinstance(self.vocab, int) or self.vocab < 1:
            raise Refusal("%s: vocab_size must be a positive integer" % where)
        dim = f.get("embed_dim")
        # get_auto_embedding_dim: floor(6 * vocab_size ** 0.25)
        self.dim = int(math.floor(6 * pow(self.vocab, 0.25))) if dim is None else dim
        if not isinstance(self.dim, int) or self.dim < 1:
            raise Refusal("%s: embed_dim must be a positive integer" % where)
        self.shared_with = f.get("shared_with")
        self.padding_idx = f.get("padding_idx")
        self.pooling = f.get("pooling", "mean")
        self.table = self.shared_with or self.name


def features(spec, key):
    return [Feature(f, "%s[%d]" % (key, i)) for i, f in enumerate(spec.get(key) or [])]


def mlp(sd, kw, inp, dst):
    """torch-rechub MLP: [Linear, BatchNorm1d, act, Dropout] per dim, then Linear(-> 1)."""
    params = kw["mlp_params"]
    if not isinstance(params, dict):
        raise Refusal("SPEC kwargs mlp_params must be an object")
    check_keys(params, MLP_KEYS, "SPEC kwargs mlp_params")
    if not params.get("output_layer", True):
        raise Refusal("SPEC kwargs mlp_params output_layer=False: the model then has no logit")
    dims = params.get("dims") or []
    act = params.get("activation", kw.get("_mlp_activation", "relu"))
    layers = []
    for i, u in enumerate(dims):
        k = 4 * i
        linear(sd, "mlp.mlp.%d" % k, "tower.%d" % i, u, inp, dst)
        bn = batch_norm(sd, "mlp.mlp.%d" % (k + 1), "tower.%d.bn" % i, u, 1e-5, dst)
        layers.append({"units": u, "batch_norm": bn,
                       "activation": activation(sd, act, "mlp.mlp.%d" % (k + 2),
                                                "tower.%d.act" % i, dst)})
        inp = u
    k = 4 * len(dims)
    dst["head.weight"] = sd.take("mlp.mlp.%d.weight" % k, (1, inp))
    dst["head.bias"] = sd.take("mlp.mlp.%d.bias" % k, (1,))
    return layers


def activation(sd, name, prefix, out, dst):
    n = name.lower() if isinstance(name, str) else None
    if n in ("relu", "sigmoid"):
        return {"type": n}
    if n == "leakyrelu":
        return {"type": "leaky_relu", "slope": 0.01}
    if n == "prelu":
        dst[out + ".alpha"] = sd.take(prefix + ".weight", (1,))
        return {"type": "prelu"}
    if n == "dice":
        # torch-rechub's Dice: per-row statistics across the units, eps 1e-3, scalar alpha
        dst[out + ".alpha"] = sd.take(prefix + ".alpha", (1,))
        return {"type": "dice", "stats": "sample", "eps": 1e-3}
    raise Refusal("SPEC mlp activation %r is not supported (relu, sigmoid, leakyrelu, prelu, dice)"
                  % name)


class Tables:
    """embedding.embed_dict.<root>.weight -> din fields, each table once."""

    def __init__(self, sd, roots, dst):
        self.sd, self.dst, self.fields = sd, dst, []
        self.roots = {f.name: f for f in roots if f.kind != "dense" and f.shared_with is None}

    def __call__(self, f):
        root = self.roots.get(f.table)
        if root is None:
            raise Refusal("feature %s: shared_with %r names no feature that owns a table"
                          % (f.name, f.shared_with))
        if root.dim != f.dim:
            raise Refusal("feature %s has embed_dim %d, its table %s has %d"
                          % (f.name, f.dim, root.name, root.dim))
        name = field_name(root.name, "feature %s" % f.name)
        if name not in [x["name"] for x in self.fields]:
            self.dst["fields.%s.weight" % name] = self.sd.take(
                "embedding.embed_dict.%s.weight" % root.name, (root.vocab, root.dim))
            self.fields.append({"name": name, "rows": root.vocab, "dim": root.dim})
        return name


def common(spec, sd, dst, items_path, allowed_extra=()):
    """Features, tables, target/behaviour/context lists shared by BST and DIEN."""
    check_keys(spec, {"library", "model", "features", "history_features", "target_features",
                      "kwargs", "max_len", "padding"} | set(allowed_extra), "SPEC")
    feats = features(spec, "features")
    hist = features(spec, "history_features")
    targ = features(spec, "target_features")
    extra = [Feature(f, "%s[%d]" % (k, i)) for k in allowed_extra
             for i, f in enumerate(spec.get(k) or [])]
    if not hist or not targ:
        raise Refusal("SPEC history_features and target_features are required")
    for f in hist:
        if f.kind != "sequence" or f.pooling != "concat":
            raise Refusal("history feature %s must be a SequenceFeature with pooling=\"concat\""
                          % f.name)
    for f in targ:
        if f.kind != "sparse":
            raise Refusal("target feature %s must be a SparseFeature" % f.name)
    for f in feats:
        if f.kind == "sequence":
            raise Refusal("feature %s: a pooled sequence in `features` has no din input" % f.name)
    if len(hist) != len(targ):
        raise Refusal("%d history features but %d target features: din pairs them one to one"
                      % (len(hist), len(targ)))
    for h, t in zip(hist, targ):
        if h.dim != t.dim:
            raise Refusal("history feature %s (dim %d) and target feature %s (dim %d) differ"
                          % (h.name, h.dim, t.name, t.dim))
        if h.shared_with is not None and h.shared_with in [x.name for x in targ] \
                and h.shared_with != t.name:
            raise Refusal("history feature %s shares %s's table but stands at %s's position"
                          % (h.name, h.shared_with, t.name))
    max_len = spec.get("max_len")
    if not isinstance(max_len, int) or max_len < 1:
        raise Refusal("SPEC max_len (the padded history width given to the model) is required")
    padding = spec.get("padding", "pre")
    if padding not in ("pre", "post"):
        raise Refusal("SPEC padding %r: expected \"pre\" or \"post\"" % padding)
    tables = Tables(sd, feats + hist + extra + targ, dst)
    target = [tables(f) for f in targ]
    behaviour = [tables(f) for f in hist]
    context = [tables(f) for f in feats if f.kind == "sparse"]
    n_dense = sum(f.dim for f in feats if f.kind == "dense")
    # din reads the features in `features` as context then dense; the library concatenates
    # sparse embeddings first, then dense values, whatever their order (EmbeddingLayer).
    return feats, hist, targ, tables, target, behaviour, context, n_dense, max_len, padding


def tower_inputs(targ, context, n_dense):
    inputs = ["interest"] + ["target:%d" % k for k in range(len(targ))]
    inputs += ["context:%d" % j for j in range(len(context))]
    return inputs + (["dense"] if n_dense else [])


def convert(spec, sd, items_path):
    model = spec.get("model")
    builders = {"BST": bst, "DIEN": dien, "DIN": din}
    if model not in builders:
        raise Refusal("SPEC model %r: torch-rechub models supported are DIN, BST and DIEN" % model)
    config, dst = builders[model](spec, sd, items_path)
    # pad_sequences fills every history with id 0 (front or end), whatever padding_idx says:
    # BST masks it, DIN scores it, DIEN's padding_idx=0 makes it the masked row.
    mark_padding(config, 0)
    return config, dst


def din(spec, sd, items_path):
    """One ActivationUnit per history field, over all max_len padded slots (no mask)."""
    dst = {}
    kw = kwargs_with_defaults(spec, DIN_DEFAULTS, IGNORED, "SPEC kwargs")
    if "activation" in (kw["mlp_params"] or {}):
        raise Refusal("SPEC kwargs mlp_params activation: torch-rechub DIN fixes it to \"dice\"")
    kw["_mlp_activation"] = "dice"
    att = kw["attention_mlp_params"]
    if not isinstance(att, dict):
        raise Refusal("SPEC kwargs attention_mlp_params must be an object")
    check_keys(att, ATTENTION_MLP_KEYS, "SPEC kwargs attention_mlp_params")
    (feats, hist, targ, tables, target, behaviour, context, n_dense, max_len,
     padding) = common(spec, sd, dst, items_path)
    if n_dense:
        raise Refusal("torch-rechub DIN with dense features: its tower width counts a dense "
                      "feature's embed_dim but its input leaves dense values out, so the "
                      "library cannot run such a model")
    dims = att.get("dims") or [36]
    if not all(isinstance(u, int) and u > 0 for u in dims):
        raise Refusal("SPEC kwargs attention_mlp_params dims must be positive integers")
    # Every unit has the same layer list; only its first layer's width differs.
    layers = None
    for i, f in enumerate(hist):
        src, inp = "attention_layers.%d.attention.mlp" % i, 4 * f.dim
        layers = []
        for j, u in enumerate(dims):
            out = "attention.units.%d.mlp.%d" % (i, j)
            linear(sd, "%s.%d" % (src, 4 * j), out, u, inp, dst)
            bn = batch_norm(sd, "%s.%d" % (src, 4 * j + 1), out + ".bn", u, 1e-5, dst)
            layers.append({"units": u, "batch_norm": bn,
                           "activation": activation(sd, att.get("activation", "dice"),
                                                    "%s.%d" % (src, 4 * j + 2), out + ".act",
                                                    dst)})
            inp = u
        linear(sd, "%s.%d" % (src, 4 * len(dims)), "attention.units.%d.out" % i, 1, inp, dst)
    width = sum(f.dim for f in hist) + sum(f.dim for f in targ) + sum(f.dim for f in feats)
    tower = mlp(sd, kw, width, dst)
    config = {"format": 1, "architecture": "din", "max_len": max_len, "fields": tables.fields}
    attach_items(config, dst, items_path, target[1:], tables.fields)
    config.update({
        "target": target, "behaviour": behaviour, "context": context, "dense": n_dense,
        # No mask: the padded slots (id 0, whatever padding_idx says) are scored and pooled
        # like behaviours; the pooled sum does not depend on where they stand, so `padding`
        # changes nothing here.
        "attention": {"type": "din", "units": [[k] for k in range(len(hist))],
                      "layers": layers, "out_bias": True,
                      "normalization": "softmax" if att.get("use_softmax") else "none",
                      "pool": "all_slots", "padding_row": 0},
        "tower": {"inputs": ["attention"] + tower_inputs(targ, context, n_dense)[1:],
                  "layers": tower, "head": {"type": "sigmoid", "bias": True}}})
    sd.finish()
    return config, dst


def bst(spec, sd, items_path):
    dst = {}
    kw = kwargs_with_defaults(spec, BST_DEFAULTS, IGNORED, "SPEC kwargs")
    (feats, hist, targ, tables, target, behaviour, context, n_dense, max_len,
     padding) = common(spec, sd, dst, items_path)
    D = sum(f.dim for f in hist)
    heads, blocks, max_seq_len = kw["nhead"], kw["num_layers"], kw["max_seq_len"]
    if not isinstance(heads, int) or heads < 1 or D % heads:
        raise Refusal("SPEC kwargs nhead %r must divide the item width %d" % (heads, D))
    if not isinstance(blocks, int) or blocks < 1:
        raise Refusal("SPEC kwargs num_layers must be a positive integer")
    if max_len + 1 > max_seq_len:
        raise Refusal("SPEC max_len %d + the target exceeds max_seq_len %d (torch-rechub raises "
                      "on such input)" % (max_len, max_seq_len))
    # Positions are indexed by slot: the target is at slot max_len, so only the first
    # max_len + 1 rows are ever read.
    pos = sd.take("pos_embedding.weight", (max_seq_len, D))
    dst["transformer.positions.0.weight"] = pos[:max_len + 1]
    ffn = None
    for b in range(blocks):
        src, out = "transformer_layers.layers.%d" % b, "transformer.blocks.%d" % b
        dst[out + ".attention.in_proj_weight"] = sd.take(src + ".self_attn.in_proj_weight",
                                                         (3 * D, D))
        dst[out + ".attention.in_proj_bias"] = sd.take(src + ".self_attn.in_proj_bias", (3 * D,))
        linear(sd, src + ".self_attn.out_proj", out + ".attention.out_proj", D, D, dst)
        w1 = sd.take(src + ".linear1.weight")
        if w1.ndim != 2 or w1.shape[1] != D or (ffn is not None and w1.shape[0] != ffn):
            raise Refusal("state_dict %s.linear1.weight has shape %s" % (src, list(w1.shape)))
        ffn = w1.shape[0]
        dst[out + ".ffn.0.weight"] = w1
        dst[out + ".ffn.0.bias"] = sd.take(src + ".linear1.bias", (ffn,))
        linear(sd, src + ".linear2", out + ".ffn.1", D, ffn, dst)
        for n in ("norm1", "norm2"):
            dst["%s.%s.weight" % (out, n)] = sd.take("%s.%s.weight" % (src, n), (D,))
            dst["%s.%s.bias" % (out, n)] = sd.take("%s.%s.bias" % (src, n), (D,))
    width = D + sum(f.dim for f in targ) + sum(f.dim for f in feats)
    layers = mlp(sd, kw, width, dst)
    config = {"format": 1, "architecture": "bst", "max_len": max_len, "fields": tables.fields}
    attach_items(config, dst, items_path, target[1:], tables.fields)
    config.update({
        "target": target, "behaviour": behaviour, "context": context, "dense": n_dense,
        "transformer": {
            "target": True, "layout": "pytorch", "heads": heads, "blocks": blocks,
            "norm": "post", "eps": 1e-5,
            "ffn": {"units": ffn, "activation": {"type": "leaky_relu", "slope": 0.01}},
            "positions": [{"type": "index", "combine": "add",
                           "align": "end" if padding == "pre" else "start", "width": max_len}],
            "readout": "target"},
        "tower": {"inputs": tower_inputs(targ, context, n_dense), "layers": layers,
                  "head": {"type": "sigmoid", "bias": True}}})
    sd.finish()
    return config, dst


def dien(spec, sd, items_path):
    dst = {}
    kw = kwargs_with_defaults(spec, DIEN_DEFAULTS, IGNORED, "SPEC kwargs")
    if "activation" in (kw["mlp_params"] or {}):
        raise Refusal("SPEC kwargs mlp_params activation: torch-rechub DIEN fixes it to \"dice\"")
    kw["_mlp_activation"] = "dice"
    (feats, hist, targ, tables, target, behaviour, context, n_dense, max_len,
     padding) = common(spec, sd, dst, items_path, ("neg_history_features",))
    if len(hist) != 1:
        raise Refusal("torch-rechub DIEN runs one GRU and AUGRU per history field (%d here) and "
                      "concatenates their interests; din evolves one interest over the "
                      "concatenated behaviour, so only a single history field is expressible"
                      % len(hist))
    if hist[0].padding_idx is None:
        raise Refusal("history feature %s has padding_idx=None: torch-rechub DIEN then masks "
                      "nothing and runs its GRUs over the padded slots" % hist[0].name)
    if padding != "post":
        raise Refusal("SPEC padding %r: torch-rechub DIEN packs the first `length` slots, so only "
                      "histories padded at the end (\"post\") are read as intended" % padding)
    D = hist[0].dim
    for name in ("weight_ih", "weight_hh"):
        dst["sequence.gru." + name] = sd.take("interest_extractor_layers.0.%s_l0" % name,
                                              (3 * D, D))
    for name in ("bias_ih", "bias_hh"):
        dst["sequence.gru." + name] = sd.take("interest_extractor_layers.0.%s_l0" % name, (3 * D,))
    evo = "interest_evolving_layers.0"
    dst["attention.bilinear.weight"] = sd.take(evo + ".Wa", (D, D))
    cell = {k: sd.take("%s.augru_cell.%s" % (evo, k), (D, D) if k[0] in "WU" else (1, D))
            for k in ("Wu", "Uu", "bu", "Wr", "Ur", "br", "Wh", "Uh", "bh")}
    # x·W (W [in, out]) in torch's [r; z; n] rows; h_hat's bias sits outside r⊙(U h), so it is
    # the input-side n bias and the hidden-side n bias is 0.
    dst["evolution.gru.weight_ih"] = np.concatenate([cell["Wr"].T, cell["Wu"].T, cell["Wh"].T])
    dst["evolution.gru.weight_hh"] = np.concatenate([cell["Ur"].T, cell["Uu"].T, cell["Uh"].T])
    dst["evolution.gru.bias_ih"] = np.concatenate([cell["br"][0], cell["bu"][0], cell["bh"][0]])
    dst["evolution.gru.bias_hh"] = np.zeros(3 * D, dtype=np.float32)
    width = D + sum(f.dim for f in targ) + sum(f.dim for f in feats)
    layers = mlp(sd, kw, width, dst)
    config = {"format": 1, "architecture": "dien", "max_len": max_len, "fields": tables.fields}
    attach_items(config, dst, items_path, target[1:], tables.fields)
    config.update({
        "target": target, "behaviour": behaviour, "context": context, "dense": n_dense,
        "sequence": {"type": "gru", "hidden": D, "convention": "pytorch"},
        "attention": {"type": "bilinear", "normalization": "softmax"},
        "evolution": {"type": "augru", "form": "paper", "convention": "pytorch"},
        "tower": {"inputs": tower_inputs(targ, context, n_dense), "layers": layers,
                  "head": {"type": "sigmoid", "bias": True}}})
    sd.finish()
    return config, dst


def sql_inputs(spec):
    """As deepctr_torch.sql_inputs; a history slot is padding when its item id is 0."""
    feats = features(spec, "features")
    return {"item": spec["target_features"][0]["name"],
            "history": spec["history_features"][0]["name"], "length": None,
            "padding": spec.get("padding", "pre"),
            "context": [f.name for f in feats if f.kind == "sparse"],
            "dense": [f.name for f in feats if f.kind == "dense"]}
