"""The command line as a user runs it: data, evaluate, and clear errors for bad model files."""

import re
import subprocess
import sys

import pytest

from npnet.recipes import load_or_train, model_path


def run(*args):
    return subprocess.run([sys.executable, "-m", "npnet", *args], capture_output=True, text=True, timeout=600)


def test_data_says_where_the_data_is():
    done = run("data")
    assert done.returncode == 0, done.stderr
    assert "verified by SHA-256" in done.stdout and "data/mnist" in done.stdout


@pytest.fixture(scope="module")
def mlp_path():
    load_or_train("mlp", progress=False)
    return model_path("mlp")


def test_evaluate_prints_accuracy_table_and_confusion(mlp_path):
    done = run("evaluate", str(mlp_path))
    assert done.returncode == 0, done.stderr
    acc = float(re.search(r"test accuracy: ([\d.]+)%", done.stdout).group(1))
    assert acc >= 97.5, done.stdout
    assert len(re.findall(r"^  \d: [\d.]+%$", done.stdout, re.M)) == 10
    rows = re.findall(r"^\s+(\d) ((?:\s+\d+){10})$", done.stdout, re.M)
    assert len(rows) == 10 and sum(sum(map(int, r[1].split())) for r in rows) == 10000


def test_evaluate_rejects_a_bad_model_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    done = run("evaluate", str(bad))
    assert done.returncode == 2
    assert "not a readable model file" in done.stderr and "Traceback" not in done.stderr


def test_a_reader_that_stops_early_gets_no_traceback(mlp_path):
    proc = subprocess.Popen([sys.executable, "-m", "npnet", "evaluate", str(mlp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()                                  # as `| head -1` does once it has its line: before any here
    stderr = proc.stderr.read()
    proc.wait(timeout=600)
    assert stderr == "" and proc.returncode == 1, stderr


def test_evaluate_drawings_reports_every_model_and_pipeline_on_a_small_generated_file(tmp_path, mlp_path):
    import numpy as np

    from npnet import drawings as Dr

    path = tmp_path / "drawings.jsonl"
    for d in Dr.generated_drawings(10, np.random.default_rng(1)):
        Dr.append_drawing(d, path)
    with open(path, "a") as f:
        f.write('{"strokes": [[[1, 2]\n')                        # a save cut short
    done = run("evaluate", "--drawings", str(path), str(mlp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"10 drawing(s) in {path}") and "line 11: skipped" in out
    assert "10 of them GENERATED" in out
    rows = re.findall(r"^mlp\s+(naive|original app|MNIST-style)\s+([\d.]+)%\s+(\d+)/10", out, re.M)
    assert [r[0] for r in rows] == ["naive", "original app", "MNIST-style"], out
    for _, pct, right in rows:
        assert abs(float(pct) - 10 * int(right)) < 0.05


def test_evaluate_drawings_says_when_there_is_nothing_or_the_path_is_wrong(tmp_path):
    done = run("evaluate", "--drawings", str(tmp_path / "none.jsonl"))
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: {tmp_path / 'none.jsonl'}: no such drawings file")
    (tmp_path / "empty.jsonl").write_text("")
    done = run("evaluate", "--drawings", str(tmp_path / "empty.jsonl"))
    assert done.returncode == 1 and "nothing to evaluate" in done.stdout
    done = run("evaluate", "--drawings", str(tmp_path))
    assert done.returncode == 2 and "is a directory" in done.stderr and "Traceback" not in done.stderr
