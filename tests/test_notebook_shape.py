"""Every notebook has the shape of a lesson: a numbered title, what it teaches and how long it takes, a main path of
at most 2,500 words of prose, then its findings, exercises and questionnaire; the drawing notebook comes last."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("0*.ipynb"))
MAX_WORDS = 2500


def markdown(path):
    cells = json.loads(path.read_text())["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def main_path_words(md):
    """Words of prose before a heading that starts "Going deeper", leaving out <details> fold-outs and $…$ maths."""
    main = re.split(r"^#+\s*Going deeper", md, flags=re.M | re.I)[0]
    main = re.sub(r"<details.*?</details>", " ", main, flags=re.S)
    main = re.sub(r"\$\$.*?\$\$|\$[^$\n]*\$", " ", main, flags=re.S)
    return len(re.findall(r"[A-Za-z][A-Za-z'’-]*", main))


def test_the_word_count_leaves_out_fold_outs_maths_and_going_deeper():
    md = "# 01 · T\nOne two three.\n<details><summary>x</summary>\nfour five\n</details>\n$a + b$ six\n$$c$$\n" \
         "## Going deeper\nseven eight"
    assert main_path_words(md) == 5   # T, One, two, three, six


def test_the_course_is_six_numbered_notebooks_ending_with_the_drawing_one():
    assert [p.name[:3] for p in NOTEBOOKS] == [f"{i:02d}_" for i in range(1, len(NOTEBOOKS) + 1)]
    assert "draw" in NOTEBOOKS[-1].name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_opens_with_what_it_teaches_and_how_long_it_takes(path):
    first = json.loads(path.read_text())["cells"][0]
    text = "".join(first["source"])
    assert first["cell_type"] == "markdown" and re.match(rf"# {path.name[:2]} · \S", text), text[:80]
    assert "What you will learn" in text and re.search(r"\d+ minutes", text), text[:300]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_main_path_reads_in_about_twenty_minutes(path):
    assert main_path_words(markdown(path)) <= MAX_WORDS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_has_its_findings_exercises_and_questionnaire(path):
    headings = re.findall(r"^#+\s*(.+)$", markdown(path), flags=re.M)
    for wanted in ("What we found", "Exercises", "Questionnaire"):
        assert any(h.startswith(wanted) for h in headings), (wanted, headings)
