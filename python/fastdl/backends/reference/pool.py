"""Reference pool: average pooling (PyTorch's windows and divisors: ceil_mode,
count_include_pad, divisor_override), adaptive average pooling and adaptive max pooling.

x is (N,C,H,W), y (N,C,P,Q).
- avgpool2d: output (p, q) covers rows [p*sh - ph, p*sh - ph + R) and columns likewise; P is
  PyTorch's `_pooled_size` (in ceil_mode a last window starting past the input and its left
  padding is dropped). Its divisor is divisor_override when given, else the window's size clipped
  to the padded input (count_include_pad: the padding counts, a ceil-mode overhang does not) or
  to the input. Windows are read as strided slices, one per kernel offset (R * S slices), of the
  input placed in zeros; gradients go back through the same slices.
- adaptive windows: row window p is [floor(p * H / P), ceil((p + 1) * H / P)), columns likewise.
  A rectangle's mean is the mean over its rows of the means over its columns, so the average
  pools one dim after the other. The max takes maxpool2d's rule (ties: the first in row-major
  order; NaN: the last NaN), indices h * W + w in the plane; its backward is maxpool2d_backward.
Written against the array API standard: runs on any device's arrays.
Tested against the C++ kernels in tests/test_kernels_pool.py, against PyTorch and finite
differences in tests/test_norm_pool.py.
"""

from ..._args import pair
from . import _arrays
from .maxpool2d import max_with_index

__all__ = [
    "adaptive_avgpool2d_backward",
    "adaptive_avgpool2d_forward",
    "adaptive_maxpool2d_forward",
    "avgpool2d_backward",
    "avgpool2d_forward",
]


def _zeros(xp, shape, like):
    return xp.zeros(shape, dtype=like.dtype, device=like.device)


def _pooled_size(size, k, s, p, ceil_mode):
    """PyTorch's pooled length of one dim: floor (or ceil) of (size + 2p - k) / s, plus 1; with
    ceil_mode the last window must start inside the input or its left padding."""
    span = size + 2 * p - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and out > 1 and (out - 1) * s >= size + p:
        out -= 1
    return out


def _check_ndim(op, name, a):
    if a.ndim != 4:
        raise ValueError(f"[{op}] {name} must have 4 dimensions, got shape {tuple(a.shape)}")


def _avg_geometry(op, H, W, kernel_size, stride, padding, ceil_mode, divisor_override):
    """((R, S), (sh, sw), (ph, pw), (P, Q)) after checking every option."""
    kernel, stride, padding = (
        pair(kernel_size, "pool", "kernel_size"),
        pair(stride, "pool", "stride"),
        pair(padding, "pool", "padding"),
    )
    if H < 1 or W < 1:
        raise ValueError(f"[{op}] x must have height and width >= 1, got {(H, W)}")
    if min(kernel) < 1 or min(stride) < 1:
        raise ValueError(f"[{op}] kernel_size and stride must be >= 1, got {kernel}, {stride}")
    if not all(0 <= p <= k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"[{op}] padding {padding} must be in [0, half of kernel {kernel}]")
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"[{op}] divisor_override must not be zero")
    out = tuple(
        _pooled_size(n, k, s, p, ceil_mode) for n, k, s, p in zip((H, W), kernel, stride, padding)
    )
    if min(out) < 1:
        raise ValueError(f"[{op}] kernel_size {kernel} gives an empty output for input {(H, W)}")
    return kernel, stride, padding, out


def _offset_slices(kernel, stride, out_hw):
    """For each kernel offset (r, s), the index of the (P, Q) window elements it picks."""
    (R, S), (sh, sw), (P, Q) = kernel, stride, out_hw
    for r in range(R):
        for s in range(S):
            yield (..., slice(r, r + sh * (P - 1) + 1, sh), slice(s, s + sw * (Q - 1) + 1, sw))


def _window_sum(x, kernel, stride, out_hw):
    """x (..., H, W) -> (..., P, Q): each window's sum."""
    total = None
    for index in _offset_slices(kernel, stride, out_hw):
        total = x[index] if total is None else total + x[index]
    return total


def _pad(xp, x, before, size):
    """x (..., H, W) placed at offset `before` (top, left) in zeros of spatial `size`."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    out = _zeros(xp, tuple(x.shape[:-2]) + tuple(size), x)
    h, w = x.shape[-2:]
    out[..., before[0] : before[0] + h, before[1] : before[1] + w] = x
    return out


def _avg_plan(xp, like, H, W, kernel, stride, padding, out_hw, count_include_pad, divisor):
    """The spatial size `full` of the padded input with any ceil-mode overhang, and what each
    window's sum is divided by: a number, or a (P, Q) array where windows differ."""
    (ph, pw), (P, Q) = padding, out_hw
    full = (
        max(H + 2 * ph, (P - 1) * stride[0] + kernel[0]),
        max(W + 2 * pw, (Q - 1) * stride[1] + kernel[1]),
    )
    if divisor is not None:
        return full, divisor
    counted = (H + 2 * ph, W + 2 * pw) if count_include_pad else (H, W)
    before = (0, 0) if count_include_pad else (ph, pw)
    if counted == full:
        return full, kernel[0] * kernel[1]
    ones = xp.ones(counted, dtype=like.dtype, device=like.device)
    return full, _window_sum(_pad(xp, ones, before, full), kernel, stride, out_hw)


def avgpool2d_forward(
    x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
):
    # x is (N,C,H,W); returns y (N,C,P,Q) of x's dtype.
    op = "avgpool2d_forward"
    _check_ndim(op, "x", x)
    xp = _arrays.namespace(x)
    H, W = x.shape[2:]
    kernel, stride, padding, out_hw = _avg_geometry(
        op, H, W, kernel_size, stride, padding, ceil_mode, divisor_override
    )
    full, divisor = _avg_plan(
        xp, x, H, W, kernel, stride, padding, out_hw, count_include_pad, divisor_override
    )
    return _window_sum(_pad(xp, x, padding, full), kernel, stride, out_hw) / divisor


def avgpool2d_backward(
    dy, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
):
    # dy is (N,C,P,Q); input_shape is (N,C,H,W); returns dx (N,C,H,W) of dy's dtype.
    op = "avgpool2d_backward"
    _check_ndim(op, "dy", dy)
    xp = _arrays.namespace(dy)
    N, C, H, W = input_shape
    kernel, stride, padding, out_hw = _avg_geometry(
        op, H, W, kernel_size, stride, padding, ceil_mode, divisor_override
    )
    if tuple(dy.shape) != (N, C) + out_hw:
        raise ValueError(f"[{op}] dy {tuple(dy.shape)} does not match input {tuple(input_shape)}")
    full, divisor = _avg_plan(
        xp, dy, H, W, kernel, stride, padding, out_hw, count_include_pad, divisor_override
    )
    # Each window's gradient, divided like its sum, goes to every element of the window.
    g = dy / divisor
    dx = _zeros(xp, (N, C) + full, g)
    for index in _offset_slices(kernel, stride, out_hw):
        dx[index] = dx[index] + g
    (ph, pw) = padding
    return _arrays.library(dx).contiguous(dx[..., ph : ph + H, pw : pw + W])


def _adaptive_windows(size, out):
    """PyTorch's adaptive windows of one dim: window i is [floor(i * size / out),
    ceil((i + 1) * size / out))."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _dim_index(axis, window):
    """The index of `window` along axis -1 or -2."""
    return (..., slice(*window)) if axis == -1 else (..., slice(*window), slice(None))


def _adaptive_mean(xp, x, axis, out):
    """x (..., L) or (..., L, W) for axis -1 or -2 -> each adaptive window's mean along it."""
    size = x.shape[axis]
    if size % out == 0:  # equal, disjoint windows: one reshape
        k = size // out
        if axis == -1:
            return xp.mean(xp.reshape(x, tuple(x.shape[:-1]) + (out, k)), axis=-1)
        return xp.mean(xp.reshape(x, tuple(x.shape[:-2]) + (out, k, x.shape[-1])), axis=-2)
    parts = [xp.mean(x[_dim_index(axis, w)], axis=axis) for w in _adaptive_windows(size, out)]
    return xp.stack(parts, axis=axis)


def _adaptive_mean_backward(xp, g, axis, size):
    """The gradient of _adaptive_mean: g (..., out) -> (..., size) along `axis`."""
    out = g.shape[axis]
    shape = list(g.shape)
    shape[axis] = size
    dx = _zeros(xp, tuple(shape), g)
    for i, w in enumerate(_adaptive_windows(size, out)):
        gi = g[_dim_index(axis, (i, i + 1))] / (w[1] - w[0])
        index = _dim_index(axis, w)
        dx[index] = dx[index] + gi
    return dx


def _adaptive_size(op, x, output_size):
    _check_ndim(op, "x", x)
    P, Q = pair(output_size, "pool", "output_size")
    if P < 1 or Q < 1 or x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(
            f"[{op}] output_size and the input's height and width must be >= 1, got "
            f"{(P, Q)} for x of shape {tuple(x.shape)}"
        )
    return P, Q


def adaptive_avgpool2d_forward(x, output_size):
    # x is (N,C,H,W); returns y (N,C,P,Q) of x's dtype.
    P, Q = _adaptive_size("adaptive_avgpool2d_forward", x, output_size)
    xp = _arrays.namespace(x)
    return _adaptive_mean(xp, _adaptive_mean(xp, x, -1, Q), -2, P)


def adaptive_avgpool2d_backward(dy, input_shape):
    # dy is (N,C,P,Q); input_shape is (N,C,H,W); returns dx (N,C,H,W) of dy's dtype.
    op = "adaptive_avgpool2d_backward"
    _check_ndim(op, "dy", dy)
    N, C, H, W = input_shape
    if tuple(dy.shape[:2]) != (N, C) or H < 1 or W < 1 or min(dy.shape[2:]) < 1:
        raise ValueError(f"[{op}] dy {tuple(dy.shape)} does not match input {tuple(input_shape)}")
    xp = _arrays.namespace(dy)
    return _adaptive_mean_backward(xp, _adaptive_mean_backward(xp, dy, -2, H), -1, W)


def adaptive_maxpool2d_forward(x, output_size):
    # x is (N,C,H,W); returns y (N,C,P,Q) of x's dtype and indices (N,C,P,Q) int64.
    P, Q = _adaptive_size("adaptive_maxpool2d_forward", x, output_size)
    xp = _arrays.namespace(x)
    N, C, H, W = x.shape
    values, indices = [], []
    for h0, h1 in _adaptive_windows(H, P):
        for w0, w1 in _adaptive_windows(W, Q):
            kw = w1 - w0
            window = xp.reshape(x[..., h0:h1, w0:w1], (N, C, (h1 - h0) * kw))
            y, k = max_with_index(window)
            values.append(y)
            indices.append((h0 + k // kw) * W + (w0 + k % kw))
    y = xp.reshape(xp.stack(values, axis=-1), (N, C, P, Q))
    index = xp.reshape(xp.stack(indices, axis=-1), (N, C, P, Q))
    return y, xp.astype(index, xp.int64)
