"""cpu backend: per-channel standardisation of x viewed as (A, C, B) and its input gradient
(csrc/cpu/norm.cpp)."""

from __future__ import annotations

import numpy as np

from ... import _C
from ._arrays import f32

__all__ = ["norm_backward", "norm_forward"]


def norm_forward(x: np.ndarray, eps: float) -> tuple:
    """x (A, C, B) -> (y (A, C, B), mean, var, rstd (C,)), reduced over A and B per channel."""
    return _C.norm_forward(f32(x), float(eps))


def norm_backward(dy: np.ndarray, x: np.ndarray, mean: np.ndarray, rstd: np.ndarray) -> np.ndarray:
    """dy, x (A, C, B), mean, rstd (C,) -> dx (A, C, B)."""
    return _C.norm_backward(f32(dy), f32(x), f32(mean), f32(rstd))
