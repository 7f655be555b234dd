"""cpu backend: 2-D max pooling forward (values and int64 argmax indices) and backward
(csrc/cpu/maxpool2d.cpp)."""

from __future__ import annotations

import numpy as np

from ... import _C
from ..._args import pair
from ._arrays import f32, i64

__all__ = ["maxpool2d_forward", "maxpool2d_backward"]


Pair = "int | tuple[int, int]"


def maxpool2d_forward(
    x: np.ndarray, kernel_size: Pair, stride: Pair, padding: Pair
) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W) -> (y, indices), both (N, C, P, Q); indices are int64 h * W + w."""
    x = f32(x)
    return _C.maxpool2d_forward(
        x,
        pair(kernel_size, "maxpool2d_forward", "kernel_size"),
        pair(stride, "maxpool2d_forward", "stride"),
        pair(padding, "maxpool2d_forward", "padding"),
    )


def maxpool2d_backward(dy: np.ndarray, indices: np.ndarray, input_shape) -> np.ndarray:
    """dy, indices (N, C, P, Q) -> dx of input_shape (N, C, H, W), dy summed at each index."""
    dy = f32(dy)
    indices = i64(indices)
    return _C.maxpool2d_backward(dy, indices, tuple(int(d) for d in input_shape))
