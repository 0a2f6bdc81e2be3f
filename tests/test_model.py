"""Model files (round trip and every way a file can be bad), the training loop and determinism."""

import json
import zipfile

import numpy as np
import pytest

from npnet import model as M
from npnet import recipes
from npnet.optim import Adam
from npnet.train import batches, fit

STATS = (np.float32(0.13), np.float32(0.31))


def small_model(seed=0):
    return M.mlp((784, 32, 10), np.random.default_rng(seed))


def test_round_trip(tmp_path):
    model = small_model()
    path = M.save(tmp_path / "m.npz", model, STATS, recipe="test")
    loaded, stats, header = M.load(path)
    assert header["recipe"] == "test" and stats == STATS
    x = np.random.default_rng(1).standard_normal((5, 784)).astype(np.float32)
    assert np.array_equal(M.forward(model, x), M.forward(loaded, x))
    assert [layer.spec() for layer in loaded] == [layer.spec() for layer in model]


def _rewrite(src, dst, change):
    """Copy an .npz, letting change(name, bytes) alter each member."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, change(name, zin.read(name)))


def test_tampered_weights_are_rejected(tmp_path):
    path = M.save(tmp_path / "m.npz", small_model(), STATS)

    def flip(name, raw):
        return raw[:-1] + bytes([raw[-1] ^ 1]) if name == "layer0.W.npy" else raw

    _rewrite(path, tmp_path / "bad.npz", flip)
    with pytest.raises(M.ModelError, match="checksum mismatch"):
        M.load(tmp_path / "bad.npz")


def test_truncated_and_non_model_files_are_rejected(tmp_path):
    path = M.save(tmp_path / "m.npz", small_model(), STATS)
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(M.ModelError, match="not a readable model file"):
        M.load(tmp_path / "cut.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(M.ModelError, match="not a readable model file"):
        M.load(tmp_path / "text.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(M.ModelError, match="no npnet header"):
        M.load(tmp_path / "other.npz")
    with pytest.raises(M.ModelError, match="no such model file"):
        M.load(tmp_path / "missing.npz")


def test_pickled_arrays_are_never_loaded(tmp_path):
    path = M.save(tmp_path / "m.npz", small_model(), STATS)
    evil = np.array([{"x": 1}], dtype=object)
    with zipfile.ZipFile(path, "a") as z:
        with z.open("evil.npy", "w") as f:
            np.lib.format.write_array(f, evil, allow_pickle=True)
    with pytest.raises(M.ModelError, match="not a readable model file.*pickle"):
        M.load(path)


def test_other_architecture_is_a_clear_error(tmp_path):
    path = M.save(tmp_path / "m.npz", small_model(), STATS)
    want = [layer.spec() for layer in M.mlp((784, 256, 128, 10))]
    with pytest.raises(M.ModelError, match="architecture mismatch"):
        M.load(path, expect=want)

    def grow(name, raw):  # a header that claims another shape than the weights have
        if name != "header.npy":
            return raw
        arr = np.load(__import__("io").BytesIO(raw))
        header = json.loads(str(arr))
        header["layers"][0]["fan_out"] = 33
        buf = __import__("io").BytesIO()
        np.save(buf, np.array(json.dumps(header)))
        return buf.getvalue()

    _rewrite(path, tmp_path / "lie.npz", grow)
    with pytest.raises(M.ModelError, match="layer0.W is \\(784, 32\\).*wants \\(784, 33\\)"):
        M.load(tmp_path / "lie.npz")


def test_save_is_atomic(tmp_path, monkeypatch):
    path = M.save(tmp_path / "m.npz", small_model(0), STATS)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        M.save(path, small_model(1), STATS)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_batches_reshuffle_the_examples_themselves():
    X, y = np.arange(20, dtype=np.float32)[:, None], np.arange(20)
    rng = np.random.default_rng(0)
    first = [set(yb) for _, yb in batches(X, y, 5, rng)]
    second = [set(yb) for _, yb in batches(X, y, 5, rng)]
    assert sorted(len(b) for b in first) == [5, 5, 5, 5]
    assert set().union(*first) == set(range(20))
    assert first != second and not any(b in first for b in second)  # new groupings, not a new order
    Xb, yb = next(batches(X, y, 7, np.random.default_rng(3)))
    assert np.array_equal(Xb[:, 0], yb)  # rows stay with their labels


def _fit(seed, X, y):
    rng = np.random.default_rng(seed)
    model = M.mlp((784, 32, 10), rng)
    history = fit(model, Adam(model, lr=3e-3, weight_decay=5e-4), X, y, X[:100], y[:100],
                  num_epochs=2, batch_size=64, rng=rng, progress=False)
    return model, history


def test_same_seed_same_weights_and_training_learns():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 784)).astype(np.float32)
    y = (X[:, :10].argmax(1)).astype(np.int64)  # a learnable rule
    a, history = _fit(7, X, y)
    b, _ = _fit(7, X, y)
    c, _ = _fit(8, X, y)
    assert all(np.array_equal(la.params[k], lb.params[k]) for la, lb in zip(a, b) for k in la.params)
    assert not np.array_equal(a[0].params["W"], c[0].params["W"])
    assert len(history["step_loss"]) == 2 * 8 and len(history["dev_acc"]) == 2
    assert history["epoch_loss"][1] < history["epoch_loss"][0]
    assert history["train_acc"][-1] > 0.5  # chance is 0.1


@pytest.mark.parametrize("make", [
    lambda rng: M.mlp((784, 32, 10), rng),
    lambda rng: recipes.cnn((4, 6), 5, 16, 0.0, rng),
])
def test_backward_without_the_input_gradient_gives_the_same_parameter_gradients(make):
    from npnet.losses import SoftmaxCrossEntropy

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 784)).astype(np.float32), rng.integers(0, 10, 16)
    full, lean = make(np.random.default_rng(1)), make(np.random.default_rng(1))
    for model, input_grad in [(full, True), (lean, False)]:
        loss_fn = SoftmaxCrossEntropy()
        loss_fn.forward(M.forward(model, X), y)
        dX = M.backward(model, loss_fn.backward(), input_grad=input_grad)
        assert (dX is None) == (not input_grad) and (dX is None or dX.shape == X.shape)
    for a, b in zip(full, lean):
        for name in a.grads:
            assert np.array_equal(a.grads[name], b.grads[name])
