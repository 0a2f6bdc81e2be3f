"""The real digits from scikit-learn: loaded offline, in the right shapes and ranges, through the course's pipelines."""

import socket

import numpy as np
import pytest

from npnet import handwriting as H
from npnet import preprocess as P


@pytest.fixture(scope="module")
def counts():
    return H.load_counts()


def test_load_counts_is_offline_and_has_the_documented_shape(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("load_counts tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    X8, y = H.load_counts()
    assert X8.shape == (1797, 8, 8) and X8.dtype == np.float32 and y.shape == (1797,) and y.dtype == np.int64
    assert X8.min() == 0 and X8.max() == 16 and np.array_equal(X8, np.round(X8))          # whole counts 0-16
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # about 180 of each
    assert (X8[:, 0].max(1) > 0).all() and (X8[:, 7].max(1) > 0).all()                   # each fills its height


def test_to_canvas_keeps_the_densities_and_is_smooth(counts):
    X8, _ = counts
    C = H.to_canvas(X8[:50])
    assert C.shape == (50, 32, 32) and C.dtype == np.float32 and 0 <= C.min() and C.max() <= 1
    # a constant image stays constant, and each digit's total ink is kept: 16 canvas pixels per block
    assert np.allclose(H.to_canvas(np.full((1, 8, 8), 8.0)), 0.5)
    assert np.allclose(C.sum(axis=(1, 2)), X8[:50].sum(axis=(1, 2)), rtol=1e-5)
    # linear between centres: no step between neighbouring canvas pixels larger than a block's step / 4 + rounding
    step = np.abs(np.diff(C, axis=2)).max()
    assert step <= np.abs(np.diff(X8[:50] / 16, axis=2)).max() / 4 + 1e-6
    with pytest.raises(ValueError, match="8x8"):
        H.to_canvas(np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="0 to 16"):
        H.to_canvas(np.full((1, 8, 8), 17.0))


def test_each_pipeline_gives_what_preprocess_gives_on_the_same_canvas(counts):
    X8, _ = counts
    C = H.to_canvas(X8[:20])
    for name, f in (("naive", P.naive), ("original app", P.original_app), ("MNIST-style", P.mnist_style)):
        X = H.to_inputs(C, name)
        assert X.shape == (20, 28, 28) and X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
        assert np.array_equal(X, np.stack([f(c) for c in C])), name
    com = np.array([P.centre_of_mass(x) for x in H.to_inputs(C, "MNIST-style")])
    assert np.abs(com - P.CENTRE).max() < 0.05                                           # MNIST's centre


def test_original_app_centres_the_box_at_14_and_fits_20_pixels():
    img = np.zeros((100, 100), np.float32)
    img[10:70, 40:55] = 1                                           # a 60 x 15 bar
    x = P.original_app(img)
    rows, cols = np.flatnonzero(x.max(1) > 0.5), np.flatnonzero(x.max(0) > 0.5)
    assert (rows[0], rows[-1] + 1) == (4, 24)                       # 20 rows, the box from 4 to 24: centred at 14
    assert abs((cols[0] + cols[-1] + 1) / 2 - 14) <= 0.5 and x.sum() == pytest.approx(20 * 5, rel=0.02)
    with pytest.raises(P.EmptyCanvas):
        P.original_app(np.zeros((50, 50)))


def test_to_counts_reduces_as_optdigits_did():
    x = np.zeros((1, 28, 28), np.float32)
    x[0, 4:24, 12:16] = 1                                           # a bar 20 high, 4 wide
    c = H.to_counts(x)
    assert c.shape == (1, 8, 8) and c.dtype == np.float32
    assert c.sum() == pytest.approx(32 * 6.4, abs=32)               # it fills the 32 rows, 6.4 scan pixels wide
    assert (c[0].sum(1) > 0).all() and c[0, :, [0, 7]].sum() == 0   # every row, centred columns
    assert c.max() <= 16
