"""Optimizers: separate objects that read each layer's grads and update its params in place with step()."""

import numpy as np


def _pairs(model):
    """Every (param, grad, decays) triple in a model; L2 applies to weights, not biases."""
    for layer in model:
        for name, p in layer.params.items():
            yield p, layer.grads[name], p.ndim > 1


class SGD:
    """Plain gradient descent with optional L2: p -= lr * (g + weight_decay * p)."""

    def __init__(self, model, lr=0.1, weight_decay=0.0):
        self.pairs, self.lr, self.weight_decay = list(_pairs(model)), lr, weight_decay

    def step(self):
        """Update every parameter once."""
        for p, g, decays in self.pairs:
            if decays and self.weight_decay:
                g = g + self.weight_decay * p
            p -= self.lr * g


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction by step count t and L2 added to the gradient."""

    def __init__(self, model, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.pairs = list(_pairs(model))
        self.lr, self.beta1, self.beta2, self.eps, self.weight_decay = lr, beta1, beta2, eps, weight_decay
        self.m = [np.zeros_like(p) for p, _, _ in self.pairs]
        self.v = [np.zeros_like(p) for p, _, _ in self.pairs]
        self.tmp = [np.empty_like(p) for p, _, _ in self.pairs]
        self.t = 0

    def step(self):
        """One update of every parameter; the work happens in place in m, v and a scratch buffer."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step = self.lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        eps_hat = self.eps * np.sqrt(1 - b2 ** self.t)  # same as eps on the bias-corrected v
        for (p, g, decays), m, v, tmp in zip(self.pairs, self.m, self.v, self.tmp):
            if decays and self.weight_decay:
                np.multiply(p, self.weight_decay, out=tmp)
                tmp += g
                g = tmp
            m *= b1
            m += (1 - b1) * g              # m = b1 m + (1 - b1) g
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - b2
            v += tmp                       # v = b2 v + (1 - b2) g^2
            np.sqrt(v, out=tmp)
            tmp += eps_hat
            np.divide(m, tmp, out=tmp)
            tmp *= step
            p -= tmp                       # p -= lr * m_hat / (sqrt(v_hat) + eps)
