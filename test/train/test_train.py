"""Unit tests of tools/dintrain (no database): vocabularies and n_j, history times, the config
file, the mini-batch aware L2 against a hand computation, Dice in train and eval modes, DIEN's
auxiliary loss, the DSIN and BST modules against every committed fixture of din, the exported
file. Run by test/train/run.sh."""

import csv
import os
import sys
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))

import dinref  # noqa: E402
import dsinref  # noqa: E402
from dintrain import config, core, data, dsin  # noqa: E402

ROWS = [
    {"history": [5, 7, 5], "ad_id": 9, "label": 1, "context": [100]},
    {"history": [7], "ad_id": 5, "label": 0, "context": [200]},
    {"history": [], "ad_id": 7, "label": True, "context": [100]},
]
ITEMS = {5: [50], 7: [70], 9: [50]}


def encoder(max_len=20):
    return data.Encoder(ROWS, max_len, ITEMS, ["cate"], ["user"])


class TestEncoder(unittest.TestCase):
    def test_vocabularies_and_counts(self):
        enc = encoder()
        self.assertEqual(enc.item_vocab.ids.tolist(), [5, 7, 9])
        self.assertEqual(enc.attr_vocabs[0].ids.tolist(), [50, 70])
        self.assertEqual(enc.ctx_vocabs[0].ids.tolist(), [100, 200])
        # n_j: item 5 twice in history + once as ad, 7 twice + once, 9 once as ad
        self.assertEqual(enc.counts["item"].tolist(), [3, 3, 1])
        # cate 50 = items 5 and 9 (4 occurrences), 70 = item 7 (3)
        self.assertEqual(enc.counts["cate"].tolist(), [4, 3])
        self.assertEqual(enc.counts["user"].tolist(), [2, 1])

    def test_encode_unknown_and_truncation(self):
        enc = encoder(max_len=2)
        rows = enc.encode([{"history": [1, 5, 7, 9], "ad_id": 1234, "label": 0,
                            "context": [999]}])
        # the most recent max_len behaviours, as din keeps them
        self.assertEqual(rows.hist[0].tolist(), [[1, 1], [2, 0]])
        # an unknown id is row -1: din's oov "zero"
        self.assertEqual(rows.target[0].tolist(), [-1, -1])
        self.assertEqual(rows.context[0].tolist(), [-1])

    def test_refuses_an_unknown_architecture(self):
        with self.assertRaisesRegex(ValueError, "unknown architecture dsim"):
            config.make_config("dsim", encoder())


class TestMbaL2(unittest.TestCase):
    def test_against_hand_computation(self):
        enc = encoder()
        torch.manual_seed(0)
        model = config.build_model(config.make_config("base", enc, dim=2, tower=(4,)), enc)
        item = model.t("fields.item.weight").detach().numpy().astype(np.float64)
        cate = model.t("fields.cate.weight").detach().numpy().astype(np.float64)
        user = model.t("fields.user.weight").detach().numpy().astype(np.float64)
        # rows 0 (twice) and 2 of item, -1 (unknown: no row), cate 1, user 0
        batch = {"item": np.array([0, 2, 0, -1]), "cate": np.array([1]), "user": np.array([0])}
        got = core.mba_l2(model, batch, enc.counts)
        # each used row once, over its n_j: item n = [3, 3, 1], cate [4, 3], user [2, 1]
        want = ((item[0] ** 2).sum() / 3 + (item[2] ** 2).sum() / 1
                + (cate[1] ** 2).sum() / 3 + (user[0] ** 2).sum() / 2)
        self.assertAlmostEqual(float(got), want, places=6)
        got.backward()
        grad = model.t("fields.item.weight").grad.numpy()
        # rows the batch does not use are not penalized
        np.testing.assert_allclose(grad[1], 0.0)
        np.testing.assert_allclose(grad[0], 2 * item[0] / 3, rtol=1e-6)
        np.testing.assert_allclose(grad[2], 2 * item[2] / 1, rtol=1e-6)

    def test_batch_rows_are_what_the_batch_looks_up(self):
        enc = encoder()
        idx = torch.tensor([0, 1])
        rows = enc.field_rows(*enc.train.batch(idx)[:4])
        # the rows of training rows 0 and 1: items 5, 7, 9 (rows 0, 1, 2) and 5 (target)
        self.assertEqual(sorted(set(rows["item"].tolist())), [0, 1, 2])
        self.assertEqual(sorted(set(rows["user"].tolist())), [0, 1])


class TestDice(unittest.TestCase):
    CFG = {"format": 1, "architecture": "base", "max_len": 4,
           "fields": [{"name": "item", "rows": 5, "dim": 3}],
           "target": ["item"], "behaviour": ["item"],
           "tower": {"inputs": ["target", "history_sum"],
                     "layers": config.layers([4], "dice"), "head": {"type": "sigmoid"}}}

    def setUp(self):
        torch.manual_seed(1)
        self.model = dinref.DinRef(self.CFG)
        with torch.no_grad():
            self.model.t("tower.0.act.alpha").copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
        self.x = torch.randn(6, 4, dtype=torch.float32) * 3 + 1

    def dice(self, x):
        return self.model._activation("tower.0", self.model.L.tower_layers[0]["activation"], x)

    def formula(self, x, mean, var):
        p = torch.sigmoid((x - mean) / torch.sqrt(var + 1e-8))
        alpha = self.model.t("tower.0.act.alpha")
        return p * x + alpha * (1 - p) * x

    def test_train_mode_uses_batch_statistics_and_updates_running(self):
        self.model.train()
        with torch.no_grad():
            y = self.dice(self.x)
        want = self.formula(self.x, self.x.mean(0), self.x.var(0, unbiased=False))
        torch.testing.assert_close(y, want)
        # running averages, momentum 0.1 from (0, 1), unbiased variance as nn.BatchNorm1d
        torch.testing.assert_close(self.model.t("tower.0.act.running_mean"), 0.1 * self.x.mean(0))
        torch.testing.assert_close(self.model.t("tower.0.act.running_var"),
                                   0.9 + 0.1 * self.x.var(0, unbiased=True))

    def test_eval_mode_uses_running_statistics(self):
        self.model.train()
        with torch.no_grad():
            self.dice(self.x)
        rm = self.model.t("tower.0.act.running_mean").clone()
        rv = self.model.t("tower.0.act.running_var").clone()
        self.model.eval()
        with torch.no_grad():
            y = self.dice(self.x[:1])
        torch.testing.assert_close(y, self.formula(self.x[:1], rm, rv))
        # and eval leaves them alone
        torch.testing.assert_close(self.model.t("tower.0.act.running_mean"), rm)

    def test_stored_statistics_score_as_eval(self):
        self.model.train()
        hist = torch.tensor([[[1], [2], [-1], [-1]]] * 6)
        with torch.no_grad():
            self.model.prob(torch.tensor([[0], [1], [2], [3], [4], [0]]), hist,
                            torch.tensor([2] * 6))
        cfg, tensors = dinref.decode_model(dinref.encode_model(self.CFG, self.model.tensors()))
        self.assertIn("tower.0.act.running_mean", tensors)
        scorer = dinref.Scorer(cfg, tensors)
        self.model.eval()
        with torch.no_grad():
            p = self.model.prob(torch.tensor([[3]]), hist[:1], torch.tensor([2]))
        self.assertAlmostEqual(scorer.score([1, 2], 3), float(p), places=6)


class TestDien(unittest.TestCase):
    def setUp(self):
        self.enc = encoder()
        torch.manual_seed(2)
        self.cfg = config.make_config("dien", self.enc, dim=2, attention=(4,), tower=(4,))
        self.model = config.build_model(self.cfg, self.enc)
        self.aux = core.AuxNet(self.model.L.H, self.model.L.E)

    def test_aux_loss_by_hand(self):
        hist = torch.tensor([[[0, 0], [1, 1], [2, 0]], [[1, 1], [-1, -1], [-1, -1]]])
        neg = torch.tensor([[[2, 0], [2, 0], [0, 0]], [[0, 0], [0, 0], [0, 0]]])
        hist_len = torch.tensor([3, 1])
        self.model.loss(torch.zeros(2), torch.zeros(2, 2, dtype=torch.long), hist, hist_len,
                        torch.zeros(2, 1, dtype=torch.long))
        got = core.aux_loss(self.model, self.aux, self.model.extractor_states, hist, hist_len,
                            neg)
        k = self.model._embed(self.model.L.behaviour, hist[:1])
        kn = self.model._embed(self.model.L.behaviour, neg[:1])
        # the extractor states the forward left, by hand
        h, _ = self.model._run_gru("sequence.gru", "pytorch", k, torch.ones(1, 3, dtype=bool))
        # only row 0 has next behaviours (steps 0 -> 1 and 1 -> 2); row 1 has one behaviour
        lp = torch.stack([self.aux(h[0, t], k[0, t + 1]) for t in (0, 1)])
        ln = torch.stack([self.aux(h[0, t], kn[0, t + 1]) for t in (0, 1)])
        want = -(torch.log(torch.sigmoid(lp)).mean() + torch.log(1 - torch.sigmoid(ln)).mean())
        torch.testing.assert_close(got, want)

    def test_aux_net_not_exported(self):
        trainer = core.Trainer(self.model, self.enc, core.Options(aux=1.0, batch_size=2))
        for idx in trainer.batches():
            trainer.step(idx)
        cfg, tensors = dinref.decode_model(core.model_bytes(self.model, self.cfg))
        self.assertFalse([n for n in tensors if "aux" in n])
        self.assertEqual(sorted(tensors), sorted(self.model.tensors()))

    def test_aux_loss_needs_dien(self):
        model = config.build_model(config.make_config("din", self.enc, dim=2), self.enc)
        with self.assertRaisesRegex(ValueError, "needs architecture dien"):
            core.Trainer(model, self.enc, core.Options(aux=1.0))


class TestTraining(unittest.TestCase):
    def test_every_technique_runs_and_predicts_in_eval_mode(self):
        enc = encoder()
        for arch, opts in (("base", {"l2": 1e-3}), ("din", {"mba": 1e-2, "dropout": 0.5}),
                           ("dien", {"aux": 0.5, "mba": 1e-2})):
            torch.manual_seed(3)
            cfg = config.make_config(arch, enc, dim=2, attention=(4,), tower=(4,))
            model = config.build_model(cfg, enc)
            trainer = core.Trainer(model, enc, core.Options(batch_size=2, **opts))
            for _ in range(2):
                for idx in trainer.batches():
                    self.assertTrue(np.isfinite(trainer.step(idx)))
            p = core.predict(model, enc.train)
            scorer = dinref.Scorer(*dinref.decode_model(core.model_bytes(model, cfg)))
            for r, want in zip(ROWS, p):
                self.assertAlmostEqual(scorer.score(r["history"], r["ad_id"], r["context"]),
                                       want, places=6, msg=arch)


class TestTimes(unittest.TestCase):
    TIMED = [
        {"history": [5, 7, 5], "history_time": [10, 20, 20], "at": 25, "ad_id": 9, "label": 1},
        {"history": [7], "history_time": [30], "at": None, "ad_id": 5, "label": 0},
    ]

    def test_kept_times_and_at(self):
        enc = data.Encoder(self.TIMED, 2, times=True, ordered=True)
        self.assertEqual(enc.train.times.tolist(), [[20, 20], [30, 0]])
        self.assertEqual(enc.train.at.tolist(), [25, data.NO_AT])

    def test_refusals(self):
        with self.assertRaisesRegex(ValueError, "training row 1: history_time is not in order"):
            data.Encoder([dict(self.TIMED[0], history_time=[10, 30, 20])], 5, times=True,
                         ordered=True)
        # din's BST reads gaps in any order; only DSIN's session division needs them ordered
        data.Encoder([dict(self.TIMED[0], history_time=[10, 30, 20])], 5, times=True)
        with self.assertRaisesRegex(ValueError, "training row 2: history has 1 elements, "
                                    "history_time 2"):
            data.Encoder([self.TIMED[0], dict(self.TIMED[1], history_time=[1, 2])], 5,
                         times=True)
        with self.assertRaisesRegex(ValueError, "row 1 has a history but no history_time"):
            data.Encoder([dict(self.TIMED[0], history_time=None)], 5, times=True)


class TestSessions(unittest.TestCase):
    def test_against_the_per_sample_reference(self):
        # dsin.sessions on a batch against dsinref.sessions row by row: random gaps around the
        # session gap, at cutting some histories, min_length dropping short sessions.
        rng = np.random.default_rng(5)
        B, M, K, T, gap = 200, 12, 3, 4, 100
        lengths = rng.integers(0, M + 1, B)
        times = np.cumsum(rng.choice([1, 50, 100, 101, 400], (B, M)), 1)
        at = np.where(rng.random(B) < 0.5, times[np.arange(B), np.maximum(lengths - 2, 0)],
                      data.NO_AT)
        for min_length in (1, 2):
            mask = torch.arange(M).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
            index, n = dsin.sessions(mask, torch.tensor(times), torch.tensor(at), K, T, gap,
                                     min_length)
            for b in range(B):
                want = dsinref.sessions(times[b, :lengths[b]].tolist(), at[b], K, T, gap,
                                        min_length)
                self.assertEqual(int(n[b]), len(want))
                got = [[int(i) for i in index[b, k] if i >= 0] for k in range(K)]
                self.assertEqual(got, [list(range(s, s + ln)) for s, ln in want] +
                                 [[]] * (K - len(want)))


def fixture_batch(cfg, tensors, rows):
    """The model's inputs for rows of a fixture CSV (raw ids are rows: fixtures have no
    vocabulary; an id outside a table follows its field's oov)."""
    fields = {f["name"]: f for f in cfg["fields"]}
    items = dict(zip(tensors["items.id"].tolist(), tensors["items.attributes"].tolist()))

    def row(field, raw):
        f = fields[field]
        if raw is not None and 0 <= raw < f["rows"]:
            return raw
        return -1 if f.get("oov") == "zero" else f["oov"]

    def item(slots, raw):
        attrs = items.get(raw)
        return [row(slots[0], raw)] + [row(slots[s], attrs[s - 1] if attrs else None)
                                       for s in range(1, len(slots))]

    def ids(text):
        return [int(x) for x in text.strip("{}").split(",") if x]
    M, S, B = cfg["max_len"], len(cfg["target"]), len(rows)
    target = np.zeros((B, S), np.int64)
    hist = np.full((B, M, S), -1, np.int64)
    hist_len, at = np.zeros(B, np.int64), np.zeros(B, np.int64)
    times = np.zeros((B, M), np.int64)
    context = np.zeros((B, len(cfg.get("context", []))), np.int64)
    for b, r in enumerate(rows):
        h, ht = ids(r["history"])[-M:], ids(r["history_time"])[-M:]
        target[b] = item(cfg["target"], int(r["ad_id"]))
        for t, x in enumerate(h):
            hist[b, t] = item(cfg["behaviour"], x)
        hist_len[b] = len(h)
        times[b, :len(ht)] = ht
        at[b] = int(r["at"] or 0)
        context[b] = [row(n, v) for n, v in zip(cfg.get("context", []), ids(r["context"]))]
    return [torch.from_numpy(v) for v in (target, hist, hist_len, context)] + \
        [None, torch.from_numpy(times), torch.from_numpy(at)]


class TestDsinBst(unittest.TestCase):
    def test_every_fixture(self):
        # The trainer's DSIN and BST modules, loaded with each committed fixture model of those
        # architectures, give its expected scores (what din is tested against) in eval mode,
        # float32, within 1e-5 relative; the module's tensors are the file's.
        names = sorted(f[:-len(".safetensors")] for f in os.listdir(FIXTURES)
                       if f.startswith(("dsin", "bst")) and f.endswith(".safetensors"))
        self.assertGreaterEqual(len(names), 7)
        for name in names:
            cfg, tensors = dinref.read_model(os.path.join(FIXTURES, name + ".safetensors"))
            model = config.MODELS[cfg["architecture"]](cfg).load_tensors(tensors).eval()
            self.assertEqual(sorted(model.tensors()), sorted(tensors), name)
            with open(os.path.join(FIXTURES, name + ".csv")) as f:
                rows = [r for r in csv.DictReader(f) if r["expected"]]
            with torch.no_grad():
                got = model.prob(*fixture_batch(cfg, tensors, rows)).double().numpy()
            want = np.array([float(r["expected"]) for r in rows])
            self.assertLess(core.relative_difference(got, want), 1e-5, name)

    def test_dsin_switches_no_fixture_has(self):
        # encoding none, no feed-forward, the merges sum, mul, fw and bw, a DIN unit without
        # normalization, interacting none: the module against dsinref.py (float64) on random
        # weights and timed histories
        rng = np.random.default_rng(9)
        base = {"format": 1, "architecture": "dsin", "max_len": 12,
                "fields": [{"name": "item", "rows": 30, "dim": 4},
                           {"name": "user", "rows": 3, "dim": 2}],
                "target": ["item"], "behaviour": ["item"], "context": ["user"],
                "sessions": {"count": 3, "length": 3, "gap": 100, "min_length": 1},
                "extractor": {"heads": 2, "encoding": "none", "feed_forward": False},
                "session_attention": {"layers": [{"units": 5, "activation": {"type": "relu"}}],
                                      "normalization": "none"},
                "tower": {"inputs": ["context", "target", "session_interest"],
                          "layers": [{"units": 6, "activation": {"type": "relu"}}],
                          "head": {"type": "sigmoid"}}}
        configs = [dict(base, interacting={"type": "none"})]
        for merge in ("sum", "mul", "fw", "bw"):
            configs.append(dict(base, interacting={
                "type": "bilstm", "merge": merge, "recurrent_activation": "sigmoid"},
                interacting_attention={"type": "bilinear"},
                tower=dict(base["tower"], inputs=base["tower"]["inputs"] +
                           ["session_interacting"])))
        B, M = 24, 12
        lengths = rng.integers(0, M + 1, B)
        hist = rng.integers(0, 30, (B, M, 1))
        times = np.cumsum(rng.choice([10, 300], (B, M)), 1) * 10 ** 6
        ads, users = rng.integers(0, 30, B), rng.integers(0, 3, B)
        at = times[:, -1] + 1
        for cfg in configs:
            torch.manual_seed(1)
            model = dsin.DsinModel(cfg)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn_like(p) * 0.3)
            ref = dsinref.DsinRef(cfg, model.tensors())
            again = dsin.DsinModel(cfg).load_tensors(model.tensors()).double().eval()
            with torch.no_grad():
                got = again.prob(torch.tensor(ads).unsqueeze(1), torch.tensor(hist),
                                 torch.tensor(lengths), torch.tensor(users).unsqueeze(1), None,
                                 torch.tensor(times), torch.tensor(at)).numpy()
            want = [ref.score(hist[b, :lengths[b], 0].tolist(), times[b, :lengths[b]].tolist(),
                              at[b], int(ads[b]), [int(users[b])]) for b in range(B)]
            np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=str(cfg["interacting"]))

    def test_train_and_reload(self):
        # Both train from timed rows (the default configs), and the file they write reloads into a
        # module that predicts as they do.
        rng = np.random.default_rng(8)
        rows = []
        for i in range(64):
            n = int(rng.integers(0, 9))
            rows.append({"history": rng.integers(1, 30, n).tolist(),
                         "history_time": np.cumsum(rng.choice([60, 5000], n) * 10 ** 6).tolist(),
                         "at": 10 ** 11, "ad_id": int(rng.integers(1, 30)),
                         "label": int(rng.integers(0, 2)), "context": [i % 3]})
        items = {i: [i % 4] for i in range(1, 30)}
        for arch in ("dsin", "bst"):
            enc = data.Encoder(rows, 8, items, ["cate"], ["user"], times=True,
                               ordered=arch == "dsin")
            torch.manual_seed(4)
            cfg = config.make_config(arch, enc, dim=4, attention=(4,), tower=(4,))
            model = config.build_model(cfg, enc)
            trainer = core.Trainer(model, enc, core.Options(batch_size=16, mba=0.01,
                                                            dropout=0.2))
            for idx in trainer.batches():
                self.assertTrue(np.isfinite(trainer.step(idx)))
            p = core.predict(model, enc.train)
            cfg2, tensors = dinref.decode_model(core.model_bytes(model, cfg))
            again = config.MODELS[arch](cfg2).load_tensors(tensors)
            np.testing.assert_allclose(core.predict(again, enc.train), p, rtol=1e-6)


class TestConfigFile(unittest.TestCase):
    def test_keys_replace_the_defaults(self):
        enc = encoder()
        cfg = config.make_config("din", enc, dim=4, file={
            "architecture": "din", "fields": [{"name": "item", "rows": 1, "dim": 6}],
            "attention": {"type": "din", "layers": [{"units": 3}], "normalization": "softmax"},
            "context": ["user"]})
        self.assertEqual([(f["name"], f["rows"], f["dim"]) for f in cfg["fields"]],
                         [("item", 3, 6), ("cate", 2, 4), ("user", 2, 4)])
        self.assertEqual(cfg["attention"]["normalization"], "softmax")
        # what the file leaves out keeps din-train's default
        self.assertEqual(cfg["tower"]["layers"][0]["units"], 200)

    def test_what_reads_time(self):
        self.assertIn("sessions", config.reads_time("dsin", {}))
        self.assertIsNone(config.reads_time("bst", {}))
        gap = {"transformer": {"positions": [{"type": "time_gap", "boundaries": [60]}]}}
        self.assertIn("time between", config.reads_time("bst", gap))
        self.assertIsNone(config.reads_time("din", gap))

    def test_refusals(self):
        enc = encoder()
        for file, message in (
                ({"context": ["geo"]}, "config file has context \\['geo'\\], but the rows give"),
                ({"fields": [{"name": "geo", "dim": 2}]}, "has field geo, which the rows do not"),
                ({"fields": [{"name": "item", "oov": 0}]}, "oov must be \"zero\""),
                ({"fields": [{"name": "item", "vocab": 0}]}, "has key vocab, which din-train"),
                ({"architecture": "bst"}, "has architecture bst, not din"),
                ({"max_len": 7}, "has max_len 7, but the rows were kept to 20")):
            with self.assertRaisesRegex(ValueError, message):
                config.make_config("din", enc, file=file)


if __name__ == "__main__":
    unittest.main()
