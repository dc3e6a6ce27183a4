"""What both libraries share: SPEC checks, the items side table, batch norms, the head."""

import csv
import os

import numpy as np

from . import Refusal


def check_keys(obj, allowed, where):
    """Refuses a key the converter does not know: it could change the math."""
    for k in obj:
        if k not in allowed:
            raise Refusal("%s: unknown key %r (known: %s)" % (where, k, ", ".join(sorted(allowed))))


def kwargs_with_defaults(spec, defaults, ignored, where):
    """The constructor's keyword arguments, library defaults filled in; unknown ones refused."""
    given = spec.get("kwargs", {})
    if not isinstance(given, dict):
        raise Refusal("%s: kwargs must be an object" % where)
    for k in given:
        if k not in defaults and k not in ignored:
            raise Refusal("%s: keyword argument %r is not supported by the converter" % (where, k))
    out = dict(defaults)
    out.update({k: v for k, v in given.items() if k in defaults})
    return out


def field_name(name, where):
    ok = (isinstance(name, str) and 1 <= len(name) <= 64
          and all(c.isalnum() and c.isascii() or c == "_" for c in name))
    if not ok:
        raise Refusal("%s: table name %r is not 1-64 characters of [A-Za-z0-9_]; din names its "
                      "fields after the library's tables" % (where, name))
    return name


def batch_norm(sd, prefix, out, units, eps, dst):
    """torch BatchNorm1d(units) at `prefix` -> din tensors `out.*` (always affine in torch)."""
    dst[out + ".running_mean"] = sd.take(prefix + ".running_mean", (units,))
    dst[out + ".running_var"] = sd.take(prefix + ".running_var", (units,))
    if sd.has(prefix + ".weight") or sd.has(prefix + ".bias"):
        dst[out + ".weight"] = sd.take(prefix + ".weight", (units,))
        dst[out + ".bias"] = sd.take(prefix + ".bias", (units,))
    sd.ignore(prefix + ".num_batches_tracked")
    if np.any(dst[out + ".running_var"] + eps <= 0):
        raise Refusal("%s.running_var + eps is not positive" % prefix)
    return {"eps": eps}


def linear(sd, prefix, out, units, inp, dst, bias=True):
    dst[out + ".weight"] = sd.take(prefix + ".weight", (units, inp))
    if bias:
        dst[out + ".bias"] = sd.take(prefix + ".bias", (units,))


def read_items(path, n_attributes):
    """(ids I64 [n], attributes I64 [n, A]) from a mapping file.

    .npy: a 1-D array (index = item id, value = its single attribute, e.g. cate_of_item.npy)
    or a 2-D [n_items, A] array (row = item id); .csv: a header row, then one row per item:
    the item id, then its attributes in the order of the target features after the item.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        arr = np.load(path, allow_pickle=False)
        if arr.dtype.kind not in "iu":
            raise Refusal("--items %s: expected integer ids, found dtype %s" % (path, arr.dtype))
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2:
            raise Refusal("--items %s: expected a 1-D or 2-D array" % path)
        ids = np.arange(arr.shape[0], dtype=np.int64)
        attrs = arr.astype(np.int64)
    elif ext == ".csv":
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        if len(rows) < 2:
            raise Refusal("--items %s: expected a header row and at least one item" % path)
        try:
            data = np.array([[int(x) for x in r] for r in rows[1:] if r], dtype=np.int64)
        except ValueError as e:
            raise Refusal("--items %s: %s" % (path, e))
        if data.ndim != 2 or data.shape[1] < 1:
            raise Refusal("--items %s: rows of different lengths" % path)
        ids, attrs = data[:, 0], data[:, 1:]
    else:
        raise Refusal("--items %s: expected a .npy or .csv file" % path)
    if attrs.shape[1] != n_attributes:
        raise Refusal("--items %s has %d attribute column(s), the model has %d (the target "
                      "features after the item)" % (path, attrs.shape[1], n_attributes))
    if len(np.unique(ids)) != len(ids):
        raise Refusal("--items %s: an item id appears twice" % path)
    return ids, attrs


def attach_items(config, tensors, items_path, attributes, fields):
    """Writes items.id / items.attributes (din's side table) when the item has attributes."""
    config["item"] = {"attributes": attributes}
    if not attributes:
        return
    if not items_path:
        raise Refusal("the target has attribute features %s; give --items MAPPING (.npy or .csv: "
                      "item id -> attribute ids) so that din can look them up from the item id"
                      % attributes)
    ids, attrs = read_items(items_path, len(attributes))
    rows = {f["name"]: f["rows"] for f in fields}
    for k, name in enumerate(attributes):
        col = attrs[:, k]
        bad = (col < 0) | (col >= rows[name])
        if bad.any():
            i = int(np.argmax(bad))
            raise Refusal("--items: item %d has %s id %d, outside the table's %d rows"
                          % (ids[i], name, col[i], rows[name]))
    tensors["items.id"] = ids
    tensors["items.attributes"] = attrs


def mark_padding(config, pad_id):
    """The history's item field pads with pad_id in training (docs/FORMAT.md fields padding_id):
    din then refuses or reports a history holding it instead of scoring it as a behaviour."""
    item = config["behaviour"][0]
    next(f for f in config["fields"] if f["name"] == item)["padding_id"] = pad_id
