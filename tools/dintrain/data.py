"""din-train's rows as tensors: vocabularies built from the training rows, and every row's raw
ids mapped to table rows as din maps them (docs/TRAINING.md "The rows"). Vectorized over all
rows: the only per-row Python work is slicing each history to its kept tail.
"""

from itertools import chain

import numpy as np
import torch

# `at` of a row without one: every behaviour counts (din_score uses the statement's time).
NO_AT = np.iinfo(np.int64).max


class Vocab:
    """Raw ids -> table rows: the sorted distinct raw ids."""

    def __init__(self, occurrences):
        self.ids = np.unique(np.asarray(occurrences, dtype=np.int64).reshape(-1))

    def __len__(self):
        return len(self.ids)

    def rows(self, raw):
        """The rows of raw ids (an array), -1 (din's oov "zero": the zero vector) where unknown."""
        raw = np.asarray(raw, dtype=np.int64)
        if len(self.ids) == 0:
            return np.full(raw.shape, -1, np.int64)
        i = np.minimum(np.searchsorted(self.ids, raw), len(self.ids) - 1)
        return np.where(self.ids[i] == raw, i, -1)


class Rows:
    """Encoded rows: target [n, S], hist [n, max_len, S] (-1 = zero vector; the first hist_len
    valid, oldest first), hist_len [n], context [n, C], dense [n, D], label [n], user [n], and
    when the architecture reads time times [n, max_len] (history_time of the kept behaviours,
    int64 microseconds) and at [n]."""

    def __init__(self, target, hist, hist_len, context, dense, label, user, times, at):
        self.target, self.hist, self.hist_len = target, hist, hist_len
        self.context, self.dense, self.label, self.user = context, dense, label, user
        self.times, self.at = times, at

    def __len__(self):
        return len(self.label)

    def batch(self, idx):
        """The model's inputs for rows idx, in DinRef.logits' order."""
        return (self.target[idx], self.hist[idx], self.hist_len[idx], self.context[idx],
                self.dense[idx], None if self.times is None else self.times[idx],
                None if self.at is None else self.at[idx])


def _tails(lists, n):
    """(the last n elements of every list, flattened, as int64; how many each gave)."""
    lists = [x or [] for x in lists]
    kept = np.array([min(len(x), n) for x in lists], np.int64)
    flat = np.fromiter(chain.from_iterable(x[len(x) - k:] for x, k in zip(lists, kept)),
                       np.int64, count=int(kept.sum()))
    return flat, kept


class Encoder:
    """Vocabularies built from the training rows, and the mapping of any rows through them.

    Rows are dicts of the documented columns (history, ad_id, label; optionally context,
    dense, user_id, and history_time and at as int64 microseconds). items: {raw item id:
    [raw attribute ids]} with attribute names attr_names (the items table of the model), or
    None. Context position c is field context_names[c]. times: keep history_time and at (the
    architecture reads them); ordered: refuse a history_time that goes back, as din's session
    division does.
    """

    def __init__(self, train_rows, max_len, items=None, attr_names=(), context_names=None,
                 times=False, ordered=False):
        self.max_len = max_len
        self.items = items or {}
        self.attr_names = list(attr_names)
        self.times, self.ordered = times, ordered
        ids = sorted(self.items)
        self.item_table = (np.array(ids, np.int64),
                           np.array([self.items[i] for i in ids], np.int64).reshape(
                               len(ids), len(self.attr_names)))
        first = train_rows[0] if train_rows else {}
        n_ctx = len(first.get("context") or [])
        self.context_names = list(context_names or ["context%d" % c for c in range(n_ctx)])
        if len(self.context_names) != n_ctx:
            raise ValueError("%d context names for %d context elements"
                             % (len(self.context_names), n_ctx))
        self.dense = len(first.get("dense") or [])
        flat, _ = _tails([r["history"] for r in train_rows], max_len)
        self.item_vocab = Vocab(np.concatenate([[r["ad_id"] for r in train_rows], flat]))
        # Attributes of the items the model knows; an attribute met only on unknown items
        # would be an untrained row.
        known = np.isin(self.item_table[0], self.item_vocab.ids)
        self.attr_vocabs = [Vocab(self.item_table[1][known, a])
                            for a in range(len(self.attr_names))]
        self.ctx_vocabs = [Vocab([r["context"][c] for r in train_rows]) for c in range(n_ctx)]
        self.train = self.encode(train_rows, "training row")
        # n_j: occurrences of each row in the encoded training data (MBA's 1/n_j).
        self.counts = {}
        for name, rows in self.field_rows(self.train.target, self.train.hist,
                                          self.train.hist_len, self.train.context).items():
            self.counts[name] = np.bincount(rows[rows >= 0], minlength=self.rows(name))

    def fields(self):
        """[(name, vocab)] of every embedding table, in config order."""
        out = [("item", self.item_vocab)]
        out += list(zip(self.attr_names, self.attr_vocabs))
        out += list(zip(self.context_names, self.ctx_vocabs))
        return out

    def rows(self, name):
        return len(dict(self.fields())[name])

    def item_rows(self, raw):
        """[m, S]: the item row, then the attribute rows, of raw item ids [m], as din looks
        them up (an item missing from the items table has every attribute unknown)."""
        raw = np.asarray(raw, np.int64)
        out = np.full((len(raw), 1 + len(self.attr_names)), -1, np.int64)
        out[:, 0] = self.item_vocab.rows(raw)
        table, attrs = self.item_table
        if self.attr_names and len(table):
            i = np.minimum(np.searchsorted(table, raw), len(table) - 1)
            found = table[i] == raw
            for a, v in enumerate(self.attr_vocabs):
                out[found, 1 + a] = v.rows(attrs[i[found], a])
        return out

    def encode(self, rows, what="row"):
        """Rows of the documented columns as tensors; what names a row in errors."""
        n, T = len(rows), self.max_len
        flat, kept = _tails([r["history"] for r in rows], T)
        row = np.repeat(np.arange(n), kept)
        pos = np.arange(len(flat)) - np.repeat(np.cumsum(kept) - kept, kept)
        hist = np.full((n, T, 1 + len(self.attr_names)), -1, np.int64)
        hist[row, pos] = self.item_rows(flat)
        target = self.item_rows([r["ad_id"] for r in rows])
        context = np.zeros((n, len(self.ctx_vocabs)), np.int64)
        ctx = self._same_width(rows, "context", len(self.ctx_vocabs), what)
        for c, v in enumerate(self.ctx_vocabs):
            context[:, c] = v.rows(ctx[:, c])
        dense = self._same_width(rows, "dense", self.dense, what).astype(np.float32)
        label = np.array([float(r["label"]) for r in rows], np.float32)
        user = np.array([r.get("user_id") or 0 for r in rows], np.int64)
        times = at = None
        if self.times:
            times = np.zeros((n, T), np.int64)
            times[row, pos] = self._times(rows, flat, kept, what)
            at = np.array([NO_AT if r.get("at") is None else r["at"] for r in rows], np.int64)
        t = torch.from_numpy
        return Rows(t(target), t(hist), t(kept), t(context), t(dense), t(label), user,
                    None if times is None else t(times), None if at is None else t(at))

    @staticmethod
    def _same_width(rows, column, width, what):
        values = [r.get(column) or [] for r in rows]
        for i, v in enumerate(values):
            if len(v) != width:
                raise ValueError("%s %d has %d %s elements, the first training row %d"
                                 % (what, i + 1, len(v), column, width))
        return np.array(values, np.float64 if column == "dense" else np.int64).reshape(
            len(rows), width)

    def _times(self, rows, flat, kept, what):
        """history_time of the kept behaviours, flattened as flat; checked as din checks it."""
        for i, r in enumerate(rows):
            h, ht = r["history"] or [], r.get("history_time")
            if h and ht is None:
                raise ValueError("%s %d has a history but no history_time (this architecture "
                                 "reads the time of each behaviour)" % (what, i + 1))
            if h and len(ht) != len(h):
                raise ValueError("%s %d: history has %d elements, history_time %d"
                                 % (what, i + 1, len(h), len(ht)))
        times, _ = _tails([r.get("history_time") for r in rows], self.max_len)
        if not self.ordered:
            return times
        back = np.flatnonzero(np.diff(times) < 0) + 1
        # a step back between two rows is no disorder: only within a row's kept behaviours
        starts = np.cumsum(kept) - kept
        back = back[~np.isin(back, starts)]
        if len(back):
            i = int(np.searchsorted(starts, back[0], side="right")) - 1
            raise ValueError("%s %d: history_time is not in order (din requires behaviours "
                             "oldest first)" % (what, i + 1))
        return times

    def field_rows(self, target, hist, hist_len, context):
        """{field: every row a batch looks up} (-1 where the zero vector is used)."""
        T = hist.shape[1]
        valid = torch.arange(T).unsqueeze(0) < torch.as_tensor(hist_len).unsqueeze(1)
        out = {}
        for s, name in enumerate(["item"] + self.attr_names):
            out[name] = torch.cat([torch.as_tensor(target)[:, s],
                                   torch.as_tensor(hist)[:, :, s][valid]]).numpy()
        for c, name in enumerate(self.context_names):
            out[name] = torch.as_tensor(context)[:, c].numpy()
        return out

    def items_tensors(self):
        """(ids, attributes) of the model's items table, or None without attributes."""
        return self.item_table if self.attr_names else None

    def vocab_tensors(self):
        return {name: v.ids for name, v in self.fields()}
