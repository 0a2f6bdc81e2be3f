"""Notebook 05's exercises: inverted dropout, im2col, the max-pool backward pass, a convolution's cost, and the
backward pass of a global average pool."""

import numpy as np

from .. import conv
from ..gradcheck import numerical_grad
from ..layers import Dropout
from . import Exercise, _Mutated, _Raised, _call, _describe, _outputs, _real


class _Exercise05(Exercise):
    """An Exercise that also names mistakes no single wrong function stands for.

    shape_mistake  (output, expected, args) -> message or None, looked at on every case before any comparison
    probes         [(exercise, learner's fn, cases) -> message or None]: tried, in order, when the learner's function raises
                   or gives a wrong answer that no listed mistake explains (e.g. "right on square images only")
    to_nchw        args -> the same args with the images channels first: a raise gets the layout note (raised_note)
                   only if the function, handed that layout, no longer raises
    explain        (output, expected) -> message or None: a plainer report of a wrong output than the generic one
    """

    def __init__(self, *args, shape_mistake=None, probes=(), to_nchw=None, explain=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.shape_mistake, self.probes, self.to_nchw, self.explain = shape_mistake, probes, to_nchw, explain

    def correct_on(self, fn, args):
        out = _call(fn, args)
        return not isinstance(out, (_Raised, _Mutated)) and self._close(out, _call(self.reference, args))

    def diagnose(self, fn):
        try:
            return self._diagnose05(fn)
        except Exception:                                # noqa: BLE001 - an output too odd for the extra checks:
            return super().diagnose(fn)                  # the shared checks report it, and never raise

    def _diagnose05(self, fn):
        cases = self.cases(np.random.default_rng(self.seed))
        raised = None
        for args in cases:
            out = _call(fn, args, watch=True)
            if isinstance(out, _Raised):
                if isinstance(out.error, NotImplementedError):
                    return super().diagnose(fn)
                raised = (args, out)
                break
            if isinstance(out, _Mutated):
                return super().diagnose(fn)
            want = _call(self.reference, args)
            if any(o is None for o in _outputs(out, want)):
                return super().diagnose(fn)
            if self.shape_mistake is not None:
                message = self.shape_mistake(out, want, args)
                if message:
                    return "mistake", f"✗ {message}"
        if raised is None:
            verdict, message = super().diagnose(fn)
            if verdict != "wrong" or message.startswith(f"✗ {self.name} matches npnet but not"):
                return verdict, message
        for probe in self.probes:
            found = probe(self, fn, cases)
            if found:
                return "mistake", f"✗ {found}"
        if raised is not None:
            args, out = raised
            note = ""
            if self.raised_note and (self.to_nchw is None or all(
                    not isinstance(_call(fn, self.to_nchw(a)), _Raised) for a in cases)):
                note = f". {self.raised_note}"
            return "wrong", f"✗ {self.name} raised {out.text} on {_describe(args)}{note}"
        if self.explain is not None:
            for args in cases:
                out, want = _call(fn, args), _call(self.reference, args)
                if not self._close(out, want):
                    found = self.explain(out, want)
                    if found:
                        return "wrong", f"✗ {self.name}: {found} on {_describe(args)}"
                    break
        return verdict, message


def _works_only_where(easy, message):
    """A probe: the answer is right on every case where easy(args) and wrong (or raises) on another."""
    def probe(ex, fn, cases):
        good = [ex.correct_on(fn, a) for a in cases]
        flags = [easy(a) for a in cases]
        if any(flags) and all(g for g, f in zip(good, flags) if f) and not all(good):
            bad = next(a for a, g in zip(cases, good) if not g)
            return message(bad)
        return None
    return probe



# -- inverted dropout ---------------------------------------------------------------------------------------
def dropout_solution(x, p, u, training):
    """(N, ...) activations, drop probability p, (N, ...) uniform draws u in [0, 1), bool -> (N, ...) output."""
    if not training:
        return x                                      # evaluation: the identity, nothing to rescale
    keep = u >= p                                     # each unit survives with probability 1 - p
    return x * keep / (1 - p)                         # inverted: scale the survivors so the mean is unchanged


class _Draws:
    """Stands in for a numpy Generator and hands npnet's Dropout the given uniform draws."""

    def __init__(self, u):
        self.u = u

    def random(self, shape, dtype=np.float64):
        assert tuple(shape) == self.u.shape
        return self.u.astype(dtype)


def _dropout_reference(x, p, u, training):
    layer = Dropout(p, rng=_Draws(u))
    layer.training = training
    return layer.forward(x)


def _dropout_cases(rng):
    def case(shape, p, training):
        return (rng.standard_normal(shape), p, rng.random(shape, np.float32), training)
    return [case((1, 5), 0.2, True), case((7, 128), 0.5, True), case((4, 3, 6, 6), 0.3, True),
            case((64, 32), 0.0, True),                                  # p = 0: nothing is dropped
            _tie(case((8, 16), 0.5, True)),                              # draws exactly p: kept, as u >= p says
            case((7, 128), 0.5, False), case((16, 10), 0.2, False)]     # evaluation mode


def _tie(case):
    """The same case with some draws exactly equal to p (0.5 is exact in float32): u >= p keeps them, u > p would not."""
    x, p, u, training = case
    u[:, :4] = p
    return x, p, u, training


def _keep(u, p):
    return u >= p


def _training_cases(cases):
    return [args for args in cases if args[3] and args[1] > 0]


def _dropout_own_draws(ex, fn, cases):
    """Probe: the output changes from call to call, or drops units that u keeps while scaling the rest by 1/(1 - p)."""
    for args in _training_cases(cases):
        first, second = _real(_call(fn, args)), _real(_call(fn, args))
        if first is None or second is None or first.shape != args[0].shape:
            return None
        if not np.array_equal(first, second):
            return ("dropout gives a different output each time it is called on the same input: it draws its own "
                    "random numbers. Use the draws u you are given, keeping a unit where u >= p, so that it can be "
                    "compared with npnet's layer draw for draw.")
    for args in _training_cases(cases):
        x, p, u, _ = args
        out = _real(_call(fn, args))
        kept = out != 0
        if not np.allclose(out, x * kept / (1 - p)) or np.array_equal(kept, _keep(u, p)):
            return None
    return ("the kept units are scaled right, but they are not the units u keeps: use the draws you are given, "
            "keeping a unit where u >= p, rather than drawing your own.")


def _dropout_returns_mask(ex, fn, cases):
    """Probe: in training, the output is the (scaled) mask itself, not x times it."""
    for args in _training_cases(cases):
        x, p, u, _ = args
        out = _real(_call(fn, args))
        if out is None or out.shape != x.shape or not any(
                np.allclose(out, _keep(u, p) * scale) for scale in (1, 1 / (1 - p))):
            return None
    return ("in training dropout returns the mask (1 for a kept unit, or 1/(1 - p)), not the activations: multiply x "
            "by it.")


dropout = _Exercise05(
    "dropout", _dropout_reference, dropout_solution, _dropout_cases,
    "matches npnet's Dropout draw for draw on batches of 1, 7, 8, 64 and a 4-D batch, for p = 0, 0.2, 0.3 and 0.5 "
    "(draws exactly equal to p included), in training and in evaluation mode",
    mistakes=[
        ("the kept units are not scaled: divide them by 1 - p, the probability of keeping, so that each unit's "
         "expected value stays x and the next layer sees the same scale in training and at test time.",
         lambda x, p, u, t: x * _keep(u, p) if t else x),
        ("this is the original (non-inverted) dropout, which scales by 1 - p at test time. npnet's inverted dropout "
         "scales the kept units by 1/(1 - p) in training instead, so evaluation mode returns x unchanged.",
         lambda x, p, u, t: x * _keep(u, p) if t else x * (1 - p)),
        ("training mode is right, but you also scale at test time: with inverted dropout the 1/(1 - p) in training "
         "already keeps the mean, so evaluation mode returns x unchanged.",
         lambda x, p, u, t: x * _keep(u, p) / (1 - p) if t else x * (1 - p)),
        ("dropout is still on at test time: when training is False, return x unchanged (no mask, no scale).",
         lambda x, p, u, t: x * _keep(u, p) / (1 - p)),
        ("p is the probability of DROPPING a unit (as in npnet's Dropout(p)), not of keeping it as in CS231n's "
         "notes: keep where u >= p and divide by 1 - p.",
         lambda x, p, u, t: x * (u < p) / p if t else x),
        ("you keep the units whose draw is below p, so each survives with probability p instead of 1 - p: "
         "keep where u >= p.",
         lambda x, p, u, t: x * (u < p) / (1 - p) if t else x),
        ("the kept units are multiplied by 1 - p, which shrinks them: DIVIDE by 1 - p, so that the expected output "
         "equals x.", lambda x, p, u, t: x * _keep(u, p) * (1 - p) if t else x),
        ("the survivors are scaled by 1/p: divide by the probability of keeping a unit, 1 - p.",
         lambda x, p, u, t: x * _keep(u, p) / p if t else x),
        ("you keep where u > p: a draw exactly equal to p is dropped, but npnet (and the docstring) keep where "
         "u >= p, so the two masks differ on such draws.",
         lambda x, p, u, t: x * (u > p) / (1 - p) if t else x),
        ("the kept units are divided by the share of units kept in this batch: divide by 1 - p, the probability of "
         "keeping a unit, a constant that npnet's layer (and evaluation mode) can rely on, not by a batch statistic.",
         lambda x, p, u, t: x * _keep(u, p) / _keep(u, p).mean() if t else x),
        ("keeping where u < 1 - p is right in distribution, but it is not npnet's mask draw for draw: keep where "
         "u >= p, as the docstring says, so that your output can be compared with npnet's.",
         lambda x, p, u, t: x * (u < 1 - p) / (1 - p) if t else x),
    ],
    probes=[_dropout_own_draws, _dropout_returns_mask],
    hint_text="In training, a unit is kept where its draw u >= p, which happens with probability 1 - p. If every kept "
              "unit is multiplied by a number a, its expected output is (1 - p)·a·x: which a makes that x? In "
              "evaluation (training=False) every unit is kept, so the layer has nothing to correct.",
)


# -- im2col ---------------------------------------------------------------------------------------------------
def im2col_solution(x, k, stride):
    """(N, H, W, C), kernel side k, stride -> cols (N·Ho·Wo, k·k·C), rows ordered (n, i, j), columns (u, v, c)."""
    N, H, W, C = x.shape
    Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
    cols = np.empty((N, Ho, Wo, k, k, C), x.dtype)
    for u in range(k):                                # one whole-batch copy per kernel offset (u, v)
        for v in range(k):
            cols[:, :, :, u, v] = x[:, u:u + stride * Ho:stride, v:v + stride * Wo:stride]   # (N, Ho, Wo, C)
    return cols.reshape(N * Ho * Wo, k * k * C)


def _im2col_cases(rng):
    shapes = [((1, 5, 5, 1), 3, 1), ((2, 7, 6, 3), 3, 1), ((3, 8, 9, 2), 3, 2), ((2, 8, 7, 3), 3, 2),
              ((2, 9, 9, 2), 5, 2), ((1, 4, 4, 2), 4, 1)]           # the last: one patch covering the image
    return [(rng.standard_normal(shape), k, s) for shape, k, s in shapes]


def _windows(x, k, stride):
    """(N, Ho, Wo, C, k, k) patches, the building block of the wrong answers below."""
    return np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]


def _as_cols(windows, *axes):
    """The windows with their axes in the given order, one row per patch: (N·Ho·Wo, k·k·C)."""
    w = windows.transpose(*axes)
    return w.reshape(-1, w.shape[3] * w.shape[4] * w.shape[5])


def _channel_first(x, k, s):
    return _as_cols(_windows(x, k, s), 0, 1, 2, 3, 4, 5)


def _patch_transposed(x, k, s):
    return _as_cols(_windows(x, k, s), 0, 1, 2, 5, 4, 3)


def _patch_reversed(x, k, s):
    return _as_cols(_windows(x, k, s)[..., ::-1, ::-1], 0, 1, 2, 4, 5, 3)


def _rows_ijn(x, k, s):
    return _as_cols(_windows(x, k, s), 1, 2, 0, 4, 5, 3)


def _patch_axes_first(x, k, s):
    """cols built as (N, k, k, Ho, Wo, C), cols[:, u, v] = ..., then reshaped with no transpose."""
    w = _windows(x, k, s).transpose(0, 4, 5, 1, 2, 3)                 # (N, k, k, Ho, Wo, C)
    return np.ascontiguousarray(w).reshape(-1, k * k * x.shape[3])


def _starts_at_u_times_stride(x, k, s):
    N, H, W, C = x.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    cols = np.zeros((N, Ho, Wo, k, k, C))
    for u in range(k):
        for v in range(k):
            patch = x[:, u * s:u * s + s * Ho:s, v * s:v * s + s * Wo:s]          # starts at u·s, not u
            cols[:, :patch.shape[1], :patch.shape[2], u, v] = patch
    return cols.reshape(N * Ho * Wo, k * k * C)


def _no_plus_one(x, k, s):
    N, H, W, C = x.shape
    return _as_cols(_windows(x, k, s)[:, :(H - k) // s, :(W - k) // s], 0, 1, 2, 4, 5, 3)


def _no_plus_one_loop(x, k, s):
    """The same, built as np.array(list of rows): with no patch at all it has shape (0,), not (0, k·k·C)."""
    cols = _no_plus_one(x, k, s)
    return cols if len(cols) else np.array([])


def _floor_after_plus_one(x, k, s):
    N, H, W, C = x.shape
    return _as_cols(_windows(x, k, s)[:, :(H - k + 1) // s, :(W - k + 1) // s], 0, 1, 2, 4, 5, 3)


def _steps_of_one(x, k, s):
    N, H, W, C = x.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    return _as_cols(_windows(x, k, 1)[:, :Ho, :Wo], 0, 1, 2, 4, 5, 3)


def _im2col_shape(out, want, args):
    """The learner's cols is not 2-D: the final reshape is missing (a 4-D array would also trip the generic report)."""
    o = _real(out)
    if o is None or o.ndim == 2:
        return None
    x, k, s = args
    N, H, W, C = x.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    if o.shape == (N, Ho, Wo, k * k * C):
        return ("you returned (N, Ho, Wo, k·k·C): reshape to (N·Ho·Wo, k·k·C), one row per patch, so that cols @ W "
                f"works (here {o.shape} -> {want.shape}).")
    if o.size == want.size and o.ndim > 2:
        return (f"cols has the right number of values but shape {o.shape}: put its axes in the order "
                "(N, Ho, Wo, k, k, C) and reshape to (N·Ho·Wo, k·k·C), one row per patch.")
    if o.ndim > 2:
        return f"im2col returned a {o.ndim}-D array of shape {o.shape}; cols is 2-D, (N·Ho·Wo, k·k·C) = {want.shape}."
    return None


def _nchw(args):
    """The same case with the images channels first, (N, C, H, W), and any image-shaped gradient too."""
    return tuple(a.transpose(0, 3, 1, 2) if isinstance(a, np.ndarray) and a.ndim == 4 else a for a in args)


def _im2col_reads_nchw(ex, fn, cases):
    """Probe: handed x as (N, C, H, W), the function returns the right patches (in either column order)."""
    channel_first = False
    for x, k, s in cases:
        out = _call(fn, _nchw((x, k, s)))
        if isinstance(out, (_Raised, _Mutated)):
            return None
        if ex._close(out, conv.im2col(x, k, s)):
            continue
        if ex._close(out, _channel_first(x, k, s)):
            channel_first = True
            continue
        return None
    order = " (and order each row's values (u, v, c), channel last)" if channel_first else ""
    return ("im2col reads x as (N, C, H, W): handed x in that layout, it returns the right patches. npnet's images "
            "are channels last, (N, H, W, C): rows and columns are axes 1 and 2 and C is x.shape[3]" + order + ".")


_im2col_square = _works_only_where(
    lambda args: args[0].shape[1] == args[0].shape[2],
    lambda args: (f"im2col is right on square images but not on the {args[0].shape[1]}×{args[0].shape[2]} one: Ho "
                  "comes from the height H = x.shape[1] and Wo from the width W = x.shape[2], "
                  "Wo = (W - k) // stride + 1."))
_im2col_stride = _works_only_where(
    lambda args: args[2] == 1,
    lambda args: ("im2col is right with stride 1 but not with stride 2: with stride s there are "
                  "Ho = (H - k) // s + 1 output rows (not H - k + 1), and patch (i, j) starts at pixel (i·s, j·s)."))


im2col = _Exercise05(
    "im2col", conv.im2col, im2col_solution, _im2col_cases,
    "matches npnet.conv.im2col for 1 to 3 images, 1 to 3 channels, 3×3, 4×4 and 5×5 kernels, strides 1 and 2",
    mistakes=[
        ("the columns are ordered (c, u, v), channel first, but K.reshape(-1, F) lists each kernel's weights in "
         "the order (u, v, c), channel last: put the channel last, so that column r of cols meets row r of W.",
         _channel_first),
        ("each patch is transposed: order the columns (u, v, c) with u the row offset and v the column offset "
         "inside the patch, the order of K[:, :, :, f].ravel().", _patch_transposed),
        ("each patch runs backwards, (k-1-u, k-1-v, c): that flips the kernel, the convolution of the maths books. "
         "Conv2D (like every deep-learning library) computes the cross-correlation, with the patch in its own "
         "order.", _patch_reversed),
        ("the rows are ordered (i, j, n), but Conv2D reshapes cols @ W to (N, Ho, Wo, F): the image index n must "
         "vary slowest, then the output row i, then the output column j.", _rows_ijn),
        ("the rows are ordered (n, j, i): the output column j changes slower than the row i. Loop over i outside j, so "
         "that the rows run (n, i, j) and cols @ W reshapes to (N, Ho, Wo, F).",
         lambda x, k, s: _as_cols(_windows(x, k, s), 0, 2, 1, 4, 5, 3)),
        ("each patch is flattened column-major (order='F'), which gives the order (c, v, u): flatten it row-major, "
         "NumPy's default, to get (u, v, c), the order of K.reshape(-1, F).",
         lambda x, k, s: _as_cols(_windows(x, k, s), 0, 1, 2, 3, 5, 4)),
        ("the stride is missing: with stride s there are Ho = (H - k) // s + 1 output rows, and patch (i, j) starts "
         "at pixel (i·s, j·s).", lambda x, k, s: conv.im2col(x, k, 1)),
        ("the size is right, but patch (i, j) starts at pixel (i, j): with stride s it starts at (i·s, j·s).",
         _steps_of_one),
        ("cols is transposed: one ROW per patch, shape (N·Ho·Wo, k·k·C), so that cols @ W (k·k·C, F) works.",
         lambda x, k, s: conv.im2col(x, k, s).T),
        ("the values are right but each row mixes several patches: your array is laid out (N, k, k, Ho, Wo, C). "
         "Put the axes in the order (N, Ho, Wo, k, k, C) before reshaping to (N·Ho·Wo, k·k·C).", _patch_axes_first),
        ("the pixel under offset (u, v) of patch (i, j) is (i·s + u, j·s + v): the slice for offset u starts at u "
         "and steps by s, x[:, u : u + s·Ho : s], not at u·s.", _starts_at_u_times_stride),
        ("one patch too few in each direction: a k-wide kernel fits (H - k) // stride + 1 times in H pixels.",
         _no_plus_one),
        ("one patch too few in each direction, and none at all where the kernel covers the whole image: a k-wide "
         "kernel fits (H - k) // stride + 1 times in H pixels (once when k = H).", _no_plus_one_loop),
        ("(H - k + 1) // stride output rows is right for stride 1 only: a patch can start at 0, s, 2s, ... as long as "
         "the start is at most H - k, which makes (H - k) // stride + 1 rows.", _floor_after_plus_one),
    ],
    raised_note="x is (N, H, W, C), channels last: its rows and columns are axes 1 and 2 (x[:, rows, cols]) and "
                "C is x.shape[3]",
    shape_mistake=_im2col_shape, probes=[_im2col_reads_nchw, _im2col_square, _im2col_stride], to_nchw=_nchw,
    hint_text="First the sizes: how many positions does a k-wide window take in H pixels, moving stride pixels at a "
              "time? Then build cols one patch at a time: the patch of output position (i, j) in image n is "
              "x[n, i·stride : i·stride + k, j·stride : j·stride + k, :], shape (k, k, C), and reshaped to one row "
              "it is already in the order (u, v, c). Put the rows in the order (n, i, j). Once that passes, try to "
              "lose the loops over n, i and j (the notebook's fold-out says how).",
)


# -- the max-pool backward pass -----------------------------------------------------------------------------
def maxpool_backward_solution(x, grad, size):
    """(N, H, W, C) input of the forward pass, (N, H//size, W//size, C) gradient -> (N, H, W, C) gradient."""
    N, H, W, C = x.shape
    Ho, Wo = H // size, W // size
    # Each window as one row of size·size values, in row-major order inside the window: (N, Ho, Wo, C, size²).
    windows = (x[:, :Ho * size, :Wo * size].reshape(N, Ho, size, Wo, size, C)
               .transpose(0, 1, 3, 5, 2, 4).reshape(N, Ho, Wo, C, size * size))
    first_max = windows.argmax(axis=-1)                                # argmax returns the FIRST max on ties
    routed = (np.arange(size * size) == first_max[..., None]) * grad[..., None]   # (N, Ho, Wo, C, size²)
    dx = np.zeros(x.shape, grad.dtype)                                 # rows/columns outside every window: 0
    dx[:, :Ho * size, :Wo * size] = (routed.reshape(N, Ho, Wo, C, size, size)
                                     .transpose(0, 1, 4, 2, 5, 3).reshape(N, Ho * size, Wo * size, C))
    return dx


def _pool_reference(x, grad, size):
    layer = conv.MaxPool2D(size)
    layer.forward(x)
    return layer.backward(grad)


def _pool_numerical(x, grad, size):
    """Central differences of L = sum(maxpool(x) · grad) in float64.

    Where a window holds a tie, the max has no derivative; the layer sends the gradient to the window's first max
    (row by row). The same choice is made here by adding to each position a bump that falls along the window,
    far smaller than the smallest gap between different values, and differencing with a step smaller still.
    """
    pool = conv.MaxPool2D(size)
    out = pool.forward(x)
    ties = (_upsample(out, x.shape, size) == x).reshape(-1).sum() > out.size     # some window has 2+ maxima
    h = 1e-5
    if ties:
        gaps = np.diff(np.unique(x))
        bump = min(1e-3, gaps.min() / (4 * size * size))
        rank = np.add.outer(np.arange(x.shape[1]) % size * size, np.arange(x.shape[2]) % size)  # 0 = window's first
        x = x + bump * (size * size - rank)[:, :, None]
        h = bump / 10

    def loss():
        return float(np.sum(pool.forward(x) * grad))
    return numerical_grad(loss, x, h)


def _pool_cases(rng):
    cases = [((1, 4, 4, 1), 2), ((2, 6, 8, 3), 2), ((3, 7, 5, 2), 2), ((2, 9, 6, 2), 3)]   # 7×5: a row/column left over
    out = [rng.standard_normal(shape) for shape, size in cases]
    out.append(rng.integers(0, 3, (2, 6, 6, 3)).astype(np.float64))                       # many tied maxima
    out.append(np.maximum(rng.standard_normal((2, 6, 6, 4)) - 0.5, 0))                     # after a ReLU: tied zeros
    sizes = [size for _, size in cases] + [2, 2]
    return [(x, rng.standard_normal((x.shape[0], x.shape[1] // s, x.shape[2] // s, x.shape[3])), s)
            for x, s in zip(out, sizes)]


def _upsample(grad, x_shape, size):
    """Each window's gradient copied to all size×size of its pixels; 0 outside every window: (N, H, W, C)."""
    dx = np.zeros(x_shape)
    Ho, Wo = grad.shape[1:3]
    dx[:, :Ho * size, :Wo * size] = grad.repeat(size, axis=1).repeat(size, axis=2)
    return dx


def _window_max(x, size):
    """Each window's max copied to all its pixels: (N, H, W, C)."""
    return _upsample(conv.MaxPool2D(size).forward(x), x.shape, size)


def _route(x, grad, size, pick):
    """Send each window's gradient to the position pick(window values) -> (row, col) inside the window."""
    N, H, W, C = x.shape
    Ho, Wo = H // size, W // size
    dx = np.zeros(x.shape)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = x[n, i * size:(i + 1) * size, j * size:(j + 1) * size, c]
                    r, s = pick(window)
                    dx[n, i * size + r, j * size + s, c] += grad[n, i, j, c]
    return dx


def _cropped(x, g, s):
    """The right gradient, but only for the rows and columns that windows cover: shape (N, Ho·s, Wo·s, C)."""
    Ho, Wo = g.shape[1:3]
    return maxpool_backward_solution(x, g, s)[:, :Ho * s, :Wo * s]


def _column_major_first(window):
    r, c = divmod(int(np.argmax(window.T.ravel())), window.shape[0])
    return c, r


def _last_max(window):
    flat = window.ravel()
    a = len(flat) - 1 - np.argmax(flat[::-1])
    return divmod(a, window.shape[1])


def _first_max(window):
    return divmod(int(np.argmax(window)), window.shape[1])


def _pool_reads_nchw(ex, fn, cases):
    """Probe: handed x and grad as (N, C, H, W), the function returns the right gradient in that layout."""
    for args in cases:
        out = _call(fn, _nchw(args))
        if isinstance(out, (_Raised, _Mutated)) or not ex._close(out, _pool_reference(*args).transpose(0, 3, 1, 2)):
            return None
    return ("maxpool_backward reads x as (N, C, H, W): handed x and grad in that layout, it is right. npnet's "
            "images are channels last, (N, H, W, C): the windows run along axes 1 and 2, and C is x.shape[3].")


_pool_leftover = _works_only_where(
    lambda args: args[0].shape[1] % args[2] == 0 and args[0].shape[2] % args[2] == 0,
    lambda args: (f"maxpool_backward is right when H and W are multiples of size, but not on the "
                  f"{args[0].shape[1]}×{args[0].shape[2]} input with size {args[2]}: the last rows or columns are in "
                  "no window. Cut x to x[:, :Ho·size, :Wo·size] before reshaping, and give the leftover pixels 0."))
_pool_square = _works_only_where(
    lambda args: args[0].shape[1] == args[0].shape[2],
    lambda args: (f"maxpool_backward is right on square inputs but not on the {args[0].shape[1]}×"
                  f"{args[0].shape[2]} one: Ho = H // size comes from x.shape[1], Wo = W // size from x.shape[2]."))


maxpool_backward = _Exercise05(
    "maxpool_backward", _pool_reference, maxpool_backward_solution, _pool_cases,
    "matches npnet's MaxPool2D.backward and central differences (float64) for 2×2 and 3×3 windows, on a batch of 1, "
    "with a row and a column left over, and with tied maxima (integers, and zeros after a ReLU)",
    numerical=_pool_numerical,
    mistakes=[
        ("the gradient is spread evenly over the window: that is the backward pass of an AVERAGE pool. A max pool's "
         "output depends only on the window's largest value, so the whole gradient goes to that one position.",
         lambda x, g, s: _upsample(g, x.shape, s) / (s * s)),
        ("the gradient is copied to every pixel of its window: only the position holding the max moved the output, "
         "so only it gets the gradient; the others get 0.",
         lambda x, g, s: _upsample(g, x.shape, s)),
        ("where a window holds several equal maxima, each of them gets the whole gradient, so the window passes on "
         "two or more times what came in. Send it to the first max only (np.argmax returns the first).",
         lambda x, g, s: _upsample(g, x.shape, s) * (x == _window_max(x, s))),
        ("ties go to the window's LAST max: npnet (and np.argmax) send the gradient to the first position holding "
         "the max, counting row by row.",
         lambda x, g, s: _route(x, g, s, _last_max)),
        ("the gradient lands at the top-left pixel of every window, not at the window's max.",
         lambda x, g, s: _route(x, g, s, lambda w: (0, 0))),
        ("the gradient goes to the max's position with row and column swapped: a flat index a inside a size×size "
         "window is row a // size, column a % size.",
         lambda x, g, s: _route(x, g, s, lambda w: divmod(int(np.argmax(w)), w.shape[1])[::-1])),
        ("on ties you pick the first max counted column by column; npnet counts row by row, as np.argmax does on "
         "the window flattened row-major.", lambda x, g, s: _route(x, g, s, _column_major_first)),
        ("the max's position gets 1, not the incoming gradient: multiply the one-hot by grad[..., None].",
         lambda x, g, s: _route(x, np.ones_like(g), s, lambda w: divmod(int(np.argmax(w)), w.shape[1]))),
        ("the max's position gets the gradient times the max's VALUE: the derivative of max(window) with respect to "
         "the max is 1, so it gets grad itself, whatever the value.",
         lambda x, g, s: _route(x, g * conv.MaxPool2D(s).forward(x), s, _first_max)),
        ("dx must have x's shape even when H or W is not a multiple of size: the leftover rows and columns are in "
         "no window and get 0.", _cropped),
    ],
    raised_note="x is (N, H, W, C), channels last: cut it to x[:, :Ho·size, :Wo·size] and reshape that to "
                "(N, Ho, size, Wo, size, C), the two in-window axes being 2 and 4",
    probes=[_pool_reads_nchw, _pool_leftover, _pool_square], to_nchw=_nchw,
    hint_text="Reshape x[:, :Ho·size, :Wo·size] to (N, Ho, size, Wo, size, C), move the two in-window axes to "
              "the end and flatten them: (N, Ho, Wo, C, size²). np.argmax over the last axis gives each window's "
              "first max; a one-hot of it times grad[..., None] routes the gradient. Undo the reshapes, and leave 0 "
              "in rows or columns that no window covers.",
)


# -- a convolution's cost -----------------------------------------------------------------------------------
def conv_cost_solution(in_channels, out_channels, k, H, W, stride, padding, dilation=1):
    """A Conv2D on one (H, W, in_channels) image, its k×k taps dilation pixels apart
    -> (parameters, multiply-adds per image, Ho, Wo)."""
    span = dilation * (k - 1) + 1                                 # k taps, k - 1 gaps of dilation pixels
    Ho = (H + 2 * padding - span) // stride + 1
    Wo = (W + 2 * padding - span) // stride + 1
    params = out_channels * (in_channels * k * k + 1)             # k·k·C weights and one bias per kernel
    macs = Ho * Wo * out_channels * in_channels * k * k           # every output value is a C·k·k dot product
    return params, macs, Ho, Wo


def _cost_reference(in_channels, out_channels, k, H, W, stride, padding, dilation=1):
    """npnet's Conv2D has no dilation: its output size is that of an undilated kernel as wide as the dilated one's
    span; its parameters, and the multiply-adds of each output value, are those of a k×k kernel."""
    span = dilation * (k - 1) + 1
    out = conv.Conv2D(in_channels, 1, span, stride=stride, padding=padding).forward(
        np.zeros((1, H, W, in_channels), np.float32))                               # (1, Ho, Wo, 1)
    layer = conv.Conv2D(in_channels, out_channels, k)
    params = sum(p.size for p in layer.params.values())
    return params, out.shape[1] * out.shape[2] * out_channels * layer.params["W"][..., 0].size, out.shape[1], out.shape[2]


def _cost_cases(rng):
    return [(1, 32, 5, 28, 28, 1, 0, 1), (32, 64, 5, 12, 12, 1, 0, 1),     # the course's two convolutions
            (1, 32, 5, 28, 28, 1, 2, 1), (32, 64, 5, 14, 14, 1, 2, 1),     # the same with 'same' padding
            (3, 8, 3, 9, 7, 2, 1, 1), (2, 4, 3, 8, 8, 2, 0, 1),           # stride 2, non-square
            (16, 16, 3, 12, 12, 1, 0, 2), (1, 8, 3, 28, 28, 1, 2, 2),     # dilated: a 3×3 kernel spanning 5×5
            (3, 4, 3, 17, 13, 2, 1, 3)]                                   # dilation 3 with stride 2 and padding


def _span(k, d):
    return d * (k - 1) + 1


def _cost(in_c, out_c, k, Ho, Wo, bias=True):
    return out_c * (in_c * k * k + bias), Ho * Wo * out_c * in_c * k * k, Ho, Wo


def _out(H, W, k, s, p, d=1):
    return (H + 2 * p - _span(k, d)) // s + 1, (W + 2 * p - _span(k, d)) // s + 1


_COST_NAMES = ("parameters", "multiply-adds", "Ho", "Wo")


def _cost_shape(out, want, args):
    """A dict, or the four numbers in another order."""
    if isinstance(out, dict):
        return ("conv_cost returned a dict: return the four numbers as a tuple, "
                "(parameters, multiply-adds, Ho, Wo), in that order.")
    outs = _outputs(out, want)
    if len(outs) == 4 and all(_real(o) is not None and np.ndim(o) == 0 for o in outs):
        got, exp = [float(_real(o)) for o in outs], [float(w) for w in want]
        if got != exp and sorted(got) == sorted(exp):
            return ("the four numbers are right but in another order: return (parameters, multiply-adds, Ho, Wo).")
    return None


def _cost_explain(out, want):
    """'multiply-adds: you returned 14,400, expected 460,800': whole numbers are easier to compare than a difference."""
    outs = _outputs(out, want)
    if len(outs) != len(want):
        return None
    for name, o, w in zip(_COST_NAMES, outs, want):
        v = _real(o)
        if v is None or v.ndim:
            return None
        if not np.isclose(v, w):
            shown = f"{int(v):,}" if float(v).is_integer() else f"{float(v):,.4g}"
            return f"{name}: you returned {shown}, expected {int(w):,}"
    return None


def _right(C, F, k, H, W, s, p, d):
    return _cost(C, F, k, *_out(H, W, k, s, p, d))


conv_cost = _Exercise05(
    "conv_cost", _cost_reference, conv_cost_solution, _cost_cases,
    "parameters, multiply-adds and output size match an npnet Conv2D for the course's two convolutions, with "
    "'same' padding, with stride 2, and with dilated kernels",
    returns=_COST_NAMES, shape_mistake=_cost_shape, explain=_cost_explain,
    mistakes=[
        ("the output size ignores the dilation: k taps dilation pixels apart span d·(k - 1) + 1 pixels, so "
         "Ho = (H + 2p - d·(k - 1) - 1) // stride + 1.",
         lambda C, F, k, H, W, s, p, d: _cost(C, F, k, *_out(H, W, k, s, p))),
        ("a dilated kernel spans d·(k - 1) + 1 pixels, not d·k: its k taps leave k - 1 gaps of d pixels.",
         lambda C, F, k, H, W, s, p, d: _cost(C, F, k, (H + 2 * p - d * k) // s + 1, (W + 2 * p - d * k) // s + 1)),
        ("the parameters or multiply-adds grow with the dilation: a dilated kernel still has k·k taps per channel, "
         "so F·(C·k·k + 1) parameters and Ho·Wo·F·C·k·k multiply-adds; only the patch it reads is wider.",
         lambda C, F, k, H, W, s, p, d: _cost(C, F, _span(k, d), *_out(H, W, k, s, p, d))),
        ("the parameter count leaves out the biases: each of the F kernels has one, so F·(C·k·k + 1).",
         lambda C, F, k, H, W, s, p, d: _cost(C, F, k, *_out(H, W, k, s, p, d), bias=False)),
        ("the output size ignores the padding: padding adds p rows on each side, Ho = (H + 2p - span) // s + 1, with span = d·(k - 1) + 1 (k when d = 1).",
         lambda C, F, k, H, W, s, p, d: _cost(C, F, k, *_out(H, W, k, s, 0, d))),
        ("the output size ignores the stride: Ho = (H + 2p - span) // s + 1, with span = d·(k - 1) + 1 (k when d = 1).",
         lambda C, F, k, H, W, s, p, d: _cost(C, F, k, *_out(H, W, k, 1, p, d))),
        ("the output size is one too small: a kernel spanning n pixels fits H - n + 1 times in H pixels, not H - n.",
         lambda C, F, k, H, W, s, p, d: _cost(C, F, k, *(o - 1 for o in _out(H, W, k, s, p, d)))),
        ("the multiply-adds are twice the answer: you counted FLOPs (a multiply and an add each); count each "
         "multiply-add once.", lambda C, F, k, H, W, s, p, d: (lambda r: (r[0], 2 * r[1], r[2], r[3]))(
             _right(C, F, k, H, W, s, p, d))),
        ("the parameter count leaves out the input channels: each kernel covers all C of them, (k, k, C) weights, "
         "so there are F·(C·k·k + 1) parameters.",
         lambda C, F, k, H, W, s, p, d: (lambda r: (F * (k * k + 1), r[1], r[2], r[3]))(_right(C, F, k, H, W, s, p, d))),
        ("the multiply-adds count the bias too: adding it is an addition, not a multiply-add, so Ho·Wo·F·C·k·k.",
         lambda C, F, k, H, W, s, p, d: (lambda Ho, Wo: (F * (C * k * k + 1), Ho * Wo * F * (C * k * k + 1), Ho, Wo))(
             *_out(H, W, k, s, p, d))),
        ("the multiply-adds use the input's H·W: there is one dot product per OUTPUT value, so Ho·Wo·F·C·k·k.",
         lambda C, F, k, H, W, s, p, d: (lambda Ho, Wo: (F * (C * k * k + 1), H * W * F * C * k * k, Ho, Wo))(
             *_out(H, W, k, s, p, d))),
        ("the output size pads one side only: padding adds p rows at the top and p at the bottom, H + 2p.",
         lambda C, F, k, H, W, s, p, d: _cost(C, F, k, (H + p - _span(k, d)) // s + 1, (W + p - _span(k, d)) // s + 1)),
        ("the output size is not a whole number: a kernel moves in whole steps of stride pixels, so divide with //, "
         "Ho = (H + 2p - span) // stride + 1, with span = d·(k - 1) + 1 (k when d = 1).",
         lambda C, F, k, H, W, s, p, d: _cost(C, F, k, (H + 2 * p - _span(k, d)) / s + 1, (W + 2 * p - _span(k, d)) / s + 1)),
        ("Wo comes from H: the output's width comes from the input's width, Wo = (W + 2p - span) // stride + 1, with span = d·(k - 1) + 1 (k when d = 1).",
         lambda C, F, k, H, W, s, p, d: _cost(C, F, k, *_out(H, H, k, s, p, d))),
        ("F·C·k·k + 1 counts one bias for the whole layer: each of the F kernels has its own, so F·(C·k·k + 1).",
         lambda C, F, k, H, W, s, p, d: (lambda r: (F * C * k * k + 1, r[1], r[2], r[3]))(_right(C, F, k, H, W, s, p, d))),
        ("(H + 2p - span + 1) // stride is right for stride 1 only: a kernel can start at 0, s, 2s, ... as long as "
         "the start is at most H + 2p - span, which makes (H + 2p - span) // stride + 1 positions "
         "(span = d·(k - 1) + 1, k when d = 1).",
         lambda C, F, k, H, W, s, p, d: _cost(C, F, k, (H + 2 * p - _span(k, d) + 1) // s, (W + 2 * p - _span(k, d) + 1) // s)),
        ("the multiply-adds leave out the kernels: each of the F feature maps has Ho·Wo values, so Ho·Wo·F·C·k·k.",
         lambda C, F, k, H, W, s, p, d: (lambda r: (r[0], r[1] // F, r[2], r[3]))(_right(C, F, k, H, W, s, p, d))),
        ("the multiply-adds leave out the input channels: each output value sums over C·k·k inputs, not k·k.",
         lambda C, F, k, H, W, s, p, d: (lambda r: (r[0], r[1] // C, r[2], r[3]))(_right(C, F, k, H, W, s, p, d))),
    ],
    hint_text="Padding makes the input H + 2·padding pixels high. A dilated kernel's k taps leave k - 1 gaps of "
              "dilation pixels: how many pixels does it span? How many positions does it take in H + 2·padding "
              "pixels, moving stride at a time (try H = 5, a span of 3, stride 2 by hand)? Each kernel has a weight "
              "for every tap and channel, and one bias. Every output value, of every map, is one dot product over "
              "the taps.",
)


# -- the backward pass of a global average pool -------------------------------------------------------------
def global_avg_pool_backward_solution(grad, x_shape):
    """(N, C) gradient of the pooled output, the input's shape (N, H, W, C) -> (N, H, W, C) gradient."""
    N, H, W, C = x_shape
    # every pixel of a map contributes 1/(H·W) of the map's mean, so each gets that share of the gradient
    return np.broadcast_to(grad[:, None, None, :] / (H * W), x_shape).copy()


def _gap_numerical(grad, x_shape):
    """Central differences (float64) of L = sum(x.mean(axis=(1, 2)) · grad) at a random x."""
    x = np.random.default_rng(1).standard_normal(x_shape)
    return numerical_grad(lambda: float(np.sum(x.mean(axis=(1, 2)) * grad)), x)


def _gap_cases(rng):
    shapes = [(1, 4, 4, 1), (2, 5, 7, 3), (4, 4, 4, 8), (3, 6, 3, 2)]
    return [(rng.standard_normal((shape[0], shape[3])), shape) for shape in shapes]


def _spread(grad, shape, divisor):
    return np.broadcast_to(grad[:, None, None, :] / divisor, shape).copy()


def _gap_shape(out, want, args):
    """(N, C) returned (the pooled gradient, not the input's), or (N, H, W) (the channel axis dropped)."""
    o = _real(out)
    if o is None or o.shape == want.shape:
        return None
    N, H, W, C = args[1]
    if o.shape == (N, C):
        return ("you returned an (N, C) array, the shape of the pooled output's gradient: the answer is the gradient "
                "of the input, shape x_shape (N, H, W, C). Spread grad[:, None, None, :] / (H·W) over it.")
    if o.shape == (N, H, W):
        return ("the channel axis is missing: each channel has its own gradient, so pixel (i, j) of channel c gets "
                "grad[n, c] / (H·W), and the answer has x_shape (N, H, W, C).")
    return None


global_avg_pool_backward = _Exercise05(
    "global_avg_pool_backward", _gap_numerical, global_avg_pool_backward_solution, _gap_cases,
    "matches central differences (float64) of the mean over each map, for a batch of 1, square and non-square maps",
    numerical=_gap_numerical,
    mistakes=[
        ("every pixel gets the whole gradient: the forward pass divides the map's sum by H·W, so each pixel gets "
         "1/(H·W) of it.", lambda g, s: _spread(g, s, 1)),
        ("the gradient is divided by N·H·W: the mean is over each map's H·W pixels, not over the batch too.",
         lambda g, s: _spread(g, s, s[0] * s[1] * s[2])),
        ("the gradient is divided by H + W: a map has H·W pixels.", lambda g, s: _spread(g, s, s[1] + s[2])),
        ("x_shape is (N, H, W, C), channels last: a map has x_shape[1]·x_shape[2] pixels, not "
         "x_shape[2]·x_shape[3] (that would be N, C, H, W).", lambda g, s: _spread(g, s, s[2] * s[3])),
        ("each channel's map is averaged on its own: divide by H·W, not H·W·C.",
         lambda g, s: _spread(g, s, s[1] * s[2] * s[3])),
        ("all of a map's gradient goes to one pixel: that is how a max is differentiated, but every pixel "
         "contributes equally to a mean.",
         lambda g, s: np.pad(g[:, None, None, :], ((0, 0), (0, s[1] - 1), (0, s[2] - 1), (0, 0)))),
    ],
    raised_note="grad is (N, C) and the input (N, H, W, C), channels last: grad[:, None, None, :] lines up with it",
    shape_mistake=_gap_shape,
    hint_text="out[n, c] = (1/(H·W)) · sum over (i, j) of x[n, i, j, c], so d out[n, c] / d x[n, i, j, c] = 1/(H·W) "
              "for every pixel of that map. Broadcast grad[:, None, None, :] / (H·W) to the input's shape.",
)
