"""Reference maxpool2d: forward with PyTorch-style indices, backward by scatter-add.

x is (N,C,H,W), y and indices are (N,C,P,Q) with P = (H + 2ph - R) // sh + 1 (floor mode).
indices[n,c,p,q] = h * W + w, the position of the max inside its (H, W) plane.
NOTE: padding is never selected, ties take the first in row-major window order, and a window
holding a NaN yields NaN with the index of its last NaN in row-major order, as PyTorch's CPU
kernel does (it replaces the running max whenever `val > max || isnan(val)`).
Written against the array API standard (windows through conv2d's `windows2d`, the scatter-add
through the array library's `index_add`): runs on any device's arrays.
Tested in tests/test_reference.py (a loop maxpool, finite differences, PyTorch).
"""

import math

from ..._args import pair
from . import _arrays
from .conv2d import pad2d, windows2d

__all__ = ["maxpool2d_backward", "maxpool2d_forward"]


def max_with_index(win, real=None):
    """win (..., K), windows flattened in row-major order, and `real` (..., K), which of their
    elements are input (not padding; None: all) -> (the max (...), its position k (...)): the
    first real element equal to the max, or, in a window with a NaN, its last NaN (PyTorch's
    rule; adaptive_maxpool2d's too)."""
    xp = _arrays.namespace(win)
    y = xp.max(win, axis=-1)  # propagates NaN
    nan = xp.isnan(win)
    # (argmax of 0/1 bytes: the standard's argmax takes no booleans)
    is_max = win == y[..., None]
    if real is not None:
        is_max = is_max & real
    first_max = xp.argmax(xp.astype(is_max, xp.int8), axis=-1)
    last_nan = win.shape[-1] - 1 - xp.argmax(xp.astype(xp.flip(nan, axis=-1), xp.int8), axis=-1)
    return y, xp.where(xp.any(nan, axis=-1), last_nan, first_max)


def maxpool2d_forward(x, kernel_size, stride, padding):
    # x is (N,C,H,W); returns y (N,C,P,Q) of x's dtype and indices (N,C,P,Q) int64.
    (R, S), (sh, sw), (ph, pw) = (
        pair(kernel_size, "maxpool2d_forward", "kernel_size"),
        pair(stride, "maxpool2d_forward", "stride"),
        pair(padding, "maxpool2d_forward", "padding"),
    )
    if x.ndim != 4:
        raise ValueError(f"[maxpool2d_forward] expected 4-D input, got {x.ndim}-D")
    if R < 1 or S < 1 or sh < 1 or sw < 1:
        raise ValueError(
            f"[maxpool2d_forward] expected kernel and stride >= 1, got {(R, S)}, {(sh, sw)}"
        )
    # Every window must hold at least one real element, as PyTorch requires.
    if not (0 <= ph <= R // 2 and 0 <= pw <= S // 2):
        raise ValueError(
            f"[maxpool2d_forward] padding {(ph, pw)} must be in [0, half of kernel {(R, S)}]"
        )
    N, C, H, W = x.shape
    P, Q = (H + 2 * ph - R) // sh + 1, (W + 2 * pw - S) // sw + 1
    if P < 1 or Q < 1:
        raise ValueError(
            f"[maxpool2d_forward] kernel {(R, S)} is larger than the padded input {(H, W)}"
        )
    xp = _arrays.namespace(x)

    def windows(a):  # (N,C,H+2ph,W+2pw) -> (N,C,P,Q,R*S), row-major inside each window
        return xp.reshape(windows2d(a, R, S, (sh, sw)), (N, C, P, Q, R * S))

    win = windows(pad2d(x, (ph, pw), -math.inf))
    real = windows(pad2d(xp.ones(x.shape, dtype=xp.bool, device=x.device), (ph, pw), False))
    y, k = max_with_index(win, real)  # k (N,C,P,Q) in [0, R*S)
    r, s = k // S, k % S
    h = xp.arange(P, dtype=k.dtype, device=x.device)[:, None] * sh - ph + r
    w = xp.arange(Q, dtype=k.dtype, device=x.device)[None, :] * sw - pw + s
    return _arrays.library(x).contiguous(y), xp.astype(h * W + w, xp.int64)


def maxpool2d_backward(dy, indices, input_shape):
    # dy and indices are (N,C,P,Q); input_shape is (N,C,H,W); dx is (N,C,H,W) of dy's dtype.
    N, C, H, W = input_shape
    if dy.shape != indices.shape or dy.shape[:2] != (N, C):
        raise ValueError(
            f"[maxpool2d_backward] dy {dy.shape} and indices {indices.shape} "
            f"do not match input {input_shape}"
        )
    xp = _arrays.namespace(dy)
    if indices.size:
        lo, hi = int(xp.min(indices)), int(xp.max(indices))
        if lo < 0 or hi >= H * W:
            raise ValueError(
                f"[maxpool2d_backward] indices must lie in [0, {H * W}), got {lo}..{hi}"
            )
    dx = xp.zeros((N * C, H * W), dtype=dy.dtype, device=dy.device)
    planes = xp.arange(N * C, dtype=indices.dtype, device=dy.device)[:, None]
    # Overlapping windows can pick the same element: index_add accumulates repeats.
    PQ = math.prod(dy.shape[2:])  # not reshape(N * C, -1): that fails for an empty batch
    _arrays.library(dx).index_add(
        dx, (planes, xp.reshape(indices, (N * C, PQ))), xp.reshape(dy, (N * C, PQ))
    )
    return xp.reshape(dx, (N, C, H, W))
