"""The CNN training step timed layer by layer: each layer's forward and backward, the loss and Adam, in npnet and in
PyTorch, under names both share (layer_name)."""

import time

import numpy as np


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
