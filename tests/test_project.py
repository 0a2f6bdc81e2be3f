"""Project invariants: one dependency list in two formats, and the README's two commands."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = project["dependencies"] + extras["course"] + extras["test"]
    return {re.split(r"[<>=!~ ]", r, 1)[0].lower(): r.replace(" ", "").lower() for r in reqs}


def _conda_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    reqs = [d for d in env["dependencies"] if isinstance(d, str) and not d.startswith(("python", "pip"))]
    return {re.split(r"[<>=!~ ]", r, 1)[0].lower(): r.replace(" ", "").lower() for r in reqs}


def test_environment_yml_matches_pyproject():
    assert _conda_requirements() == _pyproject_requirements()


def test_python_version_agrees():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert project["requires-python"] == ">=3.11" and "python>=3.11" in env["dependencies"]


def test_readme_gives_the_two_commands_first():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^make \w+", readme, re.M)
    assert commands[:2] == ["make lab", "make test"], commands


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
