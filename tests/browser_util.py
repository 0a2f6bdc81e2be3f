"""What the browser tests share: Debian's Chromium, a server on a free port stopped by PID, drawing, and canvas pixels."""

import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from npnet import strokes as S
from npnet.recipes import load_or_train
from npnet.sketchpad import BACKGROUND, Sketchpad

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"]
TIMEOUT_MS = 60_000   # the default wait: the machine may be busy


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


def screenshot_path(name, tmp_path):
    """figures/<name> when asked (NPNET_SCREENSHOTS=1, `make screenshots`), else a temporary file: a test run
    leaves the work tree clean."""
    if os.environ.get("NPNET_SCREENSHOTS") == "1":
        (ROOT / "figures").mkdir(exist_ok=True)
        return ROOT / "figures" / name
    return Path(tmp_path) / name


def lab_api(base, token, method, path):
    """Call JupyterLab's REST API at base with the token, and an XSRF cookie and header, which a DELETE needs even so."""
    xsrf = secrets.token_hex(16)
    request = urllib.request.Request(f"{base}{path}", method=method, headers={
        "Authorization": f"token {token}", "X-XSRFToken": xsrf, "Cookie": f"_xsrf={xsrf}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


def _descendants(pid):
    """The PIDs of every process below pid, read from /proc (a kernel a server started, say)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@contextmanager
def server(cmd, ready_url, log_path, env=None, cwd=ROOT, timeout=60):
    """Run cmd in its own session until ready_url answers (any HTTP status); stop it, and whatever it started,
    by PID at exit, whatever happened. Yields the Popen."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    started = set()
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{Path(cmd[0]).name} exited during start-up:\n{Path(log_path).read_text()[-3000:]}")
            try:
                urllib.request.urlopen(ready_url, timeout=2)
                break
            except urllib.error.HTTPError:
                break                                  # a quick 404 or 403: the server is up
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{Path(cmd[0]).name} did not answer within {timeout} s")
                time.sleep(0.3)
        yield proc
    finally:
        if proc.poll() is None:
            started.update(_descendants(proc.pid))     # kernels, before the server forgets them
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)        # the group we created, and only it
            proc.wait()
        for pid in started:                            # a kernel in a session of its own outlives the group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


@contextmanager
def browser(tmp_path, width=1000, height=860):
    """A Chromium with a fresh profile: yields a page with a 60 s default timeout; a failure leaves a screenshot."""
    from playwright.sync_api import sync_playwright

    path = chromium()
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(Path(tmp_path) / "profile"), executable_path=path,
                                                       headless=True, args=CHROMIUM_FLAGS,
                                                       viewport={"width": width, "height": height})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        except BaseException:
            if "page" in locals():
                try:
                    page.screenshot(path=str(Path(tmp_path) / "failure.png"))
                    print(f"failure screenshot: {Path(tmp_path) / 'failure.png'}")
                except Exception:
                    pass
            raise
        finally:
            context.close()


def wait_painted(page, canvas):
    """Wait until the canvas has its dark background painted (ipycanvas issue 322 leaves it blank)."""
    canvas.wait_for()
    canvas.evaluate("""c => new Promise((resolve, reject) => {
        const t0 = Date.now();
        (function check() {
            if (c.width > 0 && c.getContext('2d').getImageData(5, 5, 1, 1).data[3] === 255) return resolve(true);
            if (Date.now() - t0 > 60000) return reject(new Error('the canvas was never painted'));
            setTimeout(check, 100);
        })(); })""")


def draw(page, canvas, strokes):
    """Drag the mouse along each stroke, in canvas pixel coordinates (every third point of a long stroke)."""
    canvas.scroll_into_view_if_needed()
    x0, y0 = content_origin(canvas)
    for stroke in strokes:
        points = stroke[::3] if len(stroke) > 6 else stroke
        page.mouse.move(x0 + points[0][0], y0 + points[0][1])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(x0 + x, y0 + y)
        page.mouse.up()


def content_origin(canvas):
    """The page position of the canvas's pixel (0, 0), inside its border."""
    return canvas.evaluate("c => { const r = c.getBoundingClientRect(); return [r.left + c.clientLeft, r.top + c.clientTop]; }")


def canvas_ink(page, canvas):
    """A Chromium screenshot of the canvas's content box as ink: -> (H, W) float32 in [0, 1], 1 where white."""
    from PIL import Image

    x, y = content_origin(canvas)
    w, h = canvas.evaluate("c => [c.clientWidth, c.clientHeight]")
    png = page.screenshot(clip={"x": x, "y": y, "width": w, "height": h})
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), np.float32) / 255
    background = int(BACKGROUND[1:3], 16) / 255
    return np.clip((grey - background) / (1 - background), 0, 1)


def ink_iou(a, b, threshold=0.5):
    """Intersection over union of the inked pixels (>= threshold) of two same-shaped images."""
    a, b = np.asarray(a) >= threshold, np.asarray(b) >= threshold
    return float((a & b).sum() / max((a | b).sum(), 1))


def checked_strokes(digit, seed, pen_width=18):
    """A drawn digit's strokes (as draw() sends them), checked first without a browser so that a miss in the browser
    is the browser path's fault: -> (strokes, the headless pad that read them)."""
    strokes, _ = S.digit_strokes(digit, np.random.default_rng(seed))
    pad = Sketchpad({"MLP": load_or_train("mlp", progress=False)}, pen_width=pen_width)
    for stroke in strokes:
        points = stroke[::3] if len(stroke) > 6 else stroke
        pad.pen_down(*points[0])
        for x, y in points[1:]:
            pad.pen_move(x, y)
        pad.pen_up()
    assert pad.predictions["MLP"][0] == digit, (digit, seed, pad.predictions)
    return strokes, pad


def readable_seed(digit, margin=0.05):
    """The first seed whose digit the headless pad reads right, with every diagnostic clear of its warning
    threshold by margin (relative), so that a pixel's difference in the browser cannot flip a warning."""
    for seed in range(100):
        try:
            _, pad = checked_strokes(digit, seed)
        except AssertionError:
            continue
        if all(abs(r["value"] - bound) > margin * abs(bound) for k, r in pad.report.items() if k != "warnings"
               for bound in (r["low"], r["high"])):
            return seed
    raise AssertionError(f"no generated {digit} reads well")


def wait_read(scope, digit, strokes):
    """Wait until the pad has read every stroke with the pen up, and the MLP's answer is digit (scope: a page or a
    sketchpad's locator). Waiting on the prediction alone can stop early: a live update while the pen is still down
    may already show it."""
    scope.locator(f".npnet-status h3[data-strokes='{len(strokes)}'][data-pen='up']").first.wait_for()
    scope.locator(f".npnet-pred[data-model='MLP']:text-is('{digit}')").first.wait_for()


def _inside_images(scope):
    """The src of each image the inside panel shows now, keyed by its class; {} until every one has loaded."""
    return scope.locator(".npnet-inside .npnet-inside-img").evaluate_all("""imgs => {
        const shown = imgs.filter(i => i.offsetParent !== null);
        if (!shown.length || shown.some(i => !i.complete || i.naturalWidth === 0)) return {};
        return Object.fromEntries(shown.map(i => [[...i.classList].find(c => c.startsWith('npnet-inside-') &&
                                                                            c !== 'npnet-inside-img'), i.src]));
    }""")


def _wait_images(page, scope, unlike=None):
    """Wait until the inside panel's images have all loaded (and, given unlike, every one has changed): -> srcs."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        srcs = _inside_images(scope)
        if len(srcs) >= 5 and (unlike is None or all(srcs[k] != unlike.get(k) for k in srcs)):
            return srcs
        assert time.monotonic() < deadline, f"the inside panel's images did not show: {srcs}"
        page.wait_for_timeout(200)                     # polling the state, not waiting for a guessed time


def look_inside(page, scope, canvas, first, second, target):
    """Draw first with the inside panel off, turn it on, check its images appear and follow a drawing of second,
    then ask it to answer target: -> (the answer the page shows, the panel's locator). scope: a page or a pad."""
    panel, toggle = scope.locator(".npnet-inside").first, scope.get_by_role("button", name="look inside")
    if panel.is_visible():
        toggle.click()
        panel.wait_for(state="hidden")
    for digit in (first, second):
        scope.get_by_role("button", name="Clear").click()
        scope.locator(".npnet-status:has-text('draw a digit')").first.wait_for()
        strokes, _ = checked_strokes(digit, readable_seed(digit))
        draw(page, canvas, strokes)
        wait_read(scope, digit, strokes)
        if digit == first:
            assert not panel.is_visible()
            toggle.click()                                 # on, after the digit is drawn
            panel.locator(f".npnet-inside-state[data-model='MLP'][data-digit='{first}']").wait_for()
            before = _wait_images(page, scope)
            assert {"npnet-inside-layers", "npnet-inside-why", "npnet-inside-near"} <= set(before), before
        else:
            panel.locator(f".npnet-inside-state[data-model='MLP'][data-digit='{second}']").wait_for()
            _wait_images(page, scope, unlike=before)             # every view followed the new drawing
    panel.locator(".npnet-inside-target select").select_option(label=str(target))
    panel.get_by_role("button", name="change its mind").click()
    answer = panel.locator(f".npnet-cf[data-target='{target}']")
    answer.wait_for()
    panel.locator(".npnet-inside-change-img").wait_for()
    return int(answer.inner_text()), panel
