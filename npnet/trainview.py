"""A live view of training for JupyterLab: loss and accuracy curves, first-layer weights and a Stop button, as a fit
callback; and per-layer histograms of activations and gradients, recorded at chosen epochs by another callback."""

import copy
import io
import time

import ipywidgets as W
import numpy as np
from PIL import Image

from . import model as M
from .layers import Dense
from .losses import SoftmaxCrossEntropy

TRAIN, DEV = "#1f77b4", "#ff7f0e"   # matplotlib's C0 and C1, in the live view and the final figure alike


def scores(model, X, y):
    """Mean cross-entropy and accuracy in eval mode, each layer's mode restored: (N, ...), (N,) -> (loss, acc)."""
    probs = M.predict_proba(model, X)                                     # (N, C)
    loss = -np.log(np.maximum(probs[np.arange(len(y)), y], 1e-12)).mean()
    return float(loss), float(np.mean(probs.argmax(axis=1) == y))


def weight_tiles(model, units):
    """The first layer's input weights of the given units, each divided by its largest |w|: -> (len(units), 28, 28)
    in [-1, 1]; None if the first layer with weights is not a Dense layer over 784 pixels (a CNN, say)."""
    first = next(layer for layer in model if layer.params)
    if not isinstance(first, Dense) or first.params["W"].shape[0] != 784:
        return None
    Wu = first.params["W"][:, units].T                                  # (k, 784)
    return (Wu / np.maximum(np.abs(Wu).max(axis=1, keepdims=True), 1e-12)).reshape(-1, 28, 28)


def tiles_rgb(tiles, scale=3, gap=2):
    """Tiles in [-1, 1] side by side, red for positive and blue for negative weights, white for 0:
    (k, 28, 28) -> (28 * scale, k * (28 * scale + gap) - gap, 3) uint8."""
    t = np.clip(tiles, -1, 1).repeat(scale, axis=1).repeat(scale, axis=2)  # (k, 28s, 28s)
    rgb = np.stack([1 - np.maximum(-t, 0), 1 - np.abs(t), 1 - np.maximum(t, 0)], axis=-1)
    rgb = np.concatenate([np.pad(tile, ((0, 0), (0, gap), (0, 0)), constant_values=1) for tile in rgb], axis=1)
    return (255 * rgb[:, :-gap]).astype(np.uint8)


def svg_chart(lines, dots=(), title="", log=False, x_max=1.0, y_min=None, width=330, height=210):
    """A small line chart as SVG text. lines and dots: [(label, xs, ys, colour)]; x from 0 to x_max (epochs);
    y fitted to the data (from y_min, if given: lower points are clipped), on a log scale if log."""
    f = np.log10 if log else np.asarray
    ys = np.concatenate([f(np.asarray(y, float)) for _, _, y, _ in [*lines, *dots]] + [[np.nan]])
    ys = ys[ys >= f(y_min)] if y_min is not None else ys
    lo, hi = (np.nanmin(ys), np.nanmax(ys)) if np.isfinite(ys).any() else (0.0, 1.0)
    lo, hi = (lo - 0.05 * (hi - lo or 1), hi + 0.05 * (hi - lo or 1))
    left, right, top, bottom = 44, 8, 22, 24
    sx = lambda x: left + (width - left - right) * np.asarray(x, float) / x_max
    sy = lambda y: top + (height - top - bottom) * (hi - f(np.asarray(y, float))) / (hi - lo)
    clip = f"clip-{title.split(' ')[0]}"                                   # one id per chart on the page
    tick = (lambda v: f"{10 ** v:.3g}") if log else (lambda v: f"{v:.3g}")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="11" '
           f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="14" font-weight="bold">{title}</text>',
           f'<clipPath id="{clip}"><rect x="{left}" y="{top}" width="{width - left - right}" '
           f'height="{height - top - bottom}"/></clipPath>',
           f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
           f'fill="none" stroke="#999"/>',
           f'<text x="{left - 3}" y="{top + 9}" text-anchor="end">{tick(hi)}</text>',
           f'<text x="{left - 3}" y="{height - bottom}" text-anchor="end">{tick(lo)}</text>',
           f'<text x="{left}" y="{height - 8}">0</text>',
           f'<text x="{width - right}" y="{height - 8}" text-anchor="end">{x_max:g} epochs</text>']
    for i, (label, xs, y, colour) in enumerate(lines):
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(sx(xs), sy(y)))
        out += [f'<polyline points="{points}" clip-path="url(#{clip})" fill="none" stroke="{colour}" stroke-width="1.6"/>',
                f'<text x="{width - right - 4}" y="{top + 14 + 13 * i}" text-anchor="end" fill="{colour}">{label}</text>']
    for label, xs, y, colour in dots:
        out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}" clip-path="url(#{clip})"><title>{label}</title></circle>'
                for a, b in zip(sx(xs), sy(y))]
    return "\n".join(out + ["</svg>"])


def layer_values(model, X, y):
    """For each layer with weights (Dense, Conv2D), on the batch X (N, ...), y (N,): a dict with its activations A
    (its output after the ReLU and other weightless layers that follow it; the logits for the last), the gradient
    dA = dL/dA of the mean cross-entropy, both (N, ..., D), its weights W and their gradient dW, of W's shape.
    It works on a copy in eval mode (dropout off), so the model, its grads and every rng are left as they were."""
    net = copy.deepcopy(model)
    M.set_training(net, False)
    outputs, a = [], X
    for layer in net:
        a = layer.forward(a)
        outputs.append(a)                                   # outputs[i]: what layer i passes on
    loss_fn = SoftmaxCrossEntropy()
    loss_fn.forward(a, y)
    grads, grad = [None] * len(net), loss_fn.backward()     # dL/dlogits (N, C)
    for i in reversed(range(len(net))):
        grads[i], grad = grad, net[i].backward(grad)         # grads[i]: dL/d(outputs[i])
    starts = [i for i, layer in enumerate(net) if "W" in layer.params]     # BatchNorm joins the block above
    ends = [j - 1 for j in starts[1:]] + [len(net) - 1]      # a layer's block ends just before the next weights
    return [{"A": outputs[e], "dA": grads[e], "W": net[s].params["W"], "dW": net[s].grads["W"]}
            for s, e in zip(starts, ends)]


def layer_histograms(model, X, y, bins=40):
    """layer_values, summarised per layer: histograms (counts, edges) of A, of log10|dA| and of log10|dW| (exact
    zeros left out of the log ones, and counted instead), and the numbers to watch: mean and std of A, zeros (the
    fraction of A's entries that are exactly 0), dead (the fraction of units, A's last axis, that are 0 for every
    example of the batch), dA_std, dW_std, dW_zeros and W_std. bins: as np.histogram takes it. -> [dict per layer]."""
    out = []
    for v in layer_values(model, X, y):
        A, dA, dW = v["A"], v["dA"], v["dW"]
        units = A.reshape(-1, A.shape[-1])                   # (N * positions, D)
        log10 = lambda g: np.log10(np.abs(g[g != 0]))
        out.append({"A_hist": np.histogram(A, bins), "dA_hist": np.histogram(log10(dA), bins),
                    "dW_hist": np.histogram(log10(dW), bins), "mean": float(A.mean()), "std": float(A.std()),
                    "zeros": float(np.mean(A == 0)), "dead": float(np.mean(np.all(units == 0, axis=0))),
                    "dA_std": float(dA.std()), "dW_std": float(dW.std()), "dW_zeros": float(np.mean(dW == 0)),
                    "W_std": float(v["W"].std()), "units": A.shape[-1]})
    return out


class HistogramRecorder:
    """Pass as fit(..., callback=recorder). After each epoch listed in `epochs` (counted from 1) it records
    layer_histograms on the fixed batch X, y into snapshots[epoch]; record(model, 0) before fit adds the start.
    It reads a copy of the model, so fit's result does not change."""

    def __init__(self, X, y, epochs, bins=40):
        self.X, self.y, self.epochs, self.bins = X, y, set(epochs), bins
        self.snapshots = {}                                  # epoch -> [dict per layer]

    def record(self, model, epoch):
        self.snapshots[epoch] = layer_histograms(model, self.X, self.y, self.bins)

    def __call__(self, info):
        if info["event"] == "epoch" and info["epoch"] + 1 in self.epochs:
            self.record(info["model"], info["epoch"] + 1)
        return False


class TrainView:
    """Pass as fit(..., callback=view). Every `interval` seconds of wall time at most, it scores the model on fixed
    subsets of train and dev (the first `subset` rows), and redraws: curves, the first layer's weights of `units`,
    a status line. It waits longer when an update costs more than `budget` of the time (a busy machine), so it
    never takes more than that share. Its Stop button makes the next callback return True, so fit ends after the
    current batch. Scoring runs in eval mode and restores each layer's mode: fit's result does not change."""

    def __init__(self, X_train, y_train, X_dev, y_dev, subset=1000, units=range(8), interval=0.25, budget=0.03,
                 clock=time.perf_counter):
        self.X_train, self.y_train = X_train[:subset], y_train[:subset]
        self.X_dev, self.y_dev = X_dev[:subset], y_dev[:subset]
        self.units, self.interval, self.budget, self.clock = list(units), interval, budget, clock
        self.points = []          # one dict per update: epoch (fractional), train_loss, train_acc, dev_loss, dev_acc
        self.stop_requested, self.start, self.next_update, self.steps_seen = False, None, None, 0
        self.seconds = 0.0        # wall time spent in updates: the view's own cost
        self.status = W.HTML("waiting for the first step")
        self.loss_chart, self.acc_chart = W.HTML(), W.HTML()
        self.weights = W.Image(format="png")
        self.button = W.Button(description="Stop", button_style="danger", icon="stop",
                               tooltip="end training after the current batch; the model keeps what it learned")
        self.button.on_click(lambda _: self.stop())
        self.widget = W.VBox([W.HBox([self.status, self.button]), W.HBox([self.loss_chart, self.acc_chart]),
                              W.HTML(f"first-layer weights of units {self.units[0]}–{self.units[-1]} "
                                     "(red positive, blue negative)"), self.weights])
        self.widget.add_class("npnet-trainview")

    def stop(self):
        """What the Stop button does: ask fit to end after the current batch."""
        self.stop_requested = True
        self.button.disabled, self.button.description = True, "stopping…"

    def __call__(self, info):
        """fit's callback: record and redraw when interval seconds have passed, at a stop and at the end."""
        now = self.clock()
        if self.start is None:
            self.start = self.next_update = now
        done = self.stop_requested or (info["event"] == "epoch" and info["epoch"] == info["num_epochs"] - 1)
        if done or now >= self.next_update:
            self.record(info)
            self.draw(info, now - self.start, done)
            spent = self.clock() - now
            self.seconds += spent
            self.next_update = now + max(self.interval, spent / self.budget)
        return self.stop_requested

    def record(self, info):
        """Append a point: the mean step loss since the last point, and the scores on the two subsets."""
        step_loss = info["history"]["step_loss"]
        if len(step_loss) == self.steps_seen:
            return                                   # no step since the last point: the same model
        train_loss = float(np.mean(step_loss[self.steps_seen:]))
        self.steps_seen = len(step_loss)
        dev_loss, dev_acc = scores(info["model"], self.X_dev, self.y_dev)
        _, train_acc = scores(info["model"], self.X_train, self.y_train)
        self.points.append({"epoch": self.steps_seen / info["steps_per_epoch"], "train_loss": train_loss,
                            "train_acc": train_acc, "dev_loss": dev_loss, "dev_acc": dev_acc})

    def accuracy_floor(self):
        """Where the accuracy axis starts: 1 point below the lowest dev score after the first tenth of the points,
        so that the axis zooms in as training settles."""
        late = [p["dev_acc"] for p in self.points[len(self.points) // 10:]]
        return min(late, default=0.0) - 0.01

    def series(self, key):
        """(epochs, values) of one recorded quantity."""
        return [p["epoch"] for p in self.points], [p[key] for p in self.points]

    def status_text(self, info, seconds, done):
        """The status line: where training is, the last dev score, the time."""
        h, p = info["history"], self.points[-1] if self.points else None
        where = (f"epoch {info['epoch'] + 1} of {info['num_epochs']}, step {info['step'] + 1} of "
                 f"{info['steps_per_epoch']}")
        dev = f" · dev accuracy {p['dev_acc']:.2%} on {len(self.y_dev):,} digits" if p else ""
        if self.stop_requested:
            return (f"<b>stopped</b> after {where} ({len(h['step_loss']):,} steps, {seconds:.0f} s): the model keeps "
                    f"what it learned; the history has {len(h['epoch_loss'])} whole epochs{dev}")
        return f"<b>{'done' if done else 'training'}</b>: {where} · {seconds:.0f} s{dev}"

    def draw(self, info, seconds, done):
        """Redraw every part from the recorded points and the model's weights."""
        h, x_max = info["history"], info["num_epochs"]
        epochs = np.arange(1, len(h["dev_acc"]) + 1)
        self.status.value = self.status_text(info, seconds, done)
        self.loss_chart.value = svg_chart(
            [("train (steps)", *self.series("train_loss"), TRAIN), ("dev", *self.series("dev_loss"), DEV)],
            title="loss (log scale)", log=True, x_max=x_max)
        self.acc_chart.value = svg_chart(
            [("train", *self.series("train_acc"), TRAIN), ("dev", *self.series("dev_acc"), DEV)],
            dots=[("dev, all 10,000, per epoch", epochs, h["dev_acc"], DEV)], title="accuracy", x_max=x_max,
            y_min=self.accuracy_floor())
        tiles = weight_tiles(info["model"], self.units)
        if tiles is not None:
            buffer = io.BytesIO()
            rgb = tiles_rgb(tiles)
            Image.fromarray(rgb).save(buffer, format="png", compress_level=1)
            self.weights.value, self.weights.width = buffer.getvalue(), str(rgb.shape[1])   # shown pixel for pixel
        if done:
            self.button.disabled = True
            self.button.description = "stopped" if self.stop_requested else "done"

    def figure(self, model, history):
        """The final curves and weights as a static matplotlib figure (what Run All and nbval leave in the output)."""
        import matplotlib.pyplot as plt

        tiles = weight_tiles(model, self.units)
        fig = plt.figure(figsize=(11, 5.6 if tiles is not None else 3.8))
        rows = [2.2, 1] if tiles is not None else [1]
        grid = fig.add_gridspec(len(rows), len(self.units), height_ratios=rows)
        half = len(self.units) // 2
        loss_ax, acc_ax = fig.add_subplot(grid[0, :half]), fig.add_subplot(grid[0, half:])
        loss_ax.semilogy(*self.series("train_loss"), color=TRAIN, label="train (mean of the steps since the last point)")
        loss_ax.semilogy(*self.series("dev_loss"), color=DEV, label=f"dev ({len(self.y_dev):,} digits)")
        acc_ax.plot(*self.series("train_acc"), color=TRAIN, label=f"train ({len(self.y_train):,} digits)")
        acc_ax.plot(*self.series("dev_acc"), color=DEV, label=f"dev ({len(self.y_dev):,} digits)")
        acc_ax.plot(np.arange(1, len(history["dev_acc"]) + 1), history["dev_acc"], "o", ms=4, color=DEV,
                    label="dev, all 10,000, after each epoch")
        acc_ax.set_ylim(self.accuracy_floor(), 1.002)                       # 100% stays inside the frame
        for ax, name in ((loss_ax, "loss"), (acc_ax, "accuracy")):
            ax.set_xlabel("epoch"); ax.set_title(name, fontsize=11); ax.legend(fontsize=9); ax.grid(alpha=0.3)
        if tiles is not None:
            for i, unit in enumerate(self.units):
                ax = fig.add_subplot(grid[1, i])
                ax.imshow(tiles[i], cmap="RdBu_r", vmin=-1, vmax=1)
                ax.set_title(f"unit {unit}", fontsize=9); ax.axis("off")
        stopped = "stopped by the learner, " if history["stopped"] else ""
        fig.suptitle(f"live view at the end: {stopped}{len(history['step_loss']):,} steps", fontsize=11)
        fig.tight_layout()
        return fig
