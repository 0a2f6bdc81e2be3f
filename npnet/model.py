"""A model is a list of layers: run forward in order, backward in reverse, and save it as one .npz file."""

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from . import layers as L
from .losses import softmax

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("NPNET_MODELS", ROOT / "models"))
FORMAT = "npnet-model-1"


class ModelError(Exception):
    """A model file is missing, tampered with, truncated or from another architecture."""


def mlp(sizes=(784, 256, 128, 10), rng=None):
    """Dense-ReLU-...-Dense for the given layer sizes: (N, sizes[0]) -> logits (N, sizes[-1])."""
    rng = rng if rng is not None else np.random.default_rng(0)
    model = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        model += [L.Dense(fan_in, fan_out, rng), L.ReLU()]
    return model[:-1]


def forward(model, X):
    """Run every layer in order: (N, ...) -> logits (N, C)."""
    for layer in model:
        X = layer.forward(X)
    return X


def backward(model, grad, input_grad=True):
    """Run every layer's backward in reverse: dlogits (N, C) -> dX (N, ...), or None if not input_grad."""
    if input_grad:
        for layer in reversed(model):
            grad = layer.backward(grad)
        return grad
    first = next(i for i, layer in enumerate(model) if layer.params)  # below it nothing needs a gradient
    for layer in reversed(model[first + 1:]):
        grad = layer.backward(grad)
    return model[first].backward(grad, input_grad=False)              # training: skip dX, which nothing uses


def set_training(model, training):
    """Switch train/eval behaviour (dropout) for every layer."""
    for layer in model:
        layer.training = training


def predict_proba(model, X, batch_size=2048):
    """Class probabilities in eval mode, in chunks: (N, ...) -> probs (N, C)."""
    set_training(model, False)
    probs = np.concatenate([softmax(forward(model, X[i:i + batch_size]))
                            for i in range(0, len(X), batch_size)])
    set_training(model, True)
    return probs


def predict(model, X, batch_size=2048):
    """Predicted class per row: (N, ...) -> (N,) int."""
    return predict_proba(model, X, batch_size).argmax(axis=1)


def _arrays(model):
    """Every parameter of a model, keyed 'layer{i}.{name}'."""
    return {f"layer{i}.{k}": v for i, layer in enumerate(model) for k, v in layer.params.items()}


def _digest(arrays):
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def layer_classes():
    """Every layer class a model file may name: those in npnet.layers and npnet.conv."""
    from . import conv

    return {name: cls for mod in (L, conv) for name, cls in vars(mod).items()
            if isinstance(cls, type) and issubclass(cls, L.Layer)}


def build(specs):
    """Rebuild a model's layers from their specs (weights are filled in by load)."""
    classes, model = layer_classes(), []
    for spec in specs:
        spec = dict(spec)
        cls = classes.get(spec.pop("type", None))
        if cls is None:
            raise ModelError(f"unknown layer type in {spec}")
        model.append(cls(**spec))
    return model


def save(path, model, stats, **meta):
    """Write architecture, weights, norm stats and a checksum to one .npz, atomically."""
    path = Path(path)
    arrays = _arrays(model)
    arrays["norm_stats"] = np.asarray(stats, np.float32)
    header = {"format": FORMAT, "layers": [layer.spec() for layer in model],
              "sha256": _digest(arrays), **meta}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, header=np.array(json.dumps(header)), **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path, expect=None):
    """Read a model saved by save(), optionally requiring layer specs; returns (model, norm_stats, header)."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file (train one with `python -m npnet train`)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:
        raise ModelError(f"{path}: not a readable model file ({type(e).__name__}: {e})") from None
    try:
        header = json.loads(str(arrays.pop("header")))
        assert header["format"] == FORMAT
    except Exception:
        raise ModelError(f"{path}: no npnet header; not a model saved by npnet") from None
    if _digest(arrays) != header.get("sha256"):
        raise ModelError(f"{path}: checksum mismatch: the weights were changed or damaged")
    if expect is not None and list(expect) != header["layers"]:
        raise ModelError(f"{path}: architecture mismatch: file has {header['layers']}, expected {list(expect)}")
    model = build(header["layers"])
    expected = _arrays(model)
    if set(expected) | {"norm_stats"} != set(arrays):
        raise ModelError(f"{path}: arrays {sorted(arrays)} do not match the architecture")
    for key, p in expected.items():
        if arrays[key].shape != p.shape or arrays[key].dtype != p.dtype:
            raise ModelError(f"{path}: {key} is {arrays[key].shape} {arrays[key].dtype}, "
                             f"architecture wants {p.shape} {p.dtype}")
        p[...] = arrays[key]
    stats = tuple(np.float32(s) for s in arrays["norm_stats"])
    return model, stats, header

