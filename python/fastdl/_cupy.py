"""The "cuda" device type: tensors whose storage is a CuPy array. CuPy's array library (the
named functions the array API standard lacks, in CuPy) and the kernels of a CUDA tensor (the
cuda backend for float32, with the reference as fallback; the reference for float64 and inside
`fastdl.backend("reference")`). Imported only when a CUDA tensor is first asked for
(fastdl.cuda.device_type()), so a plain install never imports CuPy.
"""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Any, ContextManager, Optional

import array_api_compat
import numpy as np

from . import _backend, _devices


class CupyLibrary(_devices.ArrayLibrary):
    """CuPy's arrays on NVIDIA GPUs; device indices are CuPy's device ids."""

    name = "cupy"

    def __init__(self, cp: ModuleType) -> None:
        import cupyx

        self.cp, self._scatter_add = cp, cupyx.scatter_add
        self.array_type = cp.ndarray
        self.xp = array_api_compat.array_namespace(cp.empty(0))

    def np_dtype(self, native: Any) -> np.dtype:
        return np.dtype(native)  # CuPy's dtypes are NumPy's

    def dtype(self, np_dtype: np.dtype) -> Any:
        return np.dtype(np_dtype)

    def from_numpy(self, arr: np.ndarray, index: Optional[int]) -> Any:
        with self.cp.cuda.Device(0 if index is None else index):
            return self.cp.asarray(arr)  # a host-to-device copy on the current stream

    def to_numpy(self, a: Any) -> np.ndarray:
        return self.cp.asnumpy(a)  # waits for the stream: the value goes to the host

    def device_index(self, a: Any) -> Optional[int]:
        return a.device.id

    def index_add(self, out: Any, index: Any, values: Any) -> None:
        self._scatter_add(out, index, values)

    def errstate(self) -> ContextManager:
        return contextlib.nullcontext()  # CuPy's kernels never warn

    def may_share_memory(self, a: Any, b: Any) -> bool:
        return bool(self.cp.may_share_memory(a, b))

    def writable(self, a: Any) -> bool:
        return True  # CuPy has no read-only arrays

    def strides(self, a: Any) -> tuple:
        return tuple(s // a.itemsize for s in a.strides)

    def data_ptr(self, a: Any) -> int:
        return a.data.ptr

    def as_strided(self, a: Any, shape: tuple, strides: tuple) -> Any:
        return self.cp.lib.stride_tricks.as_strided(
            a, shape=shape, strides=[s * a.itemsize for s in strides]
        )

    def index_get(self, a: Any, index: Any) -> Any:
        return a[index]

    def index_put(self, out: Any, index: Any, values: Any) -> None:
        out[index] = values

    def contiguous(self, a: Any) -> Any:
        return self.cp.ascontiguousarray(a)

    def memory_owner(self, a: Any) -> Any:
        while getattr(a, "base", None) is not None:
            a = a.base
        return a


def make_device_type(cp: ModuleType) -> _devices.DeviceType:
    """The "cuda" DeviceType over CuPy module `cp`."""
    from .backends import cuda as cuda_backend
    from .backends import reference

    fast = _devices.WithFallback("cuda", cuda_backend, reference)

    def kernels(np_dtype: np.dtype) -> Any:
        # NOTE: the CUDA kernels are float32 only, as the CPU's; float64 runs on the reference.
        if np_dtype != np.float32 or _backend.current() == "reference":
            return reference
        return fast

    return _devices.DeviceType("cuda", CupyLibrary(cp), kernels)
