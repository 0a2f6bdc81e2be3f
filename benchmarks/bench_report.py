"""The report: each framework's numbers summarised into the markdown tables bench.py prints, and the plots."""

import numpy as np

from bench_config import CNN_FRAMEWORKS, CNN_STRETCH, CNN_TARGET, FRAMEWORKS, TARGET_DEV
from bench_machine import step_flops
from npnet.recipes import CNN, MLP


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
        *_last_rows(s, names),
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


def _last_rows(s, names):
    """The rows both training tables end with, from summarise()'s numbers: final dev and test accuracy, memory."""
    return [["final dev accuracy"] + [f"{s[n]['dev_acc']:.4f}" for n in names],
            ["test accuracy"] + [f"{s[n]['test_acc']:.4f}" for n in names],
            ["peak memory (RSS) while training"] + [f"{s[n]['peak_mb']:.0f} MB" for n in names],
            ["... of which added by training"]
            + [f"{s[n]['peak_mb'] - s[n]['rss_before_mb']:.0f} MB" if s[n]["rss_before_mb"] else "?" for n in names]]


def _framework_lines(frameworks, results, names, skipped):
    """One line per framework that ran (how it is set up, its versions) and one per framework skipped."""
    return ([f"- {n}: {frameworks[n][1]}; {', '.join(f'{k} {v}' for k, v in results[n]['versions'].items())}"
             for n in names] + [f"- skipped {n}: {why}" for n, why in skipped.items()])


def _ratios(results, names):
    """npnet / each framework: the median epoch over the median epoch, and the median of the per-epoch ratios."""
    epoch = {n: summarise(results[n])["epoch"] for n in names}
    return [["npnet / this: median epoch over median epoch"] + [f"{epoch['npnet'] / epoch[n]:.2f}" for n in names],
            ["npnet / this: median of the per-epoch ratios"] + [f"{_per_epoch_ratio(results, n):.2f}" for n in names]]


def _per_epoch_ratio(results, name, ours="npnet"):
    """`ours`'s training time over `name`'s, epoch by epoch (they took turns): the median of those ratios."""
    return float(np.median([a["train_time"] / b["train_time"]
                            for a, b in zip(results[ours]["epochs"], results[name]["epochs"])]))


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
        *_last_rows(s, names),
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
        note = " (quick mode: a subset, so this says nothing)" if args.quick else ""
        rows = []
        for ours, how in (("npnet", ""), ("npnet-parallel", ", with data_parallel=True")):
            if ours not in step:
                continue
            ratio = _per_epoch_ratio(results, "pytorch-fused", ours)  # the median of the per-epoch ratios, as stated
            also = ", ".join(f"{step[ours] / step[n]:.2f}x against {n}"
                             for n in ("pytorch", "pytorch-fused-cl") if n in step)
            rows += [[f"{ours} CNN step{how} <= {CNN_TARGET}x PyTorch fused Adam's (median of the per-epoch ratios)",
                      f"{ratio:.2f}x" + (f" (median epochs: {step[ours] / fused:.2f}x; {also})" if also else ""),
                      "yes" if ratio <= CNN_TARGET else "no"],
                     [f"stretch: <= {CNN_STRETCH}x", f"{ratio:.2f}x", "yes" if ratio <= CNN_STRETCH else "no"]]
        out += [f"## CNN target{note}", "", table(["target", "measured", "met"], rows), ""]
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
    colors = ["tab:orange" if n.startswith("npnet") else "tab:blue" for n in names[::-1]]   # npnet's ways in orange
    ax1.barh(names[::-1], medians[::-1], color=colors)
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
