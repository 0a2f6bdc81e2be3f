"""The CNN training step layer by layer with npnet/conv.py as it is and as it was at an earlier commit, in one run.

    python benchmarks/cnn_before_after.py              # against c5a5e83, npnet/conv.py before issue 23's changes
    python benchmarks/cnn_before_after.py --steps 3    # a quick check that it still runs

The older conv.py is read with `git show` and its Conv2D and MaxPool2D replace the current ones in a second copy of
the CNN recipe's network, with the same weights. Both networks must give the same gradients on one batch. Then they
take turns, one training step each (forward, loss, backward without the first conv's input gradient, Adam), on the
same batches of random data, so that a change in the machine's load hits both alike. The table gives each layer's
median wall time in ms. Run it on a quiet machine, with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` as `make bench`.
"""

import argparse
import copy
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npnet import model as M  # noqa: E402
from npnet.losses import SoftmaxCrossEntropy  # noqa: E402
from npnet.optim import Adam  # noqa: E402
from npnet.recipes import cnn  # noqa: E402


def old_layers(commit):
    """{'Conv2D': class, 'MaxPool2D': class} from npnet/conv.py at `commit`."""
    source = subprocess.run(["git", "show", f"{commit}:npnet/conv.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    namespace = {}
    exec(compile(source.replace("from .layers import", "from npnet.layers import"), f"{commit}:conv.py", "exec"),
         namespace)
    return {name: namespace[name] for name in ("Conv2D", "MaxPool2D")}


def networks(commit):
    """{'before': model, 'after': model}: the recipe's CNN from one seed, the first with the older layers."""
    before, after = cnn(rng=np.random.default_rng(0)), cnn(rng=np.random.default_rng(0))
    old = old_layers(commit)
    for layer in before:
        if type(layer).__name__ in old:
            layer.__class__ = old[type(layer).__name__]   # same weights and settings, the older methods
    return {"before": before, "after": after}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commit", default="c5a5e83", help="the earlier commit (default: before issue 23)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per network (default 30, after 3 warm-up)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((4096, 784)).astype(np.float32), rng.integers(0, 10, 4096)
    nets = networks(args.commit)
    opts, loss_fn = {k: Adam(m) for k, m in nets.items()}, SoftmaxCrossEntropy()
    grads = {}
    for name, model in nets.items():                       # the same gradients, or the comparison means nothing
        model = copy.deepcopy(model)                       # in float64: in float32, rounding can flip a max-pool's
        for layer in model:                                # choice between two nearly equal values
            for k in layer.params:
                layer.params[k], layer.grads[k] = layer.params[k].astype(np.float64), layer.grads[k].astype(np.float64)
        M.set_training(model, False)
        loss_fn.forward(M.forward(model, X[:128].astype(np.float64)), y[:128])
        M.backward(model, loss_fn.backward(), input_grad=False)
        grads[name] = [layer.grads[k].copy() for layer in model if layer.params for k in sorted(layer.params)]
    assert all(np.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(grads["before"], grads["after"]))
    pc, records = time.perf_counter, {k: [] for k in nets}
    for step in range(3 + args.steps):
        for name, model in nets.items():                   # the two networks take turns, one step each
            M.set_training(model, True)
            i = step * 128 % (len(X) - 128)
            h, r, t0 = X[i:i + 128], {}, pc()
            for j, layer in enumerate(model):
                t = pc()
                h = layer.forward(h)
                r[j, "forward"] = pc() - t
            loss_fn.forward(h, y[i:i + 128])
            grad = loss_fn.backward()
            for j in range(len(model) - 1, 0, -1):         # layer 0 is the Reshape; layer 1 skips its dX
                t = pc()
                grad = model[j].backward(grad, input_grad=False) if j == 1 else model[j].backward(grad)
                r[j, "backward"] = pc() - t
            t = pc()
            opts[name].step()
            r["Adam"], r["step"] = pc() - t, pc() - t0
            records[name].append(r)
    med = {name: {key: float(np.median([r[key] for r in recs[3:]])) * 1000 for key in recs[0]}
           for name, recs in records.items()}
    print(f"| layer (ms) | before ({args.commit}): forward + backward | after: forward + backward | saved |")
    print("|---|---|---|---|")
    for j, layer in enumerate(nets["after"]):
        b, a = (med[n][j, "forward"] + med[n].get((j, "backward"), 0.0) for n in ("before", "after"))
        if max(a, b) >= 0.05:
            print(f"| {j} {type(layer).__name__} | {med['before'][j, 'forward']:.2f} + "
                  f"{med['before'].get((j, 'backward'), 0.0):.2f} = {b:.2f} | {med['after'][j, 'forward']:.2f} + "
                  f"{med['after'].get((j, 'backward'), 0.0):.2f} = {a:.2f} | {b - a:+.2f} |")
    for key in ("Adam", "step"):
        print(f"| {'**the whole step**' if key == 'step' else key} | {med['before'][key]:.2f} | {med['after'][key]:.2f} "
              f"| {med['before'][key] - med['after'][key]:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
