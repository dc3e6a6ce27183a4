"""The model din-train trains: a docs/FORMAT.md config from the encoder's tables, din-train's
defaults (its flags) and a config file's keys in their place (docs/TRAINING.md "The model"),
and the torch module of each architecture.
"""

import dinref

from .bst import BstModel
from .dsin import DsinModel

SUPPORTED = ("base", "din", "dien", "dsin", "bst")
MODELS = {"dsin": DsinModel, "bst": BstModel}

ACTIVATIONS = {
    # The DIN paper's Dice: batch statistics in training, running averages at inference
    # (docs/FORMAT.md "Layers and activations", stats "running"), no affine step.
    "dice": {"type": "dice", "eps": 1e-8, "stats": "running", "affine": False},
    "prelu": {"type": "prelu"},
    "relu": {"type": "relu"},
    "sigmoid": {"type": "sigmoid"},
}

# Keys the rows decide: a config file may repeat them, not change them.
DATA_KEYS = ("item", "target", "behaviour", "context", "dense")
# What a config file's field may say: rows always come from the vocabularies.
FIELD_KEYS = ("name", "rows", "dim", "oov", "padding_id")


def layers(units, act):
    return [{"units": u, "activation": dict(ACTIVATIONS[act])} for u in units]


def _fields(enc, dim, given):
    """The fields of the encoder's tables, dim wide unless the config file's fields say."""
    out = [{"name": name, "rows": len(v), "dim": dim, "oov": "zero"} for name, v in enc.fields()]
    by_name = {f["name"]: f for f in out}
    for f in given:
        name = f.get("name")
        if name not in by_name:
            raise ValueError("the config file has field %s, which the rows do not give (they "
                             "give %s)" % (name, ", ".join(by_name)))
        unknown = sorted(set(f) - set(FIELD_KEYS))
        if unknown:
            raise ValueError("the config file's field %s has key %s, which din-train does not "
                             "take (it takes %s)" % (name, unknown[0], ", ".join(FIELD_KEYS)))
        if f.get("oov", "zero") != "zero":
            raise ValueError("the config file's field %s has oov %s: din-train embeds an id "
                             "unseen in training as zero, so oov must be \"zero\""
                             % (name, f["oov"]))
        by_name[name].update({k: v for k, v in f.items() if k != "rows"})
    for f in out:
        if f["rows"] == 0:
            raise ValueError("field %s has no id in the training rows" % f["name"])
    return out


def make_config(arch, enc, dim=8, attention=(80, 40), attention_act="dice", tower=(200, 80),
                tower_act="prelu", heads=2, file=None):
    """A docs/FORMAT.md config for the encoder's tables. Unknown ids embed as zero. file: a
    config read from --config; its keys replace din-train's (its fields give dims)."""
    file = dict(file or {})
    if file.get("architecture", arch) != arch:
        raise ValueError("the config file has architecture %s, not %s"
                         % (file["architecture"], arch))
    if arch not in SUPPORTED:
        raise ValueError("unknown architecture %s (supported: %s)" % (arch, ", ".join(SUPPORTED)))
    fields = _fields(enc, dim, file.pop("fields", []))
    dims = {f["name"]: f["dim"] for f in fields}
    slots = ["item"] + enc.attr_names
    E = sum(dims[s] for s in slots)
    cfg = {
        "format": 1,
        "architecture": arch,
        "max_len": enc.max_len,
        "fields": fields,
        "item": {"attributes": enc.attr_names},
        "target": slots,
        "behaviour": slots,
        "context": enc.context_names,
        "dense": enc.dense,
    }
    for key in DATA_KEYS:
        if key in file and file[key] != cfg[key]:
            raise ValueError("the config file has %s %s, but the rows give %s"
                             % (key, file[key], cfg[key]))
    if file.get("max_len", enc.max_len) != enc.max_len:
        raise ValueError("the config file has max_len %s, but the rows were kept to %d"
                         % (file["max_len"], enc.max_len))
    inputs = (["context"] if enc.context_names else []) + ["target"]
    unit = {"type": "din", "layers": layers(attention, attention_act)}
    if arch == "base":
        # Embedding&MLP: sum pooling of the behaviours (DIN paper section 4.2).
        inputs.append("history_sum")
    elif arch == "din":
        cfg["attention"] = dict(unit, normalization="none")
        inputs.append("attention")
    elif arch == "dien":
        # H = E: the attention unit reads [q, h_t, q-h_t, q*h_t] without a projection.
        cfg["sequence"] = {"type": "gru", "hidden": E, "convention": "pytorch"}
        cfg["attention"] = dict(unit, normalization="softmax")
        cfg["evolution"] = {"type": "augru", "form": "paper", "convention": "pytorch"}
        inputs.append("interest")
    elif arch == "dsin":
        # The DSIN paper's extractor (bias encoding, layer norm, mean over the session's
        # behaviours), a Bi-LSTM over the valid sessions averaged (H = E, so both units are
        # DIN's), softmax units.
        cfg["sessions"] = {"count": 5, "length": 10, "gap": 1800, "min_length": 1}
        cfg["extractor"] = {"heads": heads, "encoding": "bias", "blinding": False,
                            "layer_norm": {"eps": 1e-5}, "pooling": "mean_valid"}
        cfg["interacting"] = {"type": "bilstm", "merge": "ave",
                              "recurrent_activation": "sigmoid", "steps": "valid"}
        cfg["session_attention"] = dict(unit, normalization="softmax")
        cfg["interacting_attention"] = dict(unit, normalization="softmax")
        inputs += ["session_interest", "session_interacting"]
    else:
        # The BST paper's block (post-norm, leaky ReLU feed-forward 4E wide) over the
        # behaviours and the candidate, positions from the end of the history, the
        # candidate's output row read out.
        cfg["transformer"] = {
            "target": True, "heads": heads, "blocks": 1,
            "ffn": {"units": 4 * E, "activation": {"type": "leaky_relu"}},
            "positions": [{"type": "index", "combine": "add", "align": "end"}],
            "readout": "target"}
        inputs.append("interest")
    if enc.dense:
        inputs.append("dense")
    cfg["tower"] = {"inputs": inputs, "layers": layers(tower, tower_act),
                    "head": {"type": "sigmoid", "bias": True}}
    cfg.update(file)
    return cfg


def reads_time(arch, file):
    """Why the model reads history_time (and at), or None: DSIN's sessions, BST's time-gap
    positions (which only a config file asks for)."""
    if arch == "dsin":
        return "architecture dsin divides histories into sessions by time"
    positions = (file.get("transformer") or {}).get("positions") or []
    if arch == "bst" and any(p.get("type") == "time_gap" for p in positions):
        return "this bst model embeds the time between each behaviour and at"
    return None


def build_model(cfg, enc):
    cls = MODELS.get(cfg["architecture"], dinref.DinRef)
    return cls(cfg, items=enc.items_tensors(), vocab=enc.vocab_tensors())
