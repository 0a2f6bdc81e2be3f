"""Notebook 01's exercises: the nearest-mean classifier, a stable softmax, the mean cross-entropy, its gradient with respect to W and b, and per-pixel norm stats."""

import copy
import re

import numpy as np

from .. import losses
from ..gradcheck import numerical_grad
from . import Exercise, _call, _describe, _difference

# A float32 answer keeps about 7 significant digits, and a logit near 1000 rounds to about 4 decimals: such an
# answer (or any answer where the reference gives float32) is compared at these tolerances (relative, absolute), a
# float64 one at the Exercise's own.
FLOAT32_TOL = (1e-4, 1e-6)

# numpy's message when an (N, C) array meets an (N,) one: a row max or sum taken without keepdims=True
_NO_KEEPDIMS = re.compile(r"could not be broadcast together with shapes \((\d+),\s*(\d+)\)\s*\(\1,?\)")
NO_KEEPDIMS = ("{name} raised a broadcasting error between an (N, C) array and an (N,) one: a row's max or sum "
               "taken without keepdims=True has shape (N,), which NumPy lines up with the C columns, not the N "
               "rows. Write .max(axis=1, keepdims=True) (or .sum), which keeps the shape (N, 1).")


class _Exercise(Exercise):
    """Notebook 01's exercises: a float32 answer, or one to a float32 case, is judged at float32 precision, a row max
    or sum taken without keepdims is named, and (labels=True) wrong labels are counted rather than measured by size."""

    def __init__(self, *args, labels=False, float64_note=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.labels = labels
        self.float64_note = float64_note      # the float64 leak's usual cause in this exercise, if it has one

    def _close(self, out, want, rtol=None, atol=None, equal_nan=False):
        parts = [*(out if isinstance(out, (tuple, list)) else (out,)), *(want if isinstance(want, tuple) else (want,))]
        if any(getattr(o, "dtype", None) == np.float32 for o in parts):   # yours or the answer: float32 precision
            rtol = max(self.rtol if rtol is None else rtol, FLOAT32_TOL[0])
            atol = max(self.atol if atol is None else atol, FLOAT32_TOL[1])
        return super()._close(out, want, rtol=rtol, atol=atol, equal_nan=equal_nan)

    def diagnose(self, fn):
        verdict, message = super().diagnose(fn)
        if verdict == "wrong" and _NO_KEEPDIMS.search(message):
            return "mistake", "✗ " + NO_KEEPDIMS.format(name=self.name)
        if verdict == "wrong" and self.labels and "largest difference" in message:
            return verdict, self._labels_differ(fn) or message
        if verdict == "mistake" and self.float64_note and "turns float32 inputs into float64" in message:
            which = re.search(r"right numbers( for \w+)?", message).group(1) or ""
            if which in ("", f" for {self.returns[0] if self.returns else ''}"):   # the first output leaks
                return verdict, "✗ " + self.float64_note.format(name=self.name)
        return verdict, message

    def _labels_differ(self, fn):
        """'✗ nearest_mean: 3 of 7 labels differ ...' for the first case whose labels differ, or None."""
        for args in self.cases(np.random.default_rng(self.seed)):
            want, out = _call(self.reference, args), _call(fn, copy.deepcopy(args))
            if not isinstance(out, np.ndarray) or out.shape != want.shape or np.array_equal(out, want):
                continue
            bad = np.flatnonzero(out != want)
            return (f"✗ {self.name}: {len(bad)} of {len(want)} labels differ from the nearest mean's, the first at "
                    f"index {bad[0]} (yours {out[bad[0]]:g}, the answer {want[bad[0]]}), on {_describe(args)}")
        return None


def _batches(rng, scale=3.0):
    """Logits and labels for batches of 1, 7 and 128 with 10 classes, then 6 with 3 classes and 9 with 17, float64.
    (No batch has as many rows as classes: a row max taken without keepdims must fail to broadcast.)"""
    return [(rng.standard_normal((n, c)) * scale, rng.integers(0, c, n)) for n, c in ((1, 10), (7, 10), (128, 10),
                                                                                    (6, 3), (9, 17))]


# -- the nearest-mean classifier ----------------------------------------------------------------------------
def nearest_mean_solution(X_train, y_train, X):
    """(M, D) training inputs, (M,) int labels 0..C-1, (N, D) inputs -> (N,) int labels: the class whose mean
    training input is nearest to each row of X (Euclidean distance)."""
    num_classes = y_train.max() + 1
    means = np.stack([X_train[y_train == c].mean(axis=0) for c in range(num_classes)])   # (C, D) one template each
    dist2 = np.stack([((X - m) ** 2).sum(axis=1) for m in means], axis=1)               # (N, C) squared distances
    return dist2.argmin(axis=1)                                                          # (N,) nearest template


def _class_means(X_train, y_train):
    return np.stack([X_train[y_train == c].mean(axis=0) for c in range(y_train.max() + 1)])


def _nearest_mean_reference(X_train, y_train, X):
    means = _class_means(X_train, y_train)                                               # (C, D)
    dist2 = (X ** 2).sum(axis=1, keepdims=True) - 2 * X @ means.T + (means ** 2).sum(axis=1)   # |x - m|^2 expanded
    return dist2.argmin(axis=1)


def _nearest_mean_cases(rng):
    cases = []
    for num_classes, n_train, n, d in ((10, 60, 1, 8), (10, 200, 7, 30), (3, 40, 50, 12), (10, 300, 128, 20)):
        centres = rng.standard_normal((num_classes, d)) * 0.5
        centres[:, 0] += np.arange(num_classes) * 0.6      # classes differ in their total 'ink', as digits do
        y_train = np.concatenate([np.arange(num_classes), rng.integers(0, num_classes, n_train - num_classes)])
        rng.shuffle(y_train)                                # every class present, in no particular order
        X_train = centres[y_train] + rng.standard_normal((n_train, d))
        X = centres[rng.integers(0, num_classes, n)] + rng.standard_normal((n, d))
        cases.append((X_train, y_train, X))
    return cases


def _dists(X_train, y_train, X):
    means = _class_means(X_train, y_train)
    return np.stack([((X - m) ** 2).sum(axis=1) for m in means], axis=1)                # (N, C)


nearest_mean = _Exercise(
    "nearest_mean", _nearest_mean_reference, nearest_mean_solution, _nearest_mean_cases,
    "labels match the nearest class mean on batches of 1, 7, 50 and 128, with 10 classes and with 3",
    mistakes=[
        ("you picked the farthest mean: the distance is smallest for the best match, so take argmin, not argmax.",
         lambda Xt, yt, X: _dists(Xt, yt, X).argmax(axis=1)),
        ("you scored each class by the dot product x·m and took the largest: a mean with more ink (a larger "
         "|m|) wins even when its shape is wrong. Use the distance |x - m|^2 = |x|^2 - 2x·m + |m|^2: the |m|^2 "
         "term is what the dot product leaves out.",
         lambda Xt, yt, X: (X @ _class_means(Xt, yt).T).argmax(axis=1)),
        ("you summed the differences x - m without squaring them, and took the smallest: negative differences "
         "then win. Square them before summing: |x - m|^2 = sum_i (x_i - m_i)^2.",
         lambda Xt, yt, X: np.stack([(X - m).sum(axis=1) for m in _class_means(Xt, yt)], axis=1).argmin(axis=1)),
        ("you used the L1 distance, sum_i |x_i - m_i|: a fair classifier too, but not this one. The nearest "
         "mean here is by Euclidean distance, sum_i (x_i - m_i)^2 (its square root picks the same class).",
         lambda Xt, yt, X: np.stack([np.abs(X - m).sum(axis=1) for m in _class_means(Xt, yt)], axis=1).argmin(axis=1)),
        ("you assumed 10 classes: with 3 classes, the means of the missing classes 3..9 are NaN (the mean of no "
         "images). Take the number of classes from the labels, y_train.max() + 1.",
         lambda Xt, yt, X: np.stack([((X - Xt[yt == c].mean(axis=0)) ** 2).sum(axis=1) for c in range(10)],
                                    axis=1).argmin(axis=1)),
        ("you returned the (N, C) distances: return each row's label, the index of its smallest distance "
         "(argmin over axis=1).", _dists),
        ("you returned one label per class, shape (C,): argmin over axis=0 picks the nearest image for each "
         "class. Each image (row) needs its nearest class: argmin over axis=1.",
         lambda Xt, yt, X: _dists(Xt, yt, X).argmin(axis=0)),
        ("your classifier compares only total ink: either each template is one number, the mean over all of a "
         "class's pixels (X_train[y_train == c].mean() without axis=0), or you summed x - m without squaring, so "
         "positive and negative differences cancel. A template has one mean per pixel, over the images (axis=0), "
         "and the distance squares each difference: sum_i (x_i - m_i)^2.",
         lambda Xt, yt, X: np.stack([((X - Xt[yt == c].mean()) ** 2).sum(axis=1)
                                     for c in range(yt.max() + 1)], axis=1).argmin(axis=1)),
        ("you built one template too few: range(y_train.max()) stops before the largest label, so the last class "
         "gets no mean and is never predicted. Labels 0..C-1 make C = y_train.max() + 1 classes.",
         lambda Xt, yt, X: _dists(Xt[yt < yt.max()], yt[yt < yt.max()], X).argmin(axis=1)),
    ],
    labels=True,
    hint_text="Two steps. The template of class c is the mean over the images of that class, "
              "X_train[y_train == c].mean(axis=0), one number per pixel; stack the C templates into a (C, D) "
              "array. Then, for each template m, ((X - m) ** 2).sum(axis=1) is every image's squared distance to "
              "it; stack those into (N, C) and take argmin over axis=1.",
)


# -- softmax ------------------------------------------------------------------------------------------------
def _normalise(e):
    return e / e.sum(axis=1, keepdims=True)


def softmax_solution(logits):
    """(N, C) logits -> (N, C) probs, each row summing to 1."""
    z = logits - logits.max(axis=1, keepdims=True)   # the largest entry of each row becomes 0: exp cannot overflow
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _softmax_cases(rng):
    cases = [(logits,) for logits, _ in _batches(rng)]
    big = rng.standard_normal((4, 10)) * 3
    big[:, 0] = 1000.0                                  # a logit of +1000: exp overflows unless shifted
    big[:, 1] = -1000.0
    mixed = rng.standard_normal((3, 10))               # one row far above the others: a batch-wide max
    mixed[0, 4] = 1000.0                                # would push the other rows' exp down to 0
    high = rng.standard_normal((3, 10)) * 3 + 1000.0   # every logit near 1000: clipping them is not softmax
    return cases + [(big,), (mixed,), (high,)]


softmax = _Exercise(
    "softmax", losses.softmax, softmax_solution, _softmax_cases,
    "matches npnet.softmax on batches of 1, 7 and 128, with 10 classes and with 3 and 17, and stays finite and "
    "exact for logits of ±1000, in every row",
    mistakes=[
        ("softmax gives NaN for a logit of 1000: exp(1000) overflows. Subtract each row's max first; "
         "softmax(z - c) = softmax(z).", lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)),
        ("the rows do not sum to 1: normalise each row (sum over axis=1 with keepdims=True), not the whole batch.",
         lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum()),
        ("the columns sum to 1 instead of the rows: each row is one image, so sum over axis=1.",
         lambda z: np.exp(z - z.max(axis=0)) / np.exp(z - z.max(axis=0)).sum(axis=0)),
        ("each column sums to 1: you subtracted each row's max (right) but divided by the column sums (axis=0). "
         "Each row is one image, so divide by its own row sum: .sum(axis=1, keepdims=True).",
         lambda z: np.exp(z - z.max(axis=1, keepdims=True)) / np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=0)),
        ("you subtracted the largest logit of the whole batch: a row whose logits all lie far below it gets "
         "exp(...) = 0 everywhere, and 0/0 = NaN. Subtract each row's own max (axis=1, keepdims=True).",
         lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum(axis=1, keepdims=True)),
        ("you subtracted each row's min: then the largest exponent is max - min, which overflows when a row "
         "spans 1000 and -1000 (inf/inf = NaN). Subtracting the max keeps every exponent at most 0.",
         lambda z: _normalise(np.exp(z - z.min(axis=1, keepdims=True)))),
        ("you subtracted each row's mean: the largest exponent is then max - mean, still about 1000 in a row "
         "with one logit of 1000, and exp overflows (inf/inf = NaN). Subtract the row's max: no exponent exceeds 0.",
         lambda z: _normalise(np.exp(z - z.mean(axis=1, keepdims=True)))),
        ("you clipped the logits (to ±500, say): that keeps exp finite, but it is no longer softmax. Logits that "
         "all lie above the limit become equal, so a row near 1000 comes out uniform. Shift each row by its max "
         "instead: softmax(z - c) = softmax(z), so the shift changes nothing.",
         lambda z: _normalise(np.exp(np.clip(z, -500, 500)))),   # any limit from about 40 to 700 gives the same
        ("the rows do not sum to 1: you returned exp(z - max) itself. Divide each row by its sum "
         "(axis=1, keepdims=True): that division is what turns scores into probabilities.",
         lambda z: np.exp(z - z.max(axis=1, keepdims=True))),
    ],
    hint_text="exp of a large logit overflows to inf, and inf/inf is NaN. Softmax does not change if you subtract "
              "the same number from every logit of a row, so subtract the row's max (keepdims=True keeps the "
              "shape (N, 1) so that it broadcasts).",
    classes=(lambda logits: logits.shape[1], "logits.shape[1]"),
)


# -- the mean cross-entropy ---------------------------------------------------------------------------------
def cross_entropy_solution(logits, y):
    """(N, C) logits, (N,) int labels -> the mean of -log p_{n, y_n}, a float."""
    z = logits - logits.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))   # log-softmax, by log-sum-exp
    return -log_probs[np.arange(len(y)), y].mean()


def _ce_reference(logits, y):
    return losses.SoftmaxCrossEntropy().forward(logits, y)


def _ce_cases(rng):
    cases = _batches(rng)
    big = rng.standard_normal((5, 10)) * 3
    big[:, 3] = 1000.0
    low = rng.standard_normal((4, 10)) * 3 - 1000.0    # every logit near -1000: exp underflows unless shifted
    return cases + [(big, np.array([3, 0, 3, 9, 1])),   # right with certainty (loss 0) or wrong (about 1000)
                    (low, rng.integers(0, 10, 4))]


def _picked(log_p, y):
    """Each row's entry at its own label: (N,)."""
    return log_p[np.arange(len(y)), y]


def _eps_mistake(eps):
    return (f"you added eps = {eps:g} to p (or clipped p at it) before the log: a label given probability e^-1000 "
            f"then costs -ln({eps:g}) = {-np.log(eps):.0f} instead of about 1000, and every small probability is "
            f"off a little too. Compute log-softmax directly, z - max - log(sum(exp(z - max))), and take no log of p.",
            lambda z, y: -np.log(_picked(losses.softmax(z), y) + eps).mean())


cross_entropy = _Exercise(
    "cross_entropy", _ce_reference, cross_entropy_solution, _ce_cases,
    "matches npnet's SoftmaxCrossEntropy on batches of 1, 7 and 128, with 10 classes and with 3 and 17, and is "
    "finite for logits of ±1000",
    mistakes=[
        ("the loss is exactly N times too large: you summed -log p over the batch. The loss is the mean, "
         "(1/N)·sum, so that its size (and the gradient's) does not grow with the batch size.",
         lambda z, y: -losses.log_softmax(z)[np.arange(len(y)), y].sum()),
        ("the loss is N times too large (you summed over the batch; take the mean), and inf for a logit of 1000: "
         "log(softmax) underflows to log(0). Compute log-softmax directly, z - max - log(sum(exp(z - max))).",
         lambda z, y: -np.log(losses.softmax(z)[np.arange(len(y)), y]).sum()),
        ("the loss is N times too large (you summed over the batch; take the mean), and NaN for a logit of 1000: "
         "exp(1000) overflows. Compute log-softmax directly, z - max - log(sum(exp(z - max))).",
         lambda z, y: -np.log(np.exp(z)[np.arange(len(y)), y] / np.exp(z).sum(axis=1)).sum()),
        ("you averaged -log p over all N×C entries: the loss uses only the probability of each image's own "
         "label, p[n, y[n]].", lambda z, y: -np.log(losses.softmax(z)).mean()),
        ("the loss is NaN for logits of ±1000: exp(1000) overflows to inf and exp(-1000) underflows to 0, so p "
         "is inf/inf or 0/0. Compute log-softmax directly, z - max - log(sum(exp(z - max))).",
         lambda z, y: -np.log(np.exp(z)[np.arange(len(y)), y] / np.exp(z).sum(axis=1)).mean()),
        ("the loss is inf for a logit of 1000: a stable softmax still rounds a wrong label's probability "
         "to 0, and log(0) = -inf. Compute log-softmax directly, z - max - log(sum(exp(z - max))), and pick "
         "from that.", lambda z, y: -np.log(losses.softmax(z)[np.arange(len(y)), y]).mean()),
        ("the sign is flipped: the loss is minus the mean log-probability, so it is positive.",
         lambda z, y: losses.log_softmax(z)[np.arange(len(y)), y].mean()),
        *[_eps_mistake(eps) for eps in (1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12, 1e-15, 2.2e-16, 1e-20, 1e-300)],
        ("the loss is inf or NaN for logits of ±1000: your log-sum-exp takes exp(z) before subtracting anything, "
         "and exp(1000) overflows to inf (exp(-1000) underflows to 0, whose log is -inf). Shift inside the log: "
         "log(sum(exp(z))) = max + log(sum(exp(z - max))).",
         lambda z, y: -_picked(z - np.log(np.exp(z).sum(axis=1, keepdims=True)), y).mean()),
        ("log_probs[:, y] picks every row's entries at all N labels, an (N, N) block, and you averaged all of "
         "them. Pair each row with its own label: log_probs[np.arange(N), y], N numbers.",
         lambda z, y: -losses.log_softmax(z)[:, y].mean()),
        ("your loss is the answer divided by ln 10 = 2.303: np.log10 is the base-10 log. Cross-entropy uses the "
         "natural log, np.log (that is what makes its gradient P - Y).",
         lambda z, y: -_picked(losses.log_softmax(z), y).mean() / np.log(10)),
        ("your loss is the answer divided by ln 10 = 2.303 (np.log10 is the base-10 log; use np.log), and inf for "
         "a logit of 1000: log(softmax) underflows to log(0). Compute log-softmax directly, z - max - "
         "log(sum(exp(z - max))).",
         lambda z, y: -np.log10(_picked(losses.softmax(z), y)).mean()),
        ("the loss is NaN for a logit of 1000: the stable softmax rounds a wrong label's probability to 0, and "
         "in Y * log(p) that entry is 0 * log(0) = 0 * -inf = NaN, even where Y is 0. Pick each row's own entry "
         "of log-softmax, log_probs[np.arange(N), y], with log-softmax computed directly.",
         lambda z, y: -(np.eye(z.shape[1])[y] * np.log(losses.softmax(z))).sum(axis=1).mean()),
        ("your loss is the answer divided by C, the number of classes: you averaged Y * log p over all N×C entries, "
         "and only N of them are not 0. Sum over the classes (axis=1), then average over the images.",
         lambda z, y: -(np.eye(z.shape[1])[y] * losses.log_softmax(z)).mean()),
        ("you returned the N per-image losses, shape (N,): the loss is their mean, one number (.mean()).",
         lambda z, y: -_picked(losses.log_softmax(z), y)),
    ],
    hint_text="Compute log-probabilities first: log_softmax(z) = z - max - log(sum(exp(z - max))) per row. Then "
              "pick each row's entry at its label with fancy indexing, log_probs[np.arange(N), y], and average.",
    classes=(lambda logits, y: logits.shape[1], "logits.shape[1]"),
)


# -- the gradient with respect to W and b -------------------------------------------------------------------
def softmax_grads_solution(X, W, b, y):
    """(N, D) inputs, (D, C) weights, (C,) bias, (N,) labels -> dL/dW (D, C), dL/db (C,), for L the mean cross-entropy."""
    logits = X @ W + b                                # (N, C)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)          # (N, C) softmax
    delta = probs.copy()
    delta[np.arange(len(y)), y] -= 1                  # P - Y: dL_n/dz_n for each image
    delta /= len(y)                                   # the 1/N of the mean, once
    return X.T @ delta, delta.sum(axis=0)             # (D, N) @ (N, C) = (D, C); sum over the batch


def _grads_reference(X, W, b, y):
    loss_fn = losses.SoftmaxCrossEntropy()
    loss_fn.forward(X @ W + b, y)
    delta = loss_fn.backward()                        # (P - Y) / N
    return X.T @ delta, delta.sum(axis=0)


def _grads_numerical(X, W, b, y):
    def loss():
        return losses.SoftmaxCrossEntropy().forward(X @ W + b, y)
    return numerical_grad(loss, W), numerical_grad(loss, b)


def _grads_cases(rng):
    cases = [(rng.standard_normal((n, d)), rng.standard_normal((d, c)), rng.standard_normal(c), rng.integers(0, c, n))
             for n, d, c in ((1, 5, 10), (7, 12, 10), (32, 20, 10), (6, 8, 3), (9, 5, 17))]
    X, W, b, y = cases[1]
    return cases + [(X * 300, W, b, y)]                 # logits in the hundreds: softmax must be the stable one


def _delta(X, W, b, y):
    delta = losses.softmax(X @ W + b)
    delta[np.arange(len(y)), y] -= 1
    return delta


def _delta_naive(X, W, b, y):
    e = np.exp(X @ W + b)                             # no shift: overflows for logits in the hundreds
    return e / e.sum(axis=1, keepdims=True) - np.eye(W.shape[1])[y]


def _delta_columns(X, W, b, y):
    delta = losses.softmax(X @ W + b)
    delta[:, y] -= 1                                  # whole columns, once per distinct label
    return delta


def _grads_without_b(X, W, b, y):
    delta = losses.softmax(X @ W)                       # the forward pass without its bias
    delta[np.arange(len(y)), y] -= 1
    return X.T @ delta / len(y), delta.sum(axis=0) / len(y)


# The float32 probe's usual failure here: a correct answer whose one-hot comes from np.eye, float64 by default.
ONEHOT_FLOAT64 = ("{name} gives the right numbers, but turns float32 inputs into float64. The usual cause "
                  "here is the one-hot: np.eye(C)[y] is float64 (np.eye's default dtype), so P - Y becomes float64, "
                  "and dW and db with it. Build it as np.eye(C, dtype=X.dtype)[y], or skip the one-hot and subtract 1 "
                  "at delta[np.arange(N), y]. (Other ways in: np.zeros without dtype=, .astype(float), a NumPy "
                  "float64 number such as np.sqrt(2).) The rule is float32 in, float32 out, as in npnet: float64 "
                  "doubles the memory and slows every later step.")
DB_ONLY = ("dW is right, but db is not: on {case}, db's {diff}. The bias is added to every image's logits, so db is "
           "delta summed over the batch, delta.sum(axis=0): C numbers, with the same delta = (P - Y) / N as dW.")


class _Grads(_Exercise):
    """softmax_grads: a wrong db next to a right dW is named, whatever form the wrong db takes."""

    def _explain_wrong(self, fn):
        return super()._explain_wrong(fn) or self._db_only(fn)

    def _db_only(self, fn):
        """('mistake', message) if dW matches on every case and db does not on some, else None."""
        first_bad = None
        for args in self.cases(np.random.default_rng(self.seed)):
            want, out = _call(self.reference, args), _call(fn, args)
            if not isinstance(out, (tuple, list)) or len(out) != 2 or not self._close(out[0], want[0]):
                return None
            if first_bad is None and not self._close(out[1], want[1]):
                first_bad = (args, out[1], want[1])
        if first_bad is None:
            return None
        args, db, want_db = first_bad
        return "mistake", "✗ " + DB_ONLY.format(diff=_difference(db, want_db), case=_describe(args))


softmax_grads = _Grads(
    "softmax_grads", _grads_reference, softmax_grads_solution, _grads_cases,
    "dW and db match npnet and central differences (float64) on batches of 1, 7 and 32, with 10 classes and with "
    "3 and 17",
    numerical=_grads_numerical, returns=("dW", "db"),
    mistakes=[
        ("dW and db are N times too large: the loss is a mean, so divide P - Y by the batch size N once.",
         lambda X, W, b, y: (X.T @ _delta(X, W, b, y), _delta(X, W, b, y).sum(axis=0))),
        ("dW and db are N times too small: the 1/N is counted twice (once in delta, once more after).",
         lambda X, W, b, y: (X.T @ _delta(X, W, b, y) / len(y) ** 2, _delta(X, W, b, y).sum(axis=0) / len(y) ** 2)),
        ("db is N times too small: delta = (P - Y) / N already holds the 1/N, so db is its sum over the batch "
         "(axis=0), not its mean.",
         lambda X, W, b, y: (X.T @ _delta(X, W, b, y) / len(y), _delta(X, W, b, y).mean(axis=0) / len(y))),
        ("db has shape (N, C): the bias is added to every row, so its gradient sums delta over the batch "
         "(axis=0) into a (C,) vector.",
         lambda X, W, b, y: (X.T @ _delta(X, W, b, y) / len(y), _delta(X, W, b, y) / len(y))),
        ("dW is transposed, (C, D) instead of W's (D, C): the sum over the batch must be the inner dimension, "
         "so X.T (D, N) goes on the left of delta (N, C).",
         lambda X, W, b, y: (_delta(X, W, b, y).T @ X / len(y), _delta(X, W, b, y).sum(axis=0) / len(y))),
        ("you used P where the answer needs P - Y: subtract 1 at each image's label (the one-hot Y).",
         lambda X, W, b, y: (X.T @ losses.softmax(X @ W + b) / len(y), losses.softmax(X @ W + b).sum(axis=0) / len(y))),
        ("the sign is flipped: the gradient is (P - Y), not (Y - P). Gradient descent then subtracts it.",
         lambda X, W, b, y: (-X.T @ _delta(X, W, b, y) / len(y), -_delta(X, W, b, y).sum(axis=0) / len(y))),
        ("dW and db are NaN for logits in the hundreds: your softmax takes exp of the raw logits, and exp(800) "
         "overflows to inf (inf/inf = NaN). Use the stable softmax: subtract each row's max first.",
         lambda X, W, b, y: (X.T @ _delta_naive(X, W, b, y) / len(y), _delta_naive(X, W, b, y).sum(axis=0) / len(y))),
        ("dW is right, but db is N times too large: the 1/N of the mean belongs in db too. Compute "
         "delta = (P - Y) / N once and use it for both.",
         lambda X, W, b, y: (X.T @ _delta(X, W, b, y) / len(y), _delta(X, W, b, y).sum(axis=0))),
        ("db is right, but dW is N times too large: the 1/N of the mean belongs in dW too. Compute "
         "delta = (P - Y) / N once and use it for both.",
         lambda X, W, b, y: (X.T @ _delta(X, W, b, y), _delta(X, W, b, y).sum(axis=0) / len(y))),
        ("db has shape (N,): you summed delta over the classes (axis=1), where each row of P - Y sums to 0. The "
         "bias is added to every image, so db sums delta over the batch, axis=0, into C numbers.",
         lambda X, W, b, y: (X.T @ _delta(X, W, b, y) / len(y), _delta(X, W, b, y).sum(axis=1) / len(y))),
        ("you subtracted each image's label y[n] itself from its whole row (P - y[:, None]): Y is one-hot, 1 only "
         "in column y[n]. Build it as np.eye(C)[y], or subtract 1 at delta[np.arange(N), y].",
         lambda X, W, b, y: (X.T @ (losses.softmax(X @ W + b) - y[:, None]) / len(y),
                             (losses.softmax(X @ W + b) - y[:, None]).sum(axis=0) / len(y))),
        ("delta[:, y] -= 1 subtracts 1 in whole columns, in every row at every label of the batch (and once per "
         "label, however often it occurs). Each row needs 1 subtracted at its own label only: "
         "delta[np.arange(N), y] -= 1.",
         lambda X, W, b, y: (X.T @ _delta_columns(X, W, b, y) / len(y), _delta_columns(X, W, b, y).sum(axis=0) / len(y))),
        ("you divided by D = X.shape[1], the number of inputs per image: the loss is a mean over the N images, "
         "so divide by N = len(y) = X.shape[0].",
         lambda X, W, b, y: (X.T @ _delta(X, W, b, y) / X.shape[1], _delta(X, W, b, y).sum(axis=0) / X.shape[1])),
        ("your forward pass leaves out the bias: the logits are z = X @ W + b, not X @ W. b shifts every image's "
         "logit for class k by b_k, which changes P, and so both dW and db.", _grads_without_b),
        ("db is all zeros: the bias has a gradient too. It is added to every image's logits, so db is delta "
         "summed over the batch, delta.sum(axis=0).",
         lambda X, W, b, y: (X.T @ _delta(X, W, b, y) / len(y), np.zeros_like(b))),
    ],
    hint_text="delta = (P - Y) / N, with P = softmax(X @ W + b) and Y one-hot (subtract 1 at each row's label). "
              "Shapes decide the rest: dW must be (D, C) = (D, N) @ (N, C), so X.T goes on the left; db sums delta "
              "over the batch.",
    classes=(lambda X, W, b, y: W.shape[1], "W.shape[1] (or len(b))"),
    float64_note=ONEHOT_FLOAT64,
)


# -- exercise 2 at the end: per-pixel norm stats ------------------------------------------------------------
def pixel_stats_solution(X):
    """(N, D) training inputs -> mean (D,), std (D,), per pixel and in X's dtype: std 1 for a pixel that never
    varies (the same value in every image), every other std as it is, however small."""
    mean = X.mean(axis=0)                             # one number per pixel: average over the images (axis 0)
    std = X.std(axis=0)
    never_varies = X.max(axis=0) == X.min(axis=0)     # ask the data: a computed std is rounded, so rarely exactly 0
    std[never_varies] = 1                             # x - mean is (about) 0 there anyway: avoid dividing by ~0
    return mean, std


def _pixel_stats_reference(X):
    # npnet standardises with one global mean and std, summed exactly in integers (data.norm_stats); this is its
    # per-pixel counterpart: summed in float64, returned in X's dtype, with the pixels that never vary found in the
    # data, where rounding cannot hide them
    mean, std = X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)
    std[X.max(axis=0) == X.min(axis=0)] = 1
    return mean.astype(X.dtype), std.astype(X.dtype)


def _pixel_stats_cases(rng):
    cases = []
    for n, d in ((1, 6), (7, 12), (50, 30)):
        X = rng.random((n, d)) * (rng.random((n, d)) < 0.4)   # mostly-blank 'pixels' in [0, 1)
        X[:, 0] = 0.0                                   # a border pixel: blank in every image
        X[:, -1] = 0.5                                  # a pixel with the same value everywhere
        if n > 1:
            X[:, 1] = 0.0
            X[0, 1] = 0.1                               # inked faintly in one image: a small std, but not 0
        if n == 50:
            X[:, 2] = 0.5 + 2e-6 * (-1) ** np.arange(n)   # varies a little: a real std of 2e-6
        cases.append((X,))
    raw = rng.random((1000, 10)) * (rng.random((1000, 10)) < 0.4)
    raw[:, :2] = 0                                      # two pixels never inked in 1,000 images ...
    X32 = ((raw - 0.1310) / 0.3085).astype(np.float32)  # ... standardised in float32 as X_train is: blank is -0.425
    return cases + [(X32,)]                             # float32 rounds their mean: their std is about 5e-6, not 0


def _guarded(X, std):
    """std with 1 where X never varies, as the reference does: for the mistakes that go wrong elsewhere."""
    return np.where(X.max(axis=0) == X.min(axis=0), 1.0, std)


# The std at the edge pixels: one that never varies, and one that varies a little (std 2e-6, or 0.014 and 0.035
# for pixels inked faintly in one image). A threshold or an eps can take any value, so _PixelStats names these by
# looking at those pixels, not only by comparing with the wrong answers listed.
KEPT_TINY = ("a pixel that is the same in every image kept a tiny std, not 1, so (x - mean) / std blows up where a "
             "drawing inks it. In float32, std == 0 misses such a pixel (and so does a tolerance such as std < 1e-6): "
             "the float32 mean of N equal numbers is rounded, so x - mean is the same small number in every image, "
             "and that is the std (5e-6 on the check's 1,000 float32 images, 7.9e-5 on MNIST's 50,000). Ask the "
             "data instead: a pixel never varies where X.max(axis=0) == X.min(axis=0).")
LOST_SMALL = ("you replaced the stds below a threshold by 1 (or shifted them with an eps): that also overwrites the "
              "real std of a pixel that varies a little, such as 2e-6 or 0.035 here. The reference gives std 1 only "
              "to the pixels that never vary, X.max(axis=0) == X.min(axis=0), and keeps every other std, however "
              "small.")


def _added_eps(eps):
    return (f"you added eps = {eps:.1g} to every std. The reference adds nothing: it gives std 1 to the pixels that "
            f"never vary, X.max(axis=0) == X.min(axis=0), and keeps every other std as it is. An eps this size "
            f"shifts the real stds (2e-6 here becomes {2e-6 + eps:.2g}), and a pixel that never varies gets std eps, "
            f"so a drawing that inks it becomes a huge input.")


BOTH_EDGES = ("both kinds of edge pixel are off: a pixel that never varies kept a tiny std (in float32 the rounded "
              "mean leaves it near 5e-6, not 0), and a pixel that varies a little lost its real std (2e-6 here). "
              "No threshold or eps tells these apart; the reference gives std 1 only where X.max(axis=0) == "
              "X.min(axis=0), and keeps every other std, however small.")


class _PixelStats(_Exercise):
    """pixel_stats, whose std can be off by an eps, or at the edge pixels alone: named by which pixels are off."""

    def _explain_wrong(self, fn):
        return super()._explain_wrong(fn) or self._edge_pixels(fn)

    def _edge_pixels(self, fn):
        """('mistake', message) if the mean is right and the std is off by an eps, or only at the edge pixels."""
        stds = []                                       # per case: yours, the reference's, never varies, tolerances
        for (X,) in self.cases(np.random.default_rng(self.seed)):
            want, out = self.reference(X), _call(fn, (X,))
            if not isinstance(out, (tuple, list)) or len(out) != 2 or not self._close(out[0], want[0]):
                return None
            std = np.asarray(out[1], np.float64)
            if std.shape != want[1].shape:
                return None
            tol = FLOAT32_TOL if X.dtype == np.float32 else (self.rtol, self.atol)
            stds.append((std, want[1].astype(np.float64), X.max(axis=0) == X.min(axis=0), tol))
        # std + eps: every pixel that varies is off by the same eps (and one that never varies has std eps or 1 + eps)
        eps = np.median(np.concatenate([std[~never] - want[~never] for std, want, never, _ in stds]))
        shifted = all(np.allclose(std[~never], want[~never] + eps, *tol)
                      and np.all((std[never] < eps + 0.01) | np.isclose(std[never], 1 + eps, *tol))
                      for std, want, never, tol in stds)
        unshifted = all(np.allclose(std[~never], want[~never], *tol) for std, want, never, tol in stds)
        if eps > 0 and shifted and not unshifted:
            return "mistake", "✗ " + _added_eps(eps)
        # the edge pixels alone: a pixel that never varies kept a tiny std, a pixel that varies a little lost its std
        kept_tiny = lost_small = False
        for std, want, never, tol in stds:
            off = ~np.isclose(std, want, *tol)
            small = ~never & (want < 0.05)
            if (off & ~never & ~small).any() or not (np.abs(std[off & never]) < 0.01).all():
                return None                             # wrong elsewhere too, or not tiny (NaN, 0.5, ...)
            kept_tiny |= (off & never).any()
            lost_small |= (off & small).any()
        message = {(True, False): KEPT_TINY, (False, True): LOST_SMALL,
                   (True, True): BOTH_EDGES}.get((kept_tiny, lost_small))
        return ("mistake", "✗ " + message) if message else None


pixel_stats = _PixelStats(
    "pixel_stats", _pixel_stats_reference, pixel_stats_solution, _pixel_stats_cases,
    "per-pixel mean and std on batches of 1, 7 and 50 and on 1,000 float32 images, with std 1 exactly for the "
    "pixels that never vary and every other std kept, down to 2e-6",
    returns=("mean", "std"),
    mistakes=[
        ("some stds are 0 or tiny: a pixel that is the same in every image (the border) has std 0, or in float32 a "
         "rounding remainder such as 5e-6, and dividing by it (even plus a small eps) gives NaN, inf or a huge "
         "number. Give such pixels std 1.",
         lambda X: (X.mean(axis=0), X.std(axis=0))),
        (KEPT_TINY, lambda X: (X.mean(axis=0), np.where(X.std(axis=0) == 0, 1, X.std(axis=0)))),
        (LOST_SMALL, lambda X: (X.mean(axis=0), np.where(X.std(axis=0) < 1e-3, 1, X.std(axis=0)))),
        (BOTH_EDGES, lambda X: (X.mean(axis=0), np.where(X.std(axis=0) < 3e-6, 1, X.std(axis=0)))),
        (_added_eps(1e-3), lambda X: (X.mean(axis=0), X.std(axis=0) + 1e-3)),
        ("your stats are per image (axis=1), one pair per row: per pixel means over the images, axis=0, one "
         "pair per pixel.", lambda X: (X.mean(axis=1), _guarded(X.T, X.std(axis=1)))),
        ("you returned one global mean and std, repeated: each pixel needs its own, over the images (axis=0).",
         lambda X: (np.full(X.shape[1], X.mean()), np.full(X.shape[1], X.std() if X.max() > X.min() else 1.0))),
        ("you used the sample std (ddof=1): use np.std's default, ddof=0, as npnet's norm stats do; with one "
         "image, ddof=1 even divides by 0.", lambda X: (X.mean(axis=0), _guarded(X, X.std(axis=0, ddof=1)))),
        ("you returned (std, mean): the order is mean first, then std, as the docstring says.",
         lambda X: pixel_stats_solution(X)[::-1]),
        ("your second output is the variance, the square of the std: take X.std(axis=0) (or the square root of "
         "the variance). A variance of 0.04 would divide by 0.04 where the std divides by 0.2.",
         lambda X: (X.mean(axis=0), _guarded(X, X.var(axis=0)))),
        ("your mean is per pixel, but your std is one number for all pixels (X.std() without axis=0): take both "
         "over the images, axis=0, one per pixel.",
         lambda X: (X.mean(axis=0), np.full(X.shape[1], X.std() if X.max() > X.min() else 1.0))),
    ],
    hint_text="X.mean(axis=0) and X.std(axis=0) average over the images, leaving one number per pixel. Then give "
              "std 1 to the pixels that never vary. How do you find them? std == 0 looks right, but a computed std "
              "is rounded: in float32, as X_train is, a never-inked pixel's std is not exactly 0. Ask the data: "
              "compare each pixel's largest and smallest value.",
)
