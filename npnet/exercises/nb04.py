"""Notebook 04's exercises: the centre of mass, the shift to MNIST's centre, the aspect-preserving fit into 20x20,
where the original app puts its square, and MNIST's own whole-pixel centring."""

import numpy as np

from .. import preprocess
from . import Exercise, _call, _Raised


class _Exercise(Exercise):
    """An Exercise that also names mistakes seen in the form of the answers rather than their values: clues, a list of
    (message, test(fn, cases) -> bool), tried in order when no listed mistake matches."""

    def __init__(self, *args, clues=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.clues = clues

    def diagnose(self, fn):
        verdict, message = super().diagnose(fn)
        if verdict == "wrong":
            cases = self.cases(np.random.default_rng(self.seed))
            for text, test in self.clues:
                try:
                    found = test(fn, cases)
                except Exception:                        # noqa: BLE001 - an output too odd to test: say "wrong"
                    found = False
                if found:
                    return "mistake", f"✗ {text}"
        return verdict, message


def _raises_only_off_28(fn, cases):
    """True if fn works on every 28x28 case but raises on some image of another shape: a grid built for 28x28."""
    raised = [isinstance(_call(fn, args), _Raised) for args in cases]
    square = [np.shape(args[0]) == (28, 28) for args in cases]
    return not any(r and s for r, s in zip(raised, square)) and any(r and not s for r, s in zip(raised, square))


def _digit_like(rng, h=28, w=28):
    """A grey 'digit': a few blurred strokes of random grey, somewhere in an (h, w) frame: -> (h, w) float64."""
    img = np.zeros((h, w))
    for _ in range(rng.integers(2, 5)):
        r0, c0, r1, c1 = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, w)
        for s in np.linspace(0, 1, 40):
            r, c = int(r0 + s * (r1 - r0)), int(c0 + s * (c1 - c0))
            img[max(r - 1, 0):r + 1, max(c - 1, 0):c + 1] = np.maximum(img[max(r - 1, 0):r + 1, max(c - 1, 0):c + 1],
                                                                        rng.uniform(0.3, 1.0))
    return img


def _off_centre(rng):
    """A digit-like image in a random part of a 28x28 frame."""
    img = np.zeros((28, 28))
    h, w = rng.integers(8, 18, 2)
    top, left = rng.integers(0, 28 - h), rng.integers(0, 28 - w)
    img[top:top + h, left:left + w] = _digit_like(rng, h, w)
    return img


# -- the centre of mass -------------------------------------------------------------------------------------
def centre_of_mass_solution(x):
    """(H, W) ink in [0, 1] -> (row, column): the ink-weighted mean pixel centre, pixel i spanning [i, i + 1)."""
    mass = x.sum()
    rows = np.arange(x.shape[0]) + 0.5                  # the centre of pixel i is at i + 1/2
    cols = np.arange(x.shape[1]) + 0.5
    return (x.sum(axis=1) @ rows) / mass, (x.sum(axis=0) @ cols) / mass


def _com_cases(rng):
    cases = [(_off_centre(rng),) for _ in range(3)]
    cases.append((_digit_like(rng, 13, 20),))            # not square: rows and columns must not be mixed up
    one = np.zeros((5, 9))
    one[4, 1] = 0.7
    cases.append((one,))                                 # a single inked pixel: its centre, (4.5, 1.5)
    cases.append((np.ones((1, 1)),))                     # a 1x1 image: (0.5, 0.5)
    return cases


def _com_index(x):
    r, c = preprocess.centre_of_mass(x)
    return r - 0.5, c - 0.5


def _com_count(x):
    r = (x.sum(axis=1) @ (np.arange(x.shape[0]) + 0.5)) / x.size
    c = (x.sum(axis=0) @ (np.arange(x.shape[1]) + 0.5)) / x.size
    return r, c


centre_of_mass = _Exercise(
    "centre_of_mass", preprocess.centre_of_mass, centre_of_mass_solution, _com_cases,
    "matches preprocess.centre_of_mass on 28x28 digits, a 13x20 image, a single inked pixel and a 1x1 image",
    mistakes=[
        ("rows and columns are swapped: return (row, column), the row being the first axis (x.sum(axis=1) weights "
         "the rows).", lambda x: preprocess.centre_of_mass(x)[::-1]),
        ("every value is half a pixel too small: you used the pixel index i, but in pixel-edge coordinates pixel i "
         "spans [i, i + 1) and its centre is at i + 0.5.", _com_index),
        ("you divided by the number of pixels; a mean weighted by ink divides by the total ink, x.sum().", _com_count),
        ("you weighted every inked pixel equally: weight each pixel by its ink, so grey edges count less.",
         lambda x: preprocess.centre_of_mass((x > 0).astype(float))),
        ("that is the brightest pixel's centre (argmax); the centre of mass averages every pixel's centre, each "
         "weighted by its ink.", lambda x: tuple(np.array(np.unravel_index(np.argmax(x), x.shape)) + 0.5)),
    ],
    clues=[("your grid assumes 28x28: it works on the 28x28 digits but raises on a 13x20 image. Build the pixel "
            "centres from the image's own shape: np.arange(x.shape[0]) + 0.5 for the rows, x.shape[1] for the "
            "columns.", _raises_only_off_28)],
    returns=("row", "col"),
    hint_text="x.sum(axis=1) is the ink in each row, (H,); multiply it by the row centres np.arange(H) + 0.5 (a dot "
              "product) and divide by the total ink x.sum(). The same with x.sum(axis=0) for the columns.",
    rtol=1e-6, atol=1e-6,
)


# -- the shift to MNIST's centre ----------------------------------------------------------------------------
def centring_shift_solution(x):
    """(28, 28) ink in [0, 1] -> (d_row, d_col): how far to move the image (down, right) to put its centre of mass at (14.5, 14.5)."""
    centres = np.arange(28) + 0.5                        # pixel i spans [i, i + 1)
    mass = x.sum()
    r = (x.sum(axis=1) @ centres) / mass
    c = (x.sum(axis=0) @ centres) / mass
    return 14.5 - r, 14.5 - c                            # where it should be minus where it is


def _shift_reference(x):
    r, c = preprocess.centre_of_mass(x)
    return preprocess.CENTRE - r, preprocess.CENTRE - c


def _shift_cases(rng):
    cases = [(_off_centre(rng),) for _ in range(4)]
    corner = np.zeros((28, 28))
    corner[2:6, 20:27] = 1.0                             # high and to the right: move down and left
    return cases + [(corner,)]


centring_shift = Exercise(
    "centring_shift", _shift_reference, centring_shift_solution, _shift_cases,
    "matches preprocess.CENTRE - preprocess.centre_of_mass(x) on five 28x28 digits, centred anywhere",
    mistakes=[
        ("the shift points the wrong way: it is target minus current position, 14.5 - centre, so a digit above the "
         "centre moves down (a positive d_row).", lambda x: tuple(-d for d in _shift_reference(x))),
        ("rows and columns are swapped: return (d_row, d_col), the row shift first.",
         lambda x: _shift_reference(x)[::-1]),
        ("the shift is half a pixel too large: the centre of mass was computed from pixel indices i, not pixel "
         "centres i + 0.5.", lambda x: tuple(d + 0.5 for d in _shift_reference(x))),
        ("the target is 14, the middle of the frame; MNIST's digits have their centre of mass at 14.5, the centre of "
         "pixel (14, 14).", lambda x: tuple(d - 0.5 for d in _shift_reference(x))),
        ("you rounded to whole pixels; keep the fraction: preprocess.to_mnist moves the image by a fraction of a "
         "pixel while resampling (rounding is exercise 2's job).", lambda x: tuple(np.round(_shift_reference(x)))),
    ],
    returns=("d_row", "d_col"),
    hint_text="First the centre of mass (row, column) with pixel centres at i + 0.5, as above. The shift is where it "
              "should be minus where it is: (14.5 - row, 14.5 - column).",
    rtol=1e-6, atol=1e-6,
)


# -- the aspect-preserving fit into a box x box square --------------------------------------------------------
def fit_box_solution(h, w, box=20):
    """Ink box h rows by w columns (ints) -> (new_h, new_w), floats: scaled so the longer side is box pixels, aspect kept."""
    s = box / max(h, w)                                  # one scale for both sides, set by the longer one
    return h * s, w * s


def _fit_reference(h, w, box=20):
    """What preprocess.to_mnist does to a filled h x w rectangle, measured on its output: -> (height, width)."""
    pad = max(h, w)
    canvas = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
    canvas[pad:pad + h, pad:pad + w] = 255
    out = preprocess.to_mnist(canvas, box=box, centre="box").astype(np.float64)
    # The output is (row coverage) x (column coverage); the longer side covers whole pixels, so its profile peaks at 1.
    if h >= w:
        new_w = out.max(axis=0).sum()
        return out.sum() / new_w, new_w
    new_h = out.max(axis=1).sum()
    return new_h, out.sum() / new_h


def _fit_cases(rng):
    cases = [(int(rng.integers(30, 250)), int(rng.integers(30, 250)), 20) for _ in range(3)]
    return cases + [(200, 3, 20), (7, 5, 20), (120, 120, 20), (90, 250, 16), (181, 97, 24)]


def _scale_floored(h, w, box=20):
    s = box // max(h, w)                                 # 0 for any box longer than `box`
    return h * s, w * s


def _short_side(h, w, box=20):
    s = box / min(h, w)
    return h * s, w * s


fit_box = Exercise(
    "fit_box", _fit_reference, fit_box_solution, _fit_cases,
    "matches what preprocess.to_mnist does to a filled rectangle, for tall, wide, square, thin and small boxes, "
    "and boxes of 16, 20 and 24",
    mistakes=[
        ("every digit became box x box: the aspect ratio is lost. Scale both sides by the same factor.",
         lambda h, w, box=20: (float(box), float(box))),
        ("you scaled by the short side, so the long side comes out bigger than the box: s = box / max(h, w).",
         _short_side),
        ("the scale is upside down: s = box / max(h, w), the box size over the ink's size.",
         lambda h, w, box=20: (h * max(h, w) / box, w * max(h, w) / box)),
        ("you rounded to whole pixels; keep the fractions: the resampling works with fractional pixels, and a "
         "3-pixel-wide stroke of a tall 1 becomes 0.3 of a pixel.",
         lambda h, w, box=20: (round(h * box / max(h, w)), round(w * box / max(h, w)))),
        ("you cut the sizes down to whole pixels (integer division // or int()); keep the fractions: use / and "
         "return floats.", lambda h, w, box=20: (h * box // max(h, w), w * box // max(h, w))),
        ("the scale is a whole number: the integer division box // max(h, w), or int(box / max(h, w)), is 0 for any "
         "ink box longer than the box, so the digit shrinks to nothing. Keep the fraction: s = box / max(h, w).",
         _scale_floored),
        ("the sides are swapped: return (new_h, new_w), the height (from h) first.",
         lambda h, w, box=20: fit_box_solution(h, w, box)[::-1]),
        ("the box size is fixed at 20: use the argument box, so fit_box(h, w, 16) fits into 16x16.",
         lambda h, w, box=20: fit_box_solution(h, w, 20)),
    ],
    returns=("new_h", "new_w"),
    hint_text="One scale factor s for both sides, chosen so that the longer side becomes box: s = box / max(h, w). "
              "Then return (h * s, w * s).",
    rtol=1e-4, atol=1e-4,
)


# -- MNIST's own centring, by whole pixels (end-of-notebook exercise) ---------------------------------------
def shift_to_centre_solution(x):
    """(28, 28) ink -> (28, 28): moved by whole pixels, with zeros coming in, so its centre of mass lies in pixel (14, 14)."""
    centres = np.arange(28) + 0.5
    mass = x.sum()
    dr = int(np.round(14.5 - (x.sum(axis=1) @ centres) / mass))   # rows to move down (negative: up)
    dc = int(np.round(14.5 - (x.sum(axis=0) @ centres) / mass))   # columns to move right (negative: left)
    out = np.zeros_like(x)
    src = x[max(0, -dr):28 - max(0, dr), max(0, -dc):28 - max(0, dc)]   # the part that stays in the frame
    out[max(0, dr):max(0, dr) + src.shape[0], max(0, dc):max(0, dc) + src.shape[1]] = src
    return out


def _whole_pixel_shift(x, dr, dc):
    out = np.zeros_like(x)
    src = x[max(0, -dr):28 - max(0, dr), max(0, -dc):28 - max(0, dc)]
    out[max(0, dr):max(0, dr) + src.shape[0], max(0, dc):max(0, dc) + src.shape[1]] = src
    return out


def _roll(x):
    d_row, d_col = _shift_reference(x)
    return np.roll(x, (int(np.round(d_row)), int(np.round(d_col))), axis=(0, 1))


def _flipped(x):
    d_row, d_col = _shift_reference(x)
    return _whole_pixel_shift(x, -int(np.round(d_row)), -int(np.round(d_col)))


def _swapped(x):
    d_row, d_col = _shift_reference(x)
    return _whole_pixel_shift(x, int(np.round(d_col)), int(np.round(d_row)))


def _truncated(x):
    d_row, d_col = _shift_reference(x)
    return _whole_pixel_shift(x, int(d_row), int(d_col))


def _floored(x):
    d_row, d_col = _shift_reference(x)
    return _whole_pixel_shift(x, int(np.floor(d_row)), int(np.floor(d_col)))


def _new_greys(fn, cases):
    """True if fn's output has ink values its input does not: it was resampled, moved by a fraction of a pixel."""
    for (x,) in cases:
        out = _call(fn, (x,))
        if isinstance(out, _Raised) or np.shape(out) != x.shape:
            return False
        known = np.unique(np.append(np.round(x, 9), 0.0))
        if not np.isin(np.round(np.asarray(out, np.float64), 9), known).all():
            return True
    return False


def _whole_cases(rng):
    cases = [(_off_centre(rng),) for _ in range(4)]
    edge = np.zeros((28, 28))
    edge[8:20, 0:9] = rng.uniform(0.5, 1, (12, 9))        # heavy ink at the left ...
    edge[3:25, 27] = 0.3                                 # ... and a faint stroke at the right edge, pushed off the frame
    cases.append((edge,))
    centred = np.zeros((28, 28))
    centred[9:20, 10:19] = rng.uniform(0.2, 1, (11, 9))   # nearly centred already: a shift of 0 or 1
    return cases + [(centred,)]


shift_to_centre = _Exercise(
    "shift_to_centre", shift_to_centre_solution, shift_to_centre_solution, _whole_cases,
    "matches the model answer on six 28x28 images, one with ink pushed off the frame",
    mistakes=[
        ("the image did not move: return the shifted copy, not x.", lambda x: x),
        ("ink that leaves the frame came back on the other side: np.roll wraps around. Shift with zeros coming in "
         "(copy a slice into np.zeros_like(x)).", _roll),
        ("the image moved away from the centre: the shift is 14.5 - centre of mass, positive = down or right.",
         _flipped),
        ("rows and columns are swapped: the row shift comes from the row centre of mass (x.sum(axis=1)).", _swapped),
        ("int() cuts towards zero; round to the nearest whole pixel (np.round), or the centre can end up a whole "
         "pixel away.", _truncated),
        ("the shift is one pixel short about half the time: np.floor(14.5 - centre), like rounding towards a "
         "target of 14, lands the centre of mass in pixel (13, 13) or (14, 14). Round 14.5 - centre to the nearest "
         "int (np.round).", _floored),
    ],
    clues=[("your output has grey values the input does not have: it was resampled, moved by a fraction of a "
            "pixel. MNIST moved by whole pixels: round the shift to ints and copy the pixels.", _new_greys)],
    hint_text="Compute (d_row, d_col) = (14.5 - row, 14.5 - column) as in centring_shift and round each to an int. "
              "Then copy x[max(0, -dr):28 - max(0, dr), ...] into a zero image at rows max(0, dr) onward (the same "
              "for columns): zeros come in, and ink pushed past the edge is lost.",
)


# -- where the original app puts its square -----------------------------------------------------------------
def app_placement_solution(h, w):
    """Ink box h rows by w columns (ints) -> (scale, anchor_row, anchor_col): the original app's scale, and the top-left
    corner of its padded square in the crop's coordinates, the input point that lands on output (4, 4)."""
    n = max(h, w)                                        # the square's side
    return 20 / n, -((n - h) // 2), -((n - w) // 2)      # whole pixels of padding above and to the left


def _placement_cases(rng):
    cases = [(int(rng.integers(20, 250)), int(rng.integers(20, 250))) for _ in range(3)]
    return cases + [(200, 97), (97, 200), (150, 150), (181, 40), (41, 180), (13, 8)]   # odd and even paddings


def _placement_plus(h, w):
    scale, r, c = app_placement_solution(h, w)
    return scale, -r, -c


def _placement_halves(h, w):
    n = max(h, w)
    return 20 / n, -(n - h) / 2, -(n - w) / 2


def _placement_floor_of_negative(h, w):
    n = max(h, w)
    return 20 / n, -(n - h) // 2, -(n - w) // 2          # floors -(n - h) / 2: one pixel further for odd paddings


def _placement_short(h, w):
    _, r, c = app_placement_solution(h, w)
    return 20 / min(h, w), r, c


def _placement_swapped(h, w):
    scale, r, c = app_placement_solution(h, w)
    return scale, c, r


app_placement = Exercise(
    "app_placement", app_placement_solution, app_placement_solution, _placement_cases,
    "matches the model answer for tall, wide and square boxes, with odd and even paddings",
    mistakes=[
        ("the corner is on the wrong side: the padding goes above and to the left of the crop, so the square's "
         "corner has negative crop coordinates, -((n - h) // 2).", _placement_plus),
        ("the padding is a whole number of pixels: (n - h) // 2, not (n - h) / 2, so an odd difference puts the "
         "extra pixel below (or to the right).", _placement_halves),
        ("-(n - h) // 2 floors the negative number, one pixel too far up (or left) when n - h is odd; the padding "
         "is (n - h) // 2 whole pixels, so negate it afterwards: -((n - h) // 2).", _placement_floor_of_negative),
        ("you scaled by the short side; the square's side is the long one, n = max(h, w), and it becomes 20 "
         "pixels: 20 / n.", _placement_short),
        ("rows and columns are swapped: anchor_row comes from the padding of the rows, (n - h) // 2.",
         _placement_swapped),
        ("the anchor is the crop's own corner, (0, 0): the shorter side was padded to make the square, so the "
         "square's corner lies outside the crop.", lambda h, w: (20 / max(h, w), 0, 0)),
        ("the square becomes 20x20 and is then padded to 28x28; the scale is 20 / n, not 28 / n.",
         lambda h, w: (28 / max(h, w),) + app_placement_solution(h, w)[1:]),
        ("the scale is upside down: n input pixels become 20 output pixels, so each input pixel becomes 20 / n of "
         "an output pixel.", lambda h, w: (max(h, w) / 20,) + app_placement_solution(h, w)[1:]),
        ("that is the square's centre; the anchor is its top-left corner, the point that lands on output (4, 4): "
         "-((n - h) // 2) rows above the crop's corner.",
         lambda h, w: (20 / max(h, w),) + tuple(a + max(h, w) / 2 for a in app_placement_solution(h, w)[1:])),
        ("your anchor lands on output (0, 0): the 4-pixel border is already in `at` = (4, 4), so the anchor is the "
         "square's own corner, -((n - h) // 2), with no border added.",
         lambda h, w: (20 / max(h, w),) + tuple(a - 4 * max(h, w) / 20 for a in app_placement_solution(h, w)[1:])),
    ],
    returns=("scale", "anchor_row", "anchor_col"),
    hint_text="The square's side is n = max(h, w); what scale shrinks it to 20x20? Then count the rows of padding "
              "above the crop (whole pixels, the smaller half of n - h): the square's top-left corner lies that many "
              "rows above the crop's own corner (0, 0), so its row is negative. The same for the columns.",
    rtol=1e-9, atol=1e-9,
)
