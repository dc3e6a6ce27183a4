"""DSIN as a trainable torch module over batches (docs/FORMAT.md "architecture dsin"): session
division by time, the self-attention extractor, the Bi-LSTM across sessions and the two
activation units, every switch of the format. Ids, embeddings, layers, tower and head are
dinref.DinRef's, so a file it writes scores in din as the module computes it in eval() mode.

In train() mode the units' batch statistics (Dice, batch norm) are taken over the valid
sessions only, as DinRef's attention takes them over the valid behaviours.
"""

import math

import torch

import dinref

from .data import NO_AT

# The score of a masked key or session: DeepCTR's -2^32 + 1 as float32 rounds it, as din uses it.
MASKED = -4294967296.0


def sessions(mask, times, at, count, length, gap_us, min_length):
    """din's session division (FORMAT.md "sessions") of a batch: (index [B, count, length] of
    the behaviour in each session slot, -1 where the session is padded; n [B] the valid
    sessions). mask [B, M] the kept behaviours, times [B, M] int64 microseconds, at [B]."""
    B, M = mask.shape
    index = torch.full((B, count * length + 1), -1, dtype=torch.long)
    if M == 0:
        return index[:, :-1].view(B, count, length), torch.zeros(B, dtype=torch.long)
    steps = torch.arange(M)
    # behaviours at or after `at` are ignored; times are in order, so they are a tail
    valid = mask & (times < at.unsqueeze(1))
    prev = torch.cat([times[:, :1], times[:, :-1]], 1)
    new = valid & ((steps == 0) | (times - prev > gap_us))
    # sessions numbered from the oldest; invalid steps go to a spare column M
    sid = torch.where(valid, new.long().cumsum(1) - 1, torch.full_like(times, M))
    size = torch.zeros(B, M + 1, dtype=torch.long).scatter_add_(1, sid, valid.long())[:, :M]
    kept = size >= max(min_length, 1)
    # rank among the kept sessions, the most recent first
    newer = kept.flip(1).long().cumsum(1).flip(1) - kept.long()
    slot = torch.where(kept & (newer < count), newer, torch.full_like(newer, -1))
    n = (slot >= 0).sum(1)
    # each kept session keeps its last `length` behaviours, in time order
    s = sid.clamp_max(M - 1)
    last = (size.cumsum(1) - 1).gather(1, s)
    from_end = last - steps
    k = slot.gather(1, s)
    take = valid & (k >= 0) & (from_end < length)
    j = size.gather(1, s).clamp_max(length) - 1 - from_end
    flat = torch.where(take, k * length + j, torch.full_like(k, count * length))
    index.scatter_(1, flat, steps.expand(B, M).clone())
    return index[:, :-1].view(B, count, length), n


class DsinLayout(dinref._Layout):
    """Tower inputs session_interest (E wide) and session_interacting (the merged Bi-LSTM
    outputs), and every dsin key with its default."""

    def __init__(self, config):
        super().__init__(config)
        s, x, it = config["sessions"], config["extractor"], config["interacting"]
        E = self.E
        self.K, self.T = s["count"], s["length"]
        self.gap = s.get("gap", 1800) * 1000000
        self.min_length = s.get("min_length", 1)
        self.heads = x["heads"]
        self.encoding = x.get("encoding", "positional")
        scale_width = E if x.get("scale", "head") == "model" else E // self.heads
        self.att_scale = 1.0 / math.sqrt(scale_width)
        self.blinding = x.get("blinding", True)
        self.projection = x.get("output_projection", False)
        ln = x.get("layer_norm")
        self.ln_eps = None if ln is None else ln.get("eps", 1e-9)
        self.ffn = x.get("feed_forward", True)
        self.pool_valid = x.get("pooling", "mean_all") == "mean_valid"
        self.lstm = it["type"] == "bilstm"
        if self.lstm:
            self.lstm_hidden = it.get("hidden", E)
            self.lstm_layers = it.get("layers", 1)
            self.merge = it.get("merge", "concat")
            self.hard_sigmoid = it["recurrent_activation"] == "hard_sigmoid"
            self.steps_valid = it.get("steps", "all") == "valid"
        self.units = {}
        for block in ("session_attention",) + (("interacting_attention",) if self.lstm else ()):
            u = config[block]
            self.units[block] = {
                "bilinear": u.get("type", "din") == "bilinear",
                "layers": _specs(u), "out_bias": u.get("out_bias", True),
                "softmax": u.get("normalization", "softmax") == "softmax"}

    def interacting_width(self):
        """W, the width of the merged Bi-LSTM outputs (read from the config: the base class
        asks for the tower's input widths before this class has read its keys)."""
        it = self.config["interacting"]
        H = it.get("hidden", self.E)
        return 2 * H if it.get("merge", "concat") == "concat" else H

    def input_slice(self, name):
        if name == "session_interest":
            return name, 0, self.E
        if name == "session_interacting":
            return name, 0, self.interacting_width()
        return super().input_slice(name)


def _specs(unit):
    return dinref._layer_specs(unit.get("layers", [])) if unit.get("type", "din") == "din" else []


class DsinModel(dinref.DinRef):
    """dinref.DinRef for architecture dsin; logits() needs times (and at, else every
    behaviour counts). It has no attention_weights()."""

    Layout = DsinLayout

    # -- parameters ---------------------------------------------------------------------------
    def _build(self):
        L = self.L
        E, T, K = L.E, L.T, L.K
        for w in ("query", "key", "value"):
            self._linear("extractor." + w, E, E, bias=False)
        if L.projection:
            self._linear("extractor.output", E, E, bias=False)
        if L.encoding == "positional":
            self._add("extractor.position.query", torch.randn(T, E) * 0.02)
            self._add("extractor.position.key", torch.randn(T, E) * 0.02)
        elif L.encoding == "bias":
            self._add("extractor.bias.session", torch.zeros(K))
            self._add("extractor.bias.position", torch.zeros(T))
            self._add("extractor.bias.item", torch.zeros(E))
        if L.ffn:
            self._linear("extractor.ffn.0", 4 * E, E, bias=False)
            self._linear("extractor.ffn.1", E, 4 * E, bias=False)
        if L.ln_eps is not None:
            self._add("extractor.layer_norm.weight", torch.ones(E))
            self._add("extractor.layer_norm.bias", torch.zeros(E))
        if L.lstm:
            H = L.lstm_hidden
            b = 1.0 / math.sqrt(H)
            for d in ("forward", "backward"):
                for layer in range(L.lstm_layers):
                    inp = E if layer == 0 else H
                    for name, shape in (("weight_ih", (4 * H, inp)), ("weight_hh", (4 * H, H)),
                                        ("bias_ih", (4 * H,)), ("bias_hh", (4 * H,))):
                        self._add("interacting.%s.%s_l%d" % (d, name, layer),
                                  torch.empty(*shape).uniform_(-b, b))
        for block, u in L.units.items():
            width = E if block == "session_attention" else L.interacting_width()
            if u["bilinear"]:
                self._add(block + ".bilinear.weight", torch.randn(width, E) / math.sqrt(E))
            else:
                last = self._mlp(block + ".mlp", u["layers"], 4 * E)
                self._linear(block + ".out", 1, last, u["out_bias"])
        super()._build()

    # -- the extractor ------------------------------------------------------------------------
    def _layer_norm(self, x):
        return torch.nn.functional.layer_norm(
            x, x.shape[-1:], self.t("extractor.layer_norm.weight"),
            self.t("extractor.layer_norm.bias"), self.L.ln_eps)

    def _session_rows(self, k, index):
        """X [B, K, T, E]: the behaviours of each session slot, the padding behaviour (row 0 of
        every behaviour table) where the session is shorter or missing."""
        L = self.L
        B = index.shape[0]
        pad = torch.cat([self.t("fields.%s.weight" % f)[0] for f in L.behaviour])
        flat = index.view(B, -1)
        if k.shape[1] == 0:
            return pad.expand(B, L.K, L.T, L.E)
        X = k[torch.arange(B).unsqueeze(1), flat.clamp_min(0)]
        return torch.where((flat >= 0).unsqueeze(-1), X, pad).view(B, L.K, L.T, L.E)

    def _extract(self, X, lengths):
        """I [B, K, E]: each session through the self-attention block, pooled. lengths [B, K]."""
        L = self.L
        B, K, T, E = X.shape
        h = L.heads
        if L.encoding == "bias":
            X = (X + self.t("extractor.bias.session").view(1, K, 1, 1)
                 + self.t("extractor.bias.position").view(1, 1, T, 1)
                 + self.t("extractor.bias.item"))
        Xq = Xk = X
        if L.encoding == "positional":
            Xq = X + math.sqrt(E) * self.t("extractor.position.query")
            Xk = X + math.sqrt(E) * self.t("extractor.position.key")

        def heads(m):
            return m.view(B, K, T, h, E // h).transpose(2, 3)
        Q = heads(Xq @ self.t("extractor.query.weight").t())
        Kh = heads(Xk @ self.t("extractor.key.weight").t())
        V = heads(Xk @ self.t("extractor.value.weight").t())
        S = (Q @ Kh.transpose(-1, -2)) * L.att_scale
        row_valid = torch.arange(T).view(1, 1, T) < lengths.unsqueeze(-1)  # [B, K, T]
        masked = ~row_valid.view(B, K, 1, 1, T)
        if L.blinding:
            masked = masked | torch.eye(T, dtype=torch.bool)
        A = torch.softmax(S.masked_fill(masked, MASKED), -1)
        # padded query rows attend to nothing
        A = A * row_valid.view(B, K, 1, T, 1).to(A.dtype)
        R = (A @ V).transpose(2, 3).reshape(B, K, T, E)
        if L.projection:
            R = R @ self.t("extractor.output.weight").t()
        R = R + Xq
        if L.ln_eps is not None:
            R = self._layer_norm(R)
        if L.ffn:
            R = R + torch.relu(R @ self.t("extractor.ffn.0.weight").t()) @ \
                self.t("extractor.ffn.1.weight").t()
            if L.ln_eps is not None:
                R = self._layer_norm(R)
        if not L.pool_valid:
            return R.mean(2)
        w = row_valid.to(R.dtype).unsqueeze(-1)
        return (R * w).sum(2) / lengths.clamp_min(1).unsqueeze(-1).to(R.dtype)

    # -- the interacting layer ----------------------------------------------------------------
    def _lstm(self, prefix, layer, x):
        """One LSTM over the steps of x [B, S, in] from the zero state: [B, S, H]."""
        def w(name):
            return self.t("%s.%s_l%d" % (prefix, name, layer))
        gx = x @ w("weight_ih").t() + w("bias_ih") + w("bias_hh")
        H = w("weight_hh").shape[1]
        h = c = x.new_zeros(x.shape[0], H)
        rec = (lambda v: torch.clamp(0.2 * v + 0.5, 0.0, 1.0)) if self.L.hard_sigmoid \
            else torch.sigmoid
        out = []
        for s in range(x.shape[1]):
            i, f, g, o = (gx[:, s] + h @ w("weight_hh").t()).chunk(4, -1)
            c = rec(f) * c + rec(i) * torch.tanh(g)
            h = rec(o) * torch.tanh(c)
            out.append(h)
        return torch.stack(out, 1)

    def _interacting(self, I, n):
        """The merged Bi-LSTM outputs [B, K, W] over the session interests I [B, K, E]."""
        L = self.L
        B, K, _ = I.shape
        k = torch.arange(K).unsqueeze(0).expand(B, K)
        steps = n.unsqueeze(1) if L.steps_valid else torch.full((B, 1), K)
        # the backward direction runs from the last step back: reverse each row's steps
        reverse = torch.where(k < steps, steps - 1 - k, k)
        outs = []
        for d, order in (("forward", None), ("backward", reverse)):
            x = I if order is None else I.gather(1, order.unsqueeze(-1).expand_as(I))
            for layer in range(L.lstm_layers):
                x = self._lstm("interacting." + d, layer, x)
            outs.append(x if order is None else x.gather(1, order.unsqueeze(-1).expand_as(x)))
        f, b = outs
        merged = {"ave": lambda: (f + b) / 2, "concat": lambda: torch.cat([f, b], -1),
                  "sum": lambda: f + b, "mul": lambda: f * b, "fw": lambda: f,
                  "bw": lambda: b}[L.merge]()
        return merged * (k < steps).unsqueeze(-1).to(merged.dtype)

    # -- the units ----------------------------------------------------------------------------
    def _unit(self, block, q, keys, n):
        """(pooled [B, W], weights [B, K]) of unit block over keys [B, K, W] for q [B, E]."""
        u = self.L.units[block]
        B, K, W = keys.shape
        valid = torch.arange(K).unsqueeze(0) < n.unsqueeze(1)
        if u["bilinear"]:
            s = torch.einsum("bkw,we,be->bk", keys, self.t(block + ".bilinear.weight"), q)
        else:
            qq = q.unsqueeze(1).expand(B, K, W)
            z = torch.cat([qq, keys, qq - keys, qq * keys], -1)[valid]
            o = self._run_mlp(block + ".mlp", u["layers"], z) @ self.t(block + ".out.weight").t()
            if u["out_bias"]:
                o = o + self.t(block + ".out.bias")
            s = torch.zeros(B, K, dtype=keys.dtype).masked_scatter(valid, o.squeeze(-1))
        if u["softmax"]:
            # with no valid session every score ties: 1/K each, as din and DeepCTR do
            w = torch.softmax(s.masked_fill(~valid, MASKED), 1)
        else:
            w = s * valid.to(s.dtype)
        return (w.unsqueeze(-1) * keys).sum(1), w

    def _sources(self, srcs, need, q, k, mask, times, at):
        L = self.L
        B, M = mask.shape
        if M > 0 and times is None:
            raise ValueError("architecture dsin divides the history into sessions by time: the "
                             "rows need history_time")
        times = torch.zeros(B, M, dtype=torch.long) if times is None else torch.as_tensor(times)
        at = torch.full((B,), int(NO_AT)) if at is None else torch.as_tensor(at)
        index, n = sessions(mask, times, at, L.K, L.T, L.gap, L.min_length)
        I = self._extract(self._session_rows(k, index), (index >= 0).sum(-1))
        srcs["session_interest"], _ = self._unit("session_attention", q, I, n)
        if L.lstm:
            srcs["session_interacting"], _ = self._unit("interacting_attention", q,
                                                        self._interacting(I, n), n)
        return None
