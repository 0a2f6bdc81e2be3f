"""Benchmark: the seed's MLP recipe and the CNN recipe's network trained by npnet and PyTorch (CPU), the MLP also by
scikit-learn, side by side; plus inference, the compute bounds, a per-layer profile of the CNN step, and the
sketchpad's live update with the "look inside" panel off and on (benchmarks/inside_panel.py).

    python benchmarks/bench.py            # the full run: 50k examples, the recipes' 15 (MLP) and 12 (CNN) epochs
    python benchmarks/bench.py --quick    # one short epoch of each on a subset, so CI can check that it still works

Each framework trains in its own subprocess, so that its peak memory and thread pools are its own. Times are
wall-clock seconds. An epoch's *training time* covers the mini-batch steps only (shuffle, forward, backward,
update); the accuracy evaluation after each epoch (all training examples plus the dev set, no gradients; the CNN
scores the dev set only, as its recipe does) is timed separately as *eval time*. The CNN trains without the
recipe's augmentation, so that the step is what is compared. The output is markdown, ready to paste.
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

from npnet.recipes import CNN, MLP  # noqa: E402  (the recipes: sizes, lr, L2, batch size, epochs, seed)

TARGET_DEV = 0.975
SETTLE = 0.2  # seconds between turns
FRAMEWORKS = {  # name -> (the module it needs, how it is set up)
    "npnet": ("numpy", "npnet.fit: Adam, L2 on weights, cosine lr decay"),
    "pytorch": ("torch", "torch.optim.Adam (default), same init, L2, cosine decay"),
    "pytorch-fused": ("torch", "torch.optim.Adam(fused=True), otherwise the same"),
    "sklearn": ("sklearn", 'MLPClassifier((256, 128), solver="adam", batch_size=128), partial_fit per epoch'),
}
CNN_FRAMEWORKS = {  # the CNN section: scikit-learn has no convolutions
    "npnet": ("numpy", "npnet.fit: the recipe's network (channels last), Adam, cosine lr decay, no augmentation"),
    "pytorch": ("torch", "the same network in PyTorch's default NCHW layout, He init, torch.optim.Adam (default)"),
    "pytorch-fused": ("torch", "the same, torch.optim.Adam(fused=True)"),
    "pytorch-fused-cl": ("torch", "the same as pytorch-fused, with the weights and batches in torch.channels_last"),
}
RECIPES = {"mlp": MLP, "cnn": CNN}
CNN_TARGET = 0.7  # npnet's CNN step <= 0.7x PyTorch fused Adam's


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


# ---------------------------------------------------------------- the trainers, each run in a worker process
def _data(n_train, n_dev, n_test):
    from npnet.data import load_splits

    s = load_splits()
    return (s["X_train"][:n_train], s["y_train"][:n_train], s["X_dev"][:n_dev], s["y_dev"][:n_dev],
            s["X_test"][:n_test], s["y_test"][:n_test], s["stats"])


class NpnetRun:
    """npnet: the recipe's model and Adam, trained by npnet.fit one epoch at a time."""

    def __init__(self, data, num_epochs, seed, kind="mlp"):
        from npnet import model as M
        from npnet.optim import Adam
        from npnet.recipes import cnn
        from npnet.train import cosine_lr

        cfg = self.cfg = RECIPES[kind]
        self.data, self.rng = data, np.random.default_rng(seed)
        if kind == "mlp":
            self.model = M.mlp(cfg["sizes"], self.rng)
        else:  # built as recipes.train_cnn builds it, from the same seed
            self.model = cnn(cfg["channels"], cfg["kernel_size"], cfg["hidden"], cfg["dropout"], self.rng)
        self.opt = Adam(self.model, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        self.schedule = cosine_lr(cfg["lr"], num_epochs)
        self.eval_train = kind == "mlp"  # scoring all training images costs a CNN epoch ~25%; train_cnn skips it too

    def epoch(self, epoch):
        """Train one epoch (the same steps as one fit over all epochs), then evaluate: a record."""
        from npnet.train import fit

        X, y, X_dev, y_dev = self.data[:4]
        h = fit(self.model, self.opt, X, y, X_dev, y_dev, num_epochs=1, batch_size=self.cfg["batch_size"],
                rng=self.rng, progress=False, eval_train=self.eval_train, lr_schedule=lambda _: self.schedule(epoch))
        return {"train_time": h["train_time"][0], "eval_time": h["eval_time"][0],
                "train_acc": h["train_acc"][0] if h["train_acc"] else None, "dev_acc": h["dev_acc"][0]}

    def test_accuracy(self):
        from npnet import model as M
        from npnet.metrics import accuracy

        return accuracy(M.predict(self.model, self.data[4]), self.data[5])

    def profile(self, steps, warmup):
        return npnet_profile(self.model, self.opt, self.data[0], self.data[1], self.cfg["batch_size"], steps, warmup)


def torch_mlp(torch):
    """The MLP recipe's network in PyTorch."""
    sizes, layers = MLP["sizes"], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def torch_cnn(torch):
    """recipes.cnn's network in PyTorch, layer for layer: conv-pool-ReLU twice, dense-ReLU-dropout-dense."""
    k, c_in, side, layers = CNN["kernel_size"], 1, 28, []
    for c_out in CNN["channels"]:
        layers += [torch.nn.Conv2d(c_in, c_out, k), torch.nn.MaxPool2d(2), torch.nn.ReLU()]
        c_in, side = c_out, (side - k + 1) // 2
    layers += [torch.nn.Flatten(), torch.nn.Linear(c_in * side * side, CNN["hidden"]), torch.nn.ReLU(),
               torch.nn.Dropout(CNN["dropout"]), torch.nn.Linear(CNN["hidden"], 10)]
    return torch.nn.Sequential(*layers)


class PytorchRun:
    """The same network, He init, Adam, L2, lr decay and batch size in PyTorch on the CPU, float32."""

    def __init__(self, data, num_epochs, seed, kind="mlp", fused=False, channels_last=False):
        import torch

        torch.set_num_threads(os.cpu_count())
        torch.manual_seed(seed)
        self.torch, self.num_epochs, self.cfg = torch, num_epochs, RECIPES[kind]
        self.X, self.y, self.X_dev, self.y_dev, self.X_test, self.y_test = (
            torch.from_numpy(np.asarray(a)) for a in data[:6])
        self.net = torch_mlp(torch) if kind == "mlp" else torch_cnn(torch)
        for layer in self.net:
            if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
                torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")  # He: std sqrt(2 / fan_in)
                torch.nn.init.zeros_(layer.bias)
        # the CNN's images as (N, 1, 28, 28), PyTorch's default NCHW; channels_last also stores the weights NHWC
        self.shape = (-1,) if kind == "mlp" else (-1, 1, 28, 28)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        weights = [p for p in self.net.parameters() if p.ndim > 1]
        biases = [p for p in self.net.parameters() if p.ndim == 1]
        # torch's weight_decay adds weight_decay * p to the gradient, as npnet's Adam does; weights only
        self.opt = torch.optim.Adam([{"params": weights, "weight_decay": self.cfg["weight_decay"]},
                                     {"params": biases, "weight_decay": 0.0}], lr=self.cfg["lr"], fused=fused)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.gen = torch.Generator().manual_seed(seed)

    def input(self, X):
        """A batch of rows as the network takes it: (N, 784) for the MLP, (N, 1, 28, 28) images for the CNN."""
        return X if len(self.shape) == 1 else X.view(*self.shape).contiguous(memory_format=self.memory_format)

    def accuracy(self, X, y):
        with self.torch.inference_mode():  # no autograd bookkeeping in evaluation
            pred = self.torch.cat([self.net(self.input(X[i:i + 2048])).argmax(1) for i in range(0, len(X), 2048)])
        return float((pred == y).float().mean())

    def step(self, X, y):
        loss = self.loss_fn(self.net(self.input(X)), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def epoch(self, epoch):
        for group in self.opt.param_groups:  # the same cosine decay, by epoch
            group["lr"] = self.cfg["lr"] * 0.5 * (1 + math.cos(math.pi * epoch / self.num_epochs))
        X, y, batch_size = self.X, self.y, self.cfg["batch_size"]
        self.net.train()
        start = time.perf_counter()
        order = self.torch.randperm(len(X), generator=self.gen)
        for i in range(0, len(X), batch_size):
            idx = order[i:i + batch_size]
            self.step(X[idx], y[idx])
        train_time = time.perf_counter() - start
        self.net.eval()  # dropout off for scoring
        start = time.perf_counter()
        train_acc = self.accuracy(X, y) if self.cfg is MLP else None  # the CNN scores the dev set only, as npnet's
        dev_acc = self.accuracy(self.X_dev, self.y_dev)
        return {"train_time": train_time, "eval_time": time.perf_counter() - start,
                "train_acc": train_acc, "dev_acc": dev_acc}

    def test_accuracy(self):
        self.net.eval()
        return self.accuracy(self.X_test, self.y_test)

    def profile(self, steps, warmup):
        return torch_profile(self, steps, warmup)


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


RUNS = {  # (model, framework) -> how a worker builds its run from (data, num_epochs, seed)
    ("mlp", "npnet"): NpnetRun, ("mlp", "pytorch"): PytorchRun, ("mlp", "sklearn"): SklearnRun,
    ("mlp", "pytorch-fused"): lambda *a: PytorchRun(*a, fused=True),
    ("cnn", "npnet"): lambda *a: NpnetRun(*a, kind="cnn"),
    ("cnn", "pytorch"): lambda *a: PytorchRun(*a, kind="cnn"),
    ("cnn", "pytorch-fused"): lambda *a: PytorchRun(*a, kind="cnn", fused=True),
    ("cnn", "pytorch-fused-cl"): lambda *a: PytorchRun(*a, kind="cnn", fused=True, channels_last=True),
}


# ---------------------------------------------------------------- the CNN step, layer by layer
def layer_name(layer):
    """A readable name shared by npnet's and PyTorch's layers: 'Conv2D 1→32 5×5', 'Dense 1024→128', 'ReLU', ..."""
    kind = type(layer).__name__
    if kind in ("Conv2D", "Conv2d"):
        c, f, k = ((layer.in_channels, layer.out_channels, layer.kernel_size) if kind == "Conv2D"
                   else (layer.in_channels, layer.out_channels, layer.kernel_size[0]))
        return f"Conv2D {c}→{f} {k}×{k}"
    if kind in ("MaxPool2D", "MaxPool2d"):
        s = layer.size if kind == "MaxPool2D" else layer.kernel_size
        return f"MaxPool2D {s}×{s}"
    if kind == "Dense":
        return "Dense {}→{}".format(*layer.params["W"].shape)
    if kind == "Linear":
        return f"Dense {layer.in_features}→{layer.out_features}"
    if kind == "Dropout":
        return f"Dropout {layer.p}"
    if kind == "Reshape":
        return f"Reshape to {layer.shape}"
    return kind


def _profile_batches(X, y, batch_size, n, seed=1):
    rng = np.random.default_rng(seed)
    return [(X[idx], y[idx]) for idx in (rng.choice(len(X), batch_size, replace=False) for _ in range(n))]


def _medians_ms(records):
    """{piece: median over the steps in ms} from a list of {piece: seconds}, one per step."""
    return {k: float(np.median([r[k] for r in records])) * 1000 for k in records[0]}


def npnet_profile(model, opt, X, y, batch_size, steps, warmup):
    """Each layer's forward and backward, the loss and Adam, timed over `steps` training steps after `warmup`:
    medians in ms, and the whole step's median with and without the timers."""
    from npnet import model as M
    from npnet.losses import SoftmaxCrossEntropy

    loss_fn, pc = SoftmaxCrossEntropy(), time.perf_counter
    first = next(i for i, layer in enumerate(model) if layer.params)  # training runs no backward below it
    M.set_training(model, True)
    records = []
    for xb, yb in _profile_batches(X, y, batch_size, warmup + steps):
        r, t0 = {}, pc()
        for i, layer in enumerate(model):
            t = pc()
            xb = layer.forward(xb)
            r[i, "forward"] = pc() - t
        t = pc()
        loss_fn.forward(xb, yb)
        r["loss forward"] = pc() - t
        t = pc()
        grad = loss_fn.backward()
        r["loss backward"] = pc() - t
        for i in range(len(model) - 1, first - 1, -1):
            t = pc()
            grad = model[i].backward(grad, input_grad=False) if i == first else model[i].backward(grad)
            r[i, "backward"] = pc() - t
        t = pc()
        opt.step()
        r["optimizer"] = pc() - t
        r["step"] = pc() - t0
        records.append(r)
    med = _medians_ms(records[warmup:])

    def plain_step(xb, yb):  # what fit does, with no timers
        loss_fn.forward(M.forward(model, xb), yb)
        M.backward(model, loss_fn.backward(), input_grad=False)
        opt.step()
    return {"layers": [[layer_name(layer), med[i, "forward"], med.get((i, "backward"), 0.0)]
                       for i, layer in enumerate(model)],
            "loss_ms": [med["loss forward"], med["loss backward"]], "optimizer_ms": med["optimizer"],
            "step_ms": med["step"], "clean_step_ms": _clean_step_ms(plain_step, X, y, batch_size, steps, warmup),
            "steps": steps}


def _clean_step_ms(step, X, y, batch_size, steps, warmup):
    """The median of `steps` calls of step(X_batch, y_batch) after `warmup`, in ms."""
    times = []
    for xb, yb in _profile_batches(X, y, batch_size, warmup + steps, seed=2):
        t0 = time.perf_counter()
        step(xb, yb)
        times.append(time.perf_counter() - t0)
    return float(np.median(times[warmup:])) * 1000


def torch_profile(run, steps, warmup):
    """PyTorch's step split as npnet_profile splits npnet's, with forward and full backward hooks on every layer."""
    import warnings

    torch, net, pc = run.torch, run.net, time.perf_counter
    marks, handles = {}, []

    def mark(key, i):
        def hook(*_):
            marks[key, i] = pc()
        return hook

    for i, layer in enumerate(net):
        handles += [layer.register_forward_pre_hook(mark("f0", i)), layer.register_forward_hook(mark("f1", i)),
                    layer.register_full_backward_pre_hook(mark("b0", i)),
                    layer.register_full_backward_hook(mark("b1", i))]
    net.train()
    records = []
    with warnings.catch_warnings():
        # the first conv's input needs no gradient, so its hooks both fire before its backward runs: its backward
        # is timed from its pre-hook to the end of loss.backward() instead
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        for xb, yb in _profile_batches(run.X, run.y, run.cfg["batch_size"], warmup + steps):
            t0 = pc()
            logits = net(run.input(xb))
            t1 = pc()
            loss = run.loss_fn(logits, yb)
            t2 = pc()
            run.opt.zero_grad(set_to_none=True)
            t3 = pc()
            loss.backward()
            t4 = pc()
            run.opt.step()
            t5 = pc()
            r = {(i, "forward"): marks["f1", i] - marks["f0", i] for i in range(len(net))}
            r.update({(i, "backward"): marks["b1", i] - marks["b0", i] for i in range(1, len(net))})
            r[0, "backward"] = t4 - marks["b0", 0]
            r["loss"] = t2 - t1
            r["backward outside the layers"] = t4 - t3 - sum(r[i, "backward"] for i in range(len(net)))
            r["optimizer"] = (t5 - t4) + (t3 - t2)  # step and zero_grad
            r["step"] = t5 - t0
            records.append(r)
    for h in handles:
        h.remove()
    med = _medians_ms(records[warmup:])
    return {"layers": [[layer_name(layer), med[i, "forward"], med[i, "backward"]] for i, layer in enumerate(net)],
            "loss_ms": [med["loss"], med["backward outside the layers"]], "optimizer_ms": med["optimizer"],
            "step_ms": med["step"], "clean_step_ms": _clean_step_ms(run.step, run.X, run.y, run.cfg["batch_size"],
                                                                   steps, warmup),
            "steps": steps}


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


def worker(name, kind, num_epochs, n_train, n_dev, n_test, num_calls, profile_steps):
    """Serve one framework: train an epoch per `epoch` line on stdin, answer each with a JSON line; then finish."""
    data = _data(n_train, n_dev, n_test)
    run = RUNS[kind, name](data, num_epochs, RECIPES[kind]["seed"])
    rss_before = reset_peak_memory()
    print(json.dumps({"ready": name}), flush=True)
    for epoch, command in enumerate(sys.stdin):
        if command.strip() != "epoch":
            break
        print(json.dumps(run.epoch(epoch)), flush=True)
    out = {"test_acc": run.test_accuracy(), "rss_before_mb": rss_before, "peak_rss_mb": peak_memory_mb(),
           "versions": versions(name)}
    if kind == "mlp" and name == "npnet" and num_calls:
        out["inference"] = inference(run.model, data[6], data[4], num_calls)
    if kind == "cnn" and profile_steps:  # after training, on the trained weights: the steps it was timing
        out["profile"] = run.profile(profile_steps, warmup=max(2, profile_steps // 4))
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


def products(kind, batch):
    """One step's forward matmuls as (layer name, M, K, N), one per layer with weights: the MLP's x @ W, and the
    CNN's im2col product cols (batch·Ho·Wo, k·k·C) @ W (k·k·C, F) for each conv and x @ W for each Dense."""
    if kind == "mlp":
        sizes = MLP["sizes"]
        return [(f"Dense {i}→{o}", batch, i, o) for i, o in zip(sizes[:-1], sizes[1:])]
    k, c_in, side, out = CNN["kernel_size"], 1, 28, []
    for c_out in CNN["channels"]:
        side = side - k + 1                                            # a 'valid' conv: 28 → 24, 12 → 8
        out.append((f"Conv2D {c_in}→{c_out} {k}×{k}", batch * side * side, k * k * c_in, c_out))
        c_in, side = c_out, side // 2                                  # the 2×2 pool
    return out + [(f"Dense {c_in * side * side}→{CNN['hidden']}", batch, c_in * side * side, CNN["hidden"]),
                  (f"Dense {CNN['hidden']}→10", batch, CNN["hidden"], 10)]


def step_flops(kind, batch):
    """Matmul FLOPs of a step of `batch` examples: forward, weight gradients, input gradients (all, and without the
    first layer's input gradient, which training skips). Linear in batch, so also an epoch's with batch = n_train."""
    per_layer = [2 * m * k * n for _, m, k, n in products(kind, batch)]
    everything = 3 * sum(per_layer)  # the count: forward, dW and dX for every layer
    return {"all": everything, "needed": everything - per_layer[0]}


def epoch_flops(n_train, kind="mlp"):
    """Matmul FLOPs of one epoch: forward, weight gradients, input gradients (all, and without layer 1's)."""
    return step_flops(kind, n_train)


def cnn_matmuls(quick):
    """The CNN step's matrix multiplies alone, at batch 128, written as npnet writes them (X @ W, X.T @ G, G @ W.T),
    on random float32 arrays: the floor of an im2col design. Each product's median in ms, and the needed set's."""
    rng = np.random.default_rng(0)
    layers, step = [], []
    for i, (name, m, k, n) in enumerate(products("cnn", CNN["batch_size"])):
        X, W, G = (rng.standard_normal(shape, dtype=np.float32) for shape in ((m, k), (k, n), (m, n)))
        dW = np.empty((k, n), np.float32)
        fs = [lambda X=X, W=W: X @ W, lambda X=X, G=G, dW=dW: np.matmul(X.T, G, out=dW), lambda G=G, W=W: G @ W.T]
        fs = fs if i else fs[:2]                                       # training skips the first conv's dX
        layers.append([name] + [_median_time(f, 1 if quick else 30) * 1000 for f in fs] + [None] * (3 - len(fs)))
        step += fs
    step_ms = _median_time(lambda: [f() for f in step], 1 if quick else 30) * 1000
    needed = step_flops("cnn", CNN["batch_size"])["needed"]
    return {"layers": layers, "step_ms": step_ms, "gflops": needed / step_ms / 1e6}


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


def mlp_report(results, skipped, flops, mm, args):
    """The MLP's sections of the report: a list of markdown lines."""
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
        *_memory_rows(s, names),
    ]
    if npnet:
        rows += _ratios(results, names)
    out += [table(["", *names], rows), ""]
    out += _framework_lines(FRAMEWORKS, results, names, skipped)
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

    return out


def _memory_rows(s, names):
    """The two memory rows of a training table, from summarise()'s numbers."""
    return [["peak memory (RSS) while training"] + [f"{s[n]['peak_mb']:.0f} MB" for n in names],
            ["... of which added by training"]
            + [f"{s[n]['peak_mb'] - s[n]['rss_before_mb']:.0f} MB" if s[n]["rss_before_mb"] else "?" for n in names]]


def _framework_lines(frameworks, results, names, skipped):
    """One line per framework that ran (how it is set up, its versions) and one per framework skipped."""
    return ([f"- {n}: {frameworks[n][1]}; {', '.join(f'{k} {v}' for k, v in results[n]['versions'].items())}"
             for n in names] + [f"- skipped {n}: {why}" for n, why in skipped.items()])


def _ratios(results, names):
    """npnet / each framework: the median epoch over the median epoch, and the median of the per-epoch ratios."""
    epoch = {n: summarise(results[n])["epoch"] for n in names}
    per_epoch = {n: [a["train_time"] / b["train_time"] for a, b in
                     zip(results["npnet"]["epochs"], results[n]["epochs"])] for n in names}
    return [["npnet / this: median epoch over median epoch"] + [f"{epoch['npnet'] / epoch[n]:.2f}" for n in names],
            ["npnet / this: median of the per-epoch ratios"] + [f"{np.median(per_epoch[n]):.2f}" for n in names]]


def cnn_report(results, skipped, mm, args):
    """The CNN's sections of the report: training, the compute bound, the per-layer profile, the target."""
    names = [n for n in CNN_FRAMEWORKS if n in results]
    s = {n: summarise(results[n]) for n in names}
    batch = CNN["batch_size"]
    steps = -(-args.n_train // batch)  # steps per epoch
    step = {n: s[n]["epoch"] / steps * 1000 for n in names}  # ms
    out = [f"## Training: the CNN recipe's network ({args.n_train:,} examples, {args.cnn_epochs} epoch(s), batch "
           f"{batch}, no augmentation)", ""]
    rows = [
        [f"step time, training steps only (median epoch / {steps} steps)"] + [f"{step[n]:.1f} ms" for n in names],
        ["epoch time, training steps only (median)"] + [f"{s[n]['epoch']:.2f} s" for n in names],
        ["epoch time incl. dev accuracy (median)"] + [f"{s[n]['epoch_with_eval']:.2f} s" for n in names],
        ["total training time (steps only)"] + [f"{s[n]['total']:.1f} s" for n in names],
        ["final dev accuracy"] + [f"{s[n]['dev_acc']:.4f}" for n in names],
        ["test accuracy"] + [f"{s[n]['test_acc']:.4f}" for n in names],
        *_memory_rows(s, names),
    ] + _ratios(results, names)
    out += [table(["", *names], rows), ""]
    out += _framework_lines(CNN_FRAMEWORKS, results, names, skipped)
    out += ["- All train the recipe's network (conv 5×5×32 → pool → ReLU → conv 5×5×64 → pool → ReLU → dense 128 "
            "→ dropout 0.5 → 10) from He init with Adam (lr 1e-3, cosine decay by epoch, no L2), batch 128, "
            "without the recipe's augmentation. Training time counts the steps only; the dev accuracy after each "
            "epoch is timed apart. The frameworks take turns, one epoch each, each in its own process.", ""]

    npnet, fl = step["npnet"], step_flops("cnn", batch)
    bound, strict = fl["all"] / (mm["peak_gflops"] * 1e6), fl["needed"] / (mm["peak_gflops"] * 1e6)  # ms
    cm = mm["cnn"]
    rows = [
        ["matmul FLOPs per step: forward, weight and input gradients of every layer",
         f"{fl['all'] / 1e9:.2f} GFLOP"],
        ["... without the first conv's input gradient, which nothing uses and training skips",
         f"{fl['needed'] / 1e9:.2f} GFLOP"],
        [f"float32 matmul throughput, {mm['square_n']}x{mm['square_n']} (peak)", f"{mm['peak_gflops']:.0f} GFLOP/s"],
        ["the step's matmuls alone: the products training needs, as npnet writes them, at batch 128",
         f"{cm['step_ms']:.1f} ms ({cm['gflops']:.0f} GFLOP/s)"],
        ["compute bound: all the FLOPs / peak throughput", f"{bound:.1f} ms"],
        ["npnet step / compute bound", f"{npnet / bound:.2f}x"],
        ["stricter: the FLOPs training needs / peak throughput", f"{strict:.1f} ms"],
        ["npnet step / stricter bound", f"{npnet / strict:.2f}x"],
        ["npnet step / the step's matmuls alone", f"{npnet / cm['step_ms']:.2f}x"],
    ] + [[f"{n} step / compute bound", f"{step[n] / bound:.2f}x"] for n in names if n != "npnet"]
    out += [f"## The CNN's compute bound (one step, batch {batch})", "", table(["", "value"], rows), ""]
    out += profile_report(results, cm)

    fused = step.get("pytorch-fused")
    if fused:
        also = ", ".join(f"{npnet / step[n]:.2f}x against {n}" for n in ("pytorch", "pytorch-fused-cl") if n in step)
        ratio = npnet / fused
        note = " (quick mode: a subset, so this says nothing)" if args.quick else ""
        out += [f"## CNN target{note}", "", table(["target", "measured", "met"], [
            [f"npnet CNN step <= {CNN_TARGET}x PyTorch fused Adam's", f"{ratio:.2f}x" + (f" ({also})" if also else ""),
             "yes" if ratio <= CNN_TARGET else "no"]]), ""]
    else:
        out += ["## CNN target", "", f"- pytorch-fused did not run, so npnet CNN step <= {CNN_TARGET}x PyTorch fused "
                "Adam's is not measured", ""]
    return out


def profile_report(results, cm):
    """The per-layer profile of the CNN step: npnet's, its matmuls alone, and PyTorch's (fused Adam if it ran)."""
    npnet = results["npnet"].get("profile")
    if not npnet:
        return []
    other = next((n for n in ("pytorch-fused", "pytorch", "pytorch-fused-cl") if results.get(n, {}).get("profile")),
                 None)
    tp = results[other]["profile"] if other else None
    matmuls = {name: sum(t for t in ts if t) for name, *ts in cm["layers"]}
    total = sum(f + b for _, f, b in npnet["layers"]) + sum(npnet["loss_ms"]) + npnet["optimizer_ms"]
    t_layers, rows = list(tp["layers"]) if tp else [], []

    def ms(x):
        return f"{x:.2f}" if x is not None else "—"
    for name, f, b in npnet["layers"]:
        t = t_layers.pop(0) if t_layers and t_layers[0][0] == name else None  # PyTorch has no Reshape layer
        rows.append([name, ms(f), ms(b) if b else "—", ms(f + b), f"{(f + b) / total:.0%}",
                     ms(matmuls.pop(name)) if name in matmuls else ""]
                    + ([ms(t[1]), ms(t[2]), ms(t[1] + t[2])] if t else ["—", "—", "—"] if tp else []))
    loss, tloss = npnet["loss_ms"], tp["loss_ms"] if tp else None
    rows.append(["loss: softmax cross-entropy" + (" (PyTorch's backward: all autograd work outside the layers)"
                                                  if tp else ""),
                 ms(loss[0]), ms(loss[1]), ms(sum(loss)), f"{sum(loss) / total:.0%}", ""]
                + ([ms(tloss[0]), ms(tloss[1]), ms(sum(tloss))] if tp else []))
    rows.append(["Adam step" + (" (PyTorch: with zero_grad)" if tp else ""), "", "", ms(npnet["optimizer_ms"]),
                 f"{npnet['optimizer_ms'] / total:.0%}", ""] + (["", "", ms(tp["optimizer_ms"])] if tp else []))
    t_total = (sum(f + b for _, f, b in tp["layers"]) + sum(tp["loss_ms"]) + tp["optimizer_ms"]) if tp else None
    rows.append(["**sum of the medians above**", "", "", f"**{total:.2f}**", "", f"{cm['step_ms']:.2f}"]
                + (["", "", f"**{t_total:.2f}**"] if tp else []))
    rows.append(["the whole step, timed as above (median)", "", "", ms(npnet["step_ms"]), "", ""]
                + (["", "", ms(tp["step_ms"])] if tp else []))
    rows.append(["the whole step with no timers or hooks (median)", "", "", ms(npnet["clean_step_ms"]), "", ""]
                + (["", "", ms(tp["clean_step_ms"])] if tp else []))
    header = ["layer", "npnet forward", "npnet backward", "npnet total", "share", "npnet's matmuls alone"]
    header += [f"{other} forward", f"{other} backward", f"{other} total"] if tp else []
    top = sorted(((f + b, name) for name, f, b in npnet["layers"]), reverse=True)[:3]
    return [f"## Where the CNN step goes, layer by layer (ms, medians of {npnet['steps']} steps at batch "
            f"{CNN['batch_size']})", "", table(header, rows), "",
            "- Each piece is timed alone, after warm-up, on the trained network in its own worker; a layer's backward "
            "fills its weight gradients and, except for the first conv, its input gradient. *npnet's matmuls "
            "alone* are the same products (forward, dW, dX) timed by themselves on random arrays in the main "
            "process. PyTorch's layers are timed with forward and full backward hooks, which add a little overhead "
            "of their own (compare the last two rows).",
            "- npnet's three costliest layers: " + ", ".join(f"{name} {t:.1f} ms" for t, name in top), ""]


def machine_report(info, cpus, args):
    """The machine section: what ran the benchmark and how busy it was during each section."""
    blas = "; ".join(info["blas"])
    env = ", ".join(f"{k}={v}" for k, v in info["openblas_env"].items()) or "none set"
    out = ["## Machine", "",
           f"- {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB; {info['os']}; Python {info['python']}",
           f"- NumPy {info['numpy']}, BLAS: {blas}; OPENBLAS_* variables: {env}"]
    for label, cpu in cpus.items():
        out.append(f"- the {label} run took {cpu['wall']:.0f} s; 1-minute load average at each epoch's start: median "
                   f"{cpu['load_median']:.2f} (min {cpu['load_min']:.2f}, max {cpu['load_max']:.2f}); other processes "
                   + ("used " + f"{cpu['others_share']:.0%}" if cpu["others_share"] is not None
                      else "used an unknown share") + " of the CPUs meanwhile")
    return out + [f"- command: `{args.command}`", ""]


def plot(results, names, bound, path, ylim=None, target=None):
    """Two panels saved as a PNG: median epoch time per framework against the compute bound (seconds per epoch),
    and dev accuracy against cumulative training time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in names if n in results]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    medians = [summarise(results[n])["epoch"] for n in names]
    ax1.barh(names[::-1], medians[::-1], color=["tab:orange" if n == "npnet" else "tab:blue" for n in names[::-1]])
    ax1.axvline(bound, color="k", ls="--", lw=1, label=f"compute bound {bound:.2f} s")
    ax1.set_xlabel("seconds per epoch, training steps only (median)")
    ax1.legend(loc="lower right")
    for n in names:
        ep = results[n]["epochs"]
        ax2.plot(np.cumsum([e["train_time"] for e in ep]), [e["dev_acc"] for e in ep], "o-", ms=3, label=n)
    if target:
        ax2.axhline(target, color="k", ls=":", lw=1, label=f"{target:.1%}")
    ax2.set_xlabel("cumulative training seconds")
    ax2.set_ylabel("dev accuracy")
    if ylim:
        ax2.set_ylim(*ylim)
    ax2.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- the run: every framework, one epoch each in turn
class Worker:
    """A framework's subprocess: started, fed `epoch` lines, answered with one JSON line each."""

    def __init__(self, name, kind, num_epochs, args):
        self.name, self.log = name, tempfile.TemporaryFile("w+")
        cmd = [sys.executable, __file__, "--worker", name, "--model", kind, "--epochs", str(num_epochs),
               "--n-train", str(args.n_train), "--n-dev", str(args.n_dev), "--n-test", str(args.n_test),
               "--calls", str(args.calls),
               "--profile-steps", str(args.profile_steps)]
        print(f"starting {name} ({kind}) ...", file=sys.stderr)
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


def rounds(workers, num_epochs, skipped, label=""):
    """Epoch 1 of every framework, then epoch 2 of every framework, ...: a change in the machine's load hits all.

    Returns ({name: results}, {how busy the rest of the machine was})."""
    epochs = {name: [] for name in workers}
    busy0, wall0, own0 = _busy_cpu_seconds(), time.perf_counter(), time.process_time()
    cpu0 = {name: w.cpu_seconds() for name, w in workers.items()}
    loads = []
    for epoch in range(num_epochs):
        loads.append(os.getloadavg()[0])
        print(f"{label}epoch {epoch + 1}/{num_epochs}: " + ", ".join(workers), file=sys.stderr)
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


def run_section(kind, names, num_epochs, args):
    """Start a worker per framework and train them in turns: (results, skipped, cpu), or None if npnet did not run."""
    frameworks = FRAMEWORKS if kind == "mlp" else CNN_FRAMEWORKS
    workers, skipped = {}, {}
    for name in names:
        module = frameworks[name][0]
        if importlib.util.find_spec(module) is None:
            skipped[name] = f"`{module}` is not installed (`make bench` installs it)"
            print(f"skipped {name}: {skipped[name]}", file=sys.stderr)
            continue
        try:
            workers[name] = Worker(name, kind, num_epochs, args)
        except RuntimeError as e:
            skipped[name] = str(e)
            print(f"skipped {name}: {e}", file=sys.stderr)
    if "npnet" not in workers:
        print(f"npnet did not start ({kind}): nothing to compare against", file=sys.stderr)
        return None
    results, cpu = rounds(workers, num_epochs, skipped, label=f"{kind.upper()} ")
    if "npnet" not in results:
        print(f"npnet failed ({kind}): {skipped.get('npnet')}", file=sys.stderr)
        return None
    return results, skipped, cpu


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one epoch of each model on 2,000 examples, 2,000 dev "
                   "and test images: checks it works, times nothing")
    p.add_argument("--epochs", type=int, help="MLP epochs per framework (default: the recipe's 15; 1 when --quick)")
    p.add_argument("--cnn-epochs", type=int, help="CNN epochs per framework (default: the recipe's 12; 1 when --quick)")
    p.add_argument("--models", default="mlp,cnn,panel", help="which sections to run, of mlp, cnn and panel (the "
                   "sketchpad's update with the inside panel off and on: benchmarks/inside_panel.py); default all three")
    p.add_argument("--frameworks", help="comma-separated subset of " + ", ".join({**FRAMEWORKS, **CNN_FRAMEWORKS})
                   + " (default: all; --quick runs pytorch-fused for the CNN only and pytorch for the MLP only)")
    p.add_argument("--json", type=Path, help="also write every raw number here")
    p.add_argument("--plot", type=Path, help="also draw epoch times and dev accuracy over time to this PNG "
                   "(and the CNN's to the same name with _cnn added)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--model", default="mlp", help=argparse.SUPPRESS)
    p.add_argument("--n-train", type=int, help=argparse.SUPPRESS)
    p.add_argument("--n-dev", type=int, help=argparse.SUPPRESS)
    p.add_argument("--n-test", type=int, help=argparse.SUPPRESS)
    p.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    p.add_argument("--profile-steps", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.epochs = args.epochs or (1 if args.quick else MLP["num_epochs"])
    args.cnn_epochs = args.cnn_epochs or (1 if args.quick else CNN["num_epochs"])
    args.n_train = args.n_train or (2000 if args.quick else 50_000)
    args.n_dev = args.n_dev or (2000 if args.quick else 10_000)
    args.n_test = args.n_test or (2000 if args.quick else 10_000)  # the whole test set, but for --quick
    args.calls = args.calls if args.calls is not None else (50 if args.quick else 1000)
    args.profile_steps = args.profile_steps if args.profile_steps is not None else (5 if args.quick else 20)
    if args.worker:
        worker(args.worker, args.model, args.epochs, args.n_train, args.n_dev, args.n_test, args.calls,
               args.profile_steps)
        return 0

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models or set(models) - set(RECIPES) - {"panel"}:
        p.error(f"--models: choose from {list(RECIPES) + ['panel']}")
    args.command = "python benchmarks/bench.py" + (" --quick" if args.quick else "") + \
        (f" --epochs {args.epochs}" if args.epochs != (1 if args.quick else MLP["num_epochs"]) else "") + \
        (f" --cnn-epochs {args.cnn_epochs}" if args.cnn_epochs != (1 if args.quick else CNN["num_epochs"]) else "") + \
        (f" --models {args.models}" if models != ["mlp", "cnn", "panel"] else "") + \
        (f" --plot {args.plot}" if args.plot else "")
    wanted = [n.strip() for n in args.frameworks.split(",") if n.strip()] if args.frameworks else None
    unknown = set(wanted or ()) - set(FRAMEWORKS) - set(CNN_FRAMEWORKS)
    if unknown:
        p.error(f"unknown framework(s) {sorted(unknown)}; choose from {list({**FRAMEWORKS, **CNN_FRAMEWORKS})}")
    info = machine()
    print(f"Benchmarking on {info['cpu']} ({info['cores']} cores); BLAS: {'; '.join(info['blas'])}", file=sys.stderr)
    mm = matmul_throughput(args.quick)
    if "cnn" in models:
        mm["cnn"] = cnn_matmuls(args.quick)
    out, raw, cpus = [], {"machine": info, "matmul": mm}, {}
    if "mlp" in models:
        default = [n for n in FRAMEWORKS if not (args.quick and n == "pytorch-fused")]
        section = run_section("mlp", [n for n in wanted or default if n in FRAMEWORKS], args.epochs, args)
        if section is None:
            return 1
        results, skipped, cpus["MLP"] = section
        flops = epoch_flops(args.n_train)
        out += mlp_report(results, skipped, flops, mm, args)
        raw.update(flops=flops, results=results, skipped=skipped, cpu=cpus["MLP"])
        if args.plot:
            plot(results, FRAMEWORKS, flops["all"] / (mm["peak_gflops"] * 1e9), args.plot, (0.95, 0.99), TARGET_DEV)
    if "cnn" in models:
        # the CNN's target is against fused Adam, so --quick runs that PyTorch
        default = ["npnet", "pytorch-fused"] if args.quick else list(CNN_FRAMEWORKS)
        section = run_section("cnn", [n for n in wanted or default if n in CNN_FRAMEWORKS], args.cnn_epochs, args)
        if section is None:
            return 1
        results, skipped, cpus["CNN"] = section
        out += cnn_report(results, skipped, mm, args)
        raw["cnn"] = {"flops_per_step": step_flops("cnn", CNN["batch_size"]), "results": results,
                      "skipped": skipped, "cpu": cpus["CNN"]}
        if args.plot:
            bound = step_flops("cnn", args.n_train)["all"] / (mm["peak_gflops"] * 1e9)  # s per epoch
            plot(results, CNN_FRAMEWORKS, bound, args.plot.with_name(f"{args.plot.stem}_cnn{args.plot.suffix}"))
    if "panel" in models:                                   # benchmarks/inside_panel.py, in this process
        spec = importlib.util.spec_from_file_location("inside_panel", Path(__file__).with_name("inside_panel.py"))
        panel = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(panel)
        lines, raw["inside_panel"] = panel.run(args.quick)
        out += lines
    print("\n".join(out + machine_report(info, cpus, args)))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
