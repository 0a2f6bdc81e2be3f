"""End to end in JupyterLab: Run All on a copy of the drawing notebook, then draw, collect, save, reload and look
inside in Chromium."""

import json
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from browser_util import (ROOT, browser, canvas_ink, checked_strokes, draw, free_port, ink_iou, lab_api, look_inside,
                          readable_seed, screenshot_path, server, wait_painted, wait_read)
from npnet import drawings as D
from npnet.recipes import load_or_train

NOTEBOOK = ROOT / "notebooks" / "06_draw_a_digit.ipynb"
RUN_ALL_TIMEOUT = 600          # seconds: the notebook replays hundreds of drawings, on a machine that may be busy
SLIDER_TRACK = 100             # px: the pen slider's track, with the fixed widths in npnet.sketchpad

pytestmark = pytest.mark.browser


class Lab:
    """A JupyterLab server on a free loopback port with a token, serving a temporary copy of the notebook."""

    def __init__(self, port, token, root, drawings):
        self.base, self.token, self.root, self.drawings = f"http://127.0.0.1:{port}", token, root, drawings

    def api(self, method, path):
        return lab_api(self.base, self.token, method, path)

    def kernels_idle(self):
        return all(s["kernel"]["execution_state"] == "idle" for s in self.api("GET", "/api/sessions"))


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on the copy, its settings and drawings in tmp; every session is deleted and the server (and
    anything it started) stopped at the end, whatever happened."""
    load_or_train("mlp", progress=False)               # the notebook must not have to train first
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    config = tmp_path / "jupyter-config"               # no news pop-up, no update check, a clean workspace
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    settings = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                           "checkForUpdates": False}))
    port, token, drawings = free_port(), secrets.token_hex(16), tmp_path / "drawings.jsonl"
    cmd = [str(Path(sys.executable).parent / "jupyter-lab"), "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    cmd += ["--allow-root"] if os.geteuid() == 0 else []
    env = {D.ENV: str(drawings), "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "NPNET_FIGURES": str(tmp_path / "figures"),   # the notebook's figures: never the tracked figures/
           "NPNET_INSIDE_CACHE": str(tmp_path)}           # the inside panel's cached features
    with server(cmd, f"http://127.0.0.1:{port}/api/status", tmp_path / "lab.log", env=env, cwd=root):
        lab = Lab(port, token, root, drawings)
        try:
            yield lab
        finally:
            try:
                for session in lab.api("GET", "/api/sessions"):     # one kernel per test, ended here
                    lab.api("DELETE", f"/api/sessions/{session['id']}")
            except OSError as e:
                print(f"could not delete the sessions ({e}); the server's teardown stops the kernel instead")


def menu(page, top, item):
    """Click a JupyterLab menu item, e.g. File → Save Notebook (Ctrl+S sent by Playwright did not save)."""
    page.locator(f".lm-MenuBar-itemLabel:text-is('{top}')").click()
    page.locator(f".lm-Menu-itemLabel:text-is('{item}')").click()


def run_all(page, lab):
    """Run → Run All Cells, then wait until the first sketchpad is shown and every cell has run."""
    menu(page, "Run", "Run All Cells")
    page.locator(".npnet-sketchpad").first.wait_for(timeout=RUN_ALL_TIMEOUT * 1000)
    prompts = ".jp-CodeCell .jp-InputPrompt"
    deadline = time.monotonic() + RUN_ALL_TIMEOUT
    while any("*" in p for p in page.locator(prompts).all_text_contents()) or not lab.kernels_idle():
        assert time.monotonic() < deadline, f"Run All did not finish within {RUN_ALL_TIMEOUT} s"
        page.wait_for_timeout(500)                     # polling the state, not waiting for a guessed time
    not_run = [p for p in page.locator(prompts).all_text_contents() if not any(c.isdigit() for c in p)]
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
    assert not not_run, f"{len(not_run)} cell(s) did not run: " + " | ".join(e[-800:] for e in errors)


def pad_parts(page):
    """The first sketchpad in the page, found by its widget only (never by the notebook's text)."""
    pad = page.locator(".npnet-sketchpad").first
    return pad, pad.locator("canvas").first


def wait_ink(page, canvas, expected, iou, keep):
    """Wait until Chromium's pixels of the canvas match expected ink (H, W): -> the IoU reached. On failure both
    images are kept in keep/ (a directory)."""
    from PIL import Image

    deadline = time.monotonic() + 60
    while True:
        shown = canvas_ink(page, canvas)
        found = ink_iou(shown, expected)
        if found >= iou:
            return found
        if time.monotonic() > deadline:
            for name, img in (("shown", shown), ("expected", expected)):
                Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(Path(keep) / f"repaint_{name}.png")
            pytest.fail(f"the canvas shows something else: IoU {found:.3f} (both images in {keep})")
        page.wait_for_timeout(250)


def set_pen(page, pad, width):
    """Set the pen slider with the keyboard, as a learner can: Home, then one step right at a time."""
    handle = pad.locator(".widget-hslider .noUi-handle").first
    handle.focus()
    page.keyboard.press("Home")
    for _ in range(width - 4):                         # the slider starts at 4
        page.keyboard.press("ArrowRight")


def slider_track(pad):
    return pad.locator(".widget-hslider .slider-container").first.evaluate("e => e.getBoundingClientRect().width")


def test_the_drawing_notebook_in_jupyterlab(lab, tmp_path, record_property):
    t_start = time.monotonic()
    with browser(tmp_path, width=1400, height=900) as page:
        page.goto(f"{lab.base}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
        deadline = time.monotonic() + 120
        while not lab.api("GET", "/api/sessions") or not lab.kernels_idle():   # the kernel has started
            assert time.monotonic() < deadline, "the notebook's kernel did not start"
            page.wait_for_timeout(300)
        if not page.locator("#filebrowser").is_visible():                      # issue 14's layout case
            page.locator(".jp-SideBar [data-id='filebrowser']").click()
        t0 = time.monotonic()
        run_all(page, lab)
        print(f"Run All: {time.monotonic() - t0:.1f} s")

        pad, canvas = pad_parts(page)
        canvas.scroll_into_view_if_needed()
        wait_painted(page, canvas)
        pad.get_by_role("button", name="predict").click()
        pad.get_by_role("button", name="MNIST-style").click()
        set_pen(page, pad, 18)
        pad.get_by_role("button", name="Clear").click()
        pad.locator(".npnet-status:has-text('draw a digit')").wait_for()
        empty_track = slider_track(pad)

        # Three digits drawn with the mouse, each read by the page.
        for digit in (3, 6, 1):
            pad.get_by_role("button", name="Clear").click()
            pad.locator(".npnet-status:has-text('draw a digit')").wait_for()
            strokes, _ = checked_strokes(digit, readable_seed(digit))
            draw(page, canvas, strokes)
            wait_read(pad, digit, strokes)

        # A reload repaints the drawing, once the notebook is saved (File → Save Notebook).
        last = canvas_ink(page, canvas)                  # the last of the three digits
        saved_at = (lab.root / NOTEBOOK.name).stat().st_mtime_ns
        menu(page, "File", "Save Notebook")
        deadline = time.monotonic() + 60
        while (lab.root / NOTEBOOK.name).stat().st_mtime_ns == saved_at:
            assert time.monotonic() < deadline, "File → Save Notebook did not save"
            page.wait_for_timeout(200)
        page.reload()
        pad, canvas = pad_parts(page)
        canvas.wait_for()
        canvas.scroll_into_view_if_needed()
        wait_painted(page, canvas)
        repaint = wait_ink(page, canvas, last, 0.99, tmp_path)
        print(f"after the reload the canvas repaints the drawing: IoU {repaint:.4f}")

        # Issue 14, item 5: the slider keeps its track when the panel beside it widens with warnings.
        pad.get_by_role("button", name="Clear").click()
        pad.locator(".npnet-status:has-text('draw a digit')").wait_for()
        pad.get_by_role("button", name="naive resize").click()
        strokes, _ = checked_strokes(3, readable_seed(3))
        draw(page, canvas, [np.asarray(s) * 0.4 + 15 for s in strokes])   # small, in a corner: three warnings
        pad.locator(f".npnet-status h3[data-strokes='{len(strokes)}'][data-pen='up']").wait_for()
        warnings = pad.locator(".npnet-warnings li").count()
        naive_track = slider_track(pad)
        print(f"pen slider track: {empty_track:.1f} px on an empty canvas, {naive_track:.1f} px with {warnings} warnings")
        page.screenshot(path=str(tmp_path / "lab_naive_with_warnings.png"))     # to look at; never in figures/
        assert warnings >= 3, pad.locator(".npnet-warnings").inner_text()
        assert abs(empty_track - SLIDER_TRACK) <= 1 and abs(naive_track - SLIDER_TRACK) <= 1, (empty_track, naive_track)
        row = pad.locator(".widget-hslider").first.locator("xpath=..")
        row_right = row.evaluate("e => Math.max(...[...e.children].map(c => c.getBoundingClientRect().right))")
        canvas_right = canvas.evaluate("c => c.getBoundingClientRect().right")
        assert row_right <= canvas_right + 2, (row_right, canvas_right)   # pen, Undo and Clear fit under the canvas
        pad.get_by_role("button", name="MNIST-style").click()

        # Collect mode: two drawings saved, and the file holds exactly them.
        pad.get_by_role("button", name="collect").click()
        targets, shown = [], []
        for k in (1, 2):
            target = int(pad.locator(".npnet-target").inner_text())
            pad.get_by_role("button", name="Clear").click()
            pad.locator(".npnet-status:has-text('draw a digit')").wait_for()
            strokes, _ = checked_strokes(target, readable_seed(target))
            draw(page, canvas, strokes)
            wait_read(pad, target, strokes)
            shown.append(canvas_ink(page, canvas))
            pad.get_by_role("button", name="Save").click()
            pad.locator(f".npnet-message:has-text('saved your {target}: {k} saved so far')").wait_for()
            targets.append((target, len(strokes)))
        records = [json.loads(line) for line in lab.drawings.read_text().splitlines()]
        assert [(r["label"], len(r["strokes"])) for r in records] == targets
        for record, ink in zip(records, shown):
            assert record["device"] == "mouse" and record["canvas"] == [280, 280] and record["generated"] is False
            assert record["widths"] == [18.0] * len(record["strokes"])
            assert ink_iou(ink, D.validate(record).image()) >= 0.95
        assert [d.label for d in D.load_drawings(lab.drawings)] == [t for t, _ in targets]
        assert any((tmp_path / "figures").glob("06_*.png"))   # the copy's figures went to tmp, not to figures/

        # Issue 21: the inside panel, turned on after a digit is drawn, follows a second digit; "change its mind"
        # makes the MLP answer the digit asked for.
        pad.get_by_role("button", name="predict").click()
        t0 = time.monotonic()
        answer, panel = look_inside(page, pad, canvas, 3, 7, target=2)
        print(f"inside panel: on, two digits and change its mind in {time.monotonic() - t0:.1f} s; "
              f"{panel.locator('.npnet-inside-change').inner_text()}")
        assert answer == 2
        panel.scroll_into_view_if_needed()
        panel.screenshot(path=str(screenshot_path("06_inside_panel.png", tmp_path)))
    took = time.monotonic() - t_start
    record_property("seconds", took)
    print(f"JupyterLab end to end: {took:.0f} s")
