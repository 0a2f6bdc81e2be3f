"""Data parallelism: each training batch is split in two halves that run forward and backward at once, one per core."""

import contextvars
import copy
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
from threadpoolctl import ThreadpoolController

from .layers import BatchNorm
from .losses import SoftmaxCrossEntropy
from .model import backward, forward


class TwoHalves:
    """The model and a replica of it take one half of every batch each, on two threads; then the replica's gradients
    are averaged into the model's, weighted by the halves' sizes. The mean loss over N examples is the size-weighted
    mean of the two halves' mean losses, so its gradient is the same sum: the optimizer gets the whole batch's
    gradient, up to float rounding, computed on two cores.

    How frameworks train on several GPUs (PyTorch's DistributedDataParallel) works the same way. It pays here because
    most of npnet's step is single-threaded NumPy, which only a second thread can put on the second core; each half's
    matrix products then run on one core (one BLAS thread each) instead of both. benchmarks/RESULTS.md measures it.

    The replica is a shallow copy of each layer with its own grads: it shares the model's weight arrays (the same
    `params` dicts), so the optimizer's in-place updates reach both, and its caches become its own at its first
    forward pass (every npnet layer assigns its caches anew there). Its dropout layers get their own generators,
    spawned from the model's without drawing from them, so the two halves draw different masks: with dropout,
    training is as reproducible as before, but not step for step the same as training without TwoHalves. BatchNorm
    is refused: its statistics would come from half a batch.
    """

    def __init__(self, model):
        if any(isinstance(layer, BatchNorm) for layer in model):
            raise ValueError("TwoHalves cannot train a model with BatchNorm: each half would normalise with its own "
                             "half-batch statistics and keep its own running averages. Train it without data_parallel.")
        self.model, self.replica = model, [copy.copy(layer) for layer in model]   # the same params dicts: weights
        for twin in self.replica:
            twin.grads = {name: np.zeros_like(grad) for name, grad in twin.grads.items()}   # its own gradients
            if hasattr(twin, "rng"):                         # dropout: its own stream, a child of the model's
                twin.rng = twin.rng.spawn(1)[0]
        self.loss_fns = (SoftmaxCrossEntropy(), SoftmaxCrossEntropy())
        self.pool = ThreadPoolExecutor(max_workers=1)        # the second half's thread; the first runs in the caller's
        self.blas = ThreadpoolController()

    def _half(self, i, X, y):
        """Forward and backward of one half on model (i = 0) or replica (i = 1): its mean loss; fills its grads."""
        net, loss_fn = (self.model, self.replica)[i], self.loss_fns[i]
        loss = loss_fn.forward(forward(net, X), y)
        backward(net, loss_fn.backward(), input_grad=False)
        return loss

    def loss_and_grads(self, X, y):
        """One training step's forward and backward on X (N, ...) and y (N,): fills the model's grads with the
        gradient of the batch's mean loss and returns that loss, as loss_fn.forward and backward would."""
        n = len(X) // 2
        if n == 0:                                           # one example: nothing to split
            return self._half(0, X, y)
        for twin, layer in zip(self.replica, self.model):
            twin.training = layer.training
        with self.blas.limit(limits=1, user_api="blas"):     # two threads with one core each, not four on two
            # in a copy of this thread's context, so that settings such as np.errstate hold in both halves
            second = self.pool.submit(contextvars.copy_context().run, self._half, 1, X[n:], y[n:])
            try:
                loss = self._half(0, X[:n], y[:n])
            finally:
                wait([second])                               # if the first half failed, still let the second end
            loss_second = second.result()                    # (its error, if it failed alone)
        w = n / len(X)                                       # the first half's share of the mean
        for twin, layer in zip(self.replica, self.model):
            for name, grad in layer.grads.items():
                grad *= w
                grad += (1 - w) * twin.grads[name]
        return w * loss + (1 - w) * loss_second

    def close(self):
        """Stop the second thread."""
        self.pool.shutdown()
