"""Conv2D, MaxPool2D, Flatten and Reshape: gradient checks in float64, a naive loop as the reference, shapes, a CNN file."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from npnet import gradcheck, modelfile
from npnet import model as M
from npnet.conv import Conv2D, Flatten, MaxPool2D, Reshape, col2im, conv_input_grad, im2col
from npnet.layers import Dense, ReLU
from npnet.recipes import cnn, model_path


def naive_conv(x, W, b, stride=1, padding=0):
    """The definition, one output value at a time: (N, H, W, C) images, (k, k, C, F) kernels -> (N, Ho, Wo, F)."""
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    N, H, Wd, C = x.shape
    k, _, _, F = W.shape
    Ho, Wo = (H - k) // stride + 1, (Wd - k) // stride + 1
    out = np.zeros((N, Ho, Wo, F))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    patch = x[n, i * stride:i * stride + k, j * stride:j * stride + k, :]   # (k, k, C)
                    out[n, i, j, f] = np.sum(patch * W[:, :, :, f]) + b[f]
    return out


@pytest.mark.parametrize("C, F, k, stride, padding",
                         [(1, 3, 3, 1, 0), (3, 4, 3, 1, 1), (2, 5, 5, 1, 2), (3, 2, 3, 2, 0), (2, 3, 3, 2, 1), (1, 2, 5, 2, 2)])
def test_conv_matches_the_naive_loop(C, F, k, stride, padding):
    rng = np.random.default_rng(0)
    layer = Conv2D(C, F, k, stride=stride, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"][...] = rng.standard_normal(F)
    x = rng.standard_normal((2, 9, 8, C))
    out = layer.forward(x)
    want = naive_conv(x, layer.params["W"], layer.params["b"], stride, padding)
    assert out.shape == want.shape
    assert np.allclose(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("C, F, k, stride, padding", [(1, 3, 3, 1, 0), (3, 4, 3, 1, 1), (4, 2, 5, 1, 0), (2, 3, 3, 2, 0)])
def test_conv_gradients(C, F, k, stride, padding):
    rng = np.random.default_rng(1)
    layer = Conv2D(C, F, k, stride=stride, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"][...] = rng.standard_normal(F)
    errors = gradcheck.check_layer(layer, rng.standard_normal((2, 7, 6, C)), rng)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("size, shape", [(2, (2, 6, 8, 3)), (2, (2, 7, 5, 2)), (3, (1, 9, 6, 2))])
def test_maxpool_gradients_and_values(size, shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)  # continuous random values: no ties, so the max is differentiable
    layer = MaxPool2D(size)
    out = layer.forward(x)
    N, H, W, C = shape
    Ho, Wo = H // size, W // size
    want = x[:, :Ho * size, :Wo * size].reshape(N, Ho, size, Wo, size, C).max(axis=(2, 4))
    assert np.array_equal(out, want)
    errors = gradcheck.check_layer(layer, x, rng)
    assert errors["x"] < 1e-6, errors


def test_maxpool_backward_survives_a_later_in_place_change_to_its_output():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 6, 6, 3))
    layer = MaxPool2D(2)
    out = layer.forward(x)
    grad = rng.standard_normal(out.shape)
    want = layer.backward(grad)
    out += 5.0                                        # e.g. a user editing the maps in place
    assert np.array_equal(layer.backward(grad), want)


def test_maxpool_sends_a_tied_window_gradient_to_the_first_max_row_by_row():
    layer = MaxPool2D(2)
    for window, first in [([[0, 0], [0, 0]], (0, 0)), ([[0, 1], [1, 1]], (0, 1)), ([[0, 0], [2, 2]], (1, 0)),
                          ([[-3, -2], [-2, -1]], (1, 1))]:
        layer.forward(np.array(window, float)[None, :, :, None])                    # (1, 2, 2, 1)
        dx = layer.backward(np.ones((1, 1, 1, 1)))[0, :, :, 0]
        assert dx.sum() == 1.0 and dx[first] == 1.0, (window, dx)
    x = np.random.default_rng(9).integers(0, 3, (4, 6, 6, 5)).astype(float)       # many ties
    layer.forward(x)
    windows = x.reshape(4, 3, 2, 3, 2, 5).transpose(0, 1, 3, 5, 2, 4).reshape(4, 3, 3, 5, 4)
    assert np.array_equal(layer.argmax, windows.argmax(axis=-1))                    # np.argmax's choice


def test_pool_then_relu_is_relu_then_pool_forward_and_backward():
    # maxpool(relu(x)) == relu(maxpool(x)); so are the gradients wherever the pooled max is not 0
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 8, 8, 4))
    grad = rng.standard_normal((3, 4, 4, 4))
    a = [MaxPool2D(2), ReLU()]
    b = [ReLU(), MaxPool2D(2)]
    assert np.array_equal(M.forward(a, x), M.forward(b, x))
    assert np.array_equal(M.backward(a, grad), M.backward(b, grad))
    assert gradcheck.check_model([Reshape((8, 8, 1)), Conv2D(1, 3, 3, rng=rng, dtype=np.float64), MaxPool2D(2), ReLU(),
                                  Flatten(), Dense(27, 4, rng, np.float64)],
                                 rng.standard_normal((3, 64)), rng.integers(0, 4, 3))["layer1.W"] < 1e-6


def test_flatten_and_reshape_gradients_and_round_trip():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5, 2))
    assert gradcheck.check_layer(Flatten(), x, rng)["x"] < 1e-6
    assert gradcheck.check_layer(Reshape((5, 8)), x, rng)["x"] < 1e-6
    flat = Flatten().forward(x)
    assert flat.shape == (3, 40) and np.array_equal(Reshape((4, 5, 2)).forward(flat), x)


def test_im2col_and_col2im_are_adjoint():
    # <im2col(x), c> == <x, col2im(c)> for all x, c: col2im is exactly im2col's transpose
    rng = np.random.default_rng(4)
    for k, stride in [(3, 1), (2, 2), (3, 2)]:
        x = rng.standard_normal((2, 7, 8, 3))
        cols = im2col(x, k, stride)
        c = rng.standard_normal(cols.shape)
        assert np.isclose(np.sum(cols * c), np.sum(x * col2im(c, x.shape, k, stride)))


@pytest.mark.parametrize("C", [1, 3])   # one channel takes im2col's other copy order
@pytest.mark.parametrize("k, stride", [(3, 1), (2, 2), (5, 1), (3, 3)])
def test_im2col_is_the_patch_matrix_its_docstring_defines(C, k, stride):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 11, 9, C))
    cols = im2col(x, k, stride)
    Ho, Wo = (11 - k) // stride + 1, (9 - k) // stride + 1
    want = np.array([[x[n, i * stride + u, j * stride + v, c] for u in range(k) for v in range(k) for c in range(C)]
                     for n in range(3) for i in range(Ho) for j in range(Wo)])
    assert cols.shape == want.shape and np.array_equal(cols, want)
    with_ones = im2col(x, k, stride, ones=True)   # what Conv2D uses: the same, then a column of ones for the bias
    assert with_ones.shape == (len(want), k * k * C + 1)
    assert np.array_equal(with_ones[:, :-1], want) and np.all(with_ones[:, -1] == 1)


@pytest.mark.parametrize("N", [37, 5, 1, 16])
@pytest.mark.parametrize("C, k, stride", [(1, 5, 1), (3, 3, 1), (4, 3, 2), (2, 2, 3)])
def test_conv_input_grad_is_col2im_of_the_patch_gradient(N, C, k, stride):
    # the fast path Conv2D.backward takes must give what the teaching path gives, for any batch size and stride
    rng = np.random.default_rng(8)
    x_shape, F = (N, 10, 9, C), 6
    Ho, Wo = (10 - k) // stride + 1, (9 - k) // stride + 1
    W = rng.standard_normal((k, k, C, F))
    grad = rng.standard_normal((N, Ho, Wo, F))
    want = col2im(grad.reshape(-1, F) @ W.reshape(-1, F).T, x_shape, k, stride)
    got = conv_input_grad(grad, W, x_shape, stride)
    assert got.shape == x_shape and got.dtype == np.float64
    assert np.allclose(got, want, rtol=1e-13, atol=1e-13)
    got32 = conv_input_grad(grad.astype(np.float32), W.astype(np.float32), x_shape, stride)
    assert got32.dtype == np.float32 and np.allclose(got32, want, rtol=1e-4, atol=1e-4)


def test_conv_gradients_over_a_batch_of_twenty():
    # the gradient checks above use 2 examples; check a batch of 20 too, with padding and a nonzero bias
    rng = np.random.default_rng(9)
    layer = Conv2D(2, 3, 3, padding=1, rng=rng, dtype=np.float64)
    layer.params["b"][...] = rng.standard_normal(3)
    errors = gradcheck.check_layer(layer, rng.standard_normal((20, 5, 4, 2)), rng)
    assert max(errors.values()) < 1e-6, errors


def test_cnn_shapes_dtype_and_whole_model_gradients():
    rng = np.random.default_rng(5)
    model = cnn(rng=rng)
    X = rng.standard_normal((4, 784)).astype(np.float32)
    shapes = []
    for layer in model:
        X = layer.forward(X)
        shapes.append(X.shape[1:])
    assert shapes == [(28, 28, 1), (24, 24, 32), (12, 12, 32), (12, 12, 32), (8, 8, 64), (4, 4, 64),
                      (4, 4, 64), (1024,), (128,), (128,), (128,), (10,)]
    assert X.dtype == np.float32 and M.backward(model, np.ones_like(X)).shape == (4, 784)

    small = [Reshape((6, 6, 1)), Conv2D(1, 2, 3, rng=rng, dtype=np.float64), MaxPool2D(2),
             Conv2D(2, 3, 2, padding=1, rng=rng, dtype=np.float64), Flatten(), Dense(27, 4, rng, np.float64)]
    errors = gradcheck.check_model(small, rng.standard_normal((3, 36)), rng.integers(0, 4, 3))
    assert len(errors) == 6 and max(errors.values()) < 1e-6, errors


def test_cnn_save_load_round_trip(tmp_path):
    model = cnn(rng=np.random.default_rng(6))
    stats = (np.float32(0.13), np.float32(0.31))
    path = M.save(tmp_path / "cnn.npz", model, stats, recipe="cnn")
    loaded, loaded_stats, header = M.load(path)
    assert [layer.spec() for layer in loaded] == [layer.spec() for layer in model] == header["layers"]
    X = np.random.default_rng(7).standard_normal((5, 784)).astype(np.float32)
    assert np.array_equal(M.predict_proba(loaded, X), M.predict_proba(model, X)) and loaded_stats == stats


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expects \(N, H, W, 3\)"):
        Conv2D(3, 4, 3).forward(np.zeros((2, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        Conv2D(1, 4, 5).forward(np.zeros((2, 4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="MaxPool2D"):
        MaxPool2D(2).forward(np.zeros((2, 8), np.float32))


@pytest.mark.slow
def test_the_shipped_cnn_scores_at_least_99_2_percent_from_the_command_line():
    path = model_path("cnn")  # committed: `python -m npnet train --model cnn` reproduces it
    done = subprocess.run([sys.executable, "-m", "npnet", "evaluate", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "(cnn)" in done.stdout
    acc = float(re.search(r"test accuracy: ([\d.]+)%", done.stdout).group(1))
    assert acc >= 99.2, done.stdout
    _, _, header = M.load(path)
    # The accuracy the file records (which notebooks and the app quote) is the one just measured: within the
    # printed rounding and an image or two that another BLAS kernel may round the other way.
    assert header["test_acc"] == pytest.approx(acc / 100, abs=2e-4), (header["test_acc"], done.stdout)


def test_a_channels_first_cnn_file_from_an_older_npnet_is_refused_with_the_fix(tmp_path):
    path = M.save(tmp_path / "new.npz", cnn(rng=np.random.default_rng(6)), (np.float32(0.13), np.float32(0.31)))
    with np.load(path, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files if name != "header"}
        header = json.loads(str(z["header"]))
    for spec in header["layers"]:
        spec.pop("layout", None)                                  # as an older, channels-first npnet wrote it
    header["sha256"] = modelfile._digest(header, arrays)         # a sound file, only from the old layout
    np.savez(tmp_path / "old.npz", header=np.array(json.dumps(header)), **arrays)
    with pytest.raises(M.ModelError, match=r"layout must be \"NHWC\".*retrain it"):
        M.load(tmp_path / "old.npz")
