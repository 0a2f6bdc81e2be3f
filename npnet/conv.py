"""Convolutional layers (Conv2D, MaxPool2D, Flatten, Reshape), vectorised with im2col: no loop over pixels or samples."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .layers import Layer

# Speed note: Conv2D's matmul gives (F, N, Ho, Wo) and forward returns it as (N, F, Ho, Wo) by transposing,
# which makes a view, not a copy. ReLU and MaxPool2D keep whatever memory order they are given, so no layer
# pays for a copy that only reorders; the values are the same either way.


def im2col(x, k, stride=1):
    """Every k×k patch as a column: (N, C, H, W) -> cols (C·k·k, N·Ho·Wo), rows ordered (c, i, j) like a (F, C, k, k) kernel."""
    windows = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]  # (N, C, Ho, Wo, k, k), a view
    C = x.shape[1]
    return windows.transpose(1, 4, 5, 0, 2, 3).reshape(C * k * k, -1)               # the one copy


def col2im(dcols, x_shape, k, stride=1):
    """Sum each patch's gradient back onto the pixels it came from: (C·k·k, N·Ho·Wo) -> (N, C, H, W)."""
    N, C, H, W = x_shape
    Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
    d = dcols.reshape(C, k, k, N, Ho, Wo)
    dx = np.zeros((C, N, H, W), dcols.dtype)
    for i in range(k):          # k·k whole-batch adds, one per kernel offset; none per pixel or example
        for j in range(k):
            dx[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] += d[:, i, j]
    return dx.transpose(1, 0, 2, 3)


class Conv2D(Layer):
    """2-D cross-correlation with F k×k kernels, padding with zeros: (N, C, H, W) -> (N, F, Ho, Wo), Ho = (H + 2·padding - k) // stride + 1."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None, dtype=np.float32):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding = stride, padding
        fan_in = in_channels * kernel_size * kernel_size  # He initialisation, as for Dense
        W = rng.standard_normal((out_channels, in_channels, kernel_size, kernel_size)) * np.sqrt(2.0 / fan_in)
        self.params = {"W": W.astype(dtype), "b": np.zeros(out_channels, dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        """(N, C, H, W) -> (N, F, Ho, Wo): one matmul (F, C·k·k) @ (C·k·k, N·Ho·Wo) for the whole batch."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2D expects (N, {self.in_channels}, H, W), got {x.shape}")
        p, k, s, F = self.padding, self.kernel_size, self.stride, self.out_channels
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        self.x_shape = x.shape                                                          # (N, C, H, W), padded
        N, _, height, width = x.shape
        Ho, Wo = (height - k) // s + 1, (width - k) // s + 1
        if Ho < 1 or Wo < 1:
            raise ValueError(f"Conv2D: a {k}×{k} kernel does not fit in a {height}×{width} input")
        self.cols = im2col(x, k, s)                                                     # (C·k·k, N·Ho·Wo)
        out = self.params["W"].reshape(F, -1) @ self.cols + self.params["b"][:, None]   # (F, N·Ho·Wo)
        return out.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)

    def backward(self, grad, input_grad=True):
        """(N, F, Ho, Wo) -> (N, C, H, W), or None if not input_grad; fills grads W (F, C, k, k) and b (F,)."""
        F, p = self.out_channels, self.padding
        G = grad.transpose(1, 0, 2, 3).reshape(F, -1)                                   # (F, N·Ho·Wo)
        self.grads["W"][...] = (G @ self.cols.T).reshape(self.grads["W"].shape)
        self.grads["b"][...] = G.sum(axis=1)
        if not input_grad:
            return None
        dx = col2im(self.params["W"].reshape(F, -1).T @ G, self.x_shape, self.kernel_size, self.stride)
        return dx[:, :, p:dx.shape[2] - p, p:dx.shape[3] - p] if p else dx

    def spec(self):
        return {"type": "Conv2D", "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}


class MaxPool2D(Layer):
    """Max over non-overlapping size×size windows: (N, C, H, W) -> (N, C, H // size, W // size)."""

    def __init__(self, size=2):
        self.size = size

    def _offsets(self, x, Ho, Wo):
        """The size² strided views x[:, :, i::size, j::size], one per position in the window: each (N, C, Ho, Wo)."""
        s = self.size
        return [x[:, :, i:i + s * Ho:s, j:j + s * Wo:s] for i in range(s) for j in range(s)]

    def forward(self, x):
        """(N, C, H, W) -> (N, C, Ho, Wo); rows or columns that do not fill a window are dropped."""
        if x.ndim != 4 or x.shape[2] < self.size or x.shape[3] < self.size:
            raise ValueError(f"MaxPool2D({self.size}) expects (N, C, H, W) with H, W >= {self.size}, got {x.shape}")
        self.x = x
        views = self._offsets(x, x.shape[2] // self.size, x.shape[3] // self.size)
        self.out = views[0].copy(order="K")
        for v in views[1:]:
            np.maximum(self.out, v, out=self.out)
        return self.out.copy(order="K")  # backward needs self.out untouched by whatever comes next

    def backward(self, grad):
        """(N, C, Ho, Wo) -> (N, C, H, W): each window's gradient goes to the first position holding its max."""
        dx = np.zeros_like(self.x, dtype=grad.dtype)
        taken = np.zeros(self.out.shape, bool)      # a window whose max has been found already (ties)
        for v, d in zip(self._offsets(self.x, *grad.shape[2:]), self._offsets(dx, *grad.shape[2:])):
            hit = (v == self.out) & ~taken
            np.multiply(grad, hit, out=d)
            taken |= hit
        return dx

    def spec(self):
        return {"type": "MaxPool2D", "size": self.size}


class Reshape(Layer):
    """Reshape each example: (N, ...) -> (N, *shape), e.g. (N, 784) -> (N, 1, 28, 28) in front of a Conv2D."""

    def __init__(self, shape):
        self.shape = tuple(int(d) for d in shape)

    def forward(self, x):
        """(N, ...) -> (N, *shape)."""
        self.x_shape = x.shape
        return x.reshape(len(x), *self.shape)

    def backward(self, grad):
        """(N, *shape) -> (N, ...) as it came in."""
        return grad.reshape(self.x_shape)

    def spec(self):
        return {"type": "Reshape", "shape": list(self.shape)}


class Flatten(Layer):
    """One row per example: (N, C, H, W) -> (N, C·H·W), in front of a Dense layer."""

    def forward(self, x):
        """(N, ...) -> (N, prod(...))."""
        self.x_shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad):
        """(N, prod(...)) -> (N, ...)."""
        return grad.reshape(self.x_shape)
