"""dsinref - an independent PyTorch reference of din's architecture dsin (docs/FORMAT.md
"architecture dsin"), written from the format page.

    sessions(times, at, rule) -> [(start, length)], most recent first
    DsinRef(config, tensors).score(history, times, at, candidate, context, dense)
    DsinRef(...).explain(...) -> [(pos, weight)]

Float64 throughout. The LSTM runs through torch.nn.LSTM when the recurrent activation is the
sigmoid, and through an explicit cell for hard_sigmoid (which nn.LSTM cannot do);
check_lstm_cell() verifies that cell against nn.LSTM.
"""

import math

import numpy as np
import torch

MASKED = -4294967296.0  # DeepCTR's -2**32 + 1 as float32 rounds it


def sessions(times, at, count, length, gap_us, min_length):
    """Written independently of din's C: split forwards, then keep the newest."""
    kept = [i for i, t in enumerate(times) if t < at]
    groups = []
    for i in kept:
        if groups and times[i] - times[groups[-1][-1]] <= gap_us:
            groups[-1].append(i)
        else:
            groups.append([i])
    groups = [g for g in groups if len(g) >= min_length]
    out = []
    for g in reversed(groups[-count:] if count else []):
        g = g[-length:]
        out.append((g[0], len(g)))
    return out


def hard_sigmoid(x):
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh, rec):
    z = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    H = h.shape[-1]
    i, f, g, o = z[..., :H], z[..., H:2 * H], z[..., 2 * H:3 * H], z[..., 3 * H:]
    i, f, o = rec(i), rec(f), rec(o)
    c = f * c + i * torch.tanh(g)
    return o * torch.tanh(c), c


def lstm_explicit(x, w, rec):
    """x [S, in] -> [S, H], from the zero state."""
    H = w[1].shape[1]
    h = torch.zeros(H, dtype=x.dtype)
    c = torch.zeros(H, dtype=x.dtype)
    out = []
    for t in range(x.shape[0]):
        h, c = lstm_cell(x[t], h, c, *w, rec)
        out.append(h)
    return torch.stack(out)


def lstm_torch(x, w):
    m = torch.nn.LSTM(x.shape[1], w[1].shape[1], num_layers=1, batch_first=True).double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(w[0])
        m.weight_hh_l0.copy_(w[1])
        m.bias_ih_l0.copy_(w[2])
        m.bias_hh_l0.copy_(w[3])
        y, _ = m(x[None])
    return y[0]


def check_lstm_cell(seed=3):
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for inp, H, S in ((8, 8, 5), (6, 4, 7), (3, 9, 1)):
        w = [torch.randn(4 * H, inp, generator=g, dtype=torch.float64),
             torch.randn(4 * H, H, generator=g, dtype=torch.float64),
             torch.randn(4 * H, generator=g, dtype=torch.float64),
             torch.randn(4 * H, generator=g, dtype=torch.float64)]
        x = torch.randn(S, inp, generator=g, dtype=torch.float64)
        worst = max(worst, float((lstm_explicit(x, w, torch.sigmoid) - lstm_torch(x, w)).abs().max()))
    assert worst < 1e-12, worst
    return worst


class DsinRef:
    def __init__(self, config, tensors):
        self.cfg = config
        self.t = {k: torch.tensor(np.asarray(v, dtype=np.float64)) for k, v in tensors.items()
                  if k not in ("items.id", "items.attributes")}
        self.items = {}
        if "items.id" in tensors:
            for i, a in zip(tensors["items.id"], tensors["items.attributes"]):
                self.items[int(i)] = [int(x) for x in a]
        self.fields = {f["name"]: f for f in config["fields"]}
        s = config["sessions"]
        self.K, self.T = s["count"], s["length"]
        self.gap = s.get("gap", 1800) * 1000000
        self.min_length = s.get("min_length", 1)
        x = config["extractor"]
        self.E = sum(self.fields[f]["dim"] for f in config["behaviour"])
        self.heads = x["heads"]
        self.enc = x.get("encoding", "positional")
        self.scale = 1.0 / math.sqrt(self.E if x.get("scale", "head") == "model"
                                     else self.E // self.heads)
        self.blinding = x.get("blinding", True)
        self.proj = x.get("output_projection", False)
        self.ffn = x.get("feed_forward", True)
        ln = x.get("layer_norm")
        self.ln_eps = None if ln is None else ln.get("eps", 1e-9)
        self.pool_valid = x.get("pooling", "mean_all") == "mean_valid"
        it = config["interacting"]
        self.lstm = it["type"] == "bilstm"
        if self.lstm:
            self.layers = it.get("layers", 1)
            self.merge = it.get("merge", "concat")
            self.rec = it["recurrent_activation"]
            self.steps_valid = it.get("steps", "all") == "valid"

    # -- embeddings ---------------------------------------------------------------------------
    def _embed(self, slots, item):
        attrs = self.items.get(item)
        ids = [item] + (attrs if attrs is not None else [])
        return torch.cat([self.t["fields.%s.weight" % f][ids[k]] for k, f in enumerate(slots)])

    def _pad(self):
        return torch.cat([self.t["fields.%s.weight" % f][0] for f in self.cfg["behaviour"]])

    # -- extractor ----------------------------------------------------------------------------
    def _layer_norm(self, x):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return ((x - mu) / torch.sqrt(var + self.ln_eps) * self.t["extractor.layer_norm.weight"]
                + self.t["extractor.layer_norm.bias"])

    def _session(self, k, rows, n):
        T, E, t = self.T, self.E, self.t
        X = torch.stack(list(rows) + [self._pad()] * (T - n)) if T else None
        if self.enc == "bias":
            X = (X + t["extractor.bias.session"][k] + t["extractor.bias.position"][:, None]
                 + t["extractor.bias.item"][None, :])
        Xq, Xk = X, X
        if self.enc == "positional":
            Xq = X + math.sqrt(E) * t["extractor.position.query"]
            Xk = X + math.sqrt(E) * t["extractor.position.key"]
        Q, K, V = Xq @ t["extractor.query.weight"].T, Xk @ t["extractor.key.weight"].T, \
            Xk @ t["extractor.value.weight"].T
        d = E // self.heads
        outs = []
        for h in range(self.heads):
            sl = slice(h * d, (h + 1) * d)
            S = (Q[:, sl] @ K[:, sl].T) * self.scale
            S[:, n:] = MASKED
            if self.blinding:
                S[range(T), range(T)] = MASKED
            A = torch.softmax(S, dim=-1)
            A[n:, :] = 0.0
            outs.append(A @ V[:, sl])
        R = torch.cat(outs, dim=1)
        if self.proj:
            R = R @ t["extractor.output.weight"].T
        R = R + Xq
        if self.ln_eps is not None:
            R = self._layer_norm(R)
        if self.ffn:
            F = torch.relu(R @ t["extractor.ffn.0.weight"].T) @ t["extractor.ffn.1.weight"].T
            R = R + F
            if self.ln_eps is not None:
                R = self._layer_norm(R)
        if self.pool_valid:
            return R[:n].mean(0) if n else torch.zeros(E, dtype=R.dtype)
        return R.mean(0)

    # -- interacting --------------------------------------------------------------------------
    def _direction(self, name, x):
        for l in range(self.layers):
            w = [self.t["interacting.%s.%s_l%d" % (name, k, l)]
                 for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            x = lstm_torch(x, w) if self.rec == "sigmoid" else lstm_explicit(x, w, hard_sigmoid)
        return x

    def _interacting(self, I, n):
        steps = n if self.steps_valid else self.K
        H = self.cfg["interacting"].get("hidden", self.E)
        W = 2 * H if self.merge == "concat" else H
        out = torch.zeros(self.K, W, dtype=I.dtype)
        if steps == 0:
            return out
        f = self._direction("forward", I[:steps])
        b = self._direction("backward", I[:steps].flip(0)).flip(0)
        out[:steps] = {"ave": lambda: (f + b) / 2, "concat": lambda: torch.cat([f, b], 1),
                       "sum": lambda: f + b, "mul": lambda: f * b, "fw": lambda: f,
                       "bw": lambda: b}[self.merge]()
        return out

    # -- units --------------------------------------------------------------------------------
    def _unit(self, block, q, keys, n):
        u = self.cfg[block]
        t = self.t
        if u.get("type", "din") == "bilinear":
            s = keys @ (t[block + ".bilinear.weight"] @ q)
        else:
            Kn = keys.shape[0]
            qq = q[None, :].expand(Kn, -1)
            z = torch.cat([qq, keys, qq - keys, qq * keys], 1)
            for i, layer in enumerate(u["layers"]):
                z = z @ t["%s.mlp.%d.weight" % (block, i)].T + t["%s.mlp.%d.bias" % (block, i)]
                a = layer["activation"]["type"]
                z = {"sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda v: v}[a](z)
            s = z @ t[block + ".out.weight"][0] + (t[block + ".out.bias"][0]
                                                    if u.get("out_bias", True) else 0.0)
        s = s.clone()
        if u.get("normalization", "softmax") == "softmax":
            s[n:] = MASKED
            w = torch.softmax(s, 0)
        else:
            s[n:] = 0.0
            w = s
        return w, w @ keys

    # -- whole model --------------------------------------------------------------------------
    def _forward(self, history, times, at, candidate, context, dense):
        history = history or []
        M = self.cfg["max_len"]
        history, times = history[-M:], (times or [])[-M:]
        keys = [self._embed(self.cfg["behaviour"], h) for h in history]
        sess = sessions(times, at, self.K, self.T, self.gap, self.min_length)
        n = len(sess)
        I = torch.stack([self._session(k, keys[sess[k][0]:sess[k][0] + sess[k][1]] if k < n else [],
                                       sess[k][1] if k < n else 0) for k in range(self.K)])
        q = self._embed(self.cfg["target"], candidate)
        a, UI = self._unit("session_attention", q, I, n)
        UH = None
        if self.lstm:
            _, UH = self._unit("interacting_attention", q, self._interacting(I, n), n)
        parts = []
        for name in self.cfg["tower"]["inputs"]:
            if name == "context":
                parts.append(torch.cat([self.t["fields.%s.weight" % f][context[i]]
                                        for i, f in enumerate(self.cfg["context"])]))
            elif name == "target":
                parts.append(q)
            elif name == "session_interest":
                parts.append(UI)
            elif name == "session_interacting":
                parts.append(UH)
            elif name == "dense":
                parts.append(torch.tensor(dense, dtype=torch.float64))
            else:
                raise ValueError(name)
        x = torch.cat(parts)
        for i, layer in enumerate(self.cfg["tower"].get("layers", [])):
            x = x @ self.t["tower.%d.weight" % i].T + self.t["tower.%d.bias" % i]
            x = {"relu": torch.relu, "sigmoid": torch.sigmoid, "linear": lambda v: v}[
                layer["activation"]["type"]](x)
        weights = [0.0] * len(history)
        for k, (s0, ln) in enumerate(sess):
            for j in range(s0, s0 + ln):
                weights[j] = float(a[k])
        return x, weights

    def hidden(self, *args):
        return self._forward(*args)[0]

    def score(self, history, times, at, candidate, context=None, dense=None):
        x, _ = self._forward(history, times, at, candidate, context, dense)
        logit = x @ self.t["head.weight"][0] + self.t["head.bias"][0]
        return float(torch.sigmoid(logit))

    def explain(self, history, times, at, candidate, context=None, dense=None):
        _, w = self._forward(history, times, at, candidate, context, dense)
        off = len(history or []) - len(w)
        return [(off + i + 1, v) for i, v in enumerate(w)]
