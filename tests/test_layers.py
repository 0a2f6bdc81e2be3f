"""Gradient checks (float64, central differences) for every layer and the loss, plus their contracts."""

import numpy as np
import pytest

from npnet import gradcheck
from npnet.layers import Dense, Dropout, ReLU, he_normal
from npnet.losses import SoftmaxCrossEntropy, log_softmax, softmax


def test_dense_gradients():
    rng = np.random.default_rng(0)
    layer = Dense(7, 5, rng, dtype=np.float64)
    layer.params["b"][...] = rng.standard_normal(5)
    errors = gradcheck.check_layer(layer, rng.standard_normal((4, 7)))
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < 1e-6, errors


def test_relu_gradients_away_from_kink():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 9))
    x[np.abs(x) < 1e-3] = 0.5  # central differences are undefined at exactly 0
    errors = gradcheck.check_layer(ReLU(), x)
    assert errors["x"] < 1e-6, errors


def test_dropout_gradients_with_fixed_mask():
    rng = np.random.default_rng(2)
    layer = Dropout(0.3, rng=np.random.default_rng(5))
    x = rng.standard_normal((8, 6))
    # the same mask on every forward call, so the function being differentiated is fixed
    layer.rng = type("Fixed", (), {"random": lambda self, shape, dtype: np.random.default_rng(9).random(shape, dtype)})()
    errors = gradcheck.check_layer(layer, x)
    assert errors["x"] < 1e-6, errors


def test_dropout_train_and_eval():
    layer = Dropout(0.5, rng=np.random.default_rng(0))
    x = np.ones((2000, 50), np.float32)
    out = layer.forward(x)
    assert set(np.unique(out)) == {0.0, 2.0}
    assert abs(out.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation
    assert np.array_equal(layer.backward(np.ones_like(x)), out)
    layer.training = False
    assert np.array_equal(layer.forward(x), x)


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5])
def test_dropout_rejects_a_probability_outside_0_to_1(p):
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(p)


def test_loss_gradient_and_value():
    rng = np.random.default_rng(3)
    logits, y = rng.standard_normal((5, 10)) * 3, rng.integers(0, 10, 5)
    assert gradcheck.check_loss(SoftmaxCrossEntropy(), logits, y) < 1e-6
    expected = -np.mean(np.log(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))[np.arange(5), y])
    assert np.isclose(SoftmaxCrossEntropy().forward(logits, y), expected)


def test_loss_is_stable_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], np.float32)
    loss_fn = SoftmaxCrossEntropy()
    assert loss_fn.forward(logits, np.array([0, 1])) == pytest.approx(0.0, abs=1e-6)
    wrong = loss_fn.forward(logits, np.array([1, 0]))  # log(0) would be -inf
    assert np.isfinite(wrong) and wrong == pytest.approx(2e4, rel=1e-6)
    assert np.all(np.isfinite(loss_fn.backward()))
    assert np.allclose(softmax(logits).sum(1), 1) and np.all(np.isfinite(log_softmax(logits)))


def test_dense_shapes_dtype_and_he_scale():
    rng = np.random.default_rng(0)
    layer = Dense(784, 256, rng)
    out = layer.forward(np.zeros((3, 784), np.float32))
    assert out.shape == (3, 256) and out.dtype == np.float32
    W = he_normal(2000, 500, np.random.default_rng(1))
    assert W.dtype == np.float32 and abs(W.std() - np.sqrt(2 / 2000)) < 1e-3
    dx = layer.backward(np.ones((3, 256), np.float32))
    assert dx.shape == (3, 784) and layer.grads["W"].shape == layer.params["W"].shape


def test_check_layer_catches_a_wrong_backward():
    class Broken(Dense):
        def backward(self, grad):
            dx = super().backward(grad)
            self.grads["W"] *= 1.01  # a 1% error must be caught
            return dx

    rng = np.random.default_rng(0)
    errors = gradcheck.check_layer(Broken(4, 3, rng, dtype=np.float64), rng.standard_normal((2, 4)))
    assert errors["W"] > 1e-3 and errors["x"] < 1e-6


def test_whole_mlp_gradients():
    from npnet.layers import Dense

    rng = np.random.default_rng(4)
    model = [Dense(9, 8, rng, np.float64), ReLU(), Dense(8, 6, rng, np.float64), ReLU(), Dense(6, 4, rng, np.float64)]
    X, y = rng.standard_normal((5, 9)), rng.integers(0, 4, 5)
    errors = gradcheck.check_model(model, X, y)
    assert list(errors) == ["layer0.W", "layer0.b", "layer2.W", "layer2.b", "layer4.W", "layer4.b"]
    assert max(errors.values()) < 1e-6, errors


def test_softmax_subtracts_each_rows_own_max():
    # Rows on very different scales: a max over the whole batch would underflow the second row to 0/0.
    logits = np.array([[1000.0, 1001.0, 999.0], [0.0, 1.0, -1.0], [-800.0, -799.0, -801.0]])
    row = np.exp([0.0, 1.0, -1.0]) / np.exp([0.0, 1.0, -1.0]).sum()
    assert np.allclose(softmax(logits), [row] * 3, rtol=1e-12, atol=0)
    assert np.allclose(log_softmax(logits), [np.log(row)] * 3, rtol=1e-12, atol=0)


def test_mlp_ends_in_a_dense_layer_whose_logits_can_be_negative():
    from npnet.model import forward, mlp

    model = mlp((6, 5, 4, 3), np.random.default_rng(0))
    assert [type(layer).__name__ for layer in model] == ["Dense", "ReLU", "Dense", "ReLU", "Dense"]
    logits = forward(model, np.random.default_rng(1).standard_normal((50, 6)).astype(np.float32))
    assert (logits < 0).any()                                  # no ReLU on the logits
