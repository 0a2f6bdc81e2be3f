"""Optimizers against hand-computed steps: Adam's bias correction, L2 on weights only, SGD."""

import numpy as np

from npnet.layers import Layer
from npnet.optim import SGD, Adam


class Params(Layer):
    """A stand-in layer holding a 2x1 weight and a 1-element bias, with gradients set by hand."""

    def __init__(self, W, b):
        self.params = {"W": np.array(W, np.float64), "b": np.array(b, np.float64)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}


def test_adam_first_two_steps_by_hand():
    layer = Params([[1.0], [1.0]], [1.0])
    opt = Adam([layer], lr=0.1)
    for g in layer.grads.values():
        g[...] = 0.5
    opt.step()
    # m = 0.05, v = 0.00025; m_hat = 0.5, v_hat = 0.25: the first step is lr * 0.5 / (0.5 + eps)
    assert np.allclose(layer.params["b"], 0.9) and np.allclose(layer.params["W"], 0.9)
    for g in layer.grads.values():
        g[...] = -1.0
    opt.step()
    # m = -0.055, v = 0.00124975; m_hat = -0.28947..., v_hat = 0.62518759...
    assert np.allclose(layer.params["b"], 0.9366103542405655, rtol=0, atol=1e-12)
    assert opt.t == 2


def test_adam_l2_decays_weights_not_biases():
    layer = Params([[2.0], [-2.0]], [2.0])
    opt = Adam([layer], lr=0.1, weight_decay=0.1)
    opt.step()  # zero loss gradient: only L2 acts, g = 0.1 * W, and Adam's first step is lr * sign(g)
    assert np.allclose(layer.params["W"], [[1.9], [-1.9]])
    assert np.allclose(layer.params["b"], 2.0)


def test_sgd_step_with_l2():
    layer = Params([[1.0], [3.0]], [1.0])
    layer.grads["W"][...] = [[0.5], [0.0]]
    layer.grads["b"][...] = 2.0
    SGD([layer], lr=0.1, weight_decay=0.5).step()
    assert np.allclose(layer.params["W"], [[1 - 0.1 * (0.5 + 0.5)], [3 - 0.1 * 1.5]])
    assert np.allclose(layer.params["b"], 1 - 0.1 * 2.0)


def test_optimizers_never_run_inside_backward():
    from npnet.layers import Dense

    rng = np.random.default_rng(0)
    layer = Dense(3, 2, rng)
    before = {k: v.copy() for k, v in layer.params.items()}
    layer.forward(rng.standard_normal((4, 3)).astype(np.float32))
    layer.backward(np.ones((4, 2), np.float32))
    assert all(np.array_equal(before[k], layer.params[k]) for k in before)
