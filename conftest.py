"""pytest's set-up for tests/, notebooks/ and app/: a test run leaves the work tree as it was, however it is started.

The notebooks save their figures into $NPNET_FIGURES, else into the tracked figures/. `make test` points it at a
temporary folder; so does this file when it is unset or empty (a bare `pytest tests notebooks`), for every kernel
and subprocess the run starts, and removes that folder at the end.
"""

import os
import shutil
import tempfile


def pytest_configure(config):
    if not os.environ.get("NPNET_FIGURES"):
        config.npnet_figures = os.environ["NPNET_FIGURES"] = tempfile.mkdtemp(prefix="npnet-figures-")


def pytest_unconfigure(config):
    folder = getattr(config, "npnet_figures", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        del os.environ["NPNET_FIGURES"]
