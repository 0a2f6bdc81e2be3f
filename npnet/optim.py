"""Optimizers: separate objects that read each layer's grads and update its params in place with step()."""

import math

import numpy as np


def flush_subnormals(arrays):
    """Set entries smaller than the dtype's smallest normal number (1.2e-38 in float32) to exactly 0, in place."""
    for a in arrays:
        a[np.abs(a) < np.finfo(a.dtype).tiny] = 0


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
        lr = float(self.lr)  # a Python float keeps float32 params float32
        for p, g, decays in self.pairs:
            if decays and self.weight_decay:
                p *= 1 - lr * self.weight_decay   # p -= lr * weight_decay * p
            p -= lr * g


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction by step count t and L2 added to the gradient."""

    # L2 drives the weights into a dead unit towards 0 until they, and their m, are subnormal (below
    # 1.2e-38 in float32), and the CPU computes with subnormal numbers many times slower: in the MLP
    # recipe 200 such weights made a 256x128 matmul 6x slower by epoch 12. Every flush_every steps,
    # subnormal params, m and v are set to 0, where such a weight then stays. 0 turns this off.
    flush_every = 100

    def __init__(self, model, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.pairs = list(_pairs(model))
        self.lr, self.beta1, self.beta2, self.eps, self.weight_decay = lr, beta1, beta2, eps, weight_decay
        self.m = [np.zeros_like(p) for p, _, _ in self.pairs]
        self.v = [np.zeros_like(p) for p, _, _ in self.pairs]
        self.tmp = [(np.empty_like(p), np.empty_like(p)) for p, _, _ in self.pairs]  # scratch
        self.t = 0

    def step(self):
        """One update of every parameter, in place: no new arrays, and float32 stays float32."""
        self.t += 1
        b1, b2, wd = float(self.beta1), float(self.beta2), float(self.weight_decay)
        # Python floats, not NumPy float64 scalars: those would promote every float32 op to float64.
        step = float(self.lr) * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        eps_hat = float(self.eps) * math.sqrt(1 - b2 ** self.t)  # same as eps on the bias-corrected v
        for (p, g, decays), m, v, (g_l2, tmp) in zip(self.pairs, self.m, self.v, self.tmp):
            if decays and wd:
                np.multiply(p, wd, out=g_l2)
                g_l2 += g                      # g + L2 term; the layer's grads stay as backward left them
                g = g_l2
            np.subtract(g, m, out=tmp)
            tmp *= 1 - b1
            m += tmp                           # m = b1 m + (1 - b1) g, as m += (1 - b1)(g - m)
            np.multiply(g, g, out=tmp)
            tmp -= v
            tmp *= 1 - b2
            v += tmp                           # v = b2 v + (1 - b2) g^2, the same way
            np.sqrt(v, out=tmp)
            tmp += eps_hat
            np.divide(m, tmp, out=tmp)
            tmp *= step
            p -= tmp                           # p -= lr * m_hat / (sqrt(v_hat) + eps)
        if self.flush_every and self.t % self.flush_every == 0:
            flush_subnormals([p for p, _, _ in self.pairs] + self.m + self.v)
