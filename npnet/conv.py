"""Convolutional layers (Conv2D, MaxPool2D, Flatten, Reshape) on channels-last images, vectorised with im2col: no loop over pixels or samples."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .layers import Layer

# Layout: images are (N, H, W, C), channels last (NHWC), as in TensorFlow and PyTorch's channels_last. A pixel's
# C channel values are then contiguous, so im2col copies runs of C floats rather than single ones, and the
# matmul cols @ W gives the output already as (N, Ho, Wo, F): no transposes anywhere. benchmarks/RESULTS.md
# compares this with channels-first (N, C, H, W).


def im2col(x, k, stride=1):
    """Every k×k patch as a row: (N, H, W, C) -> cols (N·Ho·Wo, k·k·C), rows ordered (n, i, j) like the output and
    columns (u, v, c) like a (k, k, C, F) kernel: row (n, i, j), column (u, v, c) holds x[n, i·stride + u, j·stride + v, c]."""
    windows = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]   # (N, Ho, Wo, C, k, k), a view
    N, Ho, Wo, C = windows.shape[:4]
    if C == 1:  # one channel (the first conv): copy k·k shifted images, in runs of Wo pixels, rather than N·Ho·Wo
        # runs of k pixels, then return the transpose, a view: the same cols, about 3x faster to build (notebook 05)
        return windows.transpose(4, 5, 3, 0, 1, 2).reshape(k * k * C, N * Ho * Wo).T
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(N * Ho * Wo, k * k * C)     # the one copy


def col2im(dcols, x_shape, k, stride=1):
    """Sum each patch's gradient back onto the pixels it came from: (N·Ho·Wo, k·k·C) -> (N, H, W, C)."""
    N, H, W, C = x_shape
    Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
    d = dcols.reshape(N, Ho, Wo, k, k, C)
    dx = np.zeros(x_shape, dcols.dtype)
    for u in range(k):          # k·k whole-batch adds, one per kernel offset (u, v); none per pixel or example
        for v in range(k):
            dx[:, u:u + stride * Ho:stride, v:v + stride * Wo:stride] += d[:, :, :, u, v]
    return dx


def conv_input_grad(grad, W, x_shape, stride=1, chunk=16):
    """dL/dx of a convolution, col2im(grad @ W.T) computed faster: grad (N, Ho, Wo, F), W (k, k, C, F) -> (N, H, W, C).

    The same sums as col2im, in a different order. One product per kernel offset (u, v) gives that offset's share as a
    contiguous (n, Ho, Wo, C) block, whose add onto dx runs over whole rows of Wo·C floats instead of C at a time; and
    `chunk` examples at a time keep the blocks and dx in the cache. benchmarks/RESULTS.md measures what this saves.
    """
    k, _, C, F = W.shape
    N, Ho, Wo, _ = grad.shape
    per_offset = W.reshape(k * k, C, F).transpose(0, 2, 1)                     # (k·k, F, C): W[u, v].T for each (u, v)
    dx = np.zeros(x_shape, grad.dtype)
    for n in range(0, N, chunk):
        g = grad[n:n + chunk]                                                   # (m, Ho, Wo, F), m <= chunk
        d = np.matmul(g.reshape(-1, F), per_offset).reshape(k, k, len(g), Ho, Wo, C)
        for u in range(k):
            for v in range(k):
                dx[n:n + chunk, u:u + stride * Ho:stride, v:v + stride * Wo:stride] += d[u, v]
    return dx


class Conv2D(Layer):
    """2-D cross-correlation with F k×k kernels, padding with zeros: (N, H, W, C) -> (N, Ho, Wo, F), Ho = (H + 2·padding - k) // stride + 1."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None, dtype=np.float32):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding = stride, padding
        fan_in = in_channels * kernel_size * kernel_size  # He initialisation, as for Dense
        W = rng.standard_normal((kernel_size, kernel_size, in_channels, out_channels)) * np.sqrt(2.0 / fan_in)
        self.params = {"W": W.astype(dtype), "b": np.zeros(out_channels, dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        """(N, H, W, C) -> (N, Ho, Wo, F): one matmul (N·Ho·Wo, k·k·C) @ (k·k·C, F) for the whole batch."""
        if x.ndim != 4 or x.shape[3] != self.in_channels:
            raise ValueError(f"Conv2D expects (N, H, W, {self.in_channels}), got {x.shape}")
        p, k, s, F = self.padding, self.kernel_size, self.stride, self.out_channels
        if p:
            x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        self.x_shape = x.shape                                                  # (N, H, W, C), padded
        N, height, width, _ = x.shape
        Ho, Wo = (height - k) // s + 1, (width - k) // s + 1
        if Ho < 1 or Wo < 1:
            raise ValueError(f"Conv2D: a {k}×{k} kernel does not fit in a {height}×{width} input")
        self.cols = im2col(x, k, s)                                             # (N·Ho·Wo, k·k·C)
        out = self.cols @ self.params["W"].reshape(-1, F)                       # (N·Ho·Wo, F)
        out += self.params["b"]
        return out.reshape(N, Ho, Wo, F)

    def backward(self, grad, input_grad=True):
        """(N, Ho, Wo, F) -> (N, H, W, C), or None if not input_grad; fills grads W (k, k, C, F) and b (F,)."""
        F, p = self.out_channels, self.padding
        G = grad.reshape(-1, F)                                                 # (N·Ho·Wo, F), no copy
        np.matmul(self.cols.T, G, out=self.grads["W"].reshape(-1, F))
        np.matmul(np.ones(len(G), G.dtype), G, out=self.grads["b"])   # = G.sum(axis=0), as one matrix-vector
        # product: NumPy sums a tall array's columns 32 floats at a time; the product is 8x faster on conv 1's 73,728 rows
        if not input_grad:
            return None
        dx = conv_input_grad(grad, self.params["W"], self.x_shape, self.stride)   # = col2im(G @ W.T), faster
        return dx[:, p:dx.shape[1] - p, p:dx.shape[2] - p] if p else dx

    def spec(self):
        return {"type": "Conv2D", "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding, "layout": "NHWC"}


class MaxPool2D(Layer):
    """Max over non-overlapping size×size windows: (N, H, W, C) -> (N, H // size, W // size, C)."""

    def __init__(self, size=2):
        self.size = size

    def _windows(self, x):
        """x cut to whole windows as a (N, Ho, size, Wo, size, C) view: window (i, j) is [:, i, :, j, :, :]."""
        N, H, W, C = x.shape
        s = self.size
        return x[:, :H - H % s, :W - W % s].reshape(N, H // s, s, W // s, s, C)

    def forward(self, x):
        """(N, H, W, C) -> (N, Ho, Wo, C); rows or columns that do not fill a window are dropped."""
        if x.ndim != 4 or x.shape[1] < self.size or x.shape[2] < self.size:
            raise ValueError(f"MaxPool2D({self.size}) expects (N, H, W, C) with H, W >= {self.size}, got {x.shape}")
        self.x_shape = x.shape
        w = self._windows(x)
        s = self.size
        out = w[:, :, 0, :, 0].copy()                # (N, Ho, Wo, C): the running max over the window
        self.argmax = np.zeros(out.shape, np.uint8)  # where it is, as i·size + j: the first max, row by row
        for pos in range(1, s * s):
            v = w[:, :, pos // s, :, pos % s]        # window position (i, j) = divmod(pos, size) of every window
            bigger = v > out                         # strictly: a tie keeps the earlier position
            np.maximum(out, v, out=out)
            self.argmax += bigger * (np.uint8(pos) - self.argmax)   # = pos where bigger (arithmetic beats masking)
        return out

    def backward(self, grad):
        """(N, Ho, Wo, C) -> (N, H, W, C): each window's gradient goes to the position of its max, recorded by forward."""
        dx = np.zeros(self.x_shape, grad.dtype)
        d, s = self._windows(dx), self.size                                     # a view into dx
        for pos in range(s * s):
            np.multiply(grad, self.argmax == pos, out=d[:, :, pos // s, :, pos % s])
        return dx

    def spec(self):
        return {"type": "MaxPool2D", "size": self.size}


class Reshape(Layer):
    """Reshape each example: (N, ...) -> (N, *shape), e.g. (N, 784) -> (N, 28, 28, 1) in front of a Conv2D."""

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
    """One row per example: (N, H, W, C) -> (N, H·W·C), in front of a Dense layer."""

    def forward(self, x):
        """(N, ...) -> (N, prod(...))."""
        self.x_shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad):
        """(N, prod(...)) -> (N, ...)."""
        return grad.reshape(self.x_shape)
