"""Unit tests of tools/dintrain (no database): vocabularies and n_j, the mini-batch aware L2
against a hand computation, Dice in train and eval modes, DIEN's auxiliary loss, the exported
file. Run by test/train/run.sh."""

import os
import sys
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))

import dinref  # noqa: E402
from dintrain import core  # noqa: E402

ROWS = [
    {"history": [5, 7, 5], "ad_id": 9, "label": 1, "context": [100]},
    {"history": [7], "ad_id": 5, "label": 0, "context": [200]},
    {"history": [], "ad_id": 7, "label": True, "context": [100]},
]
ITEMS = {5: [50], 7: [70], 9: [50]}


def encoder(max_len=20):
    return core.Encoder(ROWS, max_len, ITEMS, ["cate"], ["user"])


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

    def test_refuses_untrainable_architectures(self):
        for arch in ("dsin", "bst"):
            with self.assertRaisesRegex(ValueError, "cannot train architecture %s" % arch):
                core.make_config(arch, encoder())


class TestMbaL2(unittest.TestCase):
    def test_against_hand_computation(self):
        enc = encoder()
        torch.manual_seed(0)
        model = core.build_model(core.make_config("base", enc, dim=2, tower=(4,)), enc)
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
        torch.manual_seed(0)
        model = core.build_model(core.make_config("base", enc, dim=2, tower=(4,)), enc)
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
                     "layers": core.layers([4], "dice"), "head": {"type": "sigmoid"}}}

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
        self.cfg = core.make_config("dien", self.enc, dim=2, attention=(4,), tower=(4,))
        self.model = core.build_model(self.cfg, self.enc)
        self.aux = core.AuxNet(self.model.L.H, self.model.L.E)

    def test_aux_loss_by_hand(self):
        hist = torch.tensor([[[0, 0], [1, 1], [2, 0]], [[1, 1], [-1, -1], [-1, -1]]])
        neg = torch.tensor([[[2, 0], [2, 0], [0, 0]], [[0, 0], [0, 0], [0, 0]]])
        hist_len = torch.tensor([3, 1])
        got = core.aux_loss(self.model, self.aux, hist, hist_len, neg)
        k = self.model._embed(self.model.L.behaviour, hist[:1])
        kn = self.model._embed(self.model.L.behaviour, neg[:1])
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
        model = core.build_model(core.make_config("din", self.enc, dim=2), self.enc)
        with self.assertRaisesRegex(ValueError, "needs architecture dien"):
            core.Trainer(model, self.enc, core.Options(aux=1.0))


class TestTraining(unittest.TestCase):
    def test_every_technique_runs_and_predicts_in_eval_mode(self):
        enc = encoder()
        for arch, opts in (("base", {"l2": 1e-3}), ("din", {"mba": 1e-2, "dropout": 0.5}),
                           ("dien", {"aux": 0.5, "mba": 1e-2})):
            torch.manual_seed(3)
            cfg = core.make_config(arch, enc, dim=2, attention=(4,), tower=(4,))
            model = core.build_model(cfg, enc)
            trainer = core.Trainer(model, enc, core.Options(batch_size=2, **opts))
            for _ in range(2):
                for idx in trainer.batches():
                    self.assertTrue(np.isfinite(trainer.step(idx)))
            p = core.predict(model, enc.train)
            scorer = dinref.Scorer(*dinref.decode_model(core.model_bytes(model, cfg)))
            for r, want in zip(ROWS, p):
                self.assertAlmostEqual(scorer.score(r["history"], r["ad_id"], r["context"]),
                                       want, places=6, msg=arch)


if __name__ == "__main__":
    unittest.main()
