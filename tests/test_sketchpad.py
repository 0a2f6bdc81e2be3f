"""The sketchpad without a browser: recorded strokes go through its event handlers, and we read what it shows."""

import numpy as np
import pytest

from npnet import preprocess as P
from npnet import strokes as S
from npnet.recipes import load_or_train
from npnet.sketchpad import Sketchpad


@pytest.fixture(scope="module")
def models():
    return {"MLP": load_or_train("mlp", progress=False)}


@pytest.fixture
def pad(models):
    return Sketchpad(models, throttle=1e9)          # no throttled updates mid-stroke: predictions come on pen-up


def mouse(pad, event, x, y):
    pad.canvas._handle_frontend_event(None, {"event": event, "x": x, "y": y}, [])


def draw_with_mouse(pad, strokes):
    for stroke in strokes:
        mouse(pad, "mouse_down", *stroke[0])
        for x, y in stroke[1:]:
            mouse(pad, "mouse_move", x, y)
        mouse(pad, "mouse_up", *stroke[-1])


def test_an_empty_canvas_asks_for_a_digit(pad):
    assert "draw a digit" in pad.status.value and "prediction" not in pad.status.value
    assert pad.predictions == {} and pad.bars.value == "" and pad.diagnostics.value == ""
    mouse(pad, "mouse_move", 100, 100)              # moving without pressing draws nothing
    mouse(pad, "mouse_up", 100, 100)
    assert pad.strokes == [] and "draw a digit" in pad.status.value


@pytest.mark.parametrize("digit", range(10))
def test_recorded_strokes_are_predicted_and_diagnosed(pad, digit):
    strokes, width = S.digit_strokes(digit, np.random.default_rng(100 + digit))
    pad.pen.value = int(round(width))
    draw_with_mouse(pad, strokes)
    assert len(pad.strokes) == len(strokes) and pad.widths == [int(round(width))] * len(strokes)
    assert np.allclose(pad.x28, P.mnist_style(S.render(strokes, 280, int(round(width)))), atol=1e-5)
    shown, prob = pad.predictions["MLP"]
    assert f"<span class='npnet-pred' data-model='MLP'>{shown}</span>" in pad.status.value
    assert f"{prob:.1%}" in pad.bars.value
    assert f"{pad.report['ink']['value']:.2f}" in pad.diagnostics.value
    assert pad.tensor.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert shown == digit, pad.predictions


def test_the_recorded_set_is_read_well(pad):
    right = 0
    for digit in range(10):
        for seed in range(3):
            pad.clear()
            strokes, width = S.digit_strokes(digit, np.random.default_rng(1000 * seed + digit))
            pad.pen.value = int(round(width))
            draw_with_mouse(pad, strokes)
            right += pad.predictions["MLP"][0] == digit
    assert right >= 28, right


def test_undo_and_clear(pad):
    strokes, _ = S.digit_strokes(4, np.random.default_rng(7))
    draw_with_mouse(pad, strokes)
    full = pad.x28.copy()
    draw_with_mouse(pad, [[(20, 20), (60, 250)]])   # a stray line changes the input
    assert len(pad.strokes) == len(strokes) + 1 and not np.allclose(pad.x28, full)
    pad.undo_button.click()
    assert len(pad.strokes) == len(strokes) and np.allclose(pad.x28, full)
    pad.clear_button.click()
    assert pad.strokes == [] and pad.predictions == {} and "draw a digit" in pad.status.value
    pad.undo_button.click()                         # undo on an empty canvas is harmless
    assert pad.strokes == [] and "draw a digit" in pad.status.value


def test_the_toggle_switches_to_the_naive_pipeline_live(pad):
    strokes, width = S.digit_strokes(3, np.random.default_rng(11))
    small = [np.asarray(s) * 0.4 + 10 for s in strokes]   # a small digit drawn in a corner
    draw_with_mouse(pad, small)
    assert np.allclose(pad.x28, P.mnist_style(pad.image()))
    pad.pipeline.value = "naive resize"
    assert np.allclose(pad.x28, P.naive(pad.image()))
    assert any("off centre" in w for w in pad.report["warnings"])
    assert "⚠ centre_offset" in pad.diagnostics.value
    pad.pipeline.value = "MNIST-style"
    assert not any("off centre" in w for w in pad.report["warnings"])


def test_touch_draws_like_the_mouse(models):
    strokes, width = S.digit_strokes(7, np.random.default_rng(3))
    by_mouse, by_touch = Sketchpad(models, throttle=1e9), Sketchpad(models, throttle=1e9)
    draw_with_mouse(by_mouse, strokes)
    for stroke in strokes:
        event = lambda name, pts: by_touch.canvas._handle_frontend_event(
            None, {"event": name, "touches": [{"x": x, "y": y} for x, y in pts]}, [])
        event("touch_start", [stroke[0]])
        for point in stroke[1:]:
            event("touch_move", [point])
        event("touch_end", [])                      # the browser sends the remaining touches: none
    assert by_touch.strokes == by_mouse.strokes
    assert by_touch.predictions == by_mouse.predictions


def test_a_tap_or_a_speck_is_not_a_digit(pad):
    mouse(pad, "mouse_down", 140, 140)
    mouse(pad, "mouse_up", 140, 140)
    assert len(pad.strokes) == 1 and pad.predictions == {}
    assert "draw a digit" in pad.status.value and "too small" in pad.status.value


def test_throttled_updates_while_drawing(models):
    pad = Sketchpad(models, throttle=0.0)           # every move may update
    strokes, _ = S.digit_strokes(1, np.random.default_rng(5))
    mouse(pad, "mouse_down", *strokes[0][0])
    for x, y in strokes[0][1:]:
        mouse(pad, "mouse_move", x, y)
    assert pad.predictions, "no live prediction while the pen was still down"
    lazy = Sketchpad(models, throttle=1e9)
    mouse(lazy, "mouse_down", *strokes[0][0])
    for x, y in strokes[0][1:]:
        mouse(lazy, "mouse_move", x, y)
    assert lazy.predictions == {}                   # throttled: only pen-up predicts
    mouse(lazy, "mouse_up", *strokes[0][-1])
    assert lazy.predictions


def test_a_late_client_gets_the_switch_to_this_canvas_and_the_drawing_again(pad, monkeypatch):
    """ipycanvas (issue 322) sends 'switch to this canvas' once per kernel; a client that connects later needs it again."""
    from ipycanvas.canvas import _CANVAS_MANAGER, COMMANDS

    from ipywidgets import widget_serialization

    draw_with_mouse(pad, S.digit_strokes(7, np.random.default_rng(0))[0])
    sent = []
    monkeypatch.setattr(_CANVAS_MANAGER, "_send_custom", lambda command, buffers=[]: sent.append(command))
    _CANVAS_MANAGER._current_canvas = pad.canvas     # the first client was told already, as a live kernel would be
    pad.canvas._handle_frontend_event(None, {"event": "client_ready"}, [])
    assert len(sent) == 1                            # one held batch of commands ...
    batch = sent[0]
    switch = [COMMANDS["switchCanvas"], [widget_serialization["to_json"](pad.canvas, None)]]
    assert batch[0] == switch                        # ... that starts by naming this canvas again
    codes = [command[0] for command in batch[1:]]
    assert codes.count(COMMANDS["strokeLines"]) == len(pad.strokes) > 0   # and redraws every stroke
    assert _CANVAS_MANAGER._caching is False


def test_an_error_while_drawing_does_not_leave_the_canvas_on_hold(pad):
    from ipycanvas.canvas import _CANVAS_MANAGER

    from traitlets import TraitError

    pad.strokes, pad.widths = [[(1.0, 2.0)]], ["not a width"]
    with pytest.raises(TraitError, match="'line_width' trait of a Canvas instance expected a float"):
        pad.redraw()
    assert _CANVAS_MANAGER._caching is False


def test_the_controls_under_the_canvas_have_fixed_widths_that_fit_it(pad):
    px = lambda w: int(w.layout.width.removesuffix("px"))
    row = [pad.pen, pad.undo_button, pad.clear_button]
    assert sum(px(w) + 4 for w in row) <= pad.size          # ipywidgets adds a 2 px margin on each side
    for w in row + [pad.save_button, pad.skip_button]:
        assert w.layout.flex == "0 0 auto" and w.layout.min_width == w.layout.max_width == w.layout.width
    left = pad.widget.children[0].children[0]                 # the pad's row (the inside panel goes below it)
    assert left.layout.width == left.layout.min_width == f"{pad.size + 8}px"   # the panel beside it cannot squeeze it
