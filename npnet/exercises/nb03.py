"""Notebook 03's exercises: the confusion matrix, the expected calibration error, and refusal per digit."""

import numpy as np

from .. import metrics
from . import Exercise


# -- the confusion matrix -----------------------------------------------------------------------------------
def confusion_matrix_solution(y, y_pred, num_classes=10):
    """(N,) true labels, (N,) predicted labels -> (num_classes, num_classes) int counts, C[true, predicted]."""
    C = np.zeros((num_classes, num_classes), dtype=np.int64)
    for t, p in zip(y, y_pred):
        C[t, p] += 1                                   # row: the true class; column: what the model said
    return C


def _confusion_cases(rng):
    cases = []
    for n, k in ((1, 10), (50, 10), (300, 3), (500, 10)):
        y = rng.integers(0, k, n)
        y_pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))   # mostly right, like a model
        cases.append((y, y_pred, k))
    y = rng.integers(0, 9, 40)                          # class 9 never occurs, nor is it ever predicted
    cases.append((y, np.where(rng.random(40) < 0.5, y, rng.integers(0, 9, 40)), 10))
    y = rng.integers(0, 10, 30)
    cases.append((y, y.copy(), 10))                     # every answer right: only the diagonal
    return cases


def _fancy_add(y, y_pred, num_classes=10):
    C = np.zeros((num_classes, num_classes), np.int64)
    C[y, y_pred] += 1                                   # repeated pairs are written once, not added
    return C


def _sized_by_labels(y, y_pred, num_classes=10):
    k = int(max(np.max(y), np.max(y_pred))) + 1
    return metrics.confusion_matrix(y, y_pred, k)


confusion_matrix = Exercise(
    "confusion_matrix", metrics.confusion_matrix, confusion_matrix_solution, _confusion_cases,
    "matches npnet.metrics.confusion_matrix on 1 to 500 labels, 3 or 10 classes, with a class that never occurs",
    mistakes=[
        ("rows and columns are swapped: C[i, j] counts the digits whose TRUE class is i and that the model CALLED j, "
         "so index C[y, y_pred], not C[y_pred, y].", lambda y, p, k=10: metrics.confusion_matrix(y, p, k).T),
        ("each (true, predicted) pair is counted at most once: C[y, y_pred] += 1 with arrays writes repeated pairs "
         "once instead of adding them up. Loop over the pairs, or use np.add.at(C, (y, y_pred), 1).", _fancy_add),
        ("you returned fractions of each row (the row-normalised matrix); the confusion matrix holds counts.",
         lambda y, p, k=10: metrics.confusion_matrix(y, p, k) / np.maximum(metrics.confusion_matrix(y, p, k).sum(1, keepdims=True), 1)),
        ("the matrix is sized from the labels that happen to occur (max + 1): use num_classes, so that a class "
         "absent from the data still has its row and column.", _sized_by_labels),
    ],
    hint_text="Start from np.zeros((num_classes, num_classes), dtype=int) and add 1 at [true, predicted] for every "
              "pair: a loop over zip(y, y_pred) is fine. Rows are the true class, columns the prediction.",
)


# -- the expected calibration error -------------------------------------------------------------------------
def ece_solution(probs, y, num_bins=10):
    """(N, C) probs, (N,) int labels -> ECE, a float: equal-width bins (lo, hi] of the confidence max_k p_k."""
    conf = probs.max(axis=1)                            # (N,) confidence: the top probability
    correct = probs.argmax(axis=1) == y                 # (N,) was the top class right?
    edges = np.linspace(0, 1, num_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)             # (N,) the predictions in this bin
        if in_bin.any():                                # weight n_b / N times |accuracy - mean confidence|
            total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return total


def _ece_reference(probs, y, num_bins=10):
    return metrics.reliability(probs, y, num_bins)["ece"]


def _ece_cases(rng):
    cases = []
    for n, bins in ((1, 10), (37, 10), (400, 5), (1000, 15)):
        logits = rng.standard_normal((n, 10)) * rng.uniform(1, 4)
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = np.where(rng.random(n) < 0.7, probs.argmax(axis=1), rng.integers(0, 10, n))
        cases.append((probs, y, bins))
    top = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.95, 0.5, 0.5, 0.5, 0.45, 0.45, 0.55, 0.55, 0.8, 0.65])
    edge = np.zeros((len(top), 10))                     # confidences exactly on bin edges (0.5, 0.8), and exactly 1.0
    edge[:, 0] = top
    edge[:, 1:] = (1 - top[:, None]) / 9
    edge[6:9, :2] = 0.5                                  # a tie: argmax picks class 0
    edge[6:9, 2:] = 0.0
    cases.append((edge, np.array([0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 2, 0, 0, 1, 0]), 10))
    return cases


def _bins(conf, num_bins):
    return np.clip(np.searchsorted(np.linspace(0, 1, num_bins + 1), conf, side="left") - 1, 0, num_bins - 1)


def _gaps(probs, y, num_bins):
    """Per non-empty bin (lo, hi]: count, accuracy, mean confidence."""
    conf, correct = probs.max(1), probs.argmax(1) == y
    b = _bins(conf, num_bins)
    keep = np.unique(b)
    return (np.array([np.sum(b == k) for k in keep]), np.array([correct[b == k].mean() for k in keep]),
            np.array([conf[b == k].mean() for k in keep]))


def _unweighted(probs, y, num_bins=10):
    _, acc, conf = _gaps(probs, y, num_bins)
    return float(np.mean(np.abs(acc - conf)))


def _signed(probs, y, num_bins=10):
    n, acc, conf = _gaps(probs, y, num_bins)
    return float(np.sum(n / len(y) * (acc - conf)))


def _by_correctness(probs, y, num_bins=10):
    conf, correct = probs.max(1), probs.argmax(1) == y
    return float(sum(np.mean(group) * abs(correct[group].mean() - conf[group].mean())
                     for group in (correct, ~correct) if group.any()))


def _true_class_prob(probs, y, num_bins=10):
    conf, correct = probs[np.arange(len(y)), y], probs.argmax(1) == y
    b = _bins(conf, num_bins)
    return float(sum(np.mean(b == k) * abs(correct[b == k].mean() - conf[b == k].mean()) for k in np.unique(b)))


def _closed_open(probs, y, num_bins=10, last_closed=False):
    """The bins [lo, hi), written as a learner would: conf >= lo and conf < hi (optionally <= 1.0 for the last)."""
    conf, correct = probs.max(1), probs.argmax(1) == y
    edges = np.linspace(0, 1, num_bins + 1)
    total = 0.0
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        in_bin = (conf >= lo) & ((conf <= hi) if last_closed and k == num_bins - 1 else (conf < hi))
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return total


def _abs_of_total(probs, y, num_bins=10):
    n, acc, conf = _gaps(probs, y, num_bins)
    return float(abs(np.sum(n / len(y) * (acc - conf))))


def _weighted_by_count(probs, y, num_bins=10):
    n, acc, conf = _gaps(probs, y, num_bins)
    return float(np.sum(n * np.abs(acc - conf)))


ece = Exercise(
    "ece", _ece_reference, ece_solution, _ece_cases,
    "matches npnet.metrics.reliability's ECE on 1 to 1,000 predictions with 5, 10 and 15 bins, with confidences "
    "exactly on bin edges and exactly 1.0",
    mistakes=[
        ("you averaged the bins' gaps equally: weight each bin's |accuracy - confidence| by its share of the "
         "predictions, n_b / N. A bin with 3 predictions must not count as much as one with 9,000.", _unweighted),
        ("the gaps cancel: take the absolute value |acc_b - conf_b| in each bin before adding them up.", _signed),
        ("you grouped the predictions by whether they are right, not by their confidence: sort them into "
         "equal-width bins of max_k p_k, then compare each bin's accuracy with its mean confidence.", _by_correctness),
        ("confidence is the TOP probability, max_k p_k, whichever class it belongs to; you used the probability of "
         "the true label.", _true_class_prob),
        ("your bins are [lo, hi), conf >= lo and conf < hi, so a confidence of exactly 1.0 falls in no bin and is "
         "lost, and one on an edge (0.5) goes to the bin above. The course, like npnet.metrics.reliability, uses "
         "(lo, hi]: conf > lo and conf <= hi.", _closed_open),
        ("your bins are [lo, hi) with 1.0 kept in the last one (as np.digitize or floor(conf * num_bins) make them): "
         "a confidence exactly on an edge, such as 0.5, went into the bin above. The course, like "
         "npnet.metrics.reliability, uses (lo, hi], so 0.5 belongs to (0.4, 0.5]: conf > lo and conf <= hi.",
         lambda p, y, b=10: _closed_open(p, y, b, last_closed=True)),
        ("you took the absolute value of the total, |sum_b (n_b / N)(acc_b - conf_b)|, which is only |overall "
         "accuracy - mean confidence|: over- and under-confident bins still cancel. Take |acc_b - conf_b| in each "
         "bin first, then add up the weighted gaps.", _abs_of_total),
        ("each bin is weighted by its count n_b instead of its share n_b / N, so the ECE comes out N times too "
         "large: divide by the number of predictions.", _weighted_by_count),
        ("num_bins is ignored: with 5 or 15 bins you still used 10. Build the edges from the argument, "
         "np.linspace(0, 1, num_bins + 1).", lambda p, y, b=10: ece_solution(p, y, 10)),
    ],
    hint_text="conf = probs.max(axis=1) and correct = probs.argmax(axis=1) == y. Loop over the bins (lo, hi] of "
              "np.linspace(0, 1, num_bins + 1): a mask (conf > lo) & (conf <= hi) picks a bin's predictions. In each "
              "non-empty bin compare the fraction correct with the mean confidence, and weight that gap by the "
              "bin's share of all N predictions.",
)


# -- refusal per digit (end-of-notebook exercise) -----------------------------------------------------------
def refused_per_digit_solution(probs, y, t):
    """(N, 10) probs, (N,) true labels, threshold t -> (10,) the fraction of each TRUE digit refused (confidence < t).

    A digit with no inputs gets 0.
    """
    refused = probs.max(axis=1) < t                     # kept: confidence >= t, as in the notebook
    count = np.bincount(y, minlength=10)                # (10,) inputs of each true digit
    return np.bincount(y[refused], minlength=10) / np.maximum(count, 1)


def _refusal_cases(rng):
    cases = []
    for n in (1, 60, 2000):
        logits = rng.standard_normal((n, 10)) * 3
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = np.where(rng.random(n) < 0.8, probs.argmax(1), rng.integers(0, 10, n))
        cases.append((probs, y, float(rng.uniform(0.4, 0.8))))
    probs = np.full((6, 10), 0.05)
    probs[:, 3] = 0.55                                   # confidence exactly 0.55, the threshold
    cases.append((probs, np.array([3, 3, 1, 1, 7, 7]), 0.55))
    return cases


def _by_predicted(probs, y, t):
    return refused_per_digit_solution(probs, probs.argmax(axis=1), t)


def _share_of_refused(probs, y, t):
    refused = probs.max(axis=1) < t
    return np.bincount(y[refused], minlength=10) / max(refused.sum(), 1)


def _at_or_below(probs, y, t):
    refused = probs.max(axis=1) <= t
    return np.bincount(y[refused], minlength=10) / np.maximum(np.bincount(y, minlength=10), 1)


def _kept(probs, y, t):
    kept = probs.max(axis=1) >= t
    return np.bincount(y[kept], minlength=10) / np.maximum(np.bincount(y, minlength=10), 1)


refused_per_digit = Exercise(
    "refused_per_digit", refused_per_digit_solution, refused_per_digit_solution, _refusal_cases,
    "matches the model answer on 1, 60 and 2,000 inputs, with a confidence exactly at the threshold",
    mistakes=[
        ("you grouped by the PREDICTED digit; the question is which true digits are refused, so group by y.",
         _by_predicted),
        ("you divided by the number of refused inputs, which gives each digit's share of the refusals; divide by "
         "how many inputs of that digit there are.", _share_of_refused),
        ("a confidence exactly equal to t was refused: the notebook keeps conf >= t, so refuse conf < t.",
         _at_or_below),
        ("that is the fraction KEPT per digit; the question asks for the fraction refused.", _kept),
    ],
    hint_text="refused = probs.max(axis=1) < t. Count refused inputs per true digit with np.bincount(y[refused], "
              "minlength=10) and divide by np.bincount(y, minlength=10) (use np.maximum(count, 1) for absent digits).",
)
