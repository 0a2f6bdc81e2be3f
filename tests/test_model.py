"""Model files: the round trip, every way a file can be bad (damaged, edited, old, crafted, oversized), and eval mode."""

import hashlib
import io
import json
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from npnet import model as M
from npnet import modelfile
from npnet import recipes
from npnet.conv import Conv2D, Flatten, MaxPool2D, Reshape
from npnet.layers import Dense, ReLU

STATS = (np.float32(0.13), np.float32(0.31))


def small_model(seed=0):
    return M.mlp((784, 32, 10), np.random.default_rng(seed))


def test_round_trip_restores_every_weight_and_bias(tmp_path):
    model = small_model()
    rng = np.random.default_rng(1)
    for layer in model:
        for p in layer.params.values():
            p[...] = rng.standard_normal(p.shape)  # non-zero biases too, so a load that skips any array fails
    path = M.save(tmp_path / "m.npz", model, STATS, recipe="test")
    loaded, stats, header = M.load(path)
    assert header["recipe"] == "test" and header["format"] == "npnet-model-2" and stats == STATS
    assert [layer.spec() for layer in loaded] == [layer.spec() for layer in model]
    for a, b in zip(model, loaded):
        assert a.params.keys() == b.params.keys()
        assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    x = rng.standard_normal((5, 784)).astype(np.float32)
    assert np.array_equal(M.forward(model, x), M.forward(loaded, x))


def _rewrite(src, dst, change):
    """Copy an .npz, letting change(name, bytes) alter each member (None drops it)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            raw = change(name, zin.read(name))
            if raw is not None:
                zout.writestr(name, raw)
    return dst


def _npy(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _edit_header(src, dst, edit):
    """Copy an .npz, applying edit(header) to its JSON header and leaving the checksum as it was."""
    def change(name, raw):
        if name != "header.npy":
            return raw
        header = json.loads(str(np.load(io.BytesIO(raw))))
        edit(header)
        return _npy(np.array(json.dumps(header)))
    return _rewrite(src, dst, change)


def test_a_bit_flipped_in_any_array_or_in_the_header_is_rejected(tmp_path):
    path = M.save(tmp_path / "m.npz", small_model(), STATS, recipe="test")
    with zipfile.ZipFile(path) as z:
        members = z.namelist()
    arrays = [f"layer{i}.{k}.npy" for i in (0, 2) for k in "Wb"] + ["norm_stats.npy"]
    assert sorted(members) == sorted(arrays + ["header.npy"])

    def flip(target):
        def change(name, raw):
            if name != target:
                return raw
            if name == "header.npy":                     # the JSON is stored as UTF-32: 'test' becomes 'tesu'
                word = "test".encode("utf-32-le")
                assert raw.count(word) == 1
                return raw.replace(word, "tesu".encode("utf-32-le"))
            return raw[:-1] + bytes([raw[-1] ^ 1])       # the last value's lowest exponent bit: finite, but changed
        return change

    for target in members:
        bad = _rewrite(path, tmp_path / f"bad-{target}.npz", flip(target))
        with pytest.raises(M.ModelError, match="checksum mismatch"):
            M.load(bad)
            pytest.fail(f"a changed {target} was loaded")


def test_the_checksum_covers_every_arrays_name_dtype_shape_and_bytes():
    model = small_model()
    arrays = {**modelfile._arrays(model), "norm_stats": np.asarray(STATS, np.float32)}
    header = {"format": modelfile.FORMAT, "layers": [layer.spec() for layer in model]}
    digest = modelfile._digest(header, arrays)
    assert modelfile._digest({**header, "sha256": "anything"}, arrays) == digest   # only the checksum is left out
    assert modelfile._digest({**header, "recipe": "x"}, arrays) != digest
    for key, a in arrays.items():
        changed = a.copy()
        changed.flat[-1] += 1
        assert modelfile._digest(header, {**arrays, key: changed}) != digest, key
        assert modelfile._digest(header, {**arrays, key: a.reshape(-1, 1)}) != digest, key
        assert modelfile._digest(header, {**arrays, key: a.view(np.int32)}) != digest, key
        renamed = {("z" + k if k == key else k): v for k, v in arrays.items()}
        assert modelfile._digest(header, renamed) != digest, key
    assert "norm_stats" in arrays and len(arrays) == 5


@pytest.mark.parametrize("edit", [
    lambda h: h["layers"].__setitem__(1, {"type": "Flatten"}),  # ReLU -> Flatten: same shapes, other answers
    lambda h: h.__setitem__("test_acc", 0.999),                 # the meta is covered too
])
def test_an_edited_header_breaks_the_checksum(tmp_path, edit):
    path = M.save(tmp_path / "m.npz", small_model(), STATS, test_acc=0.9)
    with pytest.raises(M.ModelError, match="checksum mismatch"):
        M.load(_edit_header(path, tmp_path / "edited.npz", edit))


def test_an_old_format_file_asks_to_be_retrained(tmp_path):
    arrays = {f"layer{i}.{k}": v for i, layer in enumerate(small_model()) for k, v in layer.params.items()}
    arrays["norm_stats"] = np.asarray(STATS, np.float32)
    h = hashlib.sha256()  # format 1's checksum: the arrays only
    for key in sorted(arrays):
        h.update(f"{key}:{arrays[key].dtype.str}:{arrays[key].shape}".encode())
        h.update(arrays[key].tobytes())
    header = {"format": "npnet-model-1", "layers": [layer.spec() for layer in small_model()], "sha256": h.hexdigest()}
    np.savez(tmp_path / "old.npz", header=np.array(json.dumps(header)), **arrays)
    with pytest.raises(M.ModelError, match=r"old\.npz: an old model file .*retrain it with `python -m npnet train`"):
        M.load(tmp_path / "old.npz")


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
    with pytest.raises(M.ModelError, match=r"unexpected \['evil.npy'\]"):
        M.load(path)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, evil, allow_pickle=True)
    swap = _rewrite(path, tmp_path / "swap.npz", lambda name, raw: (
        None if name == "evil.npy" else buf.getvalue() if name == "layer0.b.npy" else raw))
    with pytest.raises(M.ModelError, match=r"layer0.b is \(1,\) object, the layers declare \(32,\) float32"):
        M.load(swap)


def test_other_architecture_is_a_clear_error(tmp_path):
    path = M.save(tmp_path / "m.npz", small_model(), STATS)
    want = [layer.spec() for layer in M.mlp((784, 256, 128, 10))]
    with pytest.raises(M.ModelError, match="architecture mismatch"):
        M.load(path, expect=want)

    def grow(header):  # a header that claims other shapes than the weights have
        header["layers"][0]["fan_out"] = header["layers"][2]["fan_in"] = 33

    with pytest.raises(M.ModelError, match=r"layer0.W is \(784, 32\) float32, the layers declare \(784, 33\)"):
        M.load(_edit_header(path, tmp_path / "lie.npz", grow))


def _dropout_model():
    return recipes.mlp_with_dropout((784, 32, 10), 0.5, np.random.default_rng(0))  # Dense ReLU Dropout Dense


@pytest.mark.parametrize("edit, field", [
    (lambda h: h["layers"][2].__setitem__("p", 2), r"layers\[2\]\.p must be a number in \[0, 1\), got 2"),
    (lambda h: h["layers"][2].__setitem__("p", "0.5"), r"layers\[2\]\.p must be a number"),
    (lambda h: h["layers"][0].__setitem__("fan_in", -1), r"layers\[0\]\.fan_in must be an integer from 1 to"),
    (lambda h: h["layers"][0].__setitem__("fan_in", "x"), r"layers\[0\]\.fan_in must be an integer .*got 'x'"),
    (lambda h: h["layers"][0].pop("fan_out"), r"layers\[0\]\.fan_out must be an integer .*got 'nothing'"),
    (lambda h: h["layers"][1].__setitem__("alpha", 0.1), r"layers\[1\] has an unknown field 'alpha'; a ReLU has none"),
    (lambda h: h["layers"][2].__setitem__("rng", 1), r"layers\[2\] has an unknown field 'rng'; a Dropout has p"),
    (lambda h: h["layers"].__setitem__(1, {"type": "Layer"}), r"layers\[1\] must be a layer spec with a type in Dense"),
    (lambda h: h["layers"].__setitem__(1, 5), r"layers\[1\] must be a layer spec .*got 5"),
    (lambda h: h.__setitem__("layers", None), r"header field layers must be a list of 1 to 64 layer specs, got None"),
    (lambda h: h.__setitem__("layers", 5), r"header field layers must be a list .*got 5"),
    (lambda h: h.__setitem__("layers", []), r"header field layers must be a list .*got \[\]"),
])
def test_a_crafted_header_is_refused_naming_the_field(tmp_path, edit, field):
    path = M.save(tmp_path / "m.npz", _dropout_model(), STATS)
    with pytest.raises(M.ModelError, match=r"crafted\.npz: header field " + field.removeprefix(r"header field ")):
        M.load(_edit_header(path, tmp_path / "crafted.npz", edit))


def test_norm_stats_that_are_not_two_floats_are_refused(tmp_path):
    path = M.save(tmp_path / "m.npz", small_model(), STATS)
    bad = _rewrite(path, tmp_path / "s.npz", lambda name, raw: _npy(np.array("0.13")) if name == "norm_stats.npy" else raw)
    with pytest.raises(M.ModelError, match=r"s\.npz: norm_stats is \(\) <U4, the layers declare \(2,\) float32"):
        M.load(bad)


@pytest.mark.parametrize("key, value, stats, match", [
    ("W", np.nan, STATS, r"layer0\.W holds NaN or infinite values"),
    ("b", np.inf, STATS, r"layer0\.b holds NaN or infinite values"),
    (None, None, (np.float32(np.nan), np.float32(0.31)), r"norm_stats holds NaN or infinite values"),
    (None, None, (np.float32(0.13), np.float32(np.inf)), r"norm_stats holds NaN or infinite values"),
    (None, None, (np.float32(0.13), np.float32(0.0)), r"norm_stats std is 0; it must be > 0"),
    (None, None, (np.float32(0.13), np.float32(-0.31)), r"norm_stats std is -0\.31; it must be > 0"),
])
def test_non_finite_parameters_and_a_bad_std_are_refused(tmp_path, monkeypatch, key, value, stats, match):
    model = small_model()
    if key:
        model[0].params[key].flat[3] = value
    good = M.save(tmp_path / "m.npz", small_model(), STATS)
    before = good.read_bytes()
    with pytest.raises(M.ModelError, match=r"m\.npz: " + match + r".*not saved, and any file already there is unchanged"):
        M.save(good, model, stats)                   # save refuses what load would refuse, and keeps the old file
    assert good.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    with monkeypatch.context() as m:                 # such a file, written anyway, with a correct checksum:
        m.setattr(modelfile, "_check_values", lambda *args, **kwargs: None)
        path = M.save(tmp_path / "bad.npz", model, stats)
    with pytest.raises(M.ModelError, match=r"bad\.npz: " + match):
        M.load(path)                                 # the values themselves are the fault


def _small_cnn(head=10, shape=(28, 28, 1), fan_in=288):
    rng = np.random.default_rng(0)
    return [Reshape(shape), Conv2D(1, 2, 5, rng=rng), MaxPool2D(2), ReLU(), Flatten(), Dense(fan_in, head, rng)]


@pytest.mark.parametrize("make, match", [
    (lambda: M.mlp((784, 32, 1000)), r"map \(N, 784\) images to \(N, 1000\), not to 10 class logits"),
    (lambda: M.mlp((784, 32, 3)), r"map \(N, 784\) images to \(N, 3\), not to 10"),
    (lambda: M.mlp((100, 32, 10)), r"layers\[0\] \(Dense\) takes inputs of shape \(100,\) but gets \(784,\)"),
    (lambda: _small_cnn(head=3), r"map \(N, 784\) images to \(N, 3\), not to 10"),
    (lambda: _small_cnn(fan_in=300), r"layers\[5\] \(Dense\) takes inputs of shape \(300,\) but gets \(288,\)"),
    (lambda: _small_cnn(shape=(32, 32, 1), fan_in=392), r"layers\[0\] \(Reshape\) cannot reshape \(784,\) to \(32, 32, 1\)"),
    (lambda: _small_cnn()[:1] + _small_cnn()[2:], r"layers\[4\] \(Dense\) takes inputs of shape \(288,\) but gets \(196,\)"),
])
def test_a_model_that_is_not_784_to_10_is_refused(tmp_path, monkeypatch, make, match):
    with pytest.raises(M.ModelError, match=r"m\.npz: .*" + match + r".*; not saved"):
        M.save(tmp_path / "m.npz", make(), STATS)    # save refuses what load would refuse
    with monkeypatch.context() as m:                 # such a file, written anyway:
        m.setattr(modelfile, "_check_layers", lambda *args: {})
        path = M.save(tmp_path / "m.npz", make(), STATS)
    with pytest.raises(M.ModelError, match=r"m\.npz: .*" + match):
        M.load(path)


def test_a_small_cnn_and_the_course_cnn_pass_the_shape_check(tmp_path):
    for model in [_small_cnn(), recipes.cnn()]:
        loaded, _, _ = M.load(M.save(tmp_path / "cnn.npz", model, STATS))
        assert M.predict_proba(loaded, np.zeros((2, 784), np.float32)).shape == (2, 10)


def _refused_fast_and_small(path, match):
    """Load must refuse path within 2 s, allocating under 20 MB on the way."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(M.ModelError, match=match):
            M.load(path)
        seconds, (_, peak) = time.perf_counter() - start, tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds < 2 and peak < 20e6, (seconds, peak)


def test_a_header_declaring_a_huge_layer_is_refused_before_allocating(tmp_path):
    path = M.save(tmp_path / "m.npz", small_model(), STATS)

    def huge(header):  # Dense(12000, 12000) in a 784 -> 10 chain: 153,552,010 parameters, 614 MB as float32
        header["layers"] = [{"type": "Dense", "fan_in": 784, "fan_out": 12000}, {"type": "ReLU"},
                            {"type": "Dense", "fan_in": 12000, "fan_out": 12000}, {"type": "ReLU"},
                            {"type": "Dense", "fan_in": 12000, "fan_out": 10}]

    crafted = _edit_header(path, tmp_path / "huge.npz", huge)
    assert crafted.stat().st_size < 300_000
    _refused_fast_and_small(crafted, r"huge\.npz: the layers declare 153,552,010 parameters, more than the 10,000,000")


def _bomb(name, descr, shape):
    """A deflated .npy member whose header declares shape: 4 MB of zeros follow, a few kB on disk."""
    def change(member, raw):
        if member != name:
            return raw
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
        return buf.getvalue() + bytes(4_000_000)
    return change


@pytest.mark.parametrize("name, descr, shape, match", [
    ("layer0.W.npy", "<f4", (2 ** 28,), r"layer0\.W is \(268435456,\) float32, the layers declare \(784, 32\)"),
    ("norm_stats.npy", "<f4", (2 ** 28,), r"norm_stats is \(268435456,\) float32, the layers declare \(2,\)"),
    ("header.npy", "<U268435456", (), r"no npnet header: header\.npy is \(\) <U268435456, not one string of at most 65,536"),
])
def test_a_zip_bomb_is_refused_from_the_npy_headers_before_reading(tmp_path, name, descr, shape, match):
    path = M.save(tmp_path / "m.npz", small_model(), STATS)
    bomb = tmp_path / "bomb.npz"
    change = _bomb(name, descr, shape)
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for member in zin.namelist():
            zout.writestr(member, change(member, zin.read(member)))
    assert bomb.stat().st_size < 200_000
    _refused_fast_and_small(bomb, r"bomb\.npz: " + match)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = M.save(tmp_path / "m.npz", small_model(0), STATS)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        M.save(path, small_model(1), STATS)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_predict_proba_leaves_each_layer_in_the_mode_it_found_it():
    model = _dropout_model()
    X = np.random.default_rng(0).standard_normal((4, 784)).astype(np.float32)
    first = M.predict_proba(model, X)
    assert [layer.training for layer in model] == [True] * 4  # back in training mode: dropout on for fit
    assert np.array_equal(M.predict_proba(model, X), first)   # and evaluated with dropout off
    M.set_training(model, False)
    M.predict_proba(model, X)
    assert [layer.training for layer in model] == [False] * 4
    M.set_training(model, True)
    with pytest.raises(ValueError):
        M.predict_proba(model, X[:, :100])                      # fails inside forward
    assert [layer.training for layer in model] == [True] * 4


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
