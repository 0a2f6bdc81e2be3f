"""Benchmark: the sketchpad's live update by part, with the "look inside" panel off and on, for the MLP and the CNN.

    python benchmarks/inside_panel.py            # 10 generated digits, 5 updates of each, per setting
    python benchmarks/inside_panel.py --quick    # 2 digits, 2 updates each, 2,000 training digits: times nothing

bench.py runs it as its last section. The pad holds every shipped model, as the app does; an update renders the
strokes, preprocesses them, runs every model, diagnoses the tensor and builds the displays, as notebook 06 times it,
and with the panel on it also computes and draws the panel for the model picked there. Each part is timed on its own
after the update (the panel's parts inside it); the update itself is timed whole. Times are wall-clock medians in
ms, on one BLAS thread, as the pad runs. The panel's one-off cost (MNIST's training digits through the model and
indexed, with no cache file) and the "change its mind" button are timed too.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 25          # the target: median update <= 25 ms with the panel on, on 2 cores
PAD_PARTS = ["render the strokes", "preprocess", "run every model", "diagnose", "build the displays"]


def put(pad, digit, rng):
    """A generated digit on the pad, as if drawn: its strokes and pen width."""
    from npnet import strokes as S

    strokes, pen_width = S.digit_strokes(digit, rng)
    pad.strokes = [[(float(x), float(y)) for x, y in s] for s in strokes]
    pad.widths = [int(round(pen_width))] * len(strokes)


def time_updates(pad, digits, repeats, seed=0):
    """Median ms of pad.update() and of each part over digits x repeats updates: -> (update_ms, {part: ms})."""
    from npnet import model as M
    from npnet import preprocess as P
    from npnet.data import normalize
    from npnet.sketchpad import BLAS, PIPELINES, _bars, _diagnostics, _png

    def timed(part, fn):
        t0 = time.perf_counter()
        out = fn()
        parts.setdefault(part, []).append(time.perf_counter() - t0)
        return out

    rng, updates, parts = np.random.default_rng(seed), [], {}
    for k in range(digits):
        put(pad, k % 10, rng)
        pad.update()                                          # warm-up: the first look at a drawing
        for _ in range(repeats):
            t0 = time.perf_counter()
            pad.update()
            updates.append(time.perf_counter() - t0)
            with BLAS.limit(limits=1, user_api="blas"):
                img = timed("render the strokes", pad.image)
                x28 = timed("preprocess", lambda: PIPELINES[pad.pipeline.value](img))
                probs = timed("run every model", lambda: {n: M.predict_proba(m, normalize(x28[None], st))[0]
                                                         for n, (m, st) in pad.models.items()})
                report = timed("diagnose", lambda: P.diagnose(x28))
                timed("build the displays", lambda: (_bars(probs), _png(x28), _diagnostics(report)))
            if pad.look.value:
                for part, ms in pad.inside.times.items():
                    parts.setdefault("panel: " + part, []).append(ms / 1000)
    return 1000 * float(np.median(updates)), {p: 1000 * float(np.median(t)) for p, t in parts.items()}


def run(quick=False):
    """Every setting measured: -> (markdown lines, raw numbers as a dict)."""
    from npnet import inside as I
    from npnet.sketchpad import BLAS, Sketchpad, load_models

    models = load_models()
    digits, repeats, n = (2, 2, 2_000) if quick else (10, 5, 50_000)
    training_set = I.TrainingSet(cache_dir=None, n=n)        # no cache file: the one-off cost is measured in full
    pad = Sketchpad(models, throttle=1e9, training_set=training_set)
    raw = {"digits": digits, "repeats": repeats, "training_digits": n, "settings": {}, "first_look_s": {},
           "change_its_mind_ms": {}}
    with BLAS.limit(limits=1, user_api="blas"):
        t0 = time.perf_counter()
        training_set.load()
        raw["load_and_index_pixels_s"] = time.perf_counter() - t0
    for name in ("MLP", "CNN"):
        if name not in models:
            continue
        pad.look.value = False                                # hidden: picking the model computes nothing yet
        pad.inside.model.value = name
        for look in (False, True):
            if look and name not in raw["first_look_s"]:
                put(pad, 3, np.random.default_rng(0))
                t0 = time.perf_counter()
                pad.look.value = True                         # the first look with this model: its features
                raw["first_look_s"][name] = time.perf_counter() - t0
            pad.look.value = look
            update_ms, parts = time_updates(pad, digits, repeats)
            raw["settings"][f"{name}, panel {'on' if look else 'off'}"] = {"update_ms": update_ms, "parts_ms": parts}
        cm = []
        for target in range(10 if not quick else 2):
            t0 = time.perf_counter()
            pad.inside.target.value = target
            pad.inside.change_its_mind()
            cm.append(time.perf_counter() - t0)
        raw["change_its_mind_ms"][name] = 1000 * float(np.median(cm))
    return report(raw, quick), raw


def report(raw, quick):
    settings = raw["settings"]
    names = list(settings)
    parts = PAD_PARTS + sorted({p for s in settings.values() for p in s["parts_ms"] if p.startswith("panel")},
                               key=lambda p: ["panel: what each layer sees", "panel: why this answer",
                                              "panel: what it resembles", "panel: draw the views"].index(p))
    note = " (quick mode: these say nothing)" if quick else ""
    out = ["", "## The sketchpad's live update, with the inside panel off and on",
           f"Median ms over {raw['digits']} generated digits × {raw['repeats']} updates, one BLAS thread, every "
           f"shipped model on the pad; the panel shows the model named{note}.", "",
           "|  | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for part in parts:
        out.append(f"| {part} | " + " | ".join(f"{settings[n]['parts_ms'][part]:.1f}" if part in settings[n]["parts_ms"]
                                              else "" for n in names) + " |")
    out.append("| **one update (median)** | " + " | ".join(f"**{settings[n]['update_ms']:.1f}**" for n in names) + " |")
    out += ["", "| the panel, once and on the button | " + " | ".join(raw["first_look_s"]) + " |",
            "|---|" + "---:|" * len(raw["first_look_s"]),
            f"| first look: MNIST's {raw['training_digits']:,} training digits through the model and indexed, s | "
            + " | ".join(f"{s:.1f}" for s in raw["first_look_s"].values()) + " |",
            "| change its mind (median over target digits), ms | "
            + " | ".join(f"{raw['change_its_mind_ms'][n]:.0f}" for n in raw["first_look_s"]) + " |",
            f"\nloading and indexing the training digits' pixels (once for all models): "
            f"{raw['load_and_index_pixels_s']:.1f} s", "", "| target | measured | met |", "|---|---|---|"]
    for n in names:
        if n.endswith("on"):
            ms = settings[n]["update_ms"]
            out.append(f"| median update <= {TARGET_MS} ms with the panel on ({n.split(',')[0]}) | {ms:.1f} ms | "
                       f"{'yes' if ms <= TARGET_MS else 'no'}{note} |")
    return out + [""]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 digits, 2 updates each, 2,000 training digits")
    p.add_argument("--json", type=Path, help="also write every raw number here")
    args = p.parse_args(argv)
    lines, raw = run(args.quick)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
