"""From a drawing to an MNIST digit: grey ink, crop, fit a 20x20 box, centre by centre of mass, and diagnose."""

import numbers
from functools import lru_cache

import numpy as np

SIZE = 28
INK = 0.2          # a pixel with at least this much ink counts towards the bounding box
FAINT = 0.05       # ink that never reaches INK but reaches this is "too faint", not "blank"
CENTRE = 14.5      # MNIST's mean centre of mass, in pixel-edge coordinates (pixel i spans [i, i+1))
THICKNESS = 1.9    # about MNIST's median stroke width in 28x28 pixels (1.96 by stroke_width() below)
MIN_SIDE = 8       # an image narrower than this, on either side, cannot hold a readable digit


class EmptyCanvas(ValueError):
    """The image holds no digit: it is blank, or its ink is too small or faint to read."""


def unit_range(a):
    """Pixel values of any number dtype -> float32 on the [0, 1] scale: (...) -> (...).

    The rule goes by dtype and by the largest value. Booleans are 0 and 1. Integers (any dtype) are 0-255
    when their largest value is at most 255, else 0-65535. Floats are taken as [0, 1] when their largest value
    is at most 2 (resampling can overshoot 1; the excess is clipped later), else as 0-255 or 0-65535 like
    integers. Larger values, NaN, infinities and non-number dtypes (object, str, complex) are refused.
    """
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"expected an array of numbers, got dtype {a.dtype}: convert it with np.asarray(x, float)")
    kind, a = a.dtype.kind, a.astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError("the image holds NaN or infinite values")
    top = float(a.max()) if a.size else 0.0
    if kind == "b" or (kind == "f" and top <= 2):
        return a
    for full in (255, 65535):
        if top <= full:
            a /= full
            return a
    raise ValueError(f"pixel values up to {top:g}: expected [0, 1], 0-255 or 0-65535")


def to_grey(img):
    """Any image -> ink (H, W) float32 in [0, 1], high where drawn: grey, RGB or RGBA, any dtype, either polarity.

    Values go on [0, 1] by unit_range's rule. The border's median is the paper; ink is what differs from it.
    With RGBA and some pixels transparent, either the alpha or the colour carries the digit. If the fully
    opaque pixels are all about one shade (their greys span less than 0.25), it is strokes on a transparent
    canvas, and the ink is the alpha, whatever the strokes' colour. Otherwise the colour carries the digit
    (an opaque picture with transparent parts, such as a margin): the transparent parts are filled with the
    opaque pixels' median grey, its paper, and the image is read as grey.
    """
    a = np.asarray(img)
    if a.ndim not in (2, 3) or a.size == 0 or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {a.shape}")
    if min(a.shape[:2]) < MIN_SIDE:
        raise ValueError(f"a {a.shape[0]}x{a.shape[1]} image is too small to hold a digit: "
                         f"it needs at least {MIN_SIDE} pixels a side")   # cli.read_image never shrinks below it
    a = unit_range(a)
    grey = a if a.ndim == 2 else a[..., :3] @ np.float32([0.299, 0.587, 0.114])
    if a.ndim == 3 and a.shape[2] == 4 and a[..., 3].min() < 0.99:
        alpha = np.clip(a[..., 3], 0, 1)
        opaque = grey[alpha >= 0.99]
        if opaque.size == 0 or np.ptp(opaque) < 0.25:
            return alpha                             # strokes on a transparent canvas: the ink is what is opaque
        grey = alpha * grey + (1 - alpha) * np.median(opaque)  # a picture with transparent parts: fill them with paper
    grey = np.clip(grey, 0, 1)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    if background > 0.5:                             # dark ink on light paper
        grey, background = 1 - grey, 1 - background
    ink = np.clip((grey - background) / max(1 - background, 1e-6), 0, 1)
    peak = ink.max()
    return ink / peak if peak >= 0.25 else ink       # grey pencil counts as full ink, as in MNIST


def _overlap(n_out, n_in, start, scale):
    """Area weights (n_out, n_in): output pixel i covers input [start + i/scale, start + (i+1)/scale)."""
    lo = start + np.arange(n_out)[:, None] / scale
    hi = lo + 1 / scale
    edges = np.arange(n_in)[None, :]
    return (np.clip(np.minimum(hi, edges + 1) - np.maximum(lo, edges), 0, None) * scale).astype(np.float32)


def _resample(grey, top, left, scale_y, scale_x):
    """Area-average grey into 28x28, input point (top, left) landing on output (0, 0): -> (28, 28)."""
    Ry = _overlap(SIZE, grey.shape[0], top, scale_y)
    Rx = _overlap(SIZE, grey.shape[1], left, scale_x)
    return np.clip(Ry @ grey @ Rx.T, 0, 1)


def _ink_box(grey):
    """Bounding box (top, bottom, left, right), pixel edges, of the pixels with ink >= INK."""
    rows, cols = np.flatnonzero((grey >= INK).any(1)), np.flatnonzero((grey >= INK).any(0))
    if len(rows) == 0 and grey.max() >= FAINT:
        raise EmptyCanvas(f"no digit: the ink is too faint to read (at most {grey.max():.0%} of full contrast; "
                          f"it needs {INK:.0%})")
    if len(rows) == 0:
        raise EmptyCanvas("no digit: the canvas is blank")
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def centre_of_mass(grey):
    """Ink-weighted mean position (y, x) in pixel-edge coordinates: (H, W) -> two floats."""
    mass = grey.sum()
    y = (grey.sum(1) @ (np.arange(grey.shape[0]) + 0.5)) / mass
    x = (grey.sum(0) @ (np.arange(grey.shape[1]) + 0.5)) / mass
    return float(y), float(x)


def naive(img):
    """What a naive app does: the whole canvas area-resized to 28x28: (H, W[, C]) -> (28, 28) float32."""
    grey = to_grey(img)
    return _resample(grey, 0, 0, SIZE / grey.shape[0], SIZE / grey.shape[1])


def stroke_width(grey):
    """Mean stroke width in pixels, 2 * area / perimeter of the ink >= 0.5: (H, W) -> float."""
    ink = grey >= 0.5
    perimeter = np.count_nonzero(ink[1:] != ink[:-1]) + np.count_nonzero(ink[:, 1:] != ink[:, :-1])
    perimeter += 2 * (ink[0].sum() + ink[-1].sum() + ink[:, 0].sum() + ink[:, -1].sum())
    return 2 * ink.sum() / max(perimeter, 1)


def _morph(grey, radius):
    """Grey dilation (radius > 0) or erosion (< 0) by |radius| pixels, in 4- and 8-neighbour steps: (H, W) -> (H, W)."""
    op = np.maximum if radius > 0 else np.minimum
    out = grey
    for step in range(int(round(abs(radius)))):
        p = np.pad(out, 1, mode="constant", constant_values=0)
        shifted = [p[1:-1, :-2], p[1:-1, 2:], p[:-2, 1:-1], p[2:, 1:-1]]
        if step % 2:                                  # alternate square and diamond: a rounder disc
            shifted += [p[:-2, :-2], p[:-2, 2:], p[2:, :-2], p[2:, 2:]]
        out = op.reduce([out, *shifted])
    return out


def normalise_thickness(grey, box_side, target=THICKNESS, box=20):
    """Thin or thicken the strokes so that, once fitted to box pixels, they are target pixels wide: (H, W) -> (H, W)."""
    scale = box / box_side                            # output pixels per input pixel
    radius = (target / scale - stroke_width(grey)) / 2
    radius = max(radius, -(stroke_width(grey) / 2 - 1))  # never erode a stroke away
    return _morph(grey, radius) if abs(radius) >= 0.5 else grey


def _readable_box(grey):
    """The ink's box (top, bottom, left, right), or EmptyCanvas if the ink is too small or faint to be a digit."""
    top, bottom, left, right = _ink_box(grey)
    h, w = bottom - top, right - left
    if max(h, w) < 0.05 * max(grey.shape) or grey.sum() < 1e-3 * grey.size:
        raise EmptyCanvas(f"no digit: the ink ({h}x{w} pixels) is too small or faint to read")
    if max(h, w) < 0.15 * max(grey.shape) and max(h, w) < 3 * stroke_width(grey):
        raise EmptyCanvas(f"no digit: a {h}x{w} dot is too small to read")  # a tap of the pen
    return top, bottom, left, right


def _check_settings(box, keep_aspect, centre, thickness):
    """Refuse settings of to_mnist that would give NaN, an empty frame or a silent default."""
    if isinstance(box, (bool, np.bool_)) or not isinstance(box, numbers.Real) or not 1 <= box <= SIZE:
        raise ValueError(f"box must be a number of pixels from 1 to {SIZE} (MNIST's is 20), not {box!r}")
    for name, value in [("keep_aspect", keep_aspect), ("thickness", thickness)]:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, not {value!r}")
    if not (isinstance(centre, str) and centre in ("mass", "box")):
        raise ValueError(f"centre must be 'mass' or 'box', not {centre!r}")


def to_mnist(img, box=20, keep_aspect=True, centre="mass", thickness=False):
    """MNIST-style digit: crop, fit a box x box box, centre by "mass" or "box": (H, W[, C]) -> (28, 28) float32 in [0, 1].

    img is any image to_grey reads (values by unit_range's rule), at least MIN_SIDE pixels a side.
    box is from 1 to 28 pixels; keep_aspect and thickness are booleans.
    """
    _check_settings(box, keep_aspect, centre, thickness)
    grey = to_grey(img)
    top, bottom, left, right = _readable_box(grey)
    h, w = bottom - top, right - left
    if thickness:
        grey = normalise_thickness(grey, max(h, w), box=box)
        top, bottom, left, right = _ink_box(grey)
        h, w = bottom - top, right - left
    scale_y, scale_x = (box / max(h, w),) * 2 if keep_aspect else (box / h, box / w)
    cy, cx = centre_of_mass(grey) if centre == "mass" else ((top + bottom) / 2, (left + right) / 2)
    # where the ink's centre lands, kept so that the whole box stays inside the 28x28 frame
    oy = np.clip(CENTRE, (cy - top) * scale_y, SIZE - (bottom - cy) * scale_y)
    ox = np.clip(CENTRE, (cx - left) * scale_x, SIZE - (right - cx) * scale_x)
    return _resample(grey, cy - oy / scale_y, cx - ox / scale_x, scale_y, scale_x)


def original_app(img):
    """The original project's final app: crop to the ink, pad to a square, resize to 20x20, pad to 28x28.

    The box, not the centre of mass, is centred, and at 14 (the frame's middle), not at MNIST's 14.5; the
    shorter side is centred in the square by whole pixels. Notebook 04 builds it step by step.
    (H, W[, C]) -> (28, 28) float32 in [0, 1]; EmptyCanvas as to_mnist.
    """
    grey = to_grey(img)
    top, bottom, left, right = _readable_box(grey)
    h, w = bottom - top, right - left
    n = max(h, w)                                     # the square's side; its corner lands on output (4, 4)
    return _resample(grey[top:bottom, left:right], -((n - h) // 2) - 4 * n / 20, -((n - w) // 2) - 4 * n / 20,
                     20 / n, 20 / n)


def mnist_style(img):
    """The pipeline the app and `predict` use: every step of to_mnist, thickness too: (H, W[, C]) -> (28, 28)."""
    return to_mnist(img, thickness=True)


# ---- diagnostics: how a 28x28 input compares with MNIST's own digits ----

def features(X28):
    """The diagnostic numbers for a batch of 28x28 digits (values by unit_range): (N, 28, 28) -> dict of (N,) arrays."""
    shape = np.shape(X28)
    if len(shape) != 3 or shape[1:] != (SIZE, SIZE):
        raise ValueError(f"expected a batch of 28x28 digits (N, 28, 28), got shape {shape}")
    X28 = unit_range(X28)                                    # a new float32 array: clipped in place
    np.clip(X28, 0, 1, out=X28)
    mass = np.maximum(X28.sum((1, 2)), 1e-6)
    i = np.arange(SIZE) + 0.5
    cy, cx = X28.sum(2) @ i / mass, X28.sum(1) @ i / mass
    ink = X28 >= INK
    rows, cols = ink.any(2), ink.any(1)
    h = np.where(rows.any(1), SIZE - rows.argmax(1) - rows[:, ::-1].argmax(1), 0)
    w = np.where(cols.any(1), SIZE - cols.argmax(1) - cols[:, ::-1].argmax(1), 0)
    return {
        "ink": X28.sum((1, 2)),                              # stroke density: the total ink
        "centre_offset": np.hypot(cy - CENTRE, cx - CENTRE),  # pixels from MNIST's centre
        "area_ratio": h * w / SIZE ** 2,                     # bounding box / frame
        "aspect": w / np.maximum(h, 1),                      # bounding box width / height
    }


@lru_cache(maxsize=1)
def mnist_reference():
    """The same numbers for MNIST's 60,000 training digits, each sorted: dict of (60000,) arrays."""
    from .data import load_mnist

    X_train = load_mnist()[0]
    return {k: np.sort(v) for k, v in features(X_train).items()}


EXPLAIN = {
    "ink": ("too little ink: strokes too thin or the digit too small", "too much ink: strokes too thick"),
    "centre_offset": (None, "off centre: MNIST digits sit at the centre of mass"),
    "area_ratio": ("too small in the frame", "too big in the frame: MNIST digits fit a 20x20 box"),
    "aspect": ("narrower than almost every MNIST digit", "wider than almost every MNIST digit"),
}


def diagnose(x28, reference=None, tail=0.001):
    """Compare one 28x28 input with MNIST: (28, 28) -> {name: {value, percentile, low, high}, 'warnings': [...]}.

    x28 is one digit as the network receives it, values by unit_range's rule (NaN is refused).
    """
    if np.shape(x28) != (SIZE, SIZE):
        raise ValueError(f"diagnose takes one 28x28 digit, got shape {np.shape(x28)}: "
                         "put a drawing through to_mnist first, or give one digit of a batch")
    if isinstance(tail, (bool, np.bool_)) or not isinstance(tail, numbers.Real) or not 0 <= tail < 0.5:
        raise ValueError(f"tail must be a fraction from 0 to 0.5 (0.001 flags the rarest 0.1% on each side), "
                         f"not {tail!r}")
    reference = reference or mnist_reference()
    bad = [k for k in EXPLAIN if not hasattr(reference, "get") or np.ndim(reference.get(k)) != 1
           or len(reference[k]) == 0]
    if bad:
        raise ValueError(f"reference must map {', '.join(EXPLAIN)} to sorted 1-D arrays, as mnist_reference() "
                         f"does; {', '.join(bad)} is missing or not one")
    found = {k: float(v[0]) for k, v in features(np.asarray(x28)[None]).items()}
    report, warnings = {}, []
    for name, value in found.items():
        ref = reference[name]
        low, high = ref[int(tail * (len(ref) - 1))], ref[int((1 - tail) * (len(ref) - 1))]
        percentile = 100 * np.searchsorted(ref, value, side="right") / len(ref)
        report[name] = {"value": value, "percentile": float(percentile), "low": float(low), "high": float(high)}
        too_low, too_high = EXPLAIN[name]
        if value < low and too_low:
            warnings.append(f"{name} = {value:.3g} is below {100 * (1 - tail):.1f}% of MNIST digits: {too_low}")
        if value > high and too_high:
            warnings.append(f"{name} = {value:.3g} is above {100 * (1 - tail):.1f}% of MNIST digits: {too_high}")
    report["warnings"] = warnings
    return report
