"""A model file: one .npz with the layer specs, weights, norm stats and a checksum, checked before anything is allocated."""

import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import conv as C
from . import layers as L

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("NPNET_MODELS") or ROOT / "models")   # an empty NPNET_MODELS= counts as unset
FORMAT = "npnet-model-2"  # 2: the checksum covers the header as well as the arrays; 1 covered the arrays only
RETRAIN = "retrain it with `python -m npnet train` (or `python -m npnet train --model cnn` for the CNN)"

# Limits on what a model file may declare, checked before anything is allocated. The course's models sit far
# below them (the MLP has 235,146 parameters; the CNN's largest Conv2D patch matrix has 51,200 values per image).
MAX_PARAMS = 10_000_000       # parameters in all: 40 MB as float32
MAX_VALUES = 1_000_000        # values per image in any layer's output or Conv2D patch matrix
MAX_LAYERS = 64
MAX_HEADER_CHARS = 65_536
MAX_NPY_HEADER = 4096         # bytes of an .npy member's own header (its dtype and shape): ~120 in npnet's files


class ModelError(Exception):
    """A model file is missing, damaged, edited, too big, or not a (N, 784) -> (N, 10) classifier."""


def _arrays(model):
    """Every parameter of a model, keyed 'layer{i}.{name}'."""
    return {f"layer{i}.{k}": v for i, layer in enumerate(model) for k, v in layer.params.items()}


def _digest(header, arrays):
    """SHA-256 of the header (all of it but the checksum itself) and of every array's name, dtype, shape and bytes."""
    h = hashlib.sha256(json.dumps({k: v for k, v in header.items() if k != "sha256"}, sort_keys=True).encode())
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# The schema of a layer spec: each type a file may name, its class, and its fields as (description, test).
def _int(lo, hi):
    return f"an integer from {lo:,} to {hi:,}", lambda v: type(v) is int and lo <= v <= hi


SIDE, CHANNELS = _int(1, 28), _int(1, 1024)
POOL = _int(1, 16)            # MaxPool2D keeps where each window's max is as a uint8: at most 16 x 16 = 256 places
FRACTION = "a number from 0 to 1", lambda v: type(v) in (int, float) and 0 <= v <= 1
PROBABILITY = "a number in [0, 1)", lambda v: type(v) in (int, float) and 0 <= v < 1
SHAPE = ("a list of 1 to 3 integers from 1 to 784",
         lambda v: type(v) is list and 1 <= len(v) <= 3 and all(type(d) is int and 1 <= d <= 784 for d in v))
NHWC = ('"NHWC": channels-last, npnet\'s layout (a file without it was saved by an older, channels-first npnet: '
        'retrain it, e.g. `python -m npnet train --model cnn`)', lambda v: v == "NHWC")
LAYERS = {
    "Dense": (L.Dense, {"fan_in": _int(1, MAX_VALUES), "fan_out": _int(1, MAX_VALUES)}),
    "ReLU": (L.ReLU, {}),
    "Dropout": (L.Dropout, {"p": PROBABILITY}),
    "Reshape": (C.Reshape, {"shape": SHAPE}),
    "Conv2D": (C.Conv2D, {"in_channels": CHANNELS, "out_channels": CHANNELS, "kernel_size": SIDE,
                          "stride": SIDE, "padding": _int(0, 14), "layout": NHWC}),
    "MaxPool2D": (C.MaxPool2D, {"size": POOL}),
    "Flatten": (C.Flatten, {}),
}
# The meta fields npnet itself reads and prints (any other meta is free): a recipe name, and accuracies.
META = {"recipe": ("a printable one-line string of at most 100 characters",
                   lambda v: type(v) is str and len(v) <= 100 and v.isprintable()),
        "test_acc": FRACTION, "dev_acc": FRACTION}


def build(specs):
    """Layers from specs that load has checked, with fresh weights (load fills them in)."""
    return [LAYERS[spec["type"]][0](**{k: v for k, v in spec.items() if k not in ("type", "layout")}) for spec in specs]


def save(path, model, stats, **meta):
    """Write architecture, weights, norm stats, meta and a checksum over all of them to one .npz, atomically.
    A model that load() would refuse is not written: layers, meta fields (recipe, test_acc, dev_acc) or arrays that
    it does not allow, NaN or infinite weights from a diverged run, a std <= 0; meta must be JSON."""
    path = Path(path)
    arrays = _arrays(model)
    arrays["norm_stats"] = np.asarray(stats, np.float32)
    not_saved = "not saved, and any file already there is unchanged"
    try:
        header = json.loads(json.dumps({"format": FORMAT, "layers": [layer.spec() for layer in model], **meta}))
        header["sha256"] = _digest(header, arrays)
        if len(json.dumps(header)) > MAX_HEADER_CHARS:
            raise ModelError(f"{path}: the header (layers and meta) is {len(json.dumps(header)):,} characters as "
                             f"JSON, more than the {MAX_HEADER_CHARS:,} load reads")
        shapes = _check_layers(path, _check_header(path, header))       # the checks load makes, in the same words
        for key, shape in shapes.items():
            if arrays[key].shape != shape or arrays[key].dtype != np.float32:
                raise ModelError(f"{path}: {key} is {arrays[key].shape} {arrays[key].dtype}, "
                                 f"the layers declare {shape} float32")
    except (TypeError, ValueError) as e:                                  # meta that JSON cannot hold
        raise ModelError(f"{path}: the meta is not JSON ({e}); {not_saved}") from None
    except ModelError as e:
        raise ModelError(f"{e}; {not_saved}") from None
    _check_values(path, arrays, fix=f"{not_saved} (did training diverge? a smaller lr may help)")
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


def _npy_header(z, name):
    """(shape, dtype) of an .npy member of a zip, from its header alone: no data is read."""
    with z.open(name) as f:
        start = f.read(12)                            # magic (6 bytes), version (2), header length (2 or 4)
        version = tuple(start[6:8])
        if version not in [(1, 0), (2, 0)]:
            raise ValueError(f"{name} is a version {version} .npy file")
        size = int.from_bytes(start[8:10] if version == (1, 0) else start[8:12], "little")
        if size > MAX_NPY_HEADER:                     # numpy would read all of it before its own check
            raise ValueError(f"{name} declares a {size:,}-byte .npy header, more than {MAX_NPY_HEADER:,}")
        f = io.BytesIO(start + f.read(size))
        np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    return shape, dtype


def _read(z, name):
    with z.open(name) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _read_header(path, z):
    """The JSON header, read only if header.npy declares one string of sane length."""
    no_header = f"{path}: no npnet header; not a model saved by npnet"
    if "header.npy" not in z.namelist():
        raise ModelError(no_header)
    shape, dtype = _npy_header(z, "header.npy")
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * MAX_HEADER_CHARS:
        raise ModelError(f"{path}: no npnet header: header.npy is {shape} {dtype}, not one string of at most "
                         f"{MAX_HEADER_CHARS:,} characters")
    text = str(_read(z, "header.npy"))
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ModelError(f"{no_header} (the header is not JSON)") from None


def _check_header(path, header):
    """Refuse a header that is not {format, layers, sha256, ...} with every layer spec in LAYERS, naming the field."""
    fmt = header.get("format") if type(header) is dict else None
    if fmt == "npnet-model-1":
        raise ModelError(f"{path}: an old model file (npnet-model-1, whose checksum leaves out the layer list); "
                         f"{RETRAIN}")
    if fmt != FORMAT:
        raise ModelError(f"{path}: no npnet header; not a model saved by npnet")
    if type(header.get("sha256")) is not str:
        raise ModelError(f"{path}: header field sha256 must be a string, got {header.get('sha256')!r:.60}")
    specs = header.get("layers")
    if type(specs) is not list or not 1 <= len(specs) <= MAX_LAYERS:
        raise ModelError(f"{path}: header field layers must be a list of 1 to {MAX_LAYERS} layer specs, "
                         f"got {specs!r:.60}")
    for i, spec in enumerate(specs):
        _check_spec(f"{path}: header field layers[{i}]", spec)
    for key, (description, ok) in META.items():
        if key in header and not ok(header[key]):
            raise ModelError(f"{path}: header field {key} must be {description}, got {header[key]!r:.60}")
    return specs


def _check_spec(where, spec):
    """Refuse a layer spec that LAYERS does not allow: an unknown type, an unknown, missing or out-of-range field."""
    kind = spec.get("type") if type(spec) is dict else None
    if type(kind) is not str or kind not in LAYERS:
        raise ModelError(f"{where} must be a layer spec with a type in {', '.join(LAYERS)}, got {spec!r:.60}")
    fields = LAYERS[kind][1]
    for key in spec:
        if key != "type" and key not in fields:
            raise ModelError(f"{where} has an unknown field {key!r:.60}; a {kind} has {', '.join(fields) or 'none'}")
    for key, (description, ok) in fields.items():
        if key not in spec or not ok(spec[key]):
            raise ModelError(f"{where}.{key} must be {description}, got {spec.get(key, 'nothing')!r:.60}")


def _param_shapes(specs):
    """The shape of every parameter the specs declare, keyed as _arrays keys them."""
    shapes = {}
    for i, s in enumerate(specs):
        if s["type"] == "Dense":
            shapes.update({f"layer{i}.W": (s["fan_in"], s["fan_out"]), f"layer{i}.b": (s["fan_out"],)})
        elif s["type"] == "Conv2D":
            k, c_out = s["kernel_size"], s["out_channels"]
            shapes.update({f"layer{i}.W": (k, k, s["in_channels"], c_out), f"layer{i}.b": (c_out,)})
    return shapes


def _output_shape(spec, shape):
    """The per-image shape a layer makes of a per-image input shape; ValueError if the input does not fit."""
    kind = spec["type"]
    if kind == "Dense":
        if shape != (spec["fan_in"],):
            raise ValueError(f"takes inputs of shape ({spec['fan_in']},) but gets {shape}")
        return (spec["fan_out"],)
    if kind == "Flatten":
        return (math.prod(shape),)
    if kind == "Reshape":
        if math.prod(spec["shape"]) != math.prod(shape):
            raise ValueError(f"cannot reshape {shape} to {tuple(spec['shape'])}")
        return tuple(spec["shape"])
    if kind in ("Conv2D", "MaxPool2D"):
        if len(shape) != 3 or kind == "Conv2D" and shape[2] != spec["in_channels"]:
            want = spec["in_channels"] if kind == "Conv2D" else "C"
            raise ValueError(f"takes inputs of shape (H, W, {want}) but gets {shape}")
        height, width, c = shape
        if kind == "MaxPool2D":
            size = spec["size"]
            if min(height, width) < size:
                raise ValueError(f"cannot pool {size}×{size} windows from {shape}")
            return (height // size, width // size, c)
        k, s, p = spec["kernel_size"], spec["stride"], spec["padding"]
        out = ((height + 2 * p - k) // s + 1, (width + 2 * p - k) // s + 1, spec["out_channels"])
        if min(out) < 1:
            raise ValueError(f"a {k}×{k} kernel does not fit in {shape} padded by {p}")
        if c * k * k * out[0] * out[1] > MAX_VALUES:
            raise ValueError(f"needs a patch matrix of {c * k * k * out[0] * out[1]:,} values per image, "
                             f"more than the {MAX_VALUES:,} npnet allows")
        return out
    return shape  # ReLU, Dropout


def _check_layers(path, specs):
    """Refuse layers too big to allocate or not mapping (N, 784) images to (N, 10) logits; returns the array shapes."""
    shapes = _param_shapes(specs)
    n = sum(math.prod(s) for s in shapes.values())
    if n > MAX_PARAMS:
        raise ModelError(f"{path}: the layers declare {n:,} parameters, more than the {MAX_PARAMS:,} npnet loads")
    shape = (784,)
    for i, spec in enumerate(specs):
        try:
            shape = _output_shape(spec, shape)
            if math.prod(shape) > MAX_VALUES:
                raise ValueError(f"makes {math.prod(shape):,} values per image, "
                                 f"more than the {MAX_VALUES:,} npnet allows")
        except ValueError as e:
            raise ModelError(f"{path}: layers[{i}] ({spec['type']}) {e}; "
                             "a model must map (N, 784) images to (N, 10) logits") from None
    if shape != (10,):
        raise ModelError(f"{path}: the layers map (N, 784) images to (N, {', '.join(map(str, shape))}), "
                         "not to 10 class logits, one per digit")
    return {**shapes, "norm_stats": (2,)}


def _check_members(path, z, shapes):
    """Compare the file's arrays with the shapes the layers declare, reading only each .npy header."""
    names, wanted = set(z.namelist()), {f"{key}.npy" for key in shapes} | {"header.npy"}
    if names != wanted:
        raise ModelError(f"{path}: the file's arrays do not match its layers: unexpected {sorted(names - wanted)}, "
                         f"missing {sorted(wanted - names)}")
    for key, shape in shapes.items():
        got_shape, dtype = _npy_header(z, f"{key}.npy")
        if got_shape != shape or dtype != np.float32:
            raise ModelError(f"{path}: {key} is {got_shape} {dtype}, the layers declare {shape} float32")


def _check_values(path, arrays, fix=RETRAIN):
    """Refuse NaN or infinite parameters or norm stats, and a std that is not > 0."""
    for key, a in arrays.items():
        if not np.isfinite(a).all():
            raise ModelError(f"{path}: {key} holds NaN or infinite values; {fix}")
    if not arrays["norm_stats"][1] > 0:
        raise ModelError(f"{path}: norm_stats std is {arrays['norm_stats'][1]:g}; it must be > 0; {fix}")


def load(path, expect=None):
    """Read a model saved by save(), checked before anything is allocated; returns (model, norm_stats, header).

    expect, a list of layer specs, requires that architecture. A file that is missing, damaged, edited, old,
    too big, or not a (N, 784) -> (N, 10) classifier raises a ModelError naming the file and the field.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file (train one with `python -m npnet train`)")
    try:
        with zipfile.ZipFile(path) as z:
            header = _read_header(path, z)
            _check_header(path, header)
            if expect is not None and list(expect) != header["layers"]:
                raise ModelError(f"{path}: architecture mismatch: file has {header['layers']}, expected {list(expect)}")
            shapes = _check_layers(path, header["layers"])
            _check_members(path, z, shapes)
            arrays = {key: _read(z, f"{key}.npy") for key in shapes}
    except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error) as e:
        raise ModelError(f"{path}: not a readable model file ({type(e).__name__}: {e})") from None
    if _digest(header, arrays) != header["sha256"]:
        raise ModelError(f"{path}: checksum mismatch: the file was changed or damaged after it was saved")
    _check_values(path, arrays)
    model = build(header["layers"])
    for key, p in _arrays(model).items():
        p[...] = arrays[key]
    return model, tuple(np.float32(s) for s in arrays["norm_stats"]), header
