"""The benchmark keeps working: `bench.py --quick` trains each installed framework one short epoch of the MLP and of
the CNN (times unchecked); the FLOP counts match hand calculations; conv_variants.py's variants agree with npnet."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"


def _module(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench(name="bench"):
    """benchmarks/bench.py or one of its modules (bench_machine, bench_report, ...), imported as bench imports them."""
    if str(BENCH.parent) not in sys.path:
        sys.path.insert(0, str(BENCH.parent))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One run of `bench.py --quick`: (stdout, the raw numbers it wrote as JSON)."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text())


@pytest.mark.slow
def test_quick_run_prints_every_section_and_row(quick):
    text, raw = quick
    for line in ("## Training", "epoch time, training steps only (median)", "total training time",
                 "time to 97.5% dev accuracy", "final train accuracy", "final dev accuracy", "test accuracy",
                 "peak memory", "npnet / this: median epoch", "median of the per-epoch ratios",
                 "## The compute bound", "compute bound: the issue's FLOPs", "stricter",
                 "## Inference", "p99", "images/s", "## Targets", "## Machine", "command: `python benchmarks"):
        assert line in text, line
    header = next(line for line in text.splitlines() if line.startswith("|  | npnet"))
    assert header.count("|") == len(raw["results"]) + 2  # one column per framework that ran


@pytest.mark.slow
def test_quick_run_trains_npnet_and_times_inference(quick):
    _, raw = quick
    r = raw["results"]["npnet"]
    (epoch,) = r["epochs"]
    assert epoch["train_time"] > 0 and epoch["eval_time"] > 0
    assert r["test_acc"] > 0.6 and epoch["dev_acc"] > 0.6  # one epoch on 2,000 examples; chance is 0.1
    assert r["peak_rss_mb"] >= r["rss_before_mb"] > 0
    inf = r["inference"]
    assert inf["calls"] == 50 and 0 <= inf["digit"] <= 9
    assert inf["p99_ms"] >= inf["median_ms"] > 0 and inf["images_per_s"] > 0
    assert inf["pipeline"] == "preprocess.mnist_style" and inf["to_mnist"]["p99_ms"] >= inf["to_mnist"]["median_ms"] > 0
    assert raw["matmul"]["peak_gflops"] > 0


def _check_framework_column(quick, name, module):
    text, raw = quick
    if importlib.util.find_spec(module) is None:
        assert name in raw["skipped"] and f"skipped {name}" in text  # the report says what it left out
        return False
    r = raw["results"][name]
    assert len(r["epochs"]) == 1 and r["epochs"][0]["train_time"] > 0
    assert r["test_acc"] > 0.6, r["test_acc"]
    return True


@pytest.mark.slow
def test_quick_run_compares_with_scikit_learn(quick):
    assert _check_framework_column(quick, "sklearn", "sklearn"), "scikit-learn is a test dependency"


@pytest.mark.slow
def test_quick_run_compares_with_pytorch_only_after_make_bench(quick):
    """torch is installed by `make bench` alone (benchmarks/get_torch.py), never by `make test`: so under
    `make test` and CI this column is absent, and the test checks that the report says it skipped it."""
    if not _check_framework_column(quick, "pytorch", "torch"):
        pytest.skip("torch is not installed (only `make bench` installs it): checked that the report skipped "
                    "PyTorch and says so; run `make bench` first to check the PyTorch column")


@pytest.mark.slow
def test_quick_run_has_the_cnn_section(quick):
    text, raw = quick
    for line in ("## Training: the CNN recipe's network", "no augmentation", "step time, training steps only",
                 "epoch time incl. dev accuracy", "final dev accuracy", "npnet / this: median of the per-epoch ratios",
                 "## The CNN's compute bound", "without the first conv's input gradient", "the step's matmuls alone",
                 "npnet step / compute bound", "## Where the CNN step goes, layer by layer", "Adam step",
                 "the whole step with no timers or hooks", "npnet's three costliest layers", "## CNN target",
                 "the CNN run took"):
        assert line in text, line
    header = next(line for line in text.splitlines() if line.startswith("|  | npnet")
                  and line in text.split("## Training: the CNN")[1])
    assert header.count("|") == len(raw["cnn"]["results"]) + 2  # one column per framework that ran; no sklearn
    assert "sklearn" not in header


@pytest.mark.slow
def test_quick_run_trains_npnets_cnn_both_ways(quick):
    _, raw = quick
    for name in ("npnet", "npnet-parallel"):  # one step at a time, and each batch's halves on two threads
        r = raw["cnn"]["results"][name]
        (epoch,) = r["epochs"]
        assert epoch["train_time"] > 0 and epoch["eval_time"] > 0 and epoch["train_acc"] is None  # dev set only
        # 16 steps on 2,000 examples from He init reach ~0.73 (seed 0); chance is 0.1
        assert r["test_acc"] > 0.5 and epoch["dev_acc"] > 0.5, (name, r["test_acc"], epoch["dev_acc"])
    assert "profile" not in raw["cnn"]["results"]["npnet-parallel"]  # its layers are npnet's, timed as npnet


@pytest.mark.slow
def test_quick_run_profiles_every_layer_of_the_cnn_step(quick):
    from npnet.recipes import cnn

    layer_name = _bench("bench_profile").layer_name
    _, raw = quick
    model = cnn()
    names = [layer_name(layer) for layer in model]
    assert names[:5] == ["Reshape to (28, 28, 1)", "Conv2D 1→32 5×5", "MaxPool2D 2×2", "ReLU", "Conv2D 32→64 5×5"]
    assert names[-3:] == ["ReLU", "Dropout 0.5", "Dense 128→10"] and "Dense 1024→128" in names
    prof = raw["cnn"]["results"]["npnet"]["profile"]
    assert [row[0] for row in prof["layers"]] == names
    for (name, forward, backward), layer in zip(prof["layers"], model):
        assert forward > 0, name
        assert backward > 0 or name.startswith("Reshape"), name  # nothing runs backward below the first conv
    assert all(t > 0 for t in prof["loss_ms"]) and prof["optimizer_ms"] > 0
    assert prof["step_ms"] > 0 and prof["clean_step_ms"] > 0 and prof["steps"] == 5
    for name, r in raw["cnn"]["results"].items():  # PyTorch's: the same layers, bar the Reshape it does not need
        if name.startswith("pytorch"):
            assert [row[0] for row in r["profile"]["layers"]] == names[1:], name
            assert all(f > 0 and b > 0 for _, f, b in r["profile"]["layers"]), name
    cm = raw["matmul"]["cnn"]
    assert [row[0] for row in cm["layers"]] == [n for n in names if n.startswith(("Conv2D", "Dense"))]
    assert cm["layers"][0][3] is None and cm["step_ms"] > 0  # the first conv's dX is not timed: training skips it


@pytest.mark.slow
def test_quick_run_compares_the_cnn_with_pytorch_fused_adam_only_after_make_bench(quick):
    text, raw = quick
    if importlib.util.find_spec("torch") is None:
        assert "pytorch-fused" in raw["cnn"]["skipped"] and "pytorch-fused did not run" in text
        pytest.skip("torch is not installed (only `make bench` installs it): checked that the CNN section says so")
    r = raw["cnn"]["results"]["pytorch-fused"]
    assert len(r["epochs"]) == 1 and r["epochs"][0]["train_time"] > 0
    assert r["test_acc"] > 0.5, r["test_acc"]
    assert "| npnet CNN step <= 1.0x PyTorch fused Adam's (median of the per-epoch ratios) |" in text
    assert ("| npnet-parallel CNN step, with data_parallel=True <= 1.0x PyTorch fused Adam's (median of the per-epoch "
            "ratios) |") in text
    assert "| stretch: <= 0.8x |" in text


@pytest.mark.slow
def test_quick_run_times_the_sketchpad_update_with_the_inside_panel_off_and_on(quick):
    text, raw = quick
    for line in ("## The sketchpad's live update, with the inside panel off and on", "render the strokes",
                 "panel: what it resembles", "one update (median)", "change its mind", "median update <= 25 ms"):
        assert line in text, line
    settings = raw["inside_panel"]["settings"]
    assert list(settings) == ["MLP, panel off", "MLP, panel on", "CNN, panel off", "CNN, panel on"]
    for name, s in settings.items():
        assert s["update_ms"] > 0 and all(ms > 0 for ms in s["parts_ms"].values()), name
        assert any(p.startswith("panel: ") for p in s["parts_ms"]) == name.endswith("on"), name
    assert all(ms > 0 for ms in raw["inside_panel"]["change_its_mind_ms"].values())


def test_cnn_flops_per_step_match_a_hand_calculation():
    bench_machine = _bench("bench_machine")
    # batch 128; 28 -> conv 5x5 -> 24 -> pool -> 12 -> conv 5x5 -> 8 -> pool -> 4; a conv is one im2col matmul
    # (N·Ho·Wo, k·k·C) @ (k·k·C, F): 2·M·K·N FLOPs per pass
    conv1 = 2 * (128 * 24 * 24) * (5 * 5 * 1) * 32       # 117,964,800
    conv2 = 2 * (128 * 8 * 8) * (5 * 5 * 32) * 64        # 838,860,800
    dense1, dense2 = 2 * 128 * (4 * 4 * 64) * 128, 2 * 128 * 128 * 10
    assert [p[1:] for p in bench_machine.products("cnn", 128)] == [(73728, 25, 32), (8192, 800, 64),
                                                                    (128, 1024, 128), (128, 128, 10)]
    flops = bench_machine.step_flops("cnn", 128)
    assert flops["all"] == 3 * (conv1 + conv2 + dense1 + dense2) == 2_972_123_136  # forward, dW and dX
    assert flops["needed"] == flops["all"] - conv1  # training skips the first conv's dX
    assert bench_machine.epoch_flops(50_000, "cnn")["all"] == flops["all"] * 50_000 // 128  # linear in the examples


def test_conv_variants_agree_with_npnet():
    """Every design that benchmarks/conv_variants.py times computes npnet's logits and gradients (its own check)."""
    variants = _module(ROOT / "benchmarks" / "conv_variants.py")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 784), dtype=np.float32), rng.integers(0, 10, 8)
    reference = variants.VARIANTS[variants.SHIPPED][0]()
    for label, (build, to_layout, from_layout) in variants.VARIANTS.items():
        variants.check(build(), reference, X, y, to_layout, from_layout)
    broken = variants.network(variants.chunked(3), variants.MaxPool2D)  # chunks that do not divide the batch
    variants.check(broken, reference, X, y, None, None)
    build, to_layout, from_layout = next(iter(variants.VARIANTS.values()))  # (a), channels first

    def kernels_only(name, i, value):  # converts the kernels but forgets that Flatten's order changed too
        return value.transpose(3, 2, 0, 1) if value.ndim == 4 else value
    with pytest.raises(AssertionError, match="logits differ"):  # the check does catch a wrong layout
        variants.check(build(), reference, X, y, kernels_only, from_layout)


def test_summary_counts_training_time_to_the_dev_target():
    summarise = _bench("bench_report").summarise
    epochs = [{"train_time": t, "eval_time": 0.5, "train_acc": 0.9, "dev_acc": d}
              for t, d in [(2.0, 0.96), (1.0, 0.97), (3.0, 0.976), (1.0, 0.98)]]
    s = summarise({"epochs": epochs, "test_acc": 0.98, "peak_rss_mb": 300.0, "rss_before_mb": 250.0})
    assert s["reach"] == (6.0, 3)  # 2 + 1 + 3 s of training steps, reached in epoch 3; evaluations not counted
    assert s["epoch"] == 1.5 and s["total"] == 7.0 and s["total_with_eval"] == 9.0
    never = summarise({"epochs": epochs[:2], "test_acc": 0.9, "peak_rss_mb": 1.0, "rss_before_mb": None})
    assert never["reach"] is None


def test_flops_per_epoch_match_the_issue():
    flops = _bench("bench_machine").epoch_flops(50_000)
    # 784-256-128-10: 2 * 50,000 * 234,752 multiply-adds per pass, three passes (forward, dW, dX)
    assert flops["all"] == 3 * 2 * 50_000 * (784 * 256 + 256 * 128 + 128 * 10)
    assert 69e9 < flops["all"] < 71e9 and flops["needed"] == flops["all"] - 2 * 50_000 * 784 * 256


@pytest.mark.slow
def test_a_missing_framework_is_skipped_and_said_so(capsys, monkeypatch):
    bench = _bench()
    frameworks = _bench("bench_config").FRAMEWORKS  # the one table that bench and bench_report read
    monkeypatch.setitem(frameworks, "nonesuch", ("no_such_module_for_npnet", "a framework not installed"))
    assert bench.main(["--quick", "--models", "mlp", "--frameworks", "npnet,nonesuch", "--calls", "0"]) == 0
    text = capsys.readouterr().out
    assert "- skipped nonesuch: `no_such_module_for_npnet` is not installed" in text
    assert "|  | npnet |" in text and "nonesuch |" not in text


def test_adam_flushes_subnormal_weights_every_flush_every_steps():
    from npnet.layers import Dense
    from npnet.optim import Adam

    layer = Dense(3, 2, np.random.default_rng(0))
    layer.params["W"][0] = [1e-40, 1e-30]  # subnormal in float32, and small but normal
    opt = Adam([layer], lr=0.0)            # lr 0: only the flush can change a weight
    for _ in range(opt.flush_every - 1):
        opt.step()
    assert layer.params["W"][0, 0] == np.float32(1e-40) != 0
    opt.step()
    assert layer.params["W"][0, 0] == 0 and layer.params["W"][0, 1] == np.float32(1e-30)
    off = Dense(3, 2, np.random.default_rng(0))
    off.params["W"][0, 0] = 1e-40
    opt = Adam([off], lr=0.0)
    opt.flush_every = 0
    for _ in range(200):
        opt.step()
    assert off.params["W"][0, 0] == np.float32(1e-40)


def test_cnn_before_after_compares_the_conv_layers_of_an_earlier_commit_with_todays(capsys):
    # benchmarks/cnn_before_after.py: issue 23's per-layer before/after table, from the git history
    if subprocess.run(["git", "cat-file", "-e", "c5a5e83:npnet/conv.py"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("this clone does not have commit c5a5e83 (a shallow clone)")
    assert _bench("cnn_before_after").main(["--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "| 4 Conv2D |" in out and "| **the whole step** |" in out
