"""TwoHalves (npnet/parallel.py): the whole batch's loss and gradients from two halves run at once, in float64."""

import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from npnet import model as M
from npnet.conv import Conv2D, Flatten, MaxPool2D, Reshape
from npnet.layers import BatchNorm, Dense, Dropout, ReLU
from npnet.losses import SoftmaxCrossEntropy
from npnet.optim import Adam
from npnet.parallel import TwoHalves
from npnet.train import fit


def small_cnn(dropout=0.0, dtype=np.float64):
    """A CNN like the recipe's, small and in float64: (N, 64) -> logits (N, 10)."""
    rng = np.random.default_rng(0)
    model = [Reshape((8, 8, 1)), Conv2D(1, 4, 3, rng=rng, dtype=dtype), MaxPool2D(2), ReLU(), Flatten(),
             Dense(36, 16, rng, dtype), ReLU()]
    model += [Dropout(dropout, np.random.default_rng(1))] if dropout else []
    return model + [Dense(16, 10, rng, dtype)]


def data(n, seed=2):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 64)), rng.integers(0, 10, n)


def serial(model, X, y):
    """The loss and every gradient of one ordinary step: loss, [grad arrays, copied]."""
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn.forward(M.forward(model, X), y)
    M.backward(model, loss_fn.backward(), input_grad=False)
    return loss, [g.copy() for layer in model for g in layer.grads.values()]


@pytest.mark.parametrize("n", [1, 2, 7, 32])  # one example (no split), even halves, and an odd batch (3 and 4)
def test_two_halves_give_the_whole_batchs_loss_and_gradients(n):
    X, y = data(n)
    want_loss, want = serial(small_cnn(), X, y)
    model = small_cnn()
    halves = TwoHalves(model)
    try:
        loss = halves.loss_and_grads(X, y)
    finally:
        halves.close()
    got = [g for layer in model for g in layer.grads.values()]
    assert loss == pytest.approx(want_loss, rel=1e-12)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-13)


def test_the_halves_share_the_weights_and_follow_the_mode():
    X, y = data(16)
    model = small_cnn(dropout=0.5)
    halves = TwoHalves(model)
    try:
        for twin, layer in zip(halves.replica, model):
            assert twin.params is layer.params
        model[1].params["W"] += 0.1               # an optimizer's in-place update reaches the replica too
        assert np.array_equal(halves.replica[1].params["W"], model[1].params["W"])
        M.set_training(model, False)              # eval mode: no dropout, so exactly the ordinary step
        loss = halves.loss_and_grads(X, y)
        assert not any(layer.training for layer in halves.replica)
    finally:
        halves.close()
    want_loss, _ = serial(model, X, y)
    assert loss == pytest.approx(want_loss, rel=1e-12)


def test_dropout_masks_differ_between_the_halves_and_repeat_from_the_same_seed():
    X, y = data(16)
    X = np.concatenate([X[:8], X[:8]])            # the same 8 examples in both halves
    runs = []
    for _ in range(2):
        model = small_cnn(dropout=0.5)
        untouched = model[7].rng.bit_generator.state
        halves = TwoHalves(model)
        assert model[7].rng.bit_generator.state == untouched       # the replica's stream takes nothing from it
        try:
            halves.loss_and_grads(X, y)
        finally:
            halves.close()
        drop, twin = model[7], halves.replica[7]
        assert not np.array_equal(drop.mask, twin.mask)   # not the same stream twice
        runs.append((drop.mask.copy(), twin.mask.copy()))
    assert all(np.array_equal(a, b) for a, b in zip(*runs))   # but the same masks from the same seeds


def test_batchnorm_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="BatchNorm.*half-batch"):
        TwoHalves([Dense(4, 3), BatchNorm(3), Dense(3, 2)])


def test_fit_with_data_parallel_trains_as_the_ordinary_fit_does(monkeypatch):
    """Without dropout, the same run up to float32 rounding, a short last batch included (250 = 7·32 + 26); every
    step goes through the two halves, and the replica's thread is gone afterwards."""
    X, y = data(250, seed=3)
    X = X.astype(np.float32)
    calls, split = [], TwoHalves.loss_and_grads
    monkeypatch.setattr(TwoHalves, "loss_and_grads", lambda self, X, y: calls.append(len(X)) or split(self, X, y))
    histories, threads = [], []
    for data_parallel in (False, True):
        model = small_cnn(dtype=np.float32)
        h = fit(model, Adam(model, lr=1e-2), X, y, num_epochs=2, batch_size=32, rng=np.random.default_rng(4),
                progress=False, data_parallel=data_parallel)
        histories.append(h)
        threads.append(threading.active_count())
    assert calls == ([32] * 7 + [26]) * 2                       # the ordinary fit made none of them
    assert threads[1] == threads[0]                             # the second half's thread has ended
    np.testing.assert_allclose(histories[1]["step_loss"], histories[0]["step_loss"], rtol=1e-4)
    assert histories[1]["step_loss"][-1] < histories[1]["step_loss"][0]


def test_fit_ends_the_second_thread_also_when_it_raises():
    X, y = data(64, seed=3)
    model, threads = small_cnn(), threading.active_count()

    def fail(info):
        raise RuntimeError("a callback failed")
    with pytest.raises(RuntimeError, match="a callback failed") as raised:
        fit(model, Adam(model), X, y, num_epochs=1, batch_size=16, progress=False, callback=fail, data_parallel=True)
    assert raised.value.__traceback__ is not None and threading.active_count() == threads   # traceback kept alive


def test_the_halves_run_at_once_on_two_threads_with_one_blas_thread_each(monkeypatch):
    events, run_half = [], TwoHalves._half

    def spy(self, i, X, y):
        blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        events.append(("start", i, threading.get_ident(), blas))
        time.sleep(0.05)                                        # long enough for the other half to start meanwhile
        events.append(("end", i))
        return run_half(self, i, X, y)
    monkeypatch.setattr(TwoHalves, "_half", spy)
    halves = TwoHalves(small_cnn())
    try:
        halves.loss_and_grads(*data(8))
    finally:
        halves.close()
    starts = [event for event in events if event[0] == "start"]
    assert {event[1] for event in starts} == {0, 1} and starts[0][2] != starts[1][2]   # two halves, two threads
    assert all(blas and set(blas) == {1} for *_, blas in starts)                         # one BLAS thread each
    assert [event[0] for event in events[:2]] == ["start", "start"]                      # both ran at once


def test_numpy_error_settings_hold_in_the_second_half_too():
    model = [Dense(2, 2, np.random.default_rng(0), np.float64)]
    X = np.array([[1.0, 1.0], [1e308, 1e308]])                  # only the second half overflows
    halves = TwoHalves(model)
    try:
        with np.errstate(all="raise"), pytest.raises(FloatingPointError):
            halves.loss_and_grads(X, np.array([0, 1]))
    finally:
        halves.close()


def test_an_error_in_either_half_reaches_the_caller_and_leaves_no_half_running(monkeypatch):
    model = small_cnn()
    halves = TwoHalves(model)
    try:
        with pytest.raises(ValueError, match="cannot reshape"):     # both halves fail: the first half's error
            halves.loss_and_grads(np.zeros((4, 63)), np.zeros(4, int))
        with pytest.raises(IndexError):                             # only the second half fails: its error
            halves.loss_and_grads(*data(4)[:1], np.array([0, 1, 2, 10]))
        X, y = data(6)
        loss = halves.loss_and_grads(X, y)                          # and the next step works
        ended, run_half = [], TwoHalves._half

        def first_fails_at_once(self, i, X, y):
            if i == 0:
                raise ValueError("the first half failed")
            time.sleep(0.1)
            ended.append(i)
            return run_half(self, i, X, y)
        monkeypatch.setattr(TwoHalves, "_half", first_fails_at_once)
        with pytest.raises(ValueError, match="the first half failed"):
            halves.loss_and_grads(X, y)
        assert ended == [1]                                         # the error waited for the second half to end
    finally:
        halves.close()
    assert loss == pytest.approx(serial(small_cnn(), X, y)[0], rel=1e-12)
