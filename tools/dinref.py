"""dinref - an independent PyTorch/numpy reference of din's model format v1 (docs/FORMAT.md).

Written from FORMAT.md alone, so that the C implementation is checked against a second reading
of the contract rather than against itself. Only numpy and torch are needed; CI never imports
this file (it reads the committed fixtures).

    write_model(path, config, tensors)      the safetensors container, by hand
    read_model(path) -> (config, tensors)
    DinRef(config, items=(ids, attrs), vocab={field: raw_ids})   trainable torch module
    Scorer(config, tensors)                 float64 scoring from raw ids, as din's SQL sees them
"""

import json
import math
import struct

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------
# Container
# ---------------------------------------------------------------------------------------------

_DTYPES = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}


def _dtype_name(arr):
    if arr.dtype.kind == "f":
        return "F32"
    if arr.dtype.kind in "iu":
        return "I64"
    raise ValueError("unsupported dtype %s" % arr.dtype)


def encode_model(config, tensors, metadata=None):
    """The bytes of a model file; tensors are laid out in the dict's insertion order."""
    header = {"__metadata__": {"din.config": json.dumps(config)}}
    if metadata:
        header["__metadata__"].update(metadata)
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        dt = _dtype_name(arr)
        data = np.ascontiguousarray(arr, dtype=_DTYPES[dt]).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # safetensors pads the header with spaces so the data starts 8-byte aligned.
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write_model(path, config, tensors, metadata=None):
    with open(path, "wb") as f:
        f.write(encode_model(config, tensors, metadata))


def decode_model(buf):
    """(config, tensors) from the bytes of a model file; checks the container rules."""
    if len(buf) < 8:
        raise ValueError("file shorter than its header length")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > 100 * 1024 * 1024 or 8 + n > len(buf):
        raise ValueError("header length %d past the end of the file" % n)
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or "din.config" not in meta:
        raise ValueError("__metadata__ lacks din.config")
    config = json.loads(meta["din.config"])
    data = buf[8 + n:]
    spans = []
    tensors = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if info["dtype"] not in _DTYPES:
            raise ValueError("tensor %s has unknown dtype %s" % (name, info["dtype"]))
        dt = _DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if end - begin != int(np.prod(shape, dtype=np.int64)) * dt.itemsize or begin > end:
            raise ValueError("tensor %s: offsets do not match its shape" % name)
        if end > len(data):
            raise ValueError("tensor %s ends past the end of the file" % name)
        spans.append((begin, end))
        tensors[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(shape).copy()
        if dt.kind == "f" and not np.all(np.isfinite(tensors[name])):
            raise ValueError("tensor %s holds a non-finite value" % name)
    pos = 0
    for begin, end in spans:
        if begin != pos:
            raise ValueError("gap or overlap in the data section at byte %d" % begin)
        pos = end
    if pos != len(data):
        raise ValueError("data section does not end at the last tensor")
    return config, tensors


def read_model(path):
    with open(path, "rb") as f:
        return decode_model(f.read())


# ---------------------------------------------------------------------------------------------
# Config helpers shared by DinRef and Scorer
# ---------------------------------------------------------------------------------------------

def _fields(config):
    return {f["name"]: f for f in config["fields"]}


def _layer_specs(layers):
    out = []
    for spec in layers:
        act = dict(spec.get("activation", {"type": "linear"}))
        out.append({"units": spec["units"], "bias": spec.get("bias", True),
                    "batch_norm": spec.get("batch_norm"), "activation": act})
    return out


def _act_defaults(act):
    t = act["type"]
    a = dict(act)
    if t == "leaky_relu":
        a.setdefault("slope", 0.01)
    elif t == "gelu":
        a.setdefault("approximate", "none")
    elif t == "hard_sigmoid":
        a.setdefault("slope", 0.2)
        a.setdefault("offset", 0.5)
    elif t == "dice":
        a.setdefault("eps", 1e-8)
        a.setdefault("stats", "running")
        a.setdefault("affine", False)
        a.setdefault("beta", False)
    elif t not in ("linear", "relu", "sigmoid", "tanh", "prelu"):
        raise ValueError("unknown activation %s" % t)
    return a


def bst_defaults(cfg):
    """The transformer block of a bst config with every default filled in (FORMAT.md
    "architecture bst")."""
    tr = dict(cfg["transformer"])
    tr.setdefault("target", True)
    tr.setdefault("layout", "pytorch")
    tr.setdefault("blocks", 1)
    tr.setdefault("norm", "post")
    tr.setdefault("eps", 1e-5)
    tr.setdefault("shared_norm", False)
    tr.setdefault("positions", [])
    tr.setdefault("block_positions", None)
    tr.setdefault("readout", "target" if tr["target"] else "mean")
    if tr["readout"] == "mean_all":
        tr.setdefault("padding_row", 0)
    ffn = dict(tr["ffn"])
    ffn.setdefault("bias", True)
    ffn["activation"] = _act_defaults(ffn.get("activation", {"type": "relu"}))
    tr["ffn"] = ffn
    pos = []
    for p in tr["positions"]:
        p = dict(p)
        p.setdefault("combine", "add")
        p.setdefault("scale", 1.0)
        if p["type"] == "index":
            p.setdefault("align", "start")
            p.setdefault("width", cfg["max_len"])
        pos.append(p)
    tr["positions"] = pos
    if tr["block_positions"] is not None:
        bp = dict(tr["block_positions"])
        bp.setdefault("align", "start")
        bp.setdefault("width", cfg["max_len"])
        tr["block_positions"] = bp
    return tr


def bst_width(cfg, E):
    """D, the width of a bst sequence row: E plus the concatenated positions."""
    return E + sum(p["dim"] for p in bst_defaults(cfg)["positions"] if p["combine"] == "concat")


class _Layout:
    """Widths and slices the config implies (E, slot offsets, tower input width)."""

    def __init__(self, config):
        self.config = config
        self.fields = _fields(config)
        self.arch = config.get("architecture", "din")
        self.max_len = config["max_len"]
        self.attributes = config.get("item", {}).get("attributes", [])
        self.target = config["target"]
        self.behaviour = config["behaviour"]
        self.context = config.get("context", [])
        self.dense = config.get("dense", 0)
        self.tdims = [self.fields[n]["dim"] for n in self.target]
        self.bdims = [self.fields[n]["dim"] for n in self.behaviour]
        self.cdims = [self.fields[n]["dim"] for n in self.context]
        if self.tdims != self.bdims or len(self.target) != 1 + len(self.attributes):
            raise ValueError("target and behaviour disagree")
        self.E = sum(self.tdims)
        self.att = config.get("attention") if self.arch in ("din", "dien") else None
        if self.arch == "dien":
            self._dien_layout(config)
        elif self.att is not None:
            self.att_layers = _layer_specs(self.att["layers"])
            self.out_bias = self.att.get("out_bias", True)
            self.normalization = self.att.get("normalization", "none")
            self.scale = self.att.get("scale", False)
            self.output = self.att.get("output")
            self.U = self.E
            if self.output and "units" in self.output:
                self.U = self.output["units"]
        tower = config["tower"]
        self.inputs = tower["inputs"]
        self.input_bn = tower.get("input_batch_norm")
        self.tower_layers = _layer_specs(tower.get("layers", []))
        head = dict(tower["head"])
        head.setdefault("type", "sigmoid")
        head.setdefault("bias", True)
        head.setdefault("item_bias", False)
        head.setdefault("column", 0)
        head.setdefault("epsilon", 0.0)
        self.head = head
        self.in_width = sum(self._input_width(i) for i in self.inputs)

    def _dien_layout(self, config):
        seq, evo, att = config["sequence"], config["evolution"], self.att
        self.H = self.U = seq["hidden"]
        self.seq_conv = seq["convention"]
        self.evo_type = evo["type"]
        self.evo_form = evo.get("form", "paper")
        self.evo_conv = evo.get("convention", self.seq_conv)
        self.att_type = att.get("type", "din")
        self.normalization = att.get("normalization", "softmax")
        self.scale = False
        self.output = None
        self.query = None
        if self.att_type == "din":
            self.att_layers = _layer_specs(att["layers"])
            self.out_bias = att.get("out_bias", True)
            if att.get("query_projection") is not None:
                self.query = _layer_specs([att["query_projection"]])[0]

    @staticmethod
    def _offsets(dims):
        return np.concatenate([[0], np.cumsum(dims)]).astype(int)

    def input_slice(self, name):
        """(source, begin, end) of a tower input; source in target/context/history_sum/..."""
        src, _, k = name.partition(":")
        if src == "dense":
            return src, 0, self.dense
        if src == "interest":
            return src, 0, self.H
        if src in ("target*attention", "target*history_sum"):
            return src, 0, self.E
        if src == "context":
            dims = self.cdims
        elif src == "attention" and not k:
            return src, 0, self.U
        else:
            dims = self.tdims
        off = self._offsets(dims)
        if not k:
            return src, 0, int(off[-1])
        k = int(k)
        return src, int(off[k]), int(off[k + 1])

    def _input_width(self, name):
        _, b, e = self.input_slice(name)
        return e - b


class BstLayout(_Layout):
    """The layout of architecture bst: the tower input `interest` is D wide (the transformer's
    output), and read-out `attention` is DIN's unit under the `attention` key (D = E)."""

    def __init__(self, config):
        super().__init__(config)
        self.tr = bst_defaults(config)
        self.H = self.U = bst_width(config, self.E)
        if self.tr["readout"] == "attention":
            att = self.att = config["attention"]
            self.att_layers = _layer_specs(att["layers"])
            self.out_bias = att.get("out_bias", True)
            self.normalization = att.get("normalization", "none")
            self.scale = att.get("scale", False)
            self.output = None

    def input_slice(self, name):
        if name == "interest":
            return name, 0, bst_width(self.config, self.E)
        return super().input_slice(name)


# ---------------------------------------------------------------------------------------------
# Activations, batch norm: torch (DinRef) and numpy float64 (Scorer) from the same formulas
# ---------------------------------------------------------------------------------------------

def _dice_p(xhat, beta):
    return torch.sigmoid(xhat * beta) if beta is not None else torch.sigmoid(xhat)


def _np_sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _np_erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def np_activation(act, x, get):
    """act(x) in float64; x [N, U]; get(name) returns the act.* tensor as float64 or None."""
    t = act["type"]
    if t == "linear":
        return x
    if t == "relu":
        return np.maximum(x, 0.0)
    if t == "sigmoid":
        return _np_sigmoid(x)
    if t == "tanh":
        return np.tanh(x)
    if t == "leaky_relu":
        return np.where(x >= 0, x, act["slope"] * x)
    if t == "gelu":
        if act["approximate"] == "tanh":
            c = math.sqrt(2.0 / math.pi)
            return 0.5 * x * (1.0 + np.tanh(c * (x + 0.044715 * x ** 3)))
        return 0.5 * x * (1.0 + _np_erf(x / math.sqrt(2.0)))
    if t == "hard_sigmoid":
        return np.clip(act["slope"] * x + act["offset"], 0.0, 1.0)
    if t == "prelu":
        return np.maximum(x, 0.0) + get("alpha") * np.minimum(x, 0.0)
    if t == "dice":
        eps = act["eps"]
        if act["stats"] == "running":
            xhat = (x - get("running_mean")) / np.sqrt(get("running_var") + eps)
            if act["affine"]:
                xhat = xhat * get("weight") + get("bias")
        else:
            mu = x.mean(axis=-1, keepdims=True)
            v = ((x - mu) ** 2 + eps).sum(axis=-1, keepdims=True)
            xhat = (x - mu) / np.sqrt(v)
        if act["beta"]:
            xhat = xhat * get("beta")
        p = _np_sigmoid(xhat)
        return p * x + get("alpha") * (1.0 - p) * x
    raise ValueError("unknown activation %s" % t)


# ---------------------------------------------------------------------------------------------
# DinRef: the trainable module
# ---------------------------------------------------------------------------------------------

class DinRef(torch.nn.Module):
    """The model of a config as a torch module whose tensors carry din's names.

    items = (ids [n] int, attributes [n, A] int) and vocab = {field: raw_ids [rows]} are only
    carried along into tensors(); the module itself works on table rows.
    scalar_alpha: True, or a set of layer prefixes ("tower.0", "attention.mlp.1"), whose prelu
    or dice alpha is one scalar [1] instead of [U] (FORMAT.md allows both; the config does not
    say which, the tensor shape does).
    bn_affine: whether layer/input/output batch norms get weight and bias tensors.
    momentum: running-stat update rate in train() mode (PyTorch's 0.1).

    Architectures base, din and dien; a subclass adds another by its Layout (the widths of
    its tower inputs), its parameters (_build) and its pooled tower inputs (_sources).
    """

    Layout = _Layout

    def __init__(self, config, items=None, vocab=None, scalar_alpha=False, bn_affine=True,
                 momentum=0.1):
        super().__init__()
        self.config = config
        self.L = self.Layout(config)
        self.momentum = momentum
        self.bn_affine = bn_affine
        self.scalar_alpha = scalar_alpha
        self._names = {}  # din name -> attribute name
        self.ids = {}
        if items is not None:
            self.ids["items.id"] = np.asarray(items[0], dtype=np.int64)
            self.ids["items.attributes"] = np.asarray(items[1], dtype=np.int64).reshape(
                len(items[0]), len(self.L.attributes))
        for field, raw in (vocab or {}).items():
            self.ids["vocab." + field] = np.asarray(raw, dtype=np.int64)
        self._build()

    # -- parameters -------------------------------------------------------------------------
    def _add(self, name, value, buffer=False):
        attr = "t%d_%s" % (len(self._names), name.replace(".", "_"))
        value = torch.as_tensor(value, dtype=torch.float32).clone()
        if buffer:
            self.register_buffer(attr, value)
        else:
            self.register_parameter(attr, torch.nn.Parameter(value))
        self._names[name] = attr

    def t(self, name):
        """The tensor named as in the file, or None when this model has no such tensor."""
        attr = self._names.get(name)
        return None if attr is None else getattr(self, attr)

    def _linear(self, prefix, out, inp, bias=True):
        bound = 1.0 / math.sqrt(inp)
        self._add(prefix + ".weight", torch.empty(out, inp).uniform_(-bound, bound))
        if bias:
            self._add(prefix + ".bias", torch.empty(out).uniform_(-bound, bound))

    def _bn(self, prefix, n):
        self._add(prefix + ".running_mean", torch.zeros(n), buffer=True)
        self._add(prefix + ".running_var", torch.ones(n), buffer=True)
        if self.bn_affine:
            self._add(prefix + ".weight", torch.ones(n))
            self._add(prefix + ".bias", torch.zeros(n))

    def _is_scalar(self, prefix):
        s = self.scalar_alpha
        return s is True or (s and prefix in s)

    def _act_params(self, prefix, act, units):
        t = act["type"]
        n = 1 if self._is_scalar(prefix) else units
        if t == "prelu":
            self._add(prefix + ".act.alpha", torch.full((n,), 0.25))
        elif t == "dice":
            self._add(prefix + ".act.alpha", torch.zeros(n))
            if act["stats"] == "running":
                self._add(prefix + ".act.running_mean", torch.zeros(units), buffer=True)
                self._add(prefix + ".act.running_var", torch.ones(units), buffer=True)
                if act["affine"]:
                    self._add(prefix + ".act.weight", torch.ones(units))
                    self._add(prefix + ".act.bias", torch.zeros(units))
            if act["beta"]:
                self._add(prefix + ".act.beta", torch.ones(units))

    def _layer_params(self, prefix, spec, inp):
        spec["activation"] = _act_defaults(spec["activation"])
        self._linear(prefix, spec["units"], inp, spec["bias"])
        if spec["batch_norm"] is not None:
            self._bn(prefix + ".bn", spec["units"])
        self._act_params(prefix, spec["activation"], spec["units"])
        return spec["units"]

    def _mlp(self, block, specs, inp):
        for i, spec in enumerate(specs):
            inp = self._layer_params("%s.%d" % (block, i), spec, inp)
        return inp

    def _gru_params(self, prefix, conv, inp, H):
        b = 1.0 / math.sqrt(H)

        def u(*shape):
            return torch.empty(*shape).uniform_(-b, b)
        if conv == "pytorch":
            self._add(prefix + ".weight_ih", u(3 * H, inp))
            self._add(prefix + ".weight_hh", u(3 * H, H))
            self._add(prefix + ".bias_ih", u(3 * H))
            self._add(prefix + ".bias_hh", u(3 * H))
        else:
            self._add(prefix + ".gates.weight", u(2 * H, inp + H))
            self._add(prefix + ".gates.bias", torch.ones(2 * H))
            self._add(prefix + ".candidate.weight", u(H, inp + H))
            self._add(prefix + ".candidate.bias", torch.zeros(H))

    def _dien_params(self):
        L = self.L
        self._gru_params("sequence.gru", L.seq_conv, L.E, L.H)
        if L.att_type == "bilinear":
            self._add("attention.bilinear.weight", torch.eye(L.H, L.E))
        else:
            if L.query is not None:
                self._layer_params("attention.query", L.query, L.E)
            last = self._mlp("attention.mlp", L.att_layers, 4 * L.H)
            self._linear("attention.out", 1, last, L.out_bias)
        self._gru_params("evolution.gru", L.evo_conv, L.H, L.H)

    def _build(self):
        L = self.L
        for f in self.config["fields"]:
            self._add("fields.%s.weight" % f["name"], torch.randn(f["rows"], f["dim"]) * 0.1)
        if L.arch == "dien":
            self._dien_params()
        elif L.att is not None:
            last = self._mlp("attention.mlp", L.att_layers, 4 * L.E)
            self._linear("attention.out", 1, last, L.out_bias)
            if L.output:
                if L.output.get("batch_norm") is not None:
                    self._bn("attention.output.bn", L.E)
                if "units" in L.output:
                    self._linear("attention.output", L.U, L.E)
        if L.input_bn is not None:
            self._bn("tower.input_bn", L.in_width)
        h = self._mlp("tower", L.tower_layers, L.in_width)
        head = L.head
        self._linear("head", 2 if head["type"] == "softmax2" else 1, h, head["bias"])
        if head["item_bias"]:
            self._add("head.item_bias", torch.zeros(L.fields[L.target[0]]["rows"]))

    # -- file tensors ---------------------------------------------------------------------
    def tensors(self):
        """Every tensor in din's names (float32), then the id tensors given at construction."""
        out = {}
        for name, attr in self._names.items():
            out[name] = getattr(self, attr).detach().cpu().numpy().astype(np.float32)
        out.update(self.ids)
        return out

    def load_tensors(self, tensors):
        """Set weights from a file's tensors. Optional BN affine tensors absent from the file
        are dropped from the module; id tensors are kept for tensors()."""
        with torch.no_grad():
            for name in list(self._names):
                if name in tensors:
                    cur = self.t(name)
                    val = torch.as_tensor(np.asarray(tensors[name]), dtype=cur.dtype)
                    if tuple(val.shape) != tuple(cur.shape):
                        # prelu/dice alpha may be [1] or [U]: the file decides.
                        if name.endswith(".act.alpha"):
                            setattr(self, self._names[name], torch.nn.Parameter(val.clone()))
                            continue
                        raise ValueError("tensor %s has shape %s, expected %s"
                                         % (name, tuple(val.shape), tuple(cur.shape)))
                    cur.copy_(val)
                elif ".bn." in name and name.rsplit(".", 1)[1] in ("weight", "bias"):
                    delattr(self, self._names.pop(name))
                else:
                    raise ValueError("tensor %s missing" % name)
        for name, val in tensors.items():
            if name.startswith("items.") or name.startswith("vocab."):
                self.ids[name] = np.asarray(val, dtype=np.int64)
        return self

    # -- math -------------------------------------------------------------------------------
    def _batch_norm(self, prefix, eps, x, affine=True):
        rm, rv = self.t(prefix + ".running_mean"), self.t(prefix + ".running_var")
        if self.training and x.shape[0] > 1:
            mean = x.mean(0)
            var = x.var(0, unbiased=False)
            with torch.no_grad():
                n = x.shape[0]
                rm.mul_(1 - self.momentum).add_(self.momentum * mean.detach())
                rv.mul_(1 - self.momentum).add_(self.momentum * var.detach() * n / (n - 1))
        else:
            mean, var = rm, rv
        y = (x - mean) / torch.sqrt(var + eps)
        w, b = self.t(prefix + ".weight"), self.t(prefix + ".bias")
        if affine and w is not None:
            y = y * w + b
        return y

    def _activation(self, prefix, act, x):
        t = act["type"]
        if t == "linear":
            return x
        if t == "relu":
            return torch.clamp_min(x, 0.0)
        if t == "sigmoid":
            return torch.sigmoid(x)
        if t == "tanh":
            return torch.tanh(x)
        if t == "leaky_relu":
            return torch.where(x >= 0, x, act["slope"] * x)
        if t == "gelu":
            if act["approximate"] == "tanh":
                c = math.sqrt(2.0 / math.pi)
                return 0.5 * x * (1.0 + torch.tanh(c * (x + 0.044715 * x ** 3)))
            return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
        if t == "hard_sigmoid":
            return torch.clamp(act["slope"] * x + act["offset"], 0.0, 1.0)
        alpha = self.t(prefix + ".act.alpha")
        if t == "prelu":
            return torch.clamp_min(x, 0.0) + alpha * torch.clamp_max(x, 0.0)
        if t == "dice":
            eps = act["eps"]
            if act["stats"] == "running":
                xhat = self._batch_norm(prefix + ".act", eps, x, affine=act["affine"])
            else:
                mu = x.mean(-1, keepdim=True)
                v = ((x - mu) ** 2 + eps).sum(-1, keepdim=True)
                xhat = (x - mu) / torch.sqrt(v)
            p = _dice_p(xhat, self.t(prefix + ".act.beta") if act["beta"] else None)
            return p * x + alpha * (1.0 - p) * x
        raise ValueError("unknown activation %s" % t)

    def _run_layer(self, prefix, spec, x):
        x = x @ self.t(prefix + ".weight").t()
        b = self.t(prefix + ".bias")
        if b is not None:
            x = x + b
        if spec["batch_norm"] is not None:
            x = self._batch_norm(prefix + ".bn", spec["batch_norm"].get("eps", 1e-5), x)
        return self._activation(prefix, spec["activation"], x)

    def _run_mlp(self, block, specs, x):
        for i, spec in enumerate(specs):
            x = self._run_layer("%s.%d" % (block, i), spec, x)
        return x

    # -- DIEN (FORMAT.md "architecture dien") ---------------------------------------------------
    def _torch_gru(self, prefix, x):
        """Every step's state [B, T, H] of PyTorch's own GRU kernel (what nn.GRU.forward calls)
        over x [B, T, I] from zero. A padded tail does not change the states before it, so no
        packing is needed. (functional_call on nn.GRU would keep its cached _flat_weights.)"""
        w_ih = self.t(prefix + ".weight_ih")
        h0 = torch.zeros(1, x.shape[0], w_ih.shape[0] // 3, dtype=x.dtype)
        weights = [w_ih, self.t(prefix + ".weight_hh"), self.t(prefix + ".bias_ih"),
                   self.t(prefix + ".bias_hh")]
        out, _ = torch._VF.gru(x, h0, weights, True, 1, 0.0, False, False, True)
        return out

    def _gru_cell(self, prefix, conv, x, h, a=None, gate="plain"):
        """One step, written out: returns h'. gate: plain | augru_paper | augru_code | agru."""
        H = h.shape[-1]
        if conv == "pytorch":
            gi = x @ self.t(prefix + ".weight_ih").t() + self.t(prefix + ".bias_ih")
            gh = h @ self.t(prefix + ".weight_hh").t() + self.t(prefix + ".bias_hh")
            r = torch.sigmoid(gi[:, :H] + gh[:, :H])
            u = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
            c = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        else:
            # TF GRUCell: [r | u] = sigmoid([x, h] Wg + bg); c = tanh([x, r*h] Wc + bc)
            g = torch.sigmoid(torch.cat([x, h], -1) @ self.t(prefix + ".gates.weight").t()
                              + self.t(prefix + ".gates.bias"))
            r, u = g[:, :H], g[:, H:]
            c = torch.tanh(torch.cat([x, r * h], -1) @ self.t(prefix + ".candidate.weight").t()
                           + self.t(prefix + ".candidate.bias"))
        if gate == "plain":
            return u * h + (1 - u) * c
        a = a.unsqueeze(-1)
        if gate == "augru_paper":
            v = a * u
            return (1 - v) * h + v * c
        if gate == "augru_code":
            v = (1 - a) * u
            return v * h + (1 - v) * c
        return (1 - a) * h + a * c

    def _run_gru(self, prefix, conv, x, mask, a=None, gate="plain"):
        """(states [B, T, H], final state at the last valid step [B, H]; 0 when empty)."""
        B, T, _ = x.shape
        H = self.L.H
        if conv == "pytorch" and gate == "plain" and T > 0:
            states = self._torch_gru(prefix, x)
        else:
            h = torch.zeros(B, H, dtype=x.dtype)
            out = []
            for t in range(T):
                h = self._gru_cell(prefix, conv, x[:, t], h,
                                   None if a is None else a[:, t], gate)
                out.append(h)
            states = torch.stack(out, 1) if out else torch.zeros(B, 0, H, dtype=x.dtype)
        m = mask.to(x.dtype).unsqueeze(-1)
        states = states * m
        last = (mask.sum(1) - 1).clamp_min(0)
        final = states[torch.arange(B), last] if T > 0 else torch.zeros(B, H, dtype=x.dtype)
        return states, final * (mask.sum(1) > 0).to(x.dtype).unsqueeze(-1)

    def _dien_scores(self, q, h, mask):
        """Raw scores [B, T] between the target q [B, E] and states h [B, T, H] (0 at pads)."""
        L = self.L
        B, T, H = h.shape
        if L.att_type == "bilinear":
            s = torch.einsum("bth,he,be->bt", h, self.t("attention.bilinear.weight"), q)
            return s * mask.to(s.dtype)
        if L.query is not None:
            q = self._run_layer("attention.query", L.query, q)
        qe = q.unsqueeze(1).expand(B, T, H)
        z = torch.cat([qe, h, qe - h, qe * h], -1)[mask]
        o = self._run_mlp("attention.mlp", L.att_layers, z) @ self.t("attention.out.weight").t()
        if self.t("attention.out.bias") is not None:
            o = o + self.t("attention.out.bias")
        return torch.zeros(B, T, dtype=h.dtype).masked_scatter(mask, o.squeeze(-1))

    def _normalize(self, s, mask):
        if self.L.normalization != "softmax" or s.shape[1] == 0:
            return s * mask.to(s.dtype)
        filled = s.masked_fill(~mask, -1e30)
        ex = torch.exp(filled - filled.max(1, keepdim=True).values) * mask.to(s.dtype)
        return ex / ex.sum(1, keepdim=True).clamp_min(torch.finfo(s.dtype).tiny)

    def _dien_states(self, k, mask):
        """The states the attention reads: extractor states, or GRU2's for the pooling type.
        The extractor states stay in extractor_states for a trainer's auxiliary loss."""
        L = self.L
        h, _ = self._run_gru("sequence.gru", L.seq_conv, k, mask)
        self.extractor_states = h
        if L.evo_type == "gru_attention_pooling":
            h, _ = self._run_gru("evolution.gru", L.evo_conv, h, mask)
        return h

    def _dien(self, q, k, mask):
        """(interest [B, H], attention weights [B, T]) of DIEN."""
        L = self.L
        h = self._dien_states(k, mask)
        w = self._normalize(self._dien_scores(q, h, mask), mask)
        if L.evo_type == "gru_attention_pooling":
            return (w.unsqueeze(-1) * h).sum(1), w
        if L.evo_type == "aigru":
            _, u = self._run_gru("evolution.gru", L.evo_conv, h * w.unsqueeze(-1), mask)
        else:
            gate = "agru" if L.evo_type == "agru" else "augru_" + L.evo_form
            _, u = self._run_gru("evolution.gru", L.evo_conv, h, mask, w, gate)
        return u, w

    def _embed(self, names, rows):
        """Concatenated rows of the tables in names; rows [..., len(names)], -1 = zero."""
        parts = []
        for s, name in enumerate(names):
            table = self.t("fields.%s.weight" % name)
            r = rows[..., s]
            e = table[r.clamp_min(0)]
            parts.append(e * (r >= 0).unsqueeze(-1).to(e.dtype))
        return torch.cat(parts, -1)

    def _dtype(self):
        return self.t("head.weight").dtype

    def _scores(self, q, k, mask):
        """Raw scores s [B, T] of the local activation unit (0 at padding)."""
        L = self.L
        B, T, E = k.shape
        qe = q.unsqueeze(1).expand(B, T, E)
        z = torch.cat([qe, k, qe - k, qe * k], -1)
        # Only the valid steps go through the unit, so train-mode statistics ignore padding.
        zv = z[mask]
        h = self._run_mlp("attention.mlp", L.att_layers, zv)
        s = h @ self.t("attention.out.weight").t()
        if self.t("attention.out.bias") is not None:
            s = s + self.t("attention.out.bias")
        scores = torch.zeros(B, T, dtype=z.dtype)
        return scores.masked_scatter(mask, s.squeeze(-1))

    def _attention(self, q, k, mask):
        """(pooled u [B, U], weights w [B, T]) of the target attention."""
        L = self.L
        E = k.shape[2]
        dt = k.dtype
        scores = self._scores(q, k, mask)
        if L.normalization == "softmax":
            if L.scale:
                scores = scores / math.sqrt(E)
            filled = scores.masked_fill(~mask, -1e30)
            top = filled.max(1, keepdim=True).values
            ex = torch.exp(filled - top) * mask.to(dt)
            # An empty history has no valid step: w = 0, so u = 0 (FORMAT.md).
            w = ex / ex.sum(1, keepdim=True).clamp_min(torch.finfo(dt).tiny)
        else:
            w = scores * mask.to(dt)
        u = (w.unsqueeze(-1) * k).sum(1)
        if L.output:
            if L.output.get("batch_norm") is not None:
                u = self._batch_norm("attention.output.bn",
                                     L.output["batch_norm"].get("eps", 1e-5), u)
            if "units" in L.output:
                u = u @ self.t("attention.output.weight").t() + self.t("attention.output.bias")
        return u, w

    def _sources(self, srcs, need, q, k, mask, times, at):
        """Adds the pooled tower inputs (attention, interest) to srcs; returns the weights
        din_explain reports. q [B, E] the target, k [B, T, E] the behaviours, mask [B, T]."""
        L = self.L
        if L.arch == "dien":
            srcs["interest"], w = self._dien(q, k, mask)
            return w
        if L.att is None:
            return None
        u, w = self._attention(q, k, mask)
        srcs["attention"] = u
        if "target*attention" in need:
            srcs["target*attention"] = q * u
        return w

    def _tower_input(self, target_rows, hist_rows, hist_len, context_rows, dense, times=None,
                     at=None):
        L = self.L
        dt = self._dtype()
        target_rows = torch.as_tensor(target_rows, dtype=torch.long)
        B = target_rows.shape[0]
        q = self._embed(L.target, target_rows)
        hist_rows = torch.as_tensor(hist_rows, dtype=torch.long)
        hist_len = torch.as_tensor(hist_len, dtype=torch.long)
        T = hist_rows.shape[1]
        mask = torch.arange(T).unsqueeze(0) < hist_len.unsqueeze(1)
        k = self._embed(L.behaviour, hist_rows) if T > 0 else torch.zeros(B, 0, L.E, dtype=dt)
        srcs = {"target": q}
        need = {L.input_slice(n)[0] for n in self.L.inputs}
        hsum = (k * mask.unsqueeze(-1).to(dt)).sum(1)
        srcs["history_sum"] = hsum
        srcs["history_mean"] = hsum / hist_len.clamp_min(1).unsqueeze(-1).to(dt)
        srcs["target*history_sum"] = q * hsum
        if L.context:
            srcs["context"] = self._embed(L.context, torch.as_tensor(context_rows,
                                                                     dtype=torch.long))
        if L.dense:
            srcs["dense"] = torch.as_tensor(np.asarray(dense), dtype=dt).reshape(B, L.dense)
        w = self._sources(srcs, need, q, k, mask, times, at)
        parts = []
        for name in L.inputs:
            src, b, e = L.input_slice(name)
            parts.append(srcs[src][:, b:e])
        return torch.cat(parts, -1), w, target_rows

    def logits(self, target_rows, hist_rows, hist_len, context_rows=None, dense=None,
               times=None, at=None):
        """Pre-sigmoid logit [B] (sigmoid head) or the two logits [B, 2] (softmax2 head).

        target_rows [B, S] long, hist_rows [B, T, S] long (valid steps t < hist_len first,
        oldest first; the caller keeps at most max_len), hist_len [B], context_rows [B, C],
        dense [B, D]. A row of -1 embeds as the zero vector. times [B, T] (int64 microseconds,
        history_time of the kept behaviours) and at [B] are read by the architectures that
        use time (a subclass's _sources).
        """
        L = self.L
        x, _, target_rows = self._tower_input(target_rows, hist_rows, hist_len, context_rows,
                                              dense, times, at)
        if L.input_bn is not None:
            x = self._batch_norm("tower.input_bn", L.input_bn.get("eps", 1e-5), x)
        h = self._run_mlp("tower", L.tower_layers, x)
        out = h @ self.t("head.weight").t()
        if self.t("head.bias") is not None:
            out = out + self.t("head.bias")
        if L.head["type"] == "softmax2":
            return out
        out = out.squeeze(-1)
        if L.head["item_bias"]:
            r = target_rows[:, 0]
            out = out + self.t("head.item_bias")[r.clamp_min(0)] * (r >= 0).to(out.dtype)
        return out

    forward = logits

    def prob(self, *args, **kw):
        """Click probability [B], the value din_score returns."""
        z = self.logits(*args, **kw)
        if self.L.head["type"] == "softmax2":
            return torch.softmax(z, -1)[:, self.L.head["column"]] + self.L.head["epsilon"]
        return torch.sigmoid(z)

    def loss(self, labels, *args, **kw):
        """Mean binary cross-entropy of the click labels [B] (0/1), for either head."""
        z = self.logits(*args, **kw)
        y = torch.as_tensor(labels, dtype=z.dtype)
        if self.L.head["type"] == "softmax2":
            logp = torch.log_softmax(z, -1)
            c = self.L.head["column"]
            return -(y * logp[:, c] + (1 - y) * logp[:, 1 - c]).mean()
        return torch.nn.functional.binary_cross_entropy_with_logits(z, y)

    def attention_weights(self, target_rows, hist_rows, hist_len, context_rows=None,
                          dense=None):
        """w [B, T] (0 at padding), as din_explain reports them."""
        _, w, _ = self._tower_input(target_rows, hist_rows, hist_len, context_rows, dense)
        return w

    def attention_scores(self, target_rows, hist_rows, hist_len):
        """Raw unit scores s [B, T] before any normalization (0 at padding)."""
        target_rows = torch.as_tensor(target_rows, dtype=torch.long)
        hist_rows = torch.as_tensor(hist_rows, dtype=torch.long)
        hist_len = torch.as_tensor(hist_len, dtype=torch.long)
        mask = torch.arange(hist_rows.shape[1]).unsqueeze(0) < hist_len.unsqueeze(1)
        q = self._embed(self.L.target, target_rows)
        k = self._embed(self.L.behaviour, hist_rows)
        if self.L.arch == "dien":
            return self._dien_scores(q, self._dien_states(k, mask), mask)
        return self._scores(q, k, mask)


# ---------------------------------------------------------------------------------------------
# Scorer: raw ids -> probability in float64, as din's SQL functions see them
# ---------------------------------------------------------------------------------------------

class OovError(ValueError):
    """An id outside its field's table with oov "error" (din: invalid_parameter_value)."""


class Scorer:
    def __init__(self, config, tensors):
        self.L = L = _Layout(config)
        self.t = {k: (np.asarray(v, dtype=np.float64) if np.asarray(v).dtype.kind == "f"
                      else np.asarray(v)) for k, v in tensors.items()}
        self.vocab = {}
        for f in config["fields"]:
            raw = tensors.get("vocab." + f["name"])
            if raw is not None:
                self.vocab[f["name"]] = {int(r): i for i, r in enumerate(raw)}
        self.items = {}
        if L.attributes:
            attrs = np.asarray(tensors["items.attributes"])
            for i, raw in enumerate(tensors["items.id"]):
                self.items[int(raw)] = [int(a) for a in attrs[i]]
        self._dien = None
        if L.arch == "dien":
            # The DIEN recurrences in float64 through the module's code (nn.GRU for PyTorch
            # weights); C is checked against it.
            self._dien = DinRef(config).load_tensors(tensors).double().eval()
        for specs in ([L.att_layers] if getattr(L, "att_layers", None) else []) + \
                [L.tower_layers]:
            for spec in specs:
                spec["activation"] = _act_defaults(spec["activation"])

    # -- ids -> rows ----------------------------------------------------------------------
    def row(self, field, raw):
        """Table row of a raw id (-1 = zero vector); raises OovError for oov "error"."""
        f = self.L.fields[field]
        if raw is not None:
            if field in self.vocab:
                r = self.vocab[field].get(int(raw))
                if r is not None:
                    return r
            elif 0 <= raw < f["rows"]:
                return int(raw)
        oov = f.get("oov", "error")
        if oov == "error":
            raise OovError("id %s not found in field %s" % (raw, field))
        if oov == "zero":
            return -1
        return int(oov)

    def item_rows(self, fields, item):
        """Rows of an item and its attributes through the tables in fields."""
        attrs = self.items.get(int(item)) if self.L.attributes else []
        rows = [self.row(fields[0], item)]
        for k in range(1, len(fields)):
            rows.append(self.row(fields[k], attrs[k - 1] if attrs is not None else None))
        return rows

    def encode(self, history, candidate, context=None):
        """(target_rows [S], hist_rows [T, S], context_rows [C], kept positions 1-based)."""
        L = self.L
        history = list(history or [])
        start = max(0, len(history) - L.max_len)
        kept = history[start:]
        target = self.item_rows(L.target, candidate)
        hist = [self.item_rows(L.behaviour, h) for h in kept]
        ctx = list(context) if context is not None else None
        if L.context:
            if ctx is None or len(ctx) != len(L.context):
                raise ValueError("context must have %d elements" % len(L.context))
            crow = [self.row(n, c) for n, c in zip(L.context, ctx)]
        else:
            if ctx:
                raise ValueError("model has no context fields")
            crow = []
        positions = list(range(start + 1, len(history) + 1))
        return target, hist, crow, positions

    def encode_batch(self, rows):
        """Padded arrays for DinRef from [(history, candidate, context, dense), ...]:
        (target_rows [B,S], hist_rows [B,max_len,S], hist_len [B], context_rows [B,C],
        dense [B,D] float64)."""
        L = self.L
        B = len(rows)
        S = len(L.target)
        tr = np.zeros((B, S), np.int64)
        hr = np.full((B, L.max_len, S), -1, np.int64)
        hl = np.zeros(B, np.int64)
        cr = np.zeros((B, len(L.context)), np.int64)
        dn = np.zeros((B, L.dense), np.float64)
        for i, (history, cand, ctx, dense) in enumerate(rows):
            t, h, c, _ = self.encode(history, cand, ctx)
            tr[i] = t
            if h:
                hr[i, :len(h)] = h
            hl[i] = len(h)
            cr[i] = c
            if L.dense:
                dn[i] = self._dense(dense)
        return tr, hr, hl, cr, dn

    def _dense(self, dense):
        L = self.L
        if L.dense:
            if dense is None or len(dense) != L.dense:
                raise ValueError("dense must have %d elements" % L.dense)
            return np.asarray(dense, dtype=np.float64)
        if dense:
            raise ValueError("model has no dense features")
        return np.zeros(0)

    # -- math -------------------------------------------------------------------------------
    def _embed(self, names, rows):
        out = []
        for name, r in zip(names, rows):
            tab = self.t["fields.%s.weight" % name]
            out.append(tab[r] if r >= 0 else np.zeros(tab.shape[1]))
        return np.concatenate(out)

    def _bn(self, prefix, eps, x, affine=True):
        y = (x - self.t[prefix + ".running_mean"]) / np.sqrt(self.t[prefix + ".running_var"]
                                                             + eps)
        if affine and prefix + ".weight" in self.t:
            y = y * self.t[prefix + ".weight"] + self.t[prefix + ".bias"]
        return y

    def _mlp(self, block, specs, x):
        for i, spec in enumerate(specs):
            p = "%s.%d" % (block, i)
            x = x @ self.t[p + ".weight"].T
            if p + ".bias" in self.t:
                x = x + self.t[p + ".bias"]
            if spec["batch_norm"] is not None:
                x = self._bn(p + ".bn", spec["batch_norm"].get("eps", 1e-5), x)
            x = np_activation(spec["activation"], x, lambda n: self.t.get(p + ".act." + n))
        return x

    def _weights(self, q, K):
        L = self.L
        T, E = K.shape
        if T == 0:
            return np.zeros(0)
        Q = np.broadcast_to(q, (T, E))
        z = np.concatenate([Q, K, Q - K, Q * K], 1)
        h = self._mlp("attention.mlp", L.att_layers, z)
        s = (h @ self.t["attention.out.weight"].T)[:, 0]
        if "attention.out.bias" in self.t:
            s = s + self.t["attention.out.bias"][0]
        if L.normalization == "softmax":
            if L.scale:
                s = s / math.sqrt(E)
            e = np.exp(s - s.max())
            return e / e.sum()
        return s

    def _forward(self, history, candidate, context, dense):
        L = self.L
        trow, hrows, crow, positions = self.encode(history, candidate, context)
        d = self._dense(dense)
        q = self._embed(L.target, trow)
        K = np.array([self._embed(L.behaviour, r) for r in hrows]).reshape(len(hrows), L.E)
        srcs = {"target": q, "dense": d}
        hsum = K.sum(0) if len(hrows) else np.zeros(L.E)
        srcs["history_sum"] = hsum
        srcs["history_mean"] = hsum / len(hrows) if len(hrows) else np.zeros(L.E)
        srcs["target*history_sum"] = q * hsum
        if L.context:
            srcs["context"] = np.concatenate([self._embed([n], [r])
                                              for n, r in zip(L.context, crow)])
        w = np.zeros(0)
        if L.arch == "dien":
            with torch.no_grad():
                T = len(hrows)
                u, wt = self._dien._dien(torch.tensor(q[None, :]),
                                         torch.tensor(K.reshape(1, T, L.E)),
                                         torch.ones(1, T, dtype=torch.bool))
            srcs["interest"] = u[0].numpy()
            w = wt[0].numpy()
        elif L.att is not None:
            w = self._weights(q, K)
            u = w @ K if len(hrows) else np.zeros(L.E)
            if L.output:
                if L.output.get("batch_norm") is not None:
                    u = self._bn("attention.output.bn", L.output["batch_norm"].get("eps", 1e-5),
                                 u)
                if "units" in L.output:
                    u = u @ self.t["attention.output.weight"].T + self.t["attention.output.bias"]
            srcs["attention"] = u
            srcs["target*attention"] = q * u if u.shape == q.shape else None
        x = np.concatenate([srcs[s][b:e] for s, b, e in map(L.input_slice, L.inputs)])
        if L.input_bn is not None:
            x = self._bn("tower.input_bn", L.input_bn.get("eps", 1e-5), x)
        h = self._mlp("tower", L.tower_layers, x[None, :])[0]
        z = self.t["head.weight"] @ h
        if "head.bias" in self.t:
            z = z + self.t["head.bias"]
        if L.head["type"] == "softmax2":
            e = np.exp(z - z.max())
            p = e[L.head["column"]] / e.sum() + L.head["epsilon"]
        else:
            z = z[0]
            if L.head["item_bias"] and trow[0] >= 0:
                z = z + self.t["head.item_bias"][trow[0]]
            p = float(_np_sigmoid(z))
        return float(p), list(zip(positions, [float(v) for v in w]))

    def score(self, history, candidate, context=None, dense=None):
        """din_score: the click probability of candidate after history (oldest first)."""
        return self._forward(history, candidate, context, dense)[0]

    def explain(self, history, candidate, context=None, dense=None):
        """din_explain: [(pos, weight)] for the kept behaviours, pos 1-based in history."""
        return self._forward(history, candidate, context, dense)[1]
