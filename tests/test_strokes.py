"""Rendering pen strokes (areas, discs, range) and the drawn-digit generator (seeded, balanced, replayable)."""

import json

import numpy as np
import pytest

from npnet.strokes import TEMPLATES, digit_strokes, drawn_digits, render


@pytest.mark.parametrize("length, pen_width", [(100.0, 10.0), (150.0, 18.0), (60.0, 25.0)])
def test_horizontal_line_has_the_area_of_a_capsule(length, pen_width):
    r = pen_width / 2
    img = render([[(60.3, 120.4), (60.3 + length, 120.4)]], size=280, pen_width=pen_width)
    assert abs(img.sum() - (length * pen_width + np.pi * r * r)) < 0.01 * img.sum()
    # across the middle the ink is pen_width thick; along the line it is length + pen_width long
    assert abs(img[:, int(60.3 + length / 2)].sum() - pen_width) < 0.1
    assert abs(img[120].sum() - (length + pen_width)) < 1.0


def test_a_dot_is_a_disc():
    r = 9.0
    img = render([[(100.5, 80.5)]], size=200, pen_width=2 * r)        # a tap: one point
    yy, xx = np.mgrid[:200, :200] + 0.5
    d = np.hypot(xx - 100.5, yy - 80.5)
    assert np.all(img[d < r - 0.5] == 1) and np.all(img[d > r + 0.5] == 0)
    assert abs(img.sum() - np.pi * r * r) < 0.5                       # the ramp is symmetric about the edge
    patch = img[80 - 12:81 + 12, 100 - 12:101 + 12]                    # centred on the dot's pixel
    assert np.allclose(patch, patch[::-1]) and np.allclose(patch, patch[:, ::-1]) and np.allclose(patch, patch.T)


def test_render_stays_in_0_1_where_strokes_cross_and_leave_the_canvas():
    strokes = [[(-20, 50), (300, 50)], [(50, -20), (50, 300)], [(40, 40), (60, 60), (40, 60)]]
    img = render(strokes, size=100, pen_width=12)
    assert img.dtype == np.float32 and img.shape == (100, 100)
    assert img.min() == 0 and img.max() == 1
    assert img[50, 0] == 1 and img[0, 50] == 1                       # clipped at the border, not lost


def test_generator_shapes_dtypes_and_balance():
    X, y = drawn_digits(25, np.random.default_rng(0))
    assert X.shape == (25, 280, 280) and X.dtype == np.uint8
    assert y.shape == (25,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=10)
    assert counts.min() == 2 and counts.max() == 3 and counts.sum() == 25
    assert X.max() == 255 and X.min() == 0
    assert not np.array_equal(y, np.sort(y))                          # shuffled, not in digit order


def test_generator_is_seeded():
    X1, y1 = drawn_digits(12, np.random.default_rng(7))
    X2, y2 = drawn_digits(12, np.random.default_rng(7))
    X3, _ = drawn_digits(12, np.random.default_rng(8))
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("size", [280, 140])
def test_ink_stays_on_the_canvas(size):
    X, _ = drawn_digits(40, np.random.default_rng(1), size=size)
    border = np.concatenate([X[:, 0], X[:, -1], X[:, :, 0], X[:, :, -1]], axis=1)
    assert border.max() == 0                                          # no digit is cut by the edge
    assert (X >= 128).sum((1, 2)).min() > 0.002 * size * size          # and every canvas holds a digit


def test_digits_vary_in_size_position_and_pen():
    rng = np.random.default_rng(2)
    drawn = [digit_strokes(d, rng) for d in np.arange(200) % 10]
    pens = np.array([pen for _, pen in drawn])
    assert 8 <= pens.min() < 10 and 28 < pens.max() <= 30
    pts = [np.vstack(strokes) for strokes, _ in drawn]
    heights = np.array([np.ptp(p[:, 1]) for p in pts]) / 280
    centres = np.array([p.mean(0) for p in pts])
    assert heights.min() < 0.45 and heights.max() > 0.8
    assert centres.min() < 80 and centres.max() > 200                 # off-centre, on both sides


def test_strokes_are_point_lists_that_replay_to_the_same_canvas():
    X, y = drawn_digits(6, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    rng.permutation(np.arange(6) % 10)                                # the labels' order comes first
    for canvas, digit in zip(X, y):
        strokes, pen_width = digit_strokes(digit, rng)
        assert all(s.ndim == 2 and s.shape[1] == 2 and s.dtype == np.float64 for s in strokes)
        recorded = json.loads(json.dumps([s.tolist() for s in strokes]))   # as a sketchpad would store them
        replayed = np.rint(render(recorded, 280, pen_width) * 255).astype(np.uint8)
        assert np.array_equal(replayed, canvas)


def test_every_template_variant_is_drawn():
    rng = np.random.default_rng(4)
    for digit, variants in TEMPLATES.items():
        n_strokes = {len(digit_strokes(digit, rng)[0]) for _ in range(60)}
        assert n_strokes == {len(v) for v in variants}, digit


def test_bad_digit_is_a_clear_error():
    with pytest.raises(ValueError, match="0-9"):
        digit_strokes(10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n must be"):
        drawn_digits(-1, np.random.default_rng(0))
