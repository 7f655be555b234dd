"""cpu backend: conv2d forward and backward (csrc/cpu/conv2d.cpp via _C.conv2d_*)."""

import numpy as np

from ... import _C
from ._arrays import f32 as _f32

__all__ = ["conv2d_backward", "conv2d_forward"]


def _pair(v) -> tuple:
    # An int or a pair of ints -> (int, int).
    if np.isscalar(v):
        return int(v), int(v)
    h, w = v
    return int(h), int(w)


def conv2d_forward(x: np.ndarray, w: np.ndarray, b, stride, padding) -> np.ndarray:
    # x is (N,C,H,W), w is (K,C,R,S), b is (K,) or None; y is (N,K,P,Q).
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    return _C.conv2d_forward(_f32(x), _f32(w), None if b is None else _f32(b), sh, sw, ph, pw)


def conv2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride,
    padding,
    need_dx: bool = True,
    need_dw: bool = True,
    need_db: bool = True,
) -> tuple:
    # dy is (N,K,P,Q), x is (N,C,H,W), w is (K,C,R,S); returns dx (N,C,H,W), dw (K,C,R,S), db (K,).
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    return _C.conv2d_backward(
        _f32(dy), _f32(x), _f32(w), sh, sw, ph, pw, bool(need_dx), bool(need_dw), bool(need_db)
    )
