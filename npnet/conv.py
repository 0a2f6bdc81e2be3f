"""Convolutional layers (Conv2D, MaxPool2D, Flatten, Reshape) on channels-last images, vectorised with im2col: no loop over pixels or samples."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .layers import Layer

# Layout: images are (N, H, W, C), channels last (NHWC), as in TensorFlow and PyTorch's channels_last. A pixel's
# C channel values are then contiguous, so im2col copies runs of C floats rather than single ones, and the
# matmul cols @ W gives the output already as (N, Ho, Wo, F): no transposes in forward. benchmarks/RESULTS.md
# compares this with channels-first (N, C, H, W).


def im2col(x, k, stride=1, ones=False):
    """Every k×k patch as a row: (N, H, W, C) -> cols (N·Ho·Wo, k·k·C), rows ordered (n, i, j) like the output and
    columns (u, v, c) like a (k, k, C, F) kernel: row (n, i, j), column (u, v, c) holds x[n, i·stride + u, j·stride + v, c].
    ones=True adds a last column of ones, (N·Ho·Wo, k·k·C + 1): then cols @ [W; b] adds the bias b in the product."""
    windows = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]   # (N, Ho, Wo, C, k, k), a view
    N, Ho, Wo, C = windows.shape[:4]
    if C == 1:  # one channel (the first conv): copy k·k shifted images, in runs of Wo pixels, rather than N·Ho·Wo
        # runs of k pixels, then return the transpose, a view: the same cols, about 3x faster to build (notebook 05)
        colsT = np.empty((k * k + ones, N * Ho * Wo), x.dtype)
        colsT[:k * k].reshape(k, k, N, Ho, Wo)[...] = windows[..., 0, :, :].transpose(3, 4, 0, 1, 2)
        colsT[k * k:] = 1
        return colsT.T
    cols = np.empty((N * Ho * Wo, k * k * C + ones), x.dtype)
    cols[:, :k * k * C].reshape(N, Ho, Wo, k, k, C)[...] = windows.transpose(0, 1, 2, 4, 5, 3)   # the one copy
    cols[:, k * k * C:] = 1
    return cols


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


def conv_input_grad(grad, W, x_shape, stride=1):
    """dL/dx of a convolution, col2im(grad @ W.T) computed faster: grad (N, Ho, Wo, F), W (k, k, C, F) -> (N, H, W, C).

    The same sums as col2im, in a different order and layout. It works on rows of pixels across the whole batch,
    (H, W, N, C), in which kernel offset (u, v)'s share of one output row lands on dx as one contiguous block of
    Wo·N·C floats: NumPy adds contiguous blocks about 3x faster than col2im's runs of C floats. One product per
    offset gives each share already in that layout. benchmarks/RESULTS.md measures what this saves.
    """
    k, _, C, F = W.shape
    N, Ho, Wo, _ = grad.shape
    per_offset = W.reshape(k * k, C, F).transpose(0, 2, 1)                    # (k·k, F, C): W[u, v].T for each (u, v)
    g = grad.transpose(1, 2, 0, 3).copy()                                     # (Ho, Wo, N, F)
    dx = np.zeros((x_shape[1], x_shape[2], N, C), grad.dtype)                # (H, W, N, C)
    for i in range(Ho):                                                       # output row i, the whole batch at once
        d = np.matmul(g[i].reshape(-1, F), per_offset).reshape(k, k, Wo, N, C)
        for u in range(k):
            for v in range(k):                                                # it lands on row i·stride + u, from v
                dx[i * stride + u, v:v + stride * Wo:stride] += d[u, v]
    return np.ascontiguousarray(dx.transpose(2, 0, 1, 3))                     # back to (N, H, W, C)


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
        """(N, H, W, C) -> (N, Ho, Wo, F): one matmul (N·Ho·Wo, k·k·C + 1) @ (k·k·C + 1, F) for the whole batch."""
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
        # The bias as the weight of an input that is always 1: cols gets a column of ones and the kernel matrix b as
        # its last row, so that the product adds b. For conv 1's short patches (25 values) a separate pass adding b to
        # the (N·Ho·Wo, F) output cost 60% of the product itself; for conv 2 (800 values) it changes nothing.
        self.cols = im2col(x, k, s, ones=True)                                  # (N·Ho·Wo, k·k·C + 1)
        Wb = np.concatenate([self.params["W"].reshape(-1, F), self.params["b"][None]])   # (k·k·C + 1, F)
        return (self.cols @ Wb).reshape(N, Ho, Wo, F)

    def backward(self, grad, input_grad=True):
        """(N, Ho, Wo, F) -> (N, H, W, C), or None if not input_grad; fills grads W (k, k, C, F) and b (F,)."""
        F, p = self.out_channels, self.padding
        G = grad.reshape(-1, F)                                                 # (N·Ho·Wo, F), no copy
        dWb = self.cols.T @ G                                                   # (k·k·C + 1, F): dW, then db
        self.grads["W"].reshape(-1, F)[...] = dWb[:-1]
        self.grads["b"][...] = dWb[-1]                                          # = G.sum(axis=0), the ones' row
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
