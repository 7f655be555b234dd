"""cpu backend: average pooling, adaptive average pooling and adaptive max pooling
(csrc/cpu/pool.cpp). adaptive_maxpool2d's backward is maxpool2d_backward."""

from __future__ import annotations

import numpy as np

from ... import _C
from ..._args import pair
from ._arrays import f32

# The same names as backends/reference/pool.py's __all__, on purpose: each backend exports every
# kernel of INTERFACE.md (tests/test_backend_contract.py checks), and the reference shares no code
# with the kernels it specifies.
__all__ = [
    "adaptive_avgpool2d_backward",
    "adaptive_avgpool2d_forward",
    "adaptive_maxpool2d_forward",
    "avgpool2d_backward",
    "avgpool2d_forward",
]


def _shape(s) -> tuple:
    return tuple(int(d) for d in s)


def _window(kernel_size, stride, padding, ceil_mode, count_include_pad) -> tuple:
    """The average pool's window arguments as the bindings take them."""
    return (
        pair(kernel_size, "pool", "kernel_size"),
        pair(stride, "pool", "stride"),
        pair(padding, "pool", "padding"),
        bool(ceil_mode),
        bool(count_include_pad),
    )


def avgpool2d_forward(
    x: np.ndarray, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
) -> np.ndarray:
    """x (N, C, H, W) -> y (N, C, P, Q), each window's sum over its divisor."""
    return _C.avgpool2d_forward(
        f32(x),
        *_window(kernel_size, stride, padding, ceil_mode, count_include_pad),
        divisor_override,
    )


def avgpool2d_backward(
    dy: np.ndarray,
    input_shape,
    kernel_size,
    stride,
    padding,
    ceil_mode,
    count_include_pad,
    divisor_override,
) -> np.ndarray:
    """dy (N, C, P, Q) -> dx of input_shape (N, C, H, W)."""
    return _C.avgpool2d_backward(
        f32(dy),
        _shape(input_shape),
        *_window(kernel_size, stride, padding, ceil_mode, count_include_pad),
        divisor_override,
    )


def adaptive_avgpool2d_forward(x: np.ndarray, output_size) -> np.ndarray:
    """x (N, C, H, W) -> y (N, C, P, Q), the mean of each adaptive window."""
    return _C.adaptive_avgpool2d_forward(f32(x), pair(output_size, "pool", "output_size"))


def adaptive_avgpool2d_backward(dy: np.ndarray, input_shape) -> np.ndarray:
    """dy (N, C, P, Q) -> dx of input_shape (N, C, H, W)."""
    return _C.adaptive_avgpool2d_backward(f32(dy), _shape(input_shape))


def adaptive_maxpool2d_forward(x: np.ndarray, output_size) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W) -> (y, indices), both (N, C, P, Q); indices are int64 h * W + w."""
    return _C.adaptive_maxpool2d_forward(f32(x), pair(output_size, "pool", "output_size"))
