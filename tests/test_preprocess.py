"""MNIST-style preprocessing on shapes whose answer is known: box, aspect, centre of mass, polarity, bad canvases."""

import numpy as np
import pytest

from npnet import preprocess as P

MNIST_CENTRE = 14.5    # MNIST's mean centre of mass, pixel-edge coordinates: the middle of its 28x28 frame
MNIST_STROKE = 1.9     # about MNIST's median stroke width, in 28x28 pixels


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
    assert np.allclose(P.centre_of_mass(x28), (MNIST_CENTRE, MNIST_CENTRE), atol=0.02)
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
    assert np.allclose(P.centre_of_mass(by_mass), (MNIST_CENTRE, MNIST_CENTRE), atol=0.02)
    top, bottom, left, right = box_of(by_box, 0.5)
    assert (top + bottom) / 2 == pytest.approx(14, abs=0.5) and (left + right) / 2 == pytest.approx(14, abs=0.5)
    assert P.centre_of_mass(by_box)[0] < MNIST_CENTRE - 1  # the bar pulls its mass up in a box-centred frame


def test_centre_of_mass_uses_pixel_edge_coordinates():
    x = np.zeros((28, 28), np.float32)
    x[3, 7] = 1                                      # pixel (3, 7) spans [3, 4) x [7, 8)
    assert P.centre_of_mass(x) == (3.5, 7.5)
    x[3:25, 7:21] = 1                                # rows 3..24, columns 7..20: the middle of the frame
    assert P.centre_of_mass(x) == pytest.approx((14, 14))
    f = P.features(np.pad(np.ones((1, 4, 4)), ((0, 0), (12, 12), (12, 12))))  # a square centred at 14, 14
    assert f["centre_offset"][0] == pytest.approx(np.hypot(0.5, 0.5))         # 0.5 px from MNIST's 14.5, 14.5


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


@pytest.mark.parametrize("height, width", [(100, 2), (100, 4), (100, 8), (200, 8), (200, 16)])
def test_thickness_normalisation_gives_mnist_stroke_width(height, width):
    # a "1": a bar height pixels tall and width wide, fitted to 20 pixels tall, so its stroke width is its ink / 20.
    # One morphology step more or less moves it by 2 canvas pixels, 0.2-0.4 output pixels at these sizes.
    x28 = P.to_mnist(rect(40, 140 - width // 2, height, width), thickness=True)
    assert x28.sum() / 20 == pytest.approx(MNIST_STROKE, abs=0.15)


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


def test_diagnose_percentile_is_the_share_of_mnist_at_or_below():
    reference = {"ink": np.arange(10000) * 0.05, "centre_offset": np.linspace(0, 1, 10000),
                 "area_ratio": np.arange(784) / 784, "aspect": np.linspace(0, 2, 10000)}
    x28 = P.to_mnist(rect(40, 40, 150, 110))
    report = P.diagnose(x28, reference)
    # 150 x 110 fitted to 20 pixels tall keeps its ink: 150 * 110 * (20 / 150)^2 = 293.33, and 5867 of the
    # reference values 0, 0.05, ..., 293.30 are at or below it
    assert report["ink"]["value"] == pytest.approx(150 * 110 * (20 / 150) ** 2, rel=1e-4)
    assert report["ink"]["percentile"] == pytest.approx(58.67)
    assert report["ink"]["low"] == pytest.approx(0.45) and report["ink"]["high"] == pytest.approx(499.45)  # 0.1% in
    top, bottom, left, right = box_of(x28)
    k = (bottom - top) * (right - left)               # the box's area in pixels: the reference holds k / 784 itself
    assert report["area_ratio"]["percentile"] == pytest.approx(100 * (k + 1) / 784)  # 0 .. k / 784: a tie counts


def l_shape():
    c = rect(60, 80, 140, 30)
    c[60:90, 80:180] = 1
    return c


def test_rgba_the_colour_carries_the_digit_when_the_opaque_pixels_differ():
    c = l_shape()
    opaque = np.dstack([1 - c] * 3 + [np.ones_like(c)])              # black on white, every pixel opaque
    margin = opaque.copy()
    margin[:2], margin[-2:], margin[:, :2], margin[:, -2:] = 0, 0, 0, 0  # a 2-px transparent, black margin
    assert np.allclose(P.to_mnist(margin), P.to_mnist(c), atol=1e-4)
    white_on_black = np.dstack([c] * 3 + [np.ones_like(c)])
    white_on_black[:5, :, 3] = 0                                      # transparent strip along the top
    assert np.allclose(P.to_mnist(white_on_black), P.to_mnist(c), atol=1e-4)
    for colour in (0.0, 1.0, 0.6):                                    # one-colour strokes on a transparent canvas
        strokes = np.dstack([np.full_like(c, colour)] * 3 + [c])
        assert np.allclose(P.to_mnist(strokes), P.to_mnist(c), atol=1e-4), colour


SAME_IMAGE_IN_OTHER_DTYPES = [                                # c: values that are whole multiples of 1/255
    lambda c: np.round(255 * c).astype(np.int64),             # integers of any dtype in 0-255
    lambda c: np.round(255 * c).astype(np.uint16),
    lambda c: np.round(255 * c).astype(np.int32),
    lambda c: np.round(65535 * c).astype(np.uint16),          # 16-bit
    lambda c: np.round(255 * c).astype(np.float64),           # floats in 0-255
    lambda c: np.round(255 * c).astype(np.float32).tolist(),  # nested lists
    lambda c: np.dstack([np.round(255 * c).astype(np.int16)] * 3),
]


@pytest.mark.parametrize("make", SAME_IMAGE_IN_OTHER_DTYPES)
def test_every_number_dtype_is_put_on_the_0_1_scale(make):
    c = np.float32(51 / 255) + np.float32(153 / 255) * l_shape()  # ink 204 on grey paper 51: clipping would lose it
    assert np.allclose(P.to_mnist(make(c)), P.to_mnist(c), atol=1e-4)
    assert np.allclose(P.naive(make(c)), P.naive(c), atol=1e-4)
    assert np.allclose(P.to_mnist(l_shape().astype(bool)), P.to_mnist(l_shape()))


@pytest.mark.parametrize("make", SAME_IMAGE_IN_OTHER_DTYPES[:-1] + [lambda c: c.astype(bool)])
def test_diagnose_reads_every_number_dtype(make):
    x28 = rect(4, 9, 20, 10, size=28)
    assert P.diagnose(make(x28), REFERENCE) == P.diagnose(x28, REFERENCE)
    assert P.diagnose(x28, REFERENCE)["ink"]["value"] == 200


def test_unit_range_rule():
    assert P.unit_range(np.array([0, 255], np.int64)).tolist() == [0, 1]
    assert P.unit_range(np.array([0, 256], np.int64)) == pytest.approx([0, 256 / 65535])
    assert P.unit_range(np.array([0, 1], np.uint8)) == pytest.approx([0, 1 / 255])  # integers: never [0, 1]
    assert P.unit_range(np.array([0.0, 1.5])) == pytest.approx([0, 1.5])            # floats: overshoot is kept ...
    assert P.unit_range(np.array([0.0, 51.0])) == pytest.approx([0, 0.2])           # ... 0-255 above 2
    for bad, match in [(np.array([0, 70000]), "up to 70000"), (np.array([[1, 2]], object), "dtype object"),
                       (np.array(["a"]), "dtype <U1"), (np.array([1j]), "complex"), (np.array([np.inf]), "infinite")]:
        with pytest.raises(ValueError, match=match):
            P.unit_range(bad)


def test_object_arrays_are_refused_clearly():
    c = l_shape().astype(object)
    for f in (P.to_mnist, P.naive, P.mnist_style):
        with pytest.raises(ValueError, match="expected an array of numbers, got dtype object"):
            f(c)
    with pytest.raises(ValueError, match="dtype object"):
        P.diagnose(np.zeros((28, 28), object), REFERENCE)


def test_images_too_small_to_hold_a_digit_are_refused():
    for shape in [(2, 2), (3, 3), (7, 7), (7, 100), (100, 5, 3)]:
        tiny = np.ones(shape, np.float32)
        tiny[shape[0] // 2, shape[1] // 2] = 0                        # one dark pixel
        for f in (P.to_mnist, P.mnist_style, P.naive):
            with pytest.raises(ValueError, match=f"a {shape[0]}x{shape[1]} image is too small to hold a digit"):
                f(tiny)
    eight = np.zeros((8, 8), np.float32)
    eight[1:7, 3:5] = 1                                               # a "1" in 8x8 is still read
    check_output(P.to_mnist(eight))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"box": 0}, ValueError, "box must be a number of pixels from 1 to 28"),
    ({"box": -5}, ValueError, "not -5"),
    ({"box": 100}, ValueError, "not 100"),
    ({"box": float("nan")}, ValueError, "not nan"),
    ({"box": True}, ValueError, "not True"),
    ({"box": "20"}, ValueError, "not '20'"),
    ({"keep_aspect": "no"}, TypeError, "keep_aspect must be True or False"),
    ({"thickness": 1}, TypeError, "thickness must be True or False"),
    ({"centre": "middle"}, ValueError, "centre must be 'mass' or 'box'"),
    ({"centre": None}, ValueError, "centre must be 'mass' or 'box'"),
])
def test_to_mnist_refuses_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        P.to_mnist(l_shape(), **kwargs)


def test_box_from_1_to_28_fits_the_digit_in_that_many_pixels():
    for box in (1, 12, 28, 16.5):
        x28 = P.to_mnist(rect(40, 40, 200, 100), box=box)
        check_output(x28)
        assert x28.sum() == pytest.approx(box * box / 2, rel=1e-3)   # a 2:1 block, box pixels tall


REFERENCE = {k: np.sort(np.random.default_rng(0).normal(m, s, 1000)) for k, (m, s) in
             {"ink": (100, 30), "centre_offset": (0.3, 0.1), "area_ratio": (0.3, 0.05), "aspect": (0.8, 0.2)}.items()}


@pytest.mark.parametrize("shape", [(280, 280), (784,), (1, 28, 28), (28, 28, 3), (27, 28)])
def test_diagnose_refuses_what_is_not_one_28x28_digit(shape):
    with pytest.raises(ValueError, match=rf"diagnose takes one 28x28 digit, got shape \({shape[0]},"):
        P.diagnose(np.zeros(shape, np.float32), REFERENCE)


def test_diagnose_refuses_nan():
    x28 = P.to_mnist(l_shape())
    x28[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        P.diagnose(x28, REFERENCE)
    with pytest.raises(ValueError, match="NaN"):
        P.features(x28[None])

@pytest.mark.slow
def test_mnist_digits_pass_through_unharmed():
    from npnet.data import load_mnist

    X_test = load_mnist()[2][:300]
    redone = np.stack([P.to_mnist(x) for x in X_test])
    assert np.abs(redone - X_test / 255).mean() < 0.04
    warnings = [P.diagnose(x)["warnings"] for x in X_test[:50]]
    assert sum(map(bool, warnings)) <= 2
