"""How much the live training view (npnet.trainview) slows training: the same recipe with and without it, alternated.

    python benchmarks/live_view_overhead.py                  # the MLP recipe, 2 epochs per run, 5 runs of each
    python benchmarks/live_view_overhead.py --epochs 15 --repeats 3 --threads 2

Each run trains notebook 02's recipe (784-256-128-10, Adam, cosine decay, batch 128, seed 0) on the 50,000 training
digits, in a worker thread as notebook 02 does, once with `callback=TrainView(...)` and once without. The two take
turns (ABBA order), so that a change in the machine's load hits both alike; the medians are compared. Wall time is
what a learner waits, but on a shared machine other jobs swamp it. So by default BLAS runs on one thread, in the
training thread itself, and the training thread's CPU time (time.thread_time) counts all the work, the view's
included, whatever else runs on the machine. No widget front-end is attached: the view computes and renders
everything, only no browser displays it.
"""

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from npnet import model as M  # noqa: E402
from npnet.data import load_splits  # noqa: E402
from npnet.optim import Adam  # noqa: E402
from npnet.recipes import MLP  # noqa: E402
from npnet.train import cosine_lr, fit  # noqa: E402
from npnet.trainview import TrainView  # noqa: E402


def timed_fit(*args, **kwargs):
    """fit, returning the CPU seconds of the thread that ran it."""
    cpu = time.thread_time()
    fit(*args, **kwargs)
    return time.thread_time() - cpu


def run(splits, num_epochs, view):
    """One training run of the recipe, in a worker thread: -> (wall seconds, its CPU seconds, final weights)."""
    rng = np.random.default_rng(MLP["seed"])
    model = M.mlp(MLP["sizes"], rng)
    opt = Adam(model, lr=MLP["lr"], weight_decay=MLP["weight_decay"])
    wall = time.perf_counter()
    with ThreadPoolExecutor(1) as pool:
        cpu = pool.submit(timed_fit, model, opt, splits["X_train"], splits["y_train"], splits["X_dev"],
                          splits["y_dev"], num_epochs=num_epochs, batch_size=MLP["batch_size"], rng=rng,
                          progress=False, lr_schedule=cosine_lr(MLP["lr"], num_epochs), callback=view).result()
    return time.perf_counter() - wall, cpu, [p for layer in model for p in layer.params.values()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (with 1, the CPU time is all the work)")
    args = parser.parse_args()
    threadpool_limits(args.threads)
    splits = load_splits()
    times = {"without the view": [], "with the view": []}
    views, weights = [], {}
    for i in range(args.repeats):
        for name in (["without the view", "with the view"] if i % 2 == 0 else ["with the view", "without the view"]):
            view = TrainView(splits["X_train"], splits["y_train"], splits["X_dev"], splits["y_dev"]) \
                if name == "with the view" else None
            wall, cpu, weights[name] = run(splits, args.epochs, view)
            times[name].append((wall, cpu))
            views += [view] if view else []
            print(f"run {i + 1}, {name:>16}: {wall:6.2f} s wall, {cpu:6.2f} s CPU of the training thread"
                  + (f", {len(view.points)} updates taking {view.seconds:.2f} s" if view else ""), flush=True)
    same = all(np.array_equal(a, b) for a, b in zip(weights["with the view"], weights["without the view"]))
    print(f"\n{args.epochs} epochs per run, {args.repeats} runs of each, alternated, {args.threads} BLAS thread(s); "
          "medians:")
    medians = {name: [statistics.median(t[k] for t in runs) for k in (0, 1)] for name, runs in times.items()}
    for name, (wall, cpu) in medians.items():
        print(f"  {name:>16}: {wall:6.2f} s wall, {cpu:6.2f} s CPU")
    (wall0, cpu0), (wall1, cpu1) = medians["without the view"], medians["with the view"]
    share = statistics.median(v.seconds / t[0] for v, t in zip(views, times["with the view"]))
    print(f"slowdown: {wall1 / wall0 - 1:+.1%} wall time, {cpu1 / cpu0 - 1:+.1%} CPU time of the training thread; the "
          f"view's own updates took {share:.1%} of its runs' wall time (median); the final weights are "
          f"{'' if same else 'NOT '}bitwise the same")


if __name__ == "__main__":
    main()
