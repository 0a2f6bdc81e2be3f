"""Softmax and cross-entropy, computed together so that nothing overflows and nothing takes log(0)."""

import numpy as np


def softmax(logits):
    """Row-wise softmax: (N, C) -> probs (N, C)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(logits):
    """Row-wise log-softmax via log-sum-exp: (N, C) -> (N, C)."""
    z = logits - logits.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels: (N, C), (N,) -> scalar."""

    def forward(self, logits, y):
        """(N, C), (N,) -> mean loss."""
        logp = log_softmax(logits)
        self.probs = np.exp(logp)
        self.y = y
        return float(-logp[np.arange(len(y)), y].mean())

    def backward(self):
        """Gradient of the mean loss w.r.t. logits: (N, C) = (probs - onehot) / N."""
        grad = self.probs.copy()
        grad[np.arange(len(self.y)), self.y] -= 1
        grad /= len(self.y)
        return grad
