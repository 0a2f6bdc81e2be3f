"""Metrics against hand-worked cases: accuracy, confusions, top-k, calibration (ECE) and rejection."""

import numpy as np
import pytest

from npnet import metrics


def one_hot_probs(top, conf, num_classes=10):
    """Probs whose top class is top[i] with probability conf[i], the rest shared evenly: (N, C)."""
    top, conf = np.asarray(top), np.asarray(conf, np.float64)
    probs = np.repeat(((1 - conf) / (num_classes - 1))[:, None], num_classes, axis=1)
    probs[np.arange(len(top)), top] = conf
    return probs


def test_accuracy_confusion_and_per_class():
    y = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 1])
    assert metrics.accuracy(y_pred, y) == pytest.approx(3 / 6)
    C = metrics.confusion_matrix(y, y_pred, num_classes=4)
    assert C.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    # class 2 is never right, class 3 never occurs: both give 0, not NaN
    assert np.allclose(metrics.per_class_accuracy(y, y_pred, 4), [1 / 2, 2 / 3, 0, 0])
    table = metrics.format_confusion(C).splitlines()
    assert len(table) == 5 and table[2].split() == ["1", "1", "2", "0", "0"]


def test_most_confused_pairs_counts_both_directions():
    C = np.zeros((4, 4), int)
    C[1, 2], C[2, 1] = 3, 4      # 1<->2: 7
    C[0, 3] = 6                  # 0<->3: 6, one way only
    C[3, 1], C[1, 3] = 2, 4      # 1<->3: 6, ties with 0<->3 and comes after it
    np.fill_diagonal(C, 100)     # correct predictions never count
    assert metrics.most_confused_pairs(C, k=3) == [(1, 2, 7), (0, 3, 6), (1, 3, 6)]
    assert len(metrics.most_confused_pairs(C, k=10)) == 6   # all 4 * 3 / 2 pairs


def test_top_k_is_sorted_and_agrees_with_argmax():
    probs = np.random.default_rng(0).dirichlet(np.ones(10), size=50)
    idx, p = metrics.top_k(probs, k=3)
    assert idx.shape == p.shape == (50, 3)
    assert np.array_equal(idx[:, 0], probs.argmax(axis=1))
    assert np.all(p[:, 0] >= p[:, 1]) and np.all(p[:, 1] >= p[:, 2])
    assert np.array_equal(p, np.sort(probs, axis=1)[:, ::-1][:, :3])


def test_ece_of_perfectly_calibrated_predictions_is_near_zero():
    rng = np.random.default_rng(0)
    n = 200_000
    conf = rng.uniform(0.1, 1.0, n)
    y_pred = rng.integers(0, 10, n)
    right = rng.random(n) < conf                    # right with probability exactly conf
    y = np.where(right, y_pred, (y_pred + 1) % 10)
    r = metrics.reliability(one_hot_probs(y_pred, conf), y)
    assert r["ece"] < 0.01, r["ece"]
    assert r["count"][0] == 0 and np.isnan(r["acc"][0])     # no confidence falls in (0, 0.1]
    lo = np.arange(10) / 10                                 # each bin (lo, lo + 0.1], counted directly
    assert r["count"].tolist() == [int(np.sum((conf > a) & (conf <= a + 0.1))) for a in lo]
    assert np.allclose(r["count"][1:], n / 9, rtol=0.03)    # uniform over (0.1, 1): a ninth in each


def test_ece_of_an_over_confident_model_by_hand():
    # 10 predictions at 0.95 of which 6 right (over-confident), 5 at 0.55 of which 4 right (under-confident):
    # ECE = 10/15 * |0.6 - 0.95| + 5/15 * |0.8 - 0.55| = 0.2333 + 0.0833 = 0.31667
    conf = np.r_[np.full(10, 0.95), np.full(5, 0.55)]
    y_pred = np.zeros(15, int)
    y = np.r_[np.zeros(6), np.ones(4), np.zeros(4), np.ones(1)].astype(int)
    r = metrics.reliability(one_hot_probs(y_pred, conf), y)
    assert r["ece"] == pytest.approx(10 / 15 * 0.35 + 5 / 15 * 0.25)
    assert r["count"].tolist() == [0, 0, 0, 0, 0, 5, 0, 0, 0, 10]
    assert r["acc"][9] == pytest.approx(0.6) and r["conf"][9] == pytest.approx(0.95)
    assert r["acc"][5] == pytest.approx(0.8) and r["conf"][5] == pytest.approx(0.55)
    # one bin: the two errors partly cancel, |10/15 - (9.5 + 2.75)/15| = 0.15
    assert metrics.reliability(one_hot_probs(y_pred, conf), y, num_bins=1)["ece"] == pytest.approx(0.15)


def test_reliability_bins_are_closed_on_the_right():
    probs = one_hot_probs([0, 0, 0], [0.5, 0.75, 1.0])    # 0.5 and 1.0 sit exactly on bin edges
    r = metrics.reliability(probs, np.zeros(3, int), num_bins=2)
    assert r["count"].tolist() == [1, 2]                  # bins (0, 0.5] and (0.5, 1]
    assert r["ece"] == pytest.approx((1 * 0.5 + 2 * 0.125) / 3)   # all right: 1 - 0.5, 1 - 0.875


def test_reliability_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="want probs"):
        metrics.reliability(np.full((5, 10), 0.1), np.zeros(4, int))
    with pytest.raises(ValueError, match="want probs"):
        metrics.accuracy_coverage(np.full(10, 0.1), np.zeros(10, int))


def test_accuracy_coverage_and_reject_threshold():
    #          conf: 0.9  0.9  0.8  0.7  0.6  0.5 ; right: yes, yes, no, yes, yes, no
    conf = np.array([0.9, 0.6, 0.9, 0.5, 0.8, 0.7])
    y = np.array([0, 0, 0, 1, 1, 0])
    probs = one_hot_probs(np.zeros(6, int), conf)
    threshold, coverage, acc = metrics.accuracy_coverage(probs, y)
    assert np.allclose(threshold, [0.9, 0.8, 0.7, 0.6, 0.5])          # the tie at 0.9 is one cut
    assert np.allclose(coverage, np.array([2, 3, 4, 5, 6]) / 6)
    assert np.allclose(acc, [1, 2 / 3, 3 / 4, 4 / 5, 4 / 6])
    assert metrics.reject_threshold(probs, y, target=0.75) == pytest.approx((0.6, 5 / 6, 0.8))
    assert metrics.reject_threshold(probs, y, target=1.0) == pytest.approx((0.9, 2 / 6, 1.0))
    kept = conf >= metrics.reject_threshold(probs, y, target=0.75)[0]
    assert np.mean(y[kept] == 0) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="no threshold"):
        metrics.reject_threshold(probs, np.ones(6, int), target=0.5)
