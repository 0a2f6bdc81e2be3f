"""MNIST-style preprocessing on shapes whose answer is known: box, aspect, centre of mass, polarity, bad canvases."""

import numpy as np
import pytest

from npnet import preprocess as P


def canvas(size=280, value=0.0):
    return np.full((size, size), value, np.float32)


def rect(top, left, h, w, size=280):
    c = canvas(size)
    c[top:top + h, left:left + w] = 1
    return c


def box_of(x28, thr=P.INK):
    rows, cols = np.flatnonzero((x28 >= thr).any(1)), np.flatnonzero((x28 >= thr).any(0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def check_output(x28):
    assert x28.shape == (28, 28) and x28.dtype == np.float32
    assert np.isfinite(x28).all() and x28.min() >= 0 and x28.max() <= 1


def test_rectangle_fits_the_20_box_keeps_its_aspect_and_is_centred():
    x28 = P.to_mnist(rect(30, 170, 100, 50))        # 2:1, far from the canvas centre
    check_output(x28)
    assert x28.max(1).sum() == pytest.approx(20, abs=0.01)   # 20 rows of ink, sub-pixel placed
    assert x28.max(0).sum() == pytest.approx(10, abs=0.01)   # 10 columns
    assert np.allclose(P.centre_of_mass(x28), (P.CENTRE, P.CENTRE), atol=0.02)
    f = P.features(x28[None])
    assert f["aspect"][0] == pytest.approx(0.5, abs=0.1) and f["centre_offset"][0] < 0.02


def test_area_averaging_conserves_ink_and_anti_aliases():
    x28 = P.to_mnist(rect(40, 40, 100, 100))         # 100 px -> 20 px: scale 0.2
    assert x28.sum() == pytest.approx(100 * 100 * 0.2 ** 2, rel=1e-4)
    stripes = canvas()
    stripes[:, ::2] = 1                              # 1-px stripes: area averaging gives flat grey
    assert np.allclose(P.naive(stripes), 0.5, atol=1e-5)
    rng = np.random.default_rng(0)
    noise = np.pad(rng.random((260, 260)).astype(np.float32), 10)  # dark border: no background to remove
    assert np.allclose(P.naive(noise), noise.reshape(28, 10, 28, 10).mean((1, 3)), atol=1e-5)


def test_centre_of_mass_versus_bounding_box_centring():
    c = rect(50, 100, 20, 100)                       # a bar on top ...
    c[70:250, 140:160] = 1                           # ... and a long stem: a "T", mass above the box centre
    by_mass, by_box = P.to_mnist(c), P.to_mnist(c, centre="box")
    assert np.allclose(P.centre_of_mass(by_mass), (P.CENTRE, P.CENTRE), atol=0.02)
    top, bottom, left, right = box_of(by_box, 0.5)
    assert (top + bottom) / 2 == pytest.approx(14, abs=0.5) and (left + right) / 2 == pytest.approx(14, abs=0.5)
    assert P.centre_of_mass(by_box)[0] < P.CENTRE - 1  # the bar pulls its mass up in a box-centred frame


def test_ink_is_never_pushed_off_the_frame():
    c = rect(20, 20, 20, 240)                        # a long bar ...
    c[20:260, 20:22] = 1                             # ... with a hairline down the side: mass far from the box centre
    x28 = P.to_mnist(c)
    check_output(x28)
    total = c.sum() * (20 / 240) ** 2
    assert x28.sum() == pytest.approx(total, rel=1e-3)  # all the ink arrived
    top, bottom, left, right = box_of(x28, 1e-6)
    assert top >= 0 and left >= 0 and bottom <= 28 and right <= 28


def test_stretch_to_the_full_frame():
    x28 = P.to_mnist(rect(30, 170, 100, 50), box=28, keep_aspect=False, centre="box")
    assert x28.min() == pytest.approx(1)             # the crop fills all 28x28


@pytest.mark.parametrize("make", [
    lambda c: c,                                     # white ink on black
    lambda c: 1 - c,                                 # black ink on white paper
    lambda c: (255 * (1 - c)).astype(np.uint8),      # the same as uint8
    lambda c: np.dstack([1 - c] * 3),                # RGB
    lambda c: np.dstack([1 - c] * 3 + [np.ones_like(c)]),       # opaque RGBA
    lambda c: np.dstack([np.zeros_like(c)] * 3 + [c]),          # black strokes on a transparent canvas
    lambda c: 0.3 + 0.6 * c,                         # grey paper, lighter ink
])
def test_polarity_and_colour_formats_give_the_same_digit(make):
    c = rect(60, 80, 140, 30)
    c[60:90, 80:180] = 1
    assert np.allclose(P.to_mnist(make(c)), P.to_mnist(c), atol=1e-4)


def test_empty_and_nearly_empty_canvases_are_no_digit():
    for blank in [canvas(), canvas(value=1.0), np.full((280, 280, 4), 255, np.uint8)]:
        with pytest.raises(P.EmptyCanvas, match="no digit"):
            P.to_mnist(blank)
    dot = canvas()
    dot[140:143, 140:143] = 1
    with pytest.raises(P.EmptyCanvas, match="too small"):
        P.to_mnist(dot)
    yy, xx = np.mgrid[:280, :280] + 0.5
    r = np.hypot(yy - 140, xx - 140)
    with pytest.raises(P.EmptyCanvas, match="dot"):
        P.to_mnist((r < 12).astype(np.float32))      # a tap of a 24-px pen
    check_output(P.to_mnist(((r > 8) & (r < 20)).astype(np.float32)))  # a small thick "0" is still read
    faint = canvas(value=0.0)
    faint[100:200, 100:110] = 0.1
    with pytest.raises(P.EmptyCanvas):
        P.to_mnist(faint)


def test_huge_strokes_and_odd_sizes_still_give_a_valid_digit():
    c = canvas()
    c[20:260, 90:200] = 1                            # a stroke as wide as a third of the canvas
    check_output(P.to_mnist(c))
    check_output(P.to_mnist(c, thickness=True))
    check_output(P.to_mnist(rect(3, 5, 40, 9, size=50)[:, :47]))  # not square, tiny
    check_output(P.naive(np.zeros((17, 300))))


def test_bad_arrays_are_clear_errors():
    with pytest.raises(ValueError, match="shape"):
        P.to_mnist(np.zeros((10, 10, 2)))
    with pytest.raises(ValueError, match="shape"):
        P.to_mnist(np.zeros((0, 10)))
    bad = rect(50, 50, 100, 30)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        P.to_mnist(bad)


def test_thickness_normalisation_thins_a_fat_pen_and_thickens_a_thin_one():
    def digit_one(width):
        return rect(40, 140 - width // 2, 200, width)
    fat, thin = P.to_mnist(digit_one(40), thickness=True), P.to_mnist(digit_one(4), thickness=True)
    plain_fat, plain_thin = P.to_mnist(digit_one(40)), P.to_mnist(digit_one(4))
    assert P.stroke_width(fat) < P.stroke_width(plain_fat)
    assert P.stroke_width(thin) > P.stroke_width(plain_thin)
    assert abs(fat.sum() - thin.sum()) < abs(plain_fat.sum() - plain_thin.sum())


def test_diagnose_flags_what_mnist_never_contains():
    reference = {k: np.sort(np.random.default_rng(0).normal(m, s, 10000)) for k, (m, s) in
                 {"ink": (100, 30), "centre_offset": (0.3, 0.1), "area_ratio": (0.3, 0.05), "aspect": (0.8, 0.2)}.items()}
    small = P.naive(rect(10, 10, 40, 25))            # a small digit in a corner, resized whole
    report = P.diagnose(small, reference)
    assert report["centre_offset"]["value"] > 8 and report["centre_offset"]["percentile"] == 100
    assert report["area_ratio"]["value"] < 0.05
    assert any("off centre" in w for w in report["warnings"])
    assert any("too small in the frame" in w for w in report["warnings"])
    fine = P.diagnose(P.to_mnist(rect(40, 40, 150, 110)), reference)
    assert not any(w.startswith("centre_offset") for w in fine["warnings"])
    assert 0 <= fine["ink"]["percentile"] <= 100


@pytest.mark.slow
def test_mnist_digits_pass_through_unharmed():
    from npnet.data import load_mnist

    X_test = load_mnist()[2][:300]
    redone = np.stack([P.to_mnist(x) for x in X_test])
    assert np.abs(redone - X_test / 255).mean() < 0.04
    warnings = [P.diagnose(x)["warnings"] for x in X_test[:50]]
    assert sum(map(bool, warnings)) <= 2
