"""A test-only device whose storage is `array_api_strict` arrays on its non-default device
"device1": anything outside the array API standard, any NumPy call on its arrays and any mixing
with the CPU's arrays raises there. Running fastdl's tests on it proves the core reaches every
array through the device's namespace and named functions. Not shown to users.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Optional

import numpy as np
import pytest

import fastdl
from fastdl import _devices

xps = pytest.importorskip(
    "array_api_strict", reason="the strict test device needs array-api-strict"
)

NAME = "strict"
_DEVICE = xps.Device("device1")
_HOST = xps.Device("CPU_DEVICE")
_DTYPES = {
    np.dtype(np.float32): xps.float32,
    np.dtype(np.float64): xps.float64,
    np.dtype(np.int64): xps.int64,
    np.dtype(np.int32): xps.int32,
    np.dtype(np.int16): xps.int16,
    np.dtype(np.int8): xps.int8,
    np.dtype(np.uint8): xps.uint8,
    np.dtype(np.bool_): xps.bool,
}
_NP_DTYPES = {v: k for k, v in _DTYPES.items()}
_ARRAY = type(xps.asarray(0))


def _host(a: Any) -> np.ndarray:
    # NOTE: the named functions below are this library's implementation: they may use the
    # host copy. The core never does (np.asarray of a device1 array raises).
    return np.asarray(a.to_device(_HOST))


class StrictLibrary(_devices.ArrayLibrary):
    name = "array_api_strict"
    array_type = type(xps.asarray(0))

    def __init__(self) -> None:
        self.xp = xps

    def np_dtype(self, native: Any) -> np.dtype:
        return _NP_DTYPES[native]

    def dtype(self, np_dtype: np.dtype) -> Any:
        return _DTYPES[np.dtype(np_dtype)]

    def from_numpy(self, arr: np.ndarray, index: Optional[int]) -> Any:
        return xps.asarray(np.array(arr, copy=True), device=_DEVICE)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.array(_host(a), copy=True)  # never the device array's own memory

    def device_index(self, a: Any) -> Optional[int]:
        return None

    def index_add(self, out: Any, index: Any, values: Any) -> None:
        host = _host(out)
        np.add.at(host, _host_index(index), _host(values) if isinstance(values, _ARRAY) else values)
        out[...] = xps.asarray(host, device=_DEVICE)

    def errstate(self) -> Any:
        return np.errstate(all="ignore")  # the strict arrays compute with NumPy underneath

    def may_share_memory(self, a: Any, b: Any) -> bool:
        return np.may_share_memory(a._array, b._array)

    def writable(self, a: Any) -> bool:
        return a._array.flags.writeable

    def strides(self, a: Any) -> tuple:
        return tuple(s // a._array.itemsize for s in a._array.strides)

    def data_ptr(self, a: Any) -> int:
        return a._array.ctypes.data

    def as_strided(self, a: Any, shape: tuple, strides: tuple) -> Any:
        view = np.lib.stride_tricks.as_strided(
            a._array,
            shape=shape,
            strides=[s * a._array.itemsize for s in strides],
            writeable=a._array.flags.writeable,
        )
        return type(a)._new(view, device=_DEVICE)

    def index_get(self, a: Any, index: Any) -> Any:
        return xps.asarray(np.asarray(_host(a)[_host_index(index)]), device=_DEVICE)

    def index_put(self, out: Any, index: Any, values: Any) -> None:
        host = _host(out)
        host[_host_index(index)] = _host(values) if isinstance(values, _ARRAY) else values
        out[...] = xps.asarray(host, device=_DEVICE)

    def contiguous(self, a: Any) -> Any:
        if a._array.flags.c_contiguous:
            return a
        return type(a)._new(np.ascontiguousarray(a._array), device=_DEVICE)

    def memory_owner(self, a: Any) -> Any:
        return _devices.NUMPY.memory_owner(a._array)


def _host_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_host_index(i) for i in index)
    return _host(index) if isinstance(index, _ARRAY) else index


def _kernels(np_dtype: np.dtype):
    from fastdl.backends import reference

    return reference


DEVICE_TYPE = _devices.DeviceType(NAME, StrictLibrary(), _kernels, public=False)


def register() -> None:
    _devices.register(DEVICE_TYPE)


def unregister() -> None:
    _devices.unregister(NAME)


@contextlib.contextmanager
def registered() -> Iterator[str]:
    """The device registered (unless it already was) and the CPU the default device; after it,
    the default device it found and, if it registered, unregistered. Yields NAME."""
    was_registered = NAME in _devices.DEVICE_TYPES
    if not was_registered:
        register()
    previous = fastdl.get_default_device()
    fastdl.set_default_device(None)
    try:
        yield NAME
    finally:
        fastdl.set_default_device(previous)
        if not was_registered:
            unregister()


@pytest.fixture
def strict() -> Iterator[str]:
    """`registered()` for one test. A test module takes it as `strict = strict_device.strict`."""
    with registered() as name:
        yield name
