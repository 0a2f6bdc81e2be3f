"""Notebook 02's three larger builds, checked at once: your training loop, your Dense layer, and "overfit one batch".

In a notebook:

    from npnet.exercises import builds
    builds.train.check(train)        # ✓ / ✗ with the specific mistake / · not done yet
    builds.dense.check(MyDense)      # your Dense class itself (named MyDense, so npnet's Dense keeps its name)
    builds.overfit.check(overfit_one_batch)
    builds.bug.check(bug)            # your diagnosis of builds.broken_model(rng): (layer index, "W" | "b" | "x")

Each build has hint() and solution(), like the other exercises. `check` never raises, whatever the answer does.

Policy on npnet's own code: a build exists so that you write the piece. If the answer is npnet's own
(`npnet.train.fit` or `npnet.train.batches` doing the loop's work, `npnet.layers.Dense` or a subclass of it) or this
module's model answer, the check says "✓ but that is npnet's own code: write it yourself to learn it" and returns
False: it works, but it is not credited. It is detected by which functions run during the check, so a wrapper
around them is recognised too. Copying the text of solution() into a cell is not detected.

npnet's layers overwrite their grads in backward (there is no zero_grad), and its optimisers keep the grads arrays
they were given when built, so backward must write into them in place.
"""

import contextlib
import inspect
import io
import sys
import textwrap
import warnings

import numpy as np

import npnet
from .. import gradcheck
from .. import layers as L
from .. import model as M
from .. import train as T
from ..losses import SoftmaxCrossEntropy
from ..optim import SGD, Adam
from . import NOT_DONE, RETURNED_NONE

OWN = "✓ but that is npnet's own code ({what}): write it yourself to learn it. It works, so the notebook goes on."


# -- running the learner's code -------------------------------------------------------------------------------
class _Run:
    """The outcome of one call: out, or error; and which of the watched code objects ran."""

    def __init__(self, out=None, error=None, seen=()):
        self.out, self.error, self.seen = out, error, set(seen)


@contextlib.contextmanager
def _watch(codes, on_call=None):
    """Within the block, record which of these code objects (npnet's own functions) get called, in the set yielded.
    A profile hook sees every call, so a wrapper around them is seen too; it passes events on to any hook already set.
    on_call: {code object: function(frame)}, called with the frame of each such call (its arguments in f_locals)."""
    codes, seen, old, on_call = set(codes), set(), sys.getprofile(), on_call or {}

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            seen.add(frame.f_code)
        if event == "call" and frame.f_code in on_call:
            on_call[frame.f_code](frame)
        if old is not None:
            old(frame, event, arg)

    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(old)


def _run(fn, *args, watch=(), on_call=None, **kwargs):
    """fn(*args, **kwargs) with NumPy warnings off and printing swallowed; never raises."""
    with _watch(watch, on_call) as seen:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"), \
                    contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                out = fn(*args, **kwargs)
        except (Exception, SystemExit) as e:  # the learner's code may raise anything; it is reported, never re-raised
            return _Run(error=e, seen=seen)
    return _Run(out=out, seen=seen)


def _raised(name, error):
    return f"✗ {name} raised {type(error).__name__}: {error}"


def _floats(history):
    """history as a 1-D float64 array, or None if it is not a flat sequence of real numbers."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(history, (str, bytes, dict)) or np.iscomplexobj(history):
                return None
            a = np.asarray(history, dtype=np.float64)
        return a if a.ndim == 1 else None
    except Exception:
        return None


def _close(a, b, rtol=1e-5, atol=1e-6):
    """Same shape and values to tolerance; False for anything that is not real numbers."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if np.iscomplexobj(a) or np.iscomplexobj(b):
                return False
            a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
            return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))
    except Exception:
        return False


class Build:
    """What the three builds share with the other exercises: check, hint, solution; diagnose gives the verdict."""

    def __init__(self, name, solution, hint_text, verified, mistakes=()):
        self.name, self.solution_fn, self.hint_text, self.verified = name, solution, hint_text, verified
        self.mistakes = list(mistakes)   # [(message, example wrong answer)]: each must be named by diagnose

    def check(self, answer):
        """Print one line: ✓, ✗ with the mistake, or · not done yet. True only for a pass by your own code."""
        try:
            verdict, message = self.diagnose(answer)
        except Exception as e:  # a bug in the checker must not stop Run All either
            verdict, message = "wrong", f"✗ the check itself failed ({type(e).__name__}: {e}); please report it"
        print(message)
        return verdict == "pass"

    def hint(self):
        print(textwrap.fill(self.hint_text, 110))

    def solution(self):
        print(self.solution_source())

    def solution_source(self):
        source = textwrap.dedent(inspect.getsource(self.solution_fn)).replace("train_solution(", "train(")
        for word in ("def ", "class "):
            source = source.replace(f"{word}{self.solution_fn.__name__}(", f"{word}{self.name_in_cell}(", 1)
            source = source.replace(f"{word}{self.solution_fn.__name__}:", f"{word}{self.name_in_cell}:", 1)
        return source

    @property
    def name_in_cell(self):
        return self.name


# == 1. The training loop ======================================================================================
def train_solution(model, optimizer, X, y, num_epochs, batch_size, rng):
    """Train model in place with shuffled mini-batches; returns history, the mean batch loss of each epoch.
    X: (N, ...) float32, y: (N,) int. Each epoch draws one rng.permutation(N) and visits every example once."""
    loss_fn = npnet.SoftmaxCrossEntropy()
    history = []
    for epoch in range(num_epochs):
        order = rng.permutation(len(X))               # a new order every epoch, from the given rng only
        losses = []
        for i in range(0, len(X), batch_size):        # the last batch may be smaller: it is kept
            idx = order[i:i + batch_size]
            logits = M.forward(model, X[idx])         # (B, C)
            losses.append(loss_fn.forward(logits, y[idx]))
            M.backward(model, loss_fn.backward())     # fills every layer's grads
            optimizer.step()                          # then the step uses them
        history.append(float(np.mean(losses)))        # each batch counts once, as npnet.fit does
    return history


class _Spy(L.Layer):
    """First layer of the check's model: passes its input on, recording which rows of X each step saw, and its dtype."""

    def __init__(self, rows):
        self.rows, self.batches, self.dtypes, self.evals, self.evals_since = rows, [], [], 0, False

    def forward(self, x):
        x = np.asarray(x)
        flat = np.asarray(x, np.float32).reshape(len(x), -1)
        ids = [self.rows.get(r.tobytes(), -1) for r in flat]
        self.evals_since = ids == list(range(len(self.rows)))
        if self.evals_since:                     # all of X in its order: an evaluation, e.g. the loss on X
            self.evals += 1
        else:
            self.dtypes.append(x.dtype)
            self.batches.append(ids)
        return x

    def backward(self, grad, input_grad=True):
        return grad


def _train_problem(case):
    """(model with a spy in front, optimizer, X, y, settings, rng) for one of the check's small problems."""
    n, d, c, batch_size, num_epochs, opt, seed = case
    data_rng = np.random.default_rng(100 + seed)
    X = data_rng.standard_normal((n, d)).astype(np.float32)
    y = X[:, :c].argmax(axis=1).astype(np.int64)                 # a learnable rule
    rng = np.random.default_rng(seed)
    spy = _Spy({row.tobytes(): i for i, row in enumerate(X)})
    model = [spy, L.Dense(d, 10, rng), L.ReLU(), L.Dense(10, c, rng)]
    optimizer = SGD(model, lr=0.5) if opt == "sgd" else Adam(model, lr=0.01, weight_decay=1e-3)
    return model, optimizer, X, y, dict(num_epochs=num_epochs, batch_size=batch_size, rng=rng)


# n, fan_in, classes, batch_size, num_epochs, optimiser, seed: 50 = 16 + 16 + 16 + 2 has a last partial batch
TRAIN_CASES = [(50, 12, 3, 16, 3, "sgd", 0), (48, 7, 4, 16, 2, "adam", 1)]


def _weights(model):
    """Copies of every layer's params, taken by key (in sorted order), so the order of a params dict does not matter."""
    return [layer.params[k].copy() for layer in model for k in sorted(layer.params)]


def _train_run(fn, case, watch=()):
    """Run a train function on a fresh copy of a problem: (_Run, weights, spy, X, y, X_before, y_before, settings).
    spy.labels_ok records, for each call of SoftmaxCrossEntropy.forward, whether its labels are those of the rows
    the model was just given; spy.scalar_grad, whether a Dense layer's backward was handed a single number."""
    model, optimizer, X, y, settings = _train_problem(case)
    X0, y0, spy = X.copy(), y.copy(), model[0]
    spy.labels_ok, spy.scalar_grad = [], False

    def loss_called(frame):
        labels, last = frame.f_locals.get("y"), spy.batches[-1] if spy.batches else None
        if last is not None and not spy.evals_since and np.shape(labels) == (len(last),) and min(last) >= 0:
            spy.labels_ok.append(bool(np.array_equal(np.asarray(labels), y0[last])))

    def backward_called(frame):
        try:
            spy.scalar_grad |= np.ndim(frame.f_locals.get("grad")) == 0
        except Exception:
            pass

    hooks = {SoftmaxCrossEntropy.forward.__code__: loss_called, L.Dense.backward.__code__: backward_called}
    run = _run(fn, model, optimizer, X, y, watch=watch, on_call=hooks, **settings)
    return run, _weights(model), spy, X, y, X0, y0, settings


def _fit_history(model, optimizer, X, y, num_epochs, batch_size, rng):
    return T.fit(model, optimizer, X, y, num_epochs=num_epochs, batch_size=batch_size, rng=rng,
                 progress=False, eval_train=False)["epoch_loss"]


# Typical wrong loops, each differing from the solution in one thing. The structural ones (batches) are named
# from what the spy saw; the others by running them on the same problem and comparing weights and history.
def _loop(model, optimizer, X, y, num_epochs, batch_size, rng, order="permutation", drop_last=False,
          step="after", record="mean", grad="right"):
    loss_fn, history, fixed = SoftmaxCrossEntropy(), [], None
    for epoch in range(num_epochs):
        if order == "permutation":
            idx_all = rng.permutation(len(X))
        elif order == "none":
            idx_all = np.arange(len(X))
        elif order == "once":
            fixed = rng.permutation(len(X)) if fixed is None else fixed
            idx_all = fixed
        elif order == "replace":
            idx_all = rng.integers(0, len(X), len(X))
        elif order == "global":
            idx_all = np.random.permutation(len(X))
        elif order == "choice":
            idx_all = rng.choice(len(X), len(X), replace=False)
        elif order == "two":                                  # X and y each with its own permutation
            idx_all, idy_all = rng.permutation(len(X)), rng.permutation(len(X))
        losses, sizes = [], []
        stop = len(X) - len(X) % batch_size if drop_last else len(X)
        for i in range(0, stop, batch_size):
            idx = idx_all[i:i + batch_size]
            idy = idy_all[i:i + batch_size] if order == "two" else idx
            loss = loss_fn.forward(M.forward(model, X[idx]), y[idy])
            if step == "before":
                optimizer.step()
            if grad == "loss":                                # the loss value instead of its gradient
                M.backward(model, loss)
            else:                                             # times 1, or N times too large
                M.backward(model, loss_fn.backward() * {"right": 1, "len": len(idx), "batch_size": batch_size}[grad])
            if step == "after":
                optimizer.step()
            losses.append(loss)
            sizes.append(len(idx))
        if step == "per_epoch":
            optimizer.step()
        if record == "mean":
            history.append(float(np.mean(losses)))
        elif record == "last":
            history.append(losses[-1])
        elif record == "sum":
            history.append(float(np.sum(losses)))
        elif record == "weighted":
            history.append(float(np.dot(losses, sizes) / np.sum(sizes)))
        elif record == "steps":
            history += losses
        elif record == "full":
            history.append(loss_fn.forward(M.forward(model, X), y))
    return history


def _variant(**how):
    def train(model, optimizer, X, y, num_epochs, batch_size, rng):
        return _loop(model, optimizer, X, y, num_epochs, batch_size, rng, **how)
    return train


TRAIN_MSG = {
    "no_shuffle": "every epoch visits the examples in the same order 0, 1, 2, ...: shuffle them, with a new "
                  "rng.permutation(len(X)) at the start of each epoch, so the batches differ from epoch to epoch.",
    "once": "every epoch uses the same shuffled order: you drew the permutation once, before the epochs. Draw a new "
            "rng.permutation(len(X)) at the start of each epoch, so every epoch sees new batches.",
    "replace": "some examples come twice in an epoch and others never: rng.integers (or rng.choice with its default "
               "replace=True) samples with replacement. A permutation visits every example exactly once.",
    "drop_last": "the last, smaller batch of each epoch is missing, so those examples are never trained on in that "
                 "epoch: let the loop run to len(X), and take order[i:i + batch_size] (a slice past the end is "
                 "simply shorter).",
    "global": "two runs with the same rng give different batches: the shuffle does not come from the rng argument "
              "(np.random.permutation uses NumPy's global generator). Use rng.permutation, so a seed reproduces "
              "the run.",
    "choice": "a valid shuffle, but not the draw npnet.fit makes, so the same seed gives other batches: call "
              "rng.permutation(len(X)) once per epoch, and draw nothing else from rng.",
    "two": "X and y are shuffled by two different permutations, so each image is trained with another image's label: "
           "draw one order per epoch and index both with it, X[idx] and y[idx].",
    "before": "optimizer.step() runs before backward: each step then uses the previous batch's gradients (the first "
              "step uses zeros). Order every step as forward, loss, backward, then step.",
    "per_epoch": "optimizer.step() runs once per epoch, after the batch loop: indent it into the loop, so that "
                 "every batch makes one step with its own gradients.",
    "last": "each epoch's loss is its last batch's loss: record the mean of all the batch losses of the epoch "
            "(the last batch is the smallest and the noisiest).",
    "sum": "each epoch's loss is the sum of its batch losses, so it grows with the number of batches: record their "
           "mean, np.mean(losses).",
    "weighted": "each epoch's loss weights each batch by its size; npnet.fit takes the plain mean of the batch "
                "losses, each batch counting once (np.mean(losses)). Use that, so that histories compare.",
    "steps": "history has one entry per step: record one number per epoch, the mean of that epoch's batch losses.",
    "full": "history holds the loss on the whole of X after each epoch; npnet.fit records the mean of the batch "
            "losses during the epoch, which costs nothing extra: append each batch's loss and average them.",
    "float64": "the batches reach the model as float64: npnet works in float32 (half the memory, and faster). "
               "Index X as it is, X[idx], without astype(float) or np.array(..., dtype=float).",
    "whole": "every step sees all of X: slice one mini-batch per step, X[order[i:i + batch_size]].",
    "no_step": "the weights never changed: call optimizer.step() after backward in every step.",
    "loss_value": "M.backward was given the loss itself, a single number: it needs the loss's gradient with "
                  "respect to the logits, loss_fn.backward(), an array of the logits' shape (B, C).",
    "grad_N": "the gradient passed to M.backward is N times too large (times len(idx) or batch_size): "
              "loss_fn.backward() is already the gradient of the mean loss, 1/N included. Pass it on as it is.",
    "mutated": "train changed X or y in place (rng.shuffle(X) does): the caller's data is then reordered, and "
               "shuffling X and y separately would mislabel it. Index with a permutation instead: X[idx], y[idx].",
}

# Every catalogued mistake, as a loop a learner might write. The tests write them again independently.
TRAIN_MISTAKES = [(TRAIN_MSG[k], _variant(**how)) for k, how in [
    ("no_shuffle", dict(order="none")), ("once", dict(order="once")), ("replace", dict(order="replace")),
    ("drop_last", dict(drop_last=True)), ("global", dict(order="global")), ("choice", dict(order="choice")),
    ("two", dict(order="two")), ("before", dict(step="before")), ("per_epoch", dict(step="per_epoch")),
    ("last", dict(record="last")), ("sum", dict(record="sum")), ("weighted", dict(record="weighted")),
    ("steps", dict(record="steps")), ("full", dict(record="full")), ("grad_N", dict(grad="len")),
    ("loss_value", dict(grad="loss"))]]
# the result-based ones, compared by running them; the structural ones are named from the spy
_RESULT_VARIANTS = [("two", dict(order="two")), ("before", dict(step="before")),
                    ("per_epoch", dict(step="per_epoch")), ("last", dict(record="last")),
                    ("sum", dict(record="sum")), ("weighted", dict(record="weighted")),
                    ("steps", dict(record="steps")), ("full", dict(record="full")), ("choice", dict(order="choice")),
                    ("grad_N", dict(grad="len")), ("grad_N", dict(grad="batch_size"))]


class TrainBuild(Build):
    """Build 1: the learner's train(model, optimizer, X, y, num_epochs, batch_size, rng) -> history."""

    def diagnose(self, fn):
        if fn is T.fit or fn is T.batches:
            return "own", OWN.format(what=f"npnet.train.{fn.__name__}")
        if fn is train_solution:
            return "own", OWN.format(what="builds.train_solution, the model answer")
        if not callable(fn):
            return "wrong", f"✗ pass your function itself, builds.train.check(train); got a {type(fn).__name__}"
        own = {T.fit.__code__: "npnet.train.fit", T.batches.__code__: "npnet.train.batches does the shuffling "
               "and batching", train_solution.__code__: "builds.train_solution, the model answer"}
        for case in TRAIN_CASES:
            verdict = self._diagnose_case(fn, case, own)
            if verdict is not None:
                return verdict
        return "pass", f"✓ train: {self.verified}"

    def _diagnose_case(self, fn, case, own):
        run, weights, spy, X, y, X0, y0, settings = _train_run(fn, case, watch=own)
        if run.seen:
            return "own", OWN.format(what="; ".join(sorted(own[c] for c in run.seen)))
        if isinstance(run.error, NotImplementedError):
            return "not done", NOT_DONE.format(name="builds.train")
        if run.error is not None and spy.scalar_grad:
            return "mistake", f"✗ {TRAIN_MSG['loss_value']}"
        if run.error is not None:
            return "wrong", _raised("train", run.error)
        if not (np.array_equal(X, X0) and np.array_equal(y, y0)):
            return "mistake", f"✗ {TRAIN_MSG['mutated']}"
        if run.out is None:
            return "not done", RETURNED_NONE.format(which="", name="builds.train")
        history = _floats(run.out)
        if history is None:
            return "wrong", (f"✗ train returned a {type(run.out).__name__}; return history, a list with one number "
                             f"per epoch: the mean of that epoch's batch losses")
        n, num_epochs, batch_size = len(X), settings["num_epochs"], settings["batch_size"]
        batches = spy.batches
        if any(dt != np.float32 for dt in spy.dtypes):
            return "mistake", f"✗ {TRAIN_MSG['float64']}"
        if any(i < 0 for b in batches for i in b):
            return "wrong", "✗ the model was given rows that are not rows of X: pass it X[idx] for a mini-batch idx"
        if (batches and all(len(b) == n for b in batches)) or (not batches and spy.evals):
            return "mistake", f"✗ {TRAIN_MSG['whole']}"
        sizes = [len(b) for b in batches]
        full, rest = divmod(n, batch_size)
        if rest and sizes == [batch_size] * (full * num_epochs):
            return "mistake", f"✗ {TRAIN_MSG['drop_last']}"
        if sum(sizes) != n * num_epochs:
            return "wrong", (f"✗ over {num_epochs} epochs of {n} examples the model saw {sum(sizes)} examples in "
                             f"{len(sizes)} steps, expected {n * num_epochs} in {num_epochs * -(-n // batch_size)}: "
                             f"every epoch visits each example once, in steps of batch_size")
        per_epoch = [sum(batches[k * len(batches) // num_epochs:(k + 1) * len(batches) // num_epochs], [])
                     for k in range(num_epochs)]
        if len(batches) % num_epochs or any(sorted(e) != list(range(n)) for e in per_epoch):
            return "mistake", f"✗ {TRAIN_MSG['replace']}"
        if all(e == list(range(n)) for e in per_epoch):
            return "mistake", f"✗ {TRAIN_MSG['no_shuffle']}"
        if num_epochs > 1 and all(e == per_epoch[0] for e in per_epoch):
            return "mistake", f"✗ {TRAIN_MSG['once']}"
        if not all(spy.labels_ok):
            return "mistake", f"✗ {TRAIN_MSG['two']}"
        again = _train_run(fn, case)
        if again[2].batches != batches:
            return "mistake", f"✗ {TRAIN_MSG['global']}"
        model, optimizer, Xr, yr, settings_r = _train_problem(case)
        with np.errstate(all="ignore"):
            want_history = _fit_history(model, optimizer, Xr, yr, **settings_r)
        want, want_batches = _weights(model), model[0].batches
        weights_ok = all(_close(a, b) for a, b in zip(weights, want))
        if weights_ok and _close(history, want_history, rtol=1e-5, atol=1e-7):
            return None
        for key, how in _RESULT_VARIANTS:
            model, optimizer, Xr, yr, settings_r = _train_problem(case)
            with np.errstate(all="ignore"):
                other = _loop(model, optimizer, Xr, yr, **settings_r, **how)
            if all(_close(a, b) for a, b in zip(weights, _weights(model))) and \
                    _close(history, other, rtol=1e-5, atol=1e-7):
                return "mistake", f"✗ {TRAIN_MSG[key]}"
        if all(np.array_equal(a, b) for a, b in zip(weights, [p for p in _weights(_train_problem(case)[0])])):
            return "mistake", f"✗ {TRAIN_MSG['no_step']}"
        if batches != want_batches:
            return "mistake", f"✗ {TRAIN_MSG['choice']}"
        if not weights_ok:
            err = max(float(np.abs(np.asarray(a, np.float64) - b).max()) for a, b in zip(weights, want))
            return "wrong", (f"✗ the batches are npnet.fit's, but the weights end up to {err:.3g} away from fit's: "
                             f"check each step's order, forward, loss, backward, then optimizer.step()")
        if len(history) != num_epochs:
            return "wrong", f"✗ history has {len(history)} entries for {num_epochs} epochs: one per epoch"
        got, want_h = np.round(history, 4).tolist(), np.round(want_history, 4).tolist()
        return "wrong", (f"✗ the weights match npnet.fit's, but the history does not: {got} against fit's "
                         f"{want_h}; record the mean batch loss of each epoch")


train = TrainBuild(
    "train", train_solution,
    verified="same batches, weights and per-epoch history as npnet.fit with the same seed, on 50 examples in batches "
             "of 16 (the last has 2) with SGD and on 48 examples with Adam and L2, with 3 and 4 classes",
    mistakes=TRAIN_MISTAKES,
    hint_text="Per epoch: one fresh order of the indices 0..N-1 from rng (which Generator method shuffles a range?), "
              "then walk through it in slices of batch_size; a slice past the end is just shorter, so the last "
              "batch comes for free. Per step, four things in a fixed order: forward, loss, backward, step. Keep "
              "each batch's loss and append their mean to history when the epoch ends."
)


# == 2. A Dense layer ==========================================================================================
class DenseSolution:
    """Affine map x @ W + b: (N, fan_in) -> (N, fan_out), with params and grads in matching dicts."""

    def __init__(self, fan_in, fan_out, rng):
        self.params = {"W": npnet.he_normal(fan_in, fan_out, rng),     # (fan_in, fan_out) float32
                       "b": np.zeros(fan_out, np.float32)}             # (fan_out,) float32
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        """(N, fan_in) -> (N, fan_out)."""
        self.x = x                                                     # cached: backward needs it for dW
        return x @ self.params["W"] + self.params["b"]

    def backward(self, grad, input_grad=True):
        """grad: (N, fan_out) = dL/d(output) -> dL/dx (N, fan_in), or None if not input_grad (nothing below needs
        it); fills grads W and b in place."""
        self.grads["W"][...] = self.x.T @ grad                         # (fan_in, N) @ (N, fan_out)
        self.grads["b"][...] = grad.sum(axis=0)                        # the bias touches every row
        return grad @ self.params["W"].T if input_grad else None       # (N, fan_out) @ (fan_out, fan_in)


DENSE_MSG = {
    "instance": "pass the class itself, builds.dense.check(MyDense), not an instance MyDense(...)",
    "no_params": "the layer has no params dict with 'W' and 'b': npnet's optimisers find a layer's parameters "
                 "in layer.params, and their gradients under the same names in layer.grads",
    "no_grads": "the layer has no grads dict with 'W' and 'b' arrays of the params' shapes: create them in __init__ "
                "(np.zeros_like each param), because the optimiser keeps those very arrays from the start",
    "W_shape": "W has shape (fan_out, fan_in): npnet's W is (fan_in, fan_out), so that x @ W maps (N, fan_in) to "
               "(N, fan_out) with no transpose",
    "b_shape": "b has shape (1, fan_out): make it (fan_out,), a 1-D array, like npnet's (broadcasting adds it to "
               "every row)",
    "W64": "W is float64: npnet works in float32, and one float64 parameter turns every activation above it into "
           "float64. npnet.he_normal(fan_in, fan_out, rng) returns float32; or .astype(np.float32).",
    "b64": "b is float64 (np.zeros defaults to float64): npnet works in float32, and x @ W + b would turn the "
           "layer's output, and everything after it, into float64. Use np.zeros(fan_out, np.float32).",
    "init": "W is not He-initialised: its entries need mean 0 and std sqrt(2 / fan_in), as "
            "npnet.he_normal(fan_in, fan_out, rng) draws them; any draw with those statistics counts",
    "b_init": "b does not start at 0: biases start at zero, np.zeros(fan_out, np.float32); the random W alone "
              "makes the units differ",
    "rng": "W does not come from the rng given: the same seed must give the same W, and another seed another W. "
           "Draw with rng (rng.standard_normal), not with np.random's global generator.",
    "no_bias": "the bias is left out of forward: return x @ W + b",
    "relu": "forward applies a ReLU: in npnet a Dense layer is only x @ W + b, and the ReLU is a layer of its own",
    "copy": "forward reads a copy of W made in __init__: read self.params['W'] and self.params['b'] in every call, "
            "because the optimiser updates those arrays in place",
    "no_cache": "backward cannot find the input: forward must cache it (self.x = x), since dW = x.T @ grad needs it",
    "cache_out": "dW is computed from the layer's output: cache the input x in forward (self.x = x), since "
                 "dW = x.T @ grad needs what came in, not what went out",
    "dW_T": "dW is transposed, (fan_out, fan_in) instead of W's (fan_in, fan_out): dW = x.T @ grad, so the sum "
            "over the batch is the inner dimension",
    "dW_N": "dW and db are divided by N: the loss's gradient already holds the 1/N of the mean, so the layer must "
            "not divide again",
    "db_unsummed": "db is not summed over the batch: b is added to every row, so db = grad.sum(axis=0), "
                   "shape (fan_out,)",
    "db_mean": "db is the mean of grad over the batch: b is added to every row, so its gradient is the sum, "
               "grad.sum(axis=0) (the 1/N is already inside grad)",
    "dX_noT": "backward returns grad @ W: the gradient for the layer below is grad @ W.T, "
              "(N, fan_out) @ (fan_out, fan_in)",
    "dX_shape": "backward returns an array that is not x's shape (N, fan_in): dL/dx = grad @ W.T, "
                "(N, fan_out) @ (fan_out, fan_in). grad.T @ x is (fan_out, fan_in), dW's shape transposed.",
    "input_grad_ignored": "backward(grad, input_grad=False) still returns dL/dx: it must return None then, as "
                          "npnet's layers do. That is the flag's point: the first layer skips grad @ W.T, which "
                          "nothing below it uses.",
    "input_grad_grads": "backward(grad, input_grad=False) leaves grads W and b unfilled: the flag skips only dL/dx; "
                        "the first layer still needs its own gradients for its step.",
    "no_dX": "backward returns nothing: it must return dL/dx = grad @ W.T, which the layer below needs",
    "accumulate": "the grads add up over calls (+=): npnet's layers overwrite their grads in backward (there is no "
                  "zero_grad), so with += every step would use the sum of all gradients so far. Assign with [...] =.",
    "no_input_grad": "backward has no input_grad argument: npnet.fit calls the first layer's backward with "
                     "input_grad=False, since no layer below needs dL/dx there. Write backward(self, grad, "
                     "input_grad=True) and return None when input_grad is False.",
    "rebind": "backward puts new arrays into self.grads (self.grads['W'] = ...): the optimiser keeps the arrays the "
              "layer had when the optimiser was built, so it would step with zeros for ever. Write into them in "
              "place: self.grads['W'][...] = ...",
}


def _D(**changes):
    """A wrong Dense: the solution with one thing changed, for the catalogue."""
    class Dense(DenseSolution):
        def __init__(self, fan_in, fan_out, rng):
            super().__init__(fan_in, fan_out, rng)
            if "init" in changes:
                changes["init"](self, fan_in, fan_out, rng)

        def forward(self, x):
            out = super().forward(x)
            return changes["forward"](self, x, out) if "forward" in changes else out

        def backward(self, grad, input_grad=True):
            if "backward" in changes:                 # a change that takes input_grad gets it; the others ignore it
                change = changes["backward"]
                takes = "input_grad" in inspect.signature(change).parameters
                return change(self, grad, input_grad=input_grad) if takes else change(self, grad)
            return super().backward(grad, input_grad)
    return Dense


class _NoInputGrad(DenseSolution):
    def backward(self, grad):
        return super().backward(grad)


def _set_b(self, value):
    self.params["b"] = value
    self.grads["b"] = np.zeros_like(value)


DENSE_MISTAKES = [(DENSE_MSG[k], cls) for k, cls in [
    ("b64", _D(init=lambda s, i, o, r: _set_b(s, np.zeros(o)))),
    ("init", _D(init=lambda s, i, o, r: s.params["W"].__setitem__(..., 0.01 * r.standard_normal((i, o))))),
    ("no_bias", _D(forward=lambda s, x, out: x @ s.params["W"])),
    ("relu", _D(forward=lambda s, x, out: np.maximum(out, 0))),
    ("dW_T", _D(backward=lambda s, g: (s.grads["W"].__setitem__(..., (g.T @ s.x).reshape(s.grads["W"].shape)),
                                       s.grads["b"].__setitem__(..., g.sum(0)), g @ s.params["W"].T)[-1])),
    ("db_mean", _D(backward=lambda s, g: (s.grads["W"].__setitem__(..., s.x.T @ g),
                                          s.grads["b"].__setitem__(..., g.mean(0)), g @ s.params["W"].T)[-1])),
    ("dX_noT", _D(backward=lambda s, g: (s.grads["W"].__setitem__(..., s.x.T @ g),
                                         s.grads["b"].__setitem__(..., g.sum(0)), g @ s.params["W"])[-1])),
    ("accumulate", _D(backward=lambda s, g: (s.grads["W"].__iadd__(s.x.T @ g), s.grads["b"].__iadd__(g.sum(0)),
                                             g @ s.params["W"].T)[-1])),
    ("rebind", _D(backward=lambda s, g: (s.grads.update(W=s.x.T @ g, b=g.sum(0)), g @ s.params["W"].T)[-1])),
    ("no_input_grad", _NoInputGrad),
    ("b_init", _D(init=lambda s, i, o, r: s.params["b"].fill(0.1))),
    ("rng", _D(init=lambda s, i, o, r: s.params["W"].__setitem__(..., L.he_normal(i, o, np.random.default_rng())))),
    ("dX_shape", _D(backward=lambda s, g: (DenseSolution.backward(s, g), g.T @ s.x)[-1])),
    ("input_grad_ignored", _D(backward=lambda s, g, input_grad=True: DenseSolution.backward(s, g))),
    ("input_grad_grads", _D(backward=lambda s, g, input_grad=True: DenseSolution.backward(s, g) if input_grad
                            else None)),
]]


class DenseBuild(Build):
    """Build 2: the learner's Dense class, probed in stages: params, forward, backward, gradient check, training."""

    name_in_cell = "MyDense"

    def diagnose(self, cls):
        if isinstance(cls, type) and issubclass(cls, L.Dense):
            return "own", OWN.format(what="npnet.layers.Dense")
        if cls is DenseSolution:
            return "own", OWN.format(what="builds.DenseSolution, the model answer")
        if not isinstance(cls, type):
            if hasattr(cls, "forward"):
                return "wrong", f"✗ {DENSE_MSG['instance']}"
            return "wrong", f"✗ pass your class itself, builds.dense.check(MyDense); got a {type(cls).__name__}"
        own = {L.Dense.forward.__code__: "npnet.layers.Dense", L.Dense.backward.__code__: "npnet.layers.Dense",
               DenseSolution.forward.__code__: "builds.DenseSolution", DenseSolution.backward.__code__:
               "builds.DenseSolution"}
        reference = self._train_model(L.Dense)              # npnet's, before watching for npnet's code
        with _watch(own) as seen:
            for stage in (self._params, self._forward, self._backward, self._training):
                verdict = stage(cls, reference)
                if verdict is not None:
                    return verdict
        if seen:
            return "own", OWN.format(what="; ".join(sorted({own[c] for c in seen})) + " does the work")
        return "pass", f"✓ Dense: {self.verified}"

    # each stage returns None if all is well, else (verdict, message)
    def _params(self, cls, _):
        run = _run(cls, 5, 3, np.random.default_rng(0))
        if isinstance(run.error, NotImplementedError):
            return "not done", NOT_DONE.format(name="builds.dense")
        if run.error is not None:
            return "wrong", _raised("Dense(5, 3, rng)", run.error)
        layer = run.out
        params, grads = getattr(layer, "params", None), getattr(layer, "grads", None)
        if not isinstance(params, dict) or set(params) != {"W", "b"}:
            return "mistake", f"✗ {DENSE_MSG['no_params']}"
        W, b = params["W"], params["b"]
        if not (isinstance(W, np.ndarray) and isinstance(b, np.ndarray)):
            return "wrong", "✗ params['W'] and params['b'] must be NumPy arrays"
        if W.shape == (3, 5):
            return "mistake", f"✗ {DENSE_MSG['W_shape']}"
        if b.shape == (1, 3):
            return "mistake", f"✗ {DENSE_MSG['b_shape']}"
        if W.shape != (5, 3) or b.shape != (3,):
            return "wrong", f"✗ Dense(5, 3, rng) has W {W.shape} and b {b.shape}: expected (5, 3) and (3,)"
        if not isinstance(grads, dict) or set(grads) != {"W", "b"} or \
                any(not isinstance(grads[k], np.ndarray) or grads[k].shape != params[k].shape for k in grads):
            return "mistake", f"✗ {DENSE_MSG['no_grads']}"
        if W.dtype == np.float64:
            return "mistake", f"✗ {DENSE_MSG['W64']}"
        if b.dtype == np.float64:
            return "mistake", f"✗ {DENSE_MSG['b64']}"
        if W.dtype != np.float32 or b.dtype != np.float32 or any(g.dtype != np.float32 for g in grads.values()):
            return "wrong", (f"✗ params and grads must be float32, like npnet's: W {W.dtype}, b {b.dtype}, grads "
                             f"{grads['W'].dtype} and {grads['b'].dtype}")
        if np.any(b != 0):
            return "mistake", f"✗ {DENSE_MSG['b_init']}"
        return self._he(cls)

    @staticmethod
    def _he(cls):
        """He initialisation, judged by its statistics rather than by npnet's random stream (any draw counts): on two
        large layers W has mean 0 and std sqrt(2 / fan_in) to 3%, and the rng given decides W."""
        for fan_in, fan_out in ((800, 100), (50, 1600)):      # 80,000 weights each: their std is known to 0.3%
            made = [_run(cls, fan_in, fan_out, np.random.default_rng(seed)) for seed in (0, 0, 1)]
            error = next((m.error for m in made if m.error is not None), None)
            if error is not None:
                return "wrong", _raised(f"Dense({fan_in}, {fan_out}, rng)", error)
            W0, W0_again, W1 = (np.asarray(m.out.params["W"], np.float64) for m in made)
            he = np.sqrt(2 / fan_in)
            if W0.shape != (fan_in, fan_out):
                return "wrong", f"✗ Dense({fan_in}, {fan_out}, rng) has W {W0.shape}: expected ({fan_in}, {fan_out})"
            if abs(W0.std() / he - 1) > 0.03 or abs(W0.mean()) > 0.02 * he:
                return "mistake", (f"✗ {DENSE_MSG['init']} (on a Dense({fan_in}, {fan_out}): mean {W0.mean():.2g}, "
                                   f"std {W0.std():.3g}; He's std is sqrt(2/{fan_in}) = {he:.3g})")
            if not np.array_equal(W0, W0_again) or np.array_equal(W0, W1):
                return "mistake", f"✗ {DENSE_MSG['rng']}"
        return None

    def _probe(self, cls, d, c, dtype, seed=1):
        """A layer with set params and one forward/backward:
        (layer, x, grad, W, b, out_run, back_run, grads before, the layer's own initial (W, b) as float64)."""
        rng = np.random.default_rng(seed)
        layer = cls(d, c, np.random.default_rng(0))
        start = tuple(np.array(layer.params[k], np.float64) for k in ("W", "b"))
        W, b = rng.standard_normal((d, c)), rng.standard_normal(c)
        if dtype == np.float64:                  # the gradient check needs float64 params: same dicts, new arrays
            for k, v in (("W", W), ("b", b)):
                layer.params[k], layer.grads[k] = v.copy(), np.zeros_like(v)
        else:
            layer.params["W"][...], layer.params["b"][...] = W, b
        x, grad = rng.standard_normal((7, d)).astype(dtype), (rng.standard_normal((7, c)) / 7).astype(dtype)
        given = dict(layer.grads)                # the arrays an optimiser would hold
        out = _run(layer.forward, x)
        back = _run(layer.backward, grad) if out.error is None else None
        W, b = (layer.params[k].astype(np.float64) for k in ("W", "b"))
        return layer, x, grad, W, b, out, back, given, start

    def _forward(self, cls, _):
        layer, x, grad, W, b, out, _, _, start = self._probe(cls, 6, 4, np.float32)
        if isinstance(out.error, NotImplementedError):
            return "not done", NOT_DONE.format(name="builds.dense")
        if out.error is not None:
            return "wrong", _raised("forward", out.error)
        if out.out is None:
            return "not done", RETURNED_NONE.format(which=" from forward", name="builds.dense")
        if not isinstance(out.out, np.ndarray):
            return "wrong", f"✗ forward returned a {type(out.out).__name__}: return the array x @ W + b"
        o, x64 = out.out, x.astype(np.float64)
        for key, want in (("no_bias", x64 @ W), ("relu", np.maximum(x64 @ W + b, 0)),
                          ("copy", x64 @ start[0] + start[1])):
            if _close(o, want, rtol=1e-4) and not _close(o, x64 @ W + b, rtol=1e-4):
                return "mistake", f"✗ {DENSE_MSG[key]}"
        if not _close(o, x64 @ W + b, rtol=1e-4, atol=1e-5):
            return "wrong", "✗ forward does not return x @ W + b (with W and b read from self.params)"
        if o.dtype != np.float32:
            return "wrong", f"✗ forward turns float32 input into {o.dtype}: npnet works in float32"
        return None

    def _backward(self, cls, _):
        for d, c in ((6, 6), (6, 4)):             # square first: there a transposed answer has the right shape
            layer, x, grad, W, b, out, back, given, _ = self._probe(cls, d, c, np.float64)
            if isinstance(back.error, NotImplementedError):
                return "not done", NOT_DONE.format(name="builds.dense")
            if isinstance(back.error, AttributeError) and "x" in str(back.error):
                return "mistake", f"✗ {DENSE_MSG['no_cache']}"
            if isinstance(back.error, ValueError) and f"into shape ({c},)" in str(back.error):
                return "mistake", f"✗ {DENSE_MSG['db_unsummed']}"
            if back.error is not None:
                return "wrong", _raised("backward", back.error)
            if back.out is None:
                return "mistake", f"✗ {DENSE_MSG['no_dX']}"
            if not isinstance(back.out, np.ndarray):
                return "wrong", f"✗ backward returned a {type(back.out).__name__}: return the array grad @ W.T"
            dX, o = back.out, out.out
            # a second backward on the same input: grads must be overwritten, not added to
            again = _run(layer.backward, grad)
            try:
                dW, db = (np.asarray(layer.grads[k], np.float64) for k in ("W", "b"))
            except Exception:
                return "mistake", f"✗ {DENSE_MSG['no_grads']}"
            if _close(dW, 2 * x.T @ grad) and _close(db, 2 * grad.sum(0)):
                return "mistake", f"✗ {DENSE_MSG['accumulate']}"
            if again.error is not None:
                return "wrong", _raised("a second call of backward", again.error)
            candidates = [("dX_noT", dX, lambda: grad @ W), ("dW_T", dW, lambda: grad.T @ x),
                          ("dW_N", dW, lambda: x.T @ grad / 7), ("cache_out", dW, lambda: o.T @ grad),
                          ("db_mean", db, lambda: grad.mean(0)), ("db_unsummed", db, lambda: grad),
                          ("db_unsummed", db, lambda: grad.sum(1))]
            right = {"dX_noT": (dX, grad @ W.T), "dW_T": (dW, x.T @ grad), "dW_N": (dW, x.T @ grad),
                     "cache_out": (dW, x.T @ grad), "db_mean": (db, grad.sum(0)), "db_unsummed": (db, grad.sum(0))}
            for key, got, wrong in candidates:
                want = _run(wrong).out          # None where the wrong formula does not even fit these shapes
                if want is not None and _close(got, want, rtol=1e-6, atol=1e-9) and \
                        not _close(*right[key], rtol=1e-6, atol=1e-9):
                    return "mistake", f"✗ {DENSE_MSG[key]}"
            if dX.shape != x.shape:
                return "mistake", f"✗ {DENSE_MSG['dX_shape']} (got {dX.shape} for x of shape {x.shape})"
            if any(layer.grads[k] is not given[k] for k in given):
                return "mistake", f"✗ {DENSE_MSG['rebind']}"
            errors = _run(gradcheck.check_layer, layer, x)
            if errors.error is not None:
                return "wrong", _raised("the gradient check on your layer", errors.error)
            bad = {k: v for k, v in errors.out.items() if not v < 1e-6}
            if bad:
                return "wrong", ("✗ the central-difference gradient check fails (rel. error " +
                                 ", ".join(f"{k} {v:.2g}" for k, v in bad.items()) + "): compare dX, dW and db with "
                                 "x.T @ grad, grad.sum(axis=0) and grad @ W.T")
        # npnet's contract, which fit relies on: backward(grad, input_grad=False) fills the grads and returns None
        layer, x, grad, _, _, _, _, _, _ = self._probe(cls, 6, 4, np.float64)
        for g in layer.grads.values():
            g[...] = 0
        off = _run(layer.backward, grad, input_grad=False)
        if isinstance(off.error, TypeError) and "input_grad" in str(off.error):
            return "mistake", f"✗ {DENSE_MSG['no_input_grad']}"
        if off.error is not None:
            return "wrong", _raised("backward(grad, input_grad=False)", off.error)
        if off.out is not None:
            return "mistake", f"✗ {DENSE_MSG['input_grad_ignored']}"
        if not (_close(layer.grads["W"], x.T @ grad) and _close(layer.grads["b"], grad.sum(0))):
            return "mistake", f"✗ {DENSE_MSG['input_grad_grads']}"
        return None

    @staticmethod
    def _train_model(Dense, start=None):
        """A 12-8-3 MLP made with this Dense, trained by npnet.fit with Adam: (history, weights, model, its initial
        weights) or a verdict. start: initial weights (npnet's) copied into the layers by key, so that a different
        but valid random draw of W does not count: both models then train from the same weights."""
        data_rng = np.random.default_rng(7)
        X = data_rng.standard_normal((40, 12)).astype(np.float32)
        y = X[:, :3].argmax(axis=1)
        rng = np.random.default_rng(3)
        run = _run(lambda: [Dense(12, 8, rng), L.ReLU(), Dense(8, 3, rng)])
        if run.error is not None:
            return "wrong", _raised("building a model with your Dense", run.error)
        model = run.out
        if start is not None:
            copied = _run(lambda: [layer.params[k].__setitem__(..., v) for layer, params in zip(model, start)
                                   for k, v in params.items()])
            if copied.error is not None:
                return "wrong", _raised("copying npnet's initial weights into your layers", copied.error)
        initial = [{k: np.array(v) for k, v in layer.params.items()} for layer in model]
        held = [{k: id(g) for k, g in layer.grads.items()} for layer in model]   # the arrays Adam will hold
        fitted = _run(_fit_history, model, Adam(model, lr=0.01), X, y, num_epochs=3, batch_size=16,
                      rng=np.random.default_rng(4))      # the shuffle has its own rng, whatever the init drew
        if isinstance(fitted.error, TypeError) and "input_grad" in str(fitted.error):
            return "mistake", f"✗ {DENSE_MSG['no_input_grad']}"
        if fitted.error is not None:
            return "wrong", _raised("npnet.fit on a model made with your Dense", fitted.error)
        if [{k: id(g) for k, g in layer.grads.items()} for layer in model] != held:
            return "mistake", f"✗ {DENSE_MSG['rebind']}"
        return fitted.out, _weights(model), model, initial

    def _training(self, cls, reference):
        """The learner's Dense and npnet's in the same MLP, started from the same weights (npnet's, copied into the
        learner's layers) and trained the same way: they must reach the same weights and losses."""
        h_ref, w_ref, _, start = reference
        result = self._train_model(cls, start)
        if isinstance(result[0], str):
            return result
        h, w, model, _ = result
        if not all(_close(a, b) for a, b in zip(w, w_ref)) or not _close(h, h_ref):
            return "wrong", ("✗ each piece passes, but a model made with your Dense, started from npnet's weights, "
                             "trains differently from npnet's: does every step read and write the same arrays in "
                             "params and grads?")
        if any(p.dtype != np.float32 for layer in model for p in layer.params.values()):
            return "wrong", "✗ after training, some parameters are no longer float32"
        return None


dense = DenseBuild(
    "dense", DenseSolution,
    verified="float32 params, W He-initialised from the rng given (mean 0, std sqrt(2/fan_in)) and b zero; forward "
             "and backward right on square and non-square layers; grads overwritten in place; None for "
             "input_grad=False; the float64 central-difference gradient check passes; and a 12-8-3 MLP "
             "made with it, started from npnet's weights, trains with npnet.fit and Adam to the same weights and "
             "losses as npnet's Dense",
    mistakes=DENSE_MISTAKES,
    hint_text="__init__: W from npnet.he_normal, b of zeros (float32, as np.zeros does not default to), and grads "
              "of the same shapes. forward must remember its input for backward. In backward, let the shapes decide: "
              "dW is (fan_in, fan_out), db is (fan_out,), and the returned gradient is (N, fan_in). Write the grads "
              "into the existing arrays: the optimiser holds those arrays, not your names for them."
)


# == 3. Overfit one batch ======================================================================================
def overfit_one_batch_solution(model, X, y, rng):
    """Train model on one small batch (X, y) until it has memorised it; returns the per-epoch loss history.
    Uses train() from build 1 (pass it as your own train, or npnet's fit while yours is not done)."""
    optimizer = npnet.Adam(model, lr=3e-3)
    return train_solution(model, optimizer, X, y, num_epochs=60, batch_size=len(X), rng=rng)


OVERFIT_THRESHOLD = 0.01   # a mean cross-entropy of 0.01: the right class gets probability e^-0.01 = 0.99 on average
OVERFIT_MSG = {
    "flat": "the loss hardly moved from where it started: the model is not learning at all. Is optimizer.step() "
            "called after backward in every step, with lr > 0?",
    "chance": "the loss is stuck at chance: it stopped falling where a model that ignores the images ends up, "
              "guessing the label frequencies (ln 10 = 2.3 for ten equally common classes). More steps will not "
              "help: this is the sign of a bug, e.g. labels shuffled apart from their images, or a wrong gradient.",
    "unchanged": "the model passed in did not change: train that very `model` (do not build a new one inside), "
                 "and check that each step calls optimizer.step()",
    "diverged": "the loss became NaN or inf: the learning rate is too large. Try Adam with lr 1e-3 to 3e-3.",
    "slow": "the loss falls, but not below 0.01: the 64 examples are not memorised yet. Train longer or with a "
            "larger lr (Adam at lr 3e-3 takes a few dozen full-batch steps). If it then stalls near 2.3, chance, "
            "look for a bug instead.",
}


class OverfitBuild(Build):
    """Build 3a: overfit_one_batch(model, X, y, rng) -> history must take a fresh MLP's loss on 64 examples below 0.01."""

    name_in_cell = "overfit_one_batch"

    def diagnose(self, fn, X=None, y=None, stand_in=False):
        """stand_in: npnet.fit stands in for the learner's train(), which is not written yet (see _without_train)."""
        if fn is overfit_one_batch_solution:
            return "own", OWN.format(what="builds.overfit_one_batch_solution, the model answer")
        if not callable(fn):
            return "wrong", f"✗ pass your function itself; got a {type(fn).__name__}"
        if X is None:
            X, y = _overfit_batch()
        X, y = np.asarray(X)[:64], np.asarray(y)[:64]
        rng = np.random.default_rng(0)
        model = M.mlp((X.shape[1], 64, 64, max(10, int(y.max()) + 1)), rng)
        own = {train_solution.__code__: "builds.train_solution"}
        if not stand_in:
            own[T.fit.__code__] = "npnet.train.fit"
        before = _weights(model)
        run = _run(fn, model, X.copy(), y.copy(), rng, watch=own)
        if isinstance(run.error, NotImplementedError):
            frame = run.error.__traceback__
            while frame.tb_next is not None:
                frame = frame.tb_next
            raiser = frame.tb_frame.f_code                     # the function whose body is still a stub
            if raiser is getattr(fn, "__code__", None) or stand_in:
                return "not done", NOT_DONE.format(name="builds.overfit")
            return self._without_train(fn, raiser, X, y)
        if run.error is not None:
            return "wrong", _raised("overfit_one_batch", run.error)
        if run.out is None:
            return "not done", RETURNED_NONE.format(which="", name="builds.overfit")
        history = _floats(run.out)
        if history is None or not len(history):
            return "wrong", (f"✗ overfit_one_batch returned a {type(run.out).__name__}: return the history your "
                             f"train() gives, one loss per epoch")
        if all(np.array_equal(a, b) for a, b in zip(before, _weights(model))):
            return "mistake", f"✗ {OVERFIT_MSG['unchanged']}"
        loss_fn = SoftmaxCrossEntropy()
        with np.errstate(all="ignore"):
            loss = _run(lambda: loss_fn.forward(M.forward(model, X), y))
        if loss.error is not None:
            return "wrong", _raised("the trained model", loss.error)
        loss = loss.out
        if not np.isfinite(loss) or not np.all(np.isfinite(history)):
            return "mistake", f"✗ {OVERFIT_MSG['diverged']}"
        if loss >= OVERFIT_THRESHOLD:
            num_classes = model[-1].params["b"].size
            start = max(history[0], np.log(num_classes))
            freq = np.bincount(y.astype(np.int64), minlength=num_classes) / len(y)
            chance = float(-np.sum(freq[freq > 0] * np.log(freq[freq > 0])))   # the loss of guessing frequencies
            stalled = False                                         # over the second half of a run of 10+ epochs
            if len(history) >= 10:
                tail = history[-max(10, len(history) // 2):]
                slope = np.polyfit(np.arange(len(tail)), tail, 1)[0]      # loss per epoch
                smooth = np.all(np.diff(tail) < 0) and slope < -0.002     # falling at every step: merely a small lr
                stalled = slope > -0.01 and not smooth
            if stalled and chance - 0.1 < loss < np.log(num_classes) + 0.3:
                return "mistake", (f"✗ {OVERFIT_MSG['chance']} (loss now {loss:.3g}; guessing this batch's label "
                                   f"frequencies gives {chance:.3g})")
            if loss > 0.8 * start:
                return "mistake", f"✗ {OVERFIT_MSG['flat']} (loss {history[0]:.3g} at the start, {loss:.3g} now)"
            return "mistake", f"✗ {OVERFIT_MSG['slow']} (loss now {loss:.3g}, after {len(history)} epochs)"
        if run.seen:
            return "own", OWN.format(what="; ".join(sorted(own[c] for c in run.seen)) + " did the training, "
                                     "not your train()")
        return "pass", (f"✓ overfit_one_batch: the loss on the 64 examples is {loss:.2g} after {len(history)} "
                        f"epochs, below {OVERFIT_THRESHOLD}" + ("." if stand_in else ": your loop and this model "
                                                                                     "can learn"))

    def _without_train(self, fn, raiser, X, y):
        """fn works, but a function it calls is still a stub. If that is Build 1's train(), found by name among fn's
        globals (the notebook's), check fn once more with npnet.fit standing in for it, and say so; the learner's
        train() is put back afterwards. The verdict stays "not done": the loop is not the learner's yet."""
        names = getattr(fn, "__globals__", {})
        name = next((k for k, v in names.items() if getattr(v, "__code__", None) is raiser), raiser.co_name)
        if name != "train":
            return "not done", (f"· not done yet: your overfit_one_batch calls {name}(), which is not written yet: "
                                f"finish it, then check again.")
        learners = names["train"]
        names["train"] = _fit_train
        try:
            _, said = self.diagnose(fn, X, y, stand_in=True)
        finally:
            names["train"] = learners
        return "not done", (f"· not done yet: your overfit_one_batch calls train() (Build 1), which is not written "
                            f"yet. With npnet.fit standing in for it: {said} Write train(), then check again: the ✓ "
                            f"needs your own loop.")

    def check(self, fn, X=None, y=None):
        """As Build.check; X, y: the batch to memorise (its first 64 rows), by default a fixed random one."""
        try:
            verdict, message = self.diagnose(fn, X, y)
        except Exception as e:
            verdict, message = "wrong", f"✗ the check itself failed ({type(e).__name__}: {e}); please report it"
        print(message)
        return verdict == "pass"


def _fit_train(model, optimizer, X, y, num_epochs, batch_size, rng):
    """npnet.fit with Build 1's signature: it stands in for a train() that is not written yet."""
    return _fit_history(model, optimizer, X, y, num_epochs=num_epochs, batch_size=batch_size, rng=rng)


def _overfit_batch():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((64, 784)).astype(np.float32)
    return X, rng.integers(0, 10, 64)


def _overfit_with(optimizer, num_epochs, train=train_solution):
    def overfit_one_batch(model, X, y, rng):
        return train(model, optimizer(model), X, y, num_epochs=num_epochs, batch_size=len(X), rng=rng)
    return overfit_one_batch


OVERFIT_MISTAKES = [  # (the message, which the check follows with the loss reached; an answer that earns it)
    (OVERFIT_MSG["unchanged"], _overfit_with(lambda m: SGD(m, lr=0.0), 3)),        # no step at all
    (OVERFIT_MSG["flat"], _overfit_with(lambda m: SGD(m, lr=1e-6), 10)),           # steps far too small
    (OVERFIT_MSG["diverged"], _overfit_with(lambda m: SGD(m, lr=1e4), 5)),         # far too large a step
    (OVERFIT_MSG["slow"], _overfit_with(lambda m: Adam(m, lr=1e-3), 5)),
    (OVERFIT_MSG["chance"], _overfit_with(lambda m: Adam(m, lr=3e-3), 60, _variant(order="two"))),  # mislabelled
]

overfit = OverfitBuild(
    "overfit", overfit_one_batch_solution,
    verified="", mistakes=OVERFIT_MISTAKES,
    hint_text="Two lines: an optimiser for the model, then your train() on (X, y). Make the batch all 64 examples, "
              "so that each epoch is one step; Adam with a few times its default lr memorises them in a few dozen "
              "steps. The loss starts near 3, a little above ln 10 = 2.3 (a uniform guess) because a fresh "
              "network's logits are not all equal, and must fall below 0.01. If it stalls near 2.3, chance, the loop "
              "or the model has a bug.",
)


# -- the broken model: a ReLU whose backward masks by the sign of the gradient, not of its input --------------
class _PlantedReLU(L.ReLU):
    def backward(self, grad):
        return grad * (grad > 0)


_PlantedReLU.__name__ = _PlantedReLU.__qualname__ = "ReLU"
BUG = (3, "x")          # layer 3's backward returns a wrong gradient for its input x


def broken_model(rng, sizes=(784, 64, 64, 10), dtype=np.float32):
    """Dense-ReLU-Dense-ReLU-Dense like M.mlp(sizes), with one planted bug in one layer's backward. Find it.
    A small float64 twin, e.g. broken_model(rng, (20, 16, 16, 10), np.float64), has the same bug, for gradcheck."""
    d0, d1, d2, d3 = sizes
    return [L.Dense(d0, d1, rng, dtype), L.ReLU(), L.Dense(d1, d2, rng, dtype), _PlantedReLU(),
            L.Dense(d2, d3, rng, dtype)]


class BugBuild(Build):
    """Build 3b: the learner names the planted bug of broken_model as (layer index, 'W' | 'b' | 'x')."""

    name_in_cell = "bug"

    def diagnose(self, answer):
        if answer is None or answer is Ellipsis:
            return "not done", ("· not done yet: check each layer of the twin alone, then name the bug. "
                                "builds.bug.hint() gives a nudge.")
        try:
            index, what = answer
            index, what = int(index), str(what)
        except Exception:
            return "wrong", ("✗ answer with a pair (layer index, gradient): the index in the model's list, and which "
                             "of its gradients is wrong, 'W', 'b' or 'x' (the input's, which backward returns)")
        what = {"w": "W", "dw": "W", "b": "b", "db": "b", "x": "x", "dx": "x", "input": "x"}.get(what.strip().lower())
        if not 0 <= index < 5 or what is None:
            return "wrong", "✗ broken_model(rng) has 5 layers, indices 0 to 4, and the gradient is 'W', 'b' or 'x'"
        if (index, what) == BUG:
            return "pass", ("✓ bug: layer 3, a ReLU, returns a wrong gradient for its input. Its backward masks by "
                            "the sign of the incoming gradient, grad * (grad > 0), instead of by the sign of its "
                            "forward input, grad * (x > 0). Layers above it get right gradients, those below wrong ones.")
        if index in (0, 2):
            return "mistake", (f"✗ layer {index}'s parameters get wrong gradients in check_model's table, but check "
                               f"the layer alone, gradcheck.check_layer(twin[{index}], its input): its own backward "
                               f"is right. It receives a wrong gradient from a layer above it.")
        if index == 1:
            return "mistake", ("✗ layer 1, a ReLU, passes gradcheck.check_layer alone: its backward is right. The "
                               "wrong gradient comes from higher up.")
        if index == 4:
            return "mistake", ("✗ layer 4's gradients pass the check: it is above the bug. Check each layer alone "
                               "with gradcheck.check_layer, from the top down.")
        return "mistake", ("✗ layer 3 is the right place, but a ReLU has no weights or bias: which gradient "
                           "could its backward get wrong?")


BUG_ANSWER = '''bug = (3, "x")   # layer 3, a ReLU: its backward returns grad * (grad > 0), masking by the sign of the
                 # gradient instead of by the sign of its forward input, grad * (x > 0)'''


class _BugBuild(BugBuild):
    def solution_source(self):
        return BUG_ANSWER


bug = _BugBuild(
    "bug", broken_model, verified="",
    hint_text="First your overfit_one_batch on builds.broken_model(rng): it cannot memorise 64 examples, so some "
              "gradient is wrong. gradcheck.check_model(twin, X, y) on a small float64 copy shows which parameters get "
              "wrong gradients; then gradcheck.check_layer(layer, x) on each layer alone says whose own backward is "
              "wrong. A layer with no parameters only shows up alone, through its input gradient 'x'.",
)
