"""The drawing app: an ipycanvas sketchpad that records pen strokes, renders them in NumPy and classifies them live."""

import html
import io
import time
from contextlib import contextmanager

import numpy as np
import ipywidgets as W
from ipycanvas import Canvas, hold_canvas
from threadpoolctl import ThreadpoolController

from . import model as M
from . import preprocess as P
from .data import normalize
from .strokes import render

BACKGROUND, INK = "#111111", "#ffffff"
PIPELINES = {"MNIST-style": P.mnist_style, "naive resize": P.naive}
BLAS = ThreadpoolController()  # one image at a time: one BLAS thread beats two fighting over a busy CPU


@contextmanager
def _held():
    """ipycanvas's hold_canvas() has no try/finally: an error inside it would leave caching on and swallow every later draw."""
    from ipycanvas.canvas import _CANVAS_MANAGER

    caching = _CANVAS_MANAGER._caching
    try:
        with hold_canvas():
            yield
    finally:
        _CANVAS_MANAGER._caching = caching


def _png(x28, scale=5):
    """A 28x28 tensor in [0, 1] as PNG bytes, upscaled without smoothing so every pixel shows."""
    from PIL import Image

    big = np.kron(np.clip(x28, 0, 1), np.ones((scale, scale)))
    buf = io.BytesIO()
    Image.fromarray((big * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _bars(probs_by_model):
    """An HTML bar chart of each model's 10 probabilities, side by side."""
    head = "".join(f"<th style='padding:0 6px'>{html.escape(name)}</th>" for name in probs_by_model)
    rows = []
    for digit in range(10):
        cells = []
        for probs in probs_by_model.values():
            p = float(probs[digit])
            color = "#2a7ae2" if digit == int(np.argmax(probs)) else "#9bbbe6"
            cells.append(f"<td style='padding:1px 6px'><div style='background:{color};height:12px;"
                         f"width:{max(p * 140, 1):.0f}px;display:inline-block'></div> {p:.1%}</td>")
        rows.append(f"<tr><td><b>{digit}</b></td>{''.join(cells)}</tr>")
    return f"<table style='font-size:12px'><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def _diagnostics(report):
    """The diagnose() report as an HTML table plus its warnings."""
    names = {"ink": "ink (stroke density)", "centre_offset": "centre offset, px",
             "area_ratio": "box area / frame", "aspect": "box width / height"}
    def usual(k):  # centre offset can only be too big: show its range one-sided
        low, high = report[k]["low"], report[k]["high"]
        return f"≤ {high:.2f}" if P.EXPLAIN[k][0] is None else f"{low:.2f} – {high:.2f}"
    td = "<td style='text-align:right;padding:0 6px'>"
    rows = "".join(f"<tr><td>{label}</td>{td}{report[k]['value']:.2f}</td>{td}{report[k]['percentile']:.0f}</td>"
                   f"{td}{usual(k)}</td></tr>" for k, label in names.items())
    warnings = "".join(f"<li>⚠ {html.escape(w)}</li>" for w in report["warnings"]) or "<li>✓ within MNIST's range</li>"
    return (f"<table style='font-size:12px;line-height:1.3'><tr><th>measure</th><th>value</th>"
            f"<th>MNIST percentile</th><th>99.8% of MNIST</th></tr>{rows}</table><ul class='npnet-warnings' "
            f"style='font-size:12px;margin:4px 0'>{warnings}</ul>")


class Sketchpad:
    """A canvas to draw on, with live predictions; models maps a name to (model, norm_stats)."""

    def __init__(self, models, size=280, pen_width=18, throttle=0.25):
        self.models, self.size, self.throttle = models, size, throttle
        self.strokes, self.widths = [], []    # each stroke: a list of (x, y) canvas points, and its pen width
        self.drawing, self.last_update = False, 0.0
        self.x28, self.report, self.predictions = None, None, {}

        self.canvas = Canvas(width=size, height=size,  # shown at 1:1, never stretched to the page width
                             layout=W.Layout(width=f"{size}px", height=f"{size}px", border="1px solid #888"))
        self.pen = W.IntSlider(pen_width, 4, 40, description="pen", layout=W.Layout(width="180px"),
                               style={"description_width": "30px"})
        self.undo_button, self.clear_button = (W.Button(description=d, layout=W.Layout(width="80px"))
                                               for d in ("Undo", "Clear"))
        self.pipeline = W.ToggleButtons(options=list(PIPELINES), value="MNIST-style", description="input:",
                                        style={"description_width": "40px", "button_width": "110px"})
        self.status = W.HTML()
        self.status.add_class("npnet-status")
        self.bars, self.diagnostics = W.HTML(), W.HTML()
        self.tensor = W.Image(format="png", width=140, height=140, layout=W.Layout(border="1px solid #888"))

        self.canvas.on_mouse_down(self.pen_down)
        self.canvas.on_mouse_move(self.pen_move)
        self.canvas.on_mouse_up(self.pen_up)
        self.canvas.on_mouse_out(self.pen_up)
        self.canvas.on_touch_start(lambda touches: touches and self.pen_down(*touches[0]))
        self.canvas.on_touch_move(lambda touches: touches and self.pen_move(*touches[0]))
        self.canvas.on_touch_end(lambda touches: self.pen_up())
        self.canvas.on_touch_cancel(lambda touches: self.pen_up())
        self.canvas.on_client_ready(self.redraw)
        self.undo_button.on_click(lambda _: self.undo())
        self.clear_button.on_click(lambda _: self.clear())
        self.pipeline.observe(lambda _: self.update(), names="value")

        left = W.VBox([self.canvas, W.HBox([self.pen, self.undo_button, self.clear_button]), self.pipeline])
        right = W.VBox([self.status, self.bars,
                        W.HBox([W.VBox([W.HTML("<b>what the network sees</b> (28×28)"), self.tensor]),
                                W.VBox([W.HTML("<b>diagnostics</b>"), self.diagnostics])])])
        right.layout.margin = "0 0 0 16px"
        self.widget = W.HBox([left, right])
        self.redraw()
        self.update()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    # ---- pen events: mouse, pen and touch all end up here ----
    def pen_down(self, x, y):
        """Start a stroke at canvas point (x, y)."""
        self.drawing = True
        self.strokes.append([(float(x), float(y))])
        self.widths.append(self.pen.value)
        self.canvas.line_width = self.pen.value
        self.canvas.fill_style = INK
        self.canvas.fill_circle(x, y, self.pen.value / 2)

    def pen_move(self, x, y):
        """Extend the current stroke to (x, y), and predict if the last prediction is older than throttle."""
        if not self.drawing:
            return
        x0, y0 = self.strokes[-1][-1]
        self.strokes[-1].append((float(x), float(y)))
        self.canvas.stroke_style = INK
        self.canvas.stroke_line(x0, y0, x, y)
        if time.monotonic() - self.last_update > self.throttle:
            self.update()

    def pen_up(self, x=None, y=None):
        """End the stroke and predict."""
        if self.drawing:
            self.drawing = False
            self.update()

    def undo(self):
        """Remove the last stroke."""
        if self.strokes:
            self.strokes.pop()
            self.widths.pop()
        self.redraw()
        self.update()

    def clear(self):
        """Remove every stroke."""
        self.strokes, self.widths = [], []
        self.redraw()
        self.update()

    def redraw(self):
        """Paint the background and every stroke again, e.g. for a browser that connects late."""
        # ipycanvas (issue 322) sends "switch to this canvas" only once per kernel, so a client that
        # connects later (a Voila page, a JupyterLab reload) draws nothing until we forget it was sent.
        self.canvas._canvas_manager._current_canvas = None
        with _held():  # drawing state is sent as commands, so a late client needs the line style again too
            self.canvas.line_cap = self.canvas.line_join = "round"
            self.canvas.fill_style = BACKGROUND
            self.canvas.fill_rect(0, 0, self.size, self.size)
            self.canvas.stroke_style = self.canvas.fill_style = INK
            for stroke, width in zip(self.strokes, self.widths):
                self.canvas.line_width = width
                self.canvas.fill_circle(*stroke[0], width / 2)
                if len(stroke) > 1:
                    self.canvas.stroke_lines(stroke)

    # ---- inference: strokes -> NumPy image -> 28x28 -> every model ----
    def image(self):
        """The strokes rendered anti-aliased in NumPy: (size, size) float32 in [0, 1]."""
        img = np.zeros((self.size, self.size), np.float32)
        for stroke, width in zip(self.strokes, self.widths):
            np.maximum(img, render([stroke], self.size, width), out=img)
        return img

    def update(self):
        """Re-run the pipeline on what is drawn and refresh the prediction, bars, tensor and diagnostics."""
        with BLAS.limit(limits=1, user_api="blas"):
            self._update()

    def _update(self):
        self.last_update = time.monotonic()
        self.x28, self.report, self.predictions = None, None, {}
        try:
            if not self.strokes:
                raise P.EmptyCanvas("draw a digit")
            self.x28 = PIPELINES[self.pipeline.value](self.image())
        except P.EmptyCanvas as e:
            message = "draw a digit" if not self.strokes else f"draw a digit ({e})"
            self.status.value = f"<h3 style='margin:4px 0'>{html.escape(message)}</h3>"
            self.bars.value = self.diagnostics.value = ""
            self.tensor.value = _png(np.zeros((28, 28)))
            return
        probs = {name: M.predict_proba(m, normalize(self.x28[None], stats))[0]
                 for name, (m, stats) in self.models.items()}
        self.predictions = {name: (int(p.argmax()), float(p.max())) for name, p in probs.items()}
        self.report = P.diagnose(self.x28)
        self.status.value = "<h3 style='margin:4px 0'>prediction: " + " · ".join(
            f"<span class='npnet-pred' data-model='{html.escape(n)}'>{d}</span> ({p:.1%}"
            f"{', ' + html.escape(n) if len(self.predictions) > 1 else ''})"
            for n, (d, p) in self.predictions.items()) + "</h3>"
        self.bars.value = _bars(probs)
        self.tensor.value = _png(self.x28)
        self.diagnostics.value = _diagnostics(self.report)


def load_models():
    """The course's trained models: the MLP (trained first if missing) and the CNN if present: {name: (model, stats)}."""
    from . import recipes

    models = {"MLP": recipes.load_or_train("mlp")}
    cnn = recipes.model_path("cnn")
    if cnn.exists():
        model, stats, _ = M.load(cnn)
        models["CNN"] = (model, stats)
    return models


def app():
    """The sketchpad with every trained model, as shown by notebook 06 and `make demo`."""
    P.mnist_reference()  # load MNIST's diagnostics once, before the first stroke
    return Sketchpad(load_models())
