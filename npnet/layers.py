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


class BatchNorm(Layer):
    """Batch normalisation over every axis but the last: (N, D) or (N, H, W, C) -> same shape.

    Training: normalise with the batch's own mean and variance per feature, then scale by gamma and shift by beta;
    keep running averages of the mean and variance. Evaluation: use those running averages instead. A model file
    cannot hold it (spec() refuses, so save writes nothing); notebook 05's "Going deeper" uses it, no shipped model does."""

    def __init__(self, num_features, momentum=0.9, eps=1e-5, dtype=np.float32):
        self.momentum, self.eps = momentum, eps
        self.params = {"gamma": np.ones(num_features, dtype), "beta": np.zeros(num_features, dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.running_mean = np.zeros(num_features, dtype)
        self.running_var = np.ones(num_features, dtype)

    def forward(self, x):
        """(N, ..., D) -> (N, ..., D)."""
        axes = tuple(range(x.ndim - 1))                   # every axis but the features'
        if self.training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            m = self.momentum
            self.running_mean = (m * self.running_mean + (1 - m) * mean).astype(self.running_mean.dtype)
            self.running_var = (m * self.running_var + (1 - m) * var).astype(self.running_var.dtype)
        else:
            mean, var = self.running_mean, self.running_var
        self.inv_std = 1 / np.sqrt(var + self.eps)         # (D,)
        self.x_hat = (x - mean) * self.inv_std             # cached for backward: (N, ..., D)
        self.batch_stats = self.training                   # whether mean and var depended on x
        return self.params["gamma"] * self.x_hat + self.params["beta"]

    def backward(self, grad, input_grad=True):
        """(N, ..., D) -> (N, ..., D), or None if not input_grad; fills grads gamma (D,) and beta (D,)."""
        axes = tuple(range(grad.ndim - 1))
        self.grads["gamma"][...] = np.sum(grad * self.x_hat, axis=axes)
        self.grads["beta"][...] = np.sum(grad, axis=axes)
        if not input_grad:
            return None
        g = grad * self.params["gamma"]                    # dL/dx_hat
        if not self.batch_stats:                           # evaluation: a fixed affine map of x
            return g * self.inv_std
        m = grad.size // grad.shape[-1]                    # values per feature in the batch
        # x_hat depends on x directly and through the batch's mean and variance (derived in notebook 05):
        return self.inv_std * (g - g.sum(axis=axes) / m - self.x_hat * np.sum(g * self.x_hat, axis=axes) / m)

    def spec(self):
        """Refuses: a model file has no place for the running statistics, so a saved BatchNorm could not be loaded."""
        raise NotImplementedError("BatchNorm cannot be saved to a model file: the format has no place for its "
                                  "running mean and variance. Nothing was written.")
