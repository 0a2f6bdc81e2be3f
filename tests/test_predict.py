"""`python -m npnet predict` on real image files: sizes, modes, polarities, formats, and bad files on stderr."""

import ast
import struct
import subprocess
import sys
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from npnet.cli import read_image
from npnet.data import load_mnist
from npnet.preprocess import mnist_style
from npnet import model as M
from npnet.recipes import load_or_train


def mnist_big(digit, size=280):
    """The test set's first `digit`, light ink on dark, resized: (size, size) uint8."""
    X_test, y_test = load_mnist()[2:]
    x = X_test[np.flatnonzero(y_test == digit)[0]]
    return np.asarray(Image.fromarray(x).resize((size, size), Image.LANCZOS))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    load_or_train("mlp", progress=False)
    out = tmp_path_factory.mktemp("images")
    files = {}
    for digit in range(10):
        big = mnist_big(digit)                                                  # light ink on dark, 280x280
        if digit % 3 == 0:
            img, ext = Image.fromarray(255 - big), "png"                        # dark ink on white paper
        elif digit % 3 == 1:
            rgba = np.zeros((280, 280, 4), np.uint8)
            rgba[..., 3] = big                                                  # black strokes, transparent canvas
            img, ext = Image.fromarray(rgba, "RGBA"), "png"
        else:
            img, ext = Image.fromarray(big).convert("RGB").resize((400, 300)), "jpg"  # another size, JPEG
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
    assert len(lines) == len(images) and done.stderr == ""
    right = 0
    for line, (path, digit) in zip(lines, images.items()):
        name, pred, prob = line.split()
        assert name == str(path) and 0 < float(prob) <= 1
        right += int(pred) == digit
    assert right >= 9, done.stdout


def test_bad_files_go_to_stderr_and_the_rest_still_print(images, tmp_path):
    good = next(iter(images))
    (tmp_path / "notes.png").write_text("this is not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.new("L", (280, 280), 255).save(tmp_path / "blank.png")
    done = run(tmp_path / "notes.png", good, tmp_path / "empty.png", tmp_path / "blank.png", tmp_path / "missing.png")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stdout.splitlines()) == 1 and done.stdout.startswith(f"{good} ")
    errors = done.stderr.splitlines()
    assert errors[0] == f"{tmp_path / 'notes.png'} error: not an image file"
    assert errors[1] == f"{tmp_path / 'empty.png'} error: empty file"
    assert errors[2] == f"{tmp_path / 'blank.png'} error: no digit: the canvas is blank"
    assert errors[3].startswith(f"{tmp_path / 'missing.png'} error: ") and "No such file" in errors[3]
    assert len(errors) == 4


# ---- modes and files that used to give a wrong answer with no error ----

def test_16_bit_and_float_images_are_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 1, 16 * 256).reshape(16, 256)                     # every level from black to white
    cases = {"grey16.png": (np.round(ramp * 65535).astype(np.uint16), 65535),  # Pillow's mode I;16
             "float01.tif": (ramp.astype(np.float32), 1),                    # mode F, in [0, 1]
             "float255.tif": ((ramp * 255).astype(np.float32), 255),         # mode F, in [0, 255]
             "int32.tif": (np.round(ramp * 65535).astype(np.int32), 65535)}  # mode I, 16-bit values
    for name, (pixels, full) in cases.items():
        Image.fromarray(pixels).save(tmp_path / name)
        assert np.allclose(read_image(tmp_path / name), pixels / full, atol=1e-6), name


def test_exif_orientation_is_applied(tmp_path):
    stored = np.random.default_rng(0).integers(0, 256, (40, 60), dtype=np.uint8)
    for orientation, shown in [(3, np.rot90(stored, 2)), (6, np.rot90(stored, -1)), (8, np.rot90(stored, 1))]:
        exif = Image.Exif()
        exif[0x0112] = orientation                                           # EXIF Orientation
        Image.fromarray(stored).save(tmp_path / "photo.png", exif=exif)
        assert np.allclose(read_image(tmp_path / "photo.png"), shown / 255, atol=1e-6), orientation


def odd_digit_files(out):
    """The digits as files that used to read wrongly: {path: digit}."""
    files = {}
    ink = mnist_big(2).astype(np.float64) / 255
    Image.fromarray(np.round((1 - ink) * 65535).astype(np.uint16)).save(out / "two16.png")      # 16-bit grey
    files[out / "two16.png"] = 2
    Image.fromarray(mnist_big(3).astype(np.float32) / 255).save(out / "three.tif")               # float TIFF
    files[out / "three.tif"] = 3
    rgba = np.dstack([255 - mnist_big(4)] * 3 + [np.full((280, 280), 255, np.uint8)])
    rgba[:2], rgba[-2:], rgba[:, :2], rgba[:, -2:] = 0, 0, 0, 0              # opaque digit, transparent margin
    Image.fromarray(rgba, "RGBA").save(out / "four_margin.png")
    files[out / "four_margin.png"] = 4
    exif = Image.Exif()
    exif[0x0112] = 3                                                         # a phone held upside down
    Image.fromarray(np.rot90(255 - mnist_big(6), 2)).convert("RGB").save(out / "six_photo.jpg", exif=exif)
    files[out / "six_photo.jpg"] = 6
    return files


def test_16_bit_float_transparent_margin_and_rotated_photo_give_the_right_digit(images, tmp_path):
    files = odd_digit_files(tmp_path)
    done = run(*files)
    assert done.returncode == 0, done.stderr
    got = {line.rsplit(" ", 2)[0]: int(line.split()[-2]) for line in done.stdout.splitlines()}
    assert got == {str(path): digit for path, digit in files.items()}, done.stdout


def test_images_too_small_to_hold_a_digit_are_refused(images, tmp_path):
    for side in (2, 3, 7):
        tiny = np.full((side, side), 255, np.uint8)
        tiny[side // 2, side // 2] = 0                                       # one dark pixel
        Image.fromarray(tiny).save(tmp_path / f"tiny{side}.png")
    done = run(*(tmp_path / f"tiny{side}.png" for side in (2, 3, 7)))
    assert done.returncode == 1 and done.stdout == ""
    for side, line in zip((2, 3, 7), done.stderr.splitlines()):
        assert line == (f"{tmp_path / f'tiny{side}.png'} error: a {side}x{side} image is too small to hold a digit: "
                        "it needs at least 8 pixels a side")


def test_only_the_first_frame_is_read_and_a_blank_one_says_so(images, tmp_path):
    blank, digit = Image.new("L", (280, 280), 255), Image.fromarray(255 - mnist_big(7))
    blank.save(tmp_path / "blank_first.gif", save_all=True, append_images=[digit])
    digit.save(tmp_path / "digit_first.gif", save_all=True, append_images=[blank])
    done = run(tmp_path / "blank_first.gif", tmp_path / "digit_first.gif")
    assert done.stderr == (f"{tmp_path / 'blank_first.gif'} error: no digit: the canvas is blank "
                           "(only the first of its 2 frames is read)\n")
    assert done.stdout.split()[:2] == [str(tmp_path / "digit_first.gif"), "7"]


# ---- files that used to crash or stop the batch ----

def png_that_declares(width, height):
    """A PNG whose header declares width x height grey pixels, with almost no data: it trips the size check on open."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_decompression_bombs_are_a_per_file_error(images, tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_that_declares(20_000, 20_000))   # over twice Pillow's limit: an error
    (tmp_path / "huge.png").write_bytes(png_that_declares(10_000, 10_000))   # over the limit: only a warning in Pillow
    good = next(iter(images))
    done = run(tmp_path / "bomb.png", tmp_path / "huge.png", good)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "Warning" not in done.stderr
    assert done.stdout.startswith(f"{good} ") and len(done.stdout.splitlines()) == 1
    errors = done.stderr.splitlines()
    assert [e.split(" error: ")[0] for e in errors] == [str(tmp_path / "bomb.png"), str(tmp_path / "huge.png")]
    assert all(" error: image too large: over 89,478,485 pixels" in e for e in errors), errors


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_large_images_are_shrunk_as_they_are_read(tmp_path, ext):
    side = 4096
    Image.fromarray(255 - mnist_big(5, side)).save(tmp_path / f"big.{ext}")
    tracemalloc.start()
    try:
        image = read_image(tmp_path / f"big.{ext}")
        peak_read = tracemalloc.get_traced_memory()[1]
        x28 = mnist_style(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    one_copy = side * side * 4                                               # the full image once as float32: 64 MB
    assert peak_read < one_copy / 16 and peak < one_copy / 4, (peak_read, peak)
    assert max(image.shape) <= 512 and x28.shape == (28, 28)
    assert image.shape[0] / image.shape[1] == pytest.approx(1)


def test_a_reader_that_stops_early_gets_no_traceback(images):
    proc = subprocess.Popen([sys.executable, "-m", "npnet", "predict", *map(str, images)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()                                  # as `| head -1` does once it has its line: before any here
    stderr = proc.stderr.read()
    proc.wait(timeout=300)
    assert stderr == "" and proc.returncode == 1, stderr


def test_odd_file_names_are_quoted_and_cannot_forge_a_line(images, tmp_path):
    digit6 = next(path for path, digit in images.items() if digit == 6)
    forged = tmp_path / "x.png 7 1.000\ny.png"                                # would print a line "y.png 6 ..."
    spaced = tmp_path / "my digit.png"
    forged.write_bytes(digit6.read_bytes())
    spaced.write_bytes(digit6.read_bytes())
    bad = tmp_path / "bad\nname.png"
    bad.write_text("not an image")
    done = run(forged, spaced, bad)
    lines, errors = done.stdout.splitlines(), done.stderr.splitlines()
    assert len(lines) == 2 and len(errors) == 1
    names = [ast.literal_eval(line.rsplit(" ", 2)[0]) for line in lines]     # quoted as Python strings
    assert names == [str(forged), str(spaced)] and [line.split()[-2] for line in lines] == ["6", "6"]
    name, message = errors[0].split(" error: ")
    assert ast.literal_eval(name) == str(bad) and message == "not an image file"


def test_predict_uses_the_best_shipped_model_and_names_it_when_asked(images):
    from npnet.drawings import best_model

    name, path, _, _, header = best_model()
    shipped = {p.stem: M.load(p)[2].get("test_acc") or 0 for p in path.parent.glob("*.npz") if p.stem != "mlp_tuned"}
    assert header["test_acc"] == max(shipped.values()) and path.stem in shipped, shipped
    done = run("-v", *list(images)[:2])
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"model: {path} ({header['recipe']}, {header['test_acc']:.2%} on MNIST's test set)\n"
    assert len(done.stdout.splitlines()) == 2                     # stdout is only the answers, as without -v
