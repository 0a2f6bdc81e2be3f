"""Where npnet's training time goes: each layer's forward and backward, the loss, Adam and the batches, per epoch.

    python benchmarks/where_time_goes.py              # the seed's MLP recipe, all 15 epochs, then a table
    python benchmarks/where_time_goes.py --what-if    # also the same run without Adam's subnormal flush

The layers, the loss and the optimizer are wrapped with timers for the run; npnet itself is not changed.
"""

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from npnet import losses, train  # noqa: E402
from npnet import model as M  # noqa: E402
from npnet.data import load_splits  # noqa: E402
from npnet.optim import Adam  # noqa: E402
from npnet.recipes import MLP  # noqa: E402


def timed(f, key, totals):
    """f, adding its run time to totals[key]."""
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        out = f(*args, **kwargs)
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


def profile(splits, num_epochs, flush_every=Adam.flush_every, seed=0):
    """Train the recipe with every piece timed; returns [({piece: seconds}, epoch seconds)] per epoch."""
    totals = defaultdict(float)
    rng = np.random.default_rng(seed)
    model = M.mlp(MLP["sizes"], rng)
    for i, layer in enumerate(model):
        name = f"layer {i} {type(layer).__name__}"
        layer.forward = timed(layer.forward, f"{name} forward", totals)
        layer.backward = timed(layer.backward, f"{name} backward", totals)
    opt = Adam(model, lr=MLP["lr"], weight_decay=MLP["weight_decay"])
    opt.flush_every = flush_every
    opt.step = timed(opt.step, "Adam step", totals)
    schedule = train.cosine_lr(MLP["lr"], num_epochs)
    saved = train.batches, losses.SoftmaxCrossEntropy.forward, losses.SoftmaxCrossEntropy.backward
    train.batches = timed_batches(totals)
    losses.SoftmaxCrossEntropy.forward = timed(saved[1], "loss forward", totals)
    losses.SoftmaxCrossEntropy.backward = timed(saved[2], "loss backward", totals)
    epochs = []
    try:
        for epoch in range(num_epochs):
            totals.clear()
            history = train.fit(model, opt, splits["X_train"], splits["y_train"], num_epochs=1,
                                batch_size=MLP["batch_size"], rng=rng, progress=False, eval_train=False,
                                lr_schedule=lambda _: schedule(epoch))
            seconds = history["train_time"][0]
            epochs.append(({**totals, "the rest: Python loop, loss list": seconds - sum(totals.values())},
                           seconds))
    finally:
        train.batches, losses.SoftmaxCrossEntropy.forward, losses.SoftmaxCrossEntropy.backward = saved
    return epochs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=MLP["num_epochs"], help="epochs to train (the recipe's 15)")
    p.add_argument("--what-if", action="store_true", help="also train without Adam's subnormal flush")
    args = p.parse_args(argv)
    splits = load_splits()
    epochs = profile(splits, args.epochs)
    times = [t for _, t in epochs]
    mean = {k: float(np.mean([e[k] for e, _ in epochs])) for k in epochs[0][0]}
    print(f"npnet, the MLP recipe ({len(splits['X_train']):,} examples, batch {MLP['batch_size']}, "
          f"{args.epochs} epochs): {np.mean(times):.3f} s per epoch on average, median {np.median(times):.3f} s\n")
    print("| piece | epoch 1 (s) | last epoch (s) | mean (s) | share of the mean |\n|---|---|---|---|---|")
    for k, v in sorted(mean.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {epochs[0][0][k]:.3f} | {epochs[-1][0][k]:.3f} | {v:.3f} | {v / np.mean(times):.0%} |")
    print(f"| **the epoch** | {times[0]:.3f} | {times[-1]:.3f} | {np.mean(times):.3f} | |")
    if args.what_if:
        off = [t for _, t in profile(splits, args.epochs, flush_every=0)]
        print("\n| Adam | median epoch (s) | last epoch (s) |\n|---|---|---|")
        print(f"| flushes subnormal weights every {Adam.flush_every} steps | {np.median(times):.3f} | {times[-1]:.3f} |")
        print(f"| never flushes them | {np.median(off):.3f} | {off[-1]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
