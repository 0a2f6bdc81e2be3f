"""The machine and the compute bounds: what ran the benchmark, its float32 matmul throughput, and the matrix products
and FLOPs a training step or epoch needs."""

import os
import platform
import time
from pathlib import Path

import numpy as np

from npnet.recipes import CNN, MLP


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
    """The CNN step's matrix multiplies alone, at batch 128, written as npnet writes them (X @ W and X.T @ G, a
    conv's X with its column of ones; a conv's input gradient as conv_input_grad's per-offset products, one output
    row of the whole batch at a time; G @ W.T for a Dense), on random float32 arrays: the floor of an im2col design.
    Each product's median in ms, and the needed set's."""
    rng = np.random.default_rng(0)
    layers, step = [], []
    k, batch = CNN["kernel_size"], CNN["batch_size"]
    for i, (name, m, K, n) in enumerate(products("cnn", batch)):
        conv = name.startswith("Conv2D")
        K1 = K + 1 if conv else K                                      # a conv's cols carry a column of ones
        X, W, G = (rng.standard_normal(shape, dtype=np.float32) for shape in ((m, K1), (K1, n), (m, n)))
        dW = np.empty((K1, n), np.float32)
        if conv:  # (k·k, F, C) per-offset kernels; G one output row (Wo pixels of every example) at a time
            per_offset = W[:K].reshape(k * k, K // (k * k), n).transpose(0, 2, 1)
            rows = int(round(np.sqrt(m // batch))) * batch             # Wo·batch rows: square feature maps
            out = np.empty((k * k, rows, K // (k * k)), np.float32)  # reused, as fit's steps reuse freed memory: a
            # fresh 3 MB array per call would be fresh pages from the OS each time, which training never sees
            dX = lambda G=G, P=per_offset, rows=rows, out=out: [np.matmul(G[r:r + rows], P, out=out)
                                                                for r in range(0, len(G), rows)]
        else:
            dX = lambda G=G, W=W: G @ W.T
        fs = [lambda X=X, W=W: X @ W, lambda X=X, G=G, dW=dW: np.matmul(X.T, G, out=dW), dX]
        fs = fs if i else fs[:2]                                       # training skips the first conv's dX
        layers.append([name] + [_median_time(f, 1 if quick else 30) * 1000 for f in fs] + [None] * (3 - len(fs)))
        step += fs
    step_ms = _median_time(lambda: [f() for f in step], 1 if quick else 30) * 1000
    needed = step_flops("cnn", CNN["batch_size"])["needed"]
    return {"layers": layers, "step_ms": step_ms, "gflops": needed / step_ms / 1e6}
