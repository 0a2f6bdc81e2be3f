"""Notebook 03's ECE exercise, tried with wrong answers written the way a learner writes them (not the catalogue's
own functions): each must get its own named message, not the generic 'largest difference'."""

import numpy as np
import pytest

from npnet.exercises import nb03 as ex


def _conf_correct(probs, y):
    return probs.max(axis=1), probs.argmax(axis=1) == y


def closed_open(probs, y, num_bins=10):                 # [lo, hi) by comparisons: 1.0 falls in no bin
    conf, correct = _conf_correct(probs, y)
    edges, total = np.linspace(0, 1, num_bins + 1), 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf >= lo) & (conf < hi)
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return total


def digitized(probs, y, num_bins=10):                   # [lo, hi) through np.digitize, 1.0 in the last bin
    conf, correct = _conf_correct(probs, y)
    b = np.digitize(conf, np.linspace(0, 1, num_bins + 1)[1:-1])
    return sum(np.mean(b == k) * abs(correct[b == k].mean() - conf[b == k].mean()) for k in np.unique(b))


def floored(probs, y, num_bins=10):                     # [lo, hi) through floor(conf * num_bins), clipped
    conf, correct = _conf_correct(probs, y)
    b = np.minimum((conf * num_bins).astype(int), num_bins - 1)
    return sum(np.mean(b == k) * abs(correct[b == k].mean() - conf[b == k].mean()) for k in np.unique(b))


def abs_of_total(probs, y, num_bins=10):                # the absolute value taken once, at the end
    conf, correct = _conf_correct(probs, y)
    edges, total = np.linspace(0, 1, num_bins + 1), 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * (correct[m].mean() - conf[m].mean())
    return abs(total)


def overall_gap(probs, y, num_bins=10):                 # no bins at all: the same number as abs_of_total
    conf, correct = _conf_correct(probs, y)
    return abs(correct.mean() - conf.mean())


def by_count(probs, y, num_bins=10):                    # n_b instead of n_b / N
    conf, correct = _conf_correct(probs, y)
    edges, total = np.linspace(0, 1, num_bins + 1), 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.sum() * abs(correct[m].mean() - conf[m].mean())
    return total


def ten_bins(probs, y, num_bins=10):
    return ex.ece_solution(probs, y, 10)


@pytest.mark.parametrize("wrong,words", [
    (closed_open, "[lo, hi), conf >= lo and conf < hi"), (digitized, "[lo, hi) with 1.0 kept"),
    (floored, "[lo, hi) with 1.0 kept"), (abs_of_total, "absolute value of the total"),
    (overall_gap, "absolute value of the total"), (by_count, "N times too large"), (ten_bins, "num_bins is ignored")])
def test_a_learners_wrong_ece_is_named(wrong, words):
    verdict, message = ex.ece.diagnose(wrong)
    assert verdict == "mistake" and words in message, message


def test_npnet_bins_are_closed_on_the_right_as_the_messages_say():
    from npnet import metrics
    probs = np.full((3, 10), 0.0)
    probs[:, 0] = probs[:, 1] = 0.5                     # confidence exactly 0.5, on an edge
    probs[2] = np.eye(10)[0]                            # confidence exactly 1.0
    count = metrics.reliability(probs, np.zeros(3, int))["count"]
    assert count[4] == 2 and count[9] == 1 and count.sum() == 3      # 0.5 in (0.4, 0.5], 1.0 in (0.9, 1]
