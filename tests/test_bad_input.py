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
    Image.fromarray(np.where(np.abs(np.hypot(yy - 140, (xx - 140) * 1.4) - 80) < 14, 0, 255).astype(np.uint8)).save(path)
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
])
def test_save_refuses_what_load_refuses(tmp_path, stats, model, match):
    with pytest.raises(M.ModelError, match=r"m\.npz: " + match + r".*; not saved, and any file already there"):
        M.save(tmp_path / "m.npz", model, stats)
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
