"""One CNN training step in several conv designs, timed in one run: which choices made npnet's CNN step what it is.

    python benchmarks/conv_variants.py              # 30 timed steps per variant, then a markdown table
    python benchmarks/conv_variants.py --steps 3    # a quick check that every variant still agrees with npnet

A step is what npnet.fit does per batch: forward, loss, backward (no input gradient for the first conv), Adam. The
network is the CNN recipe's (npnet.recipes.cnn), batch 128, no augmentation, on real MNIST batches. The variants:

  (a) channels first (N, C, H, W), ReLU then pool: npnet's conv.py before the channels-last rewrite (copied below)
  (b) channels last (N, H, W, C), ReLU then pool
  (c) channels last, pool then ReLU: the shipped npnet, npnet.recipes.cnn as it is
  (d) as (c), with the input gradient as a 'full' convolution: im2col of the padded output gradient @ the flipped kernel
  (e) as (c), with im2col and its matmuls done 16 or 32 examples at a time, so no whole-batch cols exist

Before timing, each variant gets the shipped network's weights (converted for (a)) and must reproduce its logits and
every gradient on one batch. The variants then take turns, a few steps each, so a change in the machine's load hits
all of them; each row is the median of its steps. A last row times the shipped step's matrix multiplies alone (the
same products on random arrays): the floor of an im2col design in NumPy. PyTorch with fused Adam is timed after the
NumPy variants, if torch is installed.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npnet import model as M  # noqa: E402
from npnet.conv import Conv2D, Flatten, MaxPool2D, Reshape, col2im, im2col  # noqa: E402
from npnet.layers import Dense, Dropout, Layer, ReLU  # noqa: E402
from npnet.losses import SoftmaxCrossEntropy  # noqa: E402
from npnet.optim import Adam  # noqa: E402
from npnet.recipes import CNN, cnn  # noqa: E402


# ---------------------------------------------------------------- (a) channels first: conv.py before the rewrite
class NCHWConv2D(Layer):
    """The old Conv2D (stride 1, no padding, as the recipe uses it): (N, C, H, W) -> (N, F, Ho, Wo), W (F, C, k, k)."""

    def __init__(self, in_channels, out_channels, kernel_size):
        self.k, self.F = kernel_size, out_channels
        self.params = {"W": np.zeros((out_channels, in_channels, kernel_size, kernel_size), np.float32),
                       "b": np.zeros(out_channels, np.float32)}
        self.grads = {n: np.zeros_like(v) for n, v in self.params.items()}

    def forward(self, x):
        k, F, C = self.k, self.F, x.shape[1]
        self.x_shape = x.shape
        N, Ho, Wo = x.shape[0], x.shape[2] - k + 1, x.shape[3] - k + 1
        windows = sliding_window_view(x, (k, k), axis=(2, 3))                       # (N, C, Ho, Wo, k, k)
        self.cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(C * k * k, -1)      # (C·k·k, N·Ho·Wo)
        out = self.params["W"].reshape(F, -1) @ self.cols + self.params["b"][:, None]
        return out.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)                      # a view, not a copy

    def backward(self, grad, input_grad=True):
        F = self.F
        G = grad.transpose(1, 0, 2, 3).reshape(F, -1)                               # (F, N·Ho·Wo)
        self.grads["W"][...] = (G @ self.cols.T).reshape(self.grads["W"].shape)
        self.grads["b"][...] = G.sum(axis=1)
        if not input_grad:
            return None
        N, C, H, W = self.x_shape
        k, Ho, Wo = self.k, H - self.k + 1, W - self.k + 1
        d = (self.params["W"].reshape(F, -1).T @ G).reshape(C, k, k, N, Ho, Wo)
        dx = np.zeros((C, N, H, W), grad.dtype)
        for i in range(k):
            for j in range(k):
                dx[:, :, i:i + Ho, j:j + Wo] += d[:, i, j]
        return dx.transpose(1, 0, 2, 3)


class NCHWMaxPool2D(Layer):
    """The old MaxPool2D(2): max of four strided views; backward finds the max again by comparing with the output."""

    def _offsets(self, x, Ho, Wo):
        return [x[:, :, i:i + 2 * Ho:2, j:j + 2 * Wo:2] for i in range(2) for j in range(2)]

    def forward(self, x):
        self.x = x
        views = self._offsets(x, x.shape[2] // 2, x.shape[3] // 2)
        self.out = views[0].copy(order="K")
        for v in views[1:]:
            np.maximum(self.out, v, out=self.out)
        return self.out.copy(order="K")

    def backward(self, grad):
        dx = np.zeros_like(self.x, dtype=grad.dtype)
        taken = np.zeros(self.out.shape, bool)
        for v, d in zip(self._offsets(self.x, *grad.shape[2:]), self._offsets(dx, *grad.shape[2:])):
            hit = (v == self.out) & ~taken
            np.multiply(grad, hit, out=d)
            taken |= hit
        return dx


# ---------------------------------------------------------------- (d), (e): the shipped Conv2D, one part done otherwise
class FullConvDX(Conv2D):
    """(d): dX = the output gradient, padded by k-1, correlated with the kernel flipped in space and with C and F
    swapped: one more im2col and matmul instead of col2im's k·k strided adds (stride 1, no padding)."""

    def backward(self, grad, input_grad=True):
        super().backward(grad, input_grad=False)                                    # dW, db as npnet does them
        if not input_grad:
            return None
        k = self.kernel_size
        padded = np.pad(grad, ((0, 0), (k - 1, k - 1), (k - 1, k - 1), (0, 0)))
        flipped = self.params["W"][::-1, ::-1].transpose(0, 1, 3, 2).reshape(-1, self.in_channels)  # (k·k·F, C)
        return (im2col(padded, k) @ flipped).reshape(self.x_shape)


class ChunkedConv2D(Conv2D):
    """(e): im2col and the matmuls for `chunk` examples at a time, so that each chunk's cols might stay in cache;
    backward builds the cols again instead of keeping the whole batch's (stride 1, no padding)."""

    chunk = 32

    def forward(self, x):
        k, F, c = self.kernel_size, self.out_channels, self.chunk
        self.x, self.x_shape = x, x.shape
        out = np.empty((len(x), x.shape[1] - k + 1, x.shape[2] - k + 1, F), x.dtype)
        for i in range(0, len(x), c):
            np.matmul(im2col(x[i:i + c], k), self.params["W"].reshape(-1, F), out=out[i:i + c].reshape(-1, F))
        out += self.params["b"]
        return out

    def backward(self, grad, input_grad=True):
        k, F, c, x = self.kernel_size, self.out_channels, self.chunk, self.x
        dW, W = self.grads["W"].reshape(-1, F), self.params["W"].reshape(-1, F)
        dW[...] = 0
        dx = np.empty(self.x_shape, grad.dtype) if input_grad else None
        for i in range(0, len(x), c):
            G = grad[i:i + c].reshape(-1, F)
            dW += im2col(x[i:i + c], k).T @ G
            if input_grad:
                dx[i:i + c] = col2im(G @ W.T, x[i:i + c].shape, k)
        np.sum(grad.reshape(-1, F), axis=0, out=self.grads["b"])
        return dx


def chunked(size):
    return type(f"ChunkedConv2D{size}", (ChunkedConv2D,), {"chunk": size})


# ---------------------------------------------------------------- the variants, all with the recipe's layer sizes
def network(conv, pool, pool_first=True, image=(28, 28, 1)):
    """The recipe's network with the given conv and pool classes: Reshape, 2 × (conv, pool, ReLU), dense part."""
    k, c_in, side, model = CNN["kernel_size"], 1, 28, [Reshape(image)]
    for c_out in CNN["channels"]:
        block = [pool(), ReLU()] if pool_first else [ReLU(), pool()]
        model += [conv(c_in, c_out, k)] + block
        c_in, side = c_out, (side - k + 1) // 2
    return model + [Flatten(), Dense(c_in * side * side, CNN["hidden"]), ReLU(), Dropout(CNN["dropout"]),
                    Dense(CNN["hidden"], 10)]


SIDE = ((28 - CNN["kernel_size"] + 1) // 2 - CNN["kernel_size"] + 1) // 2  # the last pool's output: 4×4


def to_nchw(name, layer_index, value):
    """A shipped (channels-last) param or grad in the old layout: conv W (k, k, C, F) -> (F, C, k, k); the first Dense
    layer's rows from Flatten's (h, w, c) order to (c, h, w)."""
    if name == "W" and value.ndim == 4:
        return value.transpose(3, 2, 0, 1)
    if name == "W" and layer_index == 2:
        return value.reshape(SIDE, SIDE, CNN["channels"][-1], -1).transpose(2, 0, 1, 3).reshape(value.shape)
    return value


def from_nchw(name, layer_index, value):
    """The inverse of to_nchw."""
    if name == "W" and value.ndim == 4:
        return value.transpose(2, 3, 1, 0)
    if name == "W" and layer_index == 2:
        return value.reshape(CNN["channels"][-1], SIDE, SIDE, -1).transpose(1, 2, 0, 3).reshape(value.shape)
    return value


VARIANTS = {  # label -> (build the model, convert shipped params into its layout, convert its grads back)
    "(a) channels first, ReLU then pool (npnet before the rewrite)":
        (lambda: network(NCHWConv2D, NCHWMaxPool2D, pool_first=False, image=(1, 28, 28)), to_nchw, from_nchw),
    "(b) channels last, ReLU then pool": (lambda: network(Conv2D, MaxPool2D, pool_first=False), None, None),
    "(c) channels last, pool then ReLU: the shipped npnet": (lambda: cnn(rng=np.random.default_rng(0)), None, None),
    "(d) as (c), dX as a full convolution": (lambda: network(FullConvDX, MaxPool2D), None, None),
    "(e) as (c), im2col + matmul in chunks of 16": (lambda: network(chunked(16), MaxPool2D), None, None),
    "(e) as (c), im2col + matmul in chunks of 32": (lambda: network(chunked(32), MaxPool2D), None, None),
}
SHIPPED = "(c) channels last, pool then ReLU: the shipped npnet"


def with_params(layers):
    return [layer for layer in layers if layer.params]


def gradients(model, X, y):
    """Logits and every param's gradient for one batch, dropout off (the variants differ in the convs alone)."""
    loss_fn = SoftmaxCrossEntropy()
    M.set_training(model, False)
    logits = M.forward(model, X)
    loss_fn.forward(logits, y)
    M.backward(model, loss_fn.backward(), input_grad=False)
    M.set_training(model, True)
    return logits, [{n: g.copy() for n, g in layer.grads.items()} for layer in with_params(model)]


def check(model, reference, X, y, to_layout, from_layout):
    """Give model the reference's weights, then assert that its logits and gradients match the reference's."""
    for i, (mine, ref) in enumerate(zip(with_params(model), with_params(reference))):
        for name, value in ref.params.items():
            mine.params[name][...] = to_layout(name, i, value) if to_layout else value
    logits, grads = gradients(model, X, y)
    ref_logits, ref_grads = gradients(reference, X, y)
    assert np.allclose(logits, ref_logits, rtol=1e-4, atol=1e-4), "logits differ"
    for i, (g, ref) in enumerate(zip(grads, ref_grads)):
        for name in ref:
            mine = from_layout(name, i, g[name]) if from_layout else g[name]
            assert np.allclose(mine, ref[name], rtol=1e-3, atol=1e-5), f"layer {i} grad {name} differs"


def npnet_step(model):
    """fit's step for this model: forward, loss, backward without the first layer's dX, Adam."""
    loss_fn, opt = SoftmaxCrossEntropy(), Adam(model, lr=CNN["lr"])

    def step(X, y):
        loss_fn.forward(M.forward(model, X), y)
        M.backward(model, loss_fn.backward(), input_grad=False)
        opt.step()
    return step


def matmul_step():
    """The shipped step's matrix multiplies alone, as npnet writes them, on random float32 arrays of the same shapes:
    per layer X @ W, X.T @ G and G @ W.T (not the first conv's dX, which training skips)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_machine import products

    rng, work = np.random.default_rng(0), []
    for i, (_, m, k, n) in enumerate(products("cnn", CNN["batch_size"])):
        X, W, G = (rng.standard_normal(shape, dtype=np.float32) for shape in ((m, k), (k, n), (m, n)))
        work.append((X, W, G, np.empty((k, n), np.float32), i > 0))

    def step(*_):
        for X, W, G, dW, input_grad in work:
            X @ W
            np.matmul(X.T, G, out=dW)
            if input_grad:
                G @ W.T
    return step


def torch_steps():
    """{label: step(X, y)} for PyTorch with fused Adam, NCHW and channels_last, or {} without torch."""
    try:
        import torch
    except ImportError:
        return {}
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_runs import torch_cnn

    torch.set_num_threads(os.cpu_count())
    steps = {}
    for label, memory_format in [("PyTorch, fused Adam (NCHW, its default)", torch.contiguous_format),
                                 ("PyTorch, fused Adam, channels_last", torch.channels_last)]:
        torch.manual_seed(0)
        net = torch_cnn(torch).to(memory_format=memory_format)
        opt = torch.optim.Adam(net.parameters(), lr=CNN["lr"], fused=True)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step(X, y, net=net, opt=opt, loss_fn=loss_fn, memory_format=memory_format):
            x = torch.from_numpy(X).view(-1, 1, 28, 28).contiguous(memory_format=memory_format)
            loss = loss_fn(net(x), torch.from_numpy(y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        steps[label] = step
    return steps


def time_in_turns(steps, batches, num_steps, rounds=3, warmup=3):
    """{label: median ms}: every step function warmed up, then `rounds` turns of num_steps / rounds steps each."""
    times = {label: [] for label in steps}
    for label, step in steps.items():
        for X, y in batches[:warmup]:
            step(X, y)
    per_turn = max(1, num_steps // rounds)
    for r in range(rounds):
        for label, step in steps.items():
            time.sleep(0.1)  # let the previous variant's BLAS threads go idle
            for j in range(per_turn):
                X, y = batches[(r * per_turn + j) % len(batches)]
                t0 = time.perf_counter()
                step(X, y)
                times[label].append(time.perf_counter() - t0)
    return {label: float(np.median(t)) * 1000 for label, t in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30, help="timed steps per variant (default 30)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if it is installed")
    args = p.parse_args(argv)

    from npnet.data import load_splits

    s = load_splits()
    rng, batch = np.random.default_rng(0), CNN["batch_size"]
    batches = [(s["X_train"][idx], s["y_train"][idx])
               for idx in (rng.choice(len(s["X_train"]), batch, replace=False) for _ in range(16))]
    reference = VARIANTS[SHIPPED][0]()
    models = {}
    for label, (build, to_layout, from_layout) in VARIANTS.items():
        models[label] = build()
        check(models[label], reference, *batches[0], to_layout, from_layout)
        print(f"checked: {label} gives npnet's logits and gradients", file=sys.stderr)
    steps = {label: npnet_step(model) for label, model in models.items()}
    steps["the shipped step's matmuls alone (the same products on random arrays)"] = matmul_step()
    ms = time_in_turns(steps, batches, args.steps)
    torch = {} if args.no_torch else torch_steps()  # after the NumPy variants: its threads would compete with BLAS's
    ms.update(time_in_turns(torch, batches, args.steps) if torch else {})

    shipped = ms[SHIPPED]
    print(f"## One CNN training step, batch {batch}: median of {args.steps} steps per variant\n")
    print("| variant | ms per step | / shipped npnet |\n|---|---|---|")
    for label, t in ms.items():
        print(f"| {label} | {t:.1f} | {t / shipped:.2f} |")
    from threadpoolctl import threadpool_info

    blas = "; ".join(f"{b['internal_api']} {b['version']} ({b.get('architecture', '?')}, {b['num_threads']} threads)"
                     for b in threadpool_info() if b["user_api"] == "blas")
    print(f"\n- NumPy {np.__version__}, {blas}; {os.cpu_count()} cores; 1-minute load average at the end "
          f"{os.getloadavg()[0]:.2f}; OPENBLAS_* variables: "
          + (", ".join(f"{k}={v}" for k, v in os.environ.items() if k.startswith("OPENBLAS")) or "none set"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
