"""Reference maxpool2d: forward with PyTorch-style indices, backward by scatter-add.

x is (N,C,H,W), y and indices are (N,C,P,Q) with P = (H + 2ph - R) // sh + 1 (floor mode).
indices[n,c,p,q] = h * W + w, the position of the max inside its (H, W) plane.
NOTE: padding is never selected, ties take the first in row-major window order, and a window
holding a NaN yields NaN with the index of its last NaN in row-major order, as PyTorch's CPU
kernel does (it replaces the running max whenever `val > max || isnan(val)`).
Tested in tests/test_reference.py (a loop maxpool, finite differences, PyTorch).
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["maxpool2d_backward", "maxpool2d_forward"]


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def maxpool2d_forward(x: np.ndarray, kernel_size, stride, padding) -> tuple[np.ndarray, np.ndarray]:
    # x is (N,C,H,W); returns y (N,C,P,Q) of x's dtype and indices (N,C,P,Q) int64.
    (R, S), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
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

    def windows(a):  # (N,C,H+2ph,W+2pw) -> (N,C,P,Q,R*S), row-major inside each window
        view = sliding_window_view(a, (R, S), axis=(2, 3))[:, :, ::sh, ::sw]
        return view.reshape(N, C, P, Q, R * S)

    pad = ((0, 0), (0, 0), (ph, ph), (pw, pw))
    win = windows(np.pad(x, pad, constant_values=-np.inf))
    real = windows(np.pad(np.ones(x.shape, dtype=bool), pad))  # False on padding
    y = win.max(axis=-1)  # propagates NaN
    nan = np.isnan(win)
    # First real element equal to the max; a window with a NaN takes its last NaN instead.
    first_max = ((win == y[..., None]) & real).argmax(axis=-1)
    last_nan = R * S - 1 - nan[..., ::-1].argmax(axis=-1)
    k = np.where(nan.any(axis=-1), last_nan, first_max)  # (N,C,P,Q) in [0, R*S)
    r, s = np.divmod(k, S)
    h = np.arange(P)[:, None] * sh - ph + r
    w = np.arange(Q)[None, :] * sw - pw + s
    return np.ascontiguousarray(y), (h * W + w).astype(np.int64)


def maxpool2d_backward(dy: np.ndarray, indices: np.ndarray, input_shape) -> np.ndarray:
    # dy and indices are (N,C,P,Q); input_shape is (N,C,H,W); dx is (N,C,H,W) of dy's dtype.
    N, C, H, W = input_shape
    if dy.shape != indices.shape or dy.shape[:2] != (N, C):
        raise ValueError(
            f"[maxpool2d_backward] dy {dy.shape} and indices {indices.shape} "
            f"do not match input {input_shape}"
        )
    if indices.size and (indices.min() < 0 or indices.max() >= H * W):
        raise ValueError(
            f"[maxpool2d_backward] indices must lie in [0, {H * W}), "
            f"got {indices.min()}..{indices.max()}"
        )
    dx = np.zeros((N * C, H * W), dtype=dy.dtype)
    planes = np.arange(N * C)[:, None]
    # Overlapping windows can pick the same element: np.add.at accumulates repeats.
    PQ = int(np.prod(dy.shape[2:]))  # not reshape(N * C, -1): that fails for an empty batch
    np.add.at(dx, (planes, indices.reshape(N * C, PQ)), dy.reshape(N * C, PQ))
    return dx.reshape(N, C, H, W)
