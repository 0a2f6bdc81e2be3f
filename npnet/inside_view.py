"""The sketchpad's "look inside" panel: widgets that show, for one model, what npnet.inside computes from the drawing."""

import html
import io
import time

import ipywidgets as W
import numpy as np
from threadpoolctl import threadpool_limits

from . import inside as I

MODEL_NOTE = {"mlp": ("<b>what each layer sees</b>: each hidden layer's units as a heat map (dark off, bright on; "
                      "{sizes} units, the first layer on top; the grid only lays them out: neighbours are unrelated "
                      "units), then the most active first-layer units' input "
                      "weights as 28×28 templates (red: ink there turns the unit on, blue: off)"),
              "cnn": ("<b>what each layer sees</b>: the first conv layer's 32 feature maps (24×24, after ReLU), "
                      "then the second's 8 strongest maps for this drawing (8×8)")}


def _lut(name):
    import matplotlib

    return (matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)   # (256, 3)


LUTS = {}


def colour(a, how):
    """Values as RGB (..., 3) uint8. how: "signed" red-white-blue around 0, "heat" dark to bright from 0 to the
    max, "grey" 0 to 1 as black to white (a digit as the network reads it)."""
    if how == "grey":
        return np.repeat((np.clip(a, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=-1)
    name = "RdBu_r" if how == "signed" else "magma"
    if name not in LUTS:
        LUTS[name] = _lut(name)
    a = np.asarray(a, np.float32)
    top = float(np.nanmax(np.abs(a))) or 1.0
    v = np.nan_to_num((a / top + 1) / 2 if how == "signed" else np.clip(a / top, 0, 1))
    rgb = LUTS[name][np.round(v * 255).astype(np.uint8)]
    rgb[np.isnan(a)] = 255                                        # no value: white, like the gaps
    return rgb


def tiles(arrays, how, each=False):
    """(n, h, w) values as (n, h, w, 3) RGB; each: every tile on its own scale rather than one shared by all."""
    return np.stack([colour(a, how) for a in arrays]) if each else colour(np.asarray(arrays), how)


def grid(rgb, cols, gap=1):
    """RGB tiles (n, h, w, 3) as one cols-wide grid on white, 1 px apart: -> (BMP bytes, width, height). The browser
    scales it up (put_image()), crisply: sending every pixel once keeps each update's images small and quick to make,
    and BMP, uncompressed, is made about 15 times faster than PNG (0.25 ms against 4 ms for the CNN's 32 maps)."""
    from PIL import Image

    n, h, w, _ = rgb.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + gap) - gap, min(n, cols) * (w + gap) - gap, 3), 255, np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = rgb[k]
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="BMP")
    return buf.getvalue(), out.shape[1], out.shape[0]


def put_image(image, rgb, cols, scale):
    """Put the grid of RGB tiles (n, h, w, 3) into a W.Image, each pixel shown scale×scale."""
    image.value, width, height = grid(rgb, cols)
    image.width, image.height = str(width * scale), str(height * scale)


# Pixels stay square when the browser scales an image up, rather than being smoothed into a blur.
CRISP = "<style>.npnet-inside-img { image-rendering: pixelated; }</style>"


def _image(cls):
    image = W.Image(format="bmp")
    image.add_class("npnet-inside-img")
    image.add_class(cls)
    return image


def _html(cls=None):
    h = W.HTML(layout=W.Layout(max_width="460px"))
    if cls:
        h.add_class(cls)
    return h


def _small(text):
    return f"<div style='font-size:12px;line-height:1.3'>{text}</div>"


class InsidePanel:
    """For the model picked, what each layer sees, why this answer, what it resembles, and (on a button) what
    would change its mind; models maps a name to (model, norm_stats), training_set is an npnet.inside.TrainingSet.
    show(x28) refreshes it for a drawing, blank(message) says why there is nothing to show."""

    def __init__(self, models, training_set=None):
        self.models, self.training_set = models, training_set or I.TrainingSet()
        self.x28, self.result, self.times, self._keys = None, None, {}, {}
        self.model = W.Dropdown(options=list(models), description="model:", layout=W.Layout(width="210px"),
                                style={"description_width": "45px"})
        self.target = W.Dropdown(options=list(range(10)), value=8, description="make it answer",
                                 layout=W.Layout(width="170px"), style={"description_width": "initial"})
        self.change_button = W.Button(description="change its mind", button_style="warning",
                                      layout=W.Layout(width="140px"))
        self.model.add_class("npnet-inside-model")
        self.target.add_class("npnet-inside-target")
        self.status = _html("npnet-inside-status")
        self.layer_notes, self.layer_images = _html(), [_image("npnet-inside-layers"), _image("npnet-inside-layers2")]
        self.why_note, self.why_image = _html(), _image("npnet-inside-why")
        self.near_note = _html()
        self.near_images = [_image("npnet-inside-near"), _image("npnet-inside-near-pixels")]
        self.change_note, self.change_image = _html("npnet-inside-change"), _image("npnet-inside-change-img")
        self.model.observe(lambda _: self._model_changed(), names="value")
        self.target.observe(lambda _: self._forget_change(), names="value")
        self.change_button.on_click(lambda _: self.change_its_mind())
        column = lambda *children: W.VBox(list(children), layout=W.Layout(margin="0 16px 8px 0"))  # noqa: E731
        self.views = W.HBox([
            column(self.layer_notes, *self.layer_images),
            column(self.why_note, self.why_image),
            column(self.near_note, self.near_images[0], self.near_images[1]),
            column(W.HBox([self.target, self.change_button]), self.change_note, self.change_image),
        ], layout=W.Layout(flex_flow="row wrap"))
        title = W.HBox([W.HTML(CRISP + "<b>look inside</b>"), self.model], layout=W.Layout(align_items="center"))
        self.widget = W.VBox([title, self.status, self.views],
                             layout=W.Layout(border_top="1px solid #ccc", padding="6px 0"))
        self.widget.add_class("npnet-inside")
        self.blank("draw a digit")

    def _model_changed(self):
        self._forget_change()
        if self.widget.layout.display != "none":          # hidden (the pad's toggle is off): nothing to compute
            self.show(self.x28)

    def blank(self, message):
        """Nothing to look at: say why (the pad's own message: a blank or unreadable canvas), hide the views."""
        self.x28, self.result = None, None
        self.status.value = (f"<div class='npnet-inside-state' data-digit='' style='font-size:13px'>"
                             f"{html.escape(message)}: the inside views show once the pad reads a digit</div>")
        self.views.layout.display = "none"

    def show(self, x28):
        """Refresh every view for the 28×28 drawing in [0, 1] (None: keep the blank message)."""
        if x28 is None:
            return
        if self.x28 is None or not np.array_equal(x28, self.x28):
            self._forget_change()
        self.x28 = x28
        name = self.model.value
        model, stats = self.models[name]
        t = [time.perf_counter()]
        seen = I.what_layers_see(model, stats, x28, top=8 if I.is_cnn(model) else 6)
        t.append(time.perf_counter())
        why = I.why(model, stats, x28)
        t.append(time.perf_counter())
        if name not in self._keys:
            self._keys[name] = I.fingerprint(model, stats)
        key = self._keys[name]
        first = key not in self.training_set.seconds
        if first:                                       # sent at once, before the wait it announces
            self.status.value = (f"<div class='npnet-inside-state' data-digit='' style='font-size:13px'>first look "
                                 f"with the {html.escape(name)}: MNIST's {self.training_set.n:,} training digits go "
                                 f"through it once (a few seconds for an MLP, 10 to 20 s for a CNN; kept for next time)…</div>")
        near = I.resembles(model, stats, x28, self.training_set, key=key)
        t.append(time.perf_counter())
        self._show_layers(seen)
        self._show_why(name, why)
        self._show_near(near)
        t.append(time.perf_counter())
        self.times = dict(zip(["what each layer sees", "why this answer", "what it resembles", "draw the views"],
                              np.diff(t) * 1000))
        if first:                                       # the first look with this model: its features, once
            how = "read from the cache" if self.training_set.from_cache[key] else "computed"
            note = (f" · MNIST's {self.training_set.n:,} training digits through the {html.escape(name)} "
                    f"({how}) and indexed: {self.times['what it resembles'] / 1000:.1f} s, once")
        else:
            note = ""
        self.status.value = (f"<div class='npnet-inside-state' data-model='{html.escape(name)}' "
                             f"data-digit='{why['digit']}' data-runner-up='{why['runner_up']}' "
                             f"style='font-size:13px'>the {html.escape(name)} answers <b>{why['digit']}</b> "
                             f"({why['probs'][why['digit']]:.1%}), runner-up {why['runner_up']} "
                             f"({why['probs'][why['runner_up']]:.1%}){note}</div>")
        self.views.layout.display = "flex"

    def _show_layers(self, seen):
        sizes = " and ".join(f"{len(h):,}" for h in seen.get("hidden", []))
        self.layer_notes.value = _small(MODEL_NOTE[seen["kind"]].format(sizes=sizes))
        if seen["kind"] == "mlp":
            hidden = seen["hidden"]
            cols = 16 if len(hidden[0]) <= 256 else 32       # 256 units as 16×16, 128 as 8×16, 800 as 25×32
            maps = [np.pad(h, (0, -len(h) % cols), constant_values=np.nan).reshape(-1, cols) for h in hidden]
            gap = np.full((1, cols, 3), 255, np.uint8)
            rgb = np.concatenate([part for m in maps for part in (colour(m, "heat"), gap)][:-1])
            put_image(self.layer_images[0], rgb[None], 1, 6)
            put_image(self.layer_images[1], tiles(seen["templates"], "signed", each=True), 6, 2)
        else:
            put_image(self.layer_images[0], tiles(seen["maps1"].transpose(2, 0, 1), "heat"), 8, 2)
            put_image(self.layer_images[1], tiles(seen["maps2"], "heat"), 8, 4)

    def _show_why(self, name, why):
        put_image(self.why_image, tiles(why["attribution"][None], "signed"), 1, 5)
        self.why_note.value = _small(
            f"<b>why {why['digit']} and not {why['runner_up']}</b>: each pixel's ink × how much it raises "
            f"logit[{why['digit']}] − logit[{why['runner_up']}] (gradient × input, from npnet's backward; "
            f"baseline: a blank canvas). <span style='color:#b2182b'>Red</span> pushed towards {why['digit']}, "
            f"<span style='color:#2166ac'>blue</span> towards {why['runner_up']}. The gap is {why['gap']:.1f}.")

    def _show_near(self, near):
        X28 = self.training_set.X28
        parts = []
        for image, (what, (idx, labels, dists)) in zip(self.near_images, near.items()):
            put_image(image, tiles(X28[idx].reshape(-1, 28, 28), "grey"), 5, 2)
            parts.append(f"{'last hidden layer' if what == 'features' else 'pixels'}: "
                         + ", ".join(f"<b>{y}</b> ({d:.1f})" for y, d in zip(labels, dists)))
        self.near_note.value = _small("<b>what it resembles</b>: the 5 nearest of MNIST's training digits, by the "
                                      "network's last hidden layer (top) and by pixels (bottom); label (distance)"
                                      "<br>" + "<br>".join(parts))

    def _forget_change(self):
        self.result = None
        self.change_note.value = _small(f"<b>what would change its mind?</b> A small change to the 28×28 tensor "
                                        f"that makes the {html.escape(self.model.value)} answer "
                                        f"{self.target.value} (the smallest multiple of the change its gradient "
                                        f"steps find, not the smallest change possible): press the button.")
        self.change_image.value, self.change_image.layout.display = b"", "none"

    def change_its_mind(self):
        """Search for the change (npnet.inside.change_its_mind) and show it: -> its result, or None if blank."""
        if self.x28 is None:
            return None
        name, target = self.model.value, int(self.target.value)
        model, stats = self.models[name]
        with threadpool_limits(limits=1, user_api="blas"):     # one image: one BLAS thread, as the pad predicts
            r = I.change_its_mind(model, stats, self.x28, target, others=self.models)
        self.result = r
        fooled = [n for n, d in r["others"].items() if n != name and d == target]
        others = ", ".join(f"{html.escape(n)} {d}" for n, d in r["others"].items() if n != name)
        done = (f"now answers <b><span class='npnet-cf' data-target='{target}' data-answer='{r['answer']}'>"
                f"{r['answer']}</span></b>" if r["answer"] == target else
                f"still answers <span class='npnet-cf' data-target='{target}' data-answer='{r['answer']}'>"
                f"{r['answer']}</span> after {r['steps']} steps")
        self.change_note.value = _small(
            f"<b>what would change its mind?</b> The {html.escape(name)} {done}: {r['steps']} gradient steps on "
            f"the input, shrunk to the smallest multiple that still flips it: change L2 {r['l2']:.2f}, max |Δ| "
            f"{r['max_abs']:.2f} (pixel units, 0 to 1). "
            f"Drawing, changed tensor, change (red: added):<br>"
            f"The other models on the changed tensor: {others or 'none'}"
            f" ({'fooled too: ' + ', '.join(map(html.escape, fooled)) if fooled else 'none fooled'}).")
        rgb = np.concatenate([tiles([self.x28, r["x28"]], "grey"), tiles(r["delta"][None], "signed")])
        put_image(self.change_image, rgb, 3, 3)
        self.change_image.layout.display = "block"
        return r
