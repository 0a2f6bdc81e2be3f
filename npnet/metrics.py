"""Metrics: accuracy, the confusion matrix and per-class accuracy, from integer labels."""

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
