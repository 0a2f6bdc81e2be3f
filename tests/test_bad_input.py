"""Bad input, round three (issue 20): damaged images, drawings files and model files each give one clear line."""

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from npnet import conv as C
from npnet import layers as L
from npnet import model as M
from npnet.recipes import load_or_train, model_path

STATS = (0.13, 0.31)


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "npnet", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    """A good digit file: a dark zero on white paper."""
    load_or_train("mlp", progress=False)
    yy, xx = np.mgrid[:280, :280]
    path = tmp_path_factory.mktemp("one") / "one.png"
    ring = np.abs(np.hypot(yy - 140, (xx - 140) * 1.4) - 80) < 14
    Image.fromarray(np.where(ring, 0, 255).astype(np.uint8)).save(path)
    return path


def assert_one_error_line_and_the_rest_print(done, bad, good):
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.startswith(f"{good} ") and len(done.stdout.splitlines()) == 1
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(f"{bad} error: "), done.stderr


# ---- P29, P30: a damaged image stops the batch ----

def test_p29_a_damaged_png_is_one_error_line_and_the_batch_goes_on(one, tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (600, 600), np.uint8)).save(tmp_path / "b.png")
    data = bytearray((tmp_path / "b.png").read_bytes())
    i = data.find(b"IDAT", data.find(b"IDAT") + 4)
    data[i:i + 4] = b"xx!x"                                                 # a corrupt chunk type
    (tmp_path / "b.png").write_bytes(data)
    done = run("predict", "--model", model_path("mlp"), tmp_path / "b.png", one)
    assert_one_error_line_and_the_rest_print(done, tmp_path / "b.png", one)
    assert "broken PNG file" in done.stderr


def test_p30_a_damaged_later_frame_after_a_blank_first_one_is_one_error_line(one, tmp_path):
    blank, digit = Image.new("L", (280, 280), 255), Image.open(one).convert("L")
    blank.save(tmp_path / "two.gif", save_all=True, append_images=[digit], duration=100)
    data = bytearray((tmp_path / "two.gif").read_bytes())
    i = data.find(b"\x21\xf9\x04", data.find(b"\x21\xf9\x04") + 3)          # the second graphic-control block
    data[i + 2], data[i + 3] = 1, 0
    (tmp_path / "two.gif").write_bytes(data)
    done = run("predict", "--model", model_path("mlp"), tmp_path / "two.gif", one)
    assert_one_error_line_and_the_rest_print(done, tmp_path / "two.gif", one)
    assert "no digit: the canvas is blank" in done.stderr


# ---- M25, M26, M27: model files that save wrote, or that claim too much ----

def pool_model(size):
    return [C.Reshape((28, 28, 1)), C.MaxPool2D(size), C.Flatten(), L.Dense((28 // size) ** 2, 10)]


def test_m25_a_max_pool_too_big_for_its_argmax_is_refused_at_save_and_load(one, tmp_path, monkeypatch):
    path = M.save(tmp_path / "p16.npz", pool_model(16), STATS)             # 16 x 16 = 256 places: the largest
    done = run("predict", "--model", path, one)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    with pytest.raises(M.ModelError, match=r"p17\.npz: header field layers\[1\]\.size must be an integer from 1 to "
                                           r"16, got 17; not saved"):
        M.save(tmp_path / "p17.npz", pool_model(17), STATS)
    assert not (tmp_path / "p17.npz").exists()
    from npnet import modelfile
    monkeypatch.setitem(modelfile.LAYERS, "MaxPool2D", (C.MaxPool2D, {"size": modelfile.SIDE}))   # an older save
    M.save(tmp_path / "p17.npz", pool_model(17), STATS)
    monkeypatch.undo()
    done = run("predict", "--model", tmp_path / "p17.npz", one)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr == (f"error: {tmp_path / 'p17.npz'}: header field layers[1].size must be an integer from 1 "
                           "to 16, got 17\n")


@pytest.mark.parametrize("meta, field", [
    ({"test_acc": "99%"}, "test_acc must be a number from 0 to 1, got '99%'"),
    ({"test_acc": float("nan")}, "test_acc must be a number from 0 to 1, got nan"),
    ({"dev_acc": True}, "dev_acc must be a number from 0 to 1, got True"),
    ({"recipe": "mlp)\n/x.png 7 1.000"}, "recipe must be a printable one-line string"),   # would forge a line
    ({"recipe": 5}, "recipe must be a printable one-line string of at most 100 characters, got 5"),
])
def test_m26_save_and_load_check_the_meta_fields_npnet_reads(one, tmp_path, monkeypatch, meta, field):
    with pytest.raises(M.ModelError, match=r"acc\.npz: header field " + field.replace("(", r"\(").replace(")", r"\)")):
        M.save(tmp_path / "acc.npz", M.mlp(), STATS, **meta)
    assert not (tmp_path / "acc.npz").exists()
    from npnet import modelfile
    monkeypatch.setattr(modelfile, "META", {})                              # such a file, written anyway
    M.save(tmp_path / "acc.npz", M.mlp(), STATS, **meta)
    monkeypatch.undo()
    done = run("predict", "-v", "--model", tmp_path / "acc.npz", one)
    assert done.returncode == 2 and done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"error: {tmp_path / 'acc.npz'}: header field {field[:20]}")


@pytest.mark.parametrize("stats, model, match", [
    ((0.13, 0.31, 0.5), M.mlp(), r"norm_stats is \(3,\) float32, the layers declare \(2,\) float32"),
    (STATS, M.mlp((784, 32, 5)), r"the layers map \(N, 784\) images to \(N, 5\), not to 10 class logits"),
    (STATS, M.mlp((100, 10)), r"layers\[0\] \(Dense\) takes inputs of shape \(100,\) but gets \(784,\)"),
    (STATS, M.mlp(), r"the header \(layers and meta\) is 1\d\d,\d\d\d characters as JSON, more than the 65,536"),
])
def test_save_refuses_what_load_refuses(tmp_path, stats, model, match):
    meta = {"notes": "x" * 100_000} if "header" in match else {}
    with pytest.raises(M.ModelError, match=r"m\.npz: " + match + r".*; not saved, and any file already there"):
        M.save(tmp_path / "m.npz", model, stats, **meta)
    assert list(tmp_path.iterdir()) == []


def test_m27_an_npy_header_declaring_4_gb_is_refused_before_reading(tmp_path):
    import tracemalloc

    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z, \
            z.open("header.npy", "w", force_zip64=True) as f:
        f.write(b"\x93NUMPY\x02\x00" + (0xFFFFFFF0).to_bytes(4, "little"))
        for _ in range(16):
            f.write(b" " * (1 << 24))                                       # 256 MB of spaces, 256 kB on disk
    tracemalloc.start()
    try:
        with pytest.raises(M.ModelError, match=r"bomb\.npz: not a readable model file \(ValueError: header\.npy "
                                               r"declares a 4,294,967,280-byte \.npy header, more than 4,096\)"):
            M.load(tmp_path / "bomb.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000, peak                                          # it used to take 2.1 GB


# ---- W18-W21: drawings files that crash the reader ----

from npnet import drawings as D  # noqa: E402

GOOD = '{"label":3,"strokes":[[[100,20],[120,200]]],"widths":[10],"canvas":[280,280]}'


@pytest.mark.parametrize("line, message", [
    ('{"label":3,"strokes":[[[1%0400d,2]]],"widths":[10],"canvas":[280,280]}' % 0,         # W18: a coordinate
     "strokes[0][0] must be a number from -100,000 to 100,000, got 1000"),
    ('{"label":3,"strokes":[[[1,2]]],"widths":[1%0400d],"canvas":[280,280]}' % 0,          # W18: a width
     "widths[0] must be a number from -100,000 to 100,000, got 1000"),
    ('{"label":3,"strokes":[[[1%05000d,2]]],"widths":[10],"canvas":[280,280]}' % 0,        # W19
     "not a drawing: Exceeds the limit (4300 digits) for integer string conversion"),
    ("[" * 100_000, "not a drawing: lists or objects nested too deeply"),                  # W20: the line
    (GOOD[:-1] + ',"extra":' + "[" * 100_000 + "]" * 100_000 + "}",                        # W20: an extra field
     "not a drawing: lists or objects nested too deeply"),
])
def test_w18_w19_w20_a_hostile_line_is_reported_and_skipped(tmp_path, line, message):
    path = tmp_path / "d.jsonl"
    path.write_text(GOOD + "\n" + line + "\n" + GOOD + "\n")
    drawings, problems = D.read_drawings(path)
    assert [d.line for d in drawings] == [1, 3] and [n for n, _ in problems] == [2]
    assert problems[0][1].startswith(message) and len(problems[0][1]) < 200, problems
    done = run("evaluate", "--drawings", path, model_path("mlp"))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert f"  line 2: skipped, {message}" in done.stdout and "2 drawing(s) in" in done.stdout


def test_w18_append_drawing_refuses_a_huge_integer_with_a_drawing_error(tmp_path):
    record = json.loads(GOOD) | {"strokes": [[[10 ** 400, 2]]]}
    with pytest.raises(D.DrawingError, match=r"strokes\[0\]\[0\] must be a number from -100,000 to 100,000"):
        D.append_drawing(record, tmp_path / "d.jsonl")
    with pytest.raises(D.DrawingError, match="cannot be written as JSON: int too large"):
        D.append_drawing(D.Drawing([[[10 ** 400, 2]]], [10.0], 3), tmp_path / "d.jsonl")
    assert not (tmp_path / "d.jsonl").exists()


def test_w18_w20_a_collecting_pad_counts_the_good_lines_and_says_what_it_skipped(tmp_path):
    from npnet.sketchpad import Sketchpad

    path = tmp_path / "d.jsonl"
    path.write_text(GOOD + "\n" + "[" * 100_000 + "\n" + GOOD + "\n")
    pad = Sketchpad({"MLP": load_or_train("mlp", progress=False)}, collect=True, drawings_path=path)
    assert pad.saved[3] == 2 and "nested too deeply" in pad.message.value


def unreadable(monkeypatch):
    """Make the drawings file unreadable, as `chmod 000` does for a user who is not root."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(D, "open", refuse, raising=False)


def test_w21_an_unreadable_drawings_file_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    from npnet import cli

    path = tmp_path / "d.jsonl"
    path.write_text(GOOD + "\n")
    unreadable(monkeypatch)
    assert cli.main(["evaluate", "--drawings", str(path), str(model_path("mlp"))]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"error: {path}: cannot read the drawings file (Permission denied)\n"


def test_w21_a_pad_whose_drawings_file_is_unreadable_says_so_and_keeps_working(tmp_path, monkeypatch):
    from npnet.sketchpad import Sketchpad

    path = tmp_path / "d.jsonl"
    path.write_text(GOOD + "\n")
    unreadable(monkeypatch)
    pad = Sketchpad({"MLP": load_or_train("mlp", progress=False)}, collect=True, drawings_path=path)
    assert "cannot read the drawings file (Permission denied)" in pad.message.value
    assert pad.saved.sum() == 0 and pad.target is not None
    pad.pen_down(100, 20)
    pad.pen_move(float("nan"), 50)                                          # ignored: not a point on the canvas
    pad.pen_move(120, 200)
    pad.pen_up()
    assert pad.strokes == [[(100.0, 20.0), (120.0, 200.0)]] and pad.predictions


# ---- D23 and the data folder's odd files ----

from npnet import data as DATA  # noqa: E402

LABELS = "t10k-labels-idx1-ubyte"          # the smallest real file: 10,008 bytes


def real_mnist_in(folder):
    """A data folder whose four files link to the real ones."""
    for name in DATA.SHA256:
        (folder / name).symlink_to(DATA.DATA_DIR / name)
    return folder


def refetch_records(monkeypatch):
    """Stand-ins for the mirrors (the real files, stored again) and the wheel (offline); returns the calls."""
    calls = []

    def fetch_from_mirrors(data_dir, mirrors):
        calls.append(data_dir)
        for name in DATA.SHA256:
            DATA.atomic_write(data_dir / name, (DATA.DATA_DIR / name).read_bytes())
        return "a test mirror"
    monkeypatch.setattr(DATA, "fetch_from_mirrors", fetch_from_mirrors)
    return calls


def test_d23_a_100_gb_sparse_file_is_refused_by_its_size_and_fetched_again(tmp_path, monkeypatch, capsys):
    import tracemalloc

    folder = real_mnist_in(tmp_path)
    (folder / LABELS).unlink()
    with open(folder / LABELS, "wb") as f:
        f.truncate(100 << 30)                                               # 100 GB, of which none is on disk
    done = run("evaluate", model_path("mlp"), env={"NPNET_DATA": str(folder)})
    assert done.returncode == 2 and done.stdout == "" and done.stderr == (
        f"error: {folder / LABELS}: has trailing bytes: 107,374,182,400 bytes, {LABELS} has 10,008 (not read); "
        "run `python -m npnet data` to fetch it\n")
    calls = refetch_records(monkeypatch)
    tracemalloc.start()
    try:
        assert DATA.fetch(folder) == "a test mirror" and calls == [folder]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"{folder / LABELS}: has trailing bytes: 107,374,182,400 bytes" in capsys.readouterr().err
    assert (folder / LABELS).stat().st_size == 10_008 and peak < 200e6, peak   # the images are 47 MB


def test_a_fifo_in_place_of_a_data_file_is_fetched_again_not_read(tmp_path, monkeypatch, capsys):
    import threading

    folder = real_mnist_in(tmp_path)
    (folder / LABELS).unlink()
    os.mkfifo(folder / LABELS)
    calls, result = refetch_records(monkeypatch), []
    worker = threading.Thread(target=lambda: result.append(DATA.fetch(folder)), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "fetch hangs on the FIFO"
    assert result == ["a test mirror"] and f"{folder / LABELS}: not a regular file" in capsys.readouterr().err
    assert (folder / LABELS).is_file()


def test_a_folder_named_like_a_leftover_part_file_is_left_alone(tmp_path, monkeypatch):
    folder = real_mnist_in(tmp_path)
    (folder / f"{LABELS}.abc.part").mkdir()
    (folder / f"{LABELS}.def.part").write_bytes(b"partial")                # a real leftover
    assert DATA.fetch(folder) == f"already in {folder}"
    assert (folder / f"{LABELS}.abc.part").is_dir() and not (folder / f"{LABELS}.def.part").exists()


def test_an_empty_variable_counts_as_unset():
    code = ("from npnet import data, modelfile, drawings; "
            "print(data.DATA_DIR == data.ROOT / 'data' / 'mnist', modelfile.MODELS_DIR == modelfile.ROOT / 'models', "
            "drawings.default_path() == drawings.PATH)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NPNET_DATA": "", "NPNET_MODELS": "", "NPNET_DRAWINGS": ""})
    assert done.stdout == "True True True\n", done.stderr


# ---- predict's weak spots ----

def test_predict_says_a_faint_digit_is_faint_and_a_thin_image_is_too_small_at_its_own_size(one, tmp_path):
    ink = 255 - np.asarray(Image.open(one).convert("L"), np.float64)
    Image.fromarray((255 - 0.16 * ink).astype(np.uint8)).save(tmp_path / "faint.png")    # a 16% pencil digit
    Image.fromarray(np.full((7, 9000), 255, np.uint8)).save(tmp_path / "thin.png")        # used to say 1x563
    done = run("predict", "--model", model_path("mlp"), tmp_path / "faint.png", tmp_path / "thin.png")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{tmp_path / 'faint.png'} error: no digit: the ink is too faint to read (at most 16% of full contrast; "
        "it needs 20%)",
        f"{tmp_path / 'thin.png'} error: a 7x9000 image is too small to hold a digit: "
        "it needs at least 8 pixels a side"]


def test_predict_does_not_read_a_fifo_or_a_directory(one, tmp_path):
    os.mkfifo(tmp_path / "fifo.png")
    done = run("predict", "--model", model_path("mlp"), tmp_path / "fifo.png", tmp_path, one)  # used to hang
    assert done.returncode == 1 and done.stdout.startswith(f"{one} ")
    assert done.stderr.splitlines() == [f"{tmp_path / 'fifo.png'} error: not a regular file",
                                        f"{tmp_path} error: a directory, not an image file"]


def test_predict_with_stdout_full_or_closed_gives_no_traceback(one):
    cmd = [sys.executable, "-m", "npnet", "predict", "--model", str(model_path("mlp")), str(one)]
    with open("/dev/full", "w") as full:
        done = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr == "error: [Errno 28] No space left on device\n"
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300,
                          pass_fds=(), preexec_fn=lambda: os.close(1))
    assert done.returncode == 0 and done.stderr == ""


# ---- the API's weak spots ----

def test_diagnose_refuses_a_bad_tail_or_reference_in_words():
    from npnet.preprocess import diagnose

    x28 = np.zeros((28, 28), np.float32)
    x28[6:22, 12:16] = 1
    reference = {k: np.sort(np.random.default_rng(0).random(100)) for k in ("ink", "centre_offset", "area_ratio",
                                                                             "aspect")}
    assert diagnose(x28, reference, tail=0.01)["warnings"] is not None
    for tail in (2, -0.1, float("nan"), "0.01", True):
        with pytest.raises(ValueError, match="tail must be a fraction from 0 to 0.5"):
            diagnose(x28, reference, tail=tail)
    for bad in ({"ink": reference["ink"]}, {**reference, "aspect": []}, [1, 2, 3]):
        with pytest.raises(ValueError, match="reference must map ink, centre_offset, area_ratio, aspect to sorted"):
            diagnose(x28, bad)


def test_render_and_the_pad_refuse_or_ignore_nan_and_inf_in_words():
    from npnet.sketchpad import Sketchpad
    from npnet.strokes import render

    for stroke, width in [([(1.0, float("nan"))], 10.0), ([(1.0, 2.0), (float("inf"), 3.0)], 10.0),
                          ([(1.0, 2.0)], float("nan")), ([(1.0, 2.0)], -1.0)]:
        with pytest.raises(ValueError, match="stroke 0: its points and pen width must be finite numbers"):
            render([stroke], 28, width)
    pad = Sketchpad({"MLP": load_or_train("mlp", progress=False)}, throttle=1e9)
    pad.pen_down(float("nan"), 3)                                           # not a point: no stroke starts
    pad.pen_move(5, 5)
    assert pad.strokes == [] and pad.image().max() == 0
    pad.strokes, pad.widths = [[(5.0, float("inf"))]], [18]
    with pytest.raises(ValueError, match="stroke 0: its points"):
        pad.image()


def test_predict_proba_on_no_rows_gives_no_rows():
    from npnet import recipes

    for model, shape in [(M.mlp(), (0, 784)), (recipes.cnn((4, 6), 5, 16, 0.0, np.random.default_rng(0)), (0, 784))]:
        probs = M.predict_proba(model, np.zeros(shape, np.float32))
        assert probs.shape == (0, 10) and M.predict(model, np.zeros(shape, np.float32)).shape == (0,)


def test_a_long_line_is_not_held_whole_and_many_damaged_lines_are_summarised(tmp_path):
    import tracemalloc

    path = tmp_path / "d.jsonl"
    with open(path, "w") as f:
        f.write(GOOD + "\n" + '{"label":3,"strokes":[' + " " * 50_000_000 + "\n")   # a 50 MB line
        f.write("not json\n" * 1000)
    tracemalloc.start()
    try:
        drawings, problems = D.read_drawings(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(drawings) == 1 and problems[0] == (2, "line is 50,000,023 bytes, longer than any drawing")
    assert len(problems) == 1001 and peak < 20e6, peak                      # it used to hold the whole line
    report = D.evaluate_drawings(path, {"MLP": load_or_train("mlp", progress=False)})
    skipped = [line for line in report.splitlines() if "skipped" in line]
    assert len(skipped) == 11 and skipped[-1] == "  ... and 991 more damaged line(s), skipped"


def test_many_one_point_strokes_on_a_big_canvas_render_on_one_canvas():
    import tracemalloc

    from npnet.strokes import render

    strokes = [[(float(10 * i), 100.0)] for i in range(200)]
    tracemalloc.start()
    try:
        img = D.render_strokes(strokes, [10.0] * 200, (4096, 4096))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert img.shape == (4096, 4096) and peak < 1.2 * 4096 * 4096 * 4, peak   # one canvas, not one per stroke
    small, widths = [[(20.0, 30.0), (200.0, 150.0)], [(50.0, 250.0)], [(260.0, 10.0), (10.0, 270.0)]], [12.0, 30.0, 4.0]
    per_stroke = np.max([render([s], 280, w) for s, w in zip(small, widths)], axis=0)
    assert np.array_equal(D.render_strokes(small, widths), per_stroke)     # the same pixels as stroke by stroke


def test_a_test_run_saves_figures_outside_the_work_tree():
    """conftest.py points the notebooks' figures (nbval's kernels, test_exercises' solution runs) at a temporary
    folder when NPNET_FIGURES is unset or empty, so that a bare `pytest tests notebooks` leaves figures/ as it was."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    folder = Path(os.environ.get("NPNET_FIGURES") or root / "figures").resolve()
    assert folder != root / "figures" and root not in folder.parents, folder
