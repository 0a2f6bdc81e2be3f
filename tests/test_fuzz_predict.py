"""`predict` over a few hundred damaged image files of many formats: one line per file, and never a traceback."""

import io

import numpy as np
import pytest
from PIL import Image

from npnet import cli
from npnet.recipes import load_or_train, model_path

SEED = 0
FORMATS = {"png": "PNG", "gif": "GIF", "tif": "TIFF", "bmp": "BMP", "jpg": "JPEG", "webp": "WEBP", "ico": "ICO",
           "ppm": "PPM", "tga": "TGA", "dds": "DDS", "pcx": "PCX", "apng": "PNG", "sgi": "SGI", "qoi": "QOI"}
MULTI_FRAME = ("gif", "tif", "webp", "apng")      # saved with a blank first frame, then the digit


def seeds():
    """One good digit file per format: {ext: bytes}; the multi-frame ones start with a blank frame."""
    yy, xx = np.mgrid[:64, :64]
    ring = np.abs(np.hypot(yy - 32, xx - 32) - 18) < 4                      # a zero, dark ink on white
    digit = Image.fromarray(np.where(ring, 0, 255).astype(np.uint8))
    out = {}
    for ext, fmt in FORMATS.items():
        buf = io.BytesIO()
        # a copy each time: Pillow keeps an encoder's settings on the image, and TIFF then fails on GIF's
        img = digit.convert("RGB") if ext in ("jpg", "webp", "dds", "sgi", "qoi") else digit.copy()
        if ext in MULTI_FRAME:
            Image.new(img.mode, img.size, 255).save(buf, fmt, save_all=True, append_images=[img])
        else:
            img.save(buf, fmt)
        out[ext] = buf.getvalue()
    return out


def mutate(raw, rng):
    """A damaged copy: a few bytes changed, a run of bytes cut or repeated, or the file cut short."""
    data = bytearray(raw)
    kind = rng.integers(4)
    if kind == 0:                                         # flip a few bytes anywhere
        for i in rng.integers(0, len(data), rng.integers(1, 6)):
            data[i] = rng.integers(256)
    elif kind == 1:                                       # damage the header and chunk/frame tables
        for i in rng.integers(0, min(len(data), 128), rng.integers(1, 4)):
            data[i] = rng.integers(256)
    elif kind == 2:                                       # cut out or repeat a run
        i, n = rng.integers(0, len(data)), rng.integers(1, 64)
        data[i:i] = data[i:i + n] if rng.integers(2) else b""
        if not rng.integers(2):
            del data[i:i + n]
    else:                                                 # a download cut short
        del data[rng.integers(1, len(data)):]
    return bytes(data)


@pytest.mark.filterwarnings("error")                     # Pillow's warnings would be stray lines on stderr
def test_damaged_images_each_get_one_line_and_no_traceback(tmp_path, capsys):
    load_or_train("mlp", progress=False)
    rng = np.random.default_rng(SEED)
    files = []
    for ext, raw in seeds().items():
        for k in range(24):                               # 14 formats x 24 = 336 files
            path = tmp_path / f"{k:02d}.{ext}"
            path.write_bytes(mutate(raw, rng))
            files.append(str(path))
    code = cli.main(["predict", "--model", str(model_path("mlp")), *files])   # any exception fails the test
    out, err = capsys.readouterr()
    lines = out.splitlines() + err.splitlines()
    assert code in (0, 1) and "Traceback" not in err
    assert sorted(line.split(" ")[0] for line in lines) == sorted(files), err[-2000:]
    assert all(len(line.split(" ")) == 3 for line in out.splitlines())
    assert all(" error: " in line for line in err.splitlines())
