"""npnet: a small neural-network library in pure NumPy, built up in the course notebooks."""

from . import augment, conv, data, gradcheck, layers, losses, metrics, model, modelfile, optim, parallel, train
from .conv import Conv2D, Flatten, MaxPool2D, Reshape
from .layers import Dense, Dropout, ReLU, he_normal
from .losses import SoftmaxCrossEntropy, softmax
from .metrics import accuracy, confusion_matrix, per_class_accuracy
from .model import backward, forward, predict, predict_proba
from .optim import SGD, Adam
from .train import batches, fit

__all__ = [
    "augment", "conv", "data", "gradcheck", "layers", "losses", "metrics", "model", "modelfile", "optim", "parallel",
    "train",
    "Dense", "Dropout", "ReLU", "he_normal", "Conv2D", "MaxPool2D", "Flatten", "Reshape",
    "SoftmaxCrossEntropy", "softmax",
    "accuracy", "confusion_matrix", "per_class_accuracy",
    "forward", "backward", "predict", "predict_proba", "SGD", "Adam", "batches", "fit",
]
