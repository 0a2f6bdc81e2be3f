"""Notebook 04's checks name each typical wrong answer: written here as a learner might, independently of nb04.py."""

import numpy as np
import pytest

from npnet.exercises import nb04 as ex


def _com(x):
    rows, cols = np.arange(x.shape[0]) + 0.5, np.arange(x.shape[1]) + 0.5
    return (x.sum(1) @ rows) / x.sum(), (x.sum(0) @ cols) / x.sum()


def _shift(x):
    r, c = _com(x)
    return 14.5 - r, 14.5 - c


def _move(x, dr, dc):
    out = np.zeros_like(x)
    for r in range(28):
        for c in range(28):
            if 0 <= r + dr < 28 and 0 <= c + dc < 28:
                out[r + dr, c + dc] = x[r, c]
    return out


def _bilinear(x, dr, dc):                    # a sub-pixel move, zeros coming in
    out = np.zeros_like(x)
    r0, c0 = int(np.floor(dr)), int(np.floor(dc))
    fr, fc = dr - r0, dc - c0
    for a, wa in ((0, 1 - fr), (1, fr)):
        for b, wb in ((0, 1 - fc), (1, fc)):
            out += wa * wb * _move(x, r0 + a, c0 + b)
    return out


def _pad(n, k):
    return (n - k) // 2


WRONG = {
    "centre_of_mass": [
        ("grid assumes 28x28", lambda x: ((x.sum(1) @ (np.arange(28) + 0.5)) / x.sum(),
                                          (x.sum(0) @ (np.arange(28) + 0.5)) / x.sum()), "grid assumes 28x28"),
        ("argmax pixel", lambda x: tuple(np.argwhere(x == x.max())[0] + 0.5), "brightest pixel"),
    ],
    "centring_shift": [
        ("rounded to int", lambda x: tuple(int(round(v)) for v in _shift(x)), "rounded to whole pixels"),
    ],
    "fit_box": [
        ("integer division", lambda h, w, box=20: (h * box // max(h, w), w * box // max(h, w)), "whole pixels"),
        ("int()", lambda h, w, box=20: (int(h * box / max(h, w)), int(w * box / max(h, w))), "whole pixels"),
        ("scale by integer division", lambda h, w, box=20: (h * (box // max(h, w)), w * (box // max(h, w))),
         "scale is a whole number"),
        ("int() of the scale", lambda h, w, box=20: (h * int(box / max(h, w)), w * int(box / max(h, w))),
         "scale is a whole number"),
        ("(w, h) swapped", lambda h, w, box=20: (w * box / max(h, w), h * box / max(h, w)), "sides are swapped"),
        ("hard-coded 20", lambda h, w, box=20: (20 * h / max(h, w), 20 * w / max(h, w)), "fixed at 20"),
    ],
    "app_placement": [
        ("n / 20", lambda h, w: (max(h, w) / 20, -_pad(max(h, w), h), -_pad(max(h, w), w)), "upside down"),
        ("square centre", lambda h, w: (20 / max(h, w), max(h, w) / 2 - _pad(max(h, w), h),
                                        max(h, w) / 2 - _pad(max(h, w), w)), "square's centre"),
        ("+4 folded into the anchor", lambda h, w: (20 / max(h, w), -_pad(max(h, w), h) - 4 * max(h, w) / 20,
                                                    -_pad(max(h, w), w) - 4 * max(h, w) / 20), "output (0, 0)"),
    ],
    "shift_to_centre": [
        ("floor", lambda x: _move(x, *(int(np.floor(v)) for v in _shift(x))), "one pixel short"),
        ("target 14", lambda x: _move(x, *(int(np.round(v - 0.5)) for v in _shift(x))), "one pixel short"),
        ("x unchanged", lambda x: x.copy(), "did not move"),
        ("sub-pixel shift", lambda x: _bilinear(x, *_shift(x)), "fraction of a pixel"),
    ],
}


@pytest.mark.parametrize("name, label, fn, words",
                         [(name, label, fn, words) for name, cases in WRONG.items() for label, fn, words in cases],
                         ids=[f"{name}: {label}" for name, cases in WRONG.items() for label, _, _ in cases])
def test_a_typical_wrong_answer_is_named(name, label, fn, words):
    verdict, message = getattr(ex, name).diagnose(fn)
    assert verdict in ("mistake", "wrong") and message.startswith("✗") and words in message, message


def test_the_model_answers_pass():
    for name in WRONG:
        exercise = getattr(ex, name)
        assert exercise.diagnose(exercise.solution_fn)[0] == "pass", exercise.diagnose(exercise.solution_fn)


def test_the_check_cells_show_the_message_alone():
    """check() returns None, so a committed check cell holds the printed message and no bare True or False."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "notebooks" / "04_production_mismatch.ipynb"
    cells = [c for c in json.loads(path.read_text())["cells"]
             if c["cell_type"] == "code" and "".join(c["source"]).startswith("ex.") and ".check(" in "".join(c["source"])]
    assert len(cells) == 5, len(cells)
    for cell in cells:
        kinds = [o["output_type"] for o in cell["outputs"]]
        assert kinds == ["stream"], ("".join(cell["source"]), kinds)
