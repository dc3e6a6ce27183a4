"""BST as a trainable torch module over batches (docs/FORMAT.md "architecture bst"): the
behaviours, and the candidate when appended, with their positions through the transformer
blocks, then the read-out; every switch of the format. Ids, embeddings, the DIN unit of read-out
`attention`, tower and head are dinref.DinRef's, so a file it writes scores in din as the module
computes it in eval() mode.

A batch holds the behaviours in columns 0..M-1 (the first hist_len valid) and the appended
candidate in column M; invalid columns are masked keys, so they change no valid row.
"""

import math

import torch

import dinref

from .dsin import MASKED


def _slots(align, width, lengths, M):
    """[B, M] position slot of behaviour t of each row (FORMAT.md "index")."""
    t = torch.arange(M).unsqueeze(0)
    slot = t.expand(len(lengths), M) if align == "start" else width - lengths.unsqueeze(1) + t
    return slot.clamp(0, width - 1)


class BstModel(dinref.DinRef):
    """dinref.DinRef for architecture bst; logits() needs times and at when a position is a
    time gap. It has no attention_weights()."""

    Layout = dinref.BstLayout

    # -- parameters ---------------------------------------------------------------------------
    def _build(self):
        L = self.L
        tr, D = L.tr, L.H
        F = tr["ffn"]["units"]
        for k, p in enumerate(tr["positions"]):
            rows = (p["width"] + (1 if tr["target"] else 0) if p["type"] == "index"
                    else len(p["boundaries"]) + 1)
            dim = D if p["combine"] == "add" else p["dim"]
            self._add("transformer.positions.%d.weight" % k, torch.randn(rows, dim) * 0.02)
        for b in range(tr["blocks"]):
            pre = "transformer.blocks.%d." % b
            if tr["layout"] == "pytorch":
                bound = math.sqrt(6.0 / (D + D))  # nn.MultiheadAttention's xavier_uniform
                self._add(pre + "attention.in_proj_weight",
                          torch.empty(3 * D, D).uniform_(-bound, bound))
                self._add(pre + "attention.in_proj_bias", torch.zeros(3 * D))
                self._linear(pre + "attention.out_proj", D, D)
            else:
                for w in ("query", "key", "value"):
                    self._linear(pre + "attention." + w, D, D, bias=False)
            self._linear(pre + "ffn.0", F, D, tr["ffn"]["bias"])
            self._linear(pre + "ffn.1", D, F, tr["ffn"]["bias"])
            for n in (["norm"] if tr["shared_norm"] else ["norm1", "norm2"]):
                self._add(pre + n + ".weight", torch.ones(D))
                self._add(pre + n + ".bias", torch.zeros(D))
            if tr["block_positions"] is not None:
                W = tr["block_positions"]["width"]
                self._add(pre + "query_pe", torch.randn(W, D) * 0.02)
                self._add(pre + "key_pe", torch.randn(W, D) * 0.02)
        super()._build()

    # -- the sequence -------------------------------------------------------------------------
    def _sequence(self, X, q, lengths, times, at):
        """Rows [B, n, D]: X [B, M, E] the behaviours (then q appended when the transformer
        takes the target) with their concatenated and added positions."""
        tr = self.L.tr
        B, M, _ = X.shape
        if tr["target"]:
            X = torch.cat([X, q.unsqueeze(1)], 1)
        concat, add = [X], 0.0
        for k, p in enumerate(tr["positions"]):
            if p["type"] == "index":
                idx = _slots(p["align"], p["width"], lengths, M)
                if tr["target"]:
                    idx = torch.cat([idx, torch.full((B, 1), p["width"])], 1)
            else:
                if times is None or at is None:
                    raise ValueError("a time_gap position needs history_time and at in the rows")
                # din's gap: (at - time) in microseconds over 1e6, in double precision
                gap = (torch.as_tensor(at).unsqueeze(1) - torch.as_tensor(times)).double() / 1e6
                if tr["target"]:
                    gap = torch.cat([gap, torch.zeros(B, 1, dtype=gap.dtype)], 1)
                bounds = torch.tensor(p["boundaries"], dtype=torch.float64)
                idx = torch.searchsorted(bounds, gap.contiguous(), right=True)
            e = self.t("transformer.positions.%d.weight" % k)[idx] * p["scale"]
            if p["combine"] == "concat":
                concat.append(e)
            else:
                add = add + e
        return torch.cat(concat, -1) + add

    def _mha(self, pre, xq, xk, key_valid, query_valid):
        """Multi-head attention of the rows xq over xk [B, n, D]; masked keys score -2^32, and
        rows that are not query_valid (when given) get no attention output."""
        tr = self.L.tr
        B, n, D = xq.shape
        h = tr["heads"]
        if tr["layout"] == "pytorch":
            w, b = self.t(pre + "attention.in_proj_weight"), self.t(pre + "attention.in_proj_bias")
            Q = xq @ w[:D].t() + b[:D]
            K = xk @ w[D:2 * D].t() + b[D:2 * D]
            V = xk @ w[2 * D:].t() + b[2 * D:]
        else:
            Q = xq @ self.t(pre + "attention.query.weight").t()
            K = xk @ self.t(pre + "attention.key.weight").t()
            V = xk @ self.t(pre + "attention.value.weight").t()

        def heads(m):
            return m.view(B, n, h, D // h).transpose(1, 2)
        S = heads(Q) @ heads(K).transpose(-1, -2) / math.sqrt(D // h)
        A = torch.softmax(S.masked_fill(~key_valid.view(B, 1, 1, n), MASKED), -1)
        if query_valid is not None:
            A = A * query_valid.view(B, 1, n, 1).to(A.dtype)
        out = (A @ heads(V)).transpose(1, 2).reshape(B, n, D)
        if tr["layout"] == "pytorch":
            out = out @ self.t(pre + "attention.out_proj.weight").t() + \
                self.t(pre + "attention.out_proj.bias")
        return out

    def _block(self, b, X, key_valid, query_valid, slots):
        tr = self.L.tr
        D = X.shape[-1]
        pre = "transformer.blocks.%d." % b
        n1, n2 = (pre + "norm", pre + "norm") if tr["shared_norm"] else \
            (pre + "norm1", pre + "norm2")

        def ln(name, x):
            return torch.nn.functional.layer_norm(x, (D,), self.t(name + ".weight"),
                                                  self.t(name + ".bias"), tr["eps"])

        def ffn(x):
            h = self._run_layer(pre + "ffn.0", {"batch_norm": None,
                                                "activation": tr["ffn"]["activation"]}, x)
            y = h @ self.t(pre + "ffn.1.weight").t()
            return y + self.t(pre + "ffn.1.bias") if tr["ffn"]["bias"] else y
        xq = xk = X
        if tr["block_positions"] is not None:
            s = math.sqrt(D)
            xq = X + s * self.t(pre + "query_pe")[slots]
            xk = X + s * self.t(pre + "key_pe")[slots]
        if tr["norm"] == "post":
            R = ln(n1, self._mha(pre, xq, xk, key_valid, query_valid) + xq)
            return ln(n2, R + ffn(R))
        R = xq + self._mha(pre, ln(n1, xq), ln(n1, xk), key_valid, query_valid)
        return R + ffn(ln(n2, R))

    def _run_blocks(self, X, key_valid, query_valid, lengths):
        bp = self.L.tr["block_positions"]
        slots = None if bp is None else _slots(bp["align"], bp["width"], lengths, X.shape[1])
        for b in range(self.L.tr["blocks"]):
            X = self._block(b, X, key_valid, query_valid, slots)
        return X

    def _mean_all(self, k, mask, lengths):
        """DeepCTR's mean over its post-padded window of max_len slots: slot t >= T holds the
        padding key (row padding_row of every behaviour table) and is a masked key and query."""
        L = self.L
        B, M, E = k.shape
        W = L.max_len
        r = L.tr["padding_row"]
        pad = torch.cat([self.t("fields.%s.weight" % f)[r] for f in L.behaviour])
        X = torch.cat([k, k.new_zeros(B, W - M, E)], 1)
        valid = torch.arange(W).unsqueeze(0) < lengths.unsqueeze(1)
        X = torch.where(valid.unsqueeze(-1), X, pad)
        X = self._sequence(X, None, lengths, None, None)
        return self._run_blocks(X, valid, valid, lengths).mean(1)

    def _sources(self, srcs, need, q, k, mask, times, at):
        L = self.L
        tr = L.tr
        lengths = mask.sum(1)
        if tr["readout"] == "mean_all":
            srcs["interest"] = self._mean_all(k, mask, lengths)
            return None
        B, M = mask.shape
        valid = torch.cat([mask, torch.ones(B, 1, dtype=torch.bool)], 1) if tr["target"] else mask
        X = self._run_blocks(self._sequence(k, q, lengths, times, at), valid, None, lengths)
        if tr["readout"] == "target":
            u = X[:, M]
        elif tr["readout"] == "mean":
            # an empty history without the target gives 0, as din does
            w = valid.to(X.dtype).unsqueeze(-1)
            u = (X * w).sum(1) / valid.sum(1, keepdim=True).clamp_min(1).to(X.dtype)
        else:
            u, _ = self._attention(q, X[:, :M], mask)
        srcs["interest"] = u
        return None
