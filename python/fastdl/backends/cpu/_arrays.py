"""Arrays as the C++ kernels take them: the dtype, C-contiguous, and aligned to the element size
(a NumPy view at an odd byte offset is valid NumPy but undefined behaviour in C++). A copy is
made only when one of these does not hold; 0-d arrays stay 0-d."""

from __future__ import annotations

import numpy as np

_NEEDS = ("C", "A")
_F32 = np.dtype(np.float32)  # a native float32 array's dtype is this object (`is`: ~40 ns less)


def f32(a) -> np.ndarray:
    if type(a) is np.ndarray and a.dtype is _F32 and a.flags.c_contiguous and a.flags.aligned:
        return a  # the common case, without np.require's ~2 us
    return np.require(a, np.float32, _NEEDS)


def i64(a) -> np.ndarray:
    if type(a) is np.ndarray and a.dtype == np.int64 and a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.require(a, np.int64, _NEEDS)


def u8(a) -> np.ndarray:
    # uint8 codes: C-contiguous, never cast (a wider integer array is refused by the binding by
    # name rather than wrapped into 0..255).
    if type(a) is np.ndarray and a.flags.c_contiguous:
        return a
    return np.require(a, None, _NEEDS)

