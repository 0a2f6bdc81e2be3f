"""Exercises with instant feedback: `ex.NAME.check(fn)` prints ✓, the specific mistake, or "not done yet".

Each notebook has its own module (`npnet.exercises.nb01`, ...), holding its exercises and their solutions.
In a notebook:

    from npnet.exercises import nb01 as ex
    ex.softmax.check(softmax)   # prints ✓ / ✗ with a diagnosis / · not done yet
    ex.softmax.hint()           # a nudge
    ex.softmax.solution()       # the model answer's code

`check` never raises, even under np.seterr(all="raise"): a notebook runs top to bottom whether or not the learner
has answered. It returns None, so that a check cell shows only its message; `diagnose` gives the verdict as data.
Besides the values, the types are checked: counts must be integers, and an answer must give float32 for float32
inputs wherever the reference does (a float64 leak doubles memory and slows every later step).
"""

import copy
import inspect
import textwrap
import warnings

import numpy as np

NOT_DONE = "· not done yet: the notebook goes on with npnet's own version. {name}.hint() gives a nudge."
RETURNED_NONE = ("· not done yet: it returned None{which}. If you have written the body, did you forget `return`? "
                 "{name}.hint() gives a nudge.")
COUNTS = ("{name} gives the right numbers{which}, but as floats: they are whole numbers (counts or labels), so make them integers "
          "(np.zeros(..., dtype=int), // rather than /, or .astype(int) at the end).")
FLOAT64_LEAK = ("{name} gives the right numbers{which}, but turns float32 inputs into float64: keep the input's dtype, "
                "as npnet does (float64 doubles the memory and slows every later step). It creeps in from "
                "np.zeros(shape) without dtype=x.dtype, from .astype(float), or from a NumPy float64 number such as "
                "np.sqrt(2); Python numbers keep float32.")
MODEL_CHANGED = ("✗ {name} changed the model `{arg}` it was given, its weights or a layer's train/eval mode, and left "
                 "it so: the caller's model changes too. To switch dropout off for a moment, use "
                 "`with npnet.inside.eval_mode({arg}):`, which puts each layer's mode back.")
TEN_CLASSES = ("{name} is right with 10 classes but not with {classes}: on {case} it {what}. Something in it assumes "
               "10 classes, such as np.eye(10), range(10), reshape(-1, 10) or np.zeros((N, 10)): take the number of "
               "classes from the input, {source}.")


class Exercise:
    """One 'your turn' piece: the learner's function is run on `cases` and compared with `reference`.

    name       the function name the learner writes (also the attribute name in the module)
    reference  the correct answer as a function: npnet's own implementation where there is one
    solution   the model answer the learner may read: a plain function, shown by solution()
    cases      rng -> list of argument tuples (batches of 1 among them; edge cases included)
    verified   what a pass means, e.g. "matches npnet on batches of 1, 7 and 128"
    mistakes   [(message, wrong_function)]: a typical wrong answer, as code, and what to tell the learner
    numerical  optional: args -> expected output by central differences (float64), checked after the reference
    hint_text  a nudge in words
    returns    names of the outputs, e.g. ("dW", "db"), used in messages
    raised_note  optional: a sentence added when the learner's function raises, e.g. about the array layout
    rtol, atol tolerances for comparing outputs
    float32    whether to probe "float32 in, float32 out": the first case with its float64 arrays as float32; an
               output the reference gives as float32 there (and as float64 on the case itself) must be float32
    classes    optional (count, source): count(*args) is a case's number of classes, source where an answer finds
               it, e.g. "logits.shape[1]"; an answer right on every 10-class case but wrong on another is told that
               it assumes 10 classes
    """

    def __init__(self, name, reference, solution, cases, verified, mistakes, hint_text,
                 numerical=None, returns=None, rtol=1e-5, atol=1e-7, seed=0, raised_note=None, float32=True,
                 classes=None):
        self.name, self.reference, self.solution_fn = name, reference, solution
        self.cases, self.verified, self.mistakes = cases, verified, mistakes
        self.numerical, self.hint_text, self.returns = numerical, hint_text, returns
        self.raised_note = raised_note
        self.rtol, self.atol, self.seed, self.float32 = rtol, atol, seed, float32
        self.classes = classes

    # -- what the learner calls -------------------------------------------------------------------------
    def check(self, fn):
        """Run fn on every case and print one line: ✓, ✗ with a diagnosis, or · not done yet. Returns None, so a
        notebook cell shows the message alone; diagnose(fn) gives the verdict."""
        verdict, message = self.diagnose(fn)
        print(message)

    def hint(self):
        """Print a nudge."""
        print(textwrap.fill(self.hint_text, 110))

    def solution(self):
        """Print the model answer's source code."""
        print(self.solution_source())

    def solution_source(self):
        """The model answer as source text, with the learner's function name."""
        source = textwrap.dedent(inspect.getsource(self.solution_fn))
        return source.replace(f"def {self.solution_fn.__name__}(", f"def {self.name}(", 1)

    # -- how the verdict is reached ---------------------------------------------------------------------
    def diagnose(self, fn):
        """('pass' | 'mistake' | 'wrong' | 'not done', message) for the learner's function fn. Never raises: NumPy's
        floating-point errors are ignored throughout (whatever np.seterr says), and an output object that breaks
        the comparison is reported as wrong."""
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                verdict, message = self._diagnose(fn)
                if verdict == "wrong":
                    return self._explain_wrong(fn) or (verdict, message)
                return verdict, message
            except Exception as e:  # e.g. a list subclass whose __iter__ raises: the learner's, so reported
                return "wrong", (f"✗ {self.name}: its result could not be compared with the answer "
                                 f"({type(e).__name__}: {e}); return NumPy arrays or numbers")

    def _diagnose(self, fn):
        cases = self.cases(np.random.default_rng(self.seed))
        expected = [_call(self.reference, args) for args in cases]
        outputs = []
        for args, want in zip(cases, expected):
            out = _call(fn, args, watch=True)
            if isinstance(out, _Raised):
                if isinstance(out.error, NotImplementedError):
                    return "not done", NOT_DONE.format(name=f"ex.{self.name}")
                note = f". {self.raised_note}" if self.raised_note else ""
                return "wrong", f"✗ {self.name} raised {out.text} on {_describe(args)}{note}"
            if isinstance(out, _Mutated) and _is_model(args[out.index]):
                return "wrong", MODEL_CHANGED.format(name=self.name, arg=self._arg_name(out.index))
            if isinstance(out, _Mutated):
                name = self._arg_name(out.index)
                return "wrong", (f"✗ {self.name} changed its argument `{name}` in place, so the caller's array changes "
                                 f"too: work on a copy (start with `{name} = {name}.copy()`, or build a new array: `{name} * mask`, "
                                 f"`{name} - ...`; not `{name} -= ...` or `{name}[...] = ...` on the argument itself)")
            parts = _outputs(out, want)
            if any(o is None for o in parts):
                i = next(k for k, o in enumerate(parts) if o is None)
                which = f" for {self.returns[i]}" if self.returns and len(parts) > 1 else ""
                return "not done", RETURNED_NONE.format(which=which, name=f"ex.{self.name}")
            outputs.append(out)
        bad = [i for i, (out, want) in enumerate(zip(outputs, expected)) if not self._close(out, want)]
        if not bad:
            problem = self._dtype_problem(fn, cases, outputs, expected)
            if problem is not None:
                return problem
            if self.numerical is not None:
                for args, out in zip(cases, outputs):
                    numeric = self.numerical(*_as_float64(copy.deepcopy(args)))
                    if not self._close(out, numeric, rtol=1e-5, atol=1e-6):
                        return "wrong", (f"✗ {self.name} matches npnet but not central differences on "
                                         f"{_describe(args)}: look at the finite-difference check")
            return "pass", f"✓ {self.name}: {self.verified}"
        for message, wrong in self.mistakes:
            if all(self._close(out, _call(wrong, args), equal_nan=True) for args, out in zip(cases, outputs)):
                return "mistake", f"✗ {message}"
        i = bad[0]
        return "wrong", f"✗ {self.name}: {_difference(outputs[i], expected[i], self.returns)} on {_describe(cases[i])}"

    def _explain_wrong(self, fn):
        """('mistake', message) for a wrong answer that no listed mistake matches but a look at the cases can name
        (here: a hard-coded 10 classes); None if there is nothing to add. Subclasses add their own."""
        return self._assumes_ten_classes(fn) if self.classes is not None else None

    def _assumes_ten_classes(self, fn):
        """('mistake', message) if fn is right on every case with 10 classes and wrong on one with another number
        of classes (a hard-coded 10), else None."""
        count, source = self.classes
        first_wrong = None
        for args in self.cases(np.random.default_rng(self.seed)):
            want, out = _call(self.reference, args), _call(fn, args)
            if not isinstance(out, _Raised) and self._close(out, want):
                continue
            if count(*args) == 10:
                return None
            first_wrong = first_wrong or (args, want, out)
        if first_wrong is None:
            return None
        args, want, out = first_wrong
        what = f"raised {out.text.rstrip(' .')}" if isinstance(out, _Raised) else f"is off: {_difference(out, want, self.returns)}"
        return "mistake", "✗ " + TEN_CLASSES.format(name=self.name, classes=count(*args), case=_describe(args),
                                                    what=what, source=source)

    def _dtype_problem(self, fn, cases, outputs, expected):
        """(verdict, message) if the values are right but their type is not: counts as floats, or float64 from
        float32 inputs where the reference keeps float32. None if the types are right."""
        for out, want in zip(outputs, expected):
            for k, (o, w) in enumerate(zip(_outputs(out, want), _outputs(want, want))):
                if _is_count(w) and _is_float(o):
                    return "mistake", "✗ " + COUNTS.format(name=self.name, which=self._which(k, want))
        probe = _as_float32(cases[0])
        if not self.float32 or probe is None:
            return None
        want, out = _call(self.reference, probe), _call(fn, probe, watch=True)
        if isinstance(out, (_Raised, _Mutated)) or not self._close(out, want, rtol=1e-3, atol=1e-4):
            what = f"raised {out.text.rstrip(' .')}" if isinstance(out, _Raised) else "changed an argument in place" \
                if isinstance(out, _Mutated) else _difference(out, want, self.returns, rtol=1e-3, atol=1e-4)
            return "wrong", f"✗ {self.name}, given float32 arrays, {what} on {_describe(probe)}"
        before = _outputs(expected[0], expected[0])
        for k, (o, w) in enumerate(zip(_outputs(out, want), _outputs(want, want))):
            if _dtype(before[k]) == np.float64 and _dtype(w) == np.float32 and _dtype(o) == np.float64:
                return "mistake", "✗ " + FLOAT64_LEAK.format(name=self.name, which=self._which(k, want))
        return None

    def _which(self, k, want):
        """' for dW': which output, when there are several."""
        return f" for {self.returns[k]}" if self.returns and isinstance(want, tuple) and len(want) > 1 else ""

    def _arg_name(self, index):
        names = list(inspect.signature(self.solution_fn).parameters)
        return names[index] if index < len(names) else f"argument {index + 1}"

    def _close(self, out, want, rtol=None, atol=None, equal_nan=False):
        outs, wants = _outputs(out, want), _outputs(want, want)
        if len(outs) != len(wants):
            return False
        rtol = self.rtol if rtol is None else rtol
        atol = self.atol if atol is None else atol
        for o, w in zip(outs, wants):
            o, w = _real(o), _real(w)
            if o is None or w is None:
                return False
            with np.errstate(all="ignore"):
                if o.shape != w.shape or not np.allclose(o, w, rtol=rtol, atol=atol, equal_nan=equal_nan):
                    return False
        return True


class _Raised:
    def __init__(self, error):
        self.error = error
        self.text = f"{type(error).__name__}: {error}"


class _Mutated:
    def __init__(self, index):
        self.index = index


def _call(fn, args, watch=False):
    """fn(*copies of args), with numpy warnings silenced; an exception is returned, not raised.
    With watch, an argument changed in place is returned as _Mutated (in a notebook it would change the caller's)."""
    given = copy.deepcopy(args)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out = fn(*given)
    except (Exception, SystemExit) as e:  # the learner's code may raise anything; it is reported, never re-raised
        return _Raised(e)
    if watch:
        for i, (before, after) in enumerate(zip(args, given)):
            if isinstance(before, np.ndarray) and not np.array_equal(before, after, equal_nan=True):
                return _Mutated(i)
            if _is_model(before) and not _same_model(before, after):
                return _Mutated(i)
    return out


def _is_model(x):
    """Whether x is an npnet model: a non-empty list of layers, each with a params dict and a training flag."""
    return isinstance(x, list) and len(x) > 0 and all(
        isinstance(getattr(layer, "params", None), dict) and hasattr(layer, "training") for layer in x)


def _same_model(before, after):
    """Whether a model still has the same layers, weights (values and dtypes) and settings, such as each layer's
    train/eval mode and dropout rate: its number, bool and string attributes (the caches forward writes aside)."""
    def settings(layer):
        return {k: v for k, v in vars(layer).items() if isinstance(v, (bool, int, float, str, np.number))}
    return (_is_model(after) and len(before) == len(after) and all(
        type(a) is type(b) and settings(a) == settings(b) and a.params.keys() == b.params.keys()
        and all(a.params[k].dtype == b.params[k].dtype and np.array_equal(a.params[k], b.params[k]) for k in a.params)
        for a, b in zip(before, after)))


def _outputs(x, like):
    """x as a tuple of outputs, shaped after the answer `like`: a tuple (or list, or 1-D array of scalars) of the
    same length for a function with several outputs; otherwise one output, a list being one array."""
    if isinstance(like, tuple):
        if isinstance(x, (tuple, list)):
            return tuple(x)
        if isinstance(x, np.ndarray) and x.shape == (len(like),) and all(np.ndim(w) == 0 for w in like):
            return tuple(x)
    return (x,)


def _real(x):
    """x as a float64 array, or None if it is not numbers (or has a non-zero imaginary part)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if np.iscomplexobj(x) and np.any(np.imag(x) != 0):
                return None
            return np.asarray(np.real(x), np.float64)
    except Exception:  # an odd object may raise anything from __array__, __float__ or __len__
        return None


def _dtype(x):
    """The NumPy dtype of an array or NumPy number; None for anything else (a Python float has no fixed width)."""
    return x.dtype if isinstance(x, (np.ndarray, np.generic)) else None


def _is_count(x):
    """Integers, not booleans: a Python or NumPy int, or an integer array."""
    if isinstance(x, (bool, np.bool_)):
        return False
    return isinstance(x, (int, np.integer)) or (isinstance(x, np.ndarray) and x.dtype.kind in "iu")


def _is_float(x):
    return isinstance(x, (float, np.floating)) or (isinstance(x, np.ndarray) and x.dtype.kind == "f")


def _as_float32(args):
    """args with each float64 array as float32, or None if there is none."""
    if not any(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in args):
        return None
    return tuple(a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == np.float64 else a for a in args)


def _as_float64(args):
    """args with each float array as float64: central differences are taken in float64."""
    return tuple(a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args)


def _describe(args):
    """'inputs of shapes (7, 10), (7,)': enough to reproduce the failing case. A model is named by its layers."""
    def one(a):
        if isinstance(a, np.ndarray):
            return str(np.shape(a))
        if _is_model(a):
            return "a model (" + ", ".join(type(layer).__name__ for layer in a if layer.params) + ")"
        if isinstance(a, (np.number, float)):
            return f"{float(a):.4g}"
        if isinstance(a, tuple) and all(isinstance(v, (np.number, float, int)) for v in a):
            return "(" + ", ".join(one(v) for v in a) + ")"
        return repr(a)
    return "inputs " + ", ".join(one(a) for a in args)


def _difference(out, want, names=None, rtol=1e-5, atol=1e-7):
    """Say how an output differs from the expected one: count, shape, transposition, NaN, or size."""
    outs, wants = _outputs(out, want), _outputs(want, want)
    if len(outs) != len(wants):
        return f"returned {len(outs)} value(s), expected {len(wants)}"
    for k, (o, w) in enumerate(zip(outs, wants)):
        which = f"{names[k] if names else f'output {k}'}: " if len(wants) > 1 else ""
        if _real(o) is None:
            return f"{which}returned {type(o).__name__}, expected real numbers of shape {np.shape(w)}"
        o, w = _real(o), _real(w)
        if o.shape != w.shape:
            hint = ": is it transposed?" if o.shape == w.shape[::-1] else ""
            if o.ndim == w.ndim == 4 and o.shape == (w.shape[0], w.shape[3], w.shape[1], w.shape[2]):
                hint = ": its axes look like (N, C, H, W), but npnet's layout is channels last, (N, H, W, C)"
            return f"{which}shape {o.shape}, expected {w.shape}{hint}"
        if not np.all(np.isfinite(o)) and np.all(np.isfinite(w)):
            return f"{which}contains NaN or inf where the answer is finite"
        if not np.allclose(o, w, rtol=rtol, atol=atol):
            err = np.abs(o - w).max()
            return f"{which}largest difference {err:.3g} from the answer (whose largest entry is {np.abs(w).max():.3g})"
    return "differs from the answer"
