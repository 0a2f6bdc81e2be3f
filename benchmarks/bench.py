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
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npnet.recipes import MLP  # noqa: E402  (the recipe: sizes, lr, L2, batch size, epochs, seed)

TARGET_DEV = 0.975
SETTLE = 0.2  # seconds between turns
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


class NpnetRun:
    """npnet: the recipe's model and Adam, trained by npnet.fit one epoch at a time."""

    def __init__(self, data, num_epochs, seed):
        from npnet import model as M
        from npnet.optim import Adam
        from npnet.train import cosine_lr

        self.data, self.rng = data, np.random.default_rng(seed)
        self.model = M.mlp(MLP["sizes"], self.rng)
        self.opt = Adam(self.model, lr=MLP["lr"], weight_decay=MLP["weight_decay"])
        self.schedule = cosine_lr(MLP["lr"], num_epochs)

    def epoch(self, epoch):
        """Train one epoch (the same steps as one fit over all epochs), then evaluate: a record."""
        from npnet.train import fit

        X, y, X_dev, y_dev = self.data[:4]
        h = fit(self.model, self.opt, X, y, X_dev, y_dev, num_epochs=1, batch_size=MLP["batch_size"],
                rng=self.rng, progress=False, eval_train=True, lr_schedule=lambda _: self.schedule(epoch))
        return {"train_time": h["train_time"][0], "eval_time": h["eval_time"][0],
                "train_acc": h["train_acc"][0], "dev_acc": h["dev_acc"][0]}

    def test_accuracy(self):
        from npnet import model as M
        from npnet.metrics import accuracy

        return accuracy(M.predict(self.model, self.data[4]), self.data[5])


class PytorchRun:
    """The same network, He init, Adam, L2, lr decay and batch size in PyTorch on the CPU, float32."""

    def __init__(self, data, num_epochs, seed, fused=False):
        import torch

        torch.set_num_threads(os.cpu_count())
        torch.manual_seed(seed)
        self.torch, self.num_epochs = torch, num_epochs
        self.X, self.y, self.X_dev, self.y_dev, self.X_test, self.y_test = (
            torch.from_numpy(np.asarray(a)) for a in data[:6])
        sizes, layers = MLP["sizes"], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            dense = torch.nn.Linear(fan_in, fan_out)
            torch.nn.init.kaiming_normal_(dense.weight, nonlinearity="relu")  # He: std sqrt(2 / fan_in)
            torch.nn.init.zeros_(dense.bias)
            layers += [dense, torch.nn.ReLU()]
        self.net = torch.nn.Sequential(*layers[:-1])
        weights = [p for p in self.net.parameters() if p.ndim > 1]
        biases = [p for p in self.net.parameters() if p.ndim == 1]
        # torch's weight_decay adds weight_decay * p to the gradient, as npnet's Adam does; weights only
        self.opt = torch.optim.Adam([{"params": weights, "weight_decay": MLP["weight_decay"]},
                                     {"params": biases, "weight_decay": 0.0}], lr=MLP["lr"], fused=fused)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.gen = torch.Generator().manual_seed(seed)

    def accuracy(self, X, y):
        with self.torch.inference_mode():  # no autograd bookkeeping in evaluation
            pred = self.torch.cat([self.net(X[i:i + 2048]).argmax(1) for i in range(0, len(X), 2048)])
        return float((pred == y).float().mean())

    def epoch(self, epoch):
        for group in self.opt.param_groups:  # the same cosine decay, by epoch
            group["lr"] = MLP["lr"] * 0.5 * (1 + math.cos(math.pi * epoch / self.num_epochs))
        X, y, batch_size = self.X, self.y, MLP["batch_size"]
        start = time.perf_counter()
        order = self.torch.randperm(len(X), generator=self.gen)
        for i in range(0, len(X), batch_size):
            idx = order[i:i + batch_size]
            loss = self.loss_fn(self.net(X[idx]), y[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        train_time = time.perf_counter() - start
        start = time.perf_counter()
        train_acc, dev_acc = self.accuracy(X, y), self.accuracy(self.X_dev, self.y_dev)
        return {"train_time": train_time, "eval_time": time.perf_counter() - start,
                "train_acc": train_acc, "dev_acc": dev_acc}

    def test_accuracy(self):
        return self.accuracy(self.X_test, self.y_test)


class SklearnRun:
    """MLPClassifier((256, 128), solver="adam", batch_size=128) as the issue gives it; one partial_fit per epoch."""

    def __init__(self, data, num_epochs, seed):
        from sklearn.neural_network import MLPClassifier

        self.data = data
        self.clf = MLPClassifier((256, 128), solver="adam", batch_size=MLP["batch_size"], random_state=seed)

    def epoch(self, epoch):
        import warnings

        X, y, X_dev, y_dev = self.data[:4]
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf.partial_fit(X, y, classes=np.arange(10))  # one shuffled pass; Adam's state carries over
        train_time = time.perf_counter() - start
        start = time.perf_counter()
        train_acc, dev_acc = self.clf.score(X, y), self.clf.score(X_dev, y_dev)
        return {"train_time": train_time, "eval_time": time.perf_counter() - start,
                "train_acc": float(train_acc), "dev_acc": float(dev_acc)}

    def test_accuracy(self):
        return float(self.clf.score(*self.data[4:6]))


RUNS = {"npnet": NpnetRun, "pytorch": PytorchRun, "sklearn": SklearnRun,
        "pytorch-fused": lambda *a: PytorchRun(*a, fused=True)}


# ---------------------------------------------------------------- inference: one canvas to one prediction
def latency(preprocess, canvas, model, stats, num_calls):
    """Milliseconds for canvas -> preprocess -> normalize -> predict_proba over num_calls calls: a dict."""
    from npnet import model as M
    from npnet.data import normalize

    def one_call():
        t0 = time.perf_counter()
        x = normalize(preprocess(canvas)[None], stats)  # (1, 784)
        t1 = time.perf_counter()
        digit = int(M.predict_proba(model, x)[0].argmax())
        return t1 - t0, time.perf_counter() - t1, digit

    for _ in range(min(20, num_calls)):
        one_call()  # warm-up
    times = np.array([one_call()[:2] for _ in range(num_calls)]) * 1000  # (num_calls, 2) ms
    total = times.sum(axis=1)
    return {"median_ms": float(np.median(total)), "p99_ms": float(np.percentile(total, 99)),
            "preprocess_median_ms": float(np.median(times[:, 0])), "model_median_ms": float(np.median(times[:, 1])),
            "digit": one_call()[2]}


def inference(model, stats, X_test, num_calls):
    """Latency of one drawn canvas to one prediction, through the app's pipeline and through plain to_mnist,
    and test-set throughput: a dict (its top-level latency is the app's pipeline)."""
    from npnet import model as M
    from npnet import preprocess
    from npnet.strokes import digit_strokes, render

    strokes, _ = digit_strokes(3, np.random.default_rng(0))
    canvas = render(strokes, size=280, pen_width=18)  # a 280x280 float32 drawing, as the app sends it
    app = getattr(preprocess, "mnist_style", preprocess.to_mnist)  # the app's pipeline: to_mnist + thickness
    out = {"calls": num_calls, "pipeline": f"preprocess.{app.__name__}",
           **latency(app, canvas, model, stats, num_calls),
           "to_mnist": latency(preprocess.to_mnist, canvas, model, stats, num_calls)}
    runs = []
    for _ in range(5 if num_calls >= 1000 else 1):
        t0 = time.perf_counter()
        M.predict(model, X_test)
        runs.append(time.perf_counter() - t0)
    return {**out, "test_images": len(X_test), "images_per_s": len(X_test) / float(np.median(runs))}


def worker(name, num_epochs, n_train, n_dev, num_calls):
    """Serve one framework: train an epoch per `epoch` line on stdin, answer each with a JSON line; then finish."""
    data = _data(n_train, n_dev)
    run = RUNS[name](data, num_epochs, MLP["seed"])
    rss_before = reset_peak_memory()
    print(json.dumps({"ready": name}), flush=True)
    for epoch, command in enumerate(sys.stdin):
        if command.strip() != "epoch":
            break
        print(json.dumps(run.epoch(epoch)), flush=True)
    out = {"test_acc": run.test_accuracy(), "rss_before_mb": rss_before, "peak_rss_mb": peak_memory_mb(),
           "versions": versions(name)}
    if name == "npnet" and num_calls:
        out["inference"] = inference(run.model, data[6], data[4], num_calls)
    print(json.dumps(out), flush=True)


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
    everything = 3 * sum(per_layer)  # the count: forward, dW and dX for every layer
    return {"all": everything, "needed": everything - per_layer[0]}  # training skips layer 1's dX


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


def report(results, skipped, flops, mm, info, args, cpu):
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
        rows.append(["npnet / this: median epoch over median epoch"]
                    + [f"{npnet['epoch'] / s[n]['epoch']:.2f}" for n in names])
        ratios = {n: [a["train_time"] / b["train_time"] for a, b in
                      zip(results["npnet"]["epochs"], results[n]["epochs"])] for n in names}
        rows.append(["npnet / this: median of the per-epoch ratios"]
                    + [f"{np.median(ratios[n]):.2f}" for n in names])
    out += [table(["", *names], rows), ""]
    out += [f"- {n}: {FRAMEWORKS[n][1]}; {', '.join(f'{k} {v}' for k, v in results[n]['versions'].items())}"
            for n in names]
    out += [f"- skipped {n}: {why}" for n, why in skipped.items()]
    out += ["- Training time counts the mini-batch steps (shuffle, forward, backward, update); the accuracy "
            "evaluation after each epoch (all training examples and the dev set, without gradients) is timed "
            "apart. The frameworks take turns, one epoch each, each in its own process. Peak memory includes "
            "the loaded data and the framework's libraries.", ""]

    if npnet:
        bound = flops["all"] / (mm["peak_gflops"] * 1e9)
        strict = flops["needed"] / (mm["peak_gflops"] * 1e9)
        at_batch = flops["needed"] / (mm["batch_gflops"] * 1e9)
        out += ["## The compute bound", "", table(["", "value"], [
            ["matmul FLOPs per epoch: forward, weight and input gradients of every layer (the issue's count)",
             f"{flops['all'] / 1e9:.1f} GFLOP"],
            ["... without layer 1's input gradient, which nothing uses and training skips",
             f"{flops['needed'] / 1e9:.1f} GFLOP"],
            [f"float32 matmul throughput, {mm['square_n']}x{mm['square_n']} (peak)",
             f"{mm['peak_gflops']:.0f} GFLOP/s"],
            ["float32 matmul throughput, this recipe's products at batch 128",
             f"{mm['batch_gflops']:.0f} GFLOP/s"],
            ["compute bound: the issue's FLOPs / peak throughput", f"{bound:.3f} s"],
            ["npnet epoch (steps only) / compute bound", f"{npnet['epoch'] / bound:.2f}x"],
            ["stricter: the FLOPs training needs / peak throughput", f"{strict:.3f} s"],
            ["npnet epoch / stricter bound", f"{npnet['epoch'] / strict:.2f}x"],
            ["the FLOPs training needs at batch-128 throughput (the matmuls alone)", f"{at_batch:.3f} s"],
            ["npnet epoch / the matmuls alone", f"{npnet['epoch'] / at_batch:.2f}x"],
        ]), ""]
    inf = results.get("npnet", {}).get("inference")
    if inf:
        out += ["## Inference (npnet)", "", table(["", "value"], [
            [f"one 280x280 canvas -> {inf['pipeline']} (the app's pipeline) -> normalize -> predict_proba, "
             f"median of {inf['calls']:,}", f"{inf['median_ms']:.2f} ms"],
            ["... p99", f"{inf['p99_ms']:.2f} ms"],
            ["... of which preprocessing / model (medians)",
             f"{inf['preprocess_median_ms']:.2f} / {inf['model_median_ms']:.3f} ms"],
            ["the same through preprocess.to_mnist, without the thickness step: median / p99",
             f"{inf['to_mnist']['median_ms']:.2f} / {inf['to_mnist']['p99_ms']:.2f} ms"],
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
            f"- the run took {cpu['wall']:.0f} s; 1-minute load average at each epoch's start: median "
            f"{cpu['load_median']:.2f} (min {cpu['load_min']:.2f}, max {cpu['load_max']:.2f}); other processes "
            + ("used " + f"{cpu['others_share']:.0%}" if cpu["others_share"] is not None else "used an unknown share")
            + " of the CPUs meanwhile",
            f"- command: `{args.command}`", ""]
    return "\n".join(out)


def plot(results, flops, mm, path):
    """Two panels saved as a PNG: median epoch time per framework against the compute bound, and dev accuracy
    against cumulative training time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in FRAMEWORKS if n in results]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    medians = [summarise(results[n])["epoch"] for n in names]
    ax1.barh(names[::-1], medians[::-1], color=["tab:orange" if n == "npnet" else "tab:blue" for n in names[::-1]])
    bound = flops["all"] / (mm["peak_gflops"] * 1e9)
    ax1.axvline(bound, color="k", ls="--", lw=1, label=f"compute bound {bound:.2f} s")
    ax1.set_xlabel("seconds per epoch, training steps only (median)")
    ax1.legend(loc="lower right")
    for n in names:
        ep = results[n]["epochs"]
        ax2.plot(np.cumsum([e["train_time"] for e in ep]), [e["dev_acc"] for e in ep], "o-", ms=3, label=n)
    ax2.axhline(TARGET_DEV, color="k", ls=":", lw=1, label=f"{TARGET_DEV:.1%}")
    ax2.set_xlabel("cumulative training seconds")
    ax2.set_ylabel("dev accuracy")
    ax2.set_ylim(0.95, 0.99)
    ax2.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- the run: every framework, one epoch each in turn
class Worker:
    """A framework's subprocess: started, fed `epoch` lines, answered with one JSON line each."""

    def __init__(self, name, args):
        self.name, self.log = name, tempfile.TemporaryFile("w+")
        cmd = [sys.executable, __file__, "--worker", name, "--epochs", str(args.epochs),
               "--n-train", str(args.n_train), "--n-dev", str(args.n_dev), "--calls", str(args.calls)]
        print(f"starting {name} ...", file=sys.stderr)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, cwd=ROOT)
        self.ask(None)  # wait until it has loaded the data and built its model

    def ask(self, command):
        """Send a command (or nothing) and return the JSON answer; RuntimeError if the worker died."""
        if command:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.log.seek(0)
            tail = self.log.read().strip().splitlines()[-1:] or ["no error message"]
            raise RuntimeError(f"the {self.name} run failed: {tail[0]}")
        return json.loads(line)

    def cpu_seconds(self):
        """User + system CPU time of the worker so far (Linux), or 0."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0


def _busy_cpu_seconds():
    """CPU seconds all processes have used since boot (Linux /proc/stat), or None."""
    try:
        user, nice, system, idle, iowait, irq, softirq, steal = map(
            int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def rounds(workers, num_epochs, skipped):
    """Epoch 1 of every framework, then epoch 2 of every framework, ...: a change in the machine's load hits all.

    Returns ({name: results}, {how busy the rest of the machine was})."""
    epochs = {name: [] for name in workers}
    busy0, wall0, own0 = _busy_cpu_seconds(), time.perf_counter(), time.process_time()
    cpu0 = {name: w.cpu_seconds() for name, w in workers.items()}
    loads = []
    for epoch in range(num_epochs):
        loads.append(os.getloadavg()[0])
        print(f"epoch {epoch + 1}/{num_epochs}: " + ", ".join(workers), file=sys.stderr)
        for name, w in list(workers.items()):
            time.sleep(SETTLE)  # let the previous framework's idle threads stop spinning
            try:
                epochs[name].append(w.ask("epoch"))
            except RuntimeError as e:
                skipped[name] = str(e)
                del workers[name]
    ours = sum(w.cpu_seconds() - cpu0[name] for name, w in workers.items()) + time.process_time() - own0
    wall = time.perf_counter() - wall0
    others = None if busy0 is None else max(0.0, _busy_cpu_seconds() - busy0 - ours) / (wall * os.cpu_count())
    results = {}
    for name, w in workers.items():
        try:
            results[name] = {"epochs": epochs[name], **w.ask("done")}
        except RuntimeError as e:
            skipped[name] = str(e)
        w.proc.wait()
    return results, {"others_share": others, "load_min": min(loads), "load_max": max(loads),
                     "load_median": float(np.median(loads)), "wall": wall}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one epoch on 2,000 examples: checks it works, times nothing")
    p.add_argument("--epochs", type=int, help="epochs per framework (default: the recipe's 15; 1 when --quick)")
    p.add_argument("--frameworks", help="comma-separated subset of " + ", ".join(FRAMEWORKS)
                   + " (default: all; --quick leaves out pytorch-fused)")
    p.add_argument("--json", type=Path, help="also write every raw number here")
    p.add_argument("--plot", type=Path, help="also draw epoch times and dev accuracy over time to this PNG")
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
        worker(args.worker, args.epochs, args.n_train, args.n_dev, args.calls)
        return 0

    args.command = "python benchmarks/bench.py" + (" --quick" if args.quick else "") + \
        (f" --epochs {args.epochs}" if args.epochs != (1 if args.quick else MLP["num_epochs"]) else "") + \
        (f" --plot {args.plot}" if args.plot else "")
    default = [n for n in FRAMEWORKS if not (args.quick and n == "pytorch-fused")]
    wanted = [n.strip() for n in args.frameworks.split(",") if n.strip()] if args.frameworks else default
    unknown = set(wanted) - set(FRAMEWORKS)
    if unknown:
        p.error(f"unknown framework(s) {sorted(unknown)}; choose from {list(FRAMEWORKS)}")
    info = machine()
    print(f"Benchmarking on {info['cpu']} ({info['cores']} cores); BLAS: {'; '.join(info['blas'])}", file=sys.stderr)
    mm = matmul_throughput(args.quick)
    workers, skipped = {}, {}
    for name in wanted:
        module = FRAMEWORKS[name][0]
        if importlib.util.find_spec(module) is None:
            skipped[name] = f"`{module}` is not installed (`make bench` installs it)"
            print(f"skipped {name}: {skipped[name]}", file=sys.stderr)
            continue
        try:
            workers[name] = Worker(name, args)
        except RuntimeError as e:
            skipped[name] = str(e)
            print(f"skipped {name}: {e}", file=sys.stderr)
    if "npnet" not in workers:
        print("npnet did not start: nothing to compare against", file=sys.stderr)
        return 1
    results, cpu = rounds(workers, args.epochs, skipped)
    if "npnet" not in results:
        print(f"npnet failed: {skipped.get('npnet')}", file=sys.stderr)
        return 1
    flops = epoch_flops(args.n_train)
    print(report(results, skipped, flops, mm, info, args, cpu))
    if args.plot:
        plot(results, flops, mm, args.plot)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "matmul": mm, "flops": flops, "results": results,
                                         "skipped": skipped, "cpu": cpu}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
