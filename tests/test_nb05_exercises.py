"""Notebook 05's exercises, tried with wrong answers written the way a learner writes them (loops, their own
variable names; not the catalogue's functions): each must get its own named message, never a crash of the check
and never the generic 'largest difference'."""

import numpy as np

from npnet.exercises import nb05 as ex


def verdict(exercise, fn):
    return exercise.diagnose(fn)


# -- im2col -------------------------------------------------------------------------------------------------
def _patches(x, k, s, order=(0, 1, 2)):
    """Learner-style loop: every patch, reshaped to one row, in (n, i, j) order."""
    N, H, W, C = x.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    rows = []
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                rows.append(x[n, i * s:i * s + k, j * s:j * s + k, :].reshape(-1))
    return np.array(rows), (N, Ho, Wo)


def im2col_right(x, k, stride):
    return _patches(x, k, stride)[0]


def im2col_four_d(x, k, stride):                     # forgot the last reshape: (N, Ho, Wo, k·k·C)
    cols, (N, Ho, Wo) = _patches(x, k, stride)
    return cols.reshape(N, Ho, Wo, -1)


def im2col_four_d_wrong_values(x, k, stride):        # 4-D and wrong: used to crash the check itself
    return im2col_four_d(x, k, stride) * 2


def im2col_six_d(x, k, stride):                      # (N, Ho, Wo, k, k, C), never flattened
    cols, (N, Ho, Wo) = _patches(x, k, stride)
    return cols.reshape(N, Ho, Wo, k, k, x.shape[3])


def im2col_channels_first(x, k, stride):             # reads x as (N, C, H, W)
    N, C, H, W = x.shape
    Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
    out = []
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                out.append(x[n, :, i * stride:i * stride + k, j * stride:j * stride + k].ravel())
    return np.array(out)


def im2col_channels_first_uvc(x, k, stride):         # reads x as (N, C, H, W) but orders each row (u, v, c)
    N, C, H, W = x.shape
    Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
    cols = np.zeros((N * Ho * Wo, k * k * C))
    r = 0
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                cols[r] = x[n, :, i * stride:i * stride + k, j * stride:j * stride + k].transpose(1, 2, 0).ravel()
                r += 1
    return cols


def im2col_square(x, k, stride):                     # assumes square images: Wo = Ho
    N, H, W, C = x.shape
    Ho = (H - k) // stride + 1
    cols = np.zeros((N * Ho * Ho, k * k * C))
    r = 0
    for n in range(N):
        for i in range(Ho):
            for j in range(Ho):
                cols[r] = x[n, i * stride:i * stride + k, j * stride:j * stride + k].ravel()
                r += 1
    return cols


def im2col_stride_ignored_in_size(x, k, stride):     # Ho = H - k + 1, whatever the stride
    N, H, W, C = x.shape
    Ho, Wo = H - k + 1, W - k + 1
    cols = np.zeros((N * Ho * Wo, k * k * C))
    r = 0
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                cols[r] = x[n, i * stride:i * stride + k, j * stride:j * stride + k].ravel()
                r += 1
    return cols


def im2col_channels_first_no_stride(x, k, stride):   # (N, C, H, W) AND no stride: raises on npnet's layout
    N, C, H, W = x.shape
    Ho, Wo = H - k + 1, W - k + 1
    cols = np.empty((N * Ho * Wo, C * k * k))
    r = 0
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                cols[r] = x[n, :, i:i + k, j:j + k].ravel()
                r += 1
    return cols


def im2col_unrelated_crash(x, k, stride):            # a bug that has nothing to do with the layout
    N, H, W, C = x.shape
    return np.zeros((N, H, W, C)).reshape(-1, k * k * C + 1)


def im2col_columns_then_rows(x, k, stride):         # loops j outside i: rows ordered (n, j, i)
    N, H, W, C = x.shape
    Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
    return np.array([x[n, i * stride:i * stride + k, j * stride:j * stride + k].ravel()
                     for n in range(N) for j in range(Wo) for i in range(Ho)])


def im2col_fortran_order(x, k, stride):              # each patch flattened column-major
    N, H, W, C = x.shape
    Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
    return np.array([x[n, i * stride:i * stride + k, j * stride:j * stride + k].flatten(order="F")
                     for n in range(N) for i in range(Ho) for j in range(Wo)])


def test_im2col_row_and_column_orders_are_named():
    v, message = verdict(ex.im2col, im2col_columns_then_rows)
    assert v == "mistake" and "(n, j, i)" in message
    v, message = verdict(ex.im2col, im2col_fortran_order)
    assert v == "mistake" and "order='F'" in message


def test_im2col_right_answer_passes():
    assert verdict(ex.im2col, im2col_right)[0] == "pass"


def test_im2col_four_d_output_is_named_not_a_crash():
    v, message = verdict(ex.im2col, im2col_four_d)
    assert v == "mistake" and "(N, Ho, Wo, k·k·C)" in message and "reshape to (N·Ho·Wo, k·k·C)" in message
    v, message = verdict(ex.im2col, im2col_four_d_wrong_values)     # the check must not raise on any 4-D output
    assert v == "mistake" and "reshape to (N·Ho·Wo, k·k·C)" in message


def test_im2col_six_d_output_asks_for_the_reshape():
    v, message = verdict(ex.im2col, im2col_six_d)
    assert v == "mistake" and "right number of values" in message


def test_im2col_channels_first_reading_is_named():
    for fn in (im2col_channels_first, im2col_channels_first_uvc):
        v, message = verdict(ex.im2col, fn)
        assert v == "mistake" and "reads x as (N, C, H, W)" in message, message
    assert "(u, v, c)" in verdict(ex.im2col, im2col_channels_first)[1]
    assert "(u, v, c)" not in verdict(ex.im2col, im2col_channels_first_uvc)[1]


def test_im2col_square_images_only_is_named_without_the_layout_note():
    v, message = verdict(ex.im2col, im2col_square)
    assert v == "mistake" and "square images" in message and "Wo = (W - k) // stride + 1" in message
    assert "channels last" not in message


def test_im2col_stride_ignored_in_the_size_is_named_without_the_layout_note():
    v, message = verdict(ex.im2col, im2col_stride_ignored_in_size)
    assert v == "mistake" and "stride 1 but not with stride 2" in message
    assert "channels last" not in message


def test_im2col_layout_note_only_when_the_layout_is_the_cause():
    v, message = verdict(ex.im2col, im2col_channels_first_no_stride)
    assert v == "wrong" and "raised" in message and "channels last" in message
    v, message = verdict(ex.im2col, im2col_unrelated_crash)
    assert v == "wrong" and "raised" in message and "channels last" not in message


# -- dropout ------------------------------------------------------------------------------------------------
def dropout_own_random(x, p, u, training):           # ignores u, draws its own
    if not training:
        return x
    return x * (np.random.random(x.shape) >= p) / (1 - p)


def dropout_fixed_seed(x, p, u, training):           # ignores u, but draws the same numbers every call
    if not training:
        return x
    mine = np.random.default_rng(123).random(x.shape)
    return x * (mine >= p) / (1 - p)


def dropout_returns_mask(x, p, u, training):
    if training:
        return (u >= p) / (1 - p)
    return np.ones_like(x)


def dropout_empirical_rate(x, p, u, training):       # divides by the share kept in this batch
    if not training:
        return x
    keep = (u >= p).astype(float)
    return x * keep / keep.mean()


def test_dropout_that_ignores_u_is_named():
    for fn, says in ((dropout_own_random, "different output each time"), (dropout_fixed_seed, "not the units u keeps")):
        v, message = verdict(ex.dropout, fn)
        assert says in message, message
        assert v == "mistake" and "u >= p" in message and ("draws its own" in message or "not the units u keeps" in message)


def test_dropout_returning_the_mask_is_named():
    v, message = verdict(ex.dropout, dropout_returns_mask)
    assert v == "mistake" and "returns the mask" in message


def test_dropout_by_the_empirical_keep_rate_is_named():
    v, message = verdict(ex.dropout, dropout_empirical_rate)
    assert v == "mistake" and "share of units kept in this batch" in message


# -- max-pool backward --------------------------------------------------------------------------------------
def _pool_loop(x, grad, size, value=False):
    N, H, W, C = x.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H // size):
                for j in range(W // size):
                    win = x[n, i * size:(i + 1) * size, j * size:(j + 1) * size, c]
                    r, q = np.unravel_index(np.argmax(win), win.shape)
                    dx[n, i * size + r, j * size + q, c] = grad[n, i, j, c] * (win.max() if value else 1)
    return dx


def pool_right(x, grad, size):
    return _pool_loop(x, grad, size)


def pool_times_max(x, grad, size):
    return _pool_loop(x, grad, size, value=True)


def pool_channels_first(x, grad, size):
    N, C, H, W = x.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H // size):
                for j in range(W // size):
                    win = x[n, c, i * size:(i + 1) * size, j * size:(j + 1) * size]
                    r, q = np.unravel_index(np.argmax(win), win.shape)
                    dx[n, c, i * size + r, j * size + q] = grad[n, c, i, j]
    return dx


def pool_no_crop(x, grad, size):                     # vectorised, first max right, but no cut of leftover rows
    N, H, W, C = x.shape
    Ho, Wo = H // size, W // size
    w = x.reshape(N, Ho, size, Wo, size, C).transpose(0, 1, 3, 5, 2, 4).reshape(N, Ho, Wo, C, -1)
    hot = (np.arange(size * size) == w.argmax(-1)[..., None]) * grad[..., None]
    return hot.reshape(N, Ho, Wo, C, size, size).transpose(0, 1, 4, 2, 5, 3).reshape(x.shape)


def pool_square(x, grad, size):                      # Wo from H
    N, H, W, C = x.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H // size):
                for j in range(H // size):
                    win = x[n, i * size:(i + 1) * size, j * size:(j + 1) * size, c]
                    if win.shape != (size, size):
                        continue
                    r, q = np.unravel_index(np.argmax(win), win.shape)
                    dx[n, i * size + r, j * size + q, c] = grad[n, i, min(j, grad.shape[2] - 1), c]
    return dx


def test_maxpool_right_answer_passes():
    assert verdict(ex.maxpool_backward, pool_right)[0] == "pass"


def test_maxpool_gradient_times_the_max_value_is_named():
    v, message = verdict(ex.maxpool_backward, pool_times_max)
    assert v == "mistake" and "VALUE" in message


def test_maxpool_channels_first_is_named():
    v, message = verdict(ex.maxpool_backward, pool_channels_first)
    assert v == "mistake" and "reads x as (N, C, H, W)" in message


def test_maxpool_leftover_rows_are_named():
    v, message = verdict(ex.maxpool_backward, pool_no_crop)
    assert v == "mistake" and "multiples of size" in message and "channels last" not in message


def test_maxpool_square_only_is_named():
    v, message = verdict(ex.maxpool_backward, pool_square)
    assert v == "mistake" and "square inputs" in message, message


# -- a convolution's cost -----------------------------------------------------------------------------------
def cost_right(C, F, k, H, W, stride, padding, dilation=1):
    span = dilation * (k - 1) + 1
    Ho, Wo = (H + 2 * padding - span) // stride + 1, (W + 2 * padding - span) // stride + 1
    return F * (C * k * k + 1), Ho * Wo * F * C * k * k, Ho, Wo


def cost_forgets_F(C, F, k, H, W, stride, padding, dilation=1):
    params, macs, Ho, Wo = cost_right(C, F, k, H, W, stride, padding, dilation)
    return params, Ho * Wo * C * k * k, Ho, Wo


def cost_reordered(C, F, k, H, W, stride, padding, dilation=1):
    params, macs, Ho, Wo = cost_right(C, F, k, H, W, stride, padding, dilation)
    return Ho, Wo, params, macs


def cost_dict(C, F, k, H, W, stride, padding, dilation=1):
    params, macs, Ho, Wo = cost_right(C, F, k, H, W, stride, padding, dilation)
    return {"params": params, "macs": macs, "Ho": Ho, "Wo": Wo}


def cost_two_mistakes(C, F, k, H, W, stride, padding, dilation=1):   # FLOPs and one bias per layer: no single named mistake
    params, macs, Ho, Wo = cost_right(C, F, k, H, W, stride, padding, dilation)
    return F * C * k * k + 1, 2 * macs, Ho, Wo


def cost_macs_off(C, F, k, H, W, stride, padding, dilation=1):       # multiply-adds off by a factor no mistake names
    params, macs, Ho, Wo = cost_right(C, F, k, H, W, stride, padding, dilation)
    return params, macs // 32, Ho, Wo


def test_conv_cost_right_answer_passes():
    assert verdict(ex.conv_cost, cost_right)[0] == "pass"


def cost_undilated(C, F, k, H, W, stride, padding):      # the section-5 formulas, no dilation argument at all
    return cost_right(C, F, k, H, W, stride, padding)


def cost_ignores_dilation(C, F, k, H, W, stride, padding, dilation=1):
    return cost_right(C, F, k, H, W, stride, padding)


def cost_span_dk(C, F, k, H, W, stride, padding, dilation=1):
    Ho, Wo = (H + 2 * padding - dilation * k) // stride + 1, (W + 2 * padding - dilation * k) // stride + 1
    return F * (C * k * k + 1), Ho * Wo * F * C * k * k, Ho, Wo


def test_conv_cost_dilation_mistakes_are_named():
    v, message = verdict(ex.conv_cost, cost_ignores_dilation)
    assert v == "mistake" and "ignores the dilation" in message, message
    v, message = verdict(ex.conv_cost, cost_span_dk)
    assert v == "mistake" and "not d·k" in message, message
    v, message = verdict(ex.conv_cost, cost_undilated)       # no dilation parameter: the TypeError is reported
    assert v == "wrong" and "takes 7 positional arguments" in message, message


def test_conv_cost_forgetting_the_kernels_is_named():
    v, message = verdict(ex.conv_cost, cost_forgets_F)
    assert v == "mistake" and "leave out the kernels" in message


def test_conv_cost_order_and_dict_are_named():
    assert "another order" in verdict(ex.conv_cost, cost_reordered)[1]
    assert "returned a dict" in verdict(ex.conv_cost, cost_dict)[1]


def test_conv_cost_reports_whole_numbers():
    v, message = verdict(ex.conv_cost, cost_two_mistakes)
    assert v == "wrong" and "parameters: you returned 801, expected 832" in message, message
    v, message = verdict(ex.conv_cost, cost_macs_off)
    assert "multiply-adds: you returned 14,400, expected 460,800" in message and "largest difference" not in message


# -- global average pool backward ---------------------------------------------------------------------------
def gap_pooled_shape(grad, x_shape):                 # returns (N, C): the pooled gradient, divided
    return grad / (x_shape[1] * x_shape[2])


def gap_no_channels(grad, x_shape):                  # (N, H, W): the channel axis dropped
    N, H, W, C = x_shape
    return np.ones((N, H, W)) * grad.sum(axis=1)[:, None, None] / (H * W)


def test_gap_returning_the_pooled_shape_is_named():
    v, message = verdict(ex.global_avg_pool_backward, gap_pooled_shape)
    assert v == "mistake" and "(N, C) array" in message


def test_gap_dropping_the_channels_is_named():
    v, message = verdict(ex.global_avg_pool_backward, gap_no_channels)
    assert v == "mistake" and "channel axis is missing" in message
