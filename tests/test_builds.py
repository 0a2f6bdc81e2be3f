"""Notebook 02's three builds: the solution passes, the stub is 'not done yet', npnet's own code is recognised, and
every named mistake, written here again as a learner might (not taken from the module's catalogue), gets its message."""

from pathlib import Path

import numpy as np
import pytest

import npnet
from npnet import gradcheck
from npnet import model as M
from npnet.exercises import builds
from npnet.exercises.builds import DENSE_MSG, OVERFIT_MSG, TRAIN_MSG

ROOT = Path(__file__).resolve().parent.parent


def _solution(build, name):
    """The model answer as a learner's cell defines it, from solution() text: a new function, not the module's."""
    namespace = {"np": np, "npnet": npnet, "M": M}
    if name == "overfit_one_batch":
        exec(builds.train.solution_source(), namespace)
    exec(build.solution_source(), namespace)
    return namespace[name]


def _mistake(build, answer, key, messages):
    """The answer gets the catalogue's message for key, perhaps followed by measured numbers in brackets."""
    verdict, message = build.diagnose(answer)
    want = f"✗ {messages[key]}"
    assert verdict == "mistake" and (message == want or message.startswith(want + " (")), (key, message)


# == 1. the training loop =======================================================================================
def loop(model, optimizer, X, y, num_epochs, batch_size, rng, order=None, end=None, step_first=False,
         step_per_epoch=False, batch=None, record=None, cast=None, no_step=False, dlogits=None):
    """A learner's train, written out; each keyword swaps one line for a typical mistake."""
    loss_fn = npnet.SoftmaxCrossEntropy()
    history, fixed = [], rng.permutation(len(X)) if order == "once" else None
    for epoch in range(num_epochs):
        perm = fixed if order == "once" else order(rng, len(X)) if order else rng.permutation(len(X))
        batch_losses, sizes = [], []
        for start in range(0, end(len(X), batch_size) if end else len(X), batch_size):
            idx = perm[start:start + batch_size]
            Xb, yb = batch(X, y, idx, rng) if batch else (X[idx], y[idx])
            if cast:
                Xb = Xb.astype(cast)
            logits = M.forward(model, Xb)
            value = loss_fn.forward(logits, yb)
            if step_first:
                optimizer.step()
            M.backward(model, dlogits(loss_fn, value, idx) if dlogits else loss_fn.backward())
            if not (step_first or step_per_epoch or no_step):
                optimizer.step()
            batch_losses.append(value)
            sizes.append(len(idx))
        if step_per_epoch:
            optimizer.step()
        history += record(batch_losses, sizes, model, X, y) if record else [sum(batch_losses) / len(batch_losses)]
    return history


def with_(**how):
    return lambda model, optimizer, X, y, num_epochs, batch_size, rng: loop(
        model, optimizer, X, y, num_epochs, batch_size, rng, **how)


TRAIN_MISTAKES = {
    "no_shuffle": with_(order=lambda rng, n: list(range(n))),
    "once": with_(order="once"),
    "replace": with_(order=lambda rng, n: rng.choice(n, n)),                      # replace=True by default
    "drop_last": with_(end=lambda n, bs: n // bs * bs),
    "global": with_(order=lambda rng, n: np.random.default_rng().permutation(n)),  # a fresh, unseeded generator
    "choice": with_(order=lambda rng, n: np.argsort(rng.random(n))),               # a shuffle, but another draw
    "two": with_(batch=lambda X, y, idx, rng: (X[idx], y[rng.permutation(len(y))[:len(idx)]])),
    "before": with_(step_first=True),
    "per_epoch": with_(step_per_epoch=True),
    "last": with_(record=lambda losses, sizes, *_: [losses[-1]]),
    "sum": with_(record=lambda losses, sizes, *_: [sum(losses)]),
    "weighted": with_(record=lambda losses, sizes, *_: [sum(v * s for v, s in zip(losses, sizes)) / sum(sizes)]),
    "steps": with_(record=lambda losses, sizes, *_: list(losses)),
    "full": with_(record=lambda losses, sizes, model, X, y: [
        npnet.SoftmaxCrossEntropy().forward(M.forward(model, X), y)]),
    "float64": with_(cast=np.float64),
    "whole": with_(batch=lambda X, y, idx, rng: (X, y)),
    "no_step": with_(no_step=True),
    "loss_value": with_(dlogits=lambda loss_fn, value, idx: value),                      # the loss, not its gradient
    "grad_N": with_(dlogits=lambda loss_fn, value, idx: loss_fn.backward() * len(idx)),  # read 02's learner
}


@pytest.mark.parametrize("key", sorted(TRAIN_MISTAKES))
def test_train_mistake_is_named(key):
    _mistake(builds.train, TRAIN_MISTAKES[key], key, TRAIN_MSG)


def test_train_mistake_two_permutations_is_named():
    # the mistake "two" above draws the labels' permutation per batch; here, as often written, once per epoch
    def train(model, optimizer, X, y, num_epochs, batch_size, rng):
        loss_fn, history = npnet.SoftmaxCrossEntropy(), []
        for _ in range(num_epochs):
            Xs, ys = X[rng.permutation(len(X))], y[rng.permutation(len(y))]
            losses = []
            for i in range(0, len(X), batch_size):
                losses.append(loss_fn.forward(M.forward(model, Xs[i:i + batch_size]), ys[i:i + batch_size]))
                M.backward(model, loss_fn.backward())
                optimizer.step()
            history.append(np.mean(losses))
        return history
    _mistake(builds.train, train, "two", TRAIN_MSG)   # named from the labels the loss was given


def test_train_gradient_times_batch_size_is_named_too():
    _mistake(builds.train, with_(dlogits=lambda loss_fn, value, idx: 16 * loss_fn.backward()), "grad_N", TRAIN_MSG)


def test_train_that_shuffles_x_in_place_is_caught():
    def train(model, optimizer, X, y, num_epochs, batch_size, rng):
        rng.shuffle(X)
        return loop(model, optimizer, X, y, num_epochs, batch_size, rng)
    _mistake(builds.train, train, "mutated", TRAIN_MSG)


def test_train_solution_and_other_correct_forms_pass():
    assert builds.train.diagnose(_solution(builds.train, "train"))[0] == "pass"
    assert builds.train.diagnose(with_())[0] == "pass"                         # sum / len for the mean

    def reorder_first(model, optimizer, X, y, num_epochs, batch_size, rng):   # permute X and y, then slice
        loss_fn, history = npnet.SoftmaxCrossEntropy(), []
        for _ in range(num_epochs):
            order = np.arange(len(X))
            rng.shuffle(order)                                                 # the same draw as rng.permutation
            Xs, ys, losses = X[order], y[order], []
            for i in range(0, len(X), batch_size):
                losses.append(loss_fn.forward(M.forward(model, Xs[i:i + batch_size]), ys[i:i + batch_size]))
                M.backward(model, loss_fn.backward(), input_grad=False)
                optimizer.step()
            history.append(np.float32(np.mean(losses)))
        return np.array(history)
    assert builds.train.diagnose(reorder_first)[0] == "pass"


def test_train_npnets_own_answer_is_recognised_not_credited(capsys):
    for answer in (npnet.fit, npnet.train.fit, builds.train_solution,
                   lambda model, optimizer, X, y, num_epochs, batch_size, rng: npnet.fit(
                       model, optimizer, X, y, num_epochs=num_epochs, batch_size=batch_size, rng=rng,
                       progress=False)["epoch_loss"]):
        assert builds.train.check(answer) is False
        assert capsys.readouterr().out.startswith("✓ but that is npnet's own code")

    def with_batches(model, optimizer, X, y, num_epochs, batch_size, rng):
        loss_fn, history = npnet.SoftmaxCrossEntropy(), []
        for _ in range(num_epochs):
            losses = []
            for Xb, yb in npnet.batches(X, y, batch_size, rng):
                losses.append(loss_fn.forward(M.forward(model, Xb), yb))
                M.backward(model, loss_fn.backward())
                optimizer.step()
            history.append(np.mean(losses))
        return history
    verdict, message = builds.train.diagnose(with_batches)
    assert verdict == "own" and "npnet.train.batches" in message


def test_train_stub_crash_and_odd_answers_never_raise(capsys):
    def stub(model, optimizer, X, y, num_epochs, batch_size, rng):
        raise NotImplementedError
    assert builds.train.check(stub) is False and capsys.readouterr().out.startswith("· not done yet")
    verdict, message = builds.train.diagnose(lambda *a, **k: None)
    assert verdict == "not done" and "forget `return`" in message

    class Odd:
        def __array__(self, *a, **k):
            raise RuntimeError("no")

        def __len__(self):
            raise KeyError("no")
    for answer, word in ((lambda *a, **k: 1 / 0, "ZeroDivisionError"), (lambda *a, **k: "history", "str"),
                         (lambda *a, **k: Odd(), "Odd"), (lambda *a, **k: {"epoch_loss": [1.0]}, "dict"),
                         (42, "int")):
        verdict, message = builds.train.diagnose(answer)
        assert verdict == "wrong" and word in message, message


def test_checks_do_not_raise_under_seterr_raise(capsys):
    old = np.seterr(all="raise")
    try:
        assert builds.train.check(_solution(builds.train, "train")) is True
        assert builds.dense.check(_solution(builds.dense, "MyDense")) is True
        builds.train.check(TRAIN_MISTAKES["sum"])
        builds.overfit.check(_overfit_with(lambda m: npnet.Adam(m, lr=3e-3), 12, train=_two_permutations))
    finally:
        np.seterr(**old)
    out = capsys.readouterr().out
    assert "✓" in out and "the check itself failed" not in out, out


# == 2. a Dense layer ===========================================================================================
class MyDense:
    """A learner's correct Dense, written independently of the module's solution; the mistakes below override it."""

    def __init__(self, fan_in, fan_out, rng):
        W = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        self.params = {"W": W.astype(np.float32), "b": np.zeros((fan_out,), dtype=np.float32)}
        self.grads = {"W": np.zeros((fan_in, fan_out), np.float32), "b": np.zeros(fan_out, np.float32)}

    def forward(self, x):
        self.x = x
        W, b = self.params["W"], self.params["b"]
        return np.dot(x, W) + b

    def backward(self, grad, input_grad=True):
        np.copyto(self.grads["W"], np.dot(self.x.T, grad))
        np.copyto(self.grads["b"], np.sum(grad, axis=0))
        if input_grad:
            return np.dot(grad, self.params["W"].T)


class W64(MyDense):
    def __init__(self, fan_in, fan_out, rng):
        super().__init__(fan_in, fan_out, rng)
        self.params["W"] = self.params["W"].astype(np.float64)
        self.grads["W"] = np.zeros_like(self.params["W"])


class B64(MyDense):
    def __init__(self, fan_in, fan_out, rng):
        super().__init__(fan_in, fan_out, rng)
        self.params["b"], self.grads["b"] = np.zeros(fan_out), np.zeros(fan_out)


class WShape(MyDense):
    def __init__(self, fan_in, fan_out, rng):
        self.params = {"W": npnet.he_normal(fan_out, fan_in, rng), "b": np.zeros(fan_out, np.float32)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        self.x = x
        return x @ self.params["W"].T + self.params["b"]


class BShape(MyDense):
    def __init__(self, fan_in, fan_out, rng):
        super().__init__(fan_in, fan_out, rng)
        self.params["b"], self.grads["b"] = np.zeros((1, fan_out), np.float32), np.zeros((1, fan_out), np.float32)


class NoParams:
    def __init__(self, fan_in, fan_out, rng):
        self.W, self.b = npnet.he_normal(fan_in, fan_out, rng), np.zeros(fan_out, np.float32)

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b


class NoGrads(MyDense):
    def __init__(self, fan_in, fan_out, rng):
        super().__init__(fan_in, fan_out, rng)
        del self.grads


class SmallInit(MyDense):
    def __init__(self, fan_in, fan_out, rng):
        super().__init__(fan_in, fan_out, rng)
        self.params["W"][...] = 0.01 * rng.standard_normal((fan_in, fan_out))


class NoBias(MyDense):
    def forward(self, x):
        self.x = x
        return x @ self.params["W"]


class WithReLU(MyDense):
    def forward(self, x):
        return np.maximum(0, super().forward(x))


class Copy(MyDense):
    def __init__(self, fan_in, fan_out, rng):
        super().__init__(fan_in, fan_out, rng)
        self.W, self.b = self.params["W"].copy(), self.params["b"].copy()

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b


class NoCache(MyDense):
    def forward(self, x):
        return x @ self.params["W"] + self.params["b"]


class CacheOut(MyDense):
    def forward(self, x):
        self.x = x @ self.params["W"] + self.params["b"]
        return self.x


def _backward_with(dW=None, db=None, dX=None, assign=np.copyto):
    def backward(self, grad, input_grad=True):
        assign(self.grads["W"], (dW or (lambda s, g: s.x.T @ g))(self, grad))
        assign(self.grads["b"], (db or (lambda s, g: g.sum(axis=0)))(self, grad))
        return (dX or (lambda s, g: g @ s.params["W"].T))(self, grad)
    return type("Dense", (MyDense,), {"backward": backward})


def _add(a, b):
    a += b


class Rebind(MyDense):
    def backward(self, grad, input_grad=True):
        self.grads["W"] = self.x.T @ grad
        self.grads["b"] = grad.sum(axis=0)
        return grad @ self.params["W"].T


class NoInputGrad(MyDense):
    def backward(self, grad):
        return super().backward(grad)


class BiasPointOne(MyDense):
    def __init__(self, fan_in, fan_out, rng):
        super().__init__(fan_in, fan_out, rng)
        self.params["b"][...] = 0.1


class GlobalRng(MyDense):
    def __init__(self, fan_in, fan_out, rng):
        super().__init__(fan_in, fan_out, rng)
        self.params["W"][...] = np.random.randn(fan_in, fan_out) * np.sqrt(2 / fan_in)


class XavierInit(MyDense):                # Glorot's 2 / (fan_in + fan_out): not He, although close when square
    def __init__(self, fan_in, fan_out, rng):
        super().__init__(fan_in, fan_out, rng)
        self.params["W"][...] = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / (fan_in + fan_out))


class DxUsesX(MyDense):
    def backward(self, grad, input_grad=True):
        super().backward(grad)
        return grad.T @ self.x if input_grad else None


class IgnoresInputGrad(MyDense):
    def backward(self, grad, input_grad=True):
        self.grads["W"][...] = self.x.T @ grad
        self.grads["b"][...] = grad.sum(axis=0)
        return grad @ self.params["W"].T


class SkipsGradsWithoutInputGrad(MyDense):
    def backward(self, grad, input_grad=True):
        if not input_grad:
            return None
        return super().backward(grad)


DENSE_MISTAKES = {
    "W64": W64, "b64": B64, "W_shape": WShape, "b_shape": BShape, "no_params": NoParams, "no_grads": NoGrads,
    "init": SmallInit, "no_bias": NoBias, "relu": WithReLU, "copy": Copy, "no_cache": NoCache,
    "cache_out": CacheOut,
    "dW_T": _backward_with(dW=lambda s, g: g.T @ s.x),
    "dW_N": _backward_with(dW=lambda s, g: s.x.T @ g / len(g), db=lambda s, g: g.sum(0) / len(g)),
    "db_unsummed": _backward_with(db=lambda s, g: g),
    "db_mean": _backward_with(db=lambda s, g: g.mean(axis=0)),
    "dX_noT": _backward_with(dX=lambda s, g: g @ s.params["W"]),
    "no_dX": _backward_with(dX=lambda s, g: None),
    "accumulate": _backward_with(assign=_add),
    "rebind": Rebind,
    "no_input_grad": NoInputGrad,
    "b_init": BiasPointOne,
    "rng": GlobalRng,
    "dX_shape": DxUsesX,
    "input_grad_ignored": IgnoresInputGrad,
    "input_grad_grads": SkipsGradsWithoutInputGrad,
}


def test_dense_glorot_init_is_not_he():
    _mistake(builds.dense, XavierInit, "init", DENSE_MSG)


class Float32Draw(MyDense):                 # read 02's learner: a float32 draw, another random stream than npnet's
    def __init__(self, fan_in, fan_out, rng):
        super().__init__(fan_in, fan_out, rng)
        W = rng.standard_normal((fan_in, fan_out), dtype=np.float32) * np.float32(np.sqrt(2 / fan_in))
        self.params["W"], self.grads["W"] = W, np.zeros_like(W)


class NormalScale(MyDense):
    def __init__(self, fan_in, fan_out, rng):
        super().__init__(fan_in, fan_out, rng)
        self.params["W"][...] = rng.normal(0, np.sqrt(2 / fan_in), (fan_in, fan_out))


class BiasFirst(MyDense):                   # read 02's learner: the params dict lists b first
    def __init__(self, fan_in, fan_out, rng):
        self.params = {"b": np.zeros(fan_out, np.float32), "W": npnet.he_normal(fan_in, fan_out, rng)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}


@pytest.mark.parametrize("cls", [Float32Draw, NormalScale, BiasFirst], ids=lambda c: c.__name__)
def test_dense_he_drawn_another_way_or_params_in_another_order_pass(cls):
    """He is judged by its statistics, and training starts from npnet's weights copied in by key, so any valid He
    draw passes, and so does a params dict that lists b first."""
    verdict, message = builds.dense.diagnose(cls)
    assert verdict == "pass", message


@pytest.mark.parametrize("key", sorted(DENSE_MISTAKES))
def test_dense_mistake_is_named(key):
    _mistake(builds.dense, DENSE_MISTAKES[key], key, DENSE_MSG)


def test_every_dense_and_train_message_is_tested_and_distinct():
    assert set(DENSE_MISTAKES) == set(DENSE_MSG) - {"instance"}
    assert set(TRAIN_MISTAKES) | {"mutated"} == set(TRAIN_MSG)
    for messages in (DENSE_MSG, TRAIN_MSG, OVERFIT_MSG):
        assert len(set(messages.values())) == len(messages)


def test_module_catalogues_get_their_own_messages():
    for build in (builds.train, builds.dense):
        for message, wrong in build.mistakes:
            verdict, said = build.diagnose(wrong)
            assert verdict == "mistake" and (said == f"✗ {message}" or said.startswith(f"✗ {message} (")), said
    for message, wrong in builds.overfit.mistakes:
        verdict, said = builds.overfit.diagnose(wrong)
        assert verdict == "mistake" and said.startswith(f"✗ {message}"), said


def test_dense_solution_and_an_independent_correct_layer_pass_and_plug_into_npnet():
    assert builds.dense.diagnose(_solution(builds.dense, "MyDense"))[0] == "pass"
    assert builds.dense.diagnose(MyDense)[0] == "pass"
    # the independent layer, float64, passes npnet's own gradient check
    layer = MyDense(6, 4, np.random.default_rng(0))
    layer.params = {k: v.astype(np.float64) for k, v in layer.params.items()}
    layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
    assert max(gradcheck.check_layer(layer, np.random.default_rng(1).standard_normal((5, 6))).values()) < 1e-7


def test_dense_npnets_own_answer_is_recognised(capsys):
    class Mine(npnet.Dense):
        pass

    class Wrapper:
        def __init__(self, fan_in, fan_out, rng):
            self.inner = npnet.Dense(fan_in, fan_out, rng)
            self.params, self.grads = self.inner.params, self.inner.grads

        def forward(self, x):
            return self.inner.forward(x)

        def backward(self, grad, input_grad=True):
            return self.inner.backward(grad, input_grad)
    for answer in (npnet.Dense, npnet.layers.Dense, Mine, builds.DenseSolution, Wrapper):
        assert builds.dense.check(answer) is False
        assert capsys.readouterr().out.startswith("✓ but that is npnet's own code")


def test_dense_stub_instance_and_crashes_never_raise():
    class Stub:
        def __init__(self, fan_in, fan_out, rng):
            raise NotImplementedError
    assert builds.dense.diagnose(Stub)[0] == "not done"

    class HalfDone(MyDense):
        def backward(self, grad, input_grad=True):
            raise NotImplementedError
    assert builds.dense.diagnose(HalfDone)[0] == "not done"
    assert builds.dense.diagnose(MyDense(3, 2, np.random.default_rng(0))) == ("wrong", f"✗ {DENSE_MSG['instance']}")

    class Crashes(MyDense):
        def forward(self, x):
            return 1 / 0
    verdict, message = builds.dense.diagnose(Crashes)
    assert verdict == "wrong" and "ZeroDivisionError" in message

    class Odd(MyDense):
        def forward(self, x):
            return object()
    assert builds.dense.diagnose(Odd)[0] == "wrong"
    assert builds.dense.diagnose("Dense")[0] == "wrong"


# == 3. overfit one batch, and the planted bug ==================================================================
def _overfit_with(make_optimizer, num_epochs, train=None):
    def overfit_one_batch(model, X, y, rng):
        return (train or with_())(model, make_optimizer(model), X, y, num_epochs, len(X), rng)
    return overfit_one_batch


def test_overfit_solution_passes_and_the_mistakes_are_named():
    assert builds.overfit.diagnose(_solution(builds.overfit, "overfit_one_batch"))[0] == "pass"
    for key, answer in (("unchanged", _overfit_with(lambda m: npnet.Adam(m, lr=3e-3), 3, train=with_(no_step=True))),
                        ("flat", _overfit_with(lambda m: npnet.Adam(m, lr=1e-7), 8)),
                        ("diverged", _overfit_with(lambda m: npnet.SGD(m, lr=1e5), 5)),
                        ("slow", _overfit_with(lambda m: npnet.Adam(m, lr=3e-4), 5))):
        verdict, message = builds.overfit.diagnose(answer)
        assert verdict == "mistake" and message.startswith(f"✗ {OVERFIT_MSG[key]}"), (key, message)


def _two_permutations(model, optimizer, X, y, num_epochs, batch_size, rng):
    """read 02's learner's train: X and y each shuffled by its own permutation, so the labels are not the images'."""
    loss_fn, history = npnet.SoftmaxCrossEntropy(), []
    for _ in range(num_epochs):
        Xs, ys, losses = X[rng.permutation(len(X))], y[rng.permutation(len(y))], []
        for i in range(0, len(X), batch_size):
            losses.append(loss_fn.forward(M.forward(model, Xs[i:i + batch_size]), ys[i:i + batch_size]))
            M.backward(model, loss_fn.backward())
            optimizer.step()
        history.append(float(np.mean(losses)))
    return history


def test_overfit_stuck_at_chance_is_called_a_bug_not_too_few_steps():
    answer = _overfit_with(lambda m: npnet.Adam(m, lr=3e-3), 60, train=_two_permutations)
    verdict, message = builds.overfit.diagnose(answer)
    assert verdict == "mistake" and message.startswith(f"✗ {OVERFIT_MSG['chance']} ("), message
    # a correct loop that is merely short, ending near 2.3 while still falling, is told to train longer
    verdict, message = builds.overfit.diagnose(_overfit_with(lambda m: npnet.Adam(m, lr=3e-4), 5))
    assert verdict == "mistake" and message.startswith(f"✗ {OVERFIT_MSG['slow']} (loss now 2."), message


def test_overfit_hint_states_the_measured_starting_loss():
    X, y = builds._overfit_batch()
    loss = npnet.SoftmaxCrossEntropy().forward(M.forward(M.mlp((784, 64, 64, 10), np.random.default_rng(0)), X), y)
    assert np.log(10) + 0.3 < loss < 3.5, loss                     # "starts near 3, a little above ln 10"
    assert "starts near 3" in builds.overfit.hint_text and "about 2.3" not in builds.overfit.hint_text


def test_overfit_with_build_1_still_a_stub_says_train_is_missing_and_judges_overfit_with_fit():
    def stub(model, optimizer, X, y, num_epochs, batch_size, rng):
        raise NotImplementedError  # TODO: about 12 lines
    namespace = {"npnet": npnet, "train": stub}
    exec("def overfit_one_batch(model, X, y, rng):\n"
         "    return train(model, npnet.Adam(model, lr=3e-3), X, y, num_epochs=60, batch_size=len(X), rng=rng)\n"
         "def too_short(model, X, y, rng):\n"
         "    return train(model, npnet.Adam(model, lr=3e-3), X, y, num_epochs=3, batch_size=len(X), rng=rng)\n",
         namespace)
    verdict, message = builds.overfit.diagnose(namespace["overfit_one_batch"])
    assert verdict == "not done" and message.startswith("· not done yet: your overfit_one_batch calls train() "
                                                        "(Build 1)"), message
    assert "With npnet.fit standing in for it: ✓" in message
    verdict, message = builds.overfit.diagnose(namespace["too_short"])
    assert verdict == "not done" and f"standing in for it: ✗ {OVERFIT_MSG['slow']}" in message, message
    assert namespace["train"] is stub                               # the learner's train is put back


def test_overfit_with_npnets_fit_is_recognised_and_stub_not_done():
    def with_fit(model, X, y, rng):
        return npnet.fit(model, npnet.Adam(model, lr=3e-3), X, y, num_epochs=40, batch_size=64, rng=rng,
                         progress=False)["epoch_loss"]
    verdict, message = builds.overfit.diagnose(with_fit)
    assert verdict == "own" and "npnet.train.fit" in message

    def stub(model, X, y, rng):
        raise NotImplementedError
    assert builds.overfit.diagnose(stub)[0] == "not done"
    assert builds.overfit.diagnose(lambda *a: 1 / 0)[0] == "wrong"

    def fresh_model(model, X, y, rng):                    # trains a model of its own, not the one given
        own = M.mlp((784, 64, 64, 10), rng)
        return with_()(own, npnet.Adam(own, lr=3e-3), X, y, 5, 64, rng)
    verdict, message = builds.overfit.diagnose(fresh_model)
    assert (verdict, message) == ("mistake", f"✗ {OVERFIT_MSG['unchanged']}")


def test_planted_bug_stops_overfitting_and_gradcheck_finds_it_alone():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 784)).astype(np.float32), rng.integers(0, 10, 64)
    model = builds.broken_model(rng)
    assert [layer.spec()["type"] for layer in model] == ["Dense", "ReLU", "Dense", "ReLU", "Dense"]  # no give-away
    history = with_()(model, npnet.Adam(model, lr=3e-3), X, y, 40, 64, rng)
    assert history[-1] > 1.0, history[-1]            # a healthy model is below 0.01 by then (the solution's check)
    small = builds.broken_model(rng, (12, 8, 8, 10), np.float64)
    Xs, ys = rng.standard_normal((6, 12)), rng.integers(0, 10, 6)
    bad = {k for k, v in gradcheck.check_model(small, Xs, ys).items() if v > 1e-6}
    assert bad and bad <= {"layer0.W", "layer0.b", "layer2.W", "layer2.b"}, bad      # below the bug only
    alone = {}
    for i, layer in enumerate(small):
        x = M.forward(small[:i], Xs)
        alone[i] = max(gradcheck.check_layer(layer, x).values())
    assert [i for i, err in alone.items() if err > 1e-6] == [3], alone


def test_bug_diagnosis_is_answered_specifically():
    assert builds.bug.diagnose((3, "x"))[0] == "pass"
    assert builds.bug.diagnose([np.int64(3), "dX"])[0] == "pass"          # other spellings of the same answer
    assert builds.bug.diagnose(None)[0] == "not done"
    messages = {builds.bug.diagnose(a)[1] for a in ((0, "W"), (2, "b"), (4, "W"), (3, "W"))}
    assert len(messages) == 4 and all(m.startswith("✗") for m in messages)
    assert "check_layer" in builds.bug.diagnose((0, "W"))[1]
    for odd in ("layer 3", (9, "x"), (3, "weights"), 3, object()):
        assert builds.bug.diagnose(odd)[0] == "wrong"
    assert "(3, \"x\")" in builds.bug.solution_source()
    for near in ((3, "W"), (3, "b")):                           # a nudge, not the answer
        message = builds.bug.diagnose(near)[1]
        assert "layer 3 is the right place" in message and "'x'" not in message and '"x"' not in message


def test_hints_and_solutions_print(capsys):
    for build, name in ((builds.train, "def train("), (builds.dense, "class MyDense:"),
                        (builds.overfit, "def overfit_one_batch(")):
        build.hint()
        build.solution()
        out = capsys.readouterr().out
        assert name in out and len(out) > 200
        assert "train_solution" not in out and "DenseSolution" not in out


# == the cells in notebook 02 ===================================================================================
STUB_CELL = r"# Build \d · your turn"


def _build_cells(nb):
    """Notebook 02's set-up cell and its "Build it yourself" section, or None if the section is not there."""
    cells = nb.cells
    start = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"
                  and c.source.startswith("## Build it yourself")), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(cells)) if cells[i].cell_type == "markdown"
                and cells[i].source.startswith("## ")), len(cells))
    setup = next(c for c in cells if c.cell_type == "code" and "load_splits" in c.source)
    return [setup] + cells[start:end]


def _solved(source):
    """The solution for a stub cell: found by the name the cell defines."""
    import re
    m = re.search(r"^(?:def|class) (\w+)|^(bug) =", source, re.M)
    name = m.group(1) or m.group(2)
    return {"train": builds.train, "MyDense": builds.dense, "overfit_one_batch": builds.overfit,
            "bug": builds.bug}[name].solution_source()


@pytest.mark.slow
@pytest.mark.parametrize("solved", [False, True], ids=["stubs", "solutions"])
def test_notebook_02_build_cells(solved, tmp_path):
    """Run All works with the stubs (every check says 'not done yet') and every check says ✓ with the solutions."""
    import re

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / "02_deep_mlp.ipynb", as_version=4)
    cells = _build_cells(nb)
    if cells is None:
        pytest.skip("notebook 02 has no 'Build it yourself' section yet: the lead inserts it")
    stubs = [c for c in cells if c.cell_type == "code" and re.match(STUB_CELL, c.source)]
    assert len(stubs) == 4, [c.source[:40] for c in stubs]
    if solved:
        for c in stubs:
            c.source = _solved(c.source)
    nb.cells = cells
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    checks = [c for c in nb.cells if c.cell_type == "code" and re.search(r"\bbuilds\.\w+\.check\(", c.source)]
    assert len(checks) == 4
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        if solved:
            assert text.startswith("✓") and "✗" not in text and "npnet's own" not in text, (cell.source, text)
        else:
            assert text.startswith("· not done yet"), (cell.source, text)
