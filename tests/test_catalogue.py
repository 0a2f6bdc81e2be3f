"""Each catalogued mistake, written a second time here as a learner would write it, gets that mistake's own message.

tests/test_exercises.py feeds each catalogue entry its own function, so an entry whose code no longer makes the
mistake its message names would still pass there. Here every wrong answer is written independently, from the
message alone, and must be recognised by the entry whose message contains the given phrase. Notebooks 02, 04 and
06 are covered in full: every entry of theirs has a case below.
"""

import numpy as np
import pytest

from npnet.exercises import nb02, nb04, nb06

# -- notebook 02 ----------------------------------------------------------------------------------------------


def adam(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, slip=None):
    """A learner's Adam step, with one slip switched on by name."""
    if slip == "swapped weights":
        beta1, beta2 = 1 - beta1, 1 - beta2
    if slip == "t - 1":
        t = t - 1
    if slip == "t + 1":
        t = t + 1
    if slip == "no eps":
        eps = 0.0
    old_m, old_v = m, v
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * (grad if slip == "v of g" else grad * grad)
    if slip == "efficient":
        step = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m / (np.sqrt(v) + eps)
        return param - step, m, v
    m_hat = m if slip == "no correction" else m / (1 - beta1 ** t)
    v_hat = v if slip in ("no correction", "only m") else v / (1 - beta2 ** t)
    if slip == "old moments":
        m_hat, v_hat = old_m / (1 - beta1 ** t), old_v / (1 - beta2 ** t)
    denominator = np.sqrt(v_hat + eps) if slip == "eps in sqrt" else np.sqrt(v_hat) + eps
    new_param = param + lr * m_hat / denominator if slip == "uphill" else param - lr * m_hat / denominator
    if slip == "returns hats":
        return new_param, m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return new_param, m, v


def _adam(slip):
    return lambda *args: adam(*args, slip=slip)


NB02 = [
    (nb02.dense_backward, "dW is transposed", lambda X, W, dout: (dout @ W.T, dout.T @ X, dout.sum(0))),
    (nb02.dense_backward, "dW and db are N times too small",
     lambda X, W, dout: (dout @ W.T, X.T @ dout / X.shape[0], dout.sum(0) / X.shape[0])),
    (nb02.dense_backward, "db is N times too small", lambda X, W, dout: (dout @ W.T, X.T @ dout, np.mean(dout, 0))),
    (nb02.dense_backward, "db has shape (N, C)", lambda X, W, dout: (dout @ W.T, X.T @ dout, dout.copy())),
    (nb02.dense_backward, "db sums over the wrong axis", lambda X, W, dout: (dout @ W.T, X.T @ dout, dout.sum(1))),
    (nb02.relu_backward, "you multiplied by Z itself", lambda Z, dA: dA * np.where(Z > 0, Z, 0.0)),
    (nb02.relu_backward, "sign of the gradient dA", lambda Z, dA: np.where(dA > 0, dA, 0.0)),
    (nb02.relu_backward, "returned the mask (Z > 0) alone", lambda Z, dA: 1.0 * (Z > 0)),
    (nb02.relu_backward, "not (Z >= 0)", lambda Z, dA: np.where(Z >= 0, dA, 0.0)),
    (nb02.adam_step, "'efficient' form", _adam("efficient")),
    (nb02.adam_step, "no bias correction", _adam("no correction")),
    (nb02.adam_step, "only m is bias-corrected", _adam("only m")),
    (nb02.adam_step, "uses the old m and v", _adam("old moments")),
    (nb02.adam_step, "eps is missing", _adam("no eps")),
    (nb02.adam_step, "uses t - 1", _adam("t - 1")),
    (nb02.adam_step, "uses t + 1", _adam("t + 1")),
    (nb02.adam_step, "eps is inside the square root", _adam("eps in sqrt")),
    (nb02.adam_step, "returned m and v are the bias-corrected", _adam("returns hats")),
    (nb02.adam_step, "weights of the running means are swapped", _adam("swapped weights")),
    (nb02.adam_step, "v averages g, not g**2", _adam("v of g")),
    (nb02.adam_step, "the step goes uphill", _adam("uphill")),
]

# -- notebook 04 ----------------------------------------------------------------------------------------------


def com(x, centres=0.5, by="ink", divide_by="ink"):
    """A learner's centre of mass, (row, col), with the pixel centres at i + centres."""
    weights = x if by == "ink" else (x > 0).astype(float)
    total = weights.sum() if divide_by == "ink" else weights.size
    rows, cols = np.arange(x.shape[0]) + centres, np.arange(x.shape[1]) + centres
    return (weights.sum(1) * rows).sum() / total, (weights.sum(0) * cols).sum() / total


def shifted(x, dr, dc):
    """x moved dr rows down and dc columns right by whole pixels: what leaves the frame is lost, zeros come in."""
    out = np.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            if 0 <= i + dr < x.shape[0] and 0 <= j + dc < x.shape[1]:
                out[i + dr, j + dc] = x[i, j]
    return out


def whole_shift(x, rounding=np.round):
    r, c = com(x)
    return int(rounding(14.5 - r)), int(rounding(14.5 - c))


NB04 = [
    (nb04.centre_of_mass, "rows and columns are swapped", lambda x: com(x)[::-1]),
    (nb04.centre_of_mass, "half a pixel too small", lambda x: com(x, centres=0.0)),
    (nb04.centre_of_mass, "divided by the number of pixels", lambda x: com(x, divide_by="count")),
    (nb04.centre_of_mass, "weighted every inked pixel equally", lambda x: com(x, by="inked")),
    (nb04.centring_shift, "points the wrong way", lambda x: (com(x)[0] - 14.5, com(x)[1] - 14.5)),
    (nb04.centring_shift, "rows and columns are swapped", lambda x: (14.5 - com(x)[1], 14.5 - com(x)[0])),
    (nb04.centring_shift, "half a pixel too large",
     lambda x: (14.5 - com(x, centres=0)[0], 14.5 - com(x, centres=0)[1])),
    (nb04.centring_shift, "the target is 14", lambda x: (14 - com(x)[0], 14 - com(x)[1])),
    (nb04.fit_box, "aspect ratio is lost", lambda h, w, box=20: (box, box)),
    (nb04.fit_box, "scaled by the short side", lambda h, w, box=20: (h * box / min(h, w), w * box / min(h, w))),
    (nb04.fit_box, "the scale is upside down", lambda h, w, box=20: (h / (box / max(h, w)), w / (box / max(h, w)))),
    (nb04.fit_box, "rounded to whole pixels",
     lambda h, w, box=20: (int(round(h * box / max(h, w))), int(round(w * box / max(h, w))))),
    (nb04.shift_to_centre, "np.roll wraps around", lambda x: np.roll(x, whole_shift(x), axis=(0, 1))),
    (nb04.shift_to_centre, "moved away from the centre", lambda x: shifted(x, *(-d for d in whole_shift(x)))),
    (nb04.shift_to_centre, "rows and columns are swapped", lambda x: shifted(x, *whole_shift(x)[::-1])),
    (nb04.shift_to_centre, "int() cuts towards zero", lambda x: shifted(x, *whole_shift(x, rounding=int))),
    (nb04.centre_of_mass, "the brightest pixel's centre",
     lambda x: tuple(float(i) + 0.5 for i in np.unravel_index(np.argmax(x), x.shape))),
    (nb04.centring_shift, "you rounded to whole pixels", lambda x: tuple(float(np.round(14.5 - r)) for r in com(x))),
    (nb04.fit_box, "you cut the sizes down", lambda h, w, box=20: (h * box // max(h, w), w * box // max(h, w))),
    (nb04.fit_box, "the scale is a whole number",
     lambda h, w, box=20: (h * (box // max(h, w)), w * (box // max(h, w)))),
    (nb04.fit_box, "the sides are swapped", lambda h, w, box=20: (w * box / max(h, w), h * box / max(h, w))),
    (nb04.fit_box, "the box size is fixed at 20", lambda h, w, box=20: (h * 20 / max(h, w), w * 20 / max(h, w))),
    (nb04.shift_to_centre, "the image did not move", lambda x: x.copy()),
    (nb04.shift_to_centre, "one pixel short", lambda x: shifted(x, *whole_shift(x, rounding=np.floor))),
]

# -- notebook 06 ----------------------------------------------------------------------------------------------


def distance(a, b, height, width, clip=True, corner=False, xy_from_mgrid=False, tap=True, square=False):
    """A learner's distance from each pixel centre to the segment a-b, with slips switched on by name."""
    rows, cols = np.mgrid[:height, :width] + (0.0 if corner else 0.5)
    x, y = (rows, cols) if xy_from_mgrid else (cols, rows)       # the slip: x, y = np.mgrid[...]
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    with np.errstate(all="ignore"):
        t = ((x - a[0]) * dx + (y - a[1]) * dy) / length2 if (length2 > 0 or not tap) else np.zeros_like(x)
    t = np.minimum(np.maximum(t, 0), 1) if clip else t
    d2 = (x - a[0] - t * dx) ** 2 + (y - a[1] - t * dy) ** 2
    return d2 if square else np.sqrt(d2)


def stroke(points, size, pen_width, combine="max", taps=True, last=True, guard=True):
    """A learner's whole stroke, with slips switched on by name."""
    points = [np.asarray(p, float) for p in np.asarray(points, float).reshape(-1, 2)]
    if taps and len(points) == 1:
        points = points * 2
    pairs = list(zip(points, points[1:]))
    img = np.zeros((size, size))
    for a, b in pairs if last else pairs[:-1]:
        ink = np.clip(pen_width / 2 + 0.5 - distance(a, b, size, size, tap=guard), 0, 1)
        img = np.maximum(img, ink) if combine == "max" else img + ink
    return np.minimum(img, 1) if combine == "add, then clip" else img


def blocks(img):
    return img.shape[0] // 28, img.shape[1] // 28


NB06 = [
    (nb06.segment_distance, "you measured the distance to the infinite line", lambda a, b, h, w: distance(a, b, h, w, clip=False)),
    (nb06.segment_distance, "off by half a pixel", lambda a, b, h, w: distance(a, b, h, w, corner=True)),
    (nb06.segment_distance, "x and y are swapped", lambda a, b, h, w: distance(a, b, h, w, xy_from_mgrid=True)),
    (nb06.segment_distance, "a zero-length segment (a tap, a == b) gives NaN",
     lambda a, b, h, w: distance(a, b, h, w, tap=False)),
    (nb06.segment_distance, "two things", lambda a, b, h, w: distance(a, b, h, w, clip=False, tap=False)),
    (nb06.segment_distance, "the squared distance", lambda a, b, h, w: distance(a, b, h, w, square=True)),
    (nb06.ink_from_distance, "no anti-aliasing", lambda d, w: np.where(d <= w / 2, 1.0, 0.0)),
    (nb06.ink_from_distance, "twice as wide", lambda d, w: np.clip(2 * (w / 2) + 0.5 - d, 0, 1)),
    (nb06.ink_from_distance, "the ramp lies inside the pen", lambda d, w: np.clip((w - 2 * d) / 2, 0, 1)),
    (nb06.ink_from_distance, "not clipped to [0, 1]", lambda d, w: 0.5 + w / 2 - d),
    (nb06.ink_from_distance, "clip the top at 1 as well", lambda d, w: np.where(d < w / 2 + 0.5, w / 2 + 0.5 - d, 0)),
    (nb06.naive_resize, "kept one pixel of each block", lambda img: img[::blocks(img)[0], ::blocks(img)[1]]),
    (nb06.naive_resize, "kept the middle pixel",
     lambda img: img[blocks(img)[0] // 2::blocks(img)[0], blocks(img)[1] // 2::blocks(img)[1]]),
    (nb06.naive_resize, "not its sum",
     lambda img: np.add.reduceat(np.add.reduceat(img, np.arange(0, img.shape[0], blocks(img)[0]), 0),
                                 np.arange(0, img.shape[1], blocks(img)[1]), 1)),
    (nb06.naive_resize, "the blocks are scrambled",
     lambda img: img.reshape(28, 28, *blocks(img)).mean(axis=(2, 3))),
    (nb06.naive_resize, "the result is transposed",
     lambda img: np.array([[img[i * blocks(img)[0]:(i + 1) * blocks(img)[0], j * blocks(img)[1]:(j + 1) * blocks(img)[1]]
                            .mean() for i in range(28)] for j in range(28)])),
    (nb06.render_stroke, "adds up beyond 1", lambda p, s, w: stroke(p, s, w, combine="add")),
    (nb06.render_stroke, "joints are too dark", lambda p, s, w: stroke(p, s, w, combine="add, then clip")),
    (nb06.render_stroke, "a tap (a stroke of one point) leaves no ink", lambda p, s, w: stroke(p, s, w, taps=False)),
    (nb06.render_stroke, "the last segment is missing", lambda p, s, w: stroke(p, s, w, last=False)),
    (nb06.render_stroke, "NaN where the pen paused", lambda p, s, w: stroke(p, s, w, guard=False)),
]



def why_map(model, stats, x28, c, r, slip=None):
    """A learner's gradient x input: layer by layer, without npnet's helpers, with one slip switched on by name."""
    mean, std = float(stats[0]), float(stats[1])
    x = np.asarray(x28, np.float32).reshape(1, 784)
    X = x if slip == "unnormalised" else (x - mean) / std
    modes = [layer.training for layer in model]
    for layer in model:
        layer.training = layer.training if slip in ("training mode", "training mode, twice") else False
    for _ in range(2 if slip == "training mode, twice" else 1):      # the second pass draws new dropout masks
        logits = X
        for layer in model:
            logits = layer.forward(logits)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    g = np.zeros_like(logits)
    if slip == "probability":                                        # d p_c / d z
        g = -probs[0, c] * probs
        g[0, c] += probs[0, c]
    elif slip == "loss":                                             # d(-log p_c) / d z
        g = probs.copy()
        g[0, c] -= 1
    else:
        g[0, c] = -1.0 if slip == "reversed" else 1.0
        if slip != "z_c alone":
            g[0, r] = 1.0 if slip == "reversed" else -1.0
    for layer in reversed(model):
        g = layer.backward(g)
    for layer, mode in zip(model, modes):
        layer.training = mode
    if slip == "force training":                                     # "puts the mode back" to training, always
        for layer in model:
            layer.training = True
    if slip == "weights to float64":
        for layer in model:
            for k in layer.params:
                layer.params[k] = layer.params[k].astype(np.float64)
    if slip == "dropout off for good":
        for layer in model:
            if hasattr(layer, "p"):
                layer.p = 0.0
    if slip not in ("no std", "unnormalised", "times std"):
        g = g / std
    if slip == "std twice":
        g = g / std
    if slip == "times std":
        g = g * std
    if slip == "times normalised":
        return X.reshape(28, 28) * g.reshape(28, 28)
    if slip == "normalised both":                                    # x_norm * d/dx_norm, no std anywhere
        return X.reshape(28, 28) * (g * std).reshape(28, 28)
    if slip == "abs":
        return np.abs(x28 * g.reshape(28, 28))
    if slip == "nan":
        return x28 * g.reshape(28, 28) * (x28 / x28)
    if slip == "(1, 784)":
        return x * g
    if slip == "(784,)":
        return (x * g).ravel()
    g = g.reshape(28, 28)
    return g if slip == "gradient alone" else x28 * g


def _why_map(slip):
    return lambda *args: why_map(*args, slip=slip)


NB06 += [
    (nb06.why_map, "that is the gradient alone", _why_map("gradient alone")),
    (nb06.why_map, "your map is std times the answer", _why_map("no std")),
    (nb06.why_map, "from z_c alone", _why_map("z_c alone")),
    (nb06.why_map, "the signs are reversed", _why_map("reversed")),
    (nb06.why_map, "the gradient of the softmax probability", _why_map("probability")),
    (nb06.why_map, "the gradient of the loss", _why_map("loss")),
    (nb06.why_map, "the pixels went in unnormalised", _why_map("unnormalised")),
    (nb06.why_map, "the map changes from call to call", _why_map("training mode")),
    (nb06.why_map, "the map has shape (1, 784)", _why_map("(1, 784)")),
    (nb06.why_map, "the map has shape (784,)", _why_map("(784,)")),
    (nb06.why_map, "you divided by std twice", _why_map("std twice")),
    (nb06.why_map, "you multiplied by std", _why_map("times std")),
    (nb06.why_map, "you multiplied by the normalised input", _why_map("times normalised")),
    (nb06.why_map, "that is the absolute value", _why_map("abs")),
    (nb06.why_map, "you multiplied the normalised input by the gradient with respect to it", _why_map("normalised both")),
]

CASES = NB02 + NB04 + NB06


def entry(ex, phrase):
    """The one message of ex's catalogue that begins with phrase, or else the one that contains it."""
    messages = [m for m, _ in ex.mistakes]
    found = [m for m in messages if m.startswith(phrase)] or [m for m in messages if phrase in m]
    assert len(found) == 1, f"{phrase!r} should name exactly one of {ex.name}'s mistakes, not {len(found)}"
    return found[0]


@pytest.mark.parametrize("ex, phrase, wrong", CASES, ids=[f"{ex.name}: {phrase}" for ex, phrase, _ in CASES])
def test_a_mistake_written_independently_gets_its_own_message(ex, phrase, wrong):
    assert ex.diagnose(wrong) == ("mistake", f"✗ {entry(ex, phrase)}")


@pytest.mark.parametrize("ex", sorted({ex for ex, _, _ in CASES}, key=lambda ex: ex.name), ids=lambda ex: ex.name)
def test_every_catalogued_mistake_of_these_notebooks_has_an_independent_case(ex):
    covered = {entry(ex, phrase) for e, phrase, _ in CASES if e is ex}
    assert [m for m, _ in ex.mistakes if m not in covered] == []


def test_the_learners_versions_here_are_right_when_no_slip_is_switched_on():
    """The helpers above are correct answers before a slip is added: otherwise a case could match by accident."""
    assert nb02.adam_step.diagnose(_adam(None))[0] == "pass"
    assert nb04.centre_of_mass.diagnose(com)[0] == "pass"
    assert nb04.shift_to_centre.diagnose(lambda x: shifted(x, *whole_shift(x)))[0] == "pass"
    assert nb06.segment_distance.diagnose(distance)[0] == "pass"
    assert nb06.render_stroke.diagnose(stroke)[0] == "pass"
    assert nb06.why_map.diagnose(why_map)[0] == "pass"


# -- the why map: what the catalogue alone cannot show ---------------------------------------------------------


def test_why_map_is_checked_against_inside_why_on_real_models_with_dropout():
    """The reference is npnet.inside.why's map wherever c and r are its answer and runner-up; the cases include the
    CNN, in training mode, whose dropout a missing eval mode would switch on; and another pair of digits."""
    from npnet import inside as I

    cases = nb06.why_map.cases(np.random.default_rng(nb06.why_map.seed))
    assert any(any(type(layer).__name__ == "Dropout" and layer.training for layer in m) for m, *_ in cases)
    top_two = 0
    for model, stats, x28, c, r in cases:
        answer = I.why(model, stats, x28)
        if (c, r) == (answer["digit"], answer["runner_up"]):
            top_two += 1
            assert np.array_equal(nb06.why_map.reference(model, stats, x28, c, r), answer["attribution"])
    assert 0 < top_two < len(cases)                  # some cases ask about another pair: c and r are given, not found


def test_why_map_solution_passes_and_a_stub_is_not_done_yet(capsys):
    nb06.why_map.check(nb06.why_map_solution)
    assert capsys.readouterr().out.startswith("✓ why_map")

    def stub(model, stats, x28, c, r):
        raise NotImplementedError  # TODO: about 6 lines

    nb06.why_map.check(stub)
    assert capsys.readouterr().out.startswith("· not done yet")


def test_why_maps_hint_nudges_and_leaves_the_code_to_solution():
    hint = nb06.why_map.hint_text
    assert "data.normalize" in hint and "eval_mode" in hint and "std" not in hint   # the questions, not the answers
    assert not any(code in hint for code in ("M.forward(", "zeros_like", "stats[1]", "x28", "+1", "-1"))


def test_why_map_with_dropout_left_on_is_named_however_the_masks_fall():
    """Two forward passes in training mode draw other masks than the catalogue's one: the map changes between calls,
    and the message names dropout first, and also noise a learner might have added."""
    assert nb06.why_map.diagnose(_why_map("training mode, twice")) == ("mistake", f"✗ {nb06._RANDOM}")
    assert "I.eval_mode(model)" in nb06._RANDOM and "noise" in nb06._RANDOM

    noise = np.random.default_rng(0)

    def smoothgrad(model, stats, x28, c, r):   # in eval mode, but with noise of its own on the input
        return why_map(model, stats, x28 + np.float32(0.01) * noise.standard_normal(x28.shape, np.float32), c, r)
    assert nb06.why_map.diagnose(smoothgrad) == ("mistake", f"✗ {nb06._RANDOM}")


@pytest.mark.parametrize("k", [2.0, 1 / 255, -0.5, 0.31])
def test_why_map_off_by_a_constant_factor_is_told_the_factor(k):
    verdict, message = nb06.why_map.diagnose(lambda *args: k * why_map(*args))
    assert verdict == "mistake" and message.startswith(f"✗ your map is {k:.4g} times the answer"), message


def test_why_map_a_factor_of_one_or_of_zero_is_not_called_a_factor():
    assert nb06.why_map.diagnose(lambda *args: 1.00001 * why_map(*args))[0] == "pass"
    verdict, message = nb06.why_map.diagnose(lambda *args: 0 * why_map(*args))
    assert verdict == "wrong" and "times the answer" not in message, message


def test_why_map_in_float64_or_with_npnet_inside_is_right_and_ignoring_c_and_r_is_not():
    from npnet import inside as I

    def in_float64(model, stats, x28, c, r):
        return why_map(model, (np.float64(stats[0]), np.float64(stats[1])), x28.astype(np.float64), c, r)

    assert nb06.why_map.diagnose(in_float64)[0] == "pass"
    for shortcut in (lambda m, st, x, c, r: x * I.gap_gradient(m, st, x, c, r)[1],   # the answer itself: refused
                     lambda m, st, x, c, r: I.why(m, st, x)["attribution"]):
        verdict, message = nb06.why_map.diagnose(shortcut)
        assert verdict == "mistake" and "calls npnet.inside's gap_gradient or why" in message, message
    assert I.gap_gradient is nb06._gap_gradient and I.why.__name__ == "why"            # and put back afterwards

    def own_pair(model, stats, x28, c, r):            # ignores the c and r it is given: finds its own top two
        from npnet import data, model as M
        probs = M.predict_proba(model, data.normalize(x28[None], stats))[0]
        top, second = np.argsort(-probs, kind="stable")[:2]
        return why_map(model, stats, x28, int(top), int(second))

    verdict, message = nb06.why_map.diagnose(own_pair)
    assert verdict == "wrong" and "largest difference" in message, message
    assert "on inputs a model (Dense" in message or "on inputs a model (Conv2D" in message, message   # not reprs


@pytest.mark.parametrize("slip, phrase", [("force training", "changed the model `model`"),
                                          ("weights to float64", "changed the model `model`"),
                                          ("dropout off for good", "changed the model `model`"),
                                          ("nan", "contains NaN")])
def test_why_map_answers_that_change_the_model_or_give_nan_are_named(slip, phrase):
    # a model left in training mode, in float64 or with its dropout off changes the caller's model; a NaN is not dropout
    verdict, message = nb06.why_map.diagnose(_why_map(slip))
    assert verdict == "wrong" and phrase in message and "dropout drops" not in message, message
