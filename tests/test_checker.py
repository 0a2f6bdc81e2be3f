"""The exercise checker's own rules: types as well as values (integer counts, float32 in and out), no exception
under np.seterr(all="raise") or from an odd output object, only the message in a check cell, and Adam not in place.

Two toy exercises keep these tests independent of the notebooks' exercises; the real ones are then checked too.
"""

import importlib
import pkgutil
import re

import numpy as np
import pytest

import npnet.exercises as exercises_pkg
from npnet.exercises import COUNTS, FLOAT64_LEAK, Exercise, nb02, nb04, nb06


def _stub(*args):
    raise NotImplementedError


def _double_solution(x):
    return 2 * x


double = Exercise(                 # float in, float out: the float32 probe applies
    "double", lambda x: x + x, _double_solution, lambda rng: [(rng.standard_normal((3, 4)),), (np.zeros(1),)],
    "doubles", mistakes=[("you tripled it.", lambda x: 3 * x), ("you squared it.", lambda x: x * x)], hint_text="2x")


def _counts_solution(y, num_classes):
    return np.bincount(y, minlength=num_classes)


counts = Exercise(                 # labels in, counts out: they must be integers
    "counts", _counts_solution, _counts_solution,
    lambda rng: [(rng.integers(0, 5, 20), 5), (np.array([2, 2]), 4)], "counts",
    mistakes=[("one too many.", lambda y, k: np.bincount(y, minlength=k) + 1),
              ("a fraction.", lambda y, k: np.bincount(y, minlength=k) / len(y))], hint_text="bincount")


def _all_exercises():
    found = []
    for m in pkgutil.iter_modules(exercises_pkg.__path__):
        if re.fullmatch(r"nb\d\d", m.name):
            module = importlib.import_module(f"npnet.exercises.{m.name}")
            found += [(f"{m.name}.{n}", ex) for n, ex in vars(module).items() if isinstance(ex, Exercise)]
    return sorted(found, key=lambda pair: pair[0])


EXERCISES = _all_exercises()
IDS = [name for name, _ in EXERCISES]


# -- the toy exercises: a solution passes, a stub is not done, each mistake and each type slip is named ------------

@pytest.mark.parametrize("ex", [double, counts], ids=["double", "counts"])
def test_a_toy_exercise_passes_its_solution_waits_for_a_stub_and_names_its_mistakes(ex):
    assert ex.diagnose(ex.solution_fn)[0] == "pass"
    assert ex.diagnose(_stub)[0] == "not done"
    for message, wrong in ex.mistakes:
        assert ex.diagnose(wrong) == ("mistake", f"✗ {message}")


def test_counts_returned_as_floats_are_a_named_mistake():
    as_floats = lambda y, k: np.bincount(y, minlength=k).astype(float)
    assert counts.diagnose(as_floats) == ("mistake", "✗ " + COUNTS.format(name="counts", which=""))
    assert counts.diagnose(lambda y, k: np.bincount(y, minlength=k).astype(np.int32))[0] == "pass"  # any int


def test_float32_in_float64_out_is_a_named_mistake():
    leak = lambda x: np.asarray(2 * x, np.float64)
    assert double.diagnose(leak) == ("mistake", "✗ " + FLOAT64_LEAK.format(name="double", which=""))
    assert double.diagnose(lambda x: x * np.sqrt(4))[0] == "mistake"      # a NumPy float64 number promotes
    assert double.diagnose(lambda x: x * 2.0)[0] == "pass"                # a Python float does not


def test_the_float32_probe_can_be_switched_off_and_reports_an_answer_that_breaks_on_float32():
    quiet = Exercise("double", double.reference, _double_solution, double.cases, "doubles", double.mistakes, "2x",
                     float32=False)
    assert quiet.diagnose(lambda x: np.asarray(2 * x, np.float64))[0] == "pass"

    def float64_only(x):
        if x.dtype != np.float64:
            raise TypeError("float64 please")
        return 2 * x

    verdict, message = double.diagnose(float64_only)
    assert verdict == "wrong" and "given float32 arrays, raised TypeError: float64 please" in message


# -- the real exercises ------------------------------------------------------------------------------------------

def _leaky(ex):
    """The solution, with every float32 array it returns turned into float64."""
    def leaks(*args):
        out = ex.solution_fn(*args)
        widen = lambda o: o.astype(np.float64) if isinstance(o, np.ndarray) and o.dtype == np.float32 else o
        return tuple(widen(o) for o in out) if isinstance(out, tuple) else widen(out)
    return leaks


PROBED = [(name, ex) for name, ex in EXERCISES if ex.diagnose(_leaky(ex))[0] != "pass"]


def test_the_float32_probe_covers_the_array_exercises_whose_reference_keeps_float32():
    names = {ex.name for _, ex in PROBED}
    assert {"dense_backward", "relu_backward", "adam_step", "shift_to_centre", "ink_from_distance"} <= names, names


@pytest.mark.parametrize("name,ex", PROBED, ids=[name for name, _ in PROBED])
def test_a_float64_leak_is_caught(name, ex):
    verdict, message = ex.diagnose(_leaky(ex))
    assert verdict == "mistake" and "turns float32 inputs into float64" in message, message


def test_realistic_float64_leaks_are_named():
    leak = "turns float32 inputs into float64"
    assert leak in nb02.relu_backward.diagnose(lambda Z, dA: dA * (Z > 0).astype(float))[1]
    assert leak in nb06.ink_from_distance.diagnose(lambda d, w: np.clip(np.float64(w) / 2 + 0.5 - d, 0, 1))[1]

    def shift_into_float64_zeros(x):
        out = nb04.shift_to_centre_solution(x)
        canvas = np.zeros((28, 28))                 # no dtype: float64
        canvas[...] = out
        return canvas

    assert leak in nb04.shift_to_centre.diagnose(shift_into_float64_zeros)[1]


@pytest.mark.parametrize("name,ex", EXERCISES, ids=IDS)
def test_check_never_raises_under_seterr_raise(name, ex, capsys):
    answers = [ex.solution_fn, _stub, lambda *a: np.nan, lambda *a: 1 / 0, ex.mistakes[0][1]]
    with np.errstate(all="raise"):
        for fn in answers:
            assert ex.check(fn) is None
        assert ex.diagnose(ex.solution_fn)[0] == "pass"
    assert capsys.readouterr().out.count("\n") == len(answers)


class _Odd:
    """An output object that raises from whatever NumPy asks of it."""

    def __init__(self, error):
        self.error = error

    def __array__(self, *args, **kwargs):
        raise self.error

    def __len__(self):
        raise self.error

    def __float__(self):
        raise self.error


class _OddList(list):
    """A list (so: several outputs, or one array) that raises when it is read."""

    def __iter__(self):
        raise RuntimeError("odd")

    def __len__(self):
        raise RuntimeError("odd")


@pytest.mark.parametrize("error", [RuntimeError("odd"), KeyError("odd")])
@pytest.mark.parametrize("name,ex", EXERCISES, ids=IDS)
def test_an_odd_output_object_is_reported_not_raised(name, ex, error):
    verdict, message = ex.diagnose(lambda *args: _Odd(error))
    assert verdict == "wrong" and ("returned _Odd, expected real numbers" in message
                                   or "returned 1 value(s)" in message), message
    verdict, message = ex.diagnose(lambda *args: _OddList())
    assert verdict == "wrong" and message.startswith(f"✗ {ex.name}"), message


def test_a_check_cell_shows_the_message_and_nothing_else(capsys):
    assert double.check(_double_solution) is None and double.check(_stub) is None
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✓ double: doubles" and out[1].startswith("· not done yet") and len(out) == 2


def test_adam_step_is_documented_and_checked_as_not_in_place():
    assert "Not in place" in nb02.adam_step_solution.__doc__
    assert "Not in place" in nb02.adam_step.solution_source()          # what the learner reads

    def in_place(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad ** 2
        param -= lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
        return param, m, v

    verdict, message = nb02.adam_step.diagnose(in_place)
    assert verdict == "wrong" and "changed its argument `param` in place" in message, message


def test_a_wrong_shape_of_another_rank_is_reported_not_raised():
    # A 4-D answer where a 2-D one is expected (im2col without its final reshape) once raised IndexError
    # from the channels-first hint, which read w.shape[3] of a 2-D answer.
    from npnet.exercises import _difference
    message = _difference(np.zeros((2, 3, 3, 4)), np.zeros((18, 4)))
    assert message == "shape (2, 3, 3, 4), expected (18, 4)", message


# -- a hard-coded 10 classes --------------------------------------------------------------------------------------

CLASSED = [(name, ex) for name, ex in EXERCISES if ex.classes is not None]


def test_the_exercises_over_classes_say_where_to_find_the_number_of_classes():
    names = {name for name, _ in CLASSED}
    assert {"nb01.softmax", "nb01.cross_entropy", "nb01.softmax_grads", "nb03.confusion_matrix", "nb03.ece"} <= names


def _right_only_with_ten_classes(ex):
    """The solution, failing as a hard-coded 10 does wherever a case has another number of classes."""
    def ten_only(*args):
        if ex.classes[0](*args) != 10:
            raise ValueError("operands could not be broadcast together with shapes (6,3) (6,10) ")
        return ex.solution_fn(*args)
    return ten_only


@pytest.mark.parametrize("name,ex", CLASSED, ids=[name for name, _ in CLASSED])
def test_a_hard_coded_ten_classes_is_named(name, ex):
    numbers = {ex.classes[0](*args) for args in ex.cases(np.random.default_rng(ex.seed))}
    assert 10 in numbers and len(numbers) > 1, numbers
    verdict, message = ex.diagnose(_right_only_with_ten_classes(ex))
    assert verdict == "mistake" and message.startswith(f"✗ {ex.name} is right with 10 classes but not with "), message
    assert "assumes 10 classes" in message and ex.classes[1] in message and "(6,10)." in message, message


def test_an_answer_wrong_with_ten_classes_too_is_not_said_to_assume_ten():
    from npnet.exercises import nb01

    def wrong_everywhere(z):
        if z.shape[1] != 10:
            raise ValueError("not 10")
        return nb01.softmax_solution(z) * 1.01
    verdict, message = nb01.softmax.diagnose(wrong_everywhere)
    assert verdict == "wrong" and "assumes 10 classes" not in message, message
