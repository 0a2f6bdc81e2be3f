"""Training: the mini-batches, the fit loop (every example once per epoch, dropout on while stepping), determinism, the lr schedule."""

import numpy as np
import pytest

from npnet import model as M
from npnet.layers import Dense, Dropout, Layer, ReLU
from npnet.optim import SGD, Adam
from npnet.train import batches, cosine_lr, fit


def test_batches_reshuffle_the_examples_themselves():
    X, y = np.arange(20, dtype=np.float32)[:, None], np.arange(20)
    rng = np.random.default_rng(0)
    first = [set(yb) for _, yb in batches(X, y, 5, rng)]
    second = [set(yb) for _, yb in batches(X, y, 5, rng)]
    assert sorted(len(b) for b in first) == [5, 5, 5, 5]
    assert set().union(*first) == set(range(20))
    assert first != second and not any(b in first for b in second)  # new groupings, not a new order
    Xb, yb = next(batches(X, y, 7, np.random.default_rng(3)))
    assert np.array_equal(Xb[:, 0], yb)  # rows stay with their labels


class Spy(Layer):
    """Passes its input on, recording for each call whether it ran in training mode and the ids (column 0) it saw."""

    def __init__(self):
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, x[:, 0].astype(int).tolist()))
        return x

    def backward(self, grad):
        return grad


def _spied_fit(num_epochs=2, eval_mode_first=False):
    """fit on 10 examples (ids 0..9) in batches of 4, scoring train and dev (ids 0..2) after each epoch."""
    rng = np.random.default_rng(0)
    X = np.column_stack([np.arange(10), rng.standard_normal((10, 2))]).astype(np.float32)
    y = rng.integers(0, 2, 10)
    spy = Spy()
    model = [spy, Dense(3, 8, rng), ReLU(), Dropout(0.5, rng), Dense(8, 2, rng)]
    if eval_mode_first:
        M.set_training(model, False)
    history = fit(model, SGD(model, lr=0.1), X, y, X[:3], y[:3], num_epochs=num_epochs, batch_size=4,
                  rng=rng, progress=False)
    return model, spy.calls, history


def test_fit_steps_over_every_example_once_per_epoch_including_a_last_partial_batch():
    _, calls, history = _spied_fit()
    assert len(calls) == 2 * (3 + 2)                         # per epoch: 3 steps, then scoring train and dev
    for epoch in (0, 1):
        steps = calls[5 * epoch: 5 * epoch + 3]
        assert [len(ids) for _, ids in steps] == [4, 4, 2]   # 10 = 4 + 4 + 2: the last batch is not dropped
        assert sorted(i for _, ids in steps for i in ids) == list(range(10))
    assert len(history["step_loss"]) == 6 and len(history["epoch_loss"]) == 2


@pytest.mark.parametrize("eval_mode_first", [False, True])
def test_fit_steps_with_dropout_on_in_every_epoch_and_scores_with_it_off(eval_mode_first):
    model, calls, _ = _spied_fit(num_epochs=3, eval_mode_first=eval_mode_first)
    modes = [training for training, _ in calls]
    assert modes == [True, True, True, False, False] * 3     # steps in training mode, scoring in eval mode
    assert calls[3][1] == list(range(10)) and calls[4][1] == [0, 1, 2]
    assert all(layer.training for layer in model)            # left in training mode, ready for more fitting


def test_cosine_lr_falls_from_lr_along_half_a_cosine():
    schedule = cosine_lr(0.1, 4)
    # 0.1 * (1 + cos(pi * epoch / 4)) / 2, by hand: cos(pi / 4) = 0.70710678...
    assert [schedule(epoch) for epoch in range(4)] == pytest.approx([0.1, 0.0853553390593, 0.05, 0.0146446609407],
                                                                     rel=1e-10)
    assert type(schedule(1)) is float


def _fit(seed, X, y):
    rng = np.random.default_rng(seed)
    model = M.mlp((784, 32, 10), rng)
    history = fit(model, Adam(model, lr=3e-3, weight_decay=5e-4), X, y, X[:100], y[:100],
                  num_epochs=2, batch_size=64, rng=rng, progress=False)
    return model, history


def test_same_seed_same_weights_and_training_learns():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 784)).astype(np.float32)
    y = (X[:, :10].argmax(1)).astype(np.int64)  # a learnable rule
    a, history = _fit(7, X, y)
    b, _ = _fit(7, X, y)
    c, _ = _fit(8, X, y)
    assert all(np.array_equal(la.params[k], lb.params[k]) for la, lb in zip(a, b) for k in la.params)
    assert not np.array_equal(a[0].params["W"], c[0].params["W"])
    assert len(history["step_loss"]) == 2 * 8 and len(history["dev_acc"]) == 2
    assert history["epoch_loss"][1] < history["epoch_loss"][0]
    assert history["train_acc"][-1] > 0.5  # chance is 0.1


class Recorder:
    """An optimizer stand-in that records the lr it holds at each step and changes nothing."""

    def __init__(self):
        self.lr, self.seen = None, []

    def step(self):
        self.seen.append(self.lr)


def test_each_epoch_loss_is_the_mean_of_its_step_losses():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((10, 3)).astype(np.float32), rng.integers(0, 2, 10)
    model = M.mlp((3, 4, 2), rng)
    history = fit(model, SGD(model, lr=0.5), X, y, num_epochs=2, batch_size=4, rng=rng, progress=False)
    steps = history["step_loss"]
    assert len(steps) == 6 and len(set(steps)) == 6          # the steps differ, so a mean and a last one differ
    assert history["epoch_loss"] == pytest.approx([np.mean(steps[:3]), np.mean(steps[3:])], rel=1e-12)


def test_fit_gives_epoch_k_the_rate_schedule_k_before_its_first_step():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((10, 3)).astype(np.float32), rng.integers(0, 2, 10)
    optimizer = Recorder()
    fit(M.mlp((3, 4, 2), rng), optimizer, X, y, num_epochs=3, batch_size=4, rng=rng, progress=False,
        lr_schedule=lambda epoch: 10.0 ** -epoch)
    assert optimizer.seen == [1.0] * 3 + [0.1] * 3 + [0.01] * 3   # 3 steps per epoch; epoch 0 gets schedule(0)
    optimizer = Recorder()
    optimizer.lr = 0.25
    fit(M.mlp((3, 4, 2), rng), optimizer, X, y, num_epochs=2, batch_size=4, rng=rng, progress=False)
    assert optimizer.seen == [0.25] * 6                          # no schedule: the optimizer's own lr, untouched
