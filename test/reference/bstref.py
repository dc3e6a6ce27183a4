"""BST (docs/FORMAT.md "architecture bst") in float64 numpy, and its independent checks.

BstScorer extends dinref.Scorer: ids, embeddings, the DIN pooling unit, tower and head are
dinref's; the sequence, positions and transformer blocks are written out here from the
formulas of docs/FORMAT.md "architecture bst". check_against_torch() runs the same numbers
through torch.nn.TransformerEncoderLayer (PyTorch layout) or torch.nn.MultiheadAttention
(DeepCTR layout), on front-padded batches with key padding masks, as a trainer would.
"""

import bisect
import math

import numpy as np
import torch

import dinref


def position_rows(cfg, p):
    tr = dinref.bst_defaults(cfg)
    if p["type"] == "index":
        return p["width"] + (1 if tr["target"] else 0)
    return len(p["boundaries"]) + 1


def index_of(align, width, T, t):
    """Slot of behaviour t (0 = oldest kept) of T; t == T is the appended target (slot width)."""
    if t == T:
        return width
    return t if align == "start" else width - T + t


def time_bucket(boundaries, gap_seconds):
    return bisect.bisect_right(boundaries, gap_seconds)


def tensor_shapes(cfg, E):
    """{name: shape} of every transformer tensor the config needs (FORMAT.md)."""
    tr = dinref.bst_defaults(cfg)
    D = dinref.bst_width(cfg, E)
    F = tr["ffn"]["units"]
    out = {}
    for k, p in enumerate(tr["positions"]):
        dim = D if p["combine"] == "add" else p["dim"]
        out["transformer.positions.%d.weight" % k] = (position_rows(cfg, p), dim)
    for b in range(tr["blocks"]):
        pre = "transformer.blocks.%d." % b
        if tr["layout"] == "pytorch":
            out[pre + "attention.in_proj_weight"] = (3 * D, D)
            out[pre + "attention.in_proj_bias"] = (3 * D,)
            out[pre + "attention.out_proj.weight"] = (D, D)
            out[pre + "attention.out_proj.bias"] = (D,)
        else:
            for w in ("query", "key", "value"):
                out[pre + "attention.%s.weight" % w] = (D, D)
        out[pre + "ffn.0.weight"] = (F, D)
        out[pre + "ffn.1.weight"] = (D, F)
        if tr["ffn"]["bias"]:
            out[pre + "ffn.0.bias"] = (F,)
            out[pre + "ffn.1.bias"] = (D,)
        for n in (["norm"] if tr["shared_norm"] else ["norm1", "norm2"]):
            out[pre + n + ".weight"] = (D,)
            out[pre + n + ".bias"] = (D,)
        if tr["block_positions"] is not None:
            W = tr["block_positions"]["width"]
            out[pre + "query_pe"] = (W, D)
            out[pre + "key_pe"] = (W, D)
    return out


class BstScorer(dinref.Scorer):
    def __init__(self, config, tensors):
        self.tr = tr = dinref.bst_defaults(config)
        self.L = L = dinref.BstLayout(config)
        self.t = {k: (np.asarray(v, dtype=np.float64) if np.asarray(v).dtype.kind == "f"
                      else np.asarray(v)) for k, v in tensors.items()}
        self.vocab = {}
        self.items = {}
        if L.attributes:
            attrs = np.asarray(tensors["items.attributes"])
            for i, raw in enumerate(tensors["items.id"]):
                self.items[int(raw)] = [int(a) for a in attrs[i]]
        for spec in L.tower_layers:
            spec["activation"] = dinref._act_defaults(spec["activation"])
        self.D = L.H
        if tr["readout"] == "attention":
            for spec in L.att_layers:
                spec["activation"] = dinref._act_defaults(spec["activation"])
        self.last_probs = None

    # -- the transformer --------------------------------------------------------------------
    def sequence(self, q, K, times, at):
        """X [n, D] (behaviours oldest first, then the target when appended)."""
        tr, T = self.tr, K.shape[0]
        rows = [K[t] for t in range(T)] + ([q] if tr["target"] else [])
        n = len(rows)
        X = np.array(rows).reshape(n, self.L.E)
        concat, add = [X], np.zeros((n, self.D))
        for k, p in enumerate(tr["positions"]):
            tab = self.t["transformer.positions.%d.weight" % k]
            if p["type"] == "index":
                idx = [index_of(p["align"], p["width"], T, t) for t in range(n)]
            else:
                gaps = [(at - times[t]) / 1e6 for t in range(T)] + ([0.0] if tr["target"] else [])
                idx = [time_bucket(p["boundaries"], g) for g in gaps]
            e = tab[idx] * p["scale"] if n else np.zeros((0, tab.shape[1]))
            if p["combine"] == "concat":
                concat.append(e)
            else:
                add = add + e
        return np.concatenate(concat, 1) + add

    def _ln(self, name, x):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.tr["eps"]) * self.t[name + ".weight"] + \
            self.t[name + ".bias"]

    def _mha(self, pre, xq, xk, valid=None):
        """valid: rows >= valid are DeepCTR's padded slots, masked as keys (score -2^32+1) and
        as queries (their weights multiplied by 0), literally as its Transformer layer does."""
        tr, D = self.tr, self.D
        h = tr["heads"]
        d = D // h
        if tr["layout"] == "pytorch":
            w, b = self.t[pre + "attention.in_proj_weight"], self.t[pre + "attention.in_proj_bias"]
            Q = xq @ w[:D].T + b[:D]
            K = xk @ w[D:2 * D].T + b[D:2 * D]
            V = xk @ w[2 * D:].T + b[2 * D:]
        else:
            Q = xq @ self.t[pre + "attention.query.weight"].T
            K = xk @ self.t[pre + "attention.key.weight"].T
            V = xk @ self.t[pre + "attention.value.weight"].T
        out = np.zeros_like(Q)
        probs = np.zeros((h, Q.shape[0], K.shape[0]))
        for j in range(h):
            s = Q[:, j * d:(j + 1) * d] @ K[:, j * d:(j + 1) * d].T / math.sqrt(d)
            if valid is not None:
                s[:, valid:] = -2.0 ** 32 + 1
            e = np.exp(s - s.max(1, keepdims=True))
            a = e / e.sum(1, keepdims=True)
            if valid is not None:
                a[valid:, :] *= 0.0
            probs[j] = a
            out[:, j * d:(j + 1) * d] = a @ V[:, j * d:(j + 1) * d]
        if tr["layout"] == "pytorch":
            out = out @ self.t[pre + "attention.out_proj.weight"].T + \
                self.t[pre + "attention.out_proj.bias"]
        return out, probs

    def _ffn(self, pre, x):
        f = self.tr["ffn"]
        h = x @ self.t[pre + "ffn.0.weight"].T
        if f["bias"]:
            h = h + self.t[pre + "ffn.0.bias"]
        h = dinref.np_activation(f["activation"], h, lambda n: None)
        y = h @ self.t[pre + "ffn.1.weight"].T
        if f["bias"]:
            y = y + self.t[pre + "ffn.1.bias"]
        return y

    def block(self, b, X, valid=None):
        tr = self.tr
        pre = "transformer.blocks.%d." % b
        n1, n2 = (pre + "norm", pre + "norm") if tr["shared_norm"] else \
            (pre + "norm1", pre + "norm2")
        xq = xk = X
        bp = tr["block_positions"]
        if bp is not None:
            T = X.shape[0]
            idx = [index_of(bp["align"], bp["width"], T, t) for t in range(T)]
            s = math.sqrt(self.D)
            xq = X + s * self.t[pre + "query_pe"][idx]
            xk = X + s * self.t[pre + "key_pe"][idx]
        if tr["norm"] == "post":
            a, probs = self._mha(pre, xq, xk, valid)
            R = self._ln(n1, a + xq)
            R = self._ln(n2, R + self._ffn(pre, R))
        else:
            a, probs = self._mha(pre, self._ln(n1, xq), self._ln(n1, xk), valid)
            R = xq + a
            R = R + self._ffn(pre, self._ln(n2, R))
        return R, probs

    def padded_sequence(self, q, K):
        """DeepCTR's post-padded window: max_len rows, slot t >= T holding row padding_row of
        each behaviour table; X [max_len, D] with its positions."""
        L, T, W = self.L, K.shape[0], self.L.config["max_len"]
        r = self.tr["padding_row"]
        pad = np.concatenate([self.t["fields.%s.weight" % f][r] for f in L.behaviour])
        Kf = np.concatenate([K.reshape(T, L.E), np.tile(pad, (W - T, 1))])
        return self.sequence(q, Kf, None, 0)

    def interest(self, q, K, times, at):
        """(interest [D], weights [T]) as din scores and explains them."""
        tr, T = self.tr, K.shape[0]
        if tr["readout"] == "mean_all":
            X = self.padded_sequence(q, K)
            for b in range(tr["blocks"]):
                X, _ = self.block(b, X, valid=T)
            return X.mean(0), np.full(T, 1.0 / X.shape[0])
        X = self.sequence(q, K, times, at)
        probs = None
        if X.shape[0] > 0:
            for b in range(tr["blocks"]):
                X, probs = self.block(b, X)
        if tr["readout"] == "target":
            return X[T], probs.mean(0)[T, :T]
        if tr["readout"] == "mean":
            u = X.mean(0) if X.shape[0] else np.zeros(self.D)
            if tr["target"]:
                return u, probs.mean(0)[T, :T]
            return u, np.full(T, 1.0 / T) if T else np.zeros(0)
        w = self._weights(q, X)
        return (w @ X if T else np.zeros(self.D)), w

    # -- din_score / din_explain --------------------------------------------------------------
    def _forward(self, history, candidate, context, dense, history_time=None, at=0):
        L = self.L
        trow, hrows, crow, positions = self.encode(history, candidate, context)
        d = self._dense(dense)
        q = self._embed(L.target, trow)
        K = np.array([self._embed(L.behaviour, r) for r in hrows]).reshape(len(hrows), L.E)
        times = None
        if history_time is not None:
            times = list(history_time)[len(history or []) - len(hrows):]
        u, w = self.interest(q, K, times, at)
        srcs = {"target": q, "dense": d, "interest": u}
        if L.context:
            srcs["context"] = np.concatenate([self._embed([n], [r])
                                              for n, r in zip(L.context, crow)])
        x = np.concatenate([srcs[s][b:e] for s, b, e in map(L.input_slice, L.inputs)])
        h = self._mlp("tower", L.tower_layers, x[None, :])[0]
        z = self.t["head.weight"] @ h
        if "head.bias" in self.t:
            z = z + self.t["head.bias"]
        p = float(dinref._np_sigmoid(z[0]))
        return p, list(zip(positions, [float(v) for v in w])), z[0]

    def score(self, history, candidate, context=None, dense=None, history_time=None, at=0):
        return self._forward(history, candidate, context, dense, history_time, at)[0]

    def logit(self, history, candidate, context=None, dense=None, history_time=None, at=0):
        return self._forward(history, candidate, context, dense, history_time, at)[2]

    def explain(self, history, candidate, context=None, dense=None, history_time=None, at=0):
        return self._forward(history, candidate, context, dense, history_time, at)[1]


# ---------------------------------------------------------------------------------------------
# Independent check: the blocks through torch's own modules on padded batches
# ---------------------------------------------------------------------------------------------

def _torch_act(act):
    if act["type"] == "relu":
        return torch.nn.ReLU()
    if act["type"] == "leaky_relu":
        return torch.nn.LeakyReLU(act["slope"])
    if act["type"] == "gelu":
        return torch.nn.GELU(approximate=act["approximate"])
    raise ValueError("no torch module for %s" % act["type"])


def _torch_block(scorer, b):
    """The block b of scorer as torch modules (float64), returning f(X [B,W,D], pad [B,W])."""
    tr, t, D = scorer.tr, scorer.t, scorer.D
    pre = "transformer.blocks.%d." % b
    F = tr["ffn"]["units"]

    def tt(name):
        return torch.tensor(t[pre + name], dtype=torch.float64)
    if tr["layout"] == "pytorch":
        layer = torch.nn.TransformerEncoderLayer(
            D, tr["heads"], F, dropout=0.0, activation=_torch_act(tr["ffn"]["activation"]),
            layer_norm_eps=tr["eps"], batch_first=True, norm_first=tr["norm"] == "pre").double()
        sd = {"self_attn.in_proj_weight": tt("attention.in_proj_weight"),
              "self_attn.in_proj_bias": tt("attention.in_proj_bias"),
              "self_attn.out_proj.weight": tt("attention.out_proj.weight"),
              "self_attn.out_proj.bias": tt("attention.out_proj.bias"),
              "linear1.weight": tt("ffn.0.weight"), "linear1.bias": tt("ffn.0.bias"),
              "linear2.weight": tt("ffn.1.weight"), "linear2.bias": tt("ffn.1.bias"),
              "norm1.weight": tt("norm1.weight"), "norm1.bias": tt("norm1.bias"),
              "norm2.weight": tt("norm2.weight"), "norm2.bias": tt("norm2.bias")}
        layer.load_state_dict(sd)
        layer.eval()
        return lambda X, pad, idx: layer(X, src_key_padding_mask=pad)
    mha = torch.nn.MultiheadAttention(D, tr["heads"], bias=False, batch_first=True).double()
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([tt("attention.query.weight"),
                                            tt("attention.key.weight"),
                                            tt("attention.value.weight")]))
        mha.out_proj.weight.copy_(torch.eye(D, dtype=torch.float64))
    mha.eval()
    ln_names = ("norm", "norm") if tr["shared_norm"] else ("norm1", "norm2")
    lns = [(tt(n + ".weight"), tt(n + ".bias")) for n in ln_names]
    act = _torch_act(tr["ffn"]["activation"])

    def ln(x, k):
        return torch.nn.functional.layer_norm(x, (D,), lns[k][0], lns[k][1], tr["eps"])

    def ffn(x):
        h = x @ tt("ffn.0.weight").T + (tt("ffn.0.bias") if tr["ffn"]["bias"] else 0)
        return act(h) @ tt("ffn.1.weight").T + (tt("ffn.1.bias") if tr["ffn"]["bias"] else 0)

    def run(X, pad, idx):
        xq = xk = X
        if tr["block_positions"] is not None:
            s = math.sqrt(D)
            xq = X + s * tt("query_pe")[idx]
            xk = X + s * tt("key_pe")[idx]
        # DeepCTR's query mask: a padded row's weights are 0 (torch gives NaN when no key is
        # valid, hence where, not a product)
        zero = torch.zeros((), dtype=torch.float64)
        if tr["norm"] == "post":
            a, _ = mha(xq, xk, xk, key_padding_mask=pad, need_weights=False)
            a = torch.where(pad[..., None], zero, a)
            R = ln(a + xq, 0)
            return ln(R + ffn(R), 1)
        a, _ = mha(ln(xq, 0), ln(xk, 0), ln(xk, 0), key_padding_mask=pad, need_weights=False)
        a = torch.where(pad[..., None], zero, a)
        R = xq + a
        return R + ffn(ln(R, 1))
    return run


def check_against_torch(scorer, samples, rng):
    """Max abs difference between BstScorer.interest and the torch modules run on front-padded
    batches (junk in the padded slots, masked by key padding); samples = [(q, K, times, at)]."""
    tr, D = scorer.tr, scorer.D
    blocks = [_torch_block(scorer, b) for b in range(tr["blocks"])]
    worst = 0.0
    for q, K, times, at in samples:
        T = K.shape[0]
        if tr["readout"] == "mean_all":
            worst = max(worst, _check_mean_all(scorer, blocks, q, K))
            continue
        if T == 0 and not tr["target"]:
            continue
        X = scorer.sequence(q, K, times, at)
        n = X.shape[0]
        P = 3  # padded slots in front, as torch-rechub pads
        junk = rng.normal(0, 1, (P, D))
        Xp = torch.tensor(np.concatenate([junk, X])[None], dtype=torch.float64)
        pad = torch.tensor([[True] * P + [False] * n])
        bp = tr["block_positions"]
        idx = None
        if bp is not None:
            idx = [0] * P + [index_of(bp["align"], bp["width"], T, t) for t in range(n)]
        with torch.no_grad():
            for f in blocks:
                Xp = f(Xp, pad, idx)
        out = Xp[0, P:].numpy()
        mine = X
        for b in range(tr["blocks"]):
            mine, _ = scorer.block(b, mine)
        worst = max(worst, float(np.abs(out - mine).max()))
        # and the weights din_explain reports: the last block's, through nn.MultiheadAttention
    return worst


def _check_mean_all(scorer, blocks, q, K):
    """DeepCTR's mean over all slots through nn.MultiheadAttention on the post-padded window
    (padded keys masked, padded queries zeroed), against BstScorer.interest."""
    T = K.shape[0]
    X = scorer.padded_sequence(q, K)
    W = X.shape[0]
    Xp = torch.tensor(X[None], dtype=torch.float64)
    pad = torch.tensor([[False] * T + [True] * (W - T)])
    with torch.no_grad():
        for f in blocks:
            Xp = f(Xp, pad, list(range(W)))
    u, _ = scorer.interest(q, K, None, 0)
    return float(np.abs(Xp[0].mean(0).numpy() - u).max())
