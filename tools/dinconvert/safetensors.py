"""The safetensors container of docs/FORMAT.md, written by hand (F32 and I64 only)."""

import json
import struct

import numpy as np


def encode(config, tensors, metadata=None):
    """Bytes of a model file: tensors (name -> array) in insertion order, config as din.config."""
    header = {"__metadata__": dict(metadata or {}, **{"din.config": json.dumps(config)})}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        if arr.dtype.kind == "f":
            arr, dtype = np.ascontiguousarray(arr, dtype="<f4"), "F32"
        elif arr.dtype.kind in "iu":
            arr, dtype = np.ascontiguousarray(arr, dtype="<i8"), "I64"
        else:
            raise ValueError("tensor %s has dtype %s" % (name, arr.dtype))
        data = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Padding with spaces keeps the data section 8-byte aligned for readers that map it.
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def decode(buf):
    """(config, tensors) of a model file, for tests and --check."""
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__")
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        dtype = {"F32": "<f4", "I64": "<i8"}[t["dtype"]]
        tensors[name] = np.frombuffer(buf[base + begin:base + end], dtype=dtype).reshape(t["shape"])
    return json.loads(meta["din.config"]), tensors
