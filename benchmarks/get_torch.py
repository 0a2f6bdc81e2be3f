"""Install torch==2.13.0 for the benchmark, but only a CPU build: never a multi-GB CUDA one.

    python benchmarks/get_torch.py     # (`make bench` runs it) exits 0 either way; the benchmark skips torch if absent

pip first resolves the install without doing it (--dry-run --report); if that would bring in CUDA packages
(nvidia-*, triton), nothing is installed and the message says how to get a CPU build instead.
"""

import importlib.metadata
import json
import subprocess
import sys
import tempfile
from pathlib import Path

TORCH = "torch==2.13.0"
CUDA_PACKAGES = ("nvidia-", "nvidia_", "triton", "cuda-", "cuda_")


def installed():
    """The installed torch version, or None."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def plan():
    """What `pip install torch==2.13.0` would install: [(name, version)], or raises RuntimeError."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
               "--disable-pip-version-check", "--report", str(report), TORCH]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not report.exists():
            raise RuntimeError(f"pip could not resolve {TORCH}: {done.stderr.strip()[-300:]}")
        items = json.loads(report.read_text())["install"]
    return [(i["metadata"]["name"], i["metadata"]["version"]) for i in items]


def main():
    version = installed()
    if version and version.split("+")[0] == TORCH.split("==")[1]:
        print(f"torch {version} is installed")
        return 0
    try:
        packages = plan()
    except RuntimeError as e:
        print(f"not installing torch: {e}\nThe benchmark will run without PyTorch.")
        return 0
    cuda = [f"{n} {v}" for n, v in packages if n.lower().startswith(CUDA_PACKAGES)]
    if cuda:
        print(f"not installing {TORCH}: here it resolves to a CUDA build that would also pull "
              f"{', '.join(cuda[:4])}{' ...' if len(cuda) > 4 else ''}.\nInstall a CPU build of torch 2.13.0 "
              "by hand (PyTorch's own CPU wheel index) to include it; the benchmark runs without it.")
        return 0
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", TORCH])
    if done.returncode != 0:
        print("pip install torch failed; the benchmark will run without PyTorch.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
