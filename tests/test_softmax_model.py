"""models/softmax.npz, which notebook 03 loads instead of retraining, is notebook 01's softmax baseline: its recipe
trains it again."""

from pathlib import Path

import numpy as np
import pytest

from npnet import metrics, recipes
from npnet import model as M

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "softmax.npz"


@pytest.mark.slow
def test_the_shipped_softmax_baseline_is_what_its_recipe_trains():
    model, stats, header = M.load(SHIPPED)
    assert header["recipe"] == "softmax" and header["config"] == recipes.SOFTMAX, header
    retrained, _, splits = recipes.train_softmax()                  # 300 full-batch steps on 50,000 images
    W, W_new = model[0].params["W"], retrained[0].params["W"]
    assert np.allclose(W, W_new, atol=1e-4 * np.abs(W).max())       # other BLAS kernels round slightly differently
    assert np.allclose(model[0].params["b"], retrained[0].params["b"], atol=1e-4)
    assert np.allclose(stats, splits["stats"])
    test_acc = metrics.accuracy(M.predict(retrained, splits["X_test"]), splits["y_test"])
    assert abs(test_acc - header["test_acc"]) < 0.001, (test_acc, header["test_acc"])
