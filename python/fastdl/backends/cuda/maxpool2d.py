"""cuda backend: 2-D max pooling forward (values and int64 argmax indices) and backward
(csrc/cuda/maxpool2d.cu)."""

from __future__ import annotations

from ._arrays import cupy, f32, i64, kernels, pair, stream

__all__ = ["maxpool2d_backward", "maxpool2d_forward"]


def maxpool2d_forward(x, kernel_size, stride, padding):
    """x (N, C, H, W) -> (y, indices), both (N, C, P, Q); indices are int64 h * W + w."""
    cp = cupy()
    x = f32(x)
    (R, S), (sh, sw), (ph, pw) = pair(kernel_size), pair(stride), pair(padding)
    shape = (0, 0, 0, 0)  # for shapes the binding refuses (it names what is wrong)
    if x.ndim == 4 and min(R, S, sh, sw) >= 1:
        P, Q = (x.shape[2] + 2 * ph - R) // sh + 1, (x.shape[3] + 2 * pw - S) // sw + 1
        shape = x.shape[:2] + (max(P, 0), max(Q, 0))
    y, indices = cp.empty(shape, "float32"), cp.empty(shape, "int64")
    kernels().maxpool2d_forward(y, indices, x, (R, S), (sh, sw), (ph, pw), stream())
    return y, indices


def maxpool2d_backward(dy, indices, input_shape):
    """dy, indices (N, C, P, Q) -> dx of input_shape (N, C, H, W), dy summed at each index.
    NOTE: an index outside its plane is skipped (the CPU raises; checking here would need a
    synchronisation)."""
    dx = cupy().empty(tuple(int(d) for d in input_shape), "float32")
    kernels().maxpool2d_backward(dx, f32(dy), i64(indices), stream())
    return dx
