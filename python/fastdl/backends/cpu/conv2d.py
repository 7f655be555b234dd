"""cpu backend: conv2d forward and backward (csrc/cpu/conv2d.cpp via _C.conv2d_*).

The algorithm of 3x3 stride-1 convolutions is a setting of the package, like PyTorch's
`torch.backends.cudnn.benchmark`: `fastdl.backends.cpu.conv2d_algorithm` (see __init__.py).
"""

import numpy as np

from ... import _C
from ..._args import pair
from ._arrays import f32 as _f32

__all__ = ["conv2d_backward", "conv2d_forward"]

# What fastdl.backends.cpu.conv2d_algorithm accepts (the names of csrc's Conv2dAlgorithm).
ALGORITHMS = ("auto", "gemm", "winograd", "winograd_2x2", "winograd_4x4")
_algorithm = "auto"


def _get_algorithm() -> str:
    return _algorithm


def _set_algorithm(value) -> None:
    global _algorithm
    if not isinstance(value, str):
        raise TypeError(
            f"[fastdl.backends.cpu] conv2d_algorithm must be a str, got {type(value).__name__}"
        )
    if value not in ALGORITHMS:
        names = ", ".join(repr(a) for a in ALGORITHMS)
        raise ValueError(
            f"[fastdl.backends.cpu] conv2d_algorithm must be one of {names}, got {value!r}"
        )
    _algorithm = value


def conv2d_forward(x: np.ndarray, w: np.ndarray, b, stride, padding) -> np.ndarray:
    # x is (N,C,H,W), w is (K,C,R,S), b is (K,) or None; y is (N,K,P,Q).
    (sh, sw), (ph, pw) = pair(stride, "conv2d", "stride"), pair(padding, "conv2d", "padding")
    bias = None if b is None else _f32(b)
    return _C.conv2d_forward(_f32(x), _f32(w), bias, sh, sw, ph, pw, _algorithm)


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
    (sh, sw), (ph, pw) = pair(stride, "conv2d", "stride"), pair(padding, "conv2d", "padding")
    need = bool(need_dx), bool(need_dw), bool(need_db)
    return _C.conv2d_backward(_f32(dy), _f32(x), _f32(w), sh, sw, ph, pw, *need, _algorithm)
