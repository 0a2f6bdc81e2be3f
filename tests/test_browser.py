"""End to end: Voila serves the drawing app, Debian's Chromium draws digits with the mouse, the page predicts and collects them."""

import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from browser_util import (ROOT, browser, canvas_ink, checked_strokes, draw, free_port, ink_iou, look_inside,
                          readable_seed, screenshot_path, server, wait_painted, wait_read)
from npnet import drawings as D
from npnet.recipes import load_or_train

APP = ROOT / "app" / "draw_a_digit.ipynb"
DIGITS = [2, 7, 0, 4]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    """A Voila server for the app on a free loopback port, saving drawings in tmp: -> (url, drawings file)."""
    load_or_train("mlp", progress=False)          # the page must not have to train first
    tmp = tmp_path_factory.mktemp("voila")
    port, drawings = free_port(), tmp / "drawings.jsonl"
    cmd = [str(Path(sys.executable).parent / "voila"), str(APP), "--no-browser", f"--port={port}",
           "--Voila.ip=127.0.0.1", "--Voila.port_retries=0"]
    env = {D.ENV: str(drawings), "NPNET_INSIDE_CACHE": str(tmp)}   # the inside panel's cached features: in tmp
    with server(cmd, f"http://127.0.0.1:{port}/voila/static/", tmp / "voila.log", env=env):
        yield f"http://127.0.0.1:{port}/", drawings


@pytest.fixture
def page(voila, tmp_path):
    """A fresh Chromium profile with the app open and ready to draw on; a screenshot is kept if the test fails."""
    with browser(tmp_path) as page:
        t0 = time.monotonic()
        page.goto(voila[0])
        page.wait_for_selector(".npnet-status:has-text('draw a digit')")
        wait_painted(page, page.locator(".npnet-sketchpad canvas").first)
        print(f"page open until the canvas is ready: {time.monotonic() - t0:.1f} s")
        yield page


def test_drawn_digits_are_predicted_in_the_browser_and_clear_resets(page, tmp_path):
    canvas = page.locator(".npnet-sketchpad canvas").first
    for i, digit in enumerate(DIGITS):
        strokes, headless = checked_strokes(digit, readable_seed(digit))
        draw(page, canvas, strokes)
        wait_read(page, digit, strokes)
        # The warnings the page shows are those the headless pad finds for the same strokes (whose diagnostics
        # readable_seed keeps clear of every threshold): "✓" exactly when there are none.
        shown = page.inner_text(".npnet-warnings")
        expected = headless.report["warnings"]
        assert ("✓ within MNIST's range" in shown) == (not expected), (shown, expected)
        assert shown.count("⚠") == len(expected), (shown, expected)
        page.get_by_role("button", name="Clear").click()
        page.wait_for_selector(".npnet-status:has-text('draw a digit')")
        assert page.locator(".npnet-pred").count() == 0


def test_the_inside_panel_follows_the_drawing_and_changes_its_mind(page, tmp_path):
    """Issue 21: the panel turned on after a digit is drawn shows its images, they follow a second digit, and
    "change its mind" makes the MLP answer the digit asked for."""
    page.set_viewport_size({"width": 1100, "height": 1400})   # the whole pad and panel in view, for the screenshot
    canvas = page.locator(".npnet-sketchpad canvas").first
    answer, panel = look_inside(page, page, canvas, 3, 7, target=2)
    note = panel.locator(".npnet-inside-change").inner_text()
    print(f"change its mind: {note}")
    assert answer == 2, note                                # the headless tests bound its size
    page.locator(".npnet-sketchpad").screenshot(path=str(screenshot_path("06_sketchpad.png", tmp_path)))


def test_naive_mode_shows_the_warnings_the_headless_pad_finds(page):
    strokes, _ = checked_strokes(3, readable_seed(3))
    small = [np.asarray(s) * 0.4 + 15 for s in strokes]    # a small digit in the top-left corner
    page.get_by_role("button", name="naive resize").click()
    draw(page, page.locator(".npnet-sketchpad canvas").first, small)
    page.wait_for_selector(f".npnet-status h3[data-strokes='{len(small)}'][data-pen='up']")
    shown = page.inner_text(".npnet-warnings")
    assert "off centre" in shown and "too small in the frame" in shown and "✓" not in shown, shown


def test_collect_mode_saves_what_chromium_shows(page, voila, tmp_path, record_property):
    page.set_viewport_size({"width": 1000, "height": 960})  # tall enough for the counts under the canvas
    canvas = page.locator(".npnet-sketchpad canvas").first
    page.get_by_role("button", name="collect").click()
    target = int(page.inner_text(".npnet-target"))
    strokes, _ = checked_strokes(target, readable_seed(target))
    draw(page, canvas, strokes)
    wait_read(page, target, strokes)
    shown = canvas_ink(page, canvas)                       # what Chromium painted, (280, 280)
    page_says = {e.get_attribute("data-model"): int(e.inner_text()) for e in page.locator(".npnet-pred").all()}
    page.screenshot(path=str(screenshot_path("06_collect_mode.png", tmp_path)))
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector(f".npnet-message:has-text('saved your {target}')")
    page.wait_for_selector(f".npnet-count[data-digit='{target}']:text-is('1')")
    assert int(page.inner_text(".npnet-target")) in range(10)

    records = [json.loads(line) for line in voila[1].read_text().splitlines()]
    assert len(records) == 1
    record = records[0]
    assert record["label"] == target and record["device"] == "mouse" and record["canvas"] == [280, 280]
    assert len(record["strokes"]) == len(strokes) and record["widths"] == [18.0] * len(strokes)
    # the points recorded are where the mouse went, to within Chromium's rounding of the cursor position
    sent = np.concatenate([np.asarray(s)[::3] if len(s) > 6 else np.asarray(s) for s in strokes])
    got = np.concatenate([np.asarray(s) for s in record["strokes"]])
    offset = np.abs(got - sent).max()
    print(f"recorded points vs the cursor positions sent: at most {offset:.2f} px apart")
    assert len(got) == len(sent) and offset <= 1.0, offset

    # Issue 12: the NumPy render of the saved strokes against Chromium's own pixels for them.
    rendered = D.validate(record).image()
    iou = ink_iou(shown, rendered)
    mean_abs = float(np.abs(shown - rendered).mean())
    record_property("canvas_vs_numpy_iou", iou)
    print(f"Chromium's canvas vs Sketchpad.image(): IoU of inked pixels {iou:.4f}, mean |difference| {mean_abs:.4f}")
    assert iou >= 0.95, iou

    # Issue 14: a drawing saved in the browser replays to the same prediction in a notebook's pad.
    from npnet.sketchpad import Sketchpad, load_models

    pad = Sketchpad(load_models())
    pad.replay(D.validate(record))
    assert {name: digit for name, (digit, _) in pad.predictions.items()} == page_says, (pad.predictions, page_says)
