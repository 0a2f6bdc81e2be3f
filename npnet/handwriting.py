"""Real handwriting from people outside MNIST, for testing only: scikit-learn's 1,797 digits, in the network's input form.

scikit-learn bundles UCI's optdigits test set as `sklearn.datasets.load_digits`: 1,797 digits by 13 people,
scanned as 32x32 bitmaps (ink or paper), then each 4x4 block counted, so a digit is 8x8 counts from 0 to 16.
What those counts keep is the ink's density per block; what they lose is everything finer than 4 scan pixels:
the stroke's edges, its width within a block, and gaps narrower than a block (a 4's or a 9's opening can close).
No pipeline can give that back. What can be done is to spread the densities smoothly over a canvas and then
put that canvas through exactly the pipelines a drawing goes through.

These digits are a TEST SET ONLY: nothing in the course trains, tunes, fine-tunes or chooses a model or a
preprocessing setting on them. The one setting made here, how to go from 8x8 to a canvas, is chosen by argument
(see `to_canvas`), never by accuracy on these digits.
"""

import numpy as np

from . import preprocess as P

SCAN = 32            # the side of the scanned bitmap: 8 blocks of 4x4 pixels
BLOCK = 4            # scan pixels per block side: a count runs from 0 to BLOCK * BLOCK = 16

# The pipelines a digit is measured with, as for a drawing (npnet.drawings.PIPELINES).
PIPELINES = {
    "naive": P.naive,                     # the whole canvas resized: what a naive app does
    "original app": P.original_app,       # the original project's final app: the box centred at 14
    "MNIST-style": P.mnist_style,         # MNIST's recipe: 20x20, the centre of mass at 14.5, stroke thickness
}


def load_counts():
    """The 1,797 digits as scikit-learn ships them (offline): -> X8 (1797, 8, 8) float32 counts 0-16, y (1797,) int64."""
    from sklearn.datasets import load_digits     # reads a file inside the scikit-learn package: no network

    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64)


def _linear_weights(n_out, n_in):
    """(n_out, n_in) weights of linear interpolation between input pixel centres, the edges held (clamped)."""
    at = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5            # output pixel centres, in input pixel units
    at = np.clip(at, 0, n_in - 1)
    lo = np.minimum(np.floor(at).astype(int), n_in - 2)
    frac = at - lo
    W = np.zeros((n_out, n_in), np.float32)
    W[np.arange(n_out), lo] = 1 - frac
    W[np.arange(n_out), lo + 1] += frac
    return W


def to_canvas(X8, size=SCAN):
    """8x8 counts -> ink densities spread smoothly over a size x size canvas: (N, 8, 8) -> (N, size, size) float32 in [0, 1].

    Each count over 16 is the fraction of its 4x4 block that was ink. We read it as the density at the block's
    centre and interpolate linearly between centres (held constant beyond the outer centres). Why linear: a
    stroke's ink changes smoothly across blocks, so the blocks' hard steps are an artefact of the counting, and
    linear interpolation is the smoothest rule that never overshoots [0, 1] nor invents detail between two
    centres. The default size, 32, is the scan's own resolution: a larger canvas adds pixels, not information.
    The digit fills the canvas, as it filled the scan (optdigits normalised each digit's size to the bitmap).
    """
    X8 = np.asarray(X8, np.float32)
    if X8.ndim != 3 or X8.shape[1:] != (8, 8):
        raise ValueError(f"expected 8x8 counts (N, 8, 8), got shape {X8.shape}")
    if X8.min() < 0 or X8.max() > BLOCK * BLOCK:
        raise ValueError(f"counts run from 0 to {BLOCK * BLOCK}, got {X8.min():g} to {X8.max():g}")
    W = _linear_weights(size, 8)                                  # (size, 8)
    return np.clip(np.einsum("ij,njk,lk->nil", W, X8 / (BLOCK * BLOCK), W), 0, 1).astype(np.float32)


def to_inputs(canvases, pipeline="MNIST-style"):
    """Each canvas through one pipeline: (N, H, W) -> (N, 28, 28) float32 in [0, 1], what the network receives.

    pipeline is a name in PIPELINES or a function of one image. Every optdigits digit fills its canvas, so none
    is refused as unreadable; if one were, P.EmptyCanvas would say so.
    """
    f = PIPELINES[pipeline] if isinstance(pipeline, str) else pipeline
    return np.stack([f(c) for c in canvases]).astype(np.float32)


def to_counts(X, threshold=0.5):
    """Any digits reduced as optdigits reduced its scans: (N, H, W) ink in [0, 1] -> (N, 8, 8) float32 counts 0-16.

    Each digit's ink (>= P.INK) box is fitted, aspect kept, into the 32x32 bitmap with its longer side filling it
    and the box centred; the bitmap is ink where the area-averaged ink is >= threshold; each 4x4 block is counted.
    On MNIST's digits this separates what the 8x8 resolution costs from what the writers' styles cost.
    """
    X = np.asarray(X, np.float32)
    out = np.empty((len(X), 8, 8), np.float32)
    for k, grey in enumerate(X):
        top, bottom, left, right = P._ink_box(grey)
        h, w = bottom - top, right - left
        s = SCAN / max(h, w)                                      # scan pixels per input pixel
        Ry = P._overlap(SCAN, grey.shape[0], top - (SCAN / s - h) / 2, s)    # (32, H)
        Rx = P._overlap(SCAN, grey.shape[1], left - (SCAN / s - w) / 2, s)   # (32, W)
        bitmap = (Ry @ grey @ Rx.T) >= threshold                  # (32, 32) ink or paper, as scanned
        out[k] = bitmap.reshape(8, BLOCK, 8, BLOCK).sum(axis=(1, 3))
    return out
