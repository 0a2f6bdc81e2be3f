"""Per-layer activation and gradient histograms (npnet.trainview): right numbers, right layers, training unchanged."""

import numpy as np

from npnet.conv import Conv2D, Flatten, Reshape
from npnet.layers import Dense, Dropout, ReLU
from npnet.losses import softmax
from npnet.optim import Adam
from npnet.train import fit
from npnet.trainview import HistogramRecorder, layer_histograms, layer_values


def _tiny(rng):
    """Dense(6, 5) ReLU Dense(5, 4) ReLU Dense(4, 3) in float64, on 9 examples."""
    model = [Dense(6, 5, rng, np.float64), ReLU(), Dense(5, 4, rng, np.float64), ReLU(), Dense(4, 3, rng, np.float64)]
    for layer in model[::2]:
        layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)   # non-zero biases
    return model, rng.standard_normal((9, 6)), rng.integers(0, 3, 9)


def _by_hand(model, X, y):
    """The forward and backward pass written out: per Dense layer (A, dL/dA, dL/dW)."""
    (W1, b1), (W2, b2), (W3, b3) = [(layer.params["W"], layer.params["b"]) for layer in model[::2]]
    Z1 = X @ W1 + b1; A1 = np.maximum(Z1, 0)
    Z2 = A1 @ W2 + b2; A2 = np.maximum(Z2, 0)
    logits = A2 @ W3 + b3
    dlogits = (softmax(logits) - np.eye(3)[y]) / len(y)
    dA2 = dlogits @ W3.T; dZ2 = dA2 * (Z2 > 0)
    dA1 = dZ2 @ W2.T; dZ1 = dA1 * (Z1 > 0)
    return [(A1, dA1, X.T @ dZ1), (A2, dA2, A1.T @ dZ2), (logits, dlogits, A2.T @ dlogits)]


def test_the_values_are_each_layers_activation_after_its_relu_and_the_gradients_there():
    model, X, y = _tiny(np.random.default_rng(0))
    values = layer_values(model, X, y)
    assert len(values) == 3
    for v, (A, dA, dW) in zip(values, _by_hand(model, X, y)):
        assert v["A"].shape == A.shape and np.allclose(v["A"], A, rtol=1e-12, atol=1e-14)
        assert np.allclose(v["dA"], dA, rtol=1e-12, atol=1e-16) and np.allclose(v["dW"], dW, rtol=1e-12, atol=1e-16)
    # what a mutant would give instead: the pre-activation (has negatives), or the gradient below the ReLU mask
    Z1 = X @ model[0].params["W"] + model[0].params["b"]
    assert (Z1 < 0).any() and not np.allclose(values[0]["A"], Z1)
    assert not np.allclose(values[0]["dA"], values[0]["dA"] * (Z1 > 0))


def test_the_histograms_and_summary_numbers_match_the_hand_computed_values():
    model, X, y = _tiny(np.random.default_rng(1))
    stats = layer_histograms(model, X, y, bins=7)
    for s, (A, dA, dW) in zip(stats, _by_hand(model, X, y)):
        counts, edges = np.histogram(A, 7)
        assert np.array_equal(s["A_hist"][0], counts) and np.allclose(s["A_hist"][1], edges)
        assert np.array_equal(s["dA_hist"][0], np.histogram(np.log10(np.abs(dA[dA != 0])), 7)[0])
        assert np.array_equal(s["dW_hist"][0], np.histogram(np.log10(np.abs(dW[dW != 0])), 7)[0])
        assert np.isclose(s["mean"], A.mean()) and np.isclose(s["std"], A.std())
        assert np.isclose(s["dA_std"], dA.std()) and np.isclose(s["dW_std"], dW.std())
        assert s["zeros"] == np.mean(A == 0) and s["dW_zeros"] == np.mean(dW == 0) and s["units"] == A.shape[1]
    assert stats[0]["zeros"] > 0 and stats[2]["zeros"] == 0      # the ReLU zeroes some entries; logits none


def test_dead_units_and_exact_zeros_on_a_constructed_layer():
    # 4 units on 10 examples: unit 0 never fires (dead), unit 1 fires on half, units 2 and 3 always.
    X = np.concatenate([np.ones((5, 1)), -np.ones((5, 1))])
    model = [Dense(1, 4, dtype=np.float64), ReLU(), Dense(4, 2, dtype=np.float64)]
    model[0].params["W"][...] = [[1.0, 1.0, 0.5, -0.5]]
    model[0].params["b"][...] = [-5.0, 0.0, 2.0, 2.0]
    first = layer_histograms(model, X, np.zeros(10, int))[0]
    assert first["dead"] == 0.25 and first["zeros"] == (10 + 5) / 40
    assert first["A_hist"][0].sum() == 40                        # every entry, zeros included
    # dL/dW (1, 4): the dead unit's column is exactly 0, so it cannot learn; the other three are not
    assert first["dW_zeros"] == 0.25 and first["dW_hist"][0].sum() == 3


def test_a_cnn_block_ends_at_the_next_weights_and_units_are_channels():
    rng = np.random.default_rng(2)
    model = [Reshape((6, 6, 1)), Conv2D(1, 3, 3, rng=rng), ReLU(), Flatten(), Dense(48, 4, rng)]
    values = layer_values(model, rng.standard_normal((5, 36)).astype(np.float32), np.arange(5) % 4)
    assert values[0]["A"].shape == (5, 48) and values[1]["A"].shape == (5, 4)   # after ReLU and Flatten; logits
    assert values[0]["dW"].shape == model[1].params["W"].shape


def _fit(callback=None):
    """A small MLP with dropout (fit's rng drives its masks) trained 3 epochs of 5 steps."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 20)).astype(np.float32)
    y = X[:, :5].argmax(1)
    model = [Dense(20, 32, rng), ReLU(), Dropout(0.3, rng), Dense(32, 5, rng)]
    if callback is not None:
        callback.record(model, 0)
    history = fit(model, Adam(model, lr=1e-2), X, y, num_epochs=3, batch_size=64, rng=rng, progress=False,
                  callback=callback)
    return model, history, X, y


def test_recording_changes_nothing_bitwise_and_records_the_epochs_asked_for():
    plain, plain_history, X, y = _fit()
    recorder = HistogramRecorder(X[:100], y[:100], epochs=(1, 3), bins=10)
    model, history, _, _ = _fit(recorder)
    for a, b in zip(plain, model):
        for name in a.params:
            assert np.array_equal(a.params[name], b.params[name]) and np.array_equal(a.grads[name], b.grads[name])
    assert history["step_loss"] == plain_history["step_loss"] and all(layer.training for layer in model)
    assert sorted(recorder.snapshots) == [0, 1, 3] and len(recorder.snapshots[3]) == 2
    no_dropout = layer_histograms([model[0], model[1], model[3]], X[:100], y[:100], bins=10)
    assert recorder.snapshots[3][0]["zeros"] == no_dropout[0]["zeros"]          # eval mode: dropout off
    assert recorder.snapshots[0][0]["std"] != recorder.snapshots[3][0]["std"]    # the model did change in between
    again = layer_histograms(model, X[:100], y[:100], bins=10)
    assert all(np.array_equal(s["A_hist"][0], t["A_hist"][0]) and s["dA_std"] == t["dA_std"]
               for s, t in zip(again, recorder.snapshots[3]))
