"""Metrics from labels and probs: accuracy, confusions, top-k, calibration and accuracy when refusing inputs."""

import numpy as np


def accuracy(y_pred, y):
    """Fraction of matching labels: (N,), (N,) -> float."""
    return float(np.mean(np.asarray(y_pred) == np.asarray(y)))


def confusion_matrix(y, y_pred, num_classes=10):
    """Counts C[true, predicted]: (N,), (N,) -> (num_classes, num_classes) int."""
    C = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(C, (np.asarray(y), np.asarray(y_pred)), 1)
    return C


def per_class_accuracy(y, y_pred, num_classes=10):
    """Recall of each class: (N,), (N,) -> (num_classes,) float."""
    C = confusion_matrix(y, y_pred, num_classes)
    return C.diagonal() / np.maximum(C.sum(axis=1), 1)


def format_confusion(C):
    """A confusion matrix as a text table, rows = true digit, columns = predicted."""
    lines = ["true\\pred " + " ".join(f"{j:>5}" for j in range(len(C)))]
    lines += [f"{i:>9} " + " ".join(f"{c:>5}" for c in row) for i, row in enumerate(C)]
    return "\n".join(lines)


def most_confused_pairs(C, k=5):
    """The k unordered class pairs with the most errors both ways: (C, C) -> [(i, j, C[i, j] + C[j, i])]."""
    C = np.asarray(C)
    pairs = [(i, j, int(C[i, j] + C[j, i])) for i in range(len(C)) for j in range(i + 1, len(C))]
    return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))[:k]


def top_k(probs, k=2):
    """The k most likely classes and their probabilities, best first: (N, C) -> (N, k) int, (N, k)."""
    idx = np.argsort(-np.asarray(probs), axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(np.asarray(probs), idx, axis=1)


def _conf_correct(probs, y):
    """Top-class probability and whether it is right: (N, C), (N,) -> (N,) float64, (N,) bool."""
    probs, y = np.asarray(probs, np.float64), np.asarray(y)
    if probs.ndim != 2 or y.shape != (len(probs),):
        raise ValueError(f"want probs (N, C) and labels (N,), got {probs.shape} and {y.shape}")
    return probs.max(axis=1), probs.argmax(axis=1) == y


def reliability(probs, y, num_bins=10):
    """Top-class confidence vs accuracy in bins (lo, hi]: (N, C), (N,) -> dict of conf, acc, count (B,), ece."""
    conf, correct = _conf_correct(probs, y)
    edges = np.linspace(0, 1, num_bins + 1)
    b = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, num_bins - 1)
    count = np.bincount(b, minlength=num_bins)
    with np.errstate(invalid="ignore"):                   # empty bins give NaN
        bin_conf = np.bincount(b, conf, num_bins) / count
        bin_acc = np.bincount(b, correct, num_bins) / count
    ece = float(np.nansum(count / len(conf) * np.abs(bin_acc - bin_conf)))
    return {"conf": bin_conf, "acc": bin_acc, "count": count, "ece": ece}


def accuracy_coverage(probs, y):
    """Keep inputs whose top prob is >= each threshold: (N, C), (N,) -> threshold, coverage, accuracy (M,)."""
    conf, correct = _conf_correct(probs, y)
    order = np.argsort(-conf, kind="stable")
    conf, correct = conf[order], correct[order]
    last = np.r_[conf[1:] != conf[:-1], True]             # keep ties together: cut only where conf changes
    kept = np.arange(1, len(conf) + 1)[last]
    return conf[last], kept / len(conf), np.cumsum(correct)[last] / kept


def reject_threshold(probs, y, target=0.995):
    """The lowest threshold whose kept inputs reach target accuracy: (N, C), (N,) -> threshold, coverage, acc."""
    threshold, coverage, acc = accuracy_coverage(probs, y)
    ok = np.flatnonzero(acc >= target)
    if len(ok) == 0:
        raise ValueError(f"no threshold reaches accuracy {target}")
    i = ok[-1]
    return float(threshold[i]), float(coverage[i]), float(acc[i])
