"""`python -m npnet predict` on real image files: sizes, polarities and formats, and bad files on their own line."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from npnet.data import load_mnist
from npnet.recipes import load_or_train


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    load_or_train("mlp", progress=False)
    out = tmp_path_factory.mktemp("images")
    X_test, y_test = load_mnist()[2:]
    picks = {int(d): int(np.flatnonzero(y_test == d)[0]) for d in range(10)}
    files = {}
    for digit, i in picks.items():
        big = Image.fromarray(X_test[i]).resize((280, 280), Image.LANCZOS)  # light ink on dark, 280x280
        if digit % 3 == 0:
            img, ext = Image.fromarray(255 - np.asarray(big)), "png"          # dark ink on white paper
        elif digit % 3 == 1:
            rgba = np.zeros((280, 280, 4), np.uint8)
            rgba[..., 3] = np.asarray(big)                                      # black strokes, transparent canvas
            img, ext = Image.fromarray(rgba, "RGBA"), "png"
        else:
            img, ext = big.convert("RGB").resize((400, 300)), "jpg"             # another size, JPEG
        path = out / f"digit{digit}.{ext}"
        img.save(path)
        files[path] = digit
    return files


def run(*args):
    return subprocess.run([sys.executable, "-m", "npnet", "predict", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_predict_reads_every_format_and_polarity(images):
    done = run(*images)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(images)
    right = 0
    for line, (path, digit) in zip(lines, images.items()):
        name, pred, prob = line.split()
        assert name == str(path) and 0 < float(prob) <= 1
        right += int(pred) == digit
    assert right >= 9, done.stdout


def test_bad_files_get_a_clear_line_and_the_rest_still_print(images, tmp_path):
    good = next(iter(images))
    (tmp_path / "notes.png").write_text("this is not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.new("L", (280, 280), 255).save(tmp_path / "blank.png")
    done = run(tmp_path / "notes.png", good, tmp_path / "empty.png", tmp_path / "blank.png", tmp_path / "missing.png")
    lines = done.stdout.splitlines()
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert lines[0] == f"{tmp_path / 'notes.png'} error: not an image file"
    assert lines[1].startswith(f"{good} ") and lines[1].split()[1].isdigit()
    assert lines[2] == f"{tmp_path / 'empty.png'} error: empty file"
    assert lines[3] == f"{tmp_path / 'blank.png'} error: no digit: the canvas is blank"
    assert lines[4].startswith(f"{tmp_path / 'missing.png'} error: ") and "No such file" in lines[4]
