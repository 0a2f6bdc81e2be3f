"""The command line: `python -m npnet data | train | evaluate | predict`."""

import argparse
import sys
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


def read_image(path):
    """Read an image file as a float32 array in [0, 1]: (H, W) grey or (H, W, 4) RGBA."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            img = img.convert("RGBA") if "A" in img.getbands() or img.mode == "P" else img.convert("L")
            return np.asarray(img, np.float32) / 255.0
    except UnidentifiedImageError:
        raise ValueError("not an image file") from None
    except OSError as e:
        raise ValueError(f"cannot read image: {e}") from None


def cmd_predict(args):
    from threadpoolctl import threadpool_limits

    from .preprocess import mnist_style

    path = Path(args.model or recipes.model_path("mlp"))
    model, stats, _ = M.load(path)
    failures = 0
    for name in args.images:
        try:
            if Path(name).is_file() and Path(name).stat().st_size == 0:
                raise ValueError("empty file")
            with threadpool_limits(1, "blas"):  # one image at a time: one BLAS thread is fastest
                x28 = mnist_style(read_image(name))
                probs = M.predict_proba(model, D.normalize(x28[None], stats))[0]
            print(f"{name} {probs.argmax()} {probs.max():.3f}")
        except (ValueError, OSError) as e:  # EmptyCanvas is a ValueError: "no digit: ..."
            print(f"{name} error: {e}")
            failures += 1
    return 1 if failures else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m npnet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("data", help="download and verify MNIST into data/mnist/").set_defaults(func=cmd_data)
    p = sub.add_parser("train", help="train a model and save it in models/")
    p.add_argument("--model", default="mlp", choices=["mlp", "cnn"], help="which recipe (default: mlp; cnn takes ~10 min)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("evaluate", help="test accuracy, per-digit accuracy and confusion matrix")
    p.add_argument("model", nargs="?", help="a .npz model (default: models/mlp.npz)")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("predict", help="classify image files: prints `path digit probability`")
    p.add_argument("images", nargs="+")
    p.add_argument("--model", help="a .npz model (default: models/mlp.npz)")
    p.set_defaults(func=cmd_predict)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (D.DataError, M.ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
