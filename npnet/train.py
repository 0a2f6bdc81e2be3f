"""Training: shuffled mini-batches, the fit loop with a progress bar, and the history it returns."""

import math
import time

import numpy as np
from tqdm.auto import tqdm

from .losses import SoftmaxCrossEntropy
from .metrics import accuracy
from .model import backward, forward, predict, set_training


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
        rng=None, augment=None, progress=True, eval_train=True, lr_schedule=None):
    """Train in place with mini-batches; returns a history dict of per-step and per-epoch numbers and seconds."""
    rng = rng if rng is not None else np.random.default_rng(0)
    loss_fn = SoftmaxCrossEntropy()
    history = {"step_loss": [], "epoch_loss": [], "train_acc": [], "dev_acc": [],
               "train_time": [], "eval_time": []}  # seconds per epoch: the steps, then the accuracy evaluations
    steps = -(-len(X) // batch_size)
    bar = tqdm(total=num_epochs * steps, desc="training", unit="step", disable=not progress,
               mininterval=0.5)
    for epoch in range(num_epochs):
        if lr_schedule is not None:
            optimizer.lr = lr_schedule(epoch)
        losses, start = [], time.perf_counter()
        set_training(model, True)  # dropout on for the steps, whatever mode the model was left in
        for X_batch, y_batch in batches(X, y, batch_size, rng):
            if augment is not None:
                X_batch = augment(X_batch, rng)
            loss = loss_fn.forward(forward(model, X_batch), y_batch)
            backward(model, loss_fn.backward(), input_grad=False)  # nothing needs the gradient w.r.t. X
            optimizer.step()
            losses.append(loss)
            bar.update(1)
        history["train_time"].append(time.perf_counter() - start)
        start = time.perf_counter()
        history["step_loss"] += losses
        history["epoch_loss"].append(float(np.mean(losses)))
        if eval_train:
            history["train_acc"].append(accuracy(predict(model, X), y))
        if X_dev is not None:
            history["dev_acc"].append(accuracy(predict(model, X_dev), y_dev))
        history["eval_time"].append(time.perf_counter() - start)
        bar.set_postfix(epoch=epoch + 1, loss=f"{history['epoch_loss'][-1]:.4f}",
                        dev=f"{history['dev_acc'][-1]:.4f}" if X_dev is not None else "-")
    bar.close()
    return history
