"""The drawing app: an ipycanvas sketchpad that records strokes, renders them in NumPy, predicts live and collects drawings."""

import html
import io
import math
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import ipywidgets as W
from ipycanvas import Canvas, hold_canvas
from threadpoolctl import ThreadpoolController

from . import drawings as D
from . import model as M
from . import preprocess as P
from .data import normalize
from .drawings import load_models  # noqa: F401  (the notebook and the app import it from here)
from .inside_view import InsidePanel

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


def _fixed(width):
    """A layout of exactly width pixels that neither grows nor shrinks with the panel beside it."""
    return W.Layout(width=width, min_width=width, max_width=width, flex="0 0 auto")


class Sketchpad:
    """A canvas to draw on, with live predictions; models maps a name to (model, norm_stats).

    In collect mode the pad prompts for a digit, in shuffled rounds of 0-9; Save appends the drawing with that
    label to drawings_path (default: npnet.drawings.default_path(), read at each save), Skip moves on.
    "look inside" (inside=True to start with it on) shows npnet.inside_view's panel under the pad.
    """

    def __init__(self, models, size=280, pen_width=18, throttle=0.25, collect=False, drawings_path=None, seed=None,
                 about="", inside=False, training_set=None):
        self.models, self.size, self.throttle = models, size, throttle
        self.strokes, self.widths = [], []    # each stroke: a list of (x, y) canvas points, and its pen width
        self.drawing, self.last_update = False, 0.0
        self.x28, self.report, self.predictions = None, None, {}
        self.drawings_path, self.rng = drawings_path, np.random.default_rng(seed)
        self.target, self.round, self.saved = None, [], None   # prompted digit, the rest of its round, counts (10,)

        # Shown at 1:1, never stretched to the page width. The border goes on a box around the canvas: on the canvas
        # itself it would take 2 px of the 280 (border-box sizing) and skew the mouse by up to 2 px.
        self.canvas = Canvas(width=size, height=size, layout=_fixed(f"{size}px"))
        self.canvas.layout.height = f"{size}px"
        # Fixed widths under the canvas: the row fits the canvas, and the slider keeps its track whatever the
        # panel on the right shows (it used to shrink to its handle when warnings widened that panel).
        self.pen = W.IntSlider(pen_width, 4, 40, description="pen", readout=False, layout=_fixed("150px"),
                               style={"description_width": "30px"})
        self.undo_button, self.clear_button = (W.Button(description=d, layout=_fixed("58px"))
                                               for d in ("Undo", "Clear"))
        self.pipeline = W.ToggleButtons(options=list(PIPELINES), value="MNIST-style", description="input:",
                                        style={"description_width": "40px", "button_width": "110px"})
        self.mode = W.ToggleButtons(options=["predict", "collect"], value="collect" if collect else "predict",
                                    description="mode:", style={"description_width": "40px", "button_width": "110px"},
                                    tooltips=["show what the models read", "save your drawings, one prompted digit at a time"])
        self.prompt, self.counts, self.message = W.HTML(), W.HTML(), W.HTML()
        self.prompt.add_class("npnet-prompt")
        self.counts.add_class("npnet-counts")
        self.message.add_class("npnet-message")
        self.save_button = W.Button(description="Save", button_style="success", layout=_fixed("80px"))
        self.skip_button = W.Button(description="Skip", layout=_fixed("80px"))
        self.device = W.ToggleButtons(options=["mouse", "pen", "touch"], description="device:",
                                      style={"description_width": "50px", "button_width": "62px"})
        self.status = W.HTML()
        self.status.add_class("npnet-status")
        self.bars, self.diagnostics = W.HTML(), W.HTML()
        self.tensor = W.Image(format="png", width=140, height=140, layout=W.Layout(border="1px solid #888"))
        self.look = W.ToggleButton(inside, description="look inside", icon="search", layout=_fixed("120px"),
                                   tooltip="what each layer sees, why this answer, what it resembles")
        self.inside = InsidePanel(models, training_set)     # its own module: the pad only shows it and feeds it

        self.canvas.on_mouse_down(self.pen_down)
        self.canvas.on_mouse_move(self.pen_move)
        self.canvas.on_mouse_up(self.pen_up)
        self.canvas.on_mouse_out(self.pen_up)
        self.canvas.on_touch_start(lambda touches: touches and self.pen_down(*touches[0], device="touch"))
        self.canvas.on_touch_move(lambda touches: touches and self.pen_move(*touches[0]))
        self.canvas.on_touch_end(lambda touches: self.pen_up())
        self.canvas.on_touch_cancel(lambda touches: self.pen_up())
        self.canvas.on_client_ready(self.redraw)
        self.undo_button.on_click(lambda _: self.undo())
        self.clear_button.on_click(lambda _: self.clear())
        self.pipeline.observe(lambda _: self.update(), names="value")
        self.save_button.on_click(lambda _: self.save())
        self.skip_button.on_click(lambda _: self.skip())
        self.mode.observe(lambda _: self._show_mode(), names="value")
        self.look.observe(lambda _: self.update(), names="value")

        self.collect_box = W.VBox([self.prompt, W.HBox([self.save_button, self.skip_button]), self.device,
                                   self.counts, self.message])
        frame = W.Box([self.canvas], layout=W.Layout(border="1px solid #888", align_self="flex-start"))
        left = W.VBox([frame, W.HBox([self.pen, self.undo_button, self.clear_button]), self.pipeline,
                       self.mode, self.look, self.collect_box], layout=_fixed(f"{size + 8}px"))
        self.about = W.HTML(about)                     # which models these are, and how good on MNIST
        self.about.add_class("npnet-about")
        right = W.VBox([self.status, self.bars, self.about,
                        W.HBox([W.VBox([W.HTML("<b>what the network sees</b> (28×28)"), self.tensor]),
                                W.VBox([W.HTML("<b>diagnostics</b>"), self.diagnostics])])],
                       layout=W.Layout(flex="1 1 auto", min_width="0", margin="0 0 0 16px"))
        self.widget = W.VBox([W.HBox([left, right]), self.inside.widget])
        self.widget.add_class("npnet-sketchpad")
        self._show_mode()
        self.redraw()
        self.update()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    # ---- pen events: mouse, pen and touch all end up here ----
    def pen_down(self, x, y, device=None):
        """Start a stroke at canvas point (x, y); device "touch" when it came from a touch screen."""
        if device == "touch" or self.device.value == "touch":
            self.device.value = device or "mouse"      # touch events mean touch; mouse events, a mouse or pen
        if not (math.isfinite(x) and math.isfinite(y)):
            return                                     # not a point on the canvas: no stroke starts
        self.drawing = True
        self.strokes.append([(float(x), float(y))])
        self.widths.append(self.pen.value)
        self.canvas.line_width = self.pen.value
        self.canvas.fill_style = INK
        self.canvas.fill_circle(x, y, self.pen.value / 2)

    def pen_move(self, x, y):
        """Extend the current stroke to (x, y), and predict if the last prediction is older than throttle."""
        if not (self.drawing and math.isfinite(x) and math.isfinite(y)):
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
        return D.render_strokes(self.strokes, self.widths, (self.size, self.size))

    # ---- collect mode: prompt, Save, Skip, counts ----
    def record(self, label):
        """What is drawn now, as a drawing with this label: -> npnet.drawings.Drawing."""
        return D.Drawing([np.asarray(s, np.float64) for s in self.strokes], [float(w) for w in self.widths],
                         int(label), (self.size, self.size), self.device.value, D.now())

    def replay(self, drawing):
        """Show a saved drawing on the pad, exactly as it was drawn, and predict it."""
        if tuple(drawing.canvas) != (self.size, self.size):
            raise D.DrawingError(f"the drawing is {drawing.canvas[0]}x{drawing.canvas[1]}, this pad {self.size}x{self.size}")
        self.strokes = [[(float(x), float(y)) for x, y in s] for s in drawing.strokes]
        self.widths = list(drawing.widths)
        self.redraw()
        self.update()

    def next_prompt(self):
        """Prompt for the next digit of a shuffled round of 0-9."""
        if not self.round:
            self.round = [int(d) for d in self.rng.permutation(10)]
        self.target = self.round.pop(0)
        self.prompt.value = (f"<h3 style='margin:4px 0'>draw a <span class='npnet-target'>{self.target}</span>"
                             f"</h3>")

    def save(self):
        """Append what is drawn, labelled with the prompted digit, then clear and prompt again: -> the Drawing or None."""
        path = Path(self.drawings_path or D.default_path())
        try:
            if self.target is None:
                raise D.DrawingError("switch the mode to collect first: Save stores the prompted digit")
            if not self.strokes:
                raise P.EmptyCanvas("the canvas is blank")
            P.mnist_style(self.image())                    # a stray dot is not worth keeping
            drawing = self.record(self.target)
            D.append_drawing(drawing, path)
        except (P.EmptyCanvas, D.DrawingError, OSError) as e:   # the strokes stay on the canvas: nothing is lost
            self._say(f"not saved: {e}", error=True)
            return None
        self.saved[drawing.label] += 1
        self.clear()
        self.next_prompt()
        self._show_counts()
        self._say(f"saved your {drawing.label}: {int(self.saved.sum())} saved so far, in {path}")
        return drawing

    def skip(self):
        """Clear the canvas and prompt for the next digit, saving nothing."""
        self._say(f"skipped the {self.target}")
        self.clear()
        self.next_prompt()

    def _show_mode(self):
        collecting = self.mode.value == "collect"
        self.collect_box.layout.display = "flex" if collecting else "none"
        if collecting and self.saved is None:          # counts so far, read once from the file
            try:
                drawings, problems = D.read_drawings(self.drawings_path)
            except (D.DrawingError, OSError) as e:      # the whole file unreadable: say so, count from 0
                drawings, problems = [], []
                self._say(f"{e}; the counts start from 0", error=True)
            self.saved = np.bincount([d.label for d in drawings if not d.generated], minlength=10)
            if problems:
                self._say(f"{len(problems)} damaged line(s) in the drawings file were skipped and are not "
                          f"counted, e.g. line {problems[0][0]}: {problems[0][1]}", error=True)
            self._show_counts()
        if collecting and self.target is None:
            self.next_prompt()

    def _show_counts(self):
        cells = "".join(f"<td style='padding:0 4px;text-align:center'>{d}<br><span class='npnet-count' "
                        f"data-digit='{d}'>{c}</span></td>" for d, c in enumerate(self.saved))
        self.counts.value = (f"<div style='font-size:12px'>saved so far ({int(self.saved.sum())}):</div>"
                             f"<table style='font-size:12px'><tr>{cells}</tr></table>")

    def _state(self):
        """The status line's attributes: what it was computed from, for a test (or a screen reader) to wait on."""
        return (f"style='margin:4px 0' data-strokes='{len(self.strokes)}' "
                f"data-pen='{'down' if self.drawing else 'up'}'")

    def _say(self, text, error=False):
        color = "#b00020" if error else "#2a7a2a"
        self.message.value = f"<div style='font-size:12px;color:{color};overflow-wrap:anywhere'>{html.escape(text)}</div>"

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
            self.bars.value = self.diagnostics.value = ""
            self.tensor.value = _png(np.zeros((28, 28)))
            self.status.value = f"<h3 {self._state()}>{html.escape(message)}</h3>"
            self._show_inside(message)
            return
        probs = {name: M.predict_proba(m, normalize(self.x28[None], stats))[0]
                 for name, (m, stats) in self.models.items()}
        self.predictions = {name: (int(p.argmax()), float(p.max())) for name, p in probs.items()}
        self.report = P.diagnose(self.x28)
        self.bars.value = _bars(probs)
        self.tensor.value = _png(self.x28)
        self.diagnostics.value = _diagnostics(self.report)
        self._show_inside()
        self.status.value = f"<h3 {self._state()}>prediction: " + " · ".join(   # last: once it shows, all is shown
            f"<span class='npnet-pred' data-model='{html.escape(n)}'>{d}</span> ({p:.1%}"
            f"{', ' + html.escape(n) if len(self.predictions) > 1 else ''})"
            for n, (d, p) in self.predictions.items()) + "</h3>"

    def _show_inside(self, blank=None):
        """The inside panel, when it is on: for the drawing just read, or saying why there is none."""
        self.inside.widget.layout.display = "flex" if self.look.value else "none"
        if self.look.value and blank:
            self.inside.blank(blank)
        elif self.look.value:
            self.inside.show(self.x28)


def about_models(info):
    """One line naming each model's file and its MNIST test accuracy, the best one marked: HTML."""
    scored = {name: i["test_acc"] for name, i in info.items() if i["test_acc"] is not None and name != "tuned MLP"}
    best = max(scored, key=scored.get) if scored else None
    parts = [f"{'<b>' if name == best else ''}{html.escape(name)}{' (best)</b>' if name == best else ''}: "
             f"<code>{html.escape(i['path'].name)}</code>"
             + (f", {i['test_acc']:.2%} on MNIST's test set" if i["test_acc"] is not None else "")
             for name, i in info.items()]
    return "<div style='font-size:12px;color:#555;margin:2px 0 6px'>models: " + " · ".join(parts) + "</div>"


def app(collect=False, inside=False):
    """The sketchpad with every trained model, as shown by notebook 06 and `make demo`; collect starts in collect mode,
    inside with the "look inside" panel on."""
    P.mnist_reference()  # load MNIST's diagnostics once, before the first stroke
    models, info = load_models(with_info=True)
    return Sketchpad(models, collect=collect, about=about_models(info), inside=inside)
