"""The learner's own drawings: saved as JSON lines, loaded back, replayed exactly as the pad saw them, and measured."""

import json
import os
import reprlib
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from . import preprocess as P
from .strokes import digit_strokes, render

ROOT = Path(__file__).resolve().parent.parent
PATH = ROOT / "data" / "drawings" / "drawings.jsonl"   # git-ignored: the drawings stay on the learner's machine
ENV = "NPNET_DRAWINGS"                                  # set it to a file path to save and load elsewhere (tests)
DEVICES = ("mouse", "pen", "touch", "generated")        # "generated": a stand-in from npnet.strokes, not a person
MIN_DRAWINGS = 30                                       # fewer than this, and the course uses generated stand-ins
TUNED_MLP = "mlp_tuned"                                 # recipes.model_path(TUNED_MLP): the MLP fine-tuned on drawings
MAX_LINE = 4_000_000                                    # bytes: a drawing is ~10 kB; a longer line is damage
MAX_COORD = 100_000                                     # pixels: any point or width beyond it is damage
MAX_REPORTED = 10                                       # damaged lines listed one by one; the rest are counted

# The pipelines a drawing is measured with: no preprocessing, the original project's final app, and the course's fix.
PIPELINES = {
    "naive": P.naive,                                   # the whole canvas resized
    "original app": P.original_app,                     # crop, square, 20x20, the box centred at 14
    "MNIST-style": P.mnist_style,                       # 20x20, the centre of mass at 14.5, stroke thickness
}


class DrawingError(ValueError):
    """A drawing record that cannot be saved or read: the message says which field and why."""


@dataclass(eq=False)                    # its strokes are arrays: compare fields, not records
class Drawing:
    """One drawing as the pad recorded it: strokes [(K, 2) float64 (x, y) canvas points], one pen width per stroke."""

    strokes: list
    widths: list
    label: int
    canvas: tuple = (280, 280)          # (width, height) in canvas pixels
    device: str = "mouse"
    time: str = ""                      # ISO 8601, UTC
    generated: bool = False
    line: int = field(default=0, compare=False)   # where it was read from: 1-based line of the file, 0 if not read

    def image(self):
        """The strokes rendered as the pad's Sketchpad.image() does: -> (height, width) float32 in [0, 1]."""
        return render_strokes(self.strokes, self.widths, self.canvas)

    def to_json(self):
        """The record as one line of JSON (no newline); points keep every digit, so a replay is exact."""
        return json.dumps({"label": self.label, "strokes": [np.asarray(s, float).tolist() for s in self.strokes],
                           "widths": [float(w) for w in self.widths], "canvas": list(self.canvas),
                           "device": self.device, "time": self.time, "generated": self.generated},
                          separators=(",", ":"), allow_nan=False)


def render_strokes(strokes, widths, canvas=(280, 280)):
    """Each stroke with its own pen width, combined by maximum: -> (height, width) float32 in [0, 1].

    This is the one renderer: Sketchpad.image() calls it, so a saved drawing replays to the same pixels.
    """
    w, h = canvas
    return render(strokes, max(w, h), list(widths))[:h, :w]     # strokes.render draws on a square; crop after


def now():
    """The time a drawing is saved, as stored: ISO 8601 in UTC, to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def default_path():
    """Where drawings are saved: $NPNET_DRAWINGS if set, else data/drawings/drawings.jsonl."""
    return Path(os.environ.get(ENV) or PATH)


_REPR = reprlib.Repr()          # a damaged line's values can be megabytes long or nested 900 deep: show their start
_REPR.maxlevel, _REPR.maxlist, _REPR.maxstring, _REPR.maxlong, _REPR.maxother = 3, 4, 40, 40, 40
_short = _REPR.repr


def _number(v, what):
    """v if it is an int or float within MAX_COORD of 0, else DrawingError (NaN, inf and 400-digit integers too)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not -MAX_COORD <= v <= MAX_COORD:
        raise DrawingError(f"{what} must be a number from {-MAX_COORD:,} to {MAX_COORD:,}, got {_short(v)}")
    return v


def validate(record):
    """A dict as read from JSON -> a Drawing, or DrawingError naming the bad field."""
    if not isinstance(record, dict):
        raise DrawingError(f"a drawing is a JSON object, got {type(record).__name__}")
    missing = {"label", "strokes", "widths", "canvas"} - record.keys()
    if missing:
        raise DrawingError(f"missing field(s): {', '.join(sorted(missing))}")
    label = record["label"]
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label <= 9:
        raise DrawingError(f"label must be a digit 0-9, got {_short(label)}")
    canvas = record["canvas"]
    if (not isinstance(canvas, (list, tuple)) or len(canvas) != 2
            or not all(isinstance(c, int) and not isinstance(c, bool) and 8 <= c <= 4096 for c in canvas)):
        raise DrawingError(f"canvas must be [width, height], whole pixels from 8 to 4096, got {_short(canvas)}")
    strokes, widths = record["strokes"], record["widths"]
    if not isinstance(strokes, list) or not strokes:
        raise DrawingError("strokes must be a non-empty list of strokes")
    if not isinstance(widths, list) or len(widths) != len(strokes):
        raise DrawingError(f"widths must give one pen width per stroke: {len(strokes)} strokes, "
                           f"widths {_short(widths)}")
    for i, w in enumerate(widths):
        if not 0 < _number(w, f"widths[{i}]") <= 200:
            raise DrawingError(f"widths[{i}] must be from 0 to 200 pixels, got {_short(w)}")
    arrays = []
    for i, stroke in enumerate(strokes):
        if not isinstance(stroke, list) or not stroke:
            raise DrawingError(f"strokes[{i}] must be a non-empty list of [x, y] points")
        for j, point in enumerate(stroke):
            if not isinstance(point, (list, tuple)) or len(point) != 2:
                raise DrawingError(f"strokes[{i}][{j}] must be an [x, y] point, got {_short(point)}")
            for v in point:
                _number(v, f"strokes[{i}][{j}]")
        arrays.append(np.asarray(stroke, np.float64).reshape(-1, 2))
    device = record.get("device", "mouse")
    if device not in DEVICES:
        raise DrawingError(f"device must be one of {', '.join(DEVICES)}, got {_short(device)}")
    when, generated = record.get("time", ""), record.get("generated", False)
    if not isinstance(when, str) or not isinstance(generated, bool):
        raise DrawingError("time must be a string and generated true or false")
    return Drawing(arrays, [float(w) for w in widths], label, tuple(canvas), device, when, generated)


def append_drawing(drawing, path=None):
    """Append one drawing as one JSON line, durably (flush and fsync); earlier lines are never rewritten.

    drawing is a Drawing or a dict in its JSON form. Returns the path written. If the write fails part-way
    (a full disk), the partial line is cut off again and the error says so; a crash can leave at most that
    one partial line, which load_drawings() reports and skips.
    """
    record = drawing if isinstance(drawing, Drawing) else validate(drawing)
    try:
        line = record.to_json()
    except (ValueError, TypeError, OverflowError) as e:
        raise DrawingError(f"the drawing cannot be written as JSON: {e}") from None
    validate(json.loads(line))                             # refuse a bad record before touching the file
    data = (line + "\n").encode()
    path = Path(path or default_path())
    new_dir = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size
        if start and os.pread(fd, 1, start - 1) != b"\n":
            data = b"\n" + data                            # a crash left a partial line: start a fresh one
        written = 0
        try:
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError as e:
            try:
                if os.fstat(fd).st_size == start + written:   # only our bytes came after start (no other writer)
                    os.ftruncate(fd, start)                # take back our partial line; earlier ones are intact
                    os.fsync(fd)
            except OSError:
                pass
            raise OSError(e.errno, f"could not save the drawing to {path}: {e.strerror or e}; "
                                   f"the drawings saved before are unchanged") from e
    finally:
        os.close(fd)
    if new_dir or start == 0:
        _fsync_dir(path.parent)                            # the new file's name is durable too
    return path


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _lines(f):
    """Each line of a binary file as (its length in bytes, its bytes or None if over MAX_LINE), never holding more
    than MAX_LINE bytes of it."""
    while raw := f.readline(MAX_LINE + 1):
        size = len(raw)
        if size > MAX_LINE:
            while not raw.endswith(b"\n") and (raw := f.readline(1 << 20)):   # skip the rest of the line
                size += len(raw)
            raw = None
        yield size, raw


def _record(raw):
    """One line's bytes -> the JSON value, or DrawingError saying why not."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DrawingError(f"not valid JSON ({e}), e.g. a save cut short") from None
    except ValueError as e:                                # an integer of over 4,300 digits
        raise DrawingError(f"not a drawing: {e}".split("; use sys.")[0]) from None
    except RecursionError:
        raise DrawingError("not a drawing: lists or objects nested too deeply") from None


def read_drawings(path=None):
    """Every readable drawing in the file, and what was wrong with the rest: -> ([Drawing], [(line, message)]).

    A file that cannot be read at all (a directory, no permission) is a DrawingError naming it and the cause.
    """
    path = Path(path or default_path())
    if not path.exists():
        return [], []
    if not path.is_file():
        raise DrawingError(f"{path} is a {'directory' if path.is_dir() else 'special file'}, not a drawings file")
    drawings, problems = [], []
    try:
        with open(path, "rb") as f:
            for number, (size, raw) in enumerate(_lines(f), start=1):
                if raw is not None and not raw.strip():
                    continue
                try:
                    if raw is None:
                        raise DrawingError(f"line is {size:,} bytes, longer than any drawing")
                    drawing = validate(_record(raw))
                except DrawingError as e:
                    problems.append((number, str(e)))
                    continue
                drawing.line = number
                drawings.append(drawing)
    except OSError as e:
        raise DrawingError(f"{path}: cannot read the drawings file ({e.strerror or e})") from None
    return drawings, problems


def summary(problems):
    """The first MAX_REPORTED problems as 'line N: skipped, why', and a count of the rest: -> [str]."""
    lines = [f"line {number}: skipped, {message}" for number, message in problems[:MAX_REPORTED]]
    if len(problems) > MAX_REPORTED:
        lines.append(f"... and {len(problems) - MAX_REPORTED:,} more damaged line(s), skipped")
    return lines


def load_drawings(path=None):
    """The drawings in the file, oldest first: -> [Drawing]; each damaged line is reported in a warning and skipped."""
    path = Path(path or default_path())
    drawings, problems = read_drawings(path)
    for line in summary(problems):
        warnings.warn(f"{path}, {line}; the other {len(drawings)} drawing(s) are loaded", stacklevel=2)
    return drawings


def generated_drawings(n, rng, size=280):
    """n stand-ins from npnet.strokes in the same record format, marked generated, labels balanced: -> [Drawing]."""
    labels = rng.permutation(np.arange(n) % 10)
    start = datetime(2000, 1, 1, tzinfo=timezone.utc)      # a fixed clock: the time order is the list order
    out = []
    for i, label in enumerate(labels):
        strokes, pen_width = digit_strokes(int(label), rng, size)
        width = float(round(pen_width))                    # the pad's slider gives whole pixels
        out.append(Drawing(strokes, [width] * len(strokes), int(label), (size, size), "generated",
                           (start + timedelta(seconds=i)).isoformat(timespec="milliseconds"), True))
    return out


def drawings_or_stand_ins(path=None, minimum=MIN_DRAWINGS, rng=None):
    """The learner's drawings if there are at least minimum, else 100 generated stand-ins: -> ([Drawing], generated)."""
    real = [d for d in load_drawings(path) if not d.generated]
    if len(real) >= minimum:
        return real, False
    return generated_drawings(100, rng if rng is not None else np.random.default_rng(0)), True


def time_split(drawings, fraction=0.7):
    """The first fraction in time order, and the rest: -> ([Drawing], [Drawing])."""
    ordered = sorted(drawings, key=lambda d: (d.time, d.line))
    k = int(round(fraction * len(ordered)))
    return ordered[:k], ordered[k:]


def tensors(drawings, pipeline="MNIST-style"):
    """Each drawing rendered and preprocessed: -> X (M, 28, 28) float32, y (M,) int64, kept (M,) indices.

    A drawing the pipeline cannot read (P.EmptyCanvas, e.g. a lone dot) is left out; kept says which stayed.
    """
    f = PIPELINES[pipeline] if isinstance(pipeline, str) else pipeline
    X, kept = [], []
    for i, d in enumerate(drawings):
        try:
            X.append(f(d.image()))
            kept.append(i)
        except P.EmptyCanvas:
            pass
    y = np.array([drawings[i].label for i in kept], np.int64)
    return np.array(X, np.float32).reshape(-1, 28, 28), y, np.array(kept, np.int64)


# The course's models, as (name shown, recipe file): the plain ones first, as the notebooks built them.
MODELS = (("MLP", "mlp"), ("CNN", "cnn"), ("MLP + elastic", "mlp_elastic"), ("CNN + elastic", "cnn_elastic"),
          ("tuned MLP", TUNED_MLP))


def load_models(with_info=False):
    """The course's trained models present in models/: name -> (model, norm_stats), in MODELS' order; the MLP is
    trained first if missing. with_info: also name -> {"path", "test_acc" (as its training run recorded it)}."""
    from . import model as M
    from . import recipes

    recipes.load_or_train("mlp")
    models, info = {}, {}
    for name, key in MODELS:
        path = recipes.model_path(key)
        if path.exists():
            model, stats, header = M.load(path)
            models[name] = (model, stats)
            info[name] = {"path": path, "test_acc": header.get("test_acc")}
    return (models, info) if with_info else models


def best_model():
    """The shipped model with the best test accuracy its training run recorded; the tuned MLP, tuned to one
    person's drawings, is not a candidate: -> (name, path, model, norm_stats, header)."""
    from . import model as M
    from . import recipes

    best = None
    for name, key in MODELS:
        path = recipes.model_path(key)
        if key == TUNED_MLP or not path.exists():
            continue
        model, stats, header = M.load(path)
        if best is None or (header.get("test_acc") or 0) > (best[4].get("test_acc") or 0):
            best = (name, path, model, stats, header)
    if best is None:                                    # nothing trained yet: notebook 02's MLP, trained now
        model, stats = recipes.load_or_train("mlp")
        best = ("MLP", recipes.model_path("mlp"), model, stats, M.load(recipes.model_path("mlp"))[2])
    return best


def evaluate_drawings(path=None, models=None):
    """Every model on every pipeline over the drawings in path: -> the report as printable text.

    models maps a name to (model, norm_stats); by default load_models(). For each pair the report gives the
    accuracy, the count, and the confusion pairs (true -> predicted, most frequent first).
    """
    from .data import normalize
    from .model import predict

    path = Path(path or default_path())
    drawings, problems = read_drawings(path)
    lines = [f"{len(drawings)} drawing(s) in {path}"]
    lines += ["  " + line for line in summary(problems)]
    if not drawings:
        lines.append("nothing to evaluate: save drawings in the sketchpad's collect mode first")
        return "\n".join(lines)
    n_generated = sum(d.generated for d in drawings)
    if n_generated:
        lines.append(f"  {n_generated} of them GENERATED stand-ins (npnet.strokes), not drawn by a person")
    counts = np.bincount([d.label for d in drawings], minlength=10)
    lines.append("  per digit: " + " ".join(f"{k}:{c}" for k, c in enumerate(counts)))
    models = models if models is not None else load_models()
    lines += ["", f"{'model':<10} {'pipeline':<13} {'accuracy':>8} {'right':>9}  confusions (true→predicted ×count)"]
    inputs = {pipeline: tensors(drawings, pipeline) for pipeline in PIPELINES}    # each X (M, 28, 28), y, kept
    for name, (model, stats) in models.items():
        for pipeline, (X, y, kept) in inputs.items():
            y_pred = predict(model, normalize(X, stats)) if len(y) else np.zeros(0, np.int64)
            right = int((y_pred == y).sum())
            pairs = {}
            for t, p in zip(y[y_pred != y], y_pred[y_pred != y]):
                pairs[(int(t), int(p))] = pairs.get((int(t), int(p)), 0) + 1
            shown = ", ".join(f"{t}→{p} ×{c}" for (t, p), c in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])))
            unread = len(drawings) - len(kept)
            if unread:
                shown = f"{unread} unreadable (no digit found); " + shown
            lines.append(f"{name:<10} {pipeline:<13} {right / len(drawings):>8.1%} {right:>4}/{len(drawings):<4}  "
                         f"{shown or 'none'}")
    return "\n".join(lines)
