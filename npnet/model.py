"""A model is a list of layers: run forward in order, backward in reverse; modelfile.py saves and loads it."""

import numpy as np

from . import layers as L
from .losses import softmax
from .modelfile import MODELS_DIR, ModelError, load, save  # noqa: F401  (a model's file, re-exported here)


def mlp(sizes=(784, 256, 128, 10), rng=None):
    """Dense-ReLU-...-Dense for the given layer sizes: (N, sizes[0]) -> logits (N, sizes[-1])."""
    rng = rng if rng is not None else np.random.default_rng(0)
    model = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        model += [L.Dense(fan_in, fan_out, rng), L.ReLU()]
    return model[:-1]


def forward(model, X):
    """Run every layer in order: (N, ...) -> logits (N, C)."""
    for layer in model:
        X = layer.forward(X)
    return X


def backward(model, grad, input_grad=True):
    """Run every layer's backward in reverse: dlogits (N, C) -> dX (N, ...), or None if not input_grad."""
    if input_grad:
        for layer in reversed(model):
            grad = layer.backward(grad)
        return grad
    first = next(i for i, layer in enumerate(model) if layer.params)  # below it nothing needs a gradient
    for layer in reversed(model[first + 1:]):
        grad = layer.backward(grad)
    return model[first].backward(grad, input_grad=False)              # training: skip dX, which nothing uses


def set_training(model, training):
    """Switch train/eval behaviour (dropout) for every layer."""
    for layer in model:
        layer.training = training


def predict_proba(model, X, batch_size=512):
    """Class probabilities in eval mode, in chunks: (N, ...) -> probs (N, C); each layer's mode is then restored."""
    modes = [layer.training for layer in model]
    set_training(model, False)
    try:
        chunks = [X[i:i + batch_size] for i in range(0, len(X), batch_size)]
        chunks = chunks or [np.zeros((1, *np.shape(X)[1:]), np.float32)]   # no rows: one zero row gives (0, C)
        return np.concatenate([softmax(forward(model, x)) for x in chunks])[:len(X)]
    finally:
        for layer, training in zip(model, modes):
            layer.training = training


def predict(model, X, batch_size=512):
    """Predicted class per row: (N, ...) -> (N,) int."""
    return predict_proba(model, X, batch_size).argmax(axis=1)
