"""fit's callback hook and the live training view: the callback changes nothing, Stop ends after the current batch."""

import numpy as np
import pytest

from npnet import model as M
from npnet.layers import Dense, Dropout, ReLU
from npnet.optim import Adam
from npnet.train import fit

TIMES = ("train_time", "eval_time")


def _problem():
    """A small learnable problem: 300 examples of 20 features, the label is the argmax of the first 5."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 20)).astype(np.float32)
    return X, X[:, :5].argmax(1)


def _fit(callback=None, num_epochs=3, seed=5):
    """Train a small MLP with dropout (so that fit's rng drives masks too) in batches of 64: 5 steps per epoch."""
    X, y = _problem()
    rng = np.random.default_rng(seed)
    model = [Dense(20, 32, rng), ReLU(), Dropout(0.3, rng), Dense(32, 5, rng)]
    history = fit(model, Adam(model, lr=1e-2), X, y, X[:50], y[:50], num_epochs=num_epochs, batch_size=64,
                  rng=rng, progress=False, callback=callback)
    return model, history


def _weights(model):
    return [p.copy() for layer in model for p in layer.params.values()]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


def test_a_callback_that_looks_at_the_model_changes_nothing_bitwise():
    X, y = _problem()
    seen = []

    def look(info):                                   # what a live view does: evaluate the model mid-training
        seen.append((info["event"], info["epoch"], info["step"]))
        M.predict_proba(info["model"], X[100:200])
        return False

    plain_model, plain = _fit()
    model, history = _fit(look)
    assert _same(_weights(model), _weights(plain_model))
    assert {k: v for k, v in history.items() if k not in TIMES} == {k: v for k, v in plain.items() if k not in TIMES}
    assert history["stopped"] is False and len(history["epoch_loss"]) == 3
    assert seen == [item for e in range(3) for item in [("step", e, s) for s in range(5)] + [("epoch", e, 4)]]
    assert all(layer.training for layer in model)     # left in training mode, as without a callback


def test_the_callback_sees_the_history_as_it_fills():
    lengths = []

    def record(info):
        h = info["history"]
        lengths.append((info["event"], len(h["step_loss"]), len(h["epoch_loss"]), len(h["dev_acc"])))
        assert h["step_loss"][-1] == info["loss"] and info["steps_per_epoch"] == 5 and info["num_epochs"] == 2

    _fit(record, num_epochs=2)
    assert lengths[:6] == [("step", 1, 0, 0), ("step", 2, 0, 0), ("step", 3, 0, 0), ("step", 4, 0, 0),
                           ("step", 5, 0, 0), ("epoch", 5, 1, 1)]
    assert lengths[-1] == ("epoch", 10, 2, 2)


def test_stopping_mid_epoch_ends_after_that_batch_and_keeps_the_model_and_whole_epochs():
    at_step = {}

    def watch(info):                                  # an unstopped run: the weights right after epoch 1, step 2
        if (info["event"], info["epoch"], info["step"]) == ("step", 1, 2):
            at_step["weights"], at_step["loss"] = _weights(info["model"]), list(info["history"]["step_loss"])

    _fit(watch)
    calls = []

    def stop(info):
        calls.append((info["event"], info["epoch"], info["step"]))
        return (info["event"], info["epoch"], info["step"]) == ("step", 1, 2)

    model, history = _fit(stop)
    assert calls[-1] == ("step", 1, 2)                               # no step or epoch after the stop
    assert _same(_weights(model), at_step["weights"])               # the model has every step taken, no more
    assert history["stopped"] is True
    assert history["step_loss"] == at_step["loss"] and len(history["step_loss"]) == 5 + 3
    for key in ("epoch_loss", "train_acc", "dev_acc", "train_time", "eval_time"):
        assert len(history[key]) == 1, key                           # only the whole epoch 0
    assert all(layer.training for layer in model)


def test_stopping_at_an_epoch_end_keeps_that_whole_epoch():
    model, history = _fit(lambda info: info["event"] == "epoch" and info["epoch"] == 1)
    assert history["stopped"] is True and len(history["step_loss"]) == 10
    assert len(history["epoch_loss"]) == len(history["dev_acc"]) == len(history["train_acc"]) == 2
    full_model, full = _fit(num_epochs=2)
    assert _same(_weights(model), _weights(full_model)) and history["dev_acc"] == full["dev_acc"]
