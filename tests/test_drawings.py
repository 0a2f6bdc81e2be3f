"""The learner's drawings without a browser: collect mode through the pad's handlers, the JSONL file, replay, evaluate."""

import errno
import json
import re
import warnings
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from npnet import drawings as D
from npnet import model as M
from npnet import preprocess as P
from npnet import strokes as S
from npnet.data import normalize
from npnet.recipes import load_or_train
from npnet.sketchpad import BLAS, Sketchpad


@pytest.fixture(scope="module")
def models():
    return {"MLP": load_or_train("mlp", progress=False)}


@pytest.fixture
def path(tmp_path, monkeypatch):
    """A drawings file in tmp, also the default, so that nothing touches data/drawings/."""
    p = tmp_path / "drawings" / "drawings.jsonl"
    monkeypatch.setenv(D.ENV, str(p))
    return p


@pytest.fixture
def pad(models, path):
    return Sketchpad(models, throttle=1e9, collect=True, seed=0)


def mouse(pad, strokes):
    """Each stroke through ipycanvas's own event entry point, as the browser sends them."""
    for stroke in strokes:
        event = lambda name, x, y: pad.canvas._handle_frontend_event(None, {"event": name, "x": x, "y": y}, [])
        event("mouse_down", *stroke[0])
        for x, y in stroke[1:]:
            event("mouse_move", x, y)
        event("mouse_up", *stroke[-1])


def draw_prompted(pad, seed=0):
    """Draw the digit the pad asks for, with generated strokes; returns the strokes' pen width."""
    strokes, width = S.digit_strokes(pad.target, np.random.default_rng(seed))
    pad.pen.value = int(round(width))
    mouse(pad, strokes)
    return pad.pen.value


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---- collect mode, driven through the pad's widgets ----

def test_collect_mode_prompts_in_shuffled_rounds_and_skip_saves_nothing(pad, path):
    assert pad.collect_box.layout.display == "flex"
    prompts = []
    for _ in range(30):
        prompts.append(pad.target)
        assert f"draw a <span class='npnet-target'>{pad.target}</span>" in pad.prompt.value
        pad.skip_button.click()
    for k in range(3):                                  # each round of ten holds every digit once
        assert sorted(prompts[10 * k:10 * k + 10]) == list(range(10)), prompts
    assert prompts[:10] != prompts[10:20]               # and the rounds are shuffled
    assert not path.exists()


def test_predict_mode_hides_the_collect_controls(models, path):
    pad = Sketchpad(models, throttle=1e9)
    assert pad.collect_box.layout.display == "none" and pad.target is None
    assert pad.save() is None and "switch the mode to collect" in pad.message.value and not path.exists()
    pad.mode.value = "collect"
    assert pad.collect_box.layout.display == "flex" and pad.target in range(10)


def test_save_stores_the_prompted_label_exactly_as_drawn(pad, path):
    before = datetime.now(timezone.utc)
    saved = []
    for seed in range(3):
        target = pad.target
        width = draw_prompted(pad, seed)
        strokes, image = [list(s) for s in pad.strokes], pad.image()
        pad.save_button.click()
        saved.append((target, width, strokes, image))
        assert pad.strokes == [] and "draw a digit" in pad.status.value           # cleared for the next one
        assert f"saved your {target}" in pad.message.value
    records = lines(path)
    assert len(records) == 3
    for record, (target, width, strokes, image) in zip(records, saved):
        assert record["label"] == target and record["canvas"] == [280, 280] and record["device"] == "mouse"
        assert record["widths"] == [width] * len(strokes) and record["generated"] is False
        assert [[tuple(p) for p in s] for s in record["strokes"]] == strokes        # every point, unrounded
        assert before - timedelta(seconds=1) <= datetime.fromisoformat(record["time"]) <= datetime.now(timezone.utc)
    expected = np.bincount([t for t, *_ in saved], minlength=10)
    shown = [int(x) for x in re.findall(r"data-digit='\d'>(\d+)<", pad.counts.value)]
    assert shown == expected.tolist()
    again = Sketchpad(pad.models, collect=True)          # a new pad counts what the file holds
    assert again.saved.tolist() == expected.tolist()


def test_save_refuses_a_blank_canvas_or_a_dot_and_keeps_the_dot(pad, path):
    target = pad.target
    pad.save_button.click()
    assert "not saved" in pad.message.value and not path.exists() and pad.target == target
    mouse(pad, [[(140, 140)]])
    pad.save_button.click()
    assert "not saved" in pad.message.value and len(pad.strokes) == 1 and not path.exists()


def test_touch_input_is_recorded_as_touch(pad, path):
    strokes, _ = S.digit_strokes(pad.target, np.random.default_rng(1))
    for stroke in strokes:
        event = lambda name, pts: pad.canvas._handle_frontend_event(
            None, {"event": name, "touches": [{"x": x, "y": y} for x, y in pts]}, [])
        event("touch_start", [stroke[0]])
        for point in stroke[1:]:
            event("touch_move", [point])
        event("touch_end", [])
    assert pad.device.value == "touch"
    pad.save()
    mouse(pad, S.digit_strokes(pad.target, np.random.default_rng(2))[0])
    pad.device.value = "mouse" if pad.device.value == "touch" else pad.device.value
    pad.save()
    assert [r["device"] for r in lines(path)] == ["touch", "mouse"]


def test_a_full_disk_keeps_the_drawing_on_the_pad(pad, path, monkeypatch):
    draw_prompted(pad)
    pad.save()                                           # one good drawing first
    before = path.read_bytes()
    target = pad.target
    draw_prompted(pad, seed=5)
    strokes = [list(s) for s in pad.strokes]

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(D.os, "write", full)
    assert pad.save() is None
    assert "not saved" in pad.message.value and "No space left" in pad.message.value
    assert pad.strokes == strokes and pad.target == target and pad.saved.sum() == 1   # nothing is lost
    assert path.read_bytes() == before


# ---- the file: round trip, damage, interrupted writes ----

def test_a_saved_drawing_replays_to_the_same_tensor_and_prediction(pad, path, models):
    draw_prompted(pad, seed=3)
    live_image, live_x28, live_pred = pad.image(), pad.x28.copy(), dict(pad.predictions)
    pad.pipeline.value = "naive resize"
    live_naive = pad.x28.copy()
    pad.save()
    (drawing,) = D.load_drawings()
    assert drawing.line == 1
    assert np.array_equal(drawing.image(), live_image)                     # bit for bit
    with BLAS.limit(limits=1, user_api="blas"):   # as the pad computes: some OpenBLAS kernels round differently on 2 threads
        assert np.array_equal(P.mnist_style(drawing.image()), live_x28)
        assert np.array_equal(D.tensors([drawing], "naive")[0][0], live_naive)
    replayed = Sketchpad(models, throttle=1e9)
    replayed.replay(drawing)
    assert np.array_equal(replayed.x28, live_x28) and replayed.predictions == live_pred


def test_every_field_round_trips(path):
    originals = D.generated_drawings(12, np.random.default_rng(0))
    originals[3].device, originals[3].generated = "pen", False
    for d in originals:
        D.append_drawing(d)
    loaded = D.load_drawings(path)
    assert [d.line for d in loaded] == list(range(1, 13))
    for a, b in zip(originals, loaded):
        assert (a.label, a.widths, a.canvas, a.device, a.time, a.generated) == \
               (b.label, b.widths, b.canvas, b.device, b.time, b.generated)
        assert len(a.strokes) == len(b.strokes) and all(np.array_equal(s, t) for s, t in zip(a.strokes, b.strokes))
        assert np.array_equal(a.image(), b.image())


def test_a_damaged_line_is_reported_by_number_and_the_rest_are_kept(path):
    good = D.generated_drawings(3, np.random.default_rng(1))
    path.parent.mkdir(parents=True)
    bad_label = json.loads(good[0].to_json()) | {"label": 12}
    path.write_text(good[0].to_json() + "\n" + '{"label": 3, "strokes": [[[1, 2' + "\n"
                    + good[1].to_json() + "\n" + json.dumps(bad_label) + "\n\n" + good[2].to_json() + "\n")
    drawings, problems = D.read_drawings(path)
    assert [d.label for d in drawings] == [d.label for d in good] and [d.line for d in drawings] == [1, 3, 6]
    assert [n for n, _ in problems] == [2, 4]
    assert "not valid JSON" in problems[0][1] and "label must be a digit 0-9, got 12" in problems[1][1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(D.load_drawings(path)) == 3
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "line 2: skipped, not valid JSON" in messages[0] and "line 4" in messages[1]
    assert all(m.endswith("the other 3 drawing(s) are loaded") for m in messages)


def test_a_save_cut_short_by_a_crash_loses_only_that_drawing(path):
    first = D.generated_drawings(3, np.random.default_rng(2))
    for d in first[:2]:
        D.append_drawing(d)
    half = first[2].to_json().encode()[:200]             # the process died mid-write: no newline
    with open(path, "ab") as f:
        f.write(half)
    before = path.read_bytes()
    drawings, problems = D.read_drawings(path)
    assert len(drawings) == 2 and [n for n, _ in problems] == [3]
    D.append_drawing(first[2])                           # the next save starts a line of its own
    assert path.read_bytes().startswith(before)          # earlier bytes are never rewritten
    drawings, problems = D.read_drawings(path)
    assert [d.line for d in drawings] == [1, 2, 4] and [n for n, _ in problems] == [3]
    assert np.array_equal(drawings[2].image(), first[2].image())


def test_each_save_is_fsynced_after_its_line_is_written(path, monkeypatch):
    first, second = D.generated_drawings(2, np.random.default_rng(4))
    D.append_drawing(first)                              # creates the file (and fsyncs its folder)
    synced, real_fsync = [], D.os.fsync

    def spy(fd):                                         # the file's size when fsync is asked for on the file itself
        st, file = D.os.fstat(fd), path.stat()
        if (st.st_dev, st.st_ino) == (file.st_dev, file.st_ino):
            synced.append(st.st_size)
        real_fsync(fd)

    monkeypatch.setattr(D.os, "fsync", spy)
    D.append_drawing(second)
    assert synced == [path.stat().st_size]               # once, on the file itself, with the new line in it
    assert len(lines(path)) == 2


def test_a_write_that_fails_part_way_is_taken_back(path, monkeypatch):
    first, second = D.generated_drawings(2, np.random.default_rng(3))
    D.append_drawing(first)
    before = path.read_bytes()
    real_write = D.os.write

    def half_then_full(fd, data):                        # the disk fills after 100 bytes
        real_write(fd, data[:100])
        monkeypatch.setattr(D.os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "disk full")))
        return 100
    monkeypatch.setattr(D.os, "write", half_then_full)
    with pytest.raises(OSError, match="could not save the drawing.*disk full.*saved before are unchanged"):
        D.append_drawing(second)
    assert path.read_bytes() == before
    monkeypatch.setattr(D.os, "write", real_write)
    D.append_drawing(second)
    assert [d.line for d in D.load_drawings(path)] == [1, 2]


@pytest.mark.parametrize("change, message", [
    ({"label": 10}, "label must be a digit"),
    ({"label": True}, "label must be a digit"),
    ({"widths": [float("nan")]}, "cannot be written as JSON"),
    ({"widths": [18.0, 18.0]}, "one pen width per stroke"),
    ({"strokes": []}, "non-empty list of strokes"),
    ({"strokes": [[[1.0, "a"]]]}, "cannot be written as JSON: could not convert string to float"),
    ({"strokes": [[[1.0, 2.0, 3.0]]]}, r"must be an \[x, y\] point"),
    ({"canvas": (0, 280)}, "canvas must be"),
    ({"device": "trackball"}, "device must be one of"),
])
def test_a_bad_record_is_refused_before_the_file_is_touched(path, change, message):
    d = D.Drawing([np.array([[10.0, 10.0], [100.0, 200.0]])], [18.0], 7)
    for k, v in change.items():
        setattr(d, k, v)
    with pytest.raises(D.DrawingError, match=message):
        D.append_drawing(d)
    assert not path.exists()


def test_the_default_path_and_its_override(monkeypatch, tmp_path):
    monkeypatch.delenv(D.ENV, raising=False)
    assert D.default_path() == D.ROOT / "data" / "drawings" / "drawings.jsonl"
    monkeypatch.setenv(D.ENV, str(tmp_path / "x.jsonl"))
    assert D.default_path() == tmp_path / "x.jsonl"
    assert D.read_drawings() == ([], [])                 # no file yet: no drawings, no error
    with pytest.raises(D.DrawingError, match="is a directory"):
        D.read_drawings(tmp_path)


def test_a_canvas_that_is_not_square_renders_at_its_own_size():
    stroke = np.array([[20.0, 30.0], [250.0, 150.0]])
    img = D.render_strokes([stroke], [12.0], (300, 180))
    assert img.shape == (180, 300)
    assert np.array_equal(img, S.render([stroke], 300, 12.0)[:180])


# ---- stand-ins, splits, tensors, and the evaluation report ----

def test_generated_stand_ins_are_marked_and_render_like_the_generator(path):
    stand_ins = D.generated_drawings(20, np.random.default_rng(4))
    assert all(d.generated and d.device == "generated" for d in stand_ins)
    assert np.bincount([d.label for d in stand_ins], minlength=10).tolist() == [2] * 10
    rng = np.random.default_rng(4)
    rng.permutation(20)                                  # the labels' order, drawn first
    strokes, width = S.digit_strokes(stand_ins[0].label, rng)
    assert np.array_equal(stand_ins[0].image(), S.render(strokes, 280, round(width)))
    drawings, generated = D.drawings_or_stand_ins(path)
    assert generated and len(drawings) == 100 and all(d.generated for d in drawings)
    for d in D.generated_drawings(30, np.random.default_rng(5)):
        d.generated, d.device = False, "mouse"           # as if a person had drawn them
        D.append_drawing(d)
    drawings, generated = D.drawings_or_stand_ins(path)
    assert not generated and len(drawings) == 30


def test_time_split_and_tensors_leave_out_what_cannot_be_read():
    drawings = D.generated_drawings(10, np.random.default_rng(6))
    early, late = D.time_split(drawings[::-1], 0.7)
    assert early == drawings[:7] and late == drawings[7:]
    dot = D.Drawing([np.array([[140.0, 140.0]])], [10.0], 3)
    X, y, kept = D.tensors(drawings[:2] + [dot], "MNIST-style")
    assert X.shape == (2, 28, 28) and kept.tolist() == [0, 1] and y.tolist() == [d.label for d in drawings[:2]]


def test_evaluate_drawings_on_a_small_generated_file(path, models):
    stand_ins = D.generated_drawings(20, np.random.default_rng(7))
    stand_ins[5].strokes, stand_ins[5].widths = [np.array([[140.0, 140.0]])], [10.0]   # a dot: unreadable
    for d in stand_ins:
        D.append_drawing(d)
    with open(path, "a") as f:
        f.write("{damaged\n")
    report = D.evaluate_drawings(path, models)
    assert f"20 drawing(s) in {path}" in report and "line 21: skipped" in report
    assert "20 of them GENERATED stand-ins" in report
    model, stats = models["MLP"]
    pipelines = {"naive": P.naive, "original app": P.original_app, "MNIST-style": P.mnist_style}
    for name, f in pipelines.items():                    # the expected numbers, computed here independently
        right, unreadable, pairs = 0, 0, {}
        for d in stand_ins:
            img = S.render([d.strokes[0]], 280, d.widths[0])
            for s in d.strokes[1:]:
                img = np.maximum(img, S.render([s], 280, d.widths[0]))
            try:
                pred = int(M.predict(model, normalize(f(img)[None], stats))[0])
            except P.EmptyCanvas:                        # counts as wrong, and is reported apart
                unreadable += 1
                continue
            right += pred == d.label
            if pred != d.label:
                pairs[(d.label, pred)] = pairs.get((d.label, pred), 0) + 1
        (line,) = [l for l in report.splitlines() if l.startswith(f"{'MLP':<10} {name:<13}")]
        assert f"{right / 20:.1%}" in line and f"{right}/20" in line, (line, right)
        assert unreadable == (name != "naive")            # the naive resize reads even a dot
        assert ("1 unreadable (no digit found)" in line) == bool(unreadable), line
        for (t, p), c in pairs.items():
            assert f"{t}→{p} ×{c}" in line, (line, pairs)


def test_load_models_names_every_shipped_model_and_the_app_says_which_is_best():
    from npnet.recipes import model_path
    from npnet.sketchpad import about_models

    models, info = D.load_models(with_info=True)
    present = [name for name, key in D.MODELS if model_path(key).exists()]
    assert list(models) == list(info) == present and "MLP" in models
    for name, i in info.items():
        assert i["test_acc"] == M.load(i["path"])[2].get("test_acc")
    line = about_models(info)
    best = max((n for n in info if n != "tuned MLP"), key=lambda n: info[n]["test_acc"] or 0)
    assert f"<b>{best} (best)</b>" in line and line.count("(best)") == 1
    assert all(i["path"].name in line for i in info.values())
