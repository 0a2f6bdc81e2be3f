"""Augmentation: seeded, exact when it should do nothing, shifts by what it says, keeps shape, dtype and background."""

import numpy as np
import pytest

from npnet.augment import affine, random_affine

FILL = np.float32(-0.4245)  # the standardised background of MNIST, (0 - mean) / std


def digits(n=6, seed=0):
    """A few blob 'digits' on the standardised background, kept away from the border: (n, 784) float32."""
    rng = np.random.default_rng(seed)
    X = np.full((n, 28, 28), FILL, np.float32)
    X[:, 8:20, 9:19] += rng.random((n, 12, 10)).astype(np.float32) * 3
    return X.reshape(n, 784)


def centre_of_mass(X):
    """Intensity-weighted (row, col) centre above the background: (n, 784) -> (n, 2)."""
    w = (X - FILL).reshape(-1, 28, 28)
    rows, cols = np.mgrid[0:28, 0:28]
    total = w.sum(axis=(1, 2))
    return np.stack([(w * rows).sum(axis=(1, 2)) / total, (w * cols).sum(axis=(1, 2)) / total], axis=1)


def test_same_seed_same_batch_and_new_draws_differ():
    X = digits()
    a = random_affine(X, np.random.default_rng(3), fill=FILL)
    b = random_affine(X, np.random.default_rng(3), fill=FILL)
    c = random_affine(X, np.random.default_rng(4), fill=FILL)
    assert np.array_equal(a, b) and not np.allclose(a, c)
    assert not np.allclose(a, X)


def test_zero_ranges_are_the_identity():
    X = digits()
    out = random_affine(X, np.random.default_rng(0), max_shift=0, max_angle=0, max_scale=0, fill=FILL)
    assert np.array_equal(out, X)
    assert np.array_equal(affine(X.reshape(-1, 1, 28, 28), 0, 0, 1, fill=FILL), X.reshape(-1, 1, 28, 28))


@pytest.mark.parametrize("dx, dy", [(2, 0), (-2, 0), (0, 1), (0, -2), (1, -1)])
def test_a_whole_pixel_shift_moves_the_centre_of_mass_by_that_much(dx, dy):
    X = digits()
    out = affine(X, (dx, dy), 0, 1, fill=FILL)
    moved = centre_of_mass(out) - centre_of_mass(X)
    assert np.allclose(moved, [dy, dx], atol=1e-4), moved
    # and every pixel is exactly its neighbour's value: a shift, not a blur
    assert np.array_equal(out.reshape(-1, 28, 28)[:, 8 + dy:20 + dy, 9 + dx:19 + dx],
                          X.reshape(-1, 28, 28)[:, 8:20, 9:19])


def test_random_shifts_stay_within_the_range():
    X = digits(64)
    out = random_affine(X, np.random.default_rng(1), max_shift=2, max_angle=0, max_scale=0, fill=FILL)
    moved = centre_of_mass(out) - centre_of_mass(X)
    assert np.abs(moved).max() <= 2 + 1e-3 and np.abs(moved).max() > 1  # the range is used, not exceeded


def test_one_shift_for_all_equals_the_same_shift_per_image():
    X = digits(4)
    one = affine(X, (1.5, -0.5), 7.0, 1.05, fill=FILL)
    each = affine(X, np.tile([1.5, -0.5], (4, 1)), np.full(4, 7.0), np.full(4, 1.05), fill=FILL)
    assert np.array_equal(one, each)


def test_rotation_turns_anticlockwise_and_scaling_grows_about_the_centre():
    bar = np.full((1, 28, 28), FILL, np.float32)
    bar[0, 13:15, 4:24] = 2.0                         # a horizontal bar through the centre
    turned = affine(bar, 0, 90, 1, fill=FILL)[0]
    assert np.all(turned[4:24, 13:15] > 1.9) and np.all(turned[13:15, :4] == FILL)  # now vertical
    dot = np.full((1, 28, 28), FILL, np.float32)
    dot[0, 13:15, 20:22] = 2.0                        # 7 px right of the centre (13.5, 13.5)
    turned = affine(dot, 0, 90, 1, fill=FILL)[0]      # anticlockwise on screen: right of centre goes above it
    assert np.allclose(centre_of_mass(turned.reshape(1, -1)), [[6.5, 13.5]], atol=1e-4)
    small = np.full((1, 28, 28), FILL, np.float32)
    small[0, 12:16, 12:16] = 2.0
    grown = affine(small, 0, 0, 2.0, fill=FILL)[0]
    assert (grown > 0).sum() > 3 * (small[0] > 0).sum() and np.allclose(centre_of_mass(grown.reshape(1, -1)), 13.5)


def test_shape_dtype_and_background_are_preserved():
    X = digits(5)
    for shaped in (X, X.reshape(5, 1, 28, 28), X.reshape(5, 28, 28)):
        out = random_affine(shaped, np.random.default_rng(2), max_shift=3, max_angle=20, max_scale=0.2, fill=FILL)
        assert out.shape == shaped.shape and out.dtype == np.float32
        assert out.min() == FILL                      # corners stay exactly the background
        assert np.all(out.reshape(5, 28, 28)[:, :3, :] == FILL)  # nothing wraps round, nothing turns black
    X64 = X.astype(np.float64)
    assert random_affine(X64, np.random.default_rng(0), fill=FILL).dtype == np.float64


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="square images"):
        affine(np.zeros((2, 10), np.float32), 0, 0, 1, fill=0)
    with pytest.raises(ValueError, match="scale must be positive"):
        affine(digits(2), 0, 0, 0.0, fill=FILL)
    with pytest.raises(TypeError, match="fill"):      # no silent guess at the background
        random_affine(digits(2), np.random.default_rng(0))


# -- elastic distortions (Simard, Steinkraus & Platt 2003) -----------------------------------------------------
from npnet.augment import displace, gaussian_blur, random_elastic  # noqa: E402


def test_a_zero_displacement_field_is_the_identity():
    X = digits()
    zero = np.zeros((len(X), 28, 28))
    assert np.array_equal(displace(X, zero, zero, fill=FILL), X)


def test_a_constant_field_shifts_by_that_many_pixels():
    X = digits()
    dx, dy = np.full((len(X), 28, 28), 2.0), np.full((len(X), 28, 28), -1.0)   # 2 px right, 1 px up
    moved = centre_of_mass(displace(X, dx, dy, fill=FILL)) - centre_of_mass(X)
    assert np.allclose(moved, [-1.0, 2.0], atol=1e-4), moved                   # (row, col)


def test_elastic_is_seeded_keeps_shape_dtype_background_and_roughly_the_ink():
    X = digits(32)
    a = random_elastic(X, np.random.default_rng(5), fill=FILL)
    assert a.shape == X.shape and a.dtype == X.dtype
    assert np.array_equal(a, random_elastic(X, np.random.default_rng(5), fill=FILL))
    assert not np.array_equal(a, random_elastic(X, np.random.default_rng(6), fill=FILL))
    assert not np.allclose(a, X, atol=0.1)                                     # it does move the ink
    corner = a.reshape(-1, 28, 28)[:, :3, :3]                                  # the blobs never come near here
    assert np.all(corner == FILL)
    ratio = (a - FILL).sum(axis=1) / (X - FILL).sum(axis=1)
    assert abs(np.median(ratio) - 1) < 0.05 and ratio.min() > 0.5 and ratio.max() < 2, ratio  # locally it stretches or squeezes


def test_gaussian_blur_keeps_the_sum_of_an_interior_point_and_its_width():
    field = np.zeros((1, 41, 41))
    field[0, 20, 20] = 1.0
    out = gaussian_blur(field, 2.0)
    assert abs(out.sum() - 1) < 1e-12 and out.shape == field.shape
    var = (out[0].sum(axis=0) * (np.arange(41) - 20) ** 2).sum()              # variance along x
    assert abs(var - 4.0) < 0.05, var                                           # sigma^2, up to truncation at 3 sigma


def test_gaussian_blur_as_two_matmuls_equals_the_sum_it_defines():
    rng = np.random.default_rng(11)
    field = rng.uniform(-1, 1, (2, 9, 7))
    sigma, r = 1.5, 5                                                           # r = ceil(3 sigma)
    g = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    want = np.zeros_like(field)
    for b in range(2):
        for i in range(9):
            for j in range(7):
                for di in range(-r, r + 1):
                    for dj in range(-r, r + 1):
                        if 0 <= i + di < 9 and 0 <= j + dj < 7:                # zero outside the map
                            want[b, i, j] += g[di + r] * g[dj + r] * field[b, i + di, j + dj]
    assert np.allclose(gaussian_blur(field, sigma), want, atol=1e-12)
    assert gaussian_blur(field.astype(np.float32), sigma).dtype == np.float32


def test_the_elastic_recipes_augment_with_simards_distortions():
    from npnet import recipes

    stats = (np.float32(0.13), np.float32(0.31))
    for cfg, sigma in ((recipes.MLP_ELASTIC, 4.0), (recipes.CNN_ELASTIC, 6.0)):   # the CNN's field is smoother
        augment = recipes.augmenter(cfg, stats)
        X = digits(4)
        fill = np.float32(-stats[0] / stats[1])
        assert np.array_equal(augment(X, np.random.default_rng(3)),
                              random_elastic(X, np.random.default_rng(3), alpha=34.0, sigma=sigma, fill=fill))
    assert recipes.augmenter(recipes.MLP, stats) is None


def test_a_recipe_can_ask_for_both_the_affine_and_the_elastic_distortions():
    from npnet import recipes
    from npnet.augment import random_affine

    stats = (np.float32(0.13), np.float32(0.31))
    fill = np.float32(-stats[0] / stats[1])
    cfg = {"augment": {**recipes.CNN["augment"], "elastic": recipes.ELASTIC}}
    X = digits(4)
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    want = random_elastic(random_affine(X, rng_b, fill=fill, **recipes.CNN["augment"]), rng_b, fill=fill, **recipes.ELASTIC)
    assert np.array_equal(recipes.augmenter(cfg, stats)(X, rng_a), want)
