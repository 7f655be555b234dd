"""Devices and storage: `fastdl.device`, the default device, and the helpers that read a
tensor's storage (a NumPy array on the CPU, another array library's array on another device)
whatever its device: its dtype, host copy, namespace, strides and writability."""

from __future__ import annotations

import numpy as np

from . import _devices
from ._dtypes import (  # noqa: F401
    dtype, _dtype_named, float32, float64, float16, int64, int32, int16, int8, uint8, bool_, SUPPORTED_DTYPES, _FASTDL_DTYPES, _PY_DTYPES, values_indices, as_dtype, _scalar_dtype, _promote,
)

_NDARRAY = np.ndarray  # NOTE: one global lookup on the hot paths, not two


class device:
    """Where a tensor lives: "cpu", or "cuda" (with its backend). A device type registered in
    fastdl._devices (a test device) is accepted too."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index
        kind, _, idx = str(spec).partition(":")
        if kind not in ("cpu", "cuda") and kind not in _devices.DEVICE_TYPES:
            raise RuntimeError(
                f"[device] expected a device type such as 'cpu' or 'cuda', got {spec!r}"
            )
        try:
            self.type, self.index = kind, int(idx) if idx else index
        except ValueError:
            raise RuntimeError(f"[device] invalid device string {spec!r}") from None

    def __eq__(self, other):
        try:
            other = device(other)
        except (RuntimeError, TypeError):
            return False
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self):
        return hash((self.type, self.index or 0))

    def __repr__(self):
        return f"device(type='{self.type}')" if self.index is None else (
            f"device(type='{self.type}', index={self.index})"
        )

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"


_CPU = device("cpu")


def _device_type(dev) -> "_devices.DeviceType":
    """The registered device type of `dev` (a device, or a string like "cuda:0"), or
    PyTorch's error when this fastdl cannot use it."""
    d = device(dev)
    device_type = _devices.DEVICE_TYPES.get(d.type)
    if device_type is None:  # "cuda", registered on first use (CuPy is imported then)
        from . import cuda

        try:
            device_type = cuda.device_type()
        except RuntimeError as e:
            raise RuntimeError(
                f"[to] device {d} is not available (fastdl.cuda.is_available() is False): "
                f"{cuda.unavailable_reason() or e}"
            ) from None
    return device_type


_default_device = [None]  # None: the CPU (set_default_device)


def get_default_device() -> device:
    """The device that functions making tensors use when not given one (PyTorch's)."""
    return _default_device[0] or _CPU


def set_default_device(dev) -> None:
    """Make tensors on `dev` by default (None or "cpu": the CPU), as torch.set_default_device.
    from_numpy still shares the NumPy array's memory on the CPU."""
    if dev is None or device(dev).type == "cpu":
        _default_device[0] = None
        return
    _device_type(dev)  # refuses a device this fastdl cannot use
    _default_device[0] = device(dev)


def _to_device(arr, dev):
    """`arr` (any device's storage) on device `dev` (a copy unless it is there already)."""
    if dev is None:
        return arr
    target = _device_type(dev)
    source = _devices.device_type_of(arr)
    if source is target:
        return arr
    host = source.lib.to_numpy(arr)
    return host if target is _devices.CPU else target.lib.from_numpy(host, device(dev).index)


def _device_of(data) -> device:
    if type(data) is _NDARRAY:
        return _CPU
    device_type = _devices.device_type_of(data)
    return device(device_type.name, device_type.lib.device_index(data))


def _storage(data):
    """`data` as a tensor's storage: a registered device's array as it is, anything else (a
    NumPy scalar an op returned) as a NumPy array."""
    if type(data) in _devices._BY_ARRAY_TYPE:
        return data
    return np.asarray(data)


def _dt(data) -> np.dtype:
    """The NumPy dtype (fastdl's dtype identity) of storage `data`, on any device."""
    return data.dtype if type(data) is _NDARRAY else _devices.np_dtype(data)


def _host(data) -> np.ndarray:
    """Storage `data` as a NumPy array (itself on the CPU, a copy from another device): for
    printing and for Python values (item, tolist), never for math."""
    return data if type(data) is _NDARRAY else _devices.library(data).to_numpy(data)


def _xp(data):
    return _devices.namespace(data)


# The CPU namespace's comparisons, looked up once (the hot path of `x == y` and friends).
_CPU_FUNCTIONS = {
    name: getattr(_devices.CPU_XP, name)
    for name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
}


def _copy(data):
    """A copy of storage `data` in fresh memory, on its device (keeping NumPy's layout)."""
    if type(data) is _NDARRAY:
        return data.copy(order="K")
    return _xp(data).asarray(data, copy=True)


def _write(data, value):
    """Write `value` (an array of the same device, or a number) into storage `data`, cast to
    its dtype and broadcast to its shape (np.copyto with casting="unsafe")."""
    if type(data) is _NDARRAY:
        np.copyto(data, value, casting="unsafe")
        return
    xp = _xp(data)
    if hasattr(value, "shape"):
        value = xp.broadcast_to(xp.astype(value, data.dtype), data.shape)
    data[...] = value


def _writable(data) -> bool:
    return data.flags.writeable if type(data) is _NDARRAY else _devices.library(data).writable(data)


def _strides(data) -> tuple:
    """Strides in elements (PyTorch's)."""
    if type(data) is _NDARRAY:
        return tuple(st // data.itemsize for st in data.strides)
    return _devices.library(data).strides(data)


def _as_device_dtype(data, np_dtype):
    """The dtype object of `data`'s array library for the NumPy dtype `np_dtype`."""
    return np_dtype if type(data) is _NDARRAY else _devices.library(data).dtype(np_dtype)


def _c_contiguous(shape, strides) -> bool:
    """Whether `strides` (in elements) lay out `shape` in C order (size-1 dims: any stride)."""
    expected = 1
    for n, st in zip(reversed(shape), reversed(strides)):
        if n != 1 and st != expected:
            return False
        expected *= n
    return True


def _same_device(op, a, b):
    """PyTorch's error when an op mixes tensors of two devices."""
    if type(a._data) is not type(b._data) or (
        type(a._data) is not _NDARRAY and a.device != b.device
    ):
        raise RuntimeError(
            f"[{op}] Expected all tensors to be on the same device, but found at least two "
            f"devices, {a.device} and {b.device}!"
        )


def _has_float64(data) -> bool:
    """Whether a nested sequence holds a float64 NumPy value or array (PyTorch then infers
    float64; Python floats alone give float32)."""
    if isinstance(data, (list, tuple)):
        return any(_has_float64(x) for x in data)
    return isinstance(data, (np.ndarray, np.generic)) and data.dtype == np.float64
