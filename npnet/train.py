"""Training: shuffled mini-batches, the fit loop with a progress bar and an optional callback, and the history it returns."""

import math
import time

import numpy as np
from tqdm.auto import tqdm

from .losses import SoftmaxCrossEntropy
from .metrics import accuracy
from .model import backward, forward, predict, set_training
from .parallel import TwoHalves


def batches(X, y, batch_size, rng):
    """Yield (X_batch, y_batch) over a fresh permutation of the examples: (B, ...), (B,)."""
    order = rng.permutation(len(X))
    for i in range(0, len(X), batch_size):
        idx = order[i:i + batch_size]
        yield X[idx], y[idx]


def cosine_lr(lr, num_epochs):
    """A schedule epoch -> learning rate falling from lr to near 0 along half a cosine."""
    return lambda epoch: lr * 0.5 * (1 + math.cos(math.pi * epoch / num_epochs))  # a Python float


def fit(model, optimizer, X, y, X_dev=None, y_dev=None, num_epochs=15, batch_size=128,
        rng=None, augment=None, progress=True, eval_train=True, lr_schedule=None, callback=None,
        data_parallel=False):
    """Train in place with mini-batches; returns a history dict of per-step and per-epoch numbers and seconds.

    data_parallel=True splits every batch in two halves that run at once on two cores (npnet/parallel.py's
    TwoHalves): the same gradients up to rounding, but other dropout masks, so not the same run step for step.

    callback, if given, is called as callback(info) after every step (info["event"] == "step") and after every
    epoch's accuracy evaluations ("epoch"). info is a dict: event, epoch and step (0-based, the step within its
    epoch), steps_per_epoch, num_epochs, loss (the last batch's), history (the one being filled) and model. A
    callback that returns True stops training there, after the current batch: the model keeps the weights of every
    step taken. The history then has stopped=True (unless the stop came after the last epoch), step_loss holds every
    step taken, and the per-epoch lists (epoch_loss, train_acc, dev_acc, train_time, eval_time) describe only the
    whole epochs, so an epoch cut short shows only in step_loss. A callback must not touch the model's weights or
    rng; then fit's result is the same.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    loss_fn = SoftmaxCrossEntropy()
    halves = TwoHalves(model) if data_parallel else None
    history = {"step_loss": [], "epoch_loss": [], "train_acc": [], "dev_acc": [],
               "train_time": [], "eval_time": [],  # seconds per epoch: the steps, then the accuracy evaluations
               "stopped": False}                    # True if the callback ended training early
    steps = -(-len(X) // batch_size)
    bar = tqdm(total=num_epochs * steps, desc="training", unit="step", disable=not progress,
               mininterval=0.5)
    try:
        for epoch in range(num_epochs):
            if lr_schedule is not None:
                optimizer.lr = lr_schedule(epoch)
            losses, start = [], time.perf_counter()
            set_training(model, True)  # dropout on for the steps, whatever mode the model was left in
            for step, (X_batch, y_batch) in enumerate(batches(X, y, batch_size, rng)):
                if augment is not None:
                    X_batch = augment(X_batch, rng)
                if halves is not None:
                    loss = halves.loss_and_grads(X_batch, y_batch)
                else:
                    loss = loss_fn.forward(forward(model, X_batch), y_batch)
                    backward(model, loss_fn.backward(), input_grad=False)  # nothing needs the gradient w.r.t. X
                optimizer.step()
                losses.append(loss)
                history["step_loss"].append(loss)
                bar.update(1)
                if callback is not None and callback(dict(event="step", epoch=epoch, step=step, steps_per_epoch=steps,
                                                          num_epochs=num_epochs, loss=loss, history=history,
                                                          model=model)):
                    history["stopped"] = True
                    break
            if history["stopped"]:
                break                  # an epoch cut short: its steps are in step_loss, not in the per-epoch lists
            history["train_time"].append(time.perf_counter() - start)
            start = time.perf_counter()
            history["epoch_loss"].append(float(np.mean(losses)))
            if eval_train:
                history["train_acc"].append(accuracy(predict(model, X), y))
            if X_dev is not None:
                history["dev_acc"].append(accuracy(predict(model, X_dev), y_dev))
            history["eval_time"].append(time.perf_counter() - start)
            bar.set_postfix(epoch=epoch + 1, loss=f"{history['epoch_loss'][-1]:.4f}",
                            dev=f"{history['dev_acc'][-1]:.4f}" if X_dev is not None else "-")
            if callback is not None and callback(dict(event="epoch", epoch=epoch, step=steps - 1, steps_per_epoch=steps,
                                                      num_epochs=num_epochs, loss=loss, history=history, model=model)):
                history["stopped"] = epoch < num_epochs - 1   # a stop after the last epoch cuts nothing
                break
    finally:                       # also when a step or a callback raises
        bar.close()
        if halves is not None:
            halves.close()
    return history
