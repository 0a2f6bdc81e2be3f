"""Data augmentation: small random shifts, rotations and scalings of a batch of digits, by bilinear sampling."""

import numpy as np


def affine(X, shift, angle, scale, fill=None):
    """Shift by (B, 2) px (right, down), turn by (B,) degrees anticlockwise, scale by (B,): (B, 784) or (B, ..., H, W) -> same."""
    X = np.asarray(X)
    B = len(X)
    side = int(round(np.sqrt(X[0].size))) if X.ndim == 2 else X.shape[-1]
    H, W = (side, side) if X.ndim == 2 else X.shape[-2:]
    if X.ndim == 2 and side * side != X.shape[1]:
        raise ValueError(f"affine expects (B, H·W) square images or (B, ..., H, W), got {X.shape}")
    images = X.reshape(B, -1, H, W)                                         # (B, K, H, W), K = 1 for MNIST
    fill = images.min() if fill is None else fill       # the background; standardised MNIST: (0 - mean) / std
    shift = np.broadcast_to(np.asarray(shift, np.float64), (B, 2))
    theta = np.deg2rad(np.broadcast_to(np.asarray(angle, np.float64), (B,)))
    scale = np.broadcast_to(np.asarray(scale, np.float64), (B,))
    if np.any(scale <= 0):
        raise ValueError(f"affine: scale must be positive, got {scale.min()}")

    # Inverse map: output pixel p <- source point centre + R(-theta) (p - centre - shift) / scale.
    cy, cx = (H - 1) / 2, (W - 1) / 2
    rows, cols = np.mgrid[0:H, 0:W]
    u = cols[None] - cx - shift[:, 0, None, None]                           # (B, H, W)
    v = rows[None] - cy - shift[:, 1, None, None]
    cos, sin = (np.cos(theta) / scale)[:, None, None], (np.sin(theta) / scale)[:, None, None]
    src_x, src_y = cos * u - sin * v + cx, sin * u + cos * v + cy           # (B, H, W), in source pixels

    # Bilinear sampling from the image padded by one pixel of background: points outside read the background.
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=fill)  # (B, K, H+2, W+2)
    x0, y0 = np.floor(src_x), np.floor(src_y)
    fx, fy = (src_x - x0).astype(X.dtype), (src_y - y0).astype(X.dtype)
    x0, y0 = x0.astype(np.intp) + 1, y0.astype(np.intp) + 1                 # +1: index into the padded image
    x0, x1 = np.clip(x0, 0, W + 1), np.clip(x0 + 1, 0, W + 1)               # clipped onto the background border
    y0, y1 = np.clip(y0, 0, H + 1), np.clip(y0 + 1, 0, H + 1)
    b = np.arange(B)[:, None, None]
    # the four neighbours of every sample point, by fancy indexing: each (B, K, H, W)
    a00, a01, a10, a11 = (padded[b, :, yi, xi].transpose(0, 3, 1, 2)
                          for yi, xi in ((y0, x0), (y0, x1), (y1, x0), (y1, x1)))
    fx, fy = fx[:, None], fy[:, None]
    top = a00 + fx * (a01 - a00)                 # a + f (b - a) is exact where a == b,
    bottom = a10 + fx * (a11 - a10)              # so the background stays exactly the background
    out = top + fy * (bottom - top)
    return out.astype(X.dtype, copy=False).reshape(X.shape)


def random_affine(X, rng, max_shift=2.0, max_angle=10.0, max_scale=0.1, fill=None):
    """A fresh random shift (±max_shift px), rotation (±max_angle°) and scale (1 ± max_scale) per image: same shape as X."""
    B = len(X)
    shift = rng.uniform(-max_shift, max_shift, (B, 2))
    angle = rng.uniform(-max_angle, max_angle, B)
    scale = rng.uniform(1 - max_scale, 1 + max_scale, B)
    return affine(X, shift, angle, scale, fill)
