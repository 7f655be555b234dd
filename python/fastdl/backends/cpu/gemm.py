"""cpu backend: matrix multiply, 2-D and batched 3-D (csrc/cpu/gemm.cpp via _C.gemm / _C.bmm)."""

import numpy as np

from ... import _C
from ._arrays import f32

__all__ = ["matmul"]


def _operand(a, trans: bool):
    # Returns a C-contiguous float32 array and the transpose flag that together mean op(a).
    # A transposed view of a C-contiguous array (a.T) is passed as its base with the flag flipped,
    # so it is never copied.
    if a.ndim >= 2 and not a.flags.c_contiguous and a.dtype == np.float32:
        t = np.swapaxes(a, -1, -2)
        if t.flags.c_contiguous:
            return t, not trans
    return f32(a), trans


def matmul(
    a: np.ndarray, b: np.ndarray, trans_a: bool = False, trans_b: bool = False
) -> np.ndarray:
    # a is (M,K) or (K,M) if trans_a, b is (K,N) or (N,K) if trans_b; each may carry a leading B.
    if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 and b.ndim == 2:
        # Fast path (a small product costs a few microseconds, so every attribute check counts):
        # C-contiguous float32 goes straight to _C, which checks the rest.
        try:
            return _C.gemm(a, b, trans_a, trans_b)
        except (ValueError, TypeError):
            pass  # another dtype or layout: the general path below converts it (or re-raises)
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim not in (2, 3) or a.ndim != b.ndim:
        raise ValueError(
            f"[matmul] expected two 2-D or two 3-D arrays, got {a.ndim}-D and {b.ndim}-D"
        )
    a, trans_a = _operand(a, bool(trans_a))
    b, trans_b = _operand(b, bool(trans_b))
    if a.ndim == 2:
        return _C.gemm(a, b, trans_a, trans_b)
    return _C.bmm(a, b, trans_a, trans_b)
