"""DeepCTR-Torch (0.2.x) DIN and DIEN -> din (docs/CONVERT.md).

Ids are embedding rows (DeepCTR-Torch has no vocabulary); id 0 is the padding of the length-
masked history, so din's history holds only the real behaviours (no padding ids).
"""

from . import Refusal
from .common import (attach_items, batch_norm, check_keys, field_name, kwargs_with_defaults, linear,
                     mark_padding)

DIN_DEFAULTS = {"dnn_use_bn": False, "dnn_hidden_units": [256, 128], "dnn_activation": "relu",
                "att_hidden_size": [64, 16], "att_activation": "Dice",
                "att_weight_normalization": False, "task": "binary"}
DIEN_DEFAULTS = {"gru_type": "GRU", "use_negsampling": False, "use_bn": False,
                 "dnn_hidden_units": [256, 128], "dnn_activation": "relu",
                 "att_hidden_units": [64, 16], "att_activation": "relu",
                 "att_weight_normalization": True, "task": "binary"}
# Training-only or device arguments: they do not change what an eval() model computes.
IGNORED = {"l2_reg_dnn", "l2_reg_embedding", "dnn_dropout", "init_std", "seed", "device", "gpus",
           "alpha"}

FEATURE_KEYS = {
    "sparse": {"type", "name", "vocabulary_size", "embedding_dim", "embedding_name", "group_name",
               "use_hash", "dtype"},
    "varlen": {"type", "name", "vocabulary_size", "embedding_dim", "embedding_name", "group_name",
               "use_hash", "dtype", "maxlen", "combiner", "length_name"},
    "dense": {"type", "name", "dimension", "dtype"},
}


class Feature:
    def __init__(self, f, i):
        where = "features[%d]" % i
        if not isinstance(f, dict) or f.get("type") not in FEATURE_KEYS:
            raise Refusal("%s: type must be one of sparse, varlen, dense" % where)
        check_keys(f, FEATURE_KEYS[f["type"]], where)
        self.kind = f["type"]
        self.name = f.get("name")
        if not isinstance(self.name, str):
            raise Refusal("%s: name is required" % where)
        where = "feature %s" % self.name
        if self.kind == "dense":
            self.dimension = int(f.get("dimension", 1))
            return
        self.vocab = f.get("vocabulary_size")
        if not isinstance(self.vocab, int) or self.vocab < 1:
            raise Refusal("%s: vocabulary_size must be a positive integer" % where)
        dim = f.get("embedding_dim", 4)
        # SparseFeat's "auto": 6 * vocabulary_size ** 0.25, as DeepCTR-Torch computes it.
        self.dim = 6 * int(pow(self.vocab, 0.25)) if dim == "auto" else dim
        if not isinstance(self.dim, int) or self.dim < 1:
            raise Refusal("%s: embedding_dim must be a positive integer or \"auto\"" % where)
        self.table = f.get("embedding_name") or self.name
        self.group = f.get("group_name", "default_group")
        if f.get("use_hash", False):
            raise Refusal("%s: use_hash=True is not supported (hash the ids before scoring and "
                          "declare use_hash=False)" % where)
        self.maxlen = f.get("maxlen")
        self.length_name = f.get("length_name")
        if self.kind == "varlen" and (not isinstance(self.maxlen, int) or self.maxlen < 1):
            raise Refusal("%s: maxlen must be a positive integer" % where)


def group_order(feats):
    """embedding_lookup's order: grouped by group_name (groups in order of first appearance)."""
    groups = []
    for f in feats:
        if f.group not in groups:
            groups.append(f.group)
    return [f for g in groups for f in feats if f.group == g]


def activation(sd, name, prefix, out, units, dst, where):
    """activation_layer(name, units, dice_dim) -> din activation; tensors into dst."""
    n = name.lower() if isinstance(name, str) else None
    if n in ("relu", "sigmoid", "linear"):
        return {"type": n}
    if n == "prelu":
        # nn.PReLU(): one scalar alpha
        dst[out + ".alpha"] = sd.take(prefix + ".weight", (1,))
        return {"type": "prelu"}
    if n == "dice":
        # Dice = BatchNorm1d(units, eps=1e-8) with affine, alpha [units, 1] (dim 3) or [units]
        alpha = sd.take(prefix + ".alpha")
        if alpha.shape not in ((units, 1), (units,)):
            raise Refusal("state_dict %s.alpha has shape %s, expected [%d, 1]"
                          % (prefix, list(alpha.shape), units))
        dst[out + ".alpha"] = alpha.reshape(units)
        bn = {}
        batch_norm(sd, prefix + ".bn", "x", units, 1e-8, bn)
        if "x.weight" not in bn:
            raise Refusal("state_dict has no %s.bn.weight (Dice's batch norm is affine)" % prefix)
        for k in ("running_mean", "running_var", "weight", "bias"):
            dst[out + "." + k] = bn["x." + k]
        return {"type": "dice", "eps": 1e-8, "affine": True}
    raise Refusal("%s: activation %r is not supported (relu, sigmoid, linear, prelu, dice)"
                  % (where, name))


def dnn(sd, prefix, out, inp, units, act, use_bn, dst, where):
    """DeepCTR-Torch DNN -> din layers: linears.i, bn.i (eps 1e-5), activation_layers.i."""
    layers = []
    for i, u in enumerate(units):
        linear(sd, "%s.linears.%d" % (prefix, i), "%s.%d" % (out, i), u, inp, dst)
        layer = {"units": u}
        if use_bn:
            layer["batch_norm"] = batch_norm(sd, "%s.bn.%d" % (prefix, i), "%s.%d.bn" % (out, i),
                                             u, 1e-5, dst)
        layer["activation"] = activation(sd, act, "%s.activation_layers.%d" % (prefix, i),
                                         "%s.%d.act" % (out, i), u, dst, where)
        layers.append(layer)
        inp = u
    return layers, inp


def attention_unit(sd, prefix, units, act, E, dst):
    """AttentionSequencePoolingLayer's LocalActivationUnit (4E -> units -> dense 1)."""
    layers, last = dnn(sd, prefix + ".local_att.dnn", "attention.mlp", 4 * E, units, act, False,
                       dst, "att_activation")
    linear(sd, prefix + ".local_att.dense", "attention.out", 1, last, dst)
    return layers


def unit_list(v, where):
    if not isinstance(v, (list, tuple)) or not v or \
            not all(isinstance(u, int) and u > 0 for u in v):
        raise Refusal("%s must be a non-empty list of positive integers" % where)
    return list(v)


def convert(spec, sd, items_path):
    check_keys(spec, {"library", "model", "features", "history_feature_list", "kwargs",
                      "item_feature", "padding"}, "SPEC")
    model = spec.get("model")
    if model not in ("DIN", "DIEN"):
        raise Refusal("SPEC model %r: DeepCTR-Torch models supported are DIN and DIEN" % model)
    kw = kwargs_with_defaults(spec, DIN_DEFAULTS if model == "DIN" else DIEN_DEFAULTS, IGNORED,
                              "SPEC kwargs")
    if kw["task"] != "binary":
        raise Refusal("SPEC kwargs task %r: only task=\"binary\" (sigmoid output) is supported"
                      % kw["task"])
    if spec.get("padding", "post") != "post":
        raise Refusal("SPEC padding %r: DeepCTR-Torch masks the first seq_length slots, so its "
                      "histories are padded at the end (\"post\")" % spec["padding"])
    feats = [Feature(f, i) for i, f in enumerate(spec.get("features") or [])]
    if not feats:
        raise Refusal("SPEC features: the feature columns are required")
    hist_list = spec.get("history_feature_list")
    if not isinstance(hist_list, list) or not hist_list:
        raise Refusal("SPEC history_feature_list is required (the constructor's second argument)")
    sparse = group_order([f for f in feats if f.kind == "sparse"])
    varlen = [f for f in feats if f.kind == "varlen"]
    dense = [f for f in feats if f.kind == "dense"]
    names = [f.name for f in feats]
    if len(set(names)) != len(names):
        raise Refusal("SPEC features: a feature name appears twice")
    for h in hist_list:
        if h not in [f.name for f in sparse]:
            raise Refusal("SPEC history_feature_list %r is not a sparse feature" % h)
        if "hist_" + h not in [f.name for f in varlen]:
            raise Refusal("SPEC history_feature_list %r has no varlen feature hist_%s" % (h, h))

    query = [f for f in sparse if f.name in hist_list]
    hist_names = ["hist_" + h for h in hist_list]
    keys = group_order([f for f in varlen if f.name in hist_names])
    for q, k in zip(query, keys):
        if k.name != "hist_" + q.name:
            raise Refusal("the query concatenates %s in column order but the history %s: "
                          "DeepCTR-Torch pairs them position by position, din by feature; list the "
                          "hist_ columns in the order of their target columns"
                          % ([f.name for f in query], [f.name for f in keys]))
        if k.dim != q.dim:
            raise Refusal("feature %s has embedding_dim %d, %s has %d"
                          % (k.name, k.dim, q.name, q.dim))
    item = spec.get("item_feature", hist_list[0])
    if query[0].name != item:
        raise Refusal("the item feature %r must come first among %s in the feature columns: din "
                      "reads the other target features from the item's attributes"
                      % (item, [f.name for f in query]))
    with_length = [f for f in varlen if f.length_name]
    if not with_length:
        raise Refusal("no varlen feature has a length_name: DeepCTR-Torch needs the history "
                      "length column (\"please add max length column\")")
    if with_length[0] not in keys:
        raise Refusal("varlen feature %s comes first with a length_name, so DeepCTR-Torch masks "
                      "the history by its length column %r, not the history's"
                      % (with_length[0].name, with_length[0].length_name))
    maxlens = {f.maxlen for f in keys}
    if len(maxlens) != 1:
        raise Refusal("the hist_ features have different maxlen %s" % sorted(maxlens))
    others = [f for f in varlen if f not in keys]
    if model == "DIN" and others:
        raise Refusal("varlen feature %s: DeepCTR-Torch DIN pools it into the tower input, and din "
                      "has no such input" % others[0].name)

    dst = {}
    fields = []

    def table(f):
        name = field_name(f.table, "feature %s" % f.name)
        if name not in [x["name"] for x in fields]:
            w = sd.take("embedding_dict.%s.weight" % f.table, (f.vocab, f.dim))
            dst["fields.%s.weight" % name] = w
            fields.append({"name": name, "rows": f.vocab, "dim": f.dim})
        else:
            prev = next(x for x in fields if x["name"] == name)
            if (prev["rows"], prev["dim"]) != (f.vocab, f.dim):
                raise Refusal("feature %s shares table %s with another size" % (f.name, name))
        return name

    target = [table(f) for f in query]
    behaviour = [table(f) for f in keys]
    context, inputs = [], []
    for f in sparse:
        if f in query:
            inputs.append("target:%d" % query.index(f))
        else:
            context.append(table(f))
            inputs.append("context:%d" % (len(context) - 1))
    # Tables of features the model never reads (DIEN ignores other varlen features).
    for f in others:
        if f.table not in [x["name"] for x in fields]:
            sd.ignore("embedding_dict.%s.weight" % f.table)
    n_dense = sum(f.dimension for f in dense)
    E = sum(f.dim for f in query)

    config = {"format": 1, "architecture": model.lower(), "max_len": maxlens.pop(),
              "fields": fields}
    attach_items(config, dst, items_path, target[1:], fields)
    config.update({"target": target, "behaviour": behaviour, "context": context,
                   "dense": n_dense})

    if model == "DIN":
        norm = bool(kw["att_weight_normalization"])
        config["attention"] = {
            "type": "din", "out_bias": True,
            "layers": attention_unit(sd, "attention", unit_list(kw["att_hidden_size"],
                                     "att_hidden_size"), kw["att_activation"], E, dst),
            "normalization": "softmax" if norm else "none"}
        if norm:
            # Its softmax gives the masked slots -2^32+1, which an all-padding row cannot beat:
            # an empty history pools its maxlen padding rows (id 0) uniformly. Its DIEN zeroes
            # empty rows before the attention, so this is DIN's alone.
            config["attention"].update({"empty": "padding", "padding_row": 0})
        tower_in = inputs + ["attention"]
        tower_prefix, head_key, use_bn = "dnn", "dnn_linear.weight", kw["dnn_use_bn"]
    else:
        gru_type = kw["gru_type"]
        if gru_type not in ("GRU", "AIGRU", "AGRU", "AUGRU"):
            raise Refusal("SPEC kwargs gru_type %r: expected GRU, AIGRU, AGRU or AUGRU" % gru_type)
        gru(sd, "interest_extractor.gru", "_l0", "sequence.gru", E, E, dst)
        sd.ignore_prefix("interest_extractor.auxiliary_net.")  # training-only auxiliary loss
        config["sequence"] = {"type": "gru", "hidden": E, "convention": "pytorch"}
        config["attention"] = {
            "type": "din", "out_bias": True,
            "layers": attention_unit(sd, "interest_evolution.attention",
                                     unit_list(kw["att_hidden_units"], "att_hidden_units"),
                                     kw["att_activation"], E, dst),
            "normalization": "softmax" if kw["att_weight_normalization"] else "none"}
        evo = "interest_evolution.interest_evolution"
        if gru_type in ("GRU", "AIGRU"):
            gru(sd, evo, "_l0", "evolution.gru", E, E, dst)
            etype = "gru_attention_pooling" if gru_type == "GRU" else "aigru"
            config["evolution"] = {"type": etype, "convention": "pytorch"}
        else:
            gru(sd, evo + ".rnn", "", "evolution.gru", E, E, dst)
            # Both cells keep torch's two GRU biases (b_in outside, b_hn inside the reset
            # product), as din's pytorch convention does. AGRUCell trains them apart; AUGRUCell
            # registers one vector under both names, so a state_dict it wrote holds them equal.
            if gru_type == "AUGRU" and \
                    (dst["evolution.gru.bias_ih"] != dst["evolution.gru.bias_hh"]).any():
                raise Refusal("state_dict %s.rnn.bias_ih differs from bias_hh: DeepCTR-Torch's "
                              "AUGRUCell shares one bias, so this state_dict was not written by it"
                              % evo)
            config["evolution"] = {"type": gru_type.lower(), "convention": "pytorch"}
            if gru_type == "AUGRU":
                config["evolution"]["form"] = "paper"
        tower_in = ["interest"] + inputs
        tower_prefix, head_key, use_bn = "dnn", "linear.weight", kw["use_bn"]
    if n_dense:
        tower_in.append("dense")
    width = sum(f.dim for f in sparse) + E + n_dense
    layers, last = dnn(sd, tower_prefix, "tower", width,
                       unit_list(kw["dnn_hidden_units"], "dnn_hidden_units"),
                       kw["dnn_activation"], bool(use_bn), dst, "dnn_activation")
    dst["head.weight"] = sd.take(head_key, (1, last))
    dst["head.bias"] = sd.take("out.bias", (1,))
    config["tower"] = {"inputs": tower_in, "layers": layers,
                       "head": {"type": "sigmoid", "bias": True}}
    mark_padding(config, 0)  # its histories are post-padded with id 0, masked by seq_length
    sd.finish()
    return config, dst


def gru(sd, prefix, suffix, out, inp, hidden, dst):
    """torch GRU weights (rows r; z; n) as stored."""
    for name, cols in (("weight_ih", inp), ("weight_hh", hidden)):
        dst["%s.%s" % (out, name)] = sd.take("%s.%s%s" % (prefix, name, suffix), (3 * hidden, cols))
    for name in ("bias_ih", "bias_hh"):
        dst["%s.%s" % (out, name)] = sd.take("%s.%s%s" % (prefix, name, suffix), (3 * hidden,))


def sql_inputs(spec):
    """Which columns of the library's input feed din_score: the item, its history (the first
    `length` slots), the context fields and the dense values, in din's order."""
    feats = [Feature(f, i) for i, f in enumerate(spec.get("features") or [])]
    hist_list = spec["history_feature_list"]
    item = spec.get("item_feature", hist_list[0])
    sparse = group_order([f for f in feats if f.kind == "sparse"])
    lengths = [f.length_name for f in feats if f.kind == "varlen" and f.length_name]
    return {"item": item, "history": "hist_" + item, "length": lengths[0] if lengths else None,
            "padding": "post",
            "context": [f.name for f in sparse if f.name not in hist_list],
            "dense": [f.name for f in feats if f.kind == "dense"]}
