"""Notebook 01's exercises against answers a learner might write: other correct forms pass, and wrong answers
outside the catalogue's own functions still get the message meant for them."""

import numpy as np

from npnet import losses
from npnet.exercises import nb01


def _means(X_train, y_train):
    return [X_train[y_train == c].mean(axis=0) for c in np.unique(y_train)]


def test_other_correct_forms_of_the_nearest_mean_classifier_pass():
    answers = [
        lambda Xt, yt, X: np.linalg.norm(X[:, None, :] - np.stack(_means(Xt, yt))[None], axis=2).argmin(axis=1),
        lambda Xt, yt, X: np.stack([np.sqrt(((X - m) ** 2).sum(axis=1)) for m in _means(Xt, yt)], axis=1).argmin(axis=1),
        lambda Xt, yt, X: nb01.nearest_mean_solution(Xt, yt, X).astype(float),     # labels as floats
    ]
    for answer in answers:
        assert nb01.nearest_mean.diagnose(answer)[0] == "pass"


def test_nearest_mean_mistakes_written_differently_are_still_named():
    by_abs_sum = lambda Xt, yt, X: np.abs(np.stack([(X - m).sum(axis=1) for m in _means(Xt, yt)], axis=1)).argmin(axis=1)
    verdict, message = nb01.nearest_mean.diagnose(by_abs_sum)
    assert verdict == "mistake" and "total ink" in message, message
    farthest_by_norm = lambda Xt, yt, X: np.stack([np.linalg.norm(X - m, axis=1) for m in _means(Xt, yt)], axis=1).argmax(axis=1)
    verdict, message = nb01.nearest_mean.diagnose(farthest_by_norm)
    assert verdict == "mistake" and "farthest" in message, message


def test_a_summed_cross_entropy_is_named_whether_or_not_it_is_stable():
    stable_sum = lambda z, y: -losses.log_softmax(z)[np.arange(len(y)), y].sum()
    verdict, message = nb01.cross_entropy.diagnose(stable_sum)
    assert verdict == "mistake" and "exactly N times too large" in message, message
    naive_sum = lambda z, y: -np.log(np.exp(z)[np.arange(len(y)), y] / np.exp(z).sum(axis=1)).sum()
    verdict, message = nb01.cross_entropy.diagnose(naive_sum)
    assert verdict == "mistake" and "N times too large" in message and "NaN" in message, message
    softmax_then_log_sum = lambda z, y: -np.log(losses.softmax(z)[np.arange(len(y)), y]).sum()
    verdict, message = nb01.cross_entropy.diagnose(softmax_then_log_sum)
    assert verdict == "mistake" and "N times too large" in message and "inf" in message, message
