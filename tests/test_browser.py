"""End to end: Voila serves the drawing app, Debian's Chromium draws digits with the mouse, the page predicts them."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from npnet import strokes as S
from npnet.recipes import load_or_train
from npnet.sketchpad import Sketchpad

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app" / "draw_a_digit.ipynb"
SCREENSHOT = ROOT / "figures" / "06_sketchpad.png"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"]
DIGITS = [(2, 3), (7, 1), (0, 2), (4, 5)]  # (digit, seed of its drawn strokes)

pytestmark = pytest.mark.browser


def chromium():
    """Debian's chromium; in CI its absence is a failure, elsewhere a skip that says how to enable the test."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run should have run `apt-get install -y chromium`")
        pytest.skip("browser test needs Debian's chromium: run `apt-get install -y chromium` to enable it")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def voila(tmp_path):
    """A Voila server for the app on a free loopback port; stopped at teardown whatever happened."""
    load_or_train("mlp", progress=False)          # the page must not have to train first
    port = free_port()
    log = open(tmp_path / "voila.log", "wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "voila"), str(APP), "--no-browser",
                             f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"voila exited during start-up:\n{(tmp_path / 'voila.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/static/", timeout=2)
                break
            except urllib.error.HTTPError:
                break                                  # a quick 404: the server is up
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("voila did not answer within 60 s")
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture
def page(voila, tmp_path):
    """A fresh Chromium profile with the app open and ready to draw on; a screenshot is kept if the test fails."""
    from playwright.sync_api import sync_playwright

    path = chromium()
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=path,
                                                       headless=True, args=CHROMIUM_FLAGS,
                                                       viewport={"width": 1000, "height": 860})
        try:
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(voila)
            page.wait_for_selector(".npnet-status:has-text('draw a digit')")
            page.wait_for_function("""() => {                   // the canvas has its dark background painted
                const c = document.querySelector('canvas');
                return c && c.width > 0 && c.getContext('2d').getImageData(5, 5, 1, 1).data[3] === 255; }""")
            yield page
        except BaseException:
            if "page" in locals():
                page.screenshot(path=str(tmp_path / "failure.png"))
            raise
        finally:
            context.close()


def draw(page, strokes):
    """Drag the mouse along each stroke, in canvas pixel coordinates."""
    box = page.locator("canvas").first.bounding_box()
    for stroke in strokes:
        points = stroke[::3] if len(stroke) > 6 else stroke
        page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.up()


def stroke_set(digit, seed):
    """A drawn digit's strokes, checked first without a browser so a miss below is the browser path's fault."""
    strokes, _ = S.digit_strokes(digit, np.random.default_rng(seed))
    pad = Sketchpad({"MLP": load_or_train("mlp", progress=False)})      # the page's default pen width
    for stroke in strokes:
        points = stroke[::3] if len(stroke) > 6 else stroke
        pad.pen_down(*points[0])
        for x, y in points[1:]:
            pad.pen_move(x, y)
        pad.pen_up()
    assert pad.predictions["MLP"][0] == digit, (digit, seed, pad.predictions)
    return strokes


def test_drawn_digits_are_predicted_in_the_browser_and_clear_resets(page):
    for i, (digit, seed) in enumerate(DIGITS):
        strokes = stroke_set(digit, seed)
        draw(page, strokes)
        page.wait_for_selector(f".npnet-pred:text-is('{digit}')")
        assert "⚠" in page.inner_text(".npnet-warnings") or "✓" in page.inner_text(".npnet-warnings")
        if i == 1:
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        page.get_by_role("button", name="Clear").click()
        page.wait_for_selector(".npnet-status:has-text('draw a digit')")
        assert page.locator(".npnet-pred").count() == 0
