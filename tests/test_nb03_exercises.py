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


# -- the confusion matrix, written wrong the ways a learner might -------------------------------------------------
def cm_float(y, y_pred, num_classes=10):                 # np.zeros without dtype: right numbers, float counts
    C = np.zeros((num_classes, num_classes))
    for a, b in zip(y, y_pred):
        C[a, b] += 1
    return C


def cm_errors_only(y, y_pred, num_classes=10):           # the diagonal left empty
    C = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(C, (y[y != y_pred], y_pred[y != y_pred]), 1)
    return C


def cm_histogram2d(y, y_pred, num_classes=10):           # default edges: from the smallest to the largest label
    return np.histogram2d(y, y_pred, bins=num_classes)[0].astype(int)


def cm_histogram2d_float(y, y_pred, num_classes=10):     # right edges, but histogram2d's float counts
    edges = np.arange(num_classes + 1) - 0.5
    return np.histogram2d(y, y_pred, bins=[edges, edges])[0]


def cm_ten(y, y_pred, num_classes=10):                   # num_classes ignored
    C = np.zeros((10, 10), dtype=int)
    np.add.at(C, (y, y_pred), 1)
    return C


@pytest.mark.parametrize("wrong,words", [
    (cm_float, "counts must be integers"), (cm_histogram2d_float, "counts must be integers"),
    (cm_errors_only, "only the mistakes"), (cm_histogram2d, "np.histogram2d(y, y_pred, bins=num_classes)"),
    (cm_ten, "num_classes is ignored")])
def test_a_learners_wrong_confusion_matrix_is_named(wrong, words):
    verdict, message = ex.confusion_matrix.diagnose(wrong)
    assert verdict == "mistake" and words in message, message


# -- the ECE: percent, squared gaps, empty bins ----------------------------------------------------------------------
def in_percent(probs, y, num_bins=10):
    return 100 * ex.ece_solution(probs, y, num_bins)


def squared(probs, y, num_bins=10):
    conf, correct = _conf_correct(probs, y)
    edges, total = np.linspace(0, 1, num_bins + 1), 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.sum():
            total += m.sum() / len(y) * (correct[m].mean() - conf[m].mean()) ** 2
    return total


def empty_bins(probs, y, num_bins=10):                  # no guard: an empty bin's mean is NaN
    conf, correct = _conf_correct(probs, y)
    edges = np.linspace(0, 1, num_bins + 1)
    gaps = [abs(correct[(conf > lo) & (conf <= hi)].mean() - conf[(conf > lo) & (conf <= hi)].mean())
            for lo, hi in zip(edges[:-1], edges[1:])]
    shares = [np.mean((conf > lo) & (conf <= hi)) for lo, hi in zip(edges[:-1], edges[1:])]
    return float(np.dot(shares, gaps))


def bool_histogram(probs, y, num_bins=10):              # np.histogram with a boolean weight: NumPy refuses to add
    conf, correct = _conf_correct(probs, y)
    n, edges = np.histogram(conf, bins=num_bins, range=(0, 1))
    right, _ = np.histogram(conf, bins=edges, weights=correct)
    return float(np.sum(np.abs(right - n)))


@pytest.mark.parametrize("wrong,words", [
    (in_percent, "100 times too large"), (squared, "squared each bin's gap"),
    (empty_bins, "an empty bin divides 0 by 0"), (bool_histogram, "correct.astype(float)")])
def test_more_wrong_eces_are_named(wrong, words):
    verdict, message = ex.ece.diagnose(wrong)
    assert verdict == "mistake" and words in message, message


# -- refusal per digit ---------------------------------------------------------------------------------------------
def _refused(probs, t):
    return probs.max(axis=1) < t


def raw_counts(probs, y, t):
    return np.array([np.sum(_refused(probs, t) & (y == d)) for d in range(10)])


def over_n(probs, y, t):
    return raw_counts(probs, y, t) / len(y)


def refused_and_wrong(probs, y, t):
    bad = _refused(probs, t) & (probs.argmax(axis=1) != y)
    return np.array([bad[y == d].mean() if np.any(y == d) else 0.0 for d in range(10)])


def true_digit_below(probs, y, t):
    low = probs[np.arange(len(y)), y] < t
    return np.array([low[y == d].mean() if np.any(y == d) else 0.0 for d in range(10)])


def no_minlength(probs, y, t):
    return np.bincount(y[_refused(probs, t)]) / np.bincount(y)


@pytest.mark.parametrize("wrong,words", [
    (raw_counts, "returned counts"), (over_n, "you divided by N"), (refused_and_wrong, "right or wrong"),
    (true_digit_below, "probability of the TRUE digit"), (no_minlength, "pass minlength=10")])
def test_a_learners_wrong_refusal_is_named(wrong, words):
    verdict, message = ex.refused_per_digit.diagnose(wrong)
    assert verdict == "mistake" and words in message, message


def test_solutions_pass_and_the_stub_is_not_done():
    for exercise, solution in [(ex.confusion_matrix, ex.confusion_matrix_solution), (ex.ece, ex.ece_solution),
                               (ex.refused_per_digit, ex.refused_per_digit_solution)]:
        assert exercise.diagnose(solution)[0] == "pass"

    def stub(probs, y, t):
        raise NotImplementedError
    verdict, message = ex.refused_per_digit.diagnose(stub)
    assert verdict == "not done" and "next cell answers the question" in message, message


def test_an_unnamed_wrong_answer_is_shown_on_a_small_case():
    def doubled(y, y_pred, num_classes=10):
        C = np.zeros((num_classes, num_classes), dtype=int)
        np.add.at(C, (y, y_pred), 2)
        return C
    verdict, message = ex.confusion_matrix.diagnose(doubled)
    assert verdict == "wrong" and "For example, with y = [" in message and "should be 1, yours is 2" in message, message


def share_of_all_refusals(probs, y, t):                 # divided by the number refused, as a learner writes it
    low = probs.max(1) < t
    return np.bincount(y[low], minlength=10) / low.sum()


def share_of_all_refusals_guarded(probs, y, t):
    low = probs.max(1) < t
    return np.bincount(y[low], minlength=10) / max(low.sum(), 1)


@pytest.mark.parametrize("wrong", [share_of_all_refusals, share_of_all_refusals_guarded])
def test_share_of_all_refusals_is_named(wrong):
    verdict, message = ex.refused_per_digit.diagnose(wrong)
    assert verdict == "mistake" and "share of" in message and "refusals" in message, message


# -- exercises 2 and 3: equal-mass bins and temperature scaling ----------------------------------------------------
def equal_mass_unsorted(probs, y, num_bins=10):          # np.array_split on the predictions as they come
    conf, correct = _conf_correct(probs, y)
    return sum(len(b) / len(y) * abs(correct[b].mean() - conf[b].mean())
               for b in np.array_split(np.arange(len(y)), num_bins) if len(b))


def equal_mass_sorted_values(probs, y, num_bins=10):    # a learner's correct version, written with sorted arrays
    conf, correct = _conf_correct(probs, y)
    order = np.argsort(conf)
    return sum(len(c) / len(y) * abs(r.mean() - c.mean())
               for c, r in zip(np.array_split(conf[order], num_bins), np.array_split(correct[order], num_bins)) if len(c))


def temperature_index(logits, y, temperatures):
    losses = [-np.log(np.exp(logits / T) / np.exp(logits / T).sum(1, keepdims=True))[np.arange(len(y)), y].mean()
              for T in temperatures]
    return np.argmin(losses)


def temperature_right(logits, y, temperatures):
    return temperatures[temperature_index(logits, y, temperatures)]


def test_exercises_2_and_3_pass_a_learners_version_and_name_mistakes():
    assert ex.ece_equal_mass.diagnose(equal_mass_sorted_values)[0] == "pass"
    verdict, message = ex.ece_equal_mass.diagnose(equal_mass_unsorted)
    assert verdict == "mistake" and "sort first" in message, message
    assert ex.best_temperature.diagnose(temperature_right)[0] == "pass"
    verdict, message = ex.best_temperature.diagnose(temperature_index)
    assert verdict == "mistake" and "position of the best temperature" in message, message


def test_the_temperature_cases_have_their_best_t_inside_the_grid():
    for logits, y, temperatures in ex.best_temperature.cases(np.random.default_rng(ex.best_temperature.seed)):
        assert temperatures[0] < ex.best_temperature_solution(logits, y, temperatures) < temperatures[-1]
