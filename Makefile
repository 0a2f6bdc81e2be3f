# Two commands for a newcomer: `make lab` runs the course, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DATA   := data/mnist/t10k-labels-idx1-ubyte
MODEL  := models/mlp.npz
PORT   ?= 8888

.PHONY: setup data lab test demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q --upgrade pip
	$(PY) -m pip install --disable-pip-version-check -q -e ".[course,test]"
	@touch $@

data: $(DATA)

$(DATA): | $(STAMP)
	$(PY) -m npnet data

lab: setup data
	@echo "Starting JupyterLab on notebooks/ — open the URL it prints below."
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ServerApp.open_browser=False --port=$(PORT) \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# The notebooks write their figures to a temporary folder here, so that a test run leaves the work tree clean.
test: setup data
	@figs=$$(mktemp -d) && NPNET_FIGURES=$$figs $(PY) -m pytest tests notebooks app --nbval-lax --nbval-current-env \
		--nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider; status=$$?; rm -rf $$figs; exit $$status

# The drawing app as a web page: Voila runs app/draw_a_digit.ipynb with no code shown, on loopback only.
demo: setup data $(MODEL)
	@echo "Serving the drawing app on http://127.0.0.1:$(PORT)/ — open it in a browser; Ctrl-C stops it."
	$(VENV)/bin/voila app/draw_a_digit.ipynb --no-browser --port=$(PORT) --Voila.ip=127.0.0.1

$(MODEL): | $(STAMP) $(DATA)
	$(PY) -m npnet train

# npnet vs PyTorch (a CPU build only) vs scikit-learn; OPENBLAS_CORETYPE/L2_SIZE, which slow a current
# NumPy on some CPUs, are unset for the benchmark command alone.
bench: setup data
	$(PY) -m pip install --disable-pip-version-check -q -e ".[bench]"
	$(PY) benchmarks/get_torch.py
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/bench.py --plot benchmarks/bench.png

clean:
	rm -rf $(VENV)

# The README's screenshots (figures/06_sketchpad.png, 06_collect_mode.png, 06_inside_panel.png), taken by the browser tests; a
# plain `make test` writes its screenshots to a temporary folder and leaves the work tree clean.
.PHONY: screenshots
screenshots: setup data $(MODEL)
	NPNET_SCREENSHOTS=1 $(PY) -m pytest tests/test_browser.py tests/test_browser_lab.py -p no:cacheprovider -q
