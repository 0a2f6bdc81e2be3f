"""npnet: a small neural-network library in pure NumPy, built up in the course notebooks."""

from . import data, gradcheck, layers, losses, metrics, model, optim, train
from .layers import Dense, ReLU, he_normal
from .losses import SoftmaxCrossEntropy, softmax
from .metrics import accuracy, confusion_matrix, per_class_accuracy
from .model import backward, forward, predict, predict_proba
from .optim import SGD, Adam
from .train import batches, fit

__all__ = [
    "data", "gradcheck", "layers", "losses", "metrics", "model", "optim", "train",
    "Dense", "ReLU", "he_normal", "SoftmaxCrossEntropy", "softmax",
    "accuracy", "confusion_matrix", "per_class_accuracy",
    "forward", "backward", "predict", "predict_proba", "SGD", "Adam", "batches", "fit",
]
