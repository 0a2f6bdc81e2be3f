"""Pen strokes: render what was drawn on a canvas, as anti-aliased ink in a NumPy array."""

import numpy as np


def _segment_distance(py, px, a, b):
    """Distance from pixel centres (h, w) to the segment a-b, points given as (x, y)."""
    ab = b - a
    length2 = float(ab @ ab)
    t = 0.0 if length2 == 0 else np.clip(((px - a[0]) * ab[0] + (py - a[1]) * ab[1]) / length2, 0, 1)
    return np.hypot(px - (a[0] + t * ab[0]), py - (a[1] + t * ab[1]))


def render(strokes, size=280, pen_width=18.0):
    """Strokes (lists of (x, y) canvas points) as round-capped ink: -> float32 (size, size) in [0, 1]."""
    img = np.zeros((size, size), np.float32)
    r = pen_width / 2
    for stroke in strokes:
        pts = np.asarray(stroke, np.float64).reshape(-1, 2)
        if len(pts) == 1:
            pts = np.vstack([pts, pts])              # a tap is a dot
        for a, b in zip(pts[:-1], pts[1:]):
            x0, x1 = sorted((a[0], b[0]))
            y0, y1 = sorted((a[1], b[1]))
            cols = np.arange(max(int(x0 - r - 1), 0), min(int(x1 + r + 2), size))
            rows = np.arange(max(int(y0 - r - 1), 0), min(int(y1 + r + 2), size))
            if len(cols) == 0 or len(rows) == 0:
                continue
            d = _segment_distance(rows[:, None] + 0.5, cols[None, :] + 0.5, a, b)
            cover = np.clip(r + 0.5 - d, 0, 1)       # 1 inside, a one-pixel ramp at the edge
            patch = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
            np.maximum(patch, cover, out=patch)
    return img
