"""Notebook 02's exercises: the Dense layer's backward pass, the ReLU's backward pass, and one Adam step."""

import numpy as np

from ..gradcheck import numerical_grad
from ..layers import Dense, ReLU
from ..optim import Adam
from . import Exercise


# -- Dense.backward -----------------------------------------------------------------------------------------
def dense_backward_solution(X, W, dout):
    """(N, D) input, (D, C) weights, (N, C) upstream gradient dL/dZ -> dX (N, D), dW (D, C), db (C,)."""
    dX = dout @ W.T              # (N, C) @ (C, D) = (N, D): each input feeds every output through W
    dW = X.T @ dout              # (D, N) @ (N, C) = (D, C): the sum over the batch is the inner dimension
    db = dout.sum(axis=0)        # (C,): the bias is added to every row, so its gradient sums over the rows
    return dX, dW, db


def _dense_reference(X, W, dout):
    layer = Dense(*W.shape, dtype=X.dtype)                  # float32 in, float32 out, as in training
    layer.params["W"][...] = W
    layer.forward(X)
    dX = layer.backward(dout)
    return dX, layer.grads["W"].copy(), layer.grads["b"].copy()


def _dense_numerical(X, W, dout):
    b = np.zeros(W.shape[1])

    def loss():                  # sum(Z * dout) has dL/dZ = dout: an arbitrary upstream gradient
        return float(np.sum((X @ W + b) * dout))
    return numerical_grad(loss, X), numerical_grad(loss, W), numerical_grad(loss, b)


def _dense_cases(rng):
    # dout is scaled by 1/N, as the mean loss makes it; (5, 8, 8) has a square W, where a transposed dW has the right shape
    return [(rng.standard_normal((n, d)), rng.standard_normal((d, c)), rng.standard_normal((n, c)) / n)
            for n, d, c in ((1, 6, 4), (7, 12, 10), (32, 20, 16), (5, 8, 8))]


dense_backward = Exercise(
    "dense_backward", _dense_reference, dense_backward_solution, _dense_cases,
    "dX, dW and db match npnet's Dense.backward and central differences (float64) on batches of 1, 5, 7 and 32",
    numerical=_dense_numerical, returns=("dX", "dW", "db"),
    mistakes=[
        ("dW is transposed, (C, D) instead of W's (D, C): the sum over the batch must be the inner dimension, "
         "so X.T (D, N) goes on the left of dout (N, C).",
         lambda X, W, dout: (dout @ W.T, dout.T @ X, dout.sum(axis=0))),
        ("dW and db are N times too small: dout already holds the 1/N of the mean loss (notebook 01 put it "
         "in delta), so the layer must not divide by N again.",
         lambda X, W, dout: (dout @ W.T, X.T @ dout / len(X), dout.sum(axis=0) / len(X))),
        ("db is N times too small: the bias is added to every row, so its gradient is the sum of dout over the "
         "batch, not the mean.",
         lambda X, W, dout: (dout @ W.T, X.T @ dout, dout.mean(axis=0))),
        ("db has shape (N, C): sum dout over the batch (axis=0) to get one number per output unit, (C,).",
         lambda X, W, dout: (dout @ W.T, X.T @ dout, dout)),
        ("db sums over the wrong axis: axis=0 runs over the batch and leaves one entry per output unit, (C,).",
         lambda X, W, dout: (dout @ W.T, X.T @ dout, dout.sum(axis=1))),
    ],
    hint_text="Write Z = X @ W + b in index form, Z[n,k] = sum_i X[n,i] W[i,k] + b[k], and ask which entries of Z "
              "each parameter touches. Then let the shapes decide: dW must be (D, C) = (D, N) @ (N, C), dX must be "
              "(N, D) = (N, C) @ (C, D), and db is (C,). dout already holds the 1/N.",
)


# -- ReLU.backward ------------------------------------------------------------------------------------------
def relu_backward_solution(Z, dA):
    """(N, ...) pre-activation Z, the ReLU's input; (N, ...) upstream gradient dL/dA -> dL/dZ, same shape."""
    return dA * (Z > 0)          # passes where the input was positive; 0 where it was cut (and at Z = 0 exactly)


def _relu_reference(Z, dA):
    relu = ReLU()
    relu.forward(Z)
    return relu.backward(dA)


def _relu_numerical(Z, dA):
    grad = numerical_grad(lambda: float(np.sum(np.maximum(Z, 0) * dA)), Z)
    grad[np.abs(Z) < 1e-5] = 0   # at the kink, Z = 0, there is no derivative: the convention, like npnet's, is 0
    return grad


def _relu_cases(rng):
    cases = [(rng.standard_normal(shape), rng.standard_normal(shape)) for shape in ((1, 9), (7, 12), (32, 16))]
    Z = rng.standard_normal((6, 10))
    Z[rng.random((6, 10)) < 0.3] = 0.0                    # exact zeros, as a ReLU's own output often has
    images = rng.standard_normal((2, 5, 5, 3))              # any shape: a conv layer's (N, H, W, C)
    return cases + [(Z, rng.standard_normal((6, 10))), (images, rng.standard_normal((2, 5, 5, 3)))]


relu_backward = Exercise(
    "relu_backward", _relu_reference, relu_backward_solution, _relu_cases,
    "matches npnet's ReLU.backward and central differences on batches of 1, 7 and 32, an (N, H, W, C) "
    "array, and inputs that are exactly 0",
    numerical=_relu_numerical,
    mistakes=[
        ("you multiplied by Z itself: the derivative of max(0, z) is 1 where z > 0 and 0 elsewhere, so multiply "
         "dA by the mask (Z > 0).", lambda Z, dA: dA * np.maximum(Z, 0)),
        ("you masked by the sign of the gradient dA: the mask comes from the forward input Z, (Z > 0), "
         "whatever the sign of the gradient flowing back.", lambda Z, dA: np.maximum(dA, 0)),
        ("you returned the mask (Z > 0) alone: by the chain rule it multiplies the upstream gradient dA.",
         lambda Z, dA: (Z > 0).astype(float)),
        ("at Z = 0 exactly you let the gradient through: use (Z > 0), not (Z >= 0). max(0, z) has no derivative "
         "at 0; npnet, like most libraries, uses 0 there.", lambda Z, dA: dA * (Z >= 0)),
    ],
    hint_text="A = max(0, Z) acts on each entry alone, so dL/dZ[n,j] = dL/dA[n,j] * dA[n,j]/dZ[n,j], and that "
              "derivative is 1 where Z > 0 and 0 elsewhere. One line: multiply dA by a boolean mask, which "
              "builds a new array. (A masked assignment, dA[Z <= 0] = 0, would change the caller's dA: copy it first.)",
)


# -- one Adam step ------------------------------------------------------------------------------------------
def adam_step_solution(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam step for one array. t is this step's number, 1 for the first step.
    param, grad, m, v: arrays of one shape -> (new param, new m, new v), new arrays of that shape and dtype.
    Not in place: param, m and v are left as they were (npnet.Adam updates in place; this function returns)."""
    m = beta1 * m + (1 - beta1) * grad            # running mean of the gradient
    v = beta2 * v + (1 - beta2) * grad ** 2       # running mean of its square
    m_hat = m / (1 - beta1 ** t)                  # bias correction: m and v start at 0
    v_hat = v / (1 - beta2 ** t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def _efficient_adam(p, g, m, v, t, lr, b1, b2, eps):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    return p - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps), m, v


class _OneArray:
    """A stand-in 'layer' that holds one parameter array, so that npnet.Adam can step it."""

    def __init__(self, param, grad):
        self.params, self.grads = {"W": param}, {"W": grad}


def _adam_reference(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    param, grad = np.array(param), np.array(grad)          # copies, in their own dtype: the step works on them
    opt = Adam([_OneArray(param, grad)], lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    opt.m[0][...], opt.v[0][...], opt.t = m, v, t - 1    # npnet counts steps itself: t - 1 steps done so far
    opt.step()
    return param, opt.m[0], opt.v[0]


def _adam_cases(rng):
    def state(shape, scale, steps):
        """A gradient and the m, v that `steps` earlier gradients of that scale left behind."""
        m, v = np.zeros(shape), np.zeros(shape)
        for _ in range(steps):
            g = rng.standard_normal(shape) * scale
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g ** 2
        return rng.standard_normal(shape) * 0.05, rng.standard_normal(shape) * scale, m, v, steps + 1
    cases = [state((1, 5), 1.0, 0),                      # the first step, t = 1: m = v = 0
             state((7, 4), 1e-3, 0),                     # small gradients, as in a real network
             state((6,), 0.1, 9),                        # t = 10: bias correction still large
             state((3, 8), 1e-3, 40),                    # t = 41
             state((5, 3), 1e-9, 4)]                     # gradients below eps = 1e-8: here eps decides the step
    param, grad, m, v, t = state((4, 4), 1e-4, 2)
    cases.append((param, grad, m, v, t, 3e-4, 0.8, 0.99, 1e-6))   # other hyper-parameters, passed in
    return cases


adam_step = Exercise(
    "adam_step", _adam_reference, adam_step_solution, _adam_cases,
    "new param, m and v match npnet.Adam's arithmetic at steps 1, 3, 5, 10 and 41, for gradients from 1 down "
    "to 1e-9 (below eps) and for other lr, betas and eps",
    returns=("param", "m", "v"), rtol=1e-6, atol=1e-12,
    mistakes=[
        ("you folded the bias correction into lr (the 'efficient' form at the end of Kingma & Ba's algorithm): eps "
         "then divides a differently scaled sqrt(v). npnet, like PyTorch, steps by m_hat / (sqrt(v_hat) + eps).",
         lambda p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8: _efficient_adam(p, g, m, v, t, lr, b1, b2, eps)),
        ("no bias correction: m and v start at 0, so early on they are too small. Divide m by (1 - beta1**t) "
         "and v by (1 - beta2**t) before the step (keep the uncorrected m and v for the next step).",
         lambda p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8: (
             p - lr * (b1 * m + (1 - b1) * g) / (np.sqrt(b2 * v + (1 - b2) * g ** 2) + eps),
             b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g ** 2)),
        ("only m is bias-corrected: v starts at 0 too, so divide it by (1 - beta2**t) as well.",
         lambda p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8: (
             p - lr * ((b1 * m + (1 - b1) * g) / (1 - b1 ** t)) / (np.sqrt(b2 * v + (1 - b2) * g ** 2) + eps),
             b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g ** 2)),
        ("the step uses the old m and v: update both with this step's gradient first, then correct and step.",
         lambda p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8: (
             p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps),
             b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g ** 2)),
        ("eps is missing: where a gradient is tiny (here 1e-9, below eps = 1e-8) dividing by sqrt(v_hat) alone "
         "blows its step up to lr; add eps to the denominator, sqrt(v_hat) + eps.",
         lambda p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8: adam_step_solution(p, g, m, v, t, lr, b1, b2, 0.0)),
        ("the bias correction uses t - 1: t is already this step's number (1 for the first step), so "
         "correct by 1 - beta**t; with t - 1 the first step divides by 0.",
         lambda p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8: adam_step_solution(p, g, m, v, t - 1, lr, b1, b2, eps)),
        ("the bias correction uses t + 1: t is already this step's number, so do not add 1 to it.",
         lambda p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8: adam_step_solution(p, g, m, v, t + 1, lr, b1, b2, eps)),
        ("eps is inside the square root: the step is m_hat / (sqrt(v_hat) + eps). With small gradients, "
         "sqrt(v_hat + eps) is a different, larger number.",
         lambda p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8: (
             p - lr * ((b1 * m + (1 - b1) * g) / (1 - b1 ** t))
             / np.sqrt((b2 * v + (1 - b2) * g ** 2) / (1 - b2 ** t) + eps),
             b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g ** 2)),
        ("the returned m and v are the bias-corrected ones: keep the raw running means for the next step, and "
         "use the corrected m_hat, v_hat only inside this step's update.",
         lambda p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8: (
             adam_step_solution(p, g, m, v, t, lr, b1, b2, eps)[0],
             (b1 * m + (1 - b1) * g) / (1 - b1 ** t), (b2 * v + (1 - b2) * g ** 2) / (1 - b2 ** t))),
        ("the weights of the running means are swapped: m = beta1 * m + (1 - beta1) * g keeps 90% of the old "
         "mean and adds 10% of the new gradient.",
         lambda p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8: adam_step_solution(p, g, m, v, t, lr, 1 - b1, 1 - b2, eps)),
        ("v averages g, not g**2: v is the running mean of the squared gradient (its second moment).",
         lambda p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8: (
             p - lr * ((b1 * m + (1 - b1) * g) / (1 - b1 ** t)) / (np.sqrt((b2 * v + (1 - b2) * g) / (1 - b2 ** t)) + eps),
             b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g)),
        ("the step goes uphill: subtract lr * m_hat / (sqrt(v_hat) + eps) from the parameter.",
         lambda p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8: (
             2 * p - adam_step_solution(p, g, m, v, t, lr, b1, b2, eps)[0], *adam_step_solution(p, g, m, v, t, lr, b1, b2, eps)[1:])),
    ],
    hint_text="Four lines, in this order: update m with g and v with g**2 (each keeps beta of its old value); "
              "divide them by (1 - beta1**t) and (1 - beta2**t) to get m_hat and v_hat; step by "
              "lr * m_hat / (sqrt(v_hat) + eps). Return the raw m and v, not the corrected ones: the next step needs them.",
)
