"""Reading a state_dict and taking its tensors by role, so that nothing is silently left over."""

import os

import numpy as np

from . import Refusal


def load(path):
    """name -> numpy array, from an .npz (numpy.savez of the state_dict) or a .pt/.pth file."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    if ext in (".pt", ".pth"):
        return _load_torch(path)
    raise Refusal("--weights %s: expected a .npz, .pt or .pth file" % path)


def _load_torch(path):
    # torch is optional: only a .pt/.pth file needs it (Debian python3-torch).
    try:
        import torch
    except ImportError:
        raise Refusal("reading %s needs PyTorch (python3-torch); or save the state_dict as .npz: "
                      "numpy.savez(path, **{k: v.cpu().numpy() for k, v in "
                      "model.state_dict().items()})" % path)
    obj = torch.load(path, map_location="cpu")
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if not isinstance(obj, dict) or not all(hasattr(v, "detach") for v in obj.values()):
        raise Refusal("%s does not hold a state_dict (a mapping of names to tensors); save "
                      "model.state_dict() with torch.save" % path)
    return {k: v.detach().cpu().numpy() for k, v in obj.items()}


class StateDict:
    """Tensors taken by name with their expected shape; finish() refuses any key not taken."""

    def __init__(self, tensors):
        self.tensors = dict(tensors)
        self.taken = set()
        self.notes = []  # what the user should know about the converted model

    def has(self, key):
        return key in self.tensors

    def take(self, key, shape=None):
        if key not in self.tensors:
            raise Refusal("state_dict has no %s (does the SPEC describe this model?)" % key)
        arr = np.asarray(self.tensors[key])
        if shape is not None and tuple(arr.shape) != tuple(shape):
            raise Refusal("state_dict %s has shape %s, the SPEC implies %s"
                          % (key, list(arr.shape), list(shape)))
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise Refusal("state_dict %s holds NaN or infinite values" % key)
        self.taken.add(key)
        return arr.astype(np.float32) if arr.dtype.kind == "f" else arr

    def ignore(self, key):
        """A key that scoring does not need (num_batches_tracked, training-only nets)."""
        if key in self.tensors:
            self.taken.add(key)

    def ignore_prefix(self, prefix):
        for k in self.tensors:
            if k.startswith(prefix):
                self.taken.add(k)

    def finish(self):
        rest = sorted(k for k in self.tensors if k not in self.taken)
        if rest:
            raise Refusal("state_dict key %s is not part of the model the SPEC describes%s"
                          % (rest[0], " (and %d more)" % (len(rest) - 1) if len(rest) > 1 else ""))
