"""Notebook 03's exercises: the confusion matrix, the expected calibration error, and refusal per digit."""

import re

import numpy as np

from .. import metrics
from . import Exercise, _call, _Raised


class _Nb03Exercise(Exercise):
    """An Exercise with four extras for this notebook, on top of the shared checks:

    integer    the message for counts returned as floats (the shared checks catch them; this says it for a matrix)
    raised     [(pattern, message)]: an error (or wrong shape) a learner often meets here, named instead of the
               generic text; pattern is a compiled regular expression searched in the generic message
    not_done   the "not done yet" line, when the notebook does not go on with an npnet function
    show_case  (args, yours, answer) -> a sentence: appended to a generic "wrong" message, naming the values of the
               first failing case, so that the learner can work it by hand
    """

    def __init__(self, *args, integer=None, raised=(), not_done=None, show_case=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.integer, self.raised, self.not_done, self.show_case = integer, raised, not_done, show_case

    def diagnose(self, fn):
        verdict, message = super().diagnose(fn)
        if verdict == "not done" and self.not_done and "goes on with npnet" in message:
            return verdict, self.not_done
        if verdict == "wrong":
            for pattern, text in self.raised:
                if pattern.search(message):
                    return "mistake", f"✗ {text}"
            if self.show_case is not None and (" on inputs " in message):
                example = self._example(fn)
                if example:
                    return verdict, f"{message}. {example}"
        if verdict == "mistake" and self.integer and "but as floats" in message:
            return verdict, f"✗ {self.integer}"          # the shared integer check, in this notebook's own words
        return verdict, message

    def _example(self, fn):
        """The first failing case in words, if it is small enough to read: the inputs, yours, the answer."""
        for args in self.cases(np.random.default_rng(self.seed)):
            want, out = self.reference(*args), _call(fn, args)
            if isinstance(out, _Raised):
                return ""
            if not self._close(out, want):
                try:
                    return self.show_case(args, out, want)
                except Exception:                        # noqa: BLE001 - an odd output: keep the shared message
                    return ""
        return ""


# -- the confusion matrix -----------------------------------------------------------------------------------
def confusion_matrix_solution(y, y_pred, num_classes=10):
    """(N,) true labels, (N,) predicted labels -> (num_classes, num_classes) int counts, C[true, predicted]."""
    C = np.zeros((num_classes, num_classes), dtype=np.int64)
    for t, p in zip(y, y_pred):
        C[t, p] += 1                                   # row: the true class; column: what the model said
    return C


def _confusion_cases(rng):
    cases = []
    for n, k in ((1, 10), (50, 10), (300, 3), (500, 10)):
        y = rng.integers(0, k, n)
        y_pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))   # mostly right, like a model
        cases.append((y, y_pred, k))
    y = rng.integers(0, 9, 40)                          # class 9 never occurs, nor is it ever predicted
    cases.append((y, np.where(rng.random(40) < 0.5, y, rng.integers(0, 9, 40)), 10))
    y = rng.integers(0, 10, 30)
    cases.append((y, y.copy(), 10))                     # every answer right: only the diagonal
    return cases


def _fancy_add(y, y_pred, num_classes=10):
    C = np.zeros((num_classes, num_classes), np.int64)
    C[y, y_pred] += 1                                   # repeated pairs are written once, not added
    return C


def _off_diagonal(y, y_pred, num_classes=10):
    C = metrics.confusion_matrix(y, y_pred, num_classes)
    return C - np.diag(np.diag(C))                      # the correct answers left out


def _histogram2d_default_edges(y, y_pred, num_classes=10):
    C, _, _ = np.histogram2d(y, y_pred, bins=num_classes)   # edges from min to max of the data, not at the classes
    return C


def _show_confusion(args, out, want):
    y, y_pred, k = args
    try:
        out = np.asarray(out, np.float64)
        i, j = np.unravel_index(np.argmax(np.abs(out - want)), want.shape)
    except (TypeError, ValueError, IndexError):
        return ""
    pairs = f"y = {list(map(int, y))}, y_pred = {list(map(int, y_pred))}" if len(y) <= 3 else f"{len(y)} labels"
    return (f"For example, with {pairs} and num_classes = {k}: C[{i}, {j}] should be {want[i, j]}, "
            f"yours is {out[i, j]:g}")


def _row_normalised(y, y_pred, num_classes=10):
    C = metrics.confusion_matrix(y, y_pred, num_classes)
    return C / np.maximum(C.sum(axis=1, keepdims=True), 1)


def _sized_by_labels(y, y_pred, num_classes=10):
    k = int(max(np.max(y), np.max(y_pred))) + 1
    return metrics.confusion_matrix(y, y_pred, k)


confusion_matrix = _Nb03Exercise(
    "confusion_matrix", metrics.confusion_matrix, confusion_matrix_solution, _confusion_cases,
    "matches npnet.metrics.confusion_matrix on 1 to 500 labels, 3 or 10 classes, with a class that never occurs",
    mistakes=[
        ("rows and columns are swapped: C[i, j] counts the digits whose TRUE class is i and that the model CALLED j, "
         "so index C[y, y_pred], not C[y_pred, y].", lambda y, p, k=10: metrics.confusion_matrix(y, p, k).T),
        ("each (true, predicted) pair is counted at most once: C[y, y_pred] += 1 with arrays writes repeated pairs "
         "once instead of adding them up. Loop over the pairs, or use np.add.at(C, (y, y_pred), 1).", _fancy_add),
        ("you returned fractions of each row (the row-normalised matrix); the confusion matrix holds counts.",
         _row_normalised),
        ("the matrix is sized from the labels that happen to occur (max + 1): use num_classes, so that a class "
         "absent from the data still has its row and column.", _sized_by_labels),
        ("you counted only the mistakes: a correct answer (true i, called i) is counted too, on the diagonal "
         "C[i, i]. The off-diagonal cells are the mistakes; the whole matrix counts every prediction.", _off_diagonal),
        ("np.histogram2d(y, y_pred, bins=num_classes) puts its bin edges between the smallest and largest label that "
         "occur, not at the classes 0 .. num_classes - 1, so labels land in the wrong cells. Count the pairs "
         "yourself (a loop, or np.add.at), or give it bins=np.arange(num_classes + 1) - 0.5 and convert to int.",
         _histogram2d_default_edges),
        ("num_classes is ignored: with 3 classes you still returned a 10 x 10 matrix. Size it from the argument, "
         "np.zeros((num_classes, num_classes), dtype=int).", lambda y, p, k=10: metrics.confusion_matrix(y, p, 10)),
    ],
    integer="counts must be integers: your matrix has the right numbers but as floats. np.zeros without dtype=int "
            "(or np.histogram2d) gives floats; start from np.zeros((num_classes, num_classes), dtype=int), or "
            "convert with .astype(int)",
    show_case=_show_confusion,
    classes=(lambda y, y_pred, num_classes=10: num_classes, "num_classes"),
    hint_text="Start from np.zeros((num_classes, num_classes), dtype=int) and add 1 at [true, predicted] for every "
              "pair: a loop over zip(y, y_pred) is fine. Rows are the true class, columns the prediction.",
)


# -- the expected calibration error -------------------------------------------------------------------------
def ece_solution(probs, y, num_bins=10):
    """(N, C) probs, (N,) int labels -> ECE, a float: equal-width bins (lo, hi] of the confidence max_k p_k."""
    conf = probs.max(axis=1)                            # (N,) confidence: the top probability
    correct = probs.argmax(axis=1) == y                 # (N,) was the top class right?
    edges = np.linspace(0, 1, num_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)             # (N,) the predictions in this bin
        if in_bin.any():                                # weight n_b / N times |accuracy - mean confidence|
            total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return total


def _ece_reference(probs, y, num_bins=10):
    return metrics.reliability(probs, y, num_bins)["ece"]


def _random_calibration_cases(rng, sizes):
    """(probs (n, 10), y (n,), num_bins) for each (n, num_bins): softmax of random logits, 70% of labels the argmax."""
    cases = []
    for n, bins in sizes:
        logits = rng.standard_normal((n, 10)) * rng.uniform(1, 4)
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = np.where(rng.random(n) < 0.7, probs.argmax(axis=1), rng.integers(0, 10, n))
        cases.append((probs, y, bins))
    return cases


def _ece_cases(rng):
    cases = _random_calibration_cases(rng, ((1, 10), (37, 10), (400, 5), (1000, 15)))
    top = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.95, 0.5, 0.5, 0.5, 0.45, 0.45, 0.55, 0.55, 0.8, 0.65])
    edge = np.zeros((len(top), 10))                     # confidences exactly on bin edges (0.5, 0.8), and exactly 1.0
    edge[:, 0] = top
    edge[:, 1:] = (1 - top[:, None]) / 9
    edge[6:9, :2] = 0.5                                  # a tie: argmax picks class 0
    edge[6:9, 2:] = 0.0
    cases.append((edge, np.array([0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 2, 0, 0, 1, 0]), 10))
    logits = rng.standard_normal((60, 3)) * 2           # 3 classes: nothing in the ECE depends on there being 10
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    cases.append((probs, np.where(rng.random(60) < 0.7, probs.argmax(axis=1), rng.integers(0, 3, 60)), 10))
    return cases


def _bins(conf, num_bins):
    return np.clip(np.searchsorted(np.linspace(0, 1, num_bins + 1), conf, side="left") - 1, 0, num_bins - 1)


def _gaps(probs, y, num_bins):
    """Per non-empty bin (lo, hi]: count, accuracy, mean confidence."""
    conf, correct = probs.max(1), probs.argmax(1) == y
    b = _bins(conf, num_bins)
    keep = np.unique(b)
    return (np.array([np.sum(b == k) for k in keep]), np.array([correct[b == k].mean() for k in keep]),
            np.array([conf[b == k].mean() for k in keep]))


def _unweighted(probs, y, num_bins=10):
    _, acc, conf = _gaps(probs, y, num_bins)
    return float(np.mean(np.abs(acc - conf)))


def _signed(probs, y, num_bins=10):
    n, acc, conf = _gaps(probs, y, num_bins)
    return float(np.sum(n / len(y) * (acc - conf)))


def _by_correctness(probs, y, num_bins=10):
    conf, correct = probs.max(1), probs.argmax(1) == y
    return float(sum(np.mean(group) * abs(correct[group].mean() - conf[group].mean())
                     for group in (correct, ~correct) if group.any()))


def _true_class_prob(probs, y, num_bins=10):
    conf, correct = probs[np.arange(len(y)), y], probs.argmax(1) == y
    b = _bins(conf, num_bins)
    return float(sum(np.mean(b == k) * abs(correct[b == k].mean() - conf[b == k].mean()) for k in np.unique(b)))


def _closed_open(probs, y, num_bins=10, last_closed=False):
    """The bins [lo, hi), written as a learner would: conf >= lo and conf < hi (optionally <= 1.0 for the last)."""
    conf, correct = probs.max(1), probs.argmax(1) == y
    edges = np.linspace(0, 1, num_bins + 1)
    total = 0.0
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        in_bin = (conf >= lo) & ((conf <= hi) if last_closed and k == num_bins - 1 else (conf < hi))
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return total


def _abs_of_total(probs, y, num_bins=10):
    n, acc, conf = _gaps(probs, y, num_bins)
    return float(abs(np.sum(n / len(y) * (acc - conf))))


def _empty_bins_nan(probs, y, num_bins=10):
    conf, correct = probs.max(1), probs.argmax(1) == y
    edges, total = np.linspace(0, 1, num_bins + 1), 0.0
    with np.errstate(all="ignore"):
        for lo, hi in zip(edges[:-1], edges[1:]):
            in_bin = (conf > lo) & (conf <= hi)
            gap = abs(np.mean(correct[in_bin]) - np.mean(conf[in_bin])) if in_bin.any() else np.nan
            total += in_bin.mean() * gap                # 0 * NaN is NaN: one empty bin spoils the sum
    return total


def _squared_gaps(probs, y, num_bins=10):
    n, acc, conf = _gaps(probs, y, num_bins)
    return float(np.sum(n / len(y) * (acc - conf) ** 2))


def _show_ece(args, out, want):
    probs, y, num_bins = args
    try:
        out = float(out)
    except (TypeError, ValueError):
        return ""
    if len(y) == 1:
        what = (f"one prediction with confidence {probs.max():.3f}, "
                f"{'right' if probs.argmax() == y[0] else 'wrong'}, and {num_bins} bins")
    else:
        what = f"{len(y)} predictions and {num_bins} bins"
    return f"For example, with {what}: the ECE is {want:.4g}, yours is {out:.4g}"


def _weighted_by_count(probs, y, num_bins=10):
    n, acc, conf = _gaps(probs, y, num_bins)
    return float(np.sum(n * np.abs(acc - conf)))


ece = _Nb03Exercise(
    "ece", _ece_reference, ece_solution, _ece_cases,
    "matches npnet.metrics.reliability's ECE on 1 to 1,000 predictions with 5, 10 and 15 bins, with confidences "
    "exactly on bin edges and exactly 1.0, and with 3 classes",
    mistakes=[
        ("you averaged the bins' gaps equally: weight each bin's |accuracy - confidence| by its share of the "
         "predictions, n_b / N. A bin with 3 predictions must not count as much as one with 9,000.", _unweighted),
        ("the gaps cancel: take the absolute value |acc_b - conf_b| in each bin before adding them up.", _signed),
        ("you grouped the predictions by whether they are right, not by their confidence: sort them into "
         "equal-width bins of max_k p_k, then compare each bin's accuracy with its mean confidence.", _by_correctness),
        ("confidence is the TOP probability, max_k p_k, whichever class it belongs to; you used the probability of "
         "the true label.", _true_class_prob),
        ("your bins are [lo, hi), conf >= lo and conf < hi, so a confidence of exactly 1.0 falls in no bin and is "
         "lost, and one on an edge (0.5) goes to the bin above. The course, like npnet.metrics.reliability, uses "
         "(lo, hi]: conf > lo and conf <= hi.", _closed_open),
        ("your bins are [lo, hi) with 1.0 kept in the last one (as np.digitize or floor(conf * num_bins) make them): "
         "a confidence exactly on an edge, such as 0.5, went into the bin above. The course, like "
         "npnet.metrics.reliability, uses (lo, hi], so 0.5 belongs to (0.4, 0.5]: conf > lo and conf <= hi.",
         lambda p, y, b=10: _closed_open(p, y, b, last_closed=True)),
        ("you took the absolute value of the total, |sum_b (n_b / N)(acc_b - conf_b)|, which is only |overall "
         "accuracy - mean confidence|: over- and under-confident bins still cancel. Take |acc_b - conf_b| in each "
         "bin first, then add up the weighted gaps.", _abs_of_total),
        ("each bin is weighted by its count n_b instead of its share n_b / N, so the ECE comes out N times too "
         "large: divide by the number of predictions.", _weighted_by_count),
        ("num_bins is ignored: with 5 or 15 bins you still used 10. Build the edges from the argument, "
         "np.linspace(0, 1, num_bins + 1).", lambda p, y, b=10: ece_solution(p, y, 10)),
        ("your ECE is 100 times too large: it is in percent. Return it as a fraction of 1 (0.0018, not 0.18), as "
         "accuracy and confidence are.", lambda p, y, b=10: 100 * ece_solution(p, y, b)),
        ("you squared each bin's gap: that weighs the large gaps more and shrinks the small ones, and is a different "
         "measure. The ECE adds the absolute gaps |acc_b - conf_b|, weighted by n_b / N.", _squared_gaps),
        ("an empty bin divides 0 by 0: its accuracy and mean confidence are the mean of nothing, NaN, and one NaN "
         "spoils the whole sum. Skip empty bins (if in_bin.any(): ...): they add nothing to the ECE.",
         _empty_bins_nan),
    ],
    hint_text="Two arrays of length N do most of the work: each prediction's confidence, and whether it was right. "
              "Then go bin by bin. What does a bin with no predictions add?",
    raised=[(re.compile(r"Cannot cast ufunc .* to dtype\('bool'\)"),
             "NumPy could not add numbers into a boolean array: `correct` (probs.argmax(axis=1) == y) is boolean, and "
             "np.histogram(..., weights=correct) or an in-place += on it keeps that dtype. Convert it first, "
             "correct.astype(float).")],
    show_case=_show_ece,
    classes=(lambda probs, y, num_bins=10: probs.shape[1], "probs.shape[1], or no class count at all"),
)


# -- refusal per digit (end-of-notebook exercise) -----------------------------------------------------------
def refused_per_digit_solution(probs, y, t):
    """(N, 10) probs, (N,) true labels, threshold t -> (10,) the fraction of each TRUE digit refused (confidence < t).

    A digit with no inputs gets 0.
    """
    refused = probs.max(axis=1) < t                     # kept: confidence >= t, as in the notebook
    count = np.bincount(y, minlength=10)                # (10,) inputs of each true digit
    return np.bincount(y[refused], minlength=10) / np.maximum(count, 1)


def _refusal_cases(rng):
    cases = []
    for n in (1, 60, 2000):
        logits = rng.standard_normal((n, 10)) * 3
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = np.where(rng.random(n) < 0.8, probs.argmax(1), rng.integers(0, 10, n))
        cases.append((probs, y, float(rng.uniform(0.4, 0.8))))
    probs = np.full((6, 10), 0.05)
    probs[:, 3] = 0.55                                   # confidence exactly 0.55, the threshold
    cases.append((probs, np.array([3, 3, 1, 1, 7, 7]), 0.55))
    return cases


def _by_predicted(probs, y, t):
    return refused_per_digit_solution(probs, probs.argmax(axis=1), t)


def _share_of_refused(probs, y, t):
    refused = probs.max(axis=1) < t
    return np.bincount(y[refused], minlength=10) / max(refused.sum(), 1)


def _share_of_refused_unguarded(probs, y, t):
    refused = probs.max(axis=1) < t
    return np.bincount(y[refused], minlength=10) / refused.sum()    # 0 / 0 = NaN when nothing is refused


def _at_or_below(probs, y, t):
    refused = probs.max(axis=1) <= t
    return np.bincount(y[refused], minlength=10) / np.maximum(np.bincount(y, minlength=10), 1)


def _refused_counts(probs, y, t):
    return np.bincount(y[probs.max(axis=1) < t], minlength=10)


def _over_all_inputs(probs, y, t):
    return np.bincount(y[probs.max(axis=1) < t], minlength=10) / len(y)


def _refused_and_wrong(probs, y, t):
    refused = (probs.max(axis=1) < t) & (probs.argmax(axis=1) != y)
    return np.bincount(y[refused], minlength=10) / np.maximum(np.bincount(y, minlength=10), 1)


def _true_class_below(probs, y, t):
    refused = probs[np.arange(len(y)), y] < t
    return np.bincount(y[refused], minlength=10) / np.maximum(np.bincount(y, minlength=10), 1)


def _absent_nan(probs, y, t):
    with np.errstate(all="ignore"):
        return np.bincount(y[probs.max(axis=1) < t], minlength=10) / np.bincount(y, minlength=10)


def _show_refusal(args, out, want):
    try:
        out = np.asarray(out, np.float64).reshape(want.shape)
    except (TypeError, ValueError):
        return ""
    d = int(np.argmax(np.abs(np.nan_to_num(out, nan=np.inf) - want)))
    n = len(args[1])
    return (f"For example, on {n} input{'s' if n > 1 else ''} with t = {args[2]:.3f}: digit {d} should be "
            f"{want[d]:.3g}, yours is {out[d]:.3g}")


def _kept(probs, y, t):
    kept = probs.max(axis=1) >= t
    return np.bincount(y[kept], minlength=10) / np.maximum(np.bincount(y, minlength=10), 1)


refused_per_digit = _Nb03Exercise(
    "refused_per_digit", refused_per_digit_solution, refused_per_digit_solution, _refusal_cases,
    "matches the model answer on 1, 60 and 2,000 inputs, with a confidence exactly at the threshold",
    mistakes=[
        ("you grouped by the PREDICTED digit; the question is which true digits are refused, so group by y.",
         _by_predicted),
        ("you divided by the number of refused inputs, which gives each digit's share of the refusals; divide by "
         "how many inputs of that digit there are.", _share_of_refused),
        ("you divided by the number of refused inputs, refused.sum(): that is each digit's share of ALL the "
         "refusals (the ten numbers add up to 1), and NaN when nothing is refused. The question is what fraction "
         "of each digit is refused: divide by how many inputs of that digit there are, np.bincount(y, minlength=10).",
         _share_of_refused_unguarded),
        ("a confidence exactly equal to t was refused: the notebook keeps conf >= t, so refuse conf < t.",
         _at_or_below),
        ("that is the fraction KEPT per digit; the question asks for the fraction refused.", _kept),
        ("you returned counts of refused inputs; the question asks for fractions: divide each digit's count by how "
         "many inputs of that digit there are, np.bincount(y, minlength=10).", _refused_counts),
        ("you divided by N, all the inputs, which gives each digit's refusals as a share of the whole set (they "
         "add up to the overall 3.5%); divide by how many inputs of THAT digit there are, np.bincount(y, "
         "minlength=10).", _over_all_inputs),
        ("you counted only the refused inputs that the model got wrong; the threshold cannot see the label: every "
         "input with confidence < t is refused, right or wrong.", _refused_and_wrong),
        ("you compared the probability of the TRUE digit with t; refusal looks at the confidence, the top "
         "probability max_k p_k, which the model knows without the label.", _true_class_below),
        ("a digit with no inputs divides 0 by 0 and gives NaN; the docstring asks for 0 there: divide by "
         "np.maximum(count, 1).", _absent_nan),
    ],
    raised=[(re.compile(r"could not be broadcast|shape \(\d,\), expected \(10,\)"),
             "np.bincount returns max(label) + 1 counts, so bincounts of two different label sets can differ in "
             "length, or be shorter than 10 (a digit that is never refused, or absent, is left off the end): pass "
             "minlength=10 to both.")],
    not_done="· not done yet: the next cell answers the question with the model answer, "
             "ex.refused_per_digit_solution, instead of yours. ex.refused_per_digit.hint() gives a nudge.",
    show_case=_show_refusal,
    hint_text="refused = probs.max(axis=1) < t. Count refused inputs per true digit with np.bincount(y[refused], "
              "minlength=10) and divide by np.bincount(y, minlength=10) (use np.maximum(count, 1) for absent digits).",
)


# -- exercise 2: equal-mass bins ----------------------------------------------------------------------------
def ece_equal_mass_solution(probs, y, num_bins=10):
    """(N, C) probs, (N,) int labels -> ECE, a float, over num_bins bins that each hold about N / num_bins
    predictions: sorted by confidence, then cut with np.array_split."""
    conf = probs.max(axis=1)                            # (N,) confidence
    correct = probs.argmax(axis=1) == y                 # (N,) right or wrong
    order = np.argsort(conf)                            # least confident first
    total = 0.0
    for in_bin in np.array_split(order, num_bins):      # indices of the predictions in each bin
        if len(in_bin):                                 # more bins than predictions leaves some empty
            total += len(in_bin) / len(y) * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return total


def _equal_mass_cases(rng):
    return _random_calibration_cases(rng, ((4, 10), (37, 10), (400, 5), (1000, 15)))


def _unsorted_mass(probs, y, num_bins=10):
    conf, correct = probs.max(1), probs.argmax(1) == y
    return float(sum(len(b) / len(y) * abs(correct[b].mean() - conf[b].mean())
                     for b in np.array_split(np.arange(len(y)), num_bins) if len(b)))


def _signed_mass(probs, y, num_bins=10):
    conf, correct = probs.max(1), probs.argmax(1) == y
    return float(sum(len(b) / len(y) * (correct[b].mean() - conf[b].mean())
                     for b in np.array_split(np.argsort(conf), num_bins) if len(b)))


ece_equal_mass = _Nb03Exercise(
    "ece_equal_mass", ece_equal_mass_solution, ece_equal_mass_solution, _equal_mass_cases,
    "matches the model answer on 4 to 1,000 predictions with 5, 10 and 15 bins, fewer predictions than bins included",
    mistakes=[
        ("your bins follow the order the predictions come in, not their confidence: sort first (np.argsort of the "
         "confidences), then cut the sorted indices with np.array_split, so each bin holds similar confidences.",
         _unsorted_mass),
        ("these are the equal-width bins of the main text (npnet.metrics.reliability); here every bin holds the same "
         "NUMBER of predictions: sort by confidence and cut with np.array_split.",
         lambda p, y, b=10: metrics.reliability(p, y, b)["ece"]),
        ("the gaps cancel: take |acc_b - conf_b| in each bin before adding them up.", _signed_mass),
        ("num_bins is ignored: you always made 10 bins. Pass num_bins to np.array_split.",
         lambda p, y, b=10: ece_equal_mass_solution(p, y, 10)),
    ],
    hint_text="order = np.argsort(probs.max(axis=1)); then for each index array in np.array_split(order, num_bins), "
              "add len(bin) / N times |accuracy - mean confidence| in that bin. Skip empty bins.",
    not_done="· not done yet: the next cell answers the question with the model answer, "
             "ex.ece_equal_mass_solution, instead of yours. ex.ece_equal_mass.hint() gives a nudge.",
)


# -- exercise 3: temperature scaling ------------------------------------------------------------------------
def best_temperature_solution(logits, y, temperatures):
    """(N, C) logits, (N,) int labels, (K,) temperatures -> the temperature T (a float, one of temperatures) whose
    softmax(logits / T) has the lowest mean cross-entropy."""
    losses = []
    for T in temperatures:
        z = logits / T
        z = z - z.max(axis=1, keepdims=True)            # stable log-softmax
        log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        losses.append(-log_probs[np.arange(len(y)), y].mean())
    return float(temperatures[int(np.argmin(losses))])


def _temperature_cases(rng):
    cases = []
    for n, scale in ((50, 2.5), (300, 4.0), (1000, 2.0)):
        logits = rng.standard_normal((n, 10)) * scale   # over-confident: the best T is above 1
        y = np.where(rng.random(n) < 0.8, logits.argmax(axis=1), rng.integers(0, 10, n))
        cases.append((logits, y, np.round(np.arange(0.5, 3.001, 0.05), 2)))
    return cases


def _temperature_losses(logits, y, temperatures, scale):
    out = []
    for T in temperatures:
        z = scale(logits, T)
        z = z - z.max(axis=1, keepdims=True)
        out.append(-(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(len(y)), y].mean())
    return np.array(out)


def _temperature_ece(logits, y, temperatures):
    eces = []
    for T in temperatures:
        z = logits / T
        p = np.exp(z - z.max(axis=1, keepdims=True))
        eces.append(metrics.reliability(p / p.sum(axis=1, keepdims=True), y)["ece"])
    return float(temperatures[int(np.argmin(eces))])


best_temperature = _Nb03Exercise(
    "best_temperature", best_temperature_solution, best_temperature_solution, _temperature_cases,
    "matches the model answer on 50 to 1,000 over-confident predictions, on the grid 0.5, 0.55, ..., 3",
    mistakes=[
        ("you returned the position of the best temperature in the grid; return the temperature itself, "
         "temperatures[np.argmin(losses)].", lambda z, y, ts: int(np.argmin(_temperature_losses(z, y, ts, np.divide)))),
        ("you picked the temperature with the LARGEST loss: use np.argmin.",
         lambda z, y, ts: float(ts[int(np.argmax(_temperature_losses(z, y, ts, np.divide)))])),
        ("you multiplied the logits by T; temperature scaling divides them, softmax(logits / T), so that T > 1 "
         "softens the probabilities.", lambda z, y, ts: float(ts[int(np.argmin(_temperature_losses(z, y, ts, np.multiply)))])),
        ("you chose T by the ECE; the exercise chooses it by the cross-entropy (the loss the model was trained on), "
         "and then looks at what that does to the ECE.", _temperature_ece),
    ],
    hint_text="For each T in temperatures: z = logits / T, then the mean cross-entropy -log softmax(z)[i, y_i] "
              "(subtract z.max(axis=1, keepdims=True) first). Return the T with the smallest loss.",
    not_done="· not done yet: the next cell shows what temperature scaling does once yours passes; Going deeper "
             "measures it too. ex.best_temperature.hint() gives a nudge.",
    float32=False,
)
