"""Layers: each one caches in forward what its backward needs, and holds params and grads in matching dicts."""

import numpy as np


def he_normal(fan_in, fan_out, rng, dtype=np.float32):
    """He initialisation, std sqrt(2 / fan_in): (fan_in, fan_out)."""
    return (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype)


class Layer:
    """Base class: no parameters, identity spec; subclasses override forward and backward."""

    params = {}
    grads = {}
    training = True  # only Dropout cares

    def spec(self):
        """The arguments that rebuild this layer: a JSON-able dict."""
        return {"type": type(self).__name__}


class Dense(Layer):
    """Affine map x @ W + b: (N, fan_in) -> (N, fan_out)."""

    def __init__(self, fan_in, fan_out, rng=None, dtype=np.float32):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.params = {"W": he_normal(fan_in, fan_out, rng, dtype), "b": np.zeros(fan_out, dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        """(N, fan_in) -> (N, fan_out)."""
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, grad, input_grad=True):
        """(N, fan_out) -> (N, fan_in), or None if not input_grad; fills grads W (fan_in, fan_out) and b (fan_out,)."""
        np.matmul(self.x.T, grad, out=self.grads["W"])
        np.sum(grad, axis=0, out=self.grads["b"])
        return grad @ self.params["W"].T if input_grad else None

    def spec(self):
        return {"type": "Dense", "fan_in": self.params["W"].shape[0], "fan_out": self.params["W"].shape[1]}


class ReLU(Layer):
    """max(0, x), elementwise: any shape -> same shape."""

    def forward(self, x):
        """(N, ...) -> (N, ...)."""
        self.mask = x > 0
        return np.maximum(x, 0)

    def backward(self, grad):
        """(N, ...) -> (N, ...)."""
        return grad * self.mask


class Dropout(Layer):
    """Inverted dropout: in training zero each unit with probability p and scale the rest by 1/(1-p); identity in eval."""

    def __init__(self, p=0.5, rng=None):
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
        self.p = p
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def forward(self, x):
        """(N, ...) -> (N, ...)."""
        if not self.training or self.p == 0:
            self.mask = None
            return x
        self.mask = (self.rng.random(x.shape, np.float32) >= self.p) / np.float32(1 - self.p)
        return x * self.mask.astype(x.dtype, copy=False)

    def backward(self, grad):
        """(N, ...) -> (N, ...)."""
        return grad if self.mask is None else grad * self.mask.astype(grad.dtype, copy=False)

    def spec(self):
        return {"type": "Dropout", "p": self.p}
