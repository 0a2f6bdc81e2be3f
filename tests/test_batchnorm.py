"""BatchNorm: its gradients against central differences (float64), in both modes, and its running statistics."""

import numpy as np
import pytest

from npnet.gradcheck import check_layer
from npnet.layers import BatchNorm


def _layer(D, rng):
    layer = BatchNorm(D, dtype=np.float64)
    layer.params["gamma"][...] = rng.uniform(0.5, 1.5, D)      # away from 1 and 0, so a wrong gamma shows
    layer.params["beta"][...] = rng.standard_normal(D)
    return layer


@pytest.mark.parametrize("shape", [(8, 5), (2, 4, 3, 6), (1, 3, 3, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_central_differences(shape, training):
    rng = np.random.default_rng(0)
    layer = _layer(shape[-1], rng)
    layer.running_mean[...] = rng.standard_normal(shape[-1])
    layer.running_var[...] = rng.uniform(0.5, 2, shape[-1])
    layer.training = training
    x = 3 * rng.standard_normal(shape) + 1
    errors = check_layer(layer, x, rng)
    assert set(errors) == {"x", "gamma", "beta"}
    assert max(errors.values()) < 1e-7, errors


def test_training_output_is_normalised_per_feature_then_scaled_and_shifted():
    rng = np.random.default_rng(1)
    layer = _layer(4, rng)
    out = layer.forward(5 * rng.standard_normal((256, 4)) - 2)
    x_hat = (out - layer.params["beta"]) / layer.params["gamma"]
    assert np.allclose(x_hat.mean(axis=0), 0, atol=1e-10) and np.allclose(x_hat.std(axis=0), 1, atol=1e-4)


def test_running_statistics_converge_and_are_used_in_evaluation():
    rng = np.random.default_rng(2)
    layer = BatchNorm(3, dtype=np.float64)
    for _ in range(200):
        layer.forward(rng.normal([1.0, -2.0, 0.5], [2.0, 0.5, 1.0], (128, 3)))
    assert np.allclose(layer.running_mean, [1.0, -2.0, 0.5], atol=0.1)
    assert np.allclose(layer.running_var, [4.0, 0.25, 1.0], rtol=0.1)
    layer.training = False
    x = rng.standard_normal((5, 3))
    want = (x - layer.running_mean) / np.sqrt(layer.running_var + layer.eps)
    assert np.allclose(layer.forward(x), want)              # one example is normalised the same way, whatever the batch
    assert np.allclose(layer.forward(x[:1]), want[:1])


def test_float32_in_float32_out():
    layer = BatchNorm(6)
    x = np.random.default_rng(3).standard_normal((10, 6)).astype(np.float32)
    assert layer.forward(x).dtype == np.float32 and layer.backward(np.ones_like(x)).dtype == np.float32


def test_saving_a_model_with_batchnorm_is_refused_and_writes_nothing(tmp_path):
    from npnet import model as M
    from npnet.layers import Dense

    path = tmp_path / "bn.npz"
    with pytest.raises(NotImplementedError, match="cannot be saved"):
        M.save(path, [Dense(4, 3), BatchNorm(3)], (0.1, 0.3))
    assert not path.exists() and not list(tmp_path.iterdir())
