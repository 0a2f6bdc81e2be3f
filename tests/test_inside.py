"""The inside views without a browser: each on known drawings, the attribution against central differences, the
neighbours against a brute-force search, the counterfactual's flip and size, and the panel's messages."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from npnet import inside as I
from npnet import model as M
from npnet import preprocess as P
from npnet import strokes as S
from npnet.conv import Conv2D
from npnet.data import normalize
from npnet.drawings import load_models

BOUND_L2 = 4.0            # pixel units (a pixel is 0 to 1); measured at most 3.6 on these drawings, all targets
BOUND_SHARE = 0.5         # and less than half the drawing's own L2 norm (8.3 and 9.9 for these two)


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):    # as the pad runs: one image at a time
        yield


@pytest.fixture(scope="module")
def models():
    return load_models()


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    """MNIST's 50,000 training digits, indexed once for every test here; cached features in a temporary folder."""
    return I.TrainingSet(cache_dir=tmp_path_factory.mktemp("inside"))


def drawing(digit, seed=None):
    """A generated drawing of digit, through the pad's MNIST-style pipeline: (28, 28) in [0, 1]."""
    strokes, width = S.digit_strokes(digit, np.random.default_rng(digit if seed is None else seed))
    return P.mnist_style(S.render(strokes, 280, round(width)))


@pytest.fixture(scope="module")
def three():
    return drawing(3)


def test_the_mlp_layers_on_a_known_drawing(models, three):
    model, stats = models["MLP"]
    seen = I.what_layers_see(model, stats, three, top=6)
    assert seen["kind"] == "mlp" and [h.shape for h in seen["hidden"]] == [(256,), (128,)]
    x = normalize(three[None], stats).astype(np.float64)
    W1, b1 = model[0].params["W"], model[0].params["b"]
    h1 = np.maximum(x @ W1 + b1, 0)[0]                                   # by hand
    h2 = np.maximum(h1 @ model[2].params["W"] + model[2].params["b"], 0)
    assert np.allclose(seen["hidden"][0], h1, atol=1e-4) and np.allclose(seen["hidden"][1], h2, atol=1e-4)
    assert list(seen["units"]) == list(np.argsort(-h1)[:6])               # the most active units, strongest first
    assert np.all(np.diff(seen["unit_activations"]) <= 0) and np.isclose(seen["unit_activations"][0], h1.max())
    assert seen["templates"].shape == (6, 28, 28)
    assert np.array_equal(seen["templates"][2], W1[:, seen["units"][2]].reshape(28, 28))
    assert (h1 > 0).sum() > 10 and (h1 == 0).sum() > 10                  # ReLU: some units on, some off


def test_the_cnn_layers_on_a_known_drawing(models, three):
    model, stats = models["CNN"]
    seen = I.what_layers_see(model, stats, three, top=8)
    assert seen["kind"] == "cnn" and seen["maps1"].shape == (24, 24, 32) and seen["maps2"].shape == (8, 8, 8)
    conv1 = next(layer for layer in model if isinstance(layer, Conv2D))
    by_hand = np.maximum(conv1.forward(normalize(three[None], stats).reshape(1, 28, 28, 1))[0], 0)
    assert np.allclose(seen["maps1"], by_hand, atol=1e-5) and seen["maps1"].min() >= 0
    strongest = seen["maps2"].max(axis=(1, 2))
    assert np.all(np.diff(strongest) <= 0) and strongest[0] > 0            # the strongest maps, strongest first
    assert len(set(seen["units2"].tolist())) == 8 and seen["units2"].max() < 64


@pytest.mark.parametrize("name", ["MLP", "CNN"])
def test_the_attribution_matches_central_differences(models, name, three):
    model, stats = models[name]
    model64 = I.float64(model)
    gap = lambda x: (lambda z: z[0, top] - z[0, other])(  # noqa: E731
        M.forward(model64, (x.reshape(1, 784) - float(stats[0])) / float(stats[1])))
    found = I.why(model, stats, three)
    top, other = found["digit"], found["runner_up"]
    assert top == 3 and other != 3 and found["gap"] > 0
    g_gap, gradient = I.gap_gradient(model64, stats, three.astype(np.float64), top, other)
    x = three.astype(np.float64)
    with I.eval_mode(model64):
        assert np.isclose(gap(x), g_gap)
        rng = np.random.default_rng(0)
        inked, blank = np.flatnonzero(x.ravel() > 0.3), np.flatnonzero(x.ravel() == 0)
        checked = 0
        for i in np.concatenate([rng.choice(inked, 20, replace=False), rng.choice(blank, 10, replace=False)]):
            eps, e = 1e-5, np.zeros((28, 28))
            e.flat[i] = eps
            up, here, down = gap(x + e), gap(x), gap(x - e)
            if abs((up - here) - (here - down)) > 1e-7:
                continue   # a kink within eps: a max-pool window of equal values (blank pixels) has no gradient
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - gradient.flat[i]) <= 1e-6 + 1e-4 * abs(numeric), (i, numeric, gradient.flat[i])
            checked += 1
        assert checked >= 20, checked
    assert np.allclose(found["gradient"], gradient, atol=1e-3 * np.abs(gradient).max())   # float32 vs float64
    assert np.array_equal(found["attribution"], three * found["gradient"])   # gradient x input, blank baseline
    assert np.all(found["attribution"][three == 0] == 0)                      # no ink, no push
    assert (found["attribution"] > 0).any() and (found["attribution"] < 0).any()


def brute_force(A, q, k):
    """The k nearest rows of A to q by float64 distances, in chunks: (indices, distances)."""
    d = np.concatenate([np.sqrt(((A[i:i + 5000].astype(np.float64) - q) ** 2).sum(axis=1))
                        for i in range(0, len(A), 5000)])
    order = np.lexsort((np.arange(len(d)), d))[:k]
    return order, d[order]


@pytest.mark.parametrize("name", ["MLP", "CNN"])
def test_the_nearest_neighbours_match_a_brute_force_search(models, name, mnist, tmp_path):
    model, stats = models[name]
    ts = mnist if name == "MLP" else I.TrainingSet(cache_dir=tmp_path, n=3_000)   # the CNN's: 10 s for all 50,000
    X28, y = ts.load()
    F = np.concatenate([I.features(model, normalize(X28[i:i + 5000], stats)) for i in range(0, len(X28), 5000)])
    for x28 in (drawing(3), drawing(7), drawing(1, seed=5)):
        found = I.resembles(model, stats, x28, ts)
        pi, pd = brute_force(X28, x28.ravel().astype(np.float64), 5)
        fi, fd = brute_force(F, I.features(model, normalize(x28[None], stats))[0].astype(np.float64), 5)
        assert np.array_equal(found["pixels"][0], pi) and np.allclose(found["pixels"][2], pd)
        assert np.array_equal(found["features"][0], fi) and np.allclose(found["features"][2], fd, rtol=1e-5)
        assert np.array_equal(found["pixels"][1], y[pi]) and np.array_equal(found["features"][1], y[fi])
    index = I.NearestIndex(X28[:2000], dims=4)                 # a weak bound: many rows measured, same answer
    for q in (X28[2500], drawing(9).ravel()):
        assert np.array_equal(index.search(q, 7)[0], brute_force(X28[:2000], q.astype(np.float64), 7)[0])


def test_the_features_are_cached_atomically_and_read_without_pickles(models, tmp_path):
    model, stats = models["MLP"]
    ts = I.TrainingSet(cache_dir=tmp_path, n=2_000)
    F = ts.features(model, stats)[0]
    assert ts.from_cache == {I.fingerprint(model, stats): False}
    (cached,) = tmp_path.glob("inside-*-2000.npz")
    with np.load(cached, allow_pickle=False) as z:
        assert z["features"].shape == (2_000, 128) and np.array_equal(z["features"], F)
    again = I.TrainingSet(cache_dir=tmp_path, n=2_000)
    assert np.array_equal(again.features(model, stats)[0], F) and list(again.from_cache.values()) == [True]
    cached.write_bytes(b"not a zip file")                                     # damaged: computed again, rewritten
    fresh = I.TrainingSet(cache_dir=tmp_path, n=2_000)
    assert np.allclose(fresh.features(model, stats)[0], F) and list(fresh.from_cache.values()) == [False]
    assert np.load(cached, allow_pickle=False)["features"].shape == (2_000, 128)
    assert not list(tmp_path.glob("*.part"))


def test_the_mlp_neighbours_of_a_three_are_threes(models, three, mnist):
    found = I.resembles(*models["MLP"], three, mnist)
    assert list(found["features"][1]) == [3] * 5 and np.all(np.diff(found["features"][2]) >= 0)
    assert list(found["pixels"][1]).count(3) >= 3 and np.all(np.diff(found["pixels"][2]) >= 0)


@pytest.mark.parametrize("name", ["MLP", "CNN"])
@pytest.mark.parametrize("digit", [3, 7])
def test_the_counterfactual_flips_the_answer_with_a_small_change(models, name, digit):
    model, stats = models[name]
    x28 = drawing(digit)
    assert M.predict(model, normalize(x28[None], stats))[0] == digit
    for target in range(10):
        found = I.change_its_mind(model, stats, x28, target, others=models)
        changed = found["x28"]
        assert M.predict(model, normalize(changed[None], stats))[0] == target == found["answer"], (target, found)
        assert changed.min() >= 0 and changed.max() <= 1 and np.allclose(changed - x28, found["delta"])
        assert found["l2"] == pytest.approx(np.linalg.norm(found["delta"])) and found["l2"] < BOUND_L2, found["l2"]
        assert found["l2"] < BOUND_SHARE * np.linalg.norm(x28), found["l2"]
        assert found["max_abs"] == pytest.approx(np.abs(found["delta"]).max()) and found["max_abs"] <= 1
        assert found["others"].keys() == models.keys() and found["others"][name] == target
        if target == digit:
            assert found["steps"] == 0 and found["l2"] == 0
        else:
            assert 0 < found["steps"] <= I.MAX_STEPS and found["l2"] <= found["steps"] * I.STEP + 1e-4
            # the bisection kept the change minimal along its path: a tenth less no longer flips it
            smaller = x28 + 0.9 * found["delta"]
            assert M.predict(model, normalize(smaller[None], stats))[0] != target


def test_the_counterfactual_says_when_it_fails(models, three):
    model, stats = models["MLP"]
    found = I.change_its_mind(model, stats, three, 8, max_steps=1)        # one step is too few
    assert found["steps"] == 1 and found["answer"] == 3
    assert 0 < found["l2"] <= I.STEP + 1e-6                               # less where clipping at 0 or 1 bites


# ---- the panel, driven through the pad's handlers as a learner would, with no browser ----
def draw_on(pad, digit, seed=None):
    strokes, width = S.digit_strokes(digit, np.random.default_rng(digit if seed is None else seed))
    pad.pen.value = int(round(width))
    for stroke in strokes:
        pad.pen_down(*stroke[0])
        for x, y in stroke[1:]:
            pad.pen_move(x, y)
        pad.pen_up()


@pytest.fixture
def pad(models, tmp_path):
    from npnet.sketchpad import Sketchpad

    small = I.TrainingSet(cache_dir=tmp_path, n=3_000)                # the CNN's features in a second or two
    return Sketchpad({name: models[name] for name in ("MLP", "CNN")}, throttle=1e9, training_set=small)


def test_the_panel_is_off_until_asked_and_says_when_the_canvas_is_blank(pad):
    assert pad.inside.widget.layout.display == "none" and not pad.look.value
    draw_on(pad, 3)
    assert pad.inside.x28 is None                                   # off: nothing computed for it
    pad.clear()
    pad.look.value = True                                           # the toggle updates at once
    assert pad.inside.widget.layout.display == "flex" and pad.inside.views.layout.display == "none"
    assert "draw a digit: the inside views show once the pad reads a digit" in pad.inside.status.value
    pad.pen_down(140, 140)                                          # a tap: a dot too small to read
    pad.pen_up()
    assert "too small to read" in pad.inside.status.value and pad.inside.views.layout.display == "none"
    assert pad.inside.x28 is None and "data-digit=''" in pad.inside.status.value


def test_the_panel_shows_each_view_for_the_drawing_and_the_model_picked(pad):
    pad.look.value = True
    draw_on(pad, 3)
    panel = pad.inside
    assert panel.views.layout.display == "flex" and np.array_equal(panel.x28, pad.x28)
    assert "data-model='MLP' data-digit='3'" in panel.status.value and "computed" in panel.status.value
    images = [*panel.layer_images, panel.why_image, *panel.near_images]
    assert all(im.value[:2] == b"BM" for im in images)
    found = I.resembles(*pad.models["MLP"], pad.x28, panel.training_set)
    for y, d in zip(found["features"][1], found["features"][2]):
        assert f"<b>{y}</b> ({d:.1f})" in panel.near_note.value
    assert "256 and 128 units" in panel.layer_notes.value and "neighbours are unrelated" in panel.layer_notes.value
    assert set(panel.times) == {"what each layer sees", "why this answer", "what it resembles", "draw the views"}
    before = [im.value for im in images]
    draw_on(pad, 7)                                                 # more strokes on top: the views follow
    assert "data-digit='3'" not in panel.status.value and [im.value for im in images] != before
    panel.model.value = "CNN"
    assert "data-model='CNN'" in panel.status.value
    assert "the first conv layer's 32 feature maps" in panel.layer_notes.value


def test_the_change_its_mind_button_flips_the_answer(pad):
    pad.look.value = True
    draw_on(pad, 3)
    panel = pad.inside
    assert panel.change_image.layout.display == "none" and "press the button" in panel.change_note.value
    assert "not the smallest change possible" in panel.change_note.value    # a bisection along one direction only
    panel.target.value = 5
    panel.change_button.click()
    r = panel.result
    assert r["answer"] == 5 and r["l2"] < BOUND_L2
    assert "data-target='5' data-answer='5'" in panel.change_note.value
    assert f"L2 {r['l2']:.2f}" in panel.change_note.value
    assert panel.change_image.value[:2] == b"BM" and panel.change_image.layout.display == "block"
    assert f"CNN {r['others']['CNN']}" in panel.change_note.value
    draw_on(pad, 1, seed=0)                                         # a new drawing: the old change is dropped
    assert panel.result is None and "press the button" in panel.change_note.value
    pad.clear()
    assert panel.change_its_mind() is None                          # nothing drawn: nothing to change
