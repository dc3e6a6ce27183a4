"""How din-train trains: the papers' regularizers, DIEN's auxiliary loss and the training loop
over encoded rows (docs/TRAINING.md "The papers' techniques").

The model is dinref.DinRef (tools/dinref.py, the project's reading of docs/FORMAT.md) or its
subclass for dsin or bst (config.py), so the file it writes is scored by din exactly as the
module computes it in eval() mode.
"""

import numpy as np
import torch

import dinref

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


def aux_loss(model, aux, h, hist, hist_len, neg_hist):
    """For each step t whose next behaviour exists, BCE of aux(h_t, e_{t+1}) as clicked and
    aux(h_t, e'_{t+1}) as not, e' a sampled behaviour; mean over those steps (each term).
    h [B, T, H]: the extractor states of the batch (the model's forward leaves them)."""
    L = model.L
    T = hist.shape[1]
    if T < 2:
        return torch.zeros(())
    mask = torch.arange(T).unsqueeze(0) < hist_len.unsqueeze(1)
    k = model._embed(L.behaviour, hist)
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
        target, hist, hist_len, context, dense, times, at = self.enc.train.batch(idx)
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
        bce = model.loss(label, target, hist, hist_len, context, dense, times, at)
        loss = bce
        if o.mba > 0:
            rows = self.enc.field_rows(target, hist, hist_len, context)
            loss = loss + o.mba * mba_l2(model, rows, self.enc.counts)
        if o.l2 > 0:
            loss = loss + o.l2 * plain_l2(model, self.names)
        if self.aux is not None:
            pick = torch.randint(len(self.pool), hist.shape[:2], generator=self.gen)
            loss = loss + o.aux * aux_loss(model, self.aux, model.extractor_states, hist,
                                           hist_len, self.pool[pick])
        self.optim.zero_grad()
        loss.backward()
        self.optim.step()
        return float(bce)


def predict(model, rows, batch=4096):
    """Eval-mode click probabilities (running statistics, no dropout) of the model as stored,
    computed in float64: the exact values of its float32 weights, which din's float32 scoring
    must meet (torch's own float32 rounding would add as much error again)."""
    model = type(model)(model.config).load_tensors(model.tensors()).double().eval()
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
