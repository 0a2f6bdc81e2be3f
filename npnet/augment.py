"""Data augmentation: small random shifts, rotations, scalings and elastic distortions of a batch of digits, by bilinear sampling."""

import math

import numpy as np


def _images(X):
    """(B, 784) flat square images or (B, ..., H, W) -> (B, K, H, W) view, H, W."""
    X = np.asarray(X)
    if X.ndim == 2:                                                         # flat square images, e.g. (B, 784)
        H = W = math.isqrt(X.shape[1])
        if H * W != X.shape[1]:
            raise ValueError(f"expected (B, H·W) square images or (B, ..., H, W), got {X.shape}")
    else:
        H, W = X.shape[-2:]
    return X.reshape(len(X), -1, H, W), H, W


def _bilinear(X, images, src_x, src_y, fill):
    """Sample images (B, K, H, W) at source points src_x, src_y (B, H, W), fill outside: same shape as X."""
    B, _, H, W = images.shape
    src_x = np.clip(src_x, -2, W)                                           # far outside is as good as -2 or W
    src_y = np.clip(src_y, -2, H)
    # Bilinear sampling from the image padded by two pixels of background, by flat indices into it.
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=fill)  # (B, K, H+4, W+4)
    flat = padded.transpose(0, 2, 3, 1).reshape(-1, padded.shape[1])       # (B·(H+4)·(W+4), K)
    x0, y0 = np.floor(src_x), np.floor(src_y)
    fx, fy = (src_x - x0).astype(X.dtype)[..., None], (src_y - y0).astype(X.dtype)[..., None]   # (B, H, W, 1)
    row = W + 4
    i00 = (np.arange(B)[:, None, None] * (H + 4) + y0.astype(np.intp) + 2) * row + x0.astype(np.intp) + 2
    a00, a01, a10, a11 = (flat[i00 + d] for d in (0, 1, row, row + 1))     # the four neighbours: (B, H, W, K)
    top = a00 + fx * (a01 - a00)                 # a + f (b - a) is exact where a == b,
    bottom = a10 + fx * (a11 - a10)              # so the background stays exactly the background
    out = (top + fy * (bottom - top)).transpose(0, 3, 1, 2)                 # (B, K, H, W)
    return out.astype(X.dtype, copy=False).reshape(X.shape)


def affine(X, shift, angle, scale, *, fill):
    """Shift by (B, 2) or (2,) px (right, down), turn by (B,) degrees anticlockwise, scale by (B,), scalars broadcast; uncovered pixels get fill: (B, 784) or (B, ..., H, W) -> same."""
    X = np.asarray(X)
    B = len(X)
    images, H, W = _images(X)                                               # (B, K, H, W), K = 1 for MNIST
    shift = np.broadcast_to(np.asarray(shift, np.float32), (B, 2))
    theta = np.deg2rad(np.broadcast_to(np.asarray(angle, np.float64), (B,)))
    scale = np.broadcast_to(np.asarray(scale, np.float64), (B,))
    if np.any(scale <= 0):
        raise ValueError(f"affine: scale must be positive, got {scale.min()}")

    # Inverse map, with x right and y DOWN: output pixel (x, y) reads the source point
    #   c + [[cos, -sin], [sin, cos]] (x - cx - shift_x, y - cy - shift_y) / scale.
    # With y down that matrix turns clockwise on screen, so reading the source that way turns the digit anticlockwise.
    cy, cx = (H - 1) / 2, (W - 1) / 2
    rows, cols = np.mgrid[0:H, 0:W].astype(np.float32)
    u = cols - np.float32(cx) - shift[:, 0, None, None]                     # (B, H, W)
    v = rows - np.float32(cy) - shift[:, 1, None, None]
    cos = (np.cos(theta) / scale).astype(np.float32)[:, None, None]
    sin = (np.sin(theta) / scale).astype(np.float32)[:, None, None]
    src_x = cos * u - sin * v + np.float32(cx)                              # (B, H, W), in source pixels
    src_y = sin * u + cos * v + np.float32(cy)
    return _bilinear(X, images, src_x, src_y, fill)


def random_affine(X, rng, max_shift=2.0, max_angle=10.0, max_scale=0.1, *, fill):
    """A fresh random shift (±max_shift px), rotation (±max_angle°) and scale (1 ± max_scale) per image, uncovered pixels get fill: same shape as X."""
    B = len(X)
    shift = rng.uniform(-max_shift, max_shift, (B, 2))
    angle = rng.uniform(-max_angle, max_angle, B)
    scale = rng.uniform(1 - max_scale, 1 + max_scale, B)
    return affine(X, shift, angle, scale, fill=fill)


def gaussian_blur(field, sigma):
    """Smooth each (H, W) map of a (B, H, W) batch by a Gaussian of sigma px (truncated at 3 sigma, zero outside).

    A 1-D blur along y is a matrix product K_y @ map with the banded (H, H) matrix K_y[i, i'] = g(i - i'), so
    the 2-D blur is K_y @ map @ K_x^T: two batched matmuls, in the field's float dtype."""
    B, H, W = field.shape
    r = max(1, math.ceil(3 * sigma))
    g = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma ** 2))
    g /= g.sum()                                                            # (2r+1,), sums to 1

    def band(n):                                                            # (n, n): K[i, i'] = g(i' - i)
        offset = np.arange(n)[None, :] - np.arange(n)[:, None]
        return np.where(np.abs(offset) <= r, g[np.clip(offset + r, 0, 2 * r)], 0).astype(field.dtype)
    return band(H) @ field @ band(W).T


def displace(X, dx, dy, *, fill):
    """Move each pixel's content by a displacement field: output (x, y) reads the source at (x - dx, y - dy).
    X: (B, 784) or (B, ..., H, W); dx, dy: (B, H, W) px (right, down); uncovered pixels get fill -> same shape."""
    images, H, W = _images(X)
    rows, cols = np.mgrid[0:H, 0:W].astype(np.float32)
    return _bilinear(np.asarray(X), images, cols - np.asarray(dx, np.float32), rows - np.asarray(dy, np.float32), fill)


def random_elastic(X, rng, *, alpha=34.0, sigma=4.0, fill):
    """Simard, Steinkraus & Platt (2003): per image, a displacement field uniform in [-1, 1], smoothed by a
    Gaussian of sigma px and scaled by alpha px, then bilinear resampling: same shape as X."""
    B, _, H, W = _images(X)[0].shape
    dx, dy = (np.float32(alpha) * gaussian_blur(rng.uniform(-1, 1, (B, H, W)).astype(np.float32), sigma)
              for _ in range(2))
    return displace(X, dx, dy, fill=fill)
