"""Recipes: the seed's MLP training run, and where trained models are saved and found."""

import numpy as np

from . import model as M
from .data import load_splits
from .metrics import accuracy
from .losses import SoftmaxCrossEntropy
from .optim import SGD, Adam
from .train import cosine_lr, fit

# The seed project's recipe, plus a cosine decay of the learning rate from 1e-3 (notebook 02 compares).
MLP = {"sizes": (784, 256, 128, 10), "lr": 1e-3, "lr_decay": "cosine", "batch_size": 128,
       "weight_decay": 5e-4, "num_epochs": 15, "seed": 0}


def train_mlp(splits=None, progress=True, **overrides):
    """Train the seed's MLP recipe; returns (model, history, splits)."""
    cfg = {**MLP, **overrides}
    splits = splits or load_splits()
    rng = np.random.default_rng(cfg["seed"])
    model = M.mlp(cfg["sizes"], rng)
    opt = Adam(model, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    schedule = cosine_lr(cfg["lr"], cfg["num_epochs"]) if cfg["lr_decay"] == "cosine" else None
    history = fit(model, opt, splits["X_train"], splits["y_train"], splits["X_dev"], splits["y_dev"],
                  num_epochs=cfg["num_epochs"], batch_size=cfg["batch_size"], rng=rng, progress=progress,
                  lr_schedule=schedule)
    return model, history, splits


SOFTMAX = {"lr": 0.5, "num_steps": 300, "seed": 0}


def train_softmax(splits=None, **overrides):
    """The 784->10 softmax baseline by full-batch gradient descent; returns (model, losses, splits)."""
    cfg = {**SOFTMAX, **overrides}
    splits = splits or load_splits()
    X, y = splits["X_train"], splits["y_train"]
    model = M.mlp((784, 10), np.random.default_rng(cfg["seed"]))
    opt, loss_fn, losses = SGD(model, lr=cfg["lr"]), SoftmaxCrossEntropy(), []
    for _ in range(cfg["num_steps"]):
        losses.append(loss_fn.forward(M.forward(model, X), y))
        M.backward(model, loss_fn.backward())
        opt.step()
    return model, losses, splits


def model_path(name):
    """Where the model called name ('mlp', 'cnn') is saved: models/<name>.npz."""
    return M.MODELS_DIR / f"{name}.npz"


def train_and_save(name="mlp", progress=True):
    """Train a recipe, report dev and test accuracy, save it; returns (path, test_acc)."""
    if name != "mlp":
        raise ValueError(f"unknown model recipe {name!r}")
    model, history, splits = train_mlp(progress=progress)
    test_acc = accuracy(M.predict(model, splits["X_test"]), splits["y_test"])
    path = M.save(model_path(name), model, splits["stats"], recipe=name,
                  dev_acc=history["dev_acc"][-1], test_acc=test_acc)
    return path, test_acc


def load_or_train(name="mlp", progress=True):
    """Load models/<name>.npz, training and saving it first if it is missing; returns (model, stats)."""
    path = model_path(name)
    if not path.exists():
        print(f"No trained {name} at {path}: training one now (a minute or so).")
        train_and_save(name, progress=progress)
    model, stats, _ = M.load(path)
    return model, stats
