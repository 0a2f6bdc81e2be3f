"""Every exercise: its solution passes, the untouched stub is 'not done yet', and each catalogued mistake is named.

The last test runs every notebook with each 'Your turn' stub replaced by its solution, and requires ✓ from
every check cell: it proves the notebooks' wiring, not only the checker.
"""

import copy
import importlib
import json
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest

import npnet.exercises as exercises_pkg
from npnet.exercises import Exercise, _is_model

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _modules():
    return {m.name: importlib.import_module(f"npnet.exercises.{m.name}")
            for m in pkgutil.iter_modules(exercises_pkg.__path__) if re.fullmatch(r"nb\d\d", m.name)}


def _exercises():
    return [(f"{mod_name}.{name}", ex) for mod_name, mod in sorted(_modules().items())
            for name, ex in vars(mod).items() if isinstance(ex, Exercise)]


EXERCISES = _exercises()
IDS = [name for name, _ in EXERCISES]


def _stub(*args):
    raise NotImplementedError


def test_there_are_enough_exercises_spread_over_the_notebooks():
    per_notebook = {name.split(".")[0] for name in IDS}
    assert len(EXERCISES) >= 15, IDS
    assert per_notebook == {f"nb{i:02d}" for i in range(1, 7)}, per_notebook


@pytest.mark.parametrize("name,ex", EXERCISES, ids=IDS)
def test_attribute_name_is_the_learners_function_name(name, ex):
    assert name.split(".")[1] == ex.name


@pytest.mark.parametrize("name,ex", EXERCISES, ids=IDS)
def test_solution_passes(name, ex, capsys):
    assert ex.check(ex.solution_fn) is None             # a check cell shows the message alone, no bare True
    assert capsys.readouterr().out.startswith("✓")
    assert ex.diagnose(ex.solution_fn)[0] == "pass"


@pytest.mark.parametrize("name,ex", EXERCISES, ids=IDS)
def test_solution_source_defines_the_learners_function(name, ex):
    namespace = {}
    exec("import numpy as np\n" + ex.solution_source(), namespace)
    assert ex.diagnose(namespace[ex.name])[0] == "pass"


@pytest.mark.parametrize("name,ex", EXERCISES, ids=IDS)
def test_stub_is_not_done_yet_and_does_not_raise(name, ex, capsys):
    assert ex.check(_stub) is None
    assert capsys.readouterr().out.startswith("· not done yet")
    verdict, message = ex.diagnose(lambda *args: None)
    assert verdict == "not done" and "forget `return`" in message


def _arrays_in(args):
    return [a for a in args if isinstance(a, np.ndarray) and a.size]


WITH_ARRAYS = [(name, ex) for name, ex in EXERCISES
               if any(_arrays_in(args) for args in ex.cases(np.random.default_rng(ex.seed)))]


@pytest.mark.parametrize("name,ex", WITH_ARRAYS, ids=[name for name, _ in WITH_ARRAYS])
def test_an_answer_that_changes_its_input_in_place_is_caught(name, ex):
    def scribbles(*args):
        out = ex.solution_fn(*args)
        for a in _arrays_in(args)[:1]:                  # float, integer (labels) or boolean: any array will do
            a.flat[0] = not a.flat[0] if a.dtype == bool else a.flat[0] + 1
        return out

    verdict, message = ex.diagnose(scribbles)
    assert verdict == "wrong" and "in place" in message, message


@pytest.mark.parametrize("name,ex", EXERCISES, ids=IDS)
def test_every_argument_is_a_watched_array_or_cannot_be_changed(name, ex):
    """diagnose watches ndarray arguments for in-place changes; any other argument must be immutable (fit_box and
    conv_cost take only ints), or an answer could change it unseen: a list, for one, is not watched."""
    def watched_or_immutable(a):
        if isinstance(a, tuple):
            return all(watched_or_immutable(x) for x in a)
        if _is_model(a):                                # its weights and train/eval modes are watched too
            return True
        return isinstance(a, (np.ndarray, int, float, str, np.generic)) or a is None

    for args in ex.cases(np.random.default_rng(ex.seed)):
        assert all(watched_or_immutable(a) for a in args), (name, [type(a) for a in args])


WITH_MODELS = [(name, ex) for name, ex in EXERCISES
               if any(_is_model(a) for args in ex.cases(np.random.default_rng(ex.seed)) for a in args)]


@pytest.mark.parametrize("name,ex", WITH_MODELS, ids=[name for name, _ in WITH_MODELS])
@pytest.mark.parametrize("change", ["weights", "mode"])
def test_an_answer_that_changes_a_model_it_was_given_is_caught(name, ex, change):
    def tampers(*args):
        out = ex.solution_fn(*args)
        model = next(a for a in args if _is_model(a))
        if change == "weights":
            next(layer for layer in model if layer.params).params["W"].flat[0] += 1
        else:
            for layer in model:                         # eval mode switched on and never switched back
                layer.training = not layer.training
        return out

    verdict, message = ex.diagnose(tampers)
    assert verdict == "wrong" and "changed the model" in message and "eval_mode" in message, message


WITH_NUMERICAL = [(name, ex) for name, ex in EXERCISES if ex.numerical is not None]


@pytest.mark.parametrize("name,ex", WITH_NUMERICAL, ids=[name for name, _ in WITH_NUMERICAL])
def test_diagnose_checks_the_reference_against_central_differences(name, ex):
    """A reference whose gradient is 1% too large, and an answer that copies it, are caught by the numerical step."""
    def one_percent_off(*args):
        out = ex.solution_fn(*args)
        return tuple(1.01 * o for o in out) if isinstance(out, tuple) else 1.01 * out

    broken = copy.copy(ex)
    broken.reference = one_percent_off
    verdict, message = broken.diagnose(one_percent_off)
    assert verdict == "wrong" and "not central differences" in message, message


@pytest.mark.parametrize("name,ex", EXERCISES, ids=IDS)
def test_every_mistake_gets_its_own_message(name, ex):
    assert len(ex.mistakes) >= 2, f"{name} recognises fewer than two mistakes"
    for message, wrong in ex.mistakes:
        assert ex.diagnose(wrong) == ("mistake", f"✗ {message}"), (name, message)
    messages = [m for m, _ in ex.mistakes]
    assert len(set(messages)) == len(messages)


@pytest.mark.parametrize("name,ex", EXERCISES, ids=IDS)
def test_a_crash_or_garbage_is_reported_not_raised(name, ex):
    def crashes(*args):
        return 1 / 0

    verdict, message = ex.diagnose(crashes)
    assert verdict == "wrong" and "ZeroDivisionError" in message
    verdict, _ = ex.diagnose(lambda *args: "not an array")
    assert verdict == "wrong"


@pytest.mark.parametrize("name,ex", EXERCISES, ids=IDS)
def test_hint_and_solution_print(name, ex, capsys):
    ex.hint()
    ex.solution()
    out = capsys.readouterr().out
    assert len(out) > 40 and f"def {ex.name}(" in out


def test_lists_arrays_and_complex_numbers_are_judged_by_their_values():
    from npnet.exercises import nb01

    assert nb01.softmax.diagnose(lambda z: nb01.softmax_solution(z).tolist())[0] == "pass"   # a list is one array
    assert nb01.softmax.diagnose(lambda z: nb01.softmax_solution(z) + 1j)[0] == "wrong"      # not real numbers
    assert nb01.softmax_grads.diagnose(lambda *a: list(nb01.softmax_grads_solution(*a)))[0] == "pass"

    def exits(z):
        raise SystemExit(1)

    assert nb01.softmax.diagnose(exits)[0] == "wrong"


def test_a_slightly_wrong_answer_fails_with_the_size_of_the_difference():
    from npnet.exercises import nb01

    verdict, message = nb01.softmax.diagnose(lambda z: nb01.softmax_solution(z) * 1.01)
    assert verdict == "wrong" and "largest difference" in message


# -- the notebooks, with every stub replaced by its solution --------------------------------------------------
STUB = re.compile(r"^# Your turn\b.*?^def (\w+)\(", re.S | re.M)


def _stub_cells(nb):
    """(index, function name) of each 'Your turn' stub cell: it starts with '# Your turn' and raises NotImplementedError."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"])
        m = STUB.match(source)
        if cell["cell_type"] == "code" and m and "NotImplementedError" in source:
            found.append((i, m.group(1)))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_stubs_for_its_exercises(path):
    module = _modules()[f"nb{path.name[:2]}"]
    names = {n for _, n in _stub_cells(json.loads(path.read_text()))}
    wanted = {ex.name for ex in vars(module).values() if isinstance(ex, Exercise)}
    assert names == wanted, (sorted(names), sorted(wanted))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_with_solutions_reports_a_tick_from_every_check(path, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    module = _modules()[f"nb{path.name[:2]}"]
    for i, name in _stub_cells(nb):
        nb.cells[i].source = getattr(module, name).solution_source()
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    checks = [c for c in nb.cells if c.cell_type == "code" and re.search(r"\bex\.\w+\.check\(", c.source)]
    assert len(checks) == len(_stub_cells(json.loads(path.read_text())))
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        assert text.startswith("✓") and "✗" not in text and "not done" not in text, (cell.source, text)
        assert not [o for o in cell.outputs if o.get("output_type") == "execute_result"], cell.source  # no bare True
