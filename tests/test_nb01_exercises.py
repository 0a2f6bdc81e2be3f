"""Notebook 01's exercises against answers a learner might write: other correct forms pass, and wrong answers
outside the catalogue's own functions still get the message meant for them."""

import numpy as np

from npnet import losses
from npnet.exercises import nb01


def _means(X_train, y_train):
    return [X_train[y_train == c].mean(axis=0) for c in np.unique(y_train)]


def test_other_correct_forms_of_the_nearest_mean_classifier_pass():
    answers = [
        lambda Xt, yt, X: np.linalg.norm(X[:, None, :] - np.stack(_means(Xt, yt))[None], axis=2).argmin(axis=1),
        lambda Xt, yt, X: np.stack([np.sqrt(((X - m) ** 2).sum(axis=1)) for m in _means(Xt, yt)], axis=1).argmin(axis=1),
    ]
    for answer in answers:
        assert nb01.nearest_mean.diagnose(answer)[0] == "pass"
    as_floats = lambda Xt, yt, X: nb01.nearest_mean_solution(Xt, yt, X).astype(float)     # right labels, as floats
    verdict, message = nb01.nearest_mean.diagnose(as_floats)
    assert verdict == "mistake" and "as floats" in message, message


def test_nearest_mean_mistakes_written_differently_are_still_named():
    by_abs_sum = lambda Xt, yt, X: np.abs(np.stack([(X - m).sum(axis=1) for m in _means(Xt, yt)], axis=1)).argmin(axis=1)
    verdict, message = nb01.nearest_mean.diagnose(by_abs_sum)
    assert verdict == "mistake" and "total ink" in message, message
    farthest_by_norm = lambda Xt, yt, X: np.stack([np.linalg.norm(X - m, axis=1) for m in _means(Xt, yt)], axis=1).argmax(axis=1)
    verdict, message = nb01.nearest_mean.diagnose(farthest_by_norm)
    assert verdict == "mistake" and "farthest" in message, message


def test_a_summed_cross_entropy_is_named_whether_or_not_it_is_stable():
    stable_sum = lambda z, y: -losses.log_softmax(z)[np.arange(len(y)), y].sum()
    verdict, message = nb01.cross_entropy.diagnose(stable_sum)
    assert verdict == "mistake" and "exactly N times too large" in message, message
    naive_sum = lambda z, y: -np.log(np.exp(z)[np.arange(len(y)), y] / np.exp(z).sum(axis=1)).sum()
    verdict, message = nb01.cross_entropy.diagnose(naive_sum)
    assert verdict == "mistake" and "N times too large" in message and "NaN" in message, message
    softmax_then_log_sum = lambda z, y: -np.log(losses.softmax(z)[np.arange(len(y)), y]).sum()
    verdict, message = nb01.cross_entropy.diagnose(softmax_then_log_sum)
    assert verdict == "mistake" and "N times too large" in message and "inf" in message, message


# -- the mistakes a fresh reader made, written again here in their own words: each must get its own message ------
def _stable(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _named(exercise, answer, *words):
    verdict, message = exercise.diagnose(answer)
    assert verdict == "mistake" and all(w in message for w in words), message
    return message


def test_nearest_mean_one_class_short_is_named_and_other_wrong_labels_are_counted():
    def one_short(Xt, yt, X):
        templates = np.stack([Xt[yt == c].mean(0) for c in range(yt.max())])   # forgets the last class
        return ((X[:, None, :] - templates[None]) ** 2).sum(-1).argmin(1)
    _named(nb01.nearest_mean, one_short, "one template too few", "y_train.max() + 1")

    def median_templates(Xt, yt, X):
        templates = np.stack([np.median(Xt[yt == c], axis=0) for c in range(yt.max() + 1)])
        return ((X[:, None, :] - templates[None]) ** 2).sum(-1).argmin(1)
    verdict, message = nb01.nearest_mean.diagnose(median_templates)
    assert verdict == "wrong" and "labels differ" in message and "largest difference" not in message, message


def test_softmax_mistakes_a_learner_writes_are_named():
    def no_keepdims(z):
        e = np.exp(z - z.max(axis=1)[:, None])
        return e / e.sum(axis=1)
    _named(nb01.softmax, no_keepdims, "keepdims=True")
    _named(nb01.softmax, lambda z: np.exp(z - np.min(z, 1, keepdims=True)) / np.exp(z - np.min(z, 1, keepdims=True)).sum(1, keepdims=True),
           "row's min")
    _named(nb01.softmax, lambda z: np.exp(z - z.mean(1)[:, None]) / np.exp(z - z.mean(1)[:, None]).sum(1)[:, None],
           "row's mean")
    for limit in (60, 100, 500):
        clipped = lambda z, c=limit: np.exp(z.clip(-c, c)) / np.exp(z.clip(-c, c)).sum(1, keepdims=True)
        _named(nb01.softmax, clipped, "clipped the logits")
    _named(nb01.softmax, lambda z: np.exp(z - z.max(1, keepdims=True)), "exp(z - max) itself")
    _named(nb01.softmax, lambda z: np.exp(z - z.max(1)[:, None]) / np.sum(np.exp(z - z.max(1)[:, None]), 0, keepdims=True),
           "column sums")


def test_a_float32_softmax_and_float32_gradients_both_pass():
    assert nb01.softmax.diagnose(lambda z: _stable(z.astype(np.float32)))[0] == "pass"

    def grads32(X, W, b, y):
        X, W, b = X.astype(np.float32), W.astype(np.float32), b.astype(np.float32)
        d = (_stable(X @ W + b) - np.eye(W.shape[1], dtype=np.float32)[y]) / len(y)
        return X.T @ d, d.sum(0)
    assert nb01.softmax_grads.diagnose(grads32)[0] == "pass"
    verdict, _ = nb01.softmax.diagnose(lambda z: (_stable(z) * 1.001).astype(np.float32))   # float32 is no excuse
    assert verdict == "wrong"


def test_cross_entropy_mistakes_a_learner_writes_are_named():
    pick = lambda a, y: a[np.arange(len(y)), y]
    for eps in (1e-7, 1e-9, 1e-12, 1e-15):
        message = _named(nb01.cross_entropy, lambda z, y, e=eps: -np.mean(np.log(pick(_stable(z), y) + e)), "eps")
        assert f"{-np.log(eps):.0f}" in message, message
    _named(nb01.cross_entropy, lambda z, y: -np.mean(np.log(np.clip(pick(_stable(z), y), 1e-9, 1.0))), "1e-09")
    _named(nb01.cross_entropy, lambda z, y: -np.mean(pick(z - np.log(np.sum(np.exp(z), 1))[:, None], y)),
           "log-sum-exp takes exp(z) before")
    _named(nb01.cross_entropy, lambda z, y: -np.mean(_log_softmax(z)[:, y]), "np.arange(N), y")
    _named(nb01.cross_entropy, lambda z, y: -np.mean(pick(_log_softmax(z), y)) / np.log(10), "ln 10")
    _named(nb01.cross_entropy, lambda z, y: -np.mean(np.log10(pick(_stable(z), y))), "ln 10", "inf")
    _named(nb01.cross_entropy, lambda z, y: -pick(_log_softmax(z), y), "per-image losses")
    onehot = lambda z, y: np.eye(z.shape[1])[y]
    _named(nb01.cross_entropy, lambda z, y: -np.mean(np.sum(onehot(z, y) * np.log(_stable(z)), 1)), "0 * log(0)")
    _named(nb01.cross_entropy, lambda z, y: -np.mean(onehot(z, y) * _log_softmax(z)), "divided by C")


def test_softmax_grads_mistakes_a_learner_writes_are_named():
    def grads(delta_of, scale_W=None, scale_b=None, db_axis=0):
        def answer(X, W, b, y):
            n = len(y)
            d = delta_of(X @ W + b, y, W.shape[1])
            sW = 1 / n if scale_W is None else scale_W(X, n)
            sb = 1 / n if scale_b is None else scale_b(X, n)
            return X.T @ d * sW, d.sum(axis=db_axis) * sb
        return answer

    right = lambda z, y, C: _stable(z) - np.eye(C)[y]
    naive = lambda z, y, C: np.exp(z) / np.exp(z).sum(1, keepdims=True) - np.eye(C)[y]
    _named(nb01.softmax_grads, grads(naive), "NaN", "stable softmax")
    _named(nb01.softmax_grads, grads(right, scale_b=lambda X, n: 1), "db is N times too large")
    _named(nb01.softmax_grads, grads(right, scale_W=lambda X, n: 1), "dW is N times too large")
    _named(nb01.softmax_grads, grads(right, db_axis=1), "axis=1")
    _named(nb01.softmax_grads, grads(lambda z, y, C: _stable(z) - y[:, None]), "one-hot")

    def columns(z, y, C):
        d = _stable(z)
        d[:, y] = d[:, y] - 1
        return d
    _named(nb01.softmax_grads, grads(columns), "whole columns")
    per_D = lambda X, n: 1 / X.shape[1]
    _named(nb01.softmax_grads, grads(right, scale_W=per_D, scale_b=per_D), "X.shape[1]")


def test_pixel_stats_mistakes_a_learner_writes_are_named():
    def safe(X, s):
        return np.where(np.ptp(X, axis=0) == 0, 1.0, s)
    _named(nb01.pixel_stats, lambda X: (safe(X, X.std(0)), X.mean(0)), "(std, mean)")
    _named(nb01.pixel_stats, lambda X: (X.mean(0), safe(X, X.var(0))), "variance")
    _named(nb01.pixel_stats, lambda X: (X.mean(0), X.std() * np.ones(X.shape[1])), "one number for all pixels")


def test_other_correct_forms_of_pixel_stats_pass():
    def in_float64(X):                                  # exact for float32 data: std == 0 is safe there
        X64 = X.astype(np.float64)
        mean, std = X64.mean(0), X64.std(0)
        return mean.astype(X.dtype), np.where(std == 0, 1, std).astype(X.dtype)
    answers = [lambda X: (X.mean(0), np.where(np.ptp(X, 0) == 0, 1, X.std(0))),
               lambda X: (X.mean(0), np.where((X == X[0]).all(0), 1, X.std(0))), in_float64]
    for answer in answers:
        assert nb01.pixel_stats.diagnose(answer)[0] == "pass"
    verdict, message = nb01.pixel_stats.diagnose(lambda X: in_float64(X.astype(np.float64)))   # float64 returned
    assert verdict == "mistake" and "turns float32 inputs into float64" in message, message


# -- the float32 case and the tiny std: without them, each of these answers would pass ------------------------------
def test_the_float32_case_has_never_varying_pixels_whose_float32_std_is_not_0():
    X = nb01.pixel_stats.cases(np.random.default_rng(nb01.pixel_stats.seed))[-1][0]
    never = X.max(axis=0) == X.min(axis=0)
    std32 = X.std(axis=0)[never]
    assert X.dtype == np.float32 and never.sum() == 2 and X.astype(np.float64).std(axis=0)[never].max() == 0
    assert 4e-6 < std32.min() <= std32.max() < 6e-6, std32         # "5e-6" in the messages; above 2e-6, below 1e-5
    assert "5e-6" in nb01.KEPT_TINY and "5e-6" in nb01.BOTH_EDGES


def test_std_equal_to_0_on_float32_data_is_named():
    for answer in (lambda X: (X.mean(0), np.where(X.std(0) == 0, 1.0, X.std(0))),
                   lambda X: (X.mean(0), np.where(X.std(0) < 1e-6, 1.0, X.std(0)))):   # a tolerance below the rounding
        _named(nb01.pixel_stats, answer, "std == 0 misses", "float32", "X.max(axis=0) == X.min(axis=0)")

    def counted(X):                                     # the mask built first, as a learner might
        mean, std = X.mean(axis=0), X.std(axis=0)
        std[std == 0] = 1.0
        return mean, std
    _named(nb01.pixel_stats, counted, "std == 0 misses")


def test_a_tiny_real_std_overwritten_by_a_threshold_or_an_eps_is_named():
    for t in (1e-5, 1e-4, 1e-2, 0.04):                  # catch float32's rounding (5e-6), but also the real 2e-6
        _named(nb01.pixel_stats, lambda X, t=t: (X.mean(0), np.where(X.std(0) < t, 1.0, X.std(0))),
               "varies a little", "keeps every other std")
    _named(nb01.pixel_stats, lambda X: (X.mean(0), np.where(X.std(0) < 3e-6, 1.0, X.std(0))), "both kinds")
    _named(nb01.pixel_stats, lambda X: (X.mean(0), np.maximum(X.std(0), 1e-3)), "both kinds")
    for eps in (1e-6, 1e-5, 1e-4, 1e-2):
        message = _named(nb01.pixel_stats, lambda X, e=eps: (X.mean(0), X.std(0) + e), f"eps = {eps:.1g}",
                         "The reference adds nothing")
        assert "keeps every other std as it is" in message
    _named(nb01.pixel_stats, lambda X: (X.mean(0), X.std(0) + 1e-8), "0 or tiny", "std 1")   # too small to see


# -- a hard-coded 10 classes: the cases with 3 and 17 classes name it ----------------------------------------------
def test_a_hard_coded_ten_classes_is_named():
    def onehot10(y):
        return np.eye(10)[y]
    _named(nb01.softmax, lambda z: _stable(z.reshape(-1, 10)), "assumes 10 classes", "logits.shape[1]")
    _named(nb01.cross_entropy, lambda z, y: -(onehot10(y) * _log_softmax(z)).sum(1).mean(), "assumes 10 classes")
    grads = lambda X, W, b, y: (X.T @ (_stable(X @ W + b) - onehot10(y)) / len(y),
                                (_stable(X @ W + b) - onehot10(y)).sum(0) / len(y))
    _named(nb01.softmax_grads, grads, "assumes 10 classes", "W.shape[1]")


# -- softmax_grads: the float64 one-hot, and a forgotten or wrong bias gradient --------------------------------------
def test_a_float64_one_hot_is_named_as_the_cause_of_the_float64_leak():
    def answer(onehot):
        def grads(X, W, b, y):
            delta = (_stable(X @ W + b) - onehot(X, W, y)) / len(y)
            return X.T @ delta, delta.sum(axis=0)
        return grads
    message = _named(nb01.softmax_grads, answer(lambda X, W, y: np.eye(W.shape[1])[y]),
                     "np.eye(C)[y] is float64", "np.eye(C, dtype=X.dtype)[y]", "float32 in, float32 out")
    assert "for dW" not in message, message
    assert nb01.softmax_grads.diagnose(answer(lambda X, W, y: np.eye(W.shape[1], dtype=X.dtype)[y]))[0] == "pass"
    # cross_entropy returns one number, which may be a Python float: the same one-hot passes there (no dtype rule)
    ce = lambda z, y: -(np.eye(z.shape[1])[y] * _log_softmax(z)).sum(axis=1).mean()
    assert nb01.cross_entropy.diagnose(ce)[0] == "pass"


def test_a_forgotten_bias_is_named():
    def grads(logits_of, db_of):
        def answer(X, W, b, y):
            delta = (_stable(logits_of(X, W, b)) - np.eye(W.shape[1], dtype=X.dtype)[y]) / len(y)
            return X.T @ delta, db_of(delta, b)
        return answer
    right_db = lambda delta, b: delta.sum(axis=0)
    _named(nb01.softmax_grads, grads(lambda X, W, b: X @ W, right_db), "leaves out the bias", "X @ W + b")
    _named(nb01.softmax_grads, grads(lambda X, W, b: X @ W + b, lambda delta, b: np.zeros(len(b))), "db is all zeros")
    message = _named(nb01.softmax_grads, grads(lambda X, W, b: X @ W + b, lambda delta, b: b),   # any other wrong db
                     "dW is right, but db is not", "delta.sum(axis=0)")
    assert "largest difference" in message, message
