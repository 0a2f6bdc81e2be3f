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

The code: this file is the command, and the place to start reading (its arguments, the worker protocol that trains
the frameworks in turns, and main). It imports the rest from its neighbours in benchmarks/:

    bench_config.py    what is compared: the frameworks, how each is set up, and the targets
    bench_runs.py      the trainers, each run in a worker process (`bench.py --worker NAME`)
    bench_profile.py   the CNN step timed layer by layer, in npnet and in PyTorch
    bench_machine.py   the machine, its matmul throughput, and the FLOPs a step or epoch needs
    bench_report.py    the markdown tables and the plots
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench's own modules, also when a test imports bench

from bench_config import CNN_FRAMEWORKS, FRAMEWORKS, RECIPES, TARGET_DEV  # noqa: E402
from bench_machine import cnn_matmuls, epoch_flops, machine, matmul_throughput, step_flops  # noqa: E402
from bench_report import cnn_report, machine_report, mlp_report, plot  # noqa: E402
from bench_runs import worker  # noqa: E402
from npnet.recipes import CNN, MLP  # noqa: E402  (the recipes: sizes, lr, L2, batch size, epochs, seed)

SETTLE = 0.2  # seconds between turns


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
        # the CNN's target is against fused Adam, so --quick runs that PyTorch, and both of npnet's ways to train
        default = ["npnet", "npnet-parallel", "pytorch-fused"] if args.quick else list(CNN_FRAMEWORKS)
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
