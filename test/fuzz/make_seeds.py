#!/usr/bin/python3
"""test/fuzz/make_seeds.py - hand-made hostile seeds for the fuzz targets (run once; the output
is committed in test/fuzz/seeds/). The fixtures themselves are passed to libFuzzer as further
read-only corpus directories by test/fuzz/run.sh, so they are not copied here.

Each file is tiny_din.safetensors spoiled in one way the issue names: header offsets past the
end, overlapping tensors, lying shapes, huge dimensions, NaN/Inf weights, unknown dtypes, deep
or huge JSON, non-UTF-8 names. The config seeds are every fixture's own config behind its
index byte, as fuzz_config.c expects. The state seeds are flat auc/gauc aggregate states (the
layout of src/metrics_core.h), valid ones and ones whose header lies about the bytes."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures")


def read(name):
    b = open(os.path.join(FIX, name), "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def pack(header, data, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def write(target, name, blob):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(blob)


def file_seeds():
    h, data = read("tiny_din.safetensors")
    write("file", "valid_tiny_din", pack(h, data))

    def spoil(name, fn, d=data):
        h2 = json.loads(json.dumps(h))
        r = fn(h2)
        write("file", name, pack(h2, d) if r is None else r)

    spoil("offsets_past_end", lambda x: x["head.bias"].update(data_offsets=[576, 9000]))
    spoil("overlap", lambda x: x["head.bias"].update(data_offsets=[572, 576]))
    spoil("lying_shape", lambda x: x["tower.0.weight"].update(shape=[3, 12]))
    spoil("huge_dims", lambda x: x["tower.0.weight"].update(shape=[2147483647, 2147483647, 2147483647]))
    spoil("negative_dim", lambda x: x["tower.0.weight"].update(shape=[-3, -11]))
    spoil("zero_dims", lambda x: x["tower.0.weight"].update(shape=[0, 11]))
    spoil("unknown_dtype", lambda x: x["head.bias"].update(dtype="BF16"))
    spoil("float_offsets", lambda x: x["head.bias"].update(data_offsets=[576.5, 580]))
    nan = bytearray(data)
    nan[420:424] = struct.pack("<f", float("nan"))
    write("file", "nan_weight", pack(h, bytes(nan)))
    inf = bytearray(data)
    inf[0:4] = struct.pack("<f", float("inf"))
    write("file", "inf_embedding", pack(h, bytes(inf)))
    raw = json.dumps(h).encode().replace(b'"head.bias"', b'"head.\xff\xfes"')
    write("file", "non_utf8_name", pack(None, data, raw))
    write("file", "deep_json", pack(None, b"", b"[" * 100000 + b"]" * 100000))
    write("file", "deep_config", pack({"__metadata__": {"din.config": "[" * 50000 + "]" * 50000}}, b""))
    write("file", "huge_number", pack({"__metadata__": {"din.config": "1e999999"}}, b""))
    write("file", "header_len_max", b"\xff" * 8 + b"{}")
    write("file", "short", b"\x02\x00\x00")
    cfg = json.loads(h["__metadata__"]["din.config"])
    cfg["max_len"] = 2 ** 62
    spoil("huge_max_len", lambda x: x["__metadata__"].update({"din.config": json.dumps(cfg)}))
    cfg = json.loads(h["__metadata__"]["din.config"])
    cfg["fields"][0]["rows"] = 2 ** 40
    spoil("huge_rows", lambda x: x["__metadata__"].update({"din.config": json.dumps(cfg)}))


def config_seeds():
    names = ["tiny_base", "tiny_din", "base_mean", "din_repo", "din_fuxi_vocab", "din_misc_acts",
             "din_deepctr_torch", "dien_agru", "dien_bilinear", "dien_gru_pooling", "bst_deepctr",
             "bst_timegap_prenorm", "dsin_deepctr", "dsin_bias_ln", "peer/torch-rechub/din",
             "peer/deepctr-torch/din_relu_softmax_prelu_bn"]
    configs = {}
    for i, n in enumerate(names):
        h, _ = read(n + ".safetensors")
        configs[n] = h["__metadata__"]["din.config"]
        write("config", n.replace("/", "_"), bytes([i]) + configs[n].encode())
    # the attention switches on a fixture whose tensors fit them all but units
    c = json.loads(configs["din_deepctr_torch"])
    for name, extra in [("pool_all_slots", {"pool": "all_slots", "padding_row": 1}),
                        ("empty_padding", {"empty": "padding", "normalization": "softmax"}),
                        ("units_unbound", {"units": [[0], [1]]})]:
        a = dict(c, attention=dict(c["attention"], **extra))
        write("config", "din_deepctr_torch_" + name,
              bytes([names.index("din_deepctr_torch")]) + json.dumps(a).encode())
    # padding_id: any raw id on the history's item field (here one outside the vocabulary),
    # refused on any other field (an attribute)
    c = json.loads(configs["din_fuxi_vocab"])
    for name, field, pad in [("padding_id", c["behaviour"][0], -1),
                             ("padding_id_attribute", c["behaviour"][1], 0)]:
        a = dict(c, fields=[dict(f, padding_id=pad) if f["name"] == field else f
                            for f in c["fields"]])
        write("config", "din_fuxi_vocab_" + name,
              bytes([names.index("din_fuxi_vocab")]) + json.dumps(a).encode())
    c = json.loads(configs["peer/torch-rechub/din"])
    a = dict(c, attention=dict(c["attention"], normalization="softmax", scale=True))
    write("config", "rechub_din_softmax_scale",
          bytes([names.index("peer/torch-rechub/din")]) + json.dumps(a).encode())


def score_seeds():
    for i in range(16):
        # fixture i, weights wanted, history 5, 3 candidates, known ids
        write("score", "plain_%02d" % i, bytes([i, 2, 0, 5, 3, 0, 0]) + bytes(range(40)))
        write("score", "long_%02d" % i, bytes([i, 3, 0x0f, 0xff, 70, 0, 0]) + bytes(200))
        write("score", "hostile_%02d" % i, bytes([i, 0xff, 0, 9, 4, 1, 0xff]) + b"\xff" * 200)


def state(kind, npos, nneg, capacity, records, magic=0x4D444E44, flags=0, step=1):
    """A flat state: header, then `records` 8-byte words (native order: x86-64 is little),
    ascending (step 1) or descending (step -1)."""
    head = struct.pack("<IIIQQQ", magic, kind, flags, npos, nneg, capacity)
    return head + b"".join(struct.pack("<Q", 0x8000000000000000 + step * i) for i in range(records))


def packed(records):
    """A packed gauc stream of (user, score) keys, given ascending: descending, each user key as
    the LEB128 difference from the one before (2^64 - 1 before the first), then the score key."""
    out, prev = b"", (1 << 64) - 1
    for user, score in reversed(records):
        diff = prev - user
        while diff >= 0x80:
            out += bytes([diff & 0x7F | 0x80])
            diff >>= 7
        out += bytes([diff]) + struct.pack("<Q", score)
        prev = user
    return out


def packed_state(npos, nneg, pos, neg):
    """A packed gauc state (flags sorted and packed) of the two streams, counts as given."""
    return struct.pack("<IIIQQQ", 0x4D444E44, 2, 3, npos, nneg, len(pos)) + pos + neg


def state_seeds():
    write("state", "empty", b"")
    write("state", "auc", state(1, 3, 2, 8, 8))
    write("state", "auc_full", state(1, 5, 3, 8, 8))
    write("state", "gauc", state(2, 1, 2, 4, 8))
    write("state", "no_room", state(1, 0, 0, 0, 0))
    # the INITCOND of issue 14: a bare header claiming npos 2^32 and capacity 2^33
    write("state", "issue14_initcond", state(1, 1 << 32, 0, 1 << 33, 0))
    write("state", "short", state(1, 0, 0, 0, 0)[:20])
    write("state", "bad_magic", state(1, 0, 0, 1, 1, magic=0))
    write("state", "bad_kind", state(3, 0, 0, 1, 1))
    write("state", "reserved", state(2, 0, 0, 1, 2, flags=2))
    # flags 1: sorted, a claim the final step checks; true here, false in the next one
    write("state", "sorted", state(1, 4, 4, 8, 8, flags=1))
    write("state", "sorted_false", state(2, 2, 2, 4, 8, flags=1, step=-1))
    write("state", "capacity_past_end", state(1, 0, 0, 9, 8))
    write("state", "capacity_short", state(2, 0, 0, 3, 8))
    write("state", "counts_past_capacity", state(1, 5, 4, 8, 8))
    write("state", "counts_wrap", state(1, (1 << 64) - 1, 1, 8, 8))
    write("state", "capacity_wrap", state(1, 0, 0, (1 << 61) + 8, 8))
    write("state", "gauc_huge_npos", state(2, 1 << 40, 0, 4, 8))
    write("state", "partial_record", state(2, 0, 0, 1, 3))
    # packed gauc states (flags 3): users repeat, so most records take 9 bytes
    pos = [(7, 1 << 63), (7, (1 << 63) + 5), (900, 3)]
    neg = [(7, 2), (1 << 40, 9), (1 << 40, 10)]
    write("state", "packed", packed_state(3, 3, packed(pos), packed(neg)))
    write("state", "packed_scores_unsorted",
          packed_state(2, 1, packed([(7, 5), (7, 4)]), packed([(1, 1)])))
    write("state", "packed_truncated", packed_state(3, 3, packed(pos)[:-1], packed(neg)))
    write("state", "packed_trailing", packed_state(2, 3, packed(pos), packed(neg)))
    write("state", "packed_past_64_bits",
          packed_state(1, 0, b"\xff" * 9 + b"\x02" + bytes(8), b""))
    write("state", "packed_below_user_0",
          packed_state(2, 0, b"\xff" * 9 + b"\x01" + bytes(8) + b"\x01" + bytes(8), b""))
    write("state", "packed_counts_past_bytes", packed_state(4, 3, packed(pos), packed(neg)))
    # references to a part left in shared memory (flags 5): a header and 56 bytes, no records
    ref = struct.pack("<IIQQ", 0xDEADBEEF, 4242, 1 << 40, 7 << 20) + bytes(range(32))
    write("state", "shared_ref", struct.pack("<IIIQQQ", 0x4D444E44, 2, 5, 1 << 40, 3, 0) + ref)
    write("state", "shared_ref_short",
          struct.pack("<IIIQQQ", 0x4D444E44, 1, 5, 3, 3, 0) + ref[:-1])
    write("state", "shared_ref_unsorted", struct.pack("<IIIQQQ", 0x4D444E44, 1, 4, 3, 3, 0) + ref)


file_seeds()
config_seeds()
score_seeds()
state_seeds()
