"""Look inside a trained network at one drawing: what each layer sees, why it answers, what it resembles, and what would change its mind."""

import copy
import hashlib
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import model as M
from .conv import Conv2D
from .data import normalize
from .layers import Dense, ReLU

K = 5                     # neighbours shown
STEP = 0.1                # the counterfactual's step: this much L2 change, in pixel units (a pixel is 0 to 1)
MAX_STEPS = 200           # so its change is at most MAX_STEPS * STEP before the shrinking search


@contextmanager
def eval_mode(model):
    """Run the model as in prediction (dropout off), and put each layer's mode back afterwards."""
    modes = [layer.training for layer in model]
    M.set_training(model, False)
    try:
        yield model
    finally:
        for layer, training in zip(model, modes):
            layer.training = training


def float64(model):
    """A copy of the model with float64 parameters and gradients, for checking gradients by central differences."""
    model = copy.deepcopy(model)
    for layer in model:
        if layer.params:
            layer.params = {k: v.astype(np.float64) for k, v in layer.params.items()}
            layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
    return model


def _dtype(model):
    """The dtype of the model's weights: float32 as trained, float64 for a copy made by float64()."""
    return next(layer for layer in model if layer.params).params["W"].dtype


def is_cnn(model):
    return any(isinstance(layer, Conv2D) for layer in model)


def layer_outputs(model, X):
    """Every layer's output in eval mode: (N, 784) -> [the first layer's output, ..., logits (N, 10)]."""
    outs = []
    with eval_mode(model):
        for layer in model:
            X = layer.forward(X)
            outs.append(X)
    return outs


def _x(x28, stats, dtype=np.float32):
    """One 28x28 drawing in [0, 1] as the model's input, (28, 28) -> (1, 784): as the pad computes it for float32,
    and without rounding to float32 for a float64 model (a central difference needs every digit)."""
    if dtype == np.float32:
        return normalize(np.asarray(x28)[None], stats)
    return (np.asarray(x28, np.float64).reshape(1, 784) - float(stats[0])) / float(stats[1])


def what_layers_see(model, stats, x28, top=8):
    """What each layer computes from the drawing (28, 28) in [0, 1], for showing as heat maps: a dict.

    An MLP (Dense-ReLU-...): {"kind": "mlp", "hidden": [each hidden layer's activations after ReLU, (units,)],
    "units": the first hidden layer's `top` most active units (top,), "templates": their input weights (top, 28, 28),
    "unit_activations": their activations (top,)}.
    A CNN: {"kind": "cnn", "maps1": the first conv's feature maps after ReLU (24, 24, 32), "units2": the second
    conv's `top` strongest maps by their largest value (top,), "maps2": those maps after ReLU (top, 8, 8)}.
    """
    outs = layer_outputs(model, _x(x28, stats, _dtype(model)))
    if is_cnn(model):
        convs = [i for i, layer in enumerate(model) if isinstance(layer, Conv2D)]
        maps1 = np.maximum(outs[convs[0]][0], 0)                      # relu(conv) then pool = pool then relu
        maps2 = np.maximum(outs[convs[1]][0], 0)                      # (8, 8, 64)
        units2 = np.argsort(-maps2.max(axis=(0, 1)), kind="stable")[:top]
        return {"kind": "cnn", "maps1": maps1, "units2": units2, "maps2": maps2[:, :, units2].transpose(2, 0, 1)}
    hidden = [outs[i][0] for i, layer in enumerate(model) if isinstance(layer, ReLU)]
    units = np.argsort(-hidden[0], kind="stable")[:top]
    first = next(layer for layer in model if isinstance(layer, Dense))
    return {"kind": "mlp", "hidden": hidden, "units": units, "unit_activations": hidden[0][units],
            "templates": first.params["W"][:, units].T.reshape(-1, 28, 28)}


def gap_gradient(model, stats, x28, top, other):
    """The gradient of logit[top] - logit[other] with respect to the 28x28 pixels (not the normalised input):
    (28, 28) -> (gap, (28, 28)), by one forward and one backward pass through npnet's own layers."""
    with eval_mode(model):
        logits = M.forward(model, _x(x28, stats, _dtype(model)))              # (1, 10)
        grad = np.zeros_like(logits)
        grad[0, top], grad[0, other] = 1, -1
        dx = M.backward(model, grad)                                  # d gap / d normalised input, (1, 784)
    # normalize() computes (x - mean) / std, so d / d pixel = d / d normalised input / std
    return float(logits[0, top] - logits[0, other]), dx.reshape(28, 28) / stats[1]


def why(model, stats, x28):
    """Which pixels pushed the answer towards the predicted digit and which towards the runner-up: a dict with
    "digit", "runner_up", "gap" (logit[digit] - logit[runner_up]), "gradient" (28, 28) and "attribution" (28, 28).

    attribution = gradient x input, with the blank canvas (every pixel 0) as the baseline: each inked pixel gets
    its ink times how much the gap grows per unit of ink there, and blank pixels get 0. A blank canvas is what
    the learner starts from, and it is MNIST's background, so the map answers "what did the ink you drew do?".
    Were the network linear in the pixels, the attribution would sum to gap(drawing) - gap(blank canvas) exactly.
    Positive pixels pushed towards the digit, negative ones towards the runner-up.
    """
    probs = M.predict_proba(model, _x(x28, stats))[0]
    digit, runner_up = (int(i) for i in np.argsort(-probs, kind="stable")[:2])
    gap, gradient = gap_gradient(model, stats, x28, digit, runner_up)
    return {"digit": digit, "runner_up": runner_up, "probs": probs, "gap": gap, "gradient": gradient,
            "attribution": np.asarray(x28) * gradient}


def features(model, X, batch_size=500):
    """The last hidden layer's activations, the input of the final Dense layer: (N, 784) normalised -> (N, units)."""
    out = []
    with eval_mode(model):
        for i in range(0, len(X), batch_size):
            M.forward(model, X[i:i + batch_size])
            out.append(model[-1].x.copy())
    return np.concatenate(out)


def fingerprint(model, stats):
    """A short SHA-256 of the model's layers, weights and norm stats: names its cached features."""
    h = hashlib.sha256(repr([layer.spec() for layer in model]).encode() + np.asarray(stats, np.float32).tobytes())
    for layer in model:
        for k in sorted(layer.params):
            h.update(np.ascontiguousarray(layer.params[k]).tobytes())
    return h.hexdigest()[:16]


def default_cache_dir():
    """Where the training set's features are cached: $NPNET_INSIDE_CACHE, or the MNIST folder (not tracked by git)."""
    from .data import DATA_DIR

    return Path(os.environ.get("NPNET_INSIDE_CACHE", DATA_DIR))


class TrainingSet:
    """MNIST's 50,000 training digits (the dev set's 10,000 left out, as everywhere in the course), loaded when
    first asked for, with each model's last-hidden-layer features computed when that model is first looked at.

    Features are cached in cache_dir as inside-<fingerprint>-<n>.npz (written atomically, read with
    allow_pickle=False), so a CNN's take about 10 s once, and a fraction of a second after. cache_dir None: no file.
    """

    def __init__(self, cache_dir="default", n=50_000):
        self.cache_dir = default_cache_dir() if cache_dir == "default" else cache_dir
        self.n, self.X28, self.y, self._feats, self.seconds, self.from_cache = n, None, None, {}, {}, {}

    def load(self):
        """The digits as (n, 784) float32 pixels in [0, 1] and their (n,) labels."""
        if self.X28 is None:
            from .data import load_mnist

            X, y = load_mnist()[:2]
            self.X28 = X[:self.n].reshape(self.n, -1).astype(np.float32) / np.float32(255)
            self.y, self.pixels = y[:self.n].astype(np.int64), NearestIndex(self.X28)
        return self.X28, self.y

    def features(self, model, stats, key=None):
        """The model's last-hidden-layer features of every digit, (n, units) float32, and a NearestIndex of them;
        key: the model's fingerprint(), if known."""
        key = key or fingerprint(model, stats)
        if key not in self._feats:
            t0 = time.perf_counter()
            path = Path(self.cache_dir) / f"inside-{key}-{self.n}.npz" if self.cache_dir else None
            F = _load_features(path, self.n)
            self.from_cache[key] = F is not None
            if F is None:
                X28 = self.load()[0]
                F = np.concatenate([features(model, normalize(X28[i:i + 5000], stats))
                                    for i in range(0, self.n, 5000)]).astype(np.float32)
                if path is not None:
                    _save_atomic(path, features=F)
            self._feats[key] = (F, NearestIndex(F))
            self.seconds[key] = time.perf_counter() - t0
        return self._feats[key]


def _load_features(path, n):
    """Cached features (n, units) float32 from path, or None if there are none or they are damaged."""
    if path is None or not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            F = z["features"]
    except (OSError, ValueError, KeyError, EOFError):
        return None                                                   # damaged: computed again and rewritten
    ok = F.ndim == 2 and F.shape[0] == n and F.dtype == np.float32 and np.isfinite(F).all()
    return F if ok else None


def _save_atomic(path, **arrays):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass                                                          # a read-only folder: no cache, no harm


class NearestIndex:
    """Exact k-nearest-neighbour search over the rows of A (n, d) in Euclidean distance, fast enough to run live.

    Each row a is split into its part in a few principal directions (found on a sample of rows) and the rest:
    |a - q|^2 >= |V'(a - q)|^2 + (|rest of a - mean| - |rest of q - mean|)^2, by the triangle inequality. That
    lower bound costs one (n, dims + 1) product; only the rows whose bound could beat the k-th best are measured.
    """

    def __init__(self, A, dims=64, sample=2000, rng=None):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.A = A
        self.mean = A.mean(axis=0, dtype=np.float64)
        S = A[rng.choice(len(A), min(sample, len(A)), replace=False)].astype(np.float64) - self.mean
        _, _, Vt = np.linalg.svd(S, full_matrices=False)
        self.V = Vt[:min(dims, len(Vt))].T                                      # (d, dims), orthonormal columns
        P = np.concatenate([(A[i:i + 5000] - self.mean) @ self.V for i in range(0, len(A), 5000)])   # (n, dims)
        C = np.concatenate([((A[i:i + 5000] - self.mean) ** 2).sum(axis=1) for i in range(0, len(A), 5000)])
        rest = np.sqrt(np.maximum(C - (P ** 2).sum(axis=1), 0))                                     # (n,)
        # |P a - P q|^2 + (rest_a - rest_q)^2 = C_a - 2 [P a, rest_a].[P q, rest_q] + |[P q, rest_q]|^2: one
        # float32 product per search; its rounding is covered by a slack taken off every bound
        self.Q, self.C = np.column_stack([P, rest]).astype(np.float32), C.astype(np.float32)
        self.c_max = float(C.max())

    def search(self, q, k=K):
        """The k rows nearest to q (d,), nearest first, ties by index: -> (indices (k,), distances (k,))."""
        q = np.asarray(q, np.float64) - self.mean
        pq = q @ self.V
        qq = np.append(pq, np.sqrt(max(q @ q - pq @ pq, 0)))
        bound = self.C - 2 * (self.Q @ qq.astype(np.float32)) + np.float32(qq @ qq - 1e-5 * (self.c_max + qq @ qq))
        m = min(64, len(bound) - 1)
        while True:
            part = np.argpartition(bound, m)               # part[:m]: the m smallest bounds; part[m]: the next
            order, unseen = part[:m], bound[part[m]]
            d2 = ((self.A[order].astype(np.float64) - self.mean - q) ** 2).sum(axis=1)
            best = np.lexsort((order, d2))[:k]
            if d2[best[-1]] < unseen or m == len(bound) - 1:   # no unmeasured row can come closer
                if m == len(bound) - 1:                                      # (or all but one are measured)
                    order = np.arange(len(bound))
                    d2 = ((self.A.astype(np.float64) - self.mean - q) ** 2).sum(axis=1)
                    best = np.lexsort((order, d2))[:k]
                return order[best], np.sqrt(d2[best])
            m = min(4 * m, len(bound) - 1)


def resembles(model, stats, x28, training_set, k=K, key=None):
    """The k MNIST training digits nearest to the drawing in the last hidden layer's space and in pixel space:
    {"features": (indices (k,), labels (k,), distances (k,)), "pixels": the same}."""
    X28, y = training_set.load()
    _, index = training_set.features(model, stats, key)
    fi, fd = index.search(features(model, _x(x28, stats))[0], k)
    pi, pd = training_set.pixels.search(np.ravel(x28), k)
    return {"features": (fi, y[fi], fd), "pixels": (pi, y[pi], pd)}


def change_its_mind(model, stats, x28, target, others=None, step=STEP, max_steps=MAX_STEPS):
    """A small change to the 28x28 tensor that makes the model answer target, pixels kept in [0, 1]: a dict.

    Each step moves the pixels by `step` (L2, pixel units) against the gradient of logit[strongest other digit] -
    logit[target], then clips them to [0, 1]; once the model answers target, a bisection shrinks the change to the
    smallest multiple of it that still does. That is the smallest along this one direction, not the smallest change
    that flips the model: a part of it may flip it too. Returns "x28" (the changed tensor), "delta" (its change, (28, 28)),
    "l2", "max_abs", "steps" (gradient steps taken), "answer" (the model's answer on it, target unless it failed
    within max_steps), and "others": {name: answer} of each model in others ({name: (model, stats)}) on it.
    """
    x0 = np.asarray(x28, np.float32)
    x, steps = x0.copy(), 0
    answer = lambda z: int(M.predict_proba(model, _x(z, stats))[0].argmax())  # noqa: E731  (as the pad reads it)
    with eval_mode(model):
        while steps < max_steps:
            logits = M.forward(model, _x(x, stats))                   # (1, 10)
            if logits[0].argmax() == target:
                break
            rival = int(np.argmax(np.where(np.arange(10) == target, -np.inf, logits[0])))
            grad = np.zeros_like(logits)
            grad[0, rival], grad[0, target] = 1, -1
            g = M.backward(model, grad).reshape(28, 28)               # d(logit[rival] - logit[target]) / d input
            x = np.clip(x - step * g / max(np.linalg.norm(g), 1e-12), 0, 1).astype(np.float32)   # (the 1/std is
            steps += 1                                                                          # normalised away)
    if steps and answer(x) == target:                   # the smallest fraction of the change that still flips it
        low, high = 0.0, 1.0
        for _ in range(12):
            mid = (low + high) / 2
            low, high = (low, mid) if answer(x0 + mid * (x - x0)) == target else (mid, high)
        x = (x0 + high * (x - x0)).astype(np.float32)
    delta = x - x0
    return {"x28": x, "delta": delta, "l2": float(np.linalg.norm(delta)), "max_abs": float(np.abs(delta).max()),
            "steps": steps, "target": int(target), "answer": answer(x),
            "others": {name: int(M.predict_proba(m, _x(x, st))[0].argmax())
                       for name, (m, st) in (others or {}).items()}}
