"""Unit tests of tools/dinconvert on small state_dicts made here (numpy only).

Numbers through din are checked by test/t/020 (peer fixtures) and 022 (every option); these
check the mapping by role, the switches, the side table, the container, and every refusal.
"""

import copy
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, HERE)

from dinconvert import Refusal, safetensors  # noqa: E402
from dinconvert.cli import convert  # noqa: E402
import variants  # noqa: E402

TOOL = os.path.join(HERE, "..", "..", "tools", "din-convert")


def make(library, index):
    name, spec, sd, cate_of = variants.VARIANTS[library][index]()
    return spec, sd, cate_of


class Tmp:
    def __enter__(self):
        self.dir = tempfile.TemporaryDirectory()
        return self.dir.name

    def __exit__(self, *a):
        self.dir.cleanup()


def items_file(d, cate_of):
    path = os.path.join(d, "items.npy")
    np.save(path, cate_of)
    return path


class DeepCtrTorch(unittest.TestCase):
    def setUp(self):
        self.spec, self.sd, self.cate_of = make("deepctr-torch", 0)  # DIN, Dice, dense

    def run_convert(self, spec=None, sd=None):
        with Tmp() as d:
            return convert("deepctr-torch", self.sd if sd is None else sd,
                           self.spec if spec is None else spec, items_file(d, self.cate_of))

    def test_din_config_and_roles(self):
        config, t = self.run_convert()
        self.assertEqual(config["architecture"], "din")
        self.assertEqual(config["max_len"], 6)
        self.assertEqual(config["target"], ["item", "cate"])
        self.assertEqual(config["behaviour"], ["item", "cate"])
        self.assertEqual(config["context"], ["user"])
        self.assertEqual(config["dense"], 2)
        self.assertEqual(config["item"], {"attributes": ["cate"]})
        self.assertEqual(config["tower"]["inputs"],
                         ["context:0", "target:0", "target:1", "attention", "dense"])
        self.assertEqual(config["attention"]["normalization"], "none")
        act = config["attention"]["layers"][0]["activation"]
        self.assertEqual(act, {"type": "dice", "eps": 1e-8, "affine": True})
        # alpha [C, 1] becomes [C]; Dice's BN maps to the activation's tensors
        alpha = self.sd["attention.local_att.dnn.activation_layers.0.alpha"]
        np.testing.assert_array_equal(t["attention.mlp.0.act.alpha"], alpha[:, 0])
        np.testing.assert_array_equal(
            t["attention.mlp.1.act.running_var"],
            self.sd["attention.local_att.dnn.activation_layers.1.bn.running_var"])
        np.testing.assert_array_equal(t["attention.out.weight"],
                                      self.sd["attention.local_att.dense.weight"])
        np.testing.assert_array_equal(t["head.weight"], self.sd["dnn_linear.weight"])
        np.testing.assert_array_equal(t["head.bias"], self.sd["out.bias"])
        np.testing.assert_array_equal(t["fields.item.weight"],
                                      self.sd["embedding_dict.item.weight"])
        np.testing.assert_array_equal(t["items.attributes"][:, 0], self.cate_of)
        np.testing.assert_array_equal(t["items.id"], np.arange(len(self.cate_of)))
        self.assertEqual(config["tower"]["head"], {"type": "sigmoid", "bias": True})
        # id 0 pads its histories: marked on the history's item field only
        self.assertEqual({f["name"]: f.get("padding_id") for f in config["fields"]},
                         {"item": 0, "cate": None, "user": None})

    def test_round_trip_through_the_container(self):
        config, t = self.run_convert()
        back, t2 = safetensors.decode(safetensors.encode(config, t))
        self.assertEqual(back, config)
        self.assertEqual(sorted(t2), sorted(t))
        self.assertEqual(t2["items.id"].dtype, np.dtype("<i8"))
        self.assertEqual(t2["fields.user.weight"].dtype, np.dtype("<f4"))

    def test_separate_tables_groups_bn_prelu_softmax(self):
        spec, sd, cate_of = make("deepctr-torch", 1)
        with Tmp() as d:
            config, t = convert("deepctr-torch", sd, spec, items_file(d, cate_of))
        self.assertEqual(config["behaviour"], ["hist_item", "cate"])
        # city is in group "geo": embedding_lookup puts it after the default group
        self.assertEqual(config["context"], ["user", "city"])
        self.assertEqual(config["tower"]["inputs"],
                         ["context:0", "target:0", "target:1", "context:1", "attention"])
        self.assertEqual(config["attention"]["normalization"], "softmax")
        # its softmax over maxlen masked slots pools an empty history's padding rows (id 0)
        self.assertEqual((config["attention"]["empty"], config["attention"]["padding_row"]),
                         ("padding", 0))
        self.assertEqual(config["attention"]["layers"][0]["activation"], {"type": "prelu"})
        self.assertEqual(config["tower"]["layers"][0]["batch_norm"], {"eps": 1e-5})
        np.testing.assert_array_equal(t["tower.0.bn.weight"], sd["dnn.bn.0.weight"])

    def test_dien_types(self):
        expect = {3: ("gru_attention_pooling", None), 4: ("aigru", None), 5: ("agru", None),
                  6: ("augru", "paper")}
        for i, (etype, form) in expect.items():
            spec, sd, cate_of = make("deepctr-torch", i)
            with Tmp() as d:
                config, t = convert("deepctr-torch", sd, spec, items_file(d, cate_of))
            self.assertEqual(config["evolution"]["type"], etype)
            self.assertEqual(config["evolution"].get("form"), form)
            self.assertEqual(config["sequence"], {"type": "gru", "hidden": 8,
                                                  "convention": "pytorch"})
            self.assertEqual(config["tower"]["inputs"][0], "interest")
            # its DIEN zeroes an empty history's interest before any attention
            self.assertNotIn("empty", config["attention"])
            self.assertNotIn("fields.tags.weight", t)  # the varlen feature DIEN never reads
            self.assertIn("linear.weight", [k for k in sd if k == "linear.weight"])
        np.testing.assert_array_equal(
            t["evolution.gru.bias_hh"], sd["interest_evolution.interest_evolution.rnn.bias_hh"])

    def refuses(self, pattern, spec=None, sd=None):
        with self.assertRaisesRegex(Refusal, pattern):
            self.run_convert(spec, sd)

    def test_refusals(self):
        s = copy.deepcopy(self.spec)
        s["kwargs"]["att_activation"] = "tanh"
        self.refuses("activation 'tanh'", s)
        s = copy.deepcopy(self.spec)
        s["kwargs"]["use_magic"] = True
        self.refuses("keyword argument 'use_magic'", s)
        s = copy.deepcopy(self.spec)
        s["kwargs"]["task"] = "regression"
        self.refuses("task", s)
        s = copy.deepcopy(self.spec)
        s["features"][1]["use_hash"] = True
        self.refuses("use_hash", s)
        s = copy.deepcopy(self.spec)
        s["padding"] = "pre"
        self.refuses("padding", s)
        s = copy.deepcopy(self.spec)
        s["features"].append({"type": "varlen", "name": "tags", "vocabulary_size": 5,
                              "maxlen": 3})
        self.refuses("varlen feature tags", s)
        s = copy.deepcopy(self.spec)
        s["features"][1], s["features"][2] = s["features"][2], s["features"][1]
        self.refuses("pairs them position by position", s)
        s["features"][3], s["features"][4] = s["features"][4], s["features"][3]
        self.refuses("item feature 'item' must come first", s)
        s = copy.deepcopy(self.spec)
        for f in s["features"]:
            f.pop("length_name", None)
        self.refuses("length_name", s)
        s, sd, _ = make("deepctr-torch", 3)  # DIEN, which reads no other varlen feature
        s["features"].insert(3, {"type": "varlen", "name": "tags2", "vocabulary_size": 5,
                                 "maxlen": 3, "length_name": "n_tags"})
        self.refuses("masks the history by its length column 'n_tags'", s, sd)
        s = copy.deepcopy(self.spec)
        s["features"][0]["embedding_dim"] = 5
        self.refuses("embedding_dict.user.weight has shape", s)
        sd = dict(self.sd, **{"linear_model.weight": np.zeros((2, 1), np.float32)})
        self.refuses("key linear_model.weight is not part", None, sd)
        sd = dict(self.sd)
        del sd["out.bias"]
        self.refuses("no out.bias", None, sd)
        sd = dict(self.sd)
        sd["dnn_linear.weight"] = sd["dnn_linear.weight"] * np.nan
        self.refuses("NaN", None, sd)
        with self.assertRaisesRegex(Refusal, "--items"):
            convert("deepctr-torch", self.sd, self.spec, None)

    def test_agru_keeps_its_two_biases(self):
        # AGRUCell registers bias_ih and bias_hh apart and trains both: each goes to its slot
        spec, sd, cate_of = make("deepctr-torch", 5)
        evo = "interest_evolution.interest_evolution.rnn."
        self.assertTrue((sd[evo + "bias_ih"] != sd[evo + "bias_hh"]).any())
        with Tmp() as d:
            config, t = convert("deepctr-torch", sd, spec, items_file(d, cate_of))
        self.assertEqual(config["evolution"], {"type": "agru", "convention": "pytorch"})
        for k in ("bias_ih", "bias_hh"):
            np.testing.assert_array_equal(t["evolution.gru." + k], sd[evo + k])

    def test_augru_with_two_biases_is_refused(self):
        spec, sd, cate_of = make("deepctr-torch", 6)
        sd = dict(sd)
        key = "interest_evolution.interest_evolution.rnn.bias_hh"
        sd[key] = sd[key] + 1
        with Tmp() as d, self.assertRaisesRegex(Refusal, "bias_ih differs from bias_hh"):
            convert("deepctr-torch", sd, spec, items_file(d, cate_of))

    def test_items_csv(self):
        with Tmp() as d:
            path = os.path.join(d, "items.csv")
            with open(path, "w") as f:
                f.write("item,cate\n" + "".join("%d,%d\n" % (i, c)
                                                for i, c in enumerate(self.cate_of)))
            config, t = convert("deepctr-torch", self.sd, self.spec, path)
            np.testing.assert_array_equal(t["items.attributes"][:, 0], self.cate_of)
            with open(path, "a") as f:
                f.write("5,%d\n" % 99)
            with self.assertRaisesRegex(Refusal, "appears twice"):
                convert("deepctr-torch", self.sd, self.spec, path)
            np.save(os.path.join(d, "bad.npy"), np.full(len(self.cate_of), 99))
            with self.assertRaisesRegex(Refusal, "outside the table"):
                convert("deepctr-torch", self.sd, self.spec, os.path.join(d, "bad.npy"))


class TorchRechub(unittest.TestCase):
    def test_bst_config_and_roles(self):
        spec, sd, cate_of = make("torch-rechub", 0)  # 2 heads, 2 layers, front padding
        with Tmp() as d:
            config, t = convert("torch-rechub", sd, spec, items_file(d, cate_of))
        tr = config["transformer"]
        self.assertEqual((tr["heads"], tr["blocks"], tr["readout"], tr["norm"]),
                         (2, 2, "target", "post"))
        self.assertEqual(tr["positions"], [{"type": "index", "combine": "add", "align": "end",
                                            "width": 6}])
        self.assertEqual(tr["ffn"], {"units": 32, "activation": {"type": "leaky_relu",
                                                                 "slope": 0.01}})
        self.assertEqual(config["tower"]["inputs"], ["interest", "target:0", "target:1",
                                                     "context:0"])
        # only the first max_len + 1 position rows are ever read
        np.testing.assert_array_equal(t["transformer.positions.0.weight"],
                                      sd["pos_embedding.weight"][:7])
        np.testing.assert_array_equal(
            t["transformer.blocks.1.attention.in_proj_weight"],
            sd["transformer_layers.layers.1.self_attn.in_proj_weight"])
        np.testing.assert_array_equal(t["transformer.blocks.0.ffn.1.weight"],
                                      sd["transformer_layers.layers.0.linear2.weight"])
        np.testing.assert_array_equal(t["head.weight"], sd["mlp.mlp.8.weight"])
        np.testing.assert_array_equal(t["tower.1.bn.running_mean"], sd["mlp.mlp.5.running_mean"])
        self.assertEqual(config["target"], ["target_item_id", "target_cate_id"])
        self.assertEqual({f["name"]: f.get("padding_id") for f in config["fields"]},
                         {"target_item_id": 0, "target_cate_id": None, "user_id": None})

    def test_bst_post_padding_and_dice(self):
        spec, sd, cate_of = make("torch-rechub", 1)
        with Tmp() as d:
            config, t = convert("torch-rechub", sd, spec, items_file(d, cate_of))
        self.assertEqual(config["transformer"]["positions"][0]["align"], "start")
        self.assertEqual(config["tower"]["layers"][0]["activation"],
                         {"type": "dice", "stats": "sample", "eps": 1e-3})
        self.assertEqual(config["dense"], 1)
        self.assertEqual(config["tower"]["inputs"][-1], "dense")

    def test_dien_single_field(self):
        spec, sd, cate_of = make("torch-rechub", 3)
        config, t = convert("torch-rechub", sd, spec, None)
        self.assertEqual(config["attention"], {"type": "bilinear", "normalization": "softmax"})
        c = "interest_evolving_layers.0.augru_cell."
        np.testing.assert_array_equal(t["evolution.gru.weight_ih"][:4], sd[c + "Wr"].T)
        np.testing.assert_array_equal(t["evolution.gru.weight_hh"][4:8], sd[c + "Uu"].T)
        np.testing.assert_array_equal(t["evolution.gru.bias_ih"][8:], sd[c + "bh"][0])
        self.assertFalse(t["evolution.gru.bias_hh"].any())

    def test_refusals(self):
        spec, sd, cate_of = make("torch-rechub", 0)
        with Tmp() as d:
            items = items_file(d, cate_of)
            for change, pattern in [
                (lambda s: s.update(max_len=12), "exceeds max_seq_len"),
                (lambda s: s["kwargs"].update(nhead=3), "nhead 3"),
                (lambda s: s["kwargs"]["mlp_params"].update(activation="softmax"), "softmax"),
                (lambda s: s["kwargs"]["mlp_params"].update(output_layer=False), "output_layer"),
                (lambda s: s["history_features"][0].update(pooling="mean"), "pooling"),
                (lambda s: s["features"].append({"type": "sequence", "name": "tags",
                                                 "vocab_size": 3, "embed_dim": 2}), "tags"),
                (lambda s: s.update(padding="middle"), "padding"),
                (lambda s: s["target_features"].pop(), "2 history features but 1"),
            ]:
                s = copy.deepcopy(spec)
                change(s)
                with self.assertRaisesRegex(Refusal, pattern):
                    convert("torch-rechub", sd, s, items)

    def test_din_units_over_all_slots(self):
        spec, sd, cate_of = make("torch-rechub", 4)
        with Tmp() as d:
            config, t = convert("torch-rechub", sd, spec, items_file(d, cate_of))
        att = config["attention"]
        self.assertEqual((att["units"], att["pool"], att["padding_row"], att["normalization"]),
                         ([[0], [1]], "all_slots", 0, "softmax"))
        self.assertNotIn("empty", att)
        self.assertEqual([layer["units"] for layer in att["layers"]], [8, 4])
        self.assertEqual(att["layers"][0]["activation"],
                         {"type": "dice", "stats": "sample", "eps": 1e-3})
        np.testing.assert_array_equal(t["attention.units.1.mlp.1.weight"],
                                      sd["attention_layers.1.attention.mlp.4.weight"])
        np.testing.assert_array_equal(t["attention.units.0.mlp.0.bn.running_var"],
                                      sd["attention_layers.0.attention.mlp.1.running_var"])
        np.testing.assert_array_equal(t["attention.units.0.out.weight"],
                                      sd["attention_layers.0.attention.mlp.8.weight"])
        self.assertEqual(config["tower"]["inputs"],
                         ["attention", "target:0", "target:1", "context:0"])
        for change, pattern in [
            (lambda s: s["features"].append({"type": "dense", "name": "age"}), "dense"),
            (lambda s: s["kwargs"]["mlp_params"].update(activation="relu"), "dice"),
            (lambda s: s["kwargs"]["attention_mlp_params"].update(bias=False), "bias"),
        ]:
            s = copy.deepcopy(spec)
            change(s)
            with Tmp() as d, self.assertRaisesRegex(Refusal, pattern):
                convert("torch-rechub", sd, s, items_file(d, cate_of))

    def test_dien_refusals(self):
        spec, sd, _ = make("torch-rechub", 3)
        s = copy.deepcopy(spec)
        s["padding"] = "pre"
        with self.assertRaisesRegex(Refusal, "post"):
            convert("torch-rechub", sd, s, None)
        s = copy.deepcopy(spec)
        s["history_features"][0]["padding_idx"] = None
        with self.assertRaisesRegex(Refusal, "padding_idx=None"):
            convert("torch-rechub", sd, s, None)
        s = copy.deepcopy(spec)
        s["history_features"].append(dict(s["history_features"][0], name="hist_b"))
        s["history_features"][1]["shared_with"] = "target_b"
        s["target_features"].append(dict(s["target_features"][0], name="target_b"))
        with self.assertRaisesRegex(Refusal, "single history field"):
            convert("torch-rechub", dict(sd, **{"embedding.embed_dict.target_b.weight":
                                                sd["embedding.embed_dict.target_item_id.weight"]}),
                    s, None)


class CommandLine(unittest.TestCase):
    def test_writes_a_file_without_torch_and_refuses_with_exit_2(self):
        spec, sd, cate_of = make("deepctr-torch", 0)
        with Tmp() as d:
            np.savez(os.path.join(d, "w.npz"), **sd)
            with open(os.path.join(d, "spec.json"), "w") as f:
                json.dump(spec, f)
            items = items_file(d, cate_of)
            out = os.path.join(d, "m.safetensors")
            # -S-like check: the converter must not import torch or the training libraries
            code = ("import sys, runpy; sys.argv = %r; "
                    "sys.modules['torch'] = None; sys.modules['deepctr_torch'] = None; "
                    "sys.modules['torch_rechub'] = None\n"
                    "try:\n    runpy.run_path(%r, run_name='__main__')\n"
                    "except SystemExit as e:\n    sys.exit(e.code)"
                    % (["din-convert", "deepctr-torch", "--weights", os.path.join(d, "w.npz"),
                        "--spec", os.path.join(d, "spec.json"), "-o", out, "--items", items],
                       TOOL))
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out, "rb") as f:
                config, t = safetensors.decode(f.read())
            self.assertEqual(config["architecture"], "din")
            self.assertIn('attention: type "din", normalization "none"', r.stderr)
            self.assertIn("padding_id 0 on field item", r.stderr)
            r = subprocess.run([sys.executable, TOOL, "torch-rechub", "--weights",
                                os.path.join(d, "w.npz"), "--spec", os.path.join(d, "spec.json"),
                                "-o", out], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            self.assertIn("refused", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=1, buffer=True)
