"""Notebook 06's exercises: recorded strokes into ink (the distance to a segment, the anti-aliased pen, a whole
stroke), the naive resize of the whole canvas, and the "why" map of Look inside (gradient x input)."""

import contextlib
import copy

import numpy as np

from .. import data, inside, preprocess, strokes
from .. import model as M
from ..losses import softmax
from . import Exercise, _real, _same_model


def _points(rng, height, width, margin=3.0):
    """A random (x, y) point on, or a little beyond, a height x width canvas: (2,) float64."""
    return rng.uniform([-margin, -margin], [width + margin, height + margin])


# -- the distance from each pixel centre to one segment --------------------------------------------------------
def segment_distance_solution(a, b, height, width):
    """(2,) points a, b as (x, y); canvas height, width -> (height, width) distance from each pixel centre to segment a-b."""
    y, x = np.mgrid[:height, :width] + 0.5           # pixel (row i, column j) has its centre at x = j + 0.5, y = i + 0.5
    ab = b - a
    length2 = ab @ ab
    if length2 == 0:                                  # a tap: the segment is the single point a
        t = 0.0
    else:                                             # where the nearest point lies along a-b, kept on the segment
        t = np.clip(((x - a[0]) * ab[0] + (y - a[1]) * ab[1]) / length2, 0, 1)
    return np.hypot(x - (a[0] + t * ab[0]), y - (a[1] + t * ab[1]))


def _distance_reference(a, b, height, width):
    rows, cols = np.arange(height)[:, None] + 0.5, np.arange(width)[None, :] + 0.5
    return strokes._segment_distance(rows, cols, a, b)   # what strokes.render uses


def _distance_cases(rng):
    cases = []
    for height, width in ((20, 20), (6, 9), (33, 17), (1, 1)):                 # (1, 1): a canvas of one pixel
        cases.append((_points(rng, height, width), _points(rng, height, width), height, width))
    cases.append((np.array([2.0, 10.0]), np.array([18.0, 10.0]), 20, 24))       # horizontal
    cases.append((np.array([12.5, 1.0]), np.array([12.5, 15.0]), 16, 25))       # vertical
    tap = _points(rng, 15, 15)
    cases.append((tap, tap.copy(), 15, 15))                                     # zero length: a tap
    return cases


def _distance(a, b, height, width, clamp=True, centre=0.5, swap=False, guard=True, root=True):
    """The distance with one or more typical mistakes switched on."""
    if swap:
        a, b = a[::-1], b[::-1]
    y, x = np.mgrid[:height, :width] + centre
    ab = b - a
    length2 = ab @ ab
    t = ((x - a[0]) * ab[0] + (y - a[1]) * ab[1]) / length2 if (length2 or not guard) else 0.0 * x
    t = np.clip(t, 0, 1) if clamp else t
    d2 = (x - (a[0] + t * ab[0])) ** 2 + (y - (a[1] + t * ab[1])) ** 2
    return np.sqrt(d2) if root else d2


_NO_CLAMP = ("you measured the distance to the infinite line through a and b: clip t to [0, 1], so that the "
             "nearest point stays on the segment (the pen's round caps come from its two ends)")
_NAN = ("a zero-length segment (a tap, a == b) gives NaN: t = 0/0. When |b - a|² is 0 the nearest point is a "
        "itself, so use t = 0")

segment_distance = Exercise(
    "segment_distance", _distance_reference, segment_distance_solution, _distance_cases,
    "matches npnet.strokes' segment distance on canvases from 1×1 to 33×17, horizontal and vertical segments, "
    "ends beyond the canvas, and a zero-length segment (a tap)",
    mistakes=[
        (_NO_CLAMP + ".", lambda a, b, h, w: _distance(a, b, h, w, clamp=False)),
        ("off by half a pixel: pixel (row i, column j) covers x in [j, j + 1) and y in [i, i + 1), so its centre is "
         "at x = j + 0.5, y = i + 0.5, not at its corner (j, i).", lambda a, b, h, w: _distance(a, b, h, w, centre=0.0)),
        ("x and y are swapped: x runs along a row (the column index j), y down the canvas (the row index i). "
         "np.mgrid[:height, :width] gives the row indices first.", lambda a, b, h, w: _distance(a, b, h, w, swap=True)),
        (_NAN + ".", lambda a, b, h, w: _distance(a, b, h, w, guard=False)),
        ("two things: " + _NO_CLAMP + "; and " + _NAN + ".",
         lambda a, b, h, w: _distance(a, b, h, w, clamp=False, guard=False)),
        ("you returned the squared distance: take the square root (np.hypot(dx, dy) does both).",
         lambda a, b, h, w: _distance(a, b, h, w, root=False)),
    ],
    hint_text="Make the pixel centres first: y, x = np.mgrid[:height, :width] + 0.5. The nearest point of the line "
              "through a and b to a point p is a + t (b - a) with t = (p - a)·(b - a) / |b - a|²; clip t to [0, 1] "
              "to stay on the segment, and use t = 0 when a == b. The distance is then np.hypot of the two "
              "differences.",
    atol=1e-9,
)


# -- the ink of an anti-aliased pen ----------------------------------------------------------------------------
def ink_from_distance_solution(d, pen_width):
    """(H, W) distances to the stroke, pen width in pixels -> (H, W) ink in [0, 1]: full inside, a 1-pixel ramp at the edge."""
    return np.clip(pen_width / 2 + 0.5 - d, 0, 1)   # 1 up to w/2 - 1/2, 0 from w/2 + 1/2, linear between


def _ink_reference(d, pen_width):
    return np.clip(pen_width / 2 + 0.5 - d, 0, 1)   # the line `cover = ...` of strokes.render


def _ink_cases(rng):
    cases = []
    for (height, width), pen in (((40, 40), 8.0), ((12, 15), 1.0), ((30, 36), 18.0), ((60, 60), 30.0), ((1, 1), 3.0)):
        d = _distance_reference(_points(rng, height, width), _points(rng, height, width), height, width)
        cases.append((d, pen))
    cases.append((np.array([[0.0, 1.3, 2.2, 3.7, 4.49, 4.51, 9.0]]), 8.0))  # across one edge, off the exact kinks
    return cases


ink_from_distance = Exercise(
    "ink_from_distance", _ink_reference, ink_from_distance_solution, _ink_cases,
    "gives strokes.render's ink for pens of 1, 3, 8, 18 and 30 px: full inside, a one-pixel ramp centred on the edge",
    mistakes=[
        ("no anti-aliasing: your ink jumps from 1 to 0 at d = w/2. Give the pixels within half a pixel of the "
         "edge a linear ramp, clip(w/2 + 1/2 - d, 0, 1).", lambda d, w: (d < w / 2).astype(np.float64)),
        ("the stroke is twice as wide as the pen: pen_width is the diameter, so the edge is at d = pen_width / 2.",
         lambda d, w: np.clip(w + 0.5 - d, 0, 1)),
        ("the ramp lies inside the pen, so the stroke comes out half a pixel too thin on each side: centre the "
         "ramp on the edge, from d = w/2 - 1/2 (full ink) to w/2 + 1/2 (none).", lambda d, w: np.clip(w / 2 - d, 0, 1)),
        ("the ink is not clipped to [0, 1]: it goes above 1 inside the pen and below 0 outside it.",
         lambda d, w: w / 2 + 0.5 - d),
        ("the ink goes above 1 inside the pen: clip the top at 1 as well as the bottom at 0.",
         lambda d, w: np.maximum(w / 2 + 0.5 - d, 0)),
    ],
    hint_text="Inside the pen (d below w/2 - 1/2) the ink is 1; outside (d above w/2 + 1/2) it is 0; in between it "
              "falls linearly, by 1 per pixel of distance. One expression does all three: w/2 + 1/2 - d, clipped "
              "to [0, 1] with np.clip.",
)


# -- the naive resize: the whole canvas to 28x28 ---------------------------------------------------------------
def naive_resize_solution(img):
    """(H, W) ink in [0, 1], H and W multiples of 28 -> (28, 28): each output pixel the mean of its block of the canvas."""
    kh, kw = img.shape[0] // 28, img.shape[1] // 28   # the block size: 10 x 10 for a 280 x 280 canvas
    return img.reshape(28, kh, 28, kw).mean(axis=(1, 3))   # (output row, row in block, output col, col in block)


def _naive_cases(rng):
    cases = []
    for size in (280, 140, 56, 28):
        strokes_, pen = strokes.digit_strokes(int(rng.integers(10)), rng, size)
        cases.append((strokes.render(strokes_, size, pen).astype(np.float64),))
    wide = np.zeros((56, 84))                             # a non-square canvas: blocks of 2 x 3
    strokes_, pen = strokes.digit_strokes(int(rng.integers(10)), rng, 56)
    wide[:, 14:70] = strokes.render(strokes_, 56, pen)
    return cases + [(wide,)]


def _blocks(img):
    return img.shape[0] // 28, img.shape[1] // 28


naive_resize = Exercise(
    "naive_resize", preprocess.naive, naive_resize_solution, _naive_cases,
    "matches npnet.preprocess.naive on generated digits drawn on canvases of 28, 56, 140 and 280 px, and on a "
    "56×84 canvas",
    mistakes=[
        ("you kept one pixel of each block: average the whole block instead (area averaging). Picking pixels "
         "skips 99 of every 100 on a 280-px canvas, so a thin stroke can vanish or break up.",
         lambda img: img[::_blocks(img)[0], ::_blocks(img)[1]]),
        ("you kept the middle pixel of each block: average the whole block instead (area averaging), or thin "
         "strokes vanish between the pixels you keep.",
         lambda img: img[_blocks(img)[0] // 2::_blocks(img)[0], _blocks(img)[1] // 2::_blocks(img)[1]]),
        ("each pixel is too bright by the block's size (100× on a 280-px canvas): take the mean of each block, "
         "not its sum.", lambda img: img.reshape(28, _blocks(img)[0], 28, _blocks(img)[1]).sum(axis=(1, 3))),
        ("the blocks are scrambled: reshape(28, k, 28, k) keeps each block's rows and columns together (axes 1 and "
         "3 run inside a block); reshape(28, 28, k, k) cuts the rows in the wrong order.",
         lambda img: img.reshape(28, 28, _blocks(img)[0], _blocks(img)[1]).mean(axis=(2, 3))),
        ("the result is transposed: rows of the canvas must stay rows of the 28×28 image.",
         lambda img: img.reshape(28, _blocks(img)[0], 28, _blocks(img)[1]).mean(axis=(1, 3)).T),
    ],
    hint_text="A 280×280 canvas is a 28×28 grid of 10×10 blocks. img.reshape(28, 10, 28, 10) gives axes (output row, "
              "row inside the block, output column, column inside the block); average over axes 1 and 3. Work out "
              "the block size from img.shape instead of writing 10.",
    atol=1e-6,
)


# -- a whole stroke: every segment, and a tap -------------------------------------------------------------------
def render_stroke_solution(points, size, pen_width):
    """(K, 2) recorded points (x, y), canvas size, pen width -> (size, size) ink in [0, 1]; one point is a dot."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if len(points) == 1:
        points = np.vstack([points, points])          # a tap: a zero-length segment, drawn as a dot
    y, x = np.mgrid[:size, :size] + 0.5               # pixel centres
    img = np.zeros((size, size))
    for a, b in zip(points[:-1], points[1:]):         # K points, K - 1 segments
        ab = b - a
        length2 = ab @ ab
        t = 0.0 if length2 == 0 else np.clip(((x - a[0]) * ab[0] + (y - a[1]) * ab[1]) / length2, 0, 1)
        d = np.hypot(x - (a[0] + t * ab[0]), y - (a[1] + t * ab[1]))
        img = np.maximum(img, np.clip(pen_width / 2 + 0.5 - d, 0, 1))   # overlapping segments: the darker wins
    return img


def _render_reference(points, size, pen_width):
    return strokes.render([points], size, pen_width)


def _render_cases(rng):
    cases = [(rng.uniform(5, 35, (1, 2)), 40, 9.0),                              # a tap
             (rng.uniform(5, 35, (2, 2)), 40, 6.0)]                              # one segment
    for k, size, pen in ((5, 30, 4.0), (12, 60, 11.0)):
        cases.append((rng.uniform(3, size - 3, (k, 2)), size, pen))              # zigzags: segments overlap at joins
    repeated = rng.uniform(5, 45, (6, 2))
    repeated[3] = repeated[2]                                                    # the mouse paused: a repeated point
    cases.append((repeated, 50, 7.0))
    drawn, pen = strokes.digit_strokes(2, rng, 84)
    return cases + [(drawn[0], 84, pen)]                                         # a generated digit's first stroke


def _segments_ink(points, size, pen_width, combine=np.maximum, guard=True):
    img = np.zeros((size, size))
    for a, b in zip(points[:-1], points[1:]):
        d = _distance(a, b, size, size, guard=guard)
        img = combine(img, np.clip(pen_width / 2 + 0.5 - d, 0, 1))
    return img


def _with_tap(points):
    points = np.asarray(points, np.float64).reshape(-1, 2)
    return np.vstack([points, points]) if len(points) == 1 else points


render_stroke = Exercise(
    "render_stroke", _render_reference, render_stroke_solution, _render_cases,
    "matches npnet.strokes.render on a tap, one segment, zigzags whose segments overlap, a repeated point and a "
    "generated digit's stroke",
    mistakes=[
        ("where two segments overlap (at every joint) the ink adds up beyond 1: combine the segments with "
         "np.maximum, not +.", lambda p, s, w: _segments_ink(_with_tap(p), s, w, combine=np.add)),
        ("the joints are too dark at their edges: adding the segments and clipping at 1 doubles the anti-aliased "
         "ramp where they overlap. Combine them with np.maximum.",
         lambda p, s, w: np.minimum(_segments_ink(_with_tap(p), s, w, combine=np.add), 1)),
        ("a tap (a stroke of one point) leaves no ink: draw it as a zero-length segment from the point to itself, "
         "a dot.", lambda p, s, w: _segments_ink(np.asarray(p, np.float64), s, w)),
        ("the last segment is missing: a stroke of K points has K - 1 segments, points[i] to points[i + 1] for i "
         "from 0 to K - 2.", lambda p, s, w: _segments_ink(_with_tap(p)[:-1], s, w)),
        ("NaN where the pen paused (two equal points in a row) or for a tap: the segment has length 0, so t = 0/0. "
         "Use t = 0 when a == b.", lambda p, s, w: _segments_ink(_with_tap(p), s, w, guard=False)),
    ],
    hint_text="Loop over consecutive pairs, zip(points[:-1], points[1:]): for each segment compute the distance from "
              "every pixel centre (your segment_distance) and its ink (your ink_from_distance), and keep the "
              "largest ink of all segments with np.maximum. A stroke of one point is a segment from the point to "
              "itself.",
    atol=1e-6,
)


# -- the why map: gradient x input, from one backward pass -----------------------------------------------------
def why_map_solution(model, stats, x28, c, r):
    """model: a list of layers; stats: (mean, std); x28: (28, 28) pixels in [0, 1]; c: the answer, r: the runner-up.
    Returns (28, 28): each pixel's ink times d(z_c - z_r)/d(pixel), z the logits."""
    from npnet import data, inside as I, model as M
    X = data.normalize(x28[None], stats)              # (1, 784) float32: (x - mean) / std, as the pad feeds the model
    with I.eval_mode(model):                          # dropout off; each layer's mode is put back afterwards
        logits = M.forward(model, X)                  # (1, 10)
        grad = np.zeros_like(logits)
        grad[0, c], grad[0, r] = 1, -1                # d(z_c - z_r) / d logits
        dX = M.backward(model, grad)                  # (1, 784): d(z_c - z_r) / d normalised input
    return x28 * dX.reshape(28, 28) / stats[1]        # normalize divides by std: the chain rule divides by it too


_gap_gradient = inside.gap_gradient                     # kept: the check swaps the module's one for _refuse


def _why_reference(model, stats, x28, c, r):
    return x28 * _gap_gradient(model, stats, x28, c, r)[1]         # what inside.why's "attribution" is


@contextlib.contextmanager
def _without_shortcuts():
    """npnet.inside.gap_gradient and .why raise _ShortCut meanwhile; both are put back afterwards."""
    saved = inside.gap_gradient, inside.why
    inside.gap_gradient = inside.why = _refuse
    try:
        yield
    finally:
        inside.gap_gradient, inside.why = saved


_CASE_MODELS = {}


def _case_models():
    """The course's MLP and, if present, its CNN (with dropout), each put in training mode as after fit: loaded once."""
    if not _CASE_MODELS:
        from .. import recipes

        for name, key in (("MLP", "mlp"), ("CNN", "cnn")):
            path = recipes.model_path(key)
            if key == "mlp" or path.exists():
                model, stats = recipes.load_or_train(key) if key == "mlp" else M.load(path)[:2]
                M.set_training(model, True)                       # forgetting eval mode must show (dropout)
                _CASE_MODELS[name] = (model, stats)
    return _CASE_MODELS


def _why_cases(rng):
    """For each model: a generated 4 and 7 with their answer against its runner-up, and a generated 2 with the third
    most likely digit against the answer (c and r are given, not found)."""
    cases = []
    for model, stats in _case_models().values():
        in_eval = copy.deepcopy(model)                                # the last case's model is in eval mode, so
        M.set_training(in_eval, False)                                # an answer that forces training mode shows
        for digit, pair, m in ((4, (0, 1), model), (7, (0, 1), model), (2, (2, 0), in_eval)):
            strokes_, pen = strokes.digit_strokes(digit, rng)
            x28 = preprocess.mnist_style(strokes.render(strokes_, 280, round(pen))).astype(np.float32)   # (28, 28)
            order = np.argsort(-M.predict_proba(m, data.normalize(x28[None], stats))[0], kind="stable")
            cases.append((m, stats, x28, int(order[pair[0]]), int(order[pair[1]])))
    return cases


def _why(model, stats, x28, c, r, seed="gap", times_input=True, divide=True, normalise=True, eval_mode=True,
         shape=(28, 28), std_power=1, times="pixels", absolute=False):
    """The why map with one typical mistake switched on: seed names what is backpropagated from the logits."""
    X = data.normalize(x28[None], stats) if normalise else np.asarray(x28, np.float32).reshape(1, 784)
    with inside.eval_mode(model) if eval_mode else contextlib.nullcontext():
        logits = M.forward(model, X)
        grad, onehot = np.zeros_like(logits), np.eye(logits.shape[1], dtype=logits.dtype)[[c]]
        if seed == "gap":
            grad[0, c], grad[0, r] = 1, -1
        elif seed == "reversed":
            grad[0, c], grad[0, r] = -1, 1
        elif seed == "z_c":
            grad[0, c] = 1
        elif seed == "probability":                           # d p_c / d logits = p_c (onehot_c - p)
            probs = softmax(logits)
            grad = probs[0, c] * (onehot - probs)
        elif seed == "loss":                                  # d(-log p_c) / d logits = p - onehot_c
            grad = softmax(logits) - onehot
        dX = M.backward(model, grad).reshape(28, 28)
    gradient = dX / stats[1] ** std_power if divide else dX
    ink = {"pixels": x28, "normalised": X.reshape(28, 28)}[times]
    out = ink * gradient if times_input else gradient
    return (np.abs(out) if absolute else out).reshape(shape)


_DROPOUT = ("the map changes from call to call: the model is in training mode, so its dropout drops random units. "
            "Run forward and backward inside `with I.eval_mode(model):`, which switches dropout off and then puts "
            "each layer's mode back.")
_RANDOM = ("the map changes from call to call on the same drawing, so something in it is random. Most often that is "
           "dropout: in training mode the model drops random units, so run forward and backward inside `with "
           "I.eval_mode(model):`. If you added noise or sampling of your own, leave it out: the why map is one exact "
           "gradient.")


_NORMALISED = ("you multiplied by the normalised input, (x - mean) / std: that credits every pixel, blank ones too, "
               "against a grey canvas at the mean. Multiply the gradient with respect to the pixels by the pixels "
               "themselves, x28, so that the blank canvas is the baseline and only the ink gets credit.")


class _ShortCut(Exception):
    """Raised in place of npnet.inside's own gap_gradient and why while the learner's why_map is checked."""


def _refuse(*args, **kwargs):
    raise _ShortCut("I.gap_gradient and I.why are the answer itself: write the backward pass with M.forward and "
                    "M.backward")


class _WhyMap(Exercise):
    """The why map: an answer that calls npnet.inside's gap_gradient or why is refused (the exercise is to write
    them); beyond the listed mistakes, a map that differs from one call to the next is told something in it is random
    (dropout, most often), and a map off by one constant factor is told the factor."""

    def diagnose(self, fn):
        with _without_shortcuts():
            verdict, message = super().diagnose(fn)
        if verdict == "wrong" and _ShortCut.__name__ in message:
            return "mistake", ("✗ it calls npnet.inside's gap_gradient or why, which compute the answer itself: write "
                               "the backward pass with M.forward and M.backward, as the prompt says.")
        return verdict, message

    def _explain_wrong(self, fn):
        return super()._explain_wrong(fn) or self._changes_between_calls(fn) or self._constant_factor(fn)

    def _constant_factor(self, fn):
        """('mistake', message) if every map is the same constant k times the answer's (a factor std, 255, 2, ... too
        many or too few), else None."""
        ks = []
        for args in self.cases(np.random.default_rng(self.seed)):
            want = _real(self.reference(*copy.deepcopy(args)))
            try:
                out = _real(fn(*copy.deepcopy(args)))
            except Exception:                                 # the learner's: the verdict already says what it raised
                return None
            if out is None or out.shape != want.shape or not np.all(np.isfinite(out)) or not np.any(want):
                return None
            k = float(np.sum(out * want) / np.sum(want * want))   # the least-squares factor
            if not np.allclose(out, k * want, rtol=self.rtol, atol=self.atol * max(abs(k), 1e-3)):
                return None
            ks.append(k)
        k = float(np.median(ks))
        if abs(k) < 1e-6 or not np.allclose(ks, k, rtol=1e-3) or np.isclose(k, 1, rtol=1e-3):
            return None
        return "mistake", (f"✗ your map is {k:.4g} times the answer on every drawing: its pattern is right, a constant "
                           "factor is not. Check each one: +1 and -1 at the logits, one division by std (stats[1]), "
                           "and x28 as it is, already in [0, 1].")

    def _changes_between_calls(self, fn):
        for model, *rest in self.cases(np.random.default_rng(self.seed)):
            same = copy.deepcopy(model)                       # one model, called twice: its dropout draws anew
            try:
                first, second = (_real(fn(same, *copy.deepcopy(rest))) for _ in range(2))
            except Exception:                                 # the learner's: the verdict already says what it raised
                return None
            if not _same_model(model, same):                  # weights or modes changed: that verdict stands
                return None
            if first is not None and second is not None and first.shape == second.shape \
                    and np.all(np.isfinite(first)) and np.all(np.isfinite(second)) \
                    and not np.allclose(first, second, rtol=self.rtol, atol=self.atol):
                return "mistake", "✗ " + _RANDOM
        return None


why_map = _WhyMap(
    "why_map", _why_reference, why_map_solution, _why_cases,
    "matches npnet.inside's gradient × input (I.why's map) for the MLP and the CNN on six generated drawings, for "
    "the answer against its runner-up and for another pair of digits, with the models in training mode as after fit "
    "and once in eval mode",
    mistakes=[
        ("that is the gradient alone: blank pixels get non-zero values. Multiply it by the pixels, x28 * gradient, "
         "so that only the ink drawn gets credit (the blank canvas is the baseline).",
         lambda *a: _why(*a, times_input=False)),
        ("your map is std times the answer (std = stats[1], about 0.31): normalize divides the pixels by std, so by "
         "the chain rule the gradient with respect to the pixels is the one backward returns divided by std.",
         lambda *a: _why(*a, divide=False)),
        ("you backpropagated from z_c alone: put -1 at the runner-up too, grad[0, c], grad[0, r] = 1, -1, so that "
         "the map explains the gap z_c - z_r (why c and not r).", lambda *a: _why(*a, seed="z_c")),
        ("the signs are reversed: that is the gradient of z_r - z_c. Put +1 at c (the answer) and -1 at r, so that "
         "red pushes towards c.", lambda *a: _why(*a, seed="reversed")),
        ("that is the gradient of the softmax probability p_c: differentiate the logits' gap z_c - z_r instead "
         "(+1 at c, -1 at r, no softmax). Near 0 or 1 a probability is flat, and its gradient fades.",
         lambda *a: _why(*a, seed="probability")),
        ("that is the gradient of the loss (softmax minus one-hot, as in training): differentiate the logits' gap "
         "z_c - z_r instead, +1 at c and -1 at r, with no softmax.", lambda *a: _why(*a, seed="loss")),
        ("the pixels went in unnormalised: the model learned from (x - mean) / std, so feed it "
         "data.normalize(x28[None], stats), then divide the gradient by std.",
         lambda *a: _why(*a, normalise=False, divide=False)),
        (_DROPOUT, lambda *a: _why(*a, eval_mode=False)),
        ("you divided by std twice: the chain rule divides the gradient by std once, because normalize divides the "
         "pixels by std once.", lambda *a: _why(*a, std_power=2)),
        ("you multiplied by std: normalize divides the pixels by std, so the gradient with respect to the pixels is "
         "the one backward returns divided by std, not multiplied.", lambda *a: _why(*a, std_power=-1)),
        (_NORMALISED, lambda *a: _why(*a, times="normalised")),
        ("you multiplied the normalised input by the gradient with respect to it: that is (x28 - mean) times the "
         "pixels' gradient, which credits every pixel, blank ones too, against a grey canvas at the mean. Divide the "
         "gradient by std and multiply by x28 itself, so that the blank canvas is the baseline.",
         lambda *a: _why(*a, times="normalised", divide=False)),
        ("that is the absolute value: keep the sign, which says which way each pixel pushed (red towards c, blue "
         "towards r).", lambda *a: _why(*a, absolute=True)),
        ("the map has shape (1, 784), the model's input: reshape it to (28, 28), so that it lines up with the drawing.",
         lambda *a: _why(*a, shape=(1, 784))),
        ("the map has shape (784,): reshape it to (28, 28), so that it lines up with the drawing.",
         lambda *a: _why(*a, shape=(784,))),
    ],
    hint_text="Three questions. What does the model see: the pixels as they are, or as data.normalize gives them "
              "to it? M.backward sends back the gradient you hand it at the logits: which (1, 10) array is the "
              "derivative of z_c - z_r with respect to the logits? And its result is per normalised pixel: if a raw "
              "pixel grows by 1, how much does its normalised value grow? Forward and backward inside "
              "`with I.eval_mode(model):`, so that dropout is off.",
    rtol=1e-4, atol=1e-4, float32=False,
)
