"""Gradient checking: compare backward() with central differences, by relative error, in float64."""

import numpy as np


def rel_error(a, b):
    """||a - b|| / (||a|| + ||b||), over whole arrays of the same shape -> float."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def numerical_grad(f, x, h=1e-5):
    """Central-difference gradient of scalar f() w.r.t. array x (perturbed in place): same shape as x."""
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        grad[i] = (fp - fm) / (2 * h)
    return grad


def check_layer(layer, x, rng=None):
    """Check a layer's input and parameter gradients on x (float64); returns {name: rel_error}."""
    rng = rng if rng is not None else np.random.default_rng(0)
    x = np.array(x, np.float64)
    out = layer.forward(x)
    w = rng.standard_normal(out.shape)  # loss = sum(out * w), so dloss/dout = w

    def f():
        return float(np.sum(layer.forward(x) * w))

    layer.forward(x)
    dx = layer.backward(w)
    analytic = {"x": dx, **{k: g.copy() for k, g in layer.grads.items()}}
    numeric = {"x": numerical_grad(f, x), **{k: numerical_grad(f, p) for k, p in layer.params.items()}}
    return {k: rel_error(analytic[k], numeric[k]) for k in analytic}


def check_loss(loss_fn, logits, y):
    """Check a loss's gradient w.r.t. logits (float64); returns the relative error."""
    logits = np.array(logits, np.float64)
    loss_fn.forward(logits, y)
    analytic = loss_fn.backward()
    numeric = numerical_grad(lambda: loss_fn.forward(logits, y), logits)
    return rel_error(analytic, numeric)


def check_table(results):
    """Format {name: rel_error} as a small table with a pass mark at 1e-6."""
    lines = [f"{'parameter':<24}{'rel. error':>12}  ok"]
    lines += [f"{k:<24}{v:>12.2e}  {'yes' if v < 1e-6 else 'NO'}" for k, v in results.items()]
    return "\n".join(lines)


def check_model(model, X, y):
    """Check every parameter of a whole model under softmax cross-entropy (float64); returns {'layer{i}.{name}': rel_error}."""
    from .losses import SoftmaxCrossEntropy
    from .model import backward, forward

    loss_fn = SoftmaxCrossEntropy()

    def f():
        return loss_fn.forward(forward(model, X), y)

    f()
    backward(model, loss_fn.backward())
    analytic = {f"layer{i}.{k}": g.copy() for i, layer in enumerate(model) for k, g in layer.grads.items()}
    numeric = {f"layer{i}.{k}": numerical_grad(f, p) for i, layer in enumerate(model) for k, p in layer.params.items()}
    return {k: rel_error(analytic[k], numeric[k]) for k in analytic}
