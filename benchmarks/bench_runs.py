"""The trainers, each run in its own worker process: npnet, PyTorch and scikit-learn, the data they load, their peak
memory, npnet's inference latency, and `worker`, the loop a worker process runs.

bench.py starts one worker per framework (`bench.py --worker NAME`) and talks to it over stdin and stdout: `worker`
answers each `epoch` line with one epoch's times and accuracies as a JSON line, then sends its final numbers.
"""

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench_config import RECIPES
from bench_machine import versions
from bench_profile import npnet_profile, torch_profile
from npnet.recipes import CNN, MLP


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

    def __init__(self, data, num_epochs, seed, kind="mlp", data_parallel=False):
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
        self.data_parallel = data_parallel

    def epoch(self, epoch):
        """Train one epoch (the same steps as one fit over all epochs), then evaluate: a record."""
        from npnet.train import fit

        X, y, X_dev, y_dev = self.data[:4]
        h = fit(self.model, self.opt, X, y, X_dev, y_dev, num_epochs=1, batch_size=self.cfg["batch_size"],
                rng=self.rng, progress=False, eval_train=self.eval_train, lr_schedule=lambda _: self.schedule(epoch),
                data_parallel=self.data_parallel)
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
    ("cnn", "npnet-parallel"): lambda *a: NpnetRun(*a, kind="cnn", data_parallel=True),
    ("cnn", "pytorch"): lambda *a: PytorchRun(*a, kind="cnn"),
    ("cnn", "pytorch-fused"): lambda *a: PytorchRun(*a, kind="cnn", fused=True),
    ("cnn", "pytorch-fused-cl"): lambda *a: PytorchRun(*a, kind="cnn", fused=True, channels_last=True),
}


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


# ---------------------------------------------------------------- the worker: one framework over stdin and stdout
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
    # after training, on the trained weights: the steps it was timing. npnet-parallel's layers are npnet's, run on two
    # threads at once, so they have no layer-by-layer times of their own.
    if kind == "cnn" and profile_steps and name != "npnet-parallel":
        out["profile"] = run.profile(profile_steps, warmup=max(2, profile_steps // 4))
    print(json.dumps(out), flush=True)
