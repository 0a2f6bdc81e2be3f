"""In JupyterLab: notebook 02's live training view updates while it trains, and its Stop button ends the training."""

import json
import os
import re
import secrets
import sys
import time
from pathlib import Path

import nbformat
import pytest

from browser_util import ROOT, browser, free_port, lab_api, screenshot_path, server

NOTEBOOK = ROOT / "notebooks" / "02_deep_mlp.ipynb"
TIMEOUT = 600                  # seconds for each wait on training: the machine may be busy
MID_STEP = 2 * 391 + 1         # press Stop in epoch 3 of 15: curves to see, and 12 epochs left on a fast machine

pytestmark = pytest.mark.browser


def live_notebook(path):
    """A copy of notebook 02 cut down to what its live run needs, with the notebook's own code: the set-up cell,
    the training cell's definitions (without its two other runs), and the "Watch it learn" cells."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = next(c for c in code if "splits = data.load_splits()" in c.source)
    runs = next(c for c in code if "def run_recipe(" in c.source)
    live = next(i for i, c in enumerate(nb.cells) if c.source.startswith("### Watch it learn"))
    definitions = runs.source.split("runs = {}")[0] + "runs = {}"
    cells = [nbformat.v4.new_markdown_cell("# Notebook 02's live training, cut down for a browser test"),
             nbformat.v4.new_code_cell(setup.source), nbformat.v4.new_code_cell(definitions),
             nb.cells[live], nbformat.v4.new_code_cell(nb.cells[live + 1].source)]
    copy = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
    nbformat.write(copy, path)


class Lab:
    """A JupyterLab server on a free loopback port with a token."""

    def __init__(self, port, token):
        self.base, self.token = f"http://127.0.0.1:{port}", token

    def api(self, method, path):
        return lab_api(self.base, self.token, method, path)

    def kernels_idle(self):
        sessions = self.api("GET", "/api/sessions")
        return bool(sessions) and all(s["kernel"]["execution_state"] == "idle" for s in sessions)


@pytest.fixture
def lab(tmp_path):
    """JupyterLab serving the cut-down copy from tmp (its figures too); the sessions are deleted and the server, with
    anything it started, stopped by PID at the end, whatever happened."""
    root = tmp_path / "notebooks"
    root.mkdir()
    live_notebook(root / NOTEBOOK.name)
    config = tmp_path / "jupyter-config"               # no news pop-up, no update check
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port, token = free_port(), secrets.token_hex(16)
    cmd = [str(Path(sys.executable).parent / "jupyter-lab"), "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    cmd += ["--allow-root"] if os.geteuid() == 0 else []
    env = {"JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "NPNET_FIGURES": str(tmp_path / "figures"), "PYTHONPATH": os.pathsep.join(
               p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}   # this checkout's npnet
    with server(cmd, f"http://127.0.0.1:{port}/api/status", tmp_path / "lab.log", env=env, cwd=root):
        lab = Lab(port, token)
        try:
            yield lab
        finally:
            try:
                for session in lab.api("GET", "/api/sessions"):
                    lab.api("DELETE", f"/api/sessions/{session['id']}")
            except OSError as e:
                print(f"could not delete the sessions ({e}); the server's teardown stops the kernel instead")


def step_of(view):
    """The total step count in the view's status line ('epoch E of 15, step S of 391'), or None before it shows."""
    match = re.search(r"epoch (\d+) of (\d+), step (\d+) of (\d+)", view.locator(".widget-html").first.inner_text())
    return None if match is None else (int(match[1]) - 1) * int(match[4]) + int(match[3])


def test_notebook_02_trains_live_and_stops_on_the_button(lab, tmp_path):
    with browser(tmp_path, width=1200, height=900) as page:
        page.goto(f"{lab.base}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
        deadline = time.monotonic() + 120
        while not lab.kernels_idle():                                       # the kernel has started
            assert time.monotonic() < deadline, "the notebook's kernel did not start"
            page.wait_for_timeout(300)
        page.locator(".lm-MenuBar-itemLabel:text-is('Run')").click()
        page.locator(".lm-Menu-itemLabel:text-is('Run All Cells')").click()

        view = page.locator(".npnet-trainview").first
        view.wait_for(timeout=TIMEOUT * 1000)                               # the set-up has loaded the data
        view.scroll_into_view_if_needed()
        deadline = time.monotonic() + TIMEOUT
        while (first := step_of(view)) is None:                             # the first update
            assert time.monotonic() < deadline, "the live view never showed a step"
            page.wait_for_timeout(200)
        while step_of(view) < max(first + 1, MID_STEP) or view.locator("svg polyline").count() < 4 or \
                not view.locator("img").first.is_visible():                 # later updates: curves and weights
            assert time.monotonic() < deadline, "the live view did not update"
            assert "done" not in view.inner_text(), "training ended before the test could press Stop"
            page.wait_for_timeout(200)
        view.screenshot(path=str(screenshot_path("02_live_training_lab.png", tmp_path)))
        before = step_of(view)

        view.get_by_role("button", name="Stop").click()
        view.locator(".widget-html:has-text('stopped')").first.wait_for(timeout=TIMEOUT * 1000)
        status = view.locator(".widget-html").first.inner_text()
        deadline = time.monotonic() + TIMEOUT
        prompts = ".jp-CodeCell .jp-InputPrompt"           # the kernel reports idle after each click it handles,
        while any("*" in p for p in page.locator(prompts).all_text_contents()) or not lab.kernels_idle():
            assert time.monotonic() < deadline, "the training cell did not finish after Stop"   # so: no [*] left
            page.wait_for_timeout(300)
        printed = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
        steps = int(re.search(r"cosine decay \(ours\): (\d+) steps", printed)[1])
        assert "stopped by you" in printed and before <= steps < 15 * 391, (printed, before)
        assert f"({steps:,} steps" in status, (status, steps)               # the view drew the last step taken
        assert view.get_by_role("button", name="stopped").is_disabled()
        page.locator(".jp-OutputArea-output[data-mime-type='image/png'] img").last.wait_for()   # the static figure
        view.scroll_into_view_if_needed()
        view.screenshot(path=str(screenshot_path("02_live_training_lab_stopped.png", tmp_path)))
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        assert not any("Error" in e for e in errors), errors
    print(f"stopped after {steps} of {15 * 391} steps; pressed at step {before} or later")
