"""The command line: `python -m npnet data | train | evaluate [--drawings PATH] | predict`."""

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from . import data as D
from . import model as M
from . import recipes
from .metrics import accuracy, confusion_matrix, format_confusion, per_class_accuracy


def cmd_data(args):
    source = D.fetch()
    print(f"MNIST is in {D.DATA_DIR} (source: {source}); all four files verified by SHA-256.")
    return 0


def cmd_train(args):
    path, test_acc = recipes.train_and_save(args.model)
    print(f"saved {path}\ntest accuracy: {test_acc:.2%}")
    return 0


def cmd_evaluate(args):
    if args.drawings:
        return cmd_evaluate_drawings(args)
    path = Path(args.model or recipes.model_path("mlp"))
    model, stats, header = M.load(path)
    _, _, X_test, y_test = D.load_mnist()
    y_pred = M.predict(model, D.normalize(X_test, stats))
    print(f"model: {path} ({header.get('recipe', '?')})")
    print(f"test accuracy: {accuracy(y_pred, y_test):.2%} on {len(y_test)} images\n")
    print("per-digit accuracy:")
    for digit, acc in enumerate(per_class_accuracy(y_test, y_pred)):
        print(f"  {digit}: {acc:.2%}")
    print("\nconfusion matrix (rows: true digit, columns: predicted):")
    print(format_confusion(confusion_matrix(y_test, y_pred)))
    return 0


def cmd_evaluate_drawings(args):
    """Every model (or the one named) on every pipeline, over drawings saved by the sketchpad's collect mode."""
    from .drawings import DrawingError, default_path, evaluate_drawings

    if not Path(args.drawings).exists():
        print(f"error: {_shown(args.drawings)}: no such drawings file (the sketchpad's collect mode saves them in "
              f"{_shown(str(default_path()))})", file=sys.stderr)
        return 2
    models = None
    if args.model:
        model, stats, _ = M.load(args.model)
        models = {Path(args.model).stem: (model, stats)}
    try:
        report = evaluate_drawings(args.drawings, models)
    except DrawingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report)
    return 0 if "nothing to evaluate" not in report else 1


WORK_SIDE = 512    # larger images are shrunk as they are read: a digit needs far fewer pixels than this


def read_image(path):
    """Read an image file's first frame: -> float32 in [0, 1], (H, W) grey or (H, W, 4) RGBA.

    Reads what Pillow reads (PNG, JPEG, GIF, BMP, TIFF, WebP, ...) in any mode: 8-bit and palette images as
    grey, or as RGBA when they have transparency; 16-bit grey divided by 65535; 32-bit integer and float
    images by preprocess.unit_range's rule. The EXIF orientation is applied. Images over WORK_SIDE pixels a
    side are shrunk by a whole factor, averaging blocks of pixels, while decoding (JPEG) or straight after
    (the rest), so that memory stays within about twice the decoded image. Images over Pillow's limit against
    decompression bombs (Image.MAX_IMAGE_PIXELS, 89,478,485 pixels) are refused.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")           # Pillow's notes on damaged metadata: not the user's business
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                shrink = _shrink(img.size)
                if shrink > 1:                        # JPEG: decode at 1/2, 1/4 or 1/8 of the size; others: no-op
                    img.draft(None, (max(img.width // shrink, 1), max(img.height // shrink, 1)))
                ImageOps.exif_transpose(img, in_place=True)
                return _pixels(img)
    except UnidentifiedImageError:
        raise ValueError("not an image file") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ValueError(f"image too large: over {Image.MAX_IMAGE_PIXELS:,} pixels (Pillow's limit against "
                         "decompression bombs); shrink it first") from None
    except OSError as e:
        raise ValueError(f"cannot read image: {e}") from None
    except ValueError:
        raise                                         # a message of ours or Pillow's, already one line
    except Exception as e:                            # a damaged file trips Pillow's decoders in many ways
        raise ValueError(f"cannot read image: damaged or unsupported ({type(e).__name__}: {e})") from None


def _shrink(size):
    """The whole factor that brings an image's longer side to WORK_SIDE or less, keeping its shorter side at least
    preprocess.MIN_SIDE (so that a too-small image is reported at its own size): (width, height) -> int >= 1."""
    from .preprocess import MIN_SIDE

    return max(1, min(-(-max(size) // WORK_SIDE), min(size) // MIN_SIDE))


def _pixels(img):
    """A loaded Pillow image -> float32 in [0, 1], (H, W) or (H, W, 4), shrunk to at most WORK_SIDE a side."""
    from .preprocess import unit_range

    if img.mode.startswith("I;16"):
        img, full = img.convert("I"), 65535           # 16-bit grey: Pillow cannot shrink it as it is
    elif img.mode in ("I", "F"):
        full = None                                   # 32-bit integers or floats: scaled by their values
    else:
        full = 255
        mode = "RGBA" if "A" in img.getbands() or "transparency" in img.info else "L"
        if img.mode not in ("L", "LA", "RGB", "RGBA", "CMYK"):
            img = img.convert(mode)                   # palette, 1-bit and rarer modes: convert before shrinking
    shrink = _shrink(img.size)
    if shrink > 1:
        img = img.reduce(shrink)                      # the mean of each shrink x shrink block
    if full == 255:
        img = img.convert(mode)
    a = np.asarray(img, np.float32)
    return unit_range(a) if full is None else a / full


def _frames(path):
    """How many frames an image file holds (GIF, TIFF, WebP and APNG can hold several): -> int."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                return getattr(img, "n_frames", 1)
    except Exception:                                 # a damaged later frame: say nothing about frames
        return 1


def _shown(name):
    """A path as printed: as it is when plain, else quoted like a Python string, so that no name can forge a line."""
    plain = name.isprintable() and not any(c.isspace() or c in "'\"\\" for c in name)
    return name if plain else repr(name)


def cmd_predict(args):
    from threadpoolctl import threadpool_limits

    from .preprocess import EmptyCanvas, mnist_style

    if args.model:
        path = Path(args.model)
        model, stats, header = M.load(path)
    else:                                               # the shipped model with the best recorded test accuracy
        from .drawings import best_model

        _, path, model, stats, header = best_model()
    if args.verbose:
        acc = header.get("test_acc")
        print(f"model: {_shown(str(path))} ({header.get('recipe', '?')}"
              + (f", {acc:.2%} on MNIST's test set)" if acc else ")"), file=sys.stderr)
    failures = 0
    for name in args.images:
        try:
            if Path(name).exists() and not Path(name).is_file():    # a FIFO would hang the read
                raise ValueError("a directory, not an image file" if Path(name).is_dir() else "not a regular file")
            if Path(name).is_file() and Path(name).stat().st_size == 0:
                raise ValueError("empty file")
            with threadpool_limits(1, "blas"):  # one image at a time: one BLAS thread is fastest
                x28 = mnist_style(read_image(name))
                probs = M.predict_proba(model, D.normalize(x28[None], stats))[0]
        except (ValueError, OSError) as e:  # EmptyCanvas is a ValueError: "no digit: ..."
            message = " ".join(str(e).split())          # one line, whatever the message holds
            frames = _frames(name) if isinstance(e, EmptyCanvas) else 1
            if frames > 1:
                message += f" (only the first of its {frames} frames is read)"
            print(f"{_shown(name)} error: {message}", file=sys.stderr)
            failures += 1
            continue
        print(f"{_shown(name)} {probs.argmax()} {probs.max():.3f}")
    return 1 if failures else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m npnet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("data", help="download and verify MNIST into data/mnist/").set_defaults(func=cmd_data)
    p = sub.add_parser("train", help="train a model and save it in models/")
    p.add_argument("--model", default="mlp", choices=sorted(recipes.RECIPES),
                   help="which recipe (default: mlp, about a minute; the others take minutes, see the README)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("evaluate", help="test accuracy, per-digit accuracy and confusion matrix")
    p.add_argument("model", nargs="?", help="a .npz model (default: models/mlp.npz; with --drawings: every model)")
    p.add_argument("--drawings", metavar="PATH", help="instead of MNIST's test set, your drawings saved by the "
                   "sketchpad's collect mode (a .jsonl file): every model on every pipeline")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("predict", help="classify image files: prints `path digit probability`; errors go to stderr")
    p.add_argument("images", nargs="+")
    p.add_argument("--model", help="a .npz model (default: the shipped model with the best recorded test accuracy; "
                                   "-v names it)")
    p.add_argument("-v", "--verbose", action="store_true", help="say on stderr which model reads the images")
    p.set_defaults(func=cmd_predict)
    args = parser.parse_args(argv)
    for stream in ("stdout", "stderr"):
        if getattr(sys, stream) is None:              # closed by the caller (`>&-`): write nowhere, not fail
            setattr(sys, stream, open(os.devnull, "w"))
    try:
        code = args.func(args)
        sys.stdout.flush()                            # a reader that has gone shows here, not at exit
        return code
    except (D.DataError, M.ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:                           # `predict ... | head -1`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the exit's flush is quiet too
        return 1
    except OSError as e:                              # a full disk, for a model being saved or for stdout
        print(f"error: {e}", file=sys.stderr)
        try:
            sys.stdout.flush()
        except OSError:                               # stdout itself: quiet the exit's flush too
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 2
