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
    _, history = _fit(lambda info: info["event"] == "epoch" and info["epoch"] == 2)   # after the last epoch
    assert history["stopped"] is False and len(history["epoch_loss"]) == 3


# The live view (npnet.trainview): its numbers come from plain functions; the widgets only show them.

from xml.etree import ElementTree  # noqa: E402

from npnet import trainview as T  # noqa: E402


def _digits_problem():
    """256 'images' of 784 pixels whose label is the brightest of 10 pixel blocks: learnable in a few steps."""
    rng = np.random.default_rng(2)
    X = rng.random((256, 784)).astype(np.float32)
    return X, X[:, :700].reshape(256, 10, 70).mean(2).argmax(1)


def _view_fit(callback=None, num_epochs=2):
    """A 784-16-10 MLP with dropout, batches of 64 (4 steps per epoch), dev = the last 56 rows."""
    X, y = _digits_problem()
    rng = np.random.default_rng(9)
    model = [Dense(784, 16, rng), ReLU(), Dropout(0.2, rng), Dense(16, 10, rng)]
    history = fit(model, Adam(model, lr=1e-2), X[:200], y[:200], X[200:], y[200:], num_epochs=num_epochs,
                  batch_size=64, rng=rng, progress=False, callback=callback)
    return model, history


def _view(**kwargs):
    X, y = _digits_problem()
    return T.TrainView(X[:200], y[:200], X[200:], y[200:], subset=50, units=range(4), **kwargs)


def test_the_view_does_not_change_what_fit_returns_bitwise():
    plain_model, plain = _view_fit()
    view = _view(interval=0, budget=np.inf)                           # an update after every step: the most it does
    model, history = _view_fit(view)
    assert len(view.points) == 2 * 4
    assert _same(_weights(model), _weights(plain_model))
    assert {k: v for k, v in history.items() if k not in TIMES} == {k: v for k, v in plain.items() if k not in TIMES}
    assert view.button.description == "done" and view.button.disabled and "<b>done</b>" in view.status.value


def test_the_stop_button_ends_training_after_the_current_batch_and_keeps_model_and_history():
    at = {}

    def watch(info):                                                  # an unstopped run, seen after epoch 1, step 1
        if (info["event"], info["epoch"], info["step"]) == ("step", 1, 1):
            at["weights"], at["step_loss"] = _weights(info["model"]), list(info["history"]["step_loss"])

    _view_fit(watch, num_epochs=3)
    view, calls = _view(interval=10.0), []

    def press_during_epoch_1_step_1(info):                            # the learner clicks while that batch runs
        calls.append((info["event"], info["epoch"], info["step"]))
        if calls[-1] == ("step", 1, 1):
            view.button.click()                                       # through the button's own handler
            assert view.stop_requested and view.button.disabled and view.button.description == "stopping…"
        return view(info)

    model, history = _view_fit(press_during_epoch_1_step_1, num_epochs=3)
    assert calls[-1] == ("step", 1, 1)                                # fit called nothing after the stop
    assert _same(_weights(model), at["weights"]) and history["step_loss"] == at["step_loss"]
    assert history["stopped"] is True and len(history["step_loss"]) == 4 + 2
    assert len(history["epoch_loss"]) == len(history["dev_acc"]) == len(history["train_acc"]) == 1
    assert [p["epoch"] for p in view.points] == [0.25, 1.5]            # the first step, then the stop, drawn at once
    assert view.button.description == "stopped" and "<b>stopped</b> after epoch 2 of 3, step 2 of 4" in view.status.value
    assert "the history has 1 whole epochs" in view.status.value


class FakeClock:
    """A clock the test moves: each fit step takes `step` seconds, each update `update` seconds."""

    def __init__(self, step, update=0.0):
        self.t, self.step, self.update = 0.0, step, update

    def __call__(self):
        return self.t


def _throttled_run(step, update, num_epochs=6, **kwargs):
    clock = FakeClock(step, update)
    view = _view(clock=clock, **kwargs)
    record = view.record

    def costly_record(info):                                          # an update that takes `update` seconds
        record(info)
        clock.t += clock.update

    view.record = costly_record

    def timed(info):
        if info["event"] == "step":
            clock.t += clock.step
        return view(info)

    _view_fit(timed, num_epochs=num_epochs)
    return view


def test_updates_are_throttled_by_wall_time_and_the_end_is_always_drawn():
    view = _throttled_run(step=0.1, update=0.0, interval=0.25)        # 24 steps, 0.1 s apart
    steps = [round(p["epoch"] * 4) for p in view.points]
    assert steps == [1, 4, 7, 10, 13, 16, 19, 22, 24]                 # every 0.3 s (the first step at or past 0.25 s)
    assert view.button.description == "done"                          # ... and the last step, at the end


def test_a_costly_update_waits_so_the_view_takes_at_most_its_budget():
    view = _throttled_run(step=0.125, update=0.125, interval=0.25, budget=1 / 16, num_epochs=12)   # 48 steps
    steps = [round(p["epoch"] * 4) for p in view.points]
    # an update costs 0.125 s, so the next starts 0.125 / (1/16) = 2 s after it began: 15 steps of 0.125 s later
    assert steps == [1, 16, 31, 46, 48]                               # ... and the last step is always drawn
    assert view.seconds == 5 * 0.125                                  # the view's own time, as it counts it


def test_scores_are_the_mean_cross_entropy_and_accuracy_in_eval_mode():
    rng = np.random.default_rng(0)
    model = [Dense(4, 3, rng), Dropout(0.5, rng)]
    X, y = rng.standard_normal((6, 4)).astype(np.float32), np.array([0, 1, 2, 0, 1, 2])
    logits = X @ model[0].params["W"] + model[0].params["b"]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    loss, acc = T.scores(model, X, y)
    assert loss == pytest.approx(-np.log(probs[np.arange(6), y]).mean(), rel=1e-5)
    assert acc == np.mean(probs.argmax(1) == y)
    assert model[1].training                                           # dropout was off to score, and is on again


def test_weight_tiles_are_the_first_dense_layers_columns_scaled_to_one():
    rng = np.random.default_rng(0)
    model = [Dense(784, 5, rng), ReLU(), Dense(5, 10, rng)]
    tiles = T.weight_tiles(model, [3, 1])
    W = model[0].params["W"]
    assert tiles.shape == (2, 28, 28)
    assert np.allclose(tiles[0], W[:, 3].reshape(28, 28) / np.abs(W[:, 3]).max())
    assert np.allclose(tiles[1], W[:, 1].reshape(28, 28) / np.abs(W[:, 1]).max())
    assert T.weight_tiles([Dense(20, 5, rng)], [0]) is None           # not an image's pixels: nothing to show


def test_tiles_rgb_is_white_at_zero_red_when_positive_blue_when_negative():
    tiles = np.zeros((2, 28, 28))
    tiles[0, 0, 0], tiles[1, 0, 0] = 1.0, -1.0
    rgb = T.tiles_rgb(tiles, scale=2, gap=3)
    assert rgb.shape == (56, 2 * 56 + 3, 3) and rgb.dtype == np.uint8
    assert rgb[10, 10].tolist() == [255, 255, 255]                    # 0: white
    assert rgb[0, 0].tolist() == rgb[1, 1].tolist() == [255, 0, 0]    # +1: red, magnified 2x
    assert rgb[0, 59].tolist() == [0, 0, 255]                         # -1: blue, after the 3-pixel gap
    assert rgb[0, 57].tolist() == [255, 255, 255]


def test_svg_chart_draws_each_line_through_its_points_and_clips_below_y_min():
    svg = T.svg_chart([("a", [0, 1, 2], [0.5, 0.9, 0.95], "red"), ("b", [1, 2], [0.8, 0.85], "blue")],
                      dots=[("d", [1, 2], [0.9, 0.92], "red")], title="accuracy", x_max=2, y_min=0.8)
    root = ElementTree.fromstring(svg)                                # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    lines = root.findall(f"{ns}polyline")
    assert [len(line.get("points").split()) for line in lines] == [3, 2] and len(root.findall(f"{ns}circle")) == 2
    xs = [float(p.split(",")[0]) for p in lines[0].get("points").split()]
    assert xs[0] == 44 and xs[2] == 330 - 8                           # x from 0 to x_max spans the plot box
    labels = [t.text for t in root.findall(f"{ns}text")]
    assert "0.793" in labels and "0.957" in labels                    # y fitted to 0.8..0.95 (+ 5%), 0.5 left out
    log = ElementTree.fromstring(T.svg_chart([("l", [0, 1], [1.0, 0.01], "red")], title="loss", log=True))
    assert "1.26" in [t.text for t in log.findall(f"{ns}text")]       # a log scale: 10 ** (0 + 0.05 * 2)


def test_the_final_figure_shows_the_curves_and_the_weights():
    import matplotlib
    matplotlib.use("Agg")
    view = _view(interval=0, budget=np.inf)
    model, history = _view_fit(view)
    fig = view.figure(model, history)
    assert len(fig.axes) == 2 + 4 and "8 steps" in fig._suptitle.get_text()
    assert len(fig.axes[1].lines) == 3 and list(fig.axes[1].lines[2].get_ydata()) == history["dev_acc"]
