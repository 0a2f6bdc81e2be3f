"""Pen strokes: render what was drawn on a canvas as anti-aliased ink, and draw digits the way people do in an app."""

import numpy as np


def _segment_distance(py, px, a, b):
    """Distance from pixel centres (h, w) to the segment a-b, points given as (x, y)."""
    ab = b - a
    length2 = float(ab @ ab)
    t = 0.0 if length2 == 0 else np.clip(((px - a[0]) * ab[0] + (py - a[1]) * ab[1]) / length2, 0, 1)
    return np.hypot(px - (a[0] + t * ab[0]), py - (a[1] + t * ab[1]))


def render(strokes, size=280, pen_width=18.0):
    """Strokes (lists of (x, y) canvas points) as round-capped ink: -> float32 (size, size) in [0, 1].

    pen_width is one width for every stroke, or a list of one width per stroke; strokes combine by maximum.
    """
    widths = list(pen_width) if np.ndim(pen_width) else [pen_width] * len(strokes)
    if len(widths) != len(strokes):
        raise ValueError(f"pen_width must be one number or one per stroke: {len(strokes)} strokes, "
                         f"{len(widths)} widths")
    img = np.zeros((size, size), np.float32)
    for i, (stroke, width) in enumerate(zip(strokes, widths)):
        pts, r = np.asarray(stroke, np.float64).reshape(-1, 2), width / 2
        if not (np.isfinite(pts).all() and np.isfinite(r) and r >= 0):
            raise ValueError(f"stroke {i}: its points and pen width must be finite numbers, the width >= 0")
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


# Hand-designed digit templates in a unit box: x from 0 (left) to 1 (right), y from 0 (top) to 1 (bottom).
# A template is a list of strokes (pen down ... pen up); a stroke is a list of smooth pieces joined at
# corners; a piece is a list of control points that a smooth curve passes through.
TEMPLATES = {
    0: [
        [[[(.55, .02), (.2, .15), (.08, .55), (.3, .95), (.7, .95), (.92, .5), (.78, .1), (.5, .03), (.35, .1)]]],
        [[[(.5, .02), (.85, .2), (.9, .6), (.6, .97), (.2, .9), (.08, .45), (.25, .08), (.55, .0)]]],
    ],
    1: [
        [[[(.5, 0), (.5, 1)]]],                                              # a plain bar
        [[[(.3, .25), (.55, 0)], [(.55, 0), (.55, 1)]]],                     # with a flag
        [[[(.3, .22), (.5, 0)], [(.5, 0), (.5, 1)]], [[(.2, 1), (.8, 1)]]],   # flag and base
    ],
    2: [
        [[[(.1, .28), (.45, .0), (.85, .18), (.75, .5), (.35, .8), (.05, 1)], [(.05, 1), (.95, .98)]]],
        [[[(.12, .25), (.5, .0), (.88, .22), (.5, .6), (.2, .92), (.06, .86), (.12, .78), (.3, .9),  # a loop
           (.5, .98), (.95, .97)]]],
        [[[(.1, .22), (.5, .0), (.9, .25), (.6, .6), (.15, 1)], [(.15, 1), (.9, 1)]]],
    ],
    3: [
        [[[(.1, .15), (.5, .0), (.85, .2), (.65, .42), (.4, .48)],
          [(.4, .48), (.8, .58), (.9, .8), (.5, 1), (.08, .85)]]],
        [[[(.1, .02), (.85, .02)], [(.85, .02), (.4, .42)],                  # a flat top
          [(.4, .42), (.85, .6), (.85, .88), (.45, 1), (.08, .85)]]],
    ],
    4: [
        [[[(.35, 0), (.08, .62)], [(.08, .62), (.95, .62)]], [[(.7, .3), (.7, 1)]]],  # open
        [[[(.7, 1), (.7, 0)], [(.7, 0), (.05, .68)], [(.05, .68), (.95, .68)]]],    # closed
        [[[(.6, 0), (.05, .65)], [(.05, .65), (.95, .65)]], [[(.7, .1), (.68, 1)]]],
    ],
    5: [
        [[[(.22, 0), (.15, .45)], [(.15, .45), (.5, .36), (.88, .55), (.85, .85), (.5, 1), (.08, .88)]],
         [[(.22, 0), (.9, 0)]]],
        [[[(.9, .02), (.2, .02)], [(.2, .02), (.15, .45)],
          [(.15, .45), (.55, .38), (.9, .62), (.75, .92), (.4, 1), (.05, .85)]]],
    ],
    6: [
        [[[(.75, 0), (.35, .25), (.12, .65), (.35, .98), (.78, .88), (.8, .6), (.45, .5), (.15, .7)]]],
        [[[(.8, .05), (.45, .15), (.2, .45), (.15, .8), (.45, 1), (.8, .85), (.7, .6), (.35, .6), (.18, .78)]]],
        [[[(.7, 0), (.2, .6)], [(.2, .6), (.2, .85), (.5, 1), (.8, .8), (.55, .55), (.2, .68)]]],  # a straight stem
    ],
    7: [
        [[[(.05, .02), (.95, .02)], [(.95, .02), (.6, .45), (.4, 1)]]],
        [[[(.05, .02), (.95, .02)], [(.95, .02), (.55, .5), (.4, 1)]], [[(.3, .52), (.85, .48)]]],  # a bar
        [[[(.05, .15), (.08, .02)], [(.08, .02), (.95, .03)], [(.95, .03), (.45, 1)]]],            # a tick
    ],
    8: [
        [[[(.85, .12), (.5, 0), (.15, .15), (.3, .4), (.75, .6), (.88, .85), (.5, 1), (.12, .85),
           (.25, .6), (.7, .4), (.85, .15), (.6, .02)]]],
        [[[(.5, .45), (.15, .25), (.5, 0), (.82, .22), (.5, .45), (.15, .7), (.5, 1), (.85, .72), (.5, .45)]]],
        [[[(.5, 0), (.2, .2), (.5, .42), (.8, .2), (.5, 0)]],                                    # two loops
         [[(.5, .42), (.12, .7), (.5, 1), (.88, .7), (.5, .42)]]],
    ],
    9: [
        [[[(.85, .22), (.5, 0), (.15, .2), (.25, .48), (.6, .5), (.85, .25)], [(.85, .25), (.8, 1)]]],
        [[[(.85, .22), (.5, 0), (.12, .22), (.3, .5), (.65, .45), (.85, .2)],
          [(.85, .2), (.85, .6), (.7, .92), (.4, 1), (.15, .9)]]],                  # a curved tail
        [[[(.85, .2), (.5, 0), (.12, .25), (.5, .5), (.85, .2)], [(.85, .2), (.4, 1)]]],  # a slanted tail
    ],
}


def _spline(points, step):
    """A centripetal Catmull-Rom curve through control points (K, 2), sampled every ~step units: (M, 2)."""
    P = np.asarray(points, np.float64)
    if len(P) == 2:
        n = max(int(np.hypot(*(P[1] - P[0])) / step), 1)
        return P[0] + np.linspace(0, 1, n + 1)[:, None] * (P[1] - P[0])
    P = np.vstack([2 * P[0] - P[1], P, 2 * P[-1] - P[-2]])     # phantom end points
    out = [P[1:2]]
    for p0, p1, p2, p3 in zip(P[:-3], P[1:-2], P[2:-1], P[3:]):
        t1 = np.hypot(*(p1 - p0)) ** 0.5 + 1e-9
        t2 = t1 + np.hypot(*(p2 - p1)) ** 0.5 + 1e-9
        t3 = t2 + np.hypot(*(p3 - p2)) ** 0.5 + 1e-9
        n = max(int(np.hypot(*(p2 - p1)) / step), 1)
        t = np.linspace(t1, t2, n + 1)[1:, None]
        a1 = ((t1 - t) * p0 + t * p1) / t1
        a2 = ((t2 - t) * p1 + (t - t1) * p2) / (t2 - t1)
        a3 = ((t3 - t) * p2 + (t - t2) * p3) / (t3 - t2)
        b1 = ((t2 - t) * a1 + t * a2) / t2
        b2 = ((t3 - t) * a2 + (t - t1) * a3) / (t3 - t1)
        out.append(((t2 - t) * b1 + (t - t1) * b2) / (t2 - t1))
    return np.vstack(out)


def digit_strokes(digit, rng, size=280):
    """One digit as someone might draw it on a size x size canvas: -> (strokes [(K, 2) (x, y)], pen_width)."""
    if digit not in TEMPLATES:
        raise ValueError(f"digit must be one of 0-9, got {digit!r}")
    variants = TEMPLATES[int(digit)]
    template = variants[rng.integers(len(variants))]
    height = rng.uniform(0.35, 0.9) * size
    width = height * rng.uniform(0.5, 1.0)
    slant = np.clip(rng.normal(0.12, 0.12), -0.2, 0.45)       # x shifts right by slant * height going up
    angle = rng.normal(0, 0.08)                               # radians
    c, s = np.cos(angle), np.sin(angle)
    jitter = 0.045                                            # of the box, per control point

    def place(pts):                                           # unit box -> canvas pixels, about the origin
        pts = np.asarray(pts, np.float64) - 0.5
        x, y = pts[:, 0] * width, pts[:, 1] * height
        x = x - slant * y
        return np.stack([c * x - s * y, s * x + c * y], axis=1)

    strokes = []
    for k, stroke in enumerate(template):
        pieces, start = [], None
        shift = rng.normal(0, 0.04, 2) if k else 0            # a later stroke lands only roughly in place
        for piece in stroke:
            ctrl = np.asarray(piece, np.float64) + shift + rng.normal(0, jitter, (len(piece), 2))
            if start is not None:
                ctrl[0] = start                               # pieces meet at their corner
            start = ctrl[-1]
            pieces.append(_spline(place(ctrl), step=3.0))
        pts = np.vstack([pieces[0]] + [p[1:] for p in pieces[1:]])
        # a slow tremor along the stroke, as a hand on a mouse or a finger on glass makes
        t = np.arange(len(pts))[:, None] / 40.0
        phase = rng.uniform(0, 2 * np.pi, (1, 2))
        pts += 0.006 * height * np.sin(t * rng.uniform(0.5, 1.5, (1, 2)) + phase)
        strokes.append(pts)

    pen_width = float(rng.uniform(8, 30)) * size / 280       # 8-30 px on a 280 x 280 canvas
    allpts = np.vstack(strokes)
    lo, hi = allpts.min(0), allpts.max(0)
    room = size - 2 * (pen_width / 2 + 2)                     # keep the whole pen off the border
    scale = min(1.0, room / max(hi - lo))
    lo, hi = lo * scale, hi * scale
    low, high = pen_width / 2 + 2 - lo, size - pen_width / 2 - 2 - hi    # where the offset may go, (2,)
    offset = rng.uniform(low, np.maximum(high, low))
    return [p * scale + offset for p in strokes], pen_width


def drawn_digits(n, rng, size=280):
    """n drawn digits, balanced over 0-9 and shuffled: -> uint8 (n, size, size) ink 255 on 0, int64 (n,) labels."""
    # rng draws the labels' order first, then each digit_strokes in turn, so the strokes can be replayed
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    y = rng.permutation(np.arange(n) % 10).astype(np.int64)
    canvases = np.zeros((n, size, size), np.uint8)
    for i, digit in enumerate(y):
        strokes, pen_width = digit_strokes(digit, rng, size)
        canvases[i] = np.rint(render(strokes, size, pen_width) * 255)
    return canvases, y
