"""What din-train does without a database: vocabularies, encoding, the model's config, the
papers' regularizers, DIEN's auxiliary loss and the training loop (docs/TRAINING.md).

The model is dinref.DinRef (tools/dinref.py), the project's reading of docs/FORMAT.md, so the
file it writes is scored by din exactly as the module computes it in eval() mode.
"""

import numpy as np
import torch

import dinref

SUPPORTED = ("base", "din", "dien")
# Architectures of the format this trainer cannot train yet: a clear error, not a wrong model.
NOT_YET = ("dsin", "bst")

ACTIVATIONS = {
    # The DIN paper's Dice: batch statistics in training, running averages at inference
    # (docs/FORMAT.md "Layers and activations", stats "running"), no affine step.
    "dice": {"type": "dice", "eps": 1e-8, "stats": "running", "affine": False},
    "prelu": {"type": "prelu"},
    "relu": {"type": "relu"},
    "sigmoid": {"type": "sigmoid"},
}


class Vocab:
    """Raw ids -> table rows (sorted raw ids) with n_j, the occurrences of each in training."""

    def __init__(self, occurrences):
        raw = np.asarray(occurrences, dtype=np.int64).reshape(-1)
        self.ids, self.counts = np.unique(raw, return_counts=True)
        self.index = {int(r): i for i, r in enumerate(self.ids)}

    def __len__(self):
        return len(self.ids)

    def row(self, raw):
        """The row of a raw id, -1 (din's oov "zero": the zero vector) when unknown."""
        return -1 if raw is None else self.index.get(int(raw), -1)


class Rows:
    """Rows of the documented columns (dicts: history, ad_id, label, and optionally context,
    dense, user_id) as arrays of table rows, as din maps raw ids."""

    def __init__(self, target, hist, hist_len, context, dense, label, user):
        self.target, self.hist, self.hist_len = target, hist, hist_len
        self.context, self.dense, self.label, self.user = context, dense, label, user

    def __len__(self):
        return len(self.label)

    def batch(self, idx):
        return (self.target[idx], self.hist[idx], self.hist_len[idx], self.context[idx],
                self.dense[idx])


class Encoder:
    """Vocabularies built from the training rows, and the mapping of any rows through them.

    items: {raw item id: [raw attribute ids]} with attribute names attr_names (the items
    table of the model), or None. Context position c is field context_names[c].
    """

    def __init__(self, train_rows, max_len, items=None, attr_names=(), context_names=None):
        self.max_len = max_len
        self.items = items or {}
        self.attr_names = list(attr_names)
        first = train_rows[0] if train_rows else {}
        n_ctx = len(first.get("context") or [])
        self.context_names = list(context_names or ["context%d" % c for c in range(n_ctx)])
        if len(self.context_names) != n_ctx:
            raise ValueError("%d context names for %d context elements"
                             % (len(self.context_names), n_ctx))
        self.dense = len(first.get("dense") or [])
        seen = []
        for r in train_rows:
            seen.append(r["ad_id"])
            seen.extend(self._kept(r["history"]))
        self.item_vocab = Vocab(seen)
        # Attributes of the items the model knows; an attribute met only on unknown items
        # would be an untrained row.
        self.attr_vocabs = [Vocab([self.items[i][a] for i in self.item_vocab.ids.tolist()
                                   if i in self.items] or np.zeros(0))
                            for a in range(len(self.attr_names))]
        self.ctx_vocabs = [Vocab([r["context"][c] for r in train_rows]) for c in range(n_ctx)]
        self._cache = {}
        self.train = self.encode(train_rows)
        # n_j: occurrences of each row in the encoded training data (MBA's 1/n_j).
        self.counts = {}
        for name, rows in self.field_rows(self.train.target, self.train.hist,
                                          self.train.hist_len, self.train.context).items():
            self.counts[name] = np.bincount(rows[rows >= 0], minlength=self.rows(name))

    def _kept(self, history):
        return list(history or [])[-self.max_len:]  # din keeps the most recent max_len

    def fields(self):
        """[(name, vocab)] of every embedding table, in config order."""
        out = [("item", self.item_vocab)]
        out += list(zip(self.attr_names, self.attr_vocabs))
        out += list(zip(self.context_names, self.ctx_vocabs))
        return out

    def rows(self, name):
        return len(dict(self.fields())[name])

    def item_rows(self, raw):
        """(item row, attribute rows...) of a raw item id, as din looks them up."""
        r = self._cache.get(raw)
        if r is None:
            attrs = self.items.get(raw)
            r = (self.item_vocab.row(raw),) + tuple(
                v.row(attrs[a] if attrs is not None else None)
                for a, v in enumerate(self.attr_vocabs))
            self._cache[raw] = r
        return r

    def encode(self, rows):
        n, S, T = len(rows), 1 + len(self.attr_names), self.max_len
        target = np.zeros((n, S), np.int64)
        hist = np.full((n, T, S), -1, np.int64)
        hist_len = np.zeros(n, np.int64)
        context = np.zeros((n, len(self.ctx_vocabs)), np.int64)
        dense = np.zeros((n, self.dense), np.float32)
        label = np.zeros(n, np.float32)
        user = np.zeros(n, np.int64)
        for i, r in enumerate(rows):
            target[i] = self.item_rows(r["ad_id"])
            kept = self._kept(r["history"])
            if kept:
                hist[i, :len(kept)] = [self.item_rows(h) for h in kept]
            hist_len[i] = len(kept)
            for c, v in enumerate(self.ctx_vocabs):
                context[i, c] = v.row(r["context"][c])
            if self.dense:
                dense[i] = r["dense"]
            label[i] = float(r["label"])
            user[i] = r.get("user_id") or 0
        t = torch.from_numpy
        return Rows(t(target), t(hist), t(hist_len), t(context), t(dense), t(label), user)

    def field_rows(self, target, hist, hist_len, context):
        """{field: every row a batch looks up} (-1 where the zero vector is used)."""
        T = hist.shape[1]
        valid = torch.arange(T).unsqueeze(0) < torch.as_tensor(hist_len).unsqueeze(1)
        out = {}
        names = ["item"] + self.attr_names
        for s, name in enumerate(names):
            out[name] = torch.cat([torch.as_tensor(target)[:, s],
                                   torch.as_tensor(hist)[:, :, s][valid]])
        for c, name in enumerate(self.context_names):
            out[name] = torch.as_tensor(context)[:, c]
        return {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in out.items()}

    def items_tensors(self):
        """(ids, attributes) of the model's items table, or None without attributes."""
        if not self.attr_names:
            return None
        ids = sorted(self.items)
        return (np.array(ids, np.int64),
                np.array([self.items[i] for i in ids], np.int64).reshape(len(ids),
                                                                          len(self.attr_names)))

    def vocab_tensors(self):
        return {name: v.ids for name, v in self.fields()}


def layers(units, act):
    return [{"units": u, "activation": dict(ACTIVATIONS[act])} for u in units]


def make_config(arch, enc, dim=8, attention=(80, 40), attention_act="dice", tower=(200, 80),
                tower_act="prelu"):
    """A docs/FORMAT.md config for the encoder's tables. Unknown ids embed as zero."""
    if arch in NOT_YET:
        raise ValueError("din-train cannot train architecture %s yet (supported: %s)"
                         % (arch, ", ".join(SUPPORTED)))
    if arch not in SUPPORTED:
        raise ValueError("unknown architecture %s (supported: %s)" % (arch, ", ".join(SUPPORTED)))
    slots = ["item"] + enc.attr_names
    for name, v in enc.fields():
        if len(v) == 0:
            raise ValueError("field %s has no id in the training rows" % name)
    cfg = {
        "format": 1,
        "architecture": arch,
        "max_len": enc.max_len,
        "fields": [{"name": name, "rows": len(v), "dim": dim, "oov": "zero"}
                   for name, v in enc.fields()],
        "item": {"attributes": enc.attr_names},
        "target": slots,
        "behaviour": slots,
        "context": enc.context_names,
        "dense": enc.dense,
    }
    inputs = (["context"] if enc.context_names else []) + ["target"]
    if arch == "base":
        # Embedding&MLP: sum pooling of the behaviours (DIN paper section 4.2).
        inputs.append("history_sum")
    elif arch == "din":
        cfg["attention"] = {"type": "din", "layers": layers(attention, attention_act),
                            "normalization": "none"}
        inputs.append("attention")
    else:
        E = dim * len(slots)
        # H = E: the attention unit reads [q, h_t, q-h_t, q*h_t] without a projection.
        cfg["sequence"] = {"type": "gru", "hidden": E, "convention": "pytorch"}
        cfg["attention"] = {"type": "din", "layers": layers(attention, attention_act),
                            "normalization": "softmax"}
        cfg["evolution"] = {"type": "augru", "form": "paper", "convention": "pytorch"}
        inputs.append("interest")
    if enc.dense:
        inputs.append("dense")
    cfg["tower"] = {"inputs": inputs, "layers": layers(tower, tower_act),
                    "head": {"type": "sigmoid", "bias": True}}
    return cfg


def build_model(cfg, enc):
    return dinref.DinRef(cfg, items=enc.items_tensors(), vocab=enc.vocab_tensors())


# ---------------------------------------------------------------------------------------------
# Regularizers (DIN paper section 4.3) and DIEN's auxiliary loss (DIEN paper Eq. 6-7)
# ---------------------------------------------------------------------------------------------

def mba_l2(model, batch_rows, counts):
    """Mini-batch aware L2: sum over the fields' rows j used in the batch of
    ||w_j||^2 / n_j (each row once however often it occurs; n_j its training count)."""
    total = 0.0
    for name, rows in batch_rows.items():
        r = np.unique(rows[rows >= 0])
        if len(r) == 0:
            continue
        w = model.t("fields.%s.weight" % name)[torch.from_numpy(r)]
        n = torch.as_tensor(counts[name][r], dtype=w.dtype)
        total = total + ((w * w).sum(1) / n).sum()
    return total


def plain_l2(model, names):
    """Plain L2 on every row of the embedding tables, whether the batch uses it or not."""
    return sum((model.t("fields.%s.weight" % n) ** 2).sum() for n in names)


class AuxNet(torch.nn.Module):
    """DIEN's auxiliary net on [h_t, e]: 100-50 sigmoid, a logit (the DIEN repo's sizes).
    Training only: it is not part of the model file (docs/FORMAT.md "Training-only parts")."""

    def __init__(self, H, E):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(H + E, 100), torch.nn.Sigmoid(),
                                       torch.nn.Linear(100, 50), torch.nn.Sigmoid(),
                                       torch.nn.Linear(50, 1))

    def forward(self, h, e):
        return self.net(torch.cat([h, e], -1)).squeeze(-1)


def aux_loss(model, aux, hist, hist_len, neg_hist):
    """For each step t whose next behaviour exists, BCE of aux(h_t, e_{t+1}) as clicked and
    aux(h_t, e'_{t+1}) as not, e' a sampled behaviour; mean over those steps (each term)."""
    L = model.L
    T = hist.shape[1]
    if T < 2:
        return torch.zeros(())
    mask = torch.arange(T).unsqueeze(0) < hist_len.unsqueeze(1)
    k = model._embed(L.behaviour, hist)
    h, _ = model._run_gru("sequence.gru", L.seq_conv, k, mask)
    nxt = mask[:, 1:]
    if not bool(nxt.any()):
        return torch.zeros(())
    hs = h[:, :-1][nxt]
    pos = aux(hs, k[:, 1:][nxt])
    neg = aux(hs, model._embed(L.behaviour, neg_hist)[:, 1:][nxt])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return bce(pos, torch.ones_like(pos)) + bce(neg, torch.zeros_like(neg))


class Options:
    """Training settings (the din-train flags)."""

    def __init__(self, epochs=2, batch_size=256, lr=1e-3, mba=0.0, l2=0.0, dropout=0.0,
                 aux=0.0, seed=0):
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.mba, self.l2, self.dropout, self.aux, self.seed = mba, l2, dropout, aux, seed


class Trainer:
    """Adam on the mean BCE plus the chosen regularizers; one epoch at a time."""

    def __init__(self, model, enc, opt):
        self.model, self.enc, self.o = model, enc, opt
        self.gen = torch.Generator().manual_seed(opt.seed)
        self.aux = None
        params = list(model.parameters())
        if opt.aux > 0:
            if model.L.arch != "dien":
                raise ValueError("the auxiliary loss needs architecture dien")
            self.aux = AuxNet(model.L.H, model.L.E)
            params += list(self.aux.parameters())
        self.optim = torch.optim.Adam(params, lr=opt.lr)
        # Negatives are drawn from the behaviours and ads of the training data, so by frequency.
        tr = enc.train
        valid = torch.arange(tr.hist.shape[1]).unsqueeze(0) < tr.hist_len.unsqueeze(1)
        self.pool = torch.cat([tr.target, tr.hist[valid]])
        self.names = [n for n, _ in enc.fields()]

    def batches(self):
        n = len(self.enc.train)
        perm = torch.randperm(n, generator=self.gen)
        return [perm[i:i + self.o.batch_size] for i in range(0, n, self.o.batch_size)]

    def step(self, idx):
        """One update on the rows idx; returns the batch's BCE (without the penalties)."""
        o, model = self.o, self.model
        model.train()
        if self.aux is not None:
            self.aux.train()
        target, hist, hist_len, context, dense = self.enc.train.batch(idx)
        label = self.enc.train.label[idx]
        if o.dropout > 0:
            # The DIN paper's dropout: each behaviour and context id of a sample is dropped
            # (embedded as zero) with probability p.
            hist = hist.clone()
            drop = torch.rand(hist.shape[:2], generator=self.gen) < o.dropout
            hist[drop] = -1
            if context.shape[1]:
                context = context.masked_fill(
                    torch.rand(context.shape, generator=self.gen) < o.dropout, -1)
        bce = model.loss(label, target, hist, hist_len, context, dense)
        loss = bce
        if o.mba > 0:
            rows = self.enc.field_rows(target, hist, hist_len, context)
            loss = loss + o.mba * mba_l2(model, rows, self.enc.counts)
        if o.l2 > 0:
            loss = loss + o.l2 * plain_l2(model, self.names)
        if self.aux is not None:
            pick = torch.randint(len(self.pool), hist.shape[:2], generator=self.gen)
            loss = loss + o.aux * aux_loss(model, self.aux, hist, hist_len, self.pool[pick])
        self.optim.zero_grad()
        loss.backward()
        self.optim.step()
        return float(bce)


def predict(model, rows, batch=4096):
    """Eval-mode click probabilities in float64 (running statistics, no dropout)."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            idx = torch.arange(i, min(i + batch, len(rows)))
            out.append(model.prob(*rows.batch(idx)).double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def model_bytes(model, cfg):
    return dinref.encode_model(cfg, model.tensors())


def relative_difference(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-30)))
