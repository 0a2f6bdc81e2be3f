"""Benchmark: the seed's MLP recipe trained by npnet, PyTorch (CPU) and scikit-learn side by side, plus inference.

    python benchmarks/bench.py            # the full run: 50k examples, the recipe's 15 epochs (`make bench`)
    python benchmarks/bench.py --quick    # one short epoch on a subset, so CI can check that it still works

Each framework trains in its own subprocess, so that its peak memory and thread pools are its own. Times are
wall-clock seconds. An epoch's *training time* covers the mini-batch steps only (shuffle, forward, backward,
update); the accuracy evaluation after each epoch (all training examples plus the dev set, no gradients) is
timed separately as *eval time*. The output is markdown, ready to paste.
"""

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npnet.recipes import MLP  # noqa: E402  (the recipe: sizes, lr, L2, batch size, epochs, seed)

TARGET_DEV = 0.975
FRAMEWORKS = {  # name -> (the module it needs, how it is set up)
    "npnet": ("numpy", "npnet.fit: Adam, L2 on weights, cosine lr decay"),
    "pytorch": ("torch", "torch.optim.Adam (default), same init, L2, cosine decay"),
    "pytorch-fused": ("torch", "torch.optim.Adam(fused=True), otherwise the same"),
    "sklearn": ("sklearn", 'MLPClassifier((256, 128), solver="adam", batch_size=128), partial_fit per epoch'),
}


# ---------------------------------------------------------------- memory: the peak resident set of this process
def _status_kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_memory():
    """Restart the peak-RSS count (Linux clear_refs); returns the current RSS in MB, or None if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kb("VmRSS") / 1024
    except OSError:
        return None


def peak_memory_mb():
    """Peak RSS in MB since reset_peak_memory() (or since the process started, where that is unsupported)."""
    try:
        return _status_kb("VmHWM") / 1024
    except (OSError, KeyError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- the three trainers, each run in a worker process
def _data(n_train, n_dev):
    from npnet.data import load_splits

    s = load_splits()
    return (s["X_train"][:n_train], s["y_train"][:n_train], s["X_dev"][:n_dev], s["y_dev"][:n_dev],
            s["X_test"], s["y_test"], s["stats"])


def train_npnet(data, num_epochs, seed):
    """npnet.fit on the recipe; returns (per-epoch records, model, test accuracy)."""
    from npnet import model as M
    from npnet.metrics import accuracy
    from npnet.optim import Adam
    from npnet.train import cosine_lr, fit

    X, y, X_dev, y_dev, X_test, y_test, _ = data
    rng = np.random.default_rng(seed)
    model = M.mlp(MLP["sizes"], rng)
    opt = Adam(model, lr=MLP["lr"], weight_decay=MLP["weight_decay"])
    history = fit(model, opt, X, y, X_dev, y_dev, num_epochs=num_epochs, batch_size=MLP["batch_size"],
                  rng=rng, progress=False, eval_train=True, lr_schedule=cosine_lr(MLP["lr"], num_epochs))
    epochs = [{"train_time": a, "eval_time": b, "train_acc": c, "dev_acc": d} for a, b, c, d in
              zip(history["train_time"], history["eval_time"], history["train_acc"], history["dev_acc"])]
    return epochs, model, accuracy(M.predict(model, X_test), y_test)


def train_pytorch(data, num_epochs, seed, fused=False):
    """The same network, init, Adam, L2, lr decay and batch size in PyTorch on the CPU, float32."""
    import torch

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(seed)
    X, y, X_dev, y_dev, X_test, y_test = (torch.from_numpy(np.asarray(a)) for a in data[:6])
    sizes = MLP["sizes"]
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        dense = torch.nn.Linear(fan_in, fan_out)
        torch.nn.init.kaiming_normal_(dense.weight, nonlinearity="relu")  # He: std sqrt(2 / fan_in)
        torch.nn.init.zeros_(dense.bias)
        layers += [dense, torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    weights = [p for p in net.parameters() if p.ndim > 1]
    biases = [p for p in net.parameters() if p.ndim == 1]
    # torch's weight_decay adds weight_decay * p to the gradient, as npnet's Adam does; weights only
    opt = torch.optim.Adam([{"params": weights, "weight_decay": MLP["weight_decay"]},
                            {"params": biases, "weight_decay": 0.0}], lr=MLP["lr"], fused=fused)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    batch_size = MLP["batch_size"]

    def accuracy(X_, y_):
        with torch.inference_mode():
            pred = torch.cat([net(X_[i:i + 2048]).argmax(1) for i in range(0, len(X_), 2048)])
        return float((pred == y_).float().mean())

    epochs = []
    for epoch in range(num_epochs):
        for group in opt.param_groups:
            group["lr"] = MLP["lr"] * 0.5 * (1 + math.cos(math.pi * epoch / num_epochs))
        start = time.perf_counter()
        order = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch_size):
            idx = order[i:i + batch_size]
            loss = loss_fn(net(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        train_time = time.perf_counter() - start
        start = time.perf_counter()
        train_acc, dev_acc = accuracy(X, y), accuracy(X_dev, y_dev)
        epochs.append({"train_time": train_time, "eval_time": time.perf_counter() - start,
                       "train_acc": train_acc, "dev_acc": dev_acc})
    return epochs, net, accuracy(X_test, y_test)


def train_sklearn(data, num_epochs, seed):
    """MLPClassifier((256, 128), solver='adam', batch_size=128), as the issue specifies; one partial_fit per epoch."""
    import warnings

    from sklearn.neural_network import MLPClassifier

    X, y, X_dev, y_dev, X_test, y_test, _ = data
    clf = MLPClassifier((256, 128), solver="adam", batch_size=MLP["batch_size"], random_state=seed)
    classes = np.arange(10)
    epochs = []
    for _ in range(num_epochs):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(X, y, classes=classes)  # one shuffled pass; Adam's state carries over
        train_time = time.perf_counter() - start
        start = time.perf_counter()
        train_acc, dev_acc = clf.score(X, y), clf.score(X_dev, y_dev)
        epochs.append({"train_time": train_time, "eval_time": time.perf_counter() - start,
                       "train_acc": float(train_acc), "dev_acc": float(dev_acc)})
    return epochs, clf, float(clf.score(X_test, y_test))


# ---------------------------------------------------------------- inference: one canvas to one prediction
def inference(model, stats, X_test, num_calls):
    """Latency of canvas -> to_mnist -> normalize -> predict_proba, and test-set throughput: a dict."""
    from npnet import model as M
    from npnet.data import normalize
    from npnet.preprocess import to_mnist
    from npnet.strokes import digit_strokes, render

    rng = np.random.default_rng(0)
    strokes, _ = digit_strokes(3, rng)
    canvas = render(strokes, size=280, pen_width=18)  # a 280x280 float32 drawing, as the app sends it

    def one_call():
        t0 = time.perf_counter()
        x = normalize(to_mnist(canvas)[None], stats)  # (1, 784)
        t1 = time.perf_counter()
        digit = int(M.predict_proba(model, x)[0].argmax())
        return t1 - t0, time.perf_counter() - t1, digit

    for _ in range(min(20, num_calls)):
        one_call()  # warm-up
    times = np.array([one_call()[:2] for _ in range(num_calls)]) * 1000  # (num_calls, 2) ms
    total = times.sum(axis=1)
    runs = []
    for _ in range(5 if num_calls >= 1000 else 1):
        t0 = time.perf_counter()
        M.predict(model, X_test)
        runs.append(time.perf_counter() - t0)
    return {"calls": num_calls, "digit": one_call()[2],
            "median_ms": float(np.median(total)), "p99_ms": float(np.percentile(total, 99)),
            "preprocess_median_ms": float(np.median(times[:, 0])), "model_median_ms": float(np.median(times[:, 1])),
            "test_images": len(X_test), "images_per_s": len(X_test) / float(np.median(runs))}


def worker(name, num_epochs, n_train, n_dev, num_calls):
    """Run one framework in this process; returns a JSON-able dict."""
    data = _data(n_train, n_dev)
    rss_before = reset_peak_memory()
    trainer = {"npnet": train_npnet, "pytorch": train_pytorch, "sklearn": train_sklearn,
               "pytorch-fused": lambda *a: train_pytorch(*a, fused=True)}[name]
    wall = time.perf_counter()
    epochs, model, test_acc = trainer(data, num_epochs, MLP["seed"])
    wall = time.perf_counter() - wall
    out = {"name": name, "epochs": epochs, "test_acc": test_acc, "wall_time": wall,
           "rss_before_mb": rss_before, "peak_rss_mb": peak_memory_mb(), "versions": versions(name)}
    if name == "npnet" and num_calls:
        out["inference"] = inference(model, data[6], data[4], num_calls)
    return out


# ---------------------------------------------------------------- the machine and its matmul throughput
def versions(name):
    import numpy

    v = {"numpy": numpy.__version__}
    if name.startswith("pytorch"):
        import torch

        v["torch"] = torch.__version__
        v["torch_threads"] = torch.get_num_threads()
    if name == "sklearn":
        import sklearn

        v["sklearn"] = sklearn.__version__
    return v


def machine():
    """What ran the benchmark: CPU, cores, memory, Python, NumPy and its BLAS, the load average."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    mem = next((int(line.split()[1]) / 2 ** 20 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), float("nan")) if Path("/proc/meminfo").exists() else float("nan")
    info = {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem, 1), "python": platform.python_version(),
            "os": platform.platform(terse=True), "numpy": np.__version__,
            "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}}
    try:
        from threadpoolctl import threadpool_info

        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        info["blas"] = [f"{p['internal_api']} {p['version']} ({p.get('architecture', '?')} kernels, "
                        f"{p['num_threads']} threads)" for p in blas]
    except ImportError:
        info["blas"] = ["(install threadpoolctl to see which BLAS kernel runs)"]
    return info


def _median_time(f, repeats):
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def matmul_throughput(quick):
    """Measured float32 matmul GFLOP/s: a large square product (the peak), and one step's products at batch 128."""
    rng = np.random.default_rng(0)
    n = 512 if quick else 2048
    A, B = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    peak = 2 * n ** 3 / _median_time(lambda: A @ B, 3 if quick else 15) / 1e9
    sizes, batch = MLP["sizes"], MLP["batch_size"]
    Ws = [rng.standard_normal((i, o), dtype=np.float32) for i, o in zip(sizes[:-1], sizes[1:])]
    Xs = [rng.standard_normal((batch, i), dtype=np.float32) for i in sizes[:-1]]
    Gs = [rng.standard_normal((batch, o), dtype=np.float32) for o in sizes[1:]]

    def step():  # forward, weight gradient, input gradient for every layer
        for X, W, G in zip(Xs, Ws, Gs):
            X @ W, X.T @ G, G @ W.T

    flops = 3 * 2 * batch * sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    reps = 10 if quick else 200
    at_batch = flops * reps / _median_time(lambda: [step() for _ in range(reps)], 3 if quick else 9) / 1e9
    return {"square_n": n, "peak_gflops": peak, "batch_gflops": at_batch}


def epoch_flops(n_train):
    """Matmul FLOPs of one epoch: forward, weight gradients, input gradients (all, and without layer 1's)."""
    sizes = MLP["sizes"]
    per_layer = [2 * n_train * i * o for i, o in zip(sizes[:-1], sizes[1:])]
    everything = 3 * sum(per_layer)  # what npnet computes: Dense.backward also returns layer 1's dX
    return {"all": everything, "needed": everything - per_layer[0]}


# ---------------------------------------------------------------- the report
def summarise(r):
    """Per-framework numbers for the table, from a worker's epochs."""
    ep = r["epochs"]
    train = np.array([e["train_time"] for e in ep])
    evals = np.array([e["eval_time"] for e in ep])
    cum = np.cumsum(train)
    reach = next((i for i, e in enumerate(ep) if e["dev_acc"] >= TARGET_DEV), None)
    return {"epoch": float(np.median(train)), "epoch_min": float(train.min()),
            "epoch_with_eval": float(np.median(train + evals)),
            "total": float(train.sum()), "total_with_eval": float((train + evals).sum()),
            "reach": None if reach is None else (float(cum[reach]), reach + 1),
            "train_acc": ep[-1]["train_acc"], "dev_acc": ep[-1]["dev_acc"], "test_acc": r["test_acc"],
            "peak_mb": r["peak_rss_mb"], "rss_before_mb": r["rss_before_mb"]}


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def report(results, skipped, flops, mm, info, args, loads):
    """The whole markdown report as a string."""
    names = [n for n in FRAMEWORKS if n in results]
    s = {n: summarise(results[n]) for n in names}
    npnet = s.get("npnet")
    out = [f"## Training: the seed's MLP recipe ({args.n_train:,} examples, {args.epochs} epoch(s), batch "
           f"{MLP['batch_size']})", ""]
    rows = [
        ["epoch time, training steps only (median)"] + [f"{s[n]['epoch']:.3f} s" for n in names],
        ["epoch time incl. train + dev accuracy (median)"] + [f"{s[n]['epoch_with_eval']:.3f} s" for n in names],
        ["total training time (steps only)"] + [f"{s[n]['total']:.2f} s" for n in names],
        ["total incl. evaluations"] + [f"{s[n]['total_with_eval']:.2f} s" for n in names],
        [f"time to {TARGET_DEV:.1%} dev accuracy (steps only)"]
        + [f"{s[n]['reach'][0]:.2f} s (epoch {s[n]['reach'][1]})" if s[n]["reach"] else "not reached"
           for n in names],
        ["final train accuracy"] + [f"{s[n]['train_acc']:.4f}" for n in names],
        ["final dev accuracy"] + [f"{s[n]['dev_acc']:.4f}" for n in names],
        ["test accuracy"] + [f"{s[n]['test_acc']:.4f}" for n in names],
        ["peak memory (RSS) while training"] + [f"{s[n]['peak_mb']:.0f} MB" for n in names],
        ["... of which added by training"]
        + [f"{s[n]['peak_mb'] - s[n]['rss_before_mb']:.0f} MB" if s[n]["rss_before_mb"] else "?" for n in names],
    ]
    if npnet:
        rows.append(["npnet / this, epoch time"] + [f"{npnet['epoch'] / s[n]['epoch']:.2f}" for n in names])
    out += [table(["", *names], rows), ""]
    out += [f"- {n}: {FRAMEWORKS[n][1]}; {', '.join(f'{k} {v}' for k, v in results[n]['versions'].items())}"
            for n in names]
    out += [f"- skipped {n}: {why}" for n, why in skipped.items()]
    out += ["- Training time counts the mini-batch steps (shuffle, forward, backward, update); the accuracy "
            "evaluation after each epoch (all training examples and the dev set, without gradients) is timed "
            "apart. Peak memory includes the loaded data and the framework's libraries.", ""]

    if npnet:
        bound = flops["all"] / (mm["peak_gflops"] * 1e9)
        out += ["## The compute bound", "", table(["", "value"], [
            ["matmul FLOPs per epoch (forward, weight and input gradients)", f"{flops['all'] / 1e9:.1f} GFLOP"],
            ["... without layer 1's input gradient, which nothing uses", f"{flops['needed'] / 1e9:.1f} GFLOP"],
            [f"float32 matmul throughput, {mm['square_n']}x{mm['square_n']} (peak)",
             f"{mm['peak_gflops']:.0f} GFLOP/s"],
            ["float32 matmul throughput, this recipe's products at batch 128",
             f"{mm['batch_gflops']:.0f} GFLOP/s"],
            ["compute bound: FLOPs / peak throughput", f"{bound:.3f} s"],
            ["npnet epoch (steps only) / compute bound", f"{npnet['epoch'] / bound:.2f}x"],
            ["npnet epoch / the same matmuls at batch-128 throughput",
             f"{npnet['epoch'] / (flops['all'] / (mm['batch_gflops'] * 1e9)):.2f}x"],
        ]), ""]
    inf = results.get("npnet", {}).get("inference")
    if inf:
        out += ["## Inference (npnet)", "", table(["", "value"], [
            [f"one 280x280 canvas -> to_mnist -> normalize -> predict_proba, median of {inf['calls']:,}",
             f"{inf['median_ms']:.2f} ms"],
            ["... p99", f"{inf['p99_ms']:.2f} ms"],
            ["... of which preprocessing / model (medians)",
             f"{inf['preprocess_median_ms']:.2f} / {inf['model_median_ms']:.3f} ms"],
            [f"test-set throughput, predict() on {inf['test_images']:,} standardised images",
             f"{inf['images_per_s']:,.0f} images/s"],
        ]), ""]

    if npnet:
        torch_best = min((s[n]["epoch"] for n in ("pytorch", "pytorch-fused") if n in s), default=None)
        checks = []
        if torch_best:
            checks.append(["npnet epoch <= 0.6x PyTorch CPU's (the faster PyTorch)",
                           f"{npnet['epoch'] / torch_best:.2f}x", npnet["epoch"] / torch_best <= 0.6])
        checks.append(["npnet epoch <= 1.3x the compute bound", f"{npnet['epoch'] / bound:.2f}x",
                       npnet["epoch"] / bound <= 1.3])
        if inf:
            checks.append(["one canvas to one prediction <= 2 ms median", f"{inf['median_ms']:.2f} ms",
                           inf["median_ms"] <= 2])
        note = " (quick mode: a subset, so these say nothing)" if args.quick else ""
        out += [f"## Targets{note}", "",
                table(["target", "measured", "met"], [[a, b, "yes" if c else "no"] for a, b, c in checks]), ""]

    blas = "; ".join(info["blas"])
    env = ", ".join(f"{k}={v}" for k, v in info["openblas_env"].items()) or "none set"
    out += ["## Machine", "",
            f"- {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB; {info['os']}; Python {info['python']}",
            f"- NumPy {info['numpy']}, BLAS: {blas}; OPENBLAS_* variables: {env}",
            f"- load average (1 min) before / after each run: "
            + ", ".join(f"{k} {a:.2f} / {b:.2f}" for k, (a, b) in loads.items()),
            f"- command: `{args.command}`", ""]
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one epoch on 2,000 examples: checks it works, times nothing")
    p.add_argument("--epochs", type=int, help="epochs per framework (default: the recipe's 15; 1 when --quick)")
    p.add_argument("--frameworks", help="comma-separated subset of " + ", ".join(FRAMEWORKS)
                   + " (default: all; --quick leaves out pytorch-fused)")
    p.add_argument("--json", type=Path, help="also write every raw number here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--n-train", type=int, help=argparse.SUPPRESS)
    p.add_argument("--n-dev", type=int, help=argparse.SUPPRESS)
    p.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.epochs = args.epochs or (1 if args.quick else MLP["num_epochs"])
    args.n_train = args.n_train or (2000 if args.quick else 50_000)
    args.n_dev = args.n_dev or (2000 if args.quick else 10_000)
    args.calls = args.calls if args.calls is not None else (50 if args.quick else 1000)
    if args.worker:
        print(json.dumps(worker(args.worker, args.epochs, args.n_train, args.n_dev, args.calls)))
        return 0

    args.command = "python benchmarks/bench.py" + (" --quick" if args.quick else "") + \
        (f" --epochs {args.epochs}" if args.epochs != (1 if args.quick else MLP["num_epochs"]) else "")
    default = [n for n in FRAMEWORKS if not (args.quick and n == "pytorch-fused")]
    wanted = [n.strip() for n in args.frameworks.split(",") if n.strip()] if args.frameworks else default
    unknown = set(wanted) - set(FRAMEWORKS)
    if unknown:
        p.error(f"unknown framework(s) {sorted(unknown)}; choose from {list(FRAMEWORKS)}")
    info = machine()
    print(f"Benchmarking on {info['cpu']} ({info['cores']} cores); BLAS: {'; '.join(info['blas'])}", file=sys.stderr)
    mm = matmul_throughput(args.quick)
    results, skipped, loads = {}, {}, {}
    for name in wanted:
        module = FRAMEWORKS[name][0]
        if importlib.util.find_spec(module) is None:
            skipped[name] = f"`{module}` is not installed (`make bench` installs it)"
            print(f"skipped {name}: {skipped[name]}", file=sys.stderr)
            continue
        print(f"training with {name} ...", file=sys.stderr)
        before = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--worker", name, "--epochs", str(args.epochs),
               "--n-train", str(args.n_train), "--n-dev", str(args.n_dev), "--calls", str(args.calls)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        loads[name] = (before, os.getloadavg()[0])
        if done.returncode != 0:
            skipped[name] = f"the run failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'}"
            print(f"{name} failed:\n{done.stderr}", file=sys.stderr)
            continue
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    if "npnet" not in results:
        print("npnet did not run: nothing to compare against", file=sys.stderr)
        return 1
    flops = epoch_flops(args.n_train)
    print(report(results, skipped, flops, mm, info, args, loads))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "matmul": mm, "flops": flops, "results": results,
                                         "skipped": skipped, "load": loads}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
