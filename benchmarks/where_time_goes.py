"""Where an npnet training epoch spends its time: each layer's forward and backward, the loss, Adam, the batches.

    python benchmarks/where_time_goes.py              # one epoch of the seed's MLP recipe on 50k examples, then a table
    python benchmarks/where_time_goes.py --what-if    # also time changes to npnet.layers that are not made (yet)

The layers, the loss and the optimizer are wrapped with timers for the run; npnet itself is not changed.
"""

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from npnet import layers as L  # noqa: E402
from npnet import losses, train  # noqa: E402
from npnet import model as M  # noqa: E402
from npnet.data import load_splits  # noqa: E402
from npnet.optim import Adam  # noqa: E402
from npnet.recipes import MLP  # noqa: E402


def timed(f, key, totals):
    """f, adding its run time to totals[key]."""
    def wrapper(*args):
        t0 = time.perf_counter()
        out = f(*args)
        totals[key] += time.perf_counter() - t0
        return out
    return wrapper


def timed_batches(totals):
    """train.batches, adding the time spent making each batch to totals['batches (shuffle, gather)']."""
    original = train.batches

    def batches(X, y, batch_size, rng):
        it = original(X, y, batch_size, rng)
        while True:
            t0 = time.perf_counter()
            item = next(it, None)
            totals["batches (shuffle, gather)"] += time.perf_counter() - t0
            if item is None:
                return
            yield item
    return batches


def one_epoch(splits, patch=None, seed=0):
    """Train the recipe for one epoch with every piece timed; returns ({piece: seconds}, epoch seconds)."""
    totals = defaultdict(float)
    rng = np.random.default_rng(seed)
    model = M.mlp(MLP["sizes"], rng)
    if patch:
        patch(model)
    for i, layer in enumerate(model):
        name = f"{i} {type(layer).__name__}"
        layer.forward = timed(layer.forward, f"{name} forward", totals)
        layer.backward = timed(layer.backward, f"{name} backward", totals)
    opt = Adam(model, lr=MLP["lr"], weight_decay=MLP["weight_decay"])
    opt.step = timed(opt.step, "Adam step", totals)
    saved = train.batches, losses.SoftmaxCrossEntropy.forward, losses.SoftmaxCrossEntropy.backward
    train.batches = timed_batches(totals)
    losses.SoftmaxCrossEntropy.forward = timed(saved[1], "loss forward", totals)
    losses.SoftmaxCrossEntropy.backward = timed(saved[2], "loss backward", totals)
    try:
        history = train.fit(model, opt, splits["X_train"], splits["y_train"], num_epochs=1,
                            batch_size=MLP["batch_size"], rng=rng, progress=False, eval_train=False)
    finally:
        train.batches, losses.SoftmaxCrossEntropy.forward, losses.SoftmaxCrossEntropy.backward = saved
    return dict(totals), history["train_time"][0]


def unused_input_gradient(splits, repeats=3):
    """Seconds per epoch that Dense 0's backward spends on grad @ W.T, the input gradient nothing uses."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((784, 256), dtype=np.float32)
    grad = rng.standard_normal((MLP["batch_size"], 256), dtype=np.float32)
    steps = -(-len(splits["X_train"]) // MLP["batch_size"])
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            grad @ W.T
        runs.append(time.perf_counter() - t0)
    return float(np.median(runs))


# ---- what-if: changes to npnet.layers, applied to one model's layer objects for a timing comparison only
def skip_first_input_gradient(model):
    """Dense 0 computes dW and db but not grad @ W.T: model.backward's last result is never used."""
    first = model[0]

    def backward(grad):
        np.matmul(first.x.T, grad, out=first.grads["W"])
        np.sum(grad, axis=0, out=first.grads["b"])
    first.backward = backward


def in_place_elementwise(model):
    """Dense adds the bias in place; ReLU writes its output and its gradient in place (both own those arrays)."""
    for layer in model:
        if isinstance(layer, L.Dense):
            def forward(x, layer=layer):
                layer.x = x
                out = x @ layer.params["W"]
                out += layer.params["b"]
                return out
            layer.forward = forward
        elif isinstance(layer, L.ReLU):
            def forward(x, layer=layer):
                layer.mask = x > 0
                return np.maximum(x, 0, out=x)

            def backward(grad, layer=layer):
                return np.multiply(grad, layer.mask, out=grad)
            layer.forward, layer.backward = forward, backward


def both(model):
    in_place_elementwise(model)
    skip_first_input_gradient(model)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3, help="epochs to time (the median is reported)")
    p.add_argument("--what-if", action="store_true", help="also time proposed changes to npnet.layers")
    args = p.parse_args(argv)
    splits = load_splits()
    runs = [one_epoch(splits) for _ in range(args.epochs)]
    epoch = float(np.median([t for _, t in runs]))
    pieces = {k: float(np.median([r[k] for r, _ in runs])) for k in runs[0][0]}
    pieces["the Python loop, loss list, progress bar"] = epoch - sum(pieces.values())
    print(f"One epoch of the MLP recipe (50,000 examples, batch {MLP['batch_size']}): "
          f"median of {args.epochs}: {epoch:.3f} s\n")
    print("| piece | s per epoch | share |\n|---|---|---|")
    for k, v in sorted(pieces.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {v:.3f} | {v / epoch:.0%} |")
    dx = unused_input_gradient(splits)
    print(f"\nOf '0 Dense backward', the input gradient grad @ W.T (which nothing uses) takes {dx:.3f} s.")
    if args.what_if:
        variants = {"npnet as it is": None, "Dense 0 skips its input gradient": skip_first_input_gradient,
                    "in-place bias add and ReLU": in_place_elementwise, "both": both}
        times = {k: [] for k in variants}
        for _ in range(args.epochs):  # interleaved, so that a change in the machine's load hits all alike
            for k, patch in variants.items():
                times[k].append(one_epoch(splits, patch)[1])
        base = np.median(times["npnet as it is"])
        print("\n| variant (epoch, training steps) | median s | vs now |\n|---|---|---|")
        for k, v in times.items():
            print(f"| {k} | {np.median(v):.3f} | {np.median(v) / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
