"""Devices: where a tensor's storage lives, which array library holds it, and which kernels run
on it.

A tensor's device follows from its storage array: a NumPy array is on "cpu"; another device
type registers its array library here (CuPy for "cuda"; the tests register a strict device of
`array_api_strict` arrays). Light ops are written once against the Python array API standard
namespace of their arrays (`namespace(a)`); what the standard lacks is a named function of
`ArrayLibrary`, implemented once per array library (`library(a).index_add(...)`). Heavy ops ask
`kernels(a)` for the backend module of the array's device, dtype and backend context.

The CPU path is the fast path: `type(a) is np.ndarray` is checked first everywhere, and the
NumPy namespace is looked up once, at import.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any, Callable, ContextManager, Optional

import array_api_compat
import numpy as np

from . import _backend


# NumPy submodules that array_api_compat's NumPy namespace imports (it is built with
# `from numpy import *`, and NumPy's __all__ names them) but that fastdl never uses: together a
# third of `import fastdl` (numpy.f2py alone ~40 ms on a Zen 4 core).
_UNUSED_NUMPY_SUBMODULES = ("numpy.testing", "numpy.f2py")


def _defer_unused_numpy_submodules() -> None:
    """Registers each of _UNUSED_NUMPY_SUBMODULES not yet imported as a lazy module (the
    standard library's importlib.util.LazyLoader): it runs on its first attribute access, so a
    program that uses it gets it whole, and one that does not never pays for it."""
    for name in _UNUSED_NUMPY_SUBMODULES:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            continue
        spec.loader = importlib.util.LazyLoader(spec.loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)  # as an import binds it


class ArrayLibrary:
    """One array library: its array API namespace, how its arrays map to and from NumPy's and
    to fastdl's (NumPy) dtypes, and the named functions the standard lacks. This base class is
    NumPy's; other libraries override what differs."""

    name = "numpy"
    array_type: type = np.ndarray

    def __init__(self) -> None:
        self.xp = array_api_compat.array_namespace(np.empty(0))

    # ---- dtypes: fastdl names its dtypes by NumPy's; a library may have its own objects

    def np_dtype(self, native: Any) -> np.dtype:
        """The NumPy dtype of the library's dtype `native`."""
        return native

    def dtype(self, np_dtype: np.dtype) -> Any:
        """The library's dtype for the NumPy dtype `np_dtype`."""
        return np_dtype

    # ---- moving data

    def from_numpy(self, arr: np.ndarray, index: Optional[int]) -> Any:
        """A copy of the NumPy array `arr` on device `index` of this library."""
        return arr

    def to_numpy(self, a: Any) -> np.ndarray:
        """A NumPy array with the values of `a` (a copy unless `a` is a NumPy array)."""
        return a

    def device_index(self, a: Any) -> Optional[int]:
        """Which device of this library holds `a` (None for a library with one device)."""
        return None

    # ---- what the standard lacks

    def index_add(self, out: Any, index: Any, values: Any) -> None:
        """out[index] += values, in place, where repeated positions in `index` add up (NumPy's
        np.add.at); `index` is any index NumPy's indexing accepts."""
        np.add.at(out, index, values)

    def errstate(self) -> ContextManager:
        """A context in which invalid operations (log(0), 0/0) give inf/NaN without warnings,
        as PyTorch's do."""
        return np.errstate(all="ignore")

    def may_share_memory(self, a: Any, b: Any) -> bool:
        return np.may_share_memory(a, b)

    def writable(self, a: Any) -> bool:
        return a.flags.writeable

    def strides(self, a: Any) -> tuple:
        """Strides in elements (PyTorch's), not bytes."""
        return tuple(s // a.itemsize for s in a.strides)

    def data_ptr(self, a: Any) -> int:
        return a.ctypes.data

    def as_strided(self, a: Any, shape: tuple, strides: tuple) -> Any:
        """A view of `a`'s memory with `shape` and `strides` (in elements), writable when `a`
        is."""
        item = a.itemsize
        return np.lib.stride_tricks.as_strided(
            a, shape=shape, strides=[s * item for s in strides], writeable=a.flags.writeable
        )

    def index_get(self, a: Any, index: Any) -> Any:
        """a[index] for any index NumPy's indexing accepts (the standard takes integer index
        arrays only one for every dim, and a boolean mask only as the sole index)."""
        return a[index]

    def index_put(self, out: Any, index: Any, values: Any) -> None:
        """out[index] = values, in place, for any index NumPy's indexing accepts (the standard
        assigns through basic indices and masks only, not through index arrays); `values`
        broadcasts, and of repeated positions the last write wins."""
        out[index] = values

    def contiguous(self, a: Any) -> Any:
        """`a` in C order: `a` itself when it is C-contiguous, else a C-ordered copy (the
        standard says nothing of memory layout; kernels and PyTorch's layout rules need it)."""
        return np.ascontiguousarray(a)

    def memory_owner(self, a: Any) -> Any:
        """The object that owns `a`'s memory (for identity tests only): two views of one buffer
        have the same owner, also when they are empty (where may_share_memory says False)."""
        while getattr(a, "base", None) is not None:
            a = a.base
        return a


_defer_unused_numpy_submodules()  # before the NumPy namespace below is built
NUMPY = ArrayLibrary()
CPU_XP = NUMPY.xp  # NOTE: looked up once; the per-call lookup costs a microsecond


class DeviceType:
    """A kind of device ("cpu", "cuda", ...): its array library and its kernels."""

    def __init__(
        self,
        name: str,
        lib: ArrayLibrary,
        kernels: Callable[[np.dtype], ModuleType],
        *,
        public: bool = True,
    ) -> None:
        self.name, self.lib, self._kernels, self.public = name, lib, kernels, public

    def kernels(self, np_dtype: np.dtype) -> ModuleType:
        return self._kernels(np_dtype)


def _cpu_kernels(np_dtype: np.dtype) -> ModuleType:
    return _backend.get(np_dtype)


CPU = DeviceType("cpu", NUMPY, _cpu_kernels)
DEVICE_TYPES: dict[str, DeviceType] = {"cpu": CPU}
_BY_ARRAY_TYPE: dict[type, DeviceType] = {np.ndarray: CPU}


def register(device_type: DeviceType) -> None:
    """Make `device_type` known: tensors whose storage is of its library's array type are on
    it, and `fastdl.device(name)` names it."""
    DEVICE_TYPES[device_type.name] = device_type
    _BY_ARRAY_TYPE[device_type.lib.array_type] = device_type


def unregister(name: str) -> None:
    device_type = DEVICE_TYPES.pop(name)
    _BY_ARRAY_TYPE.pop(device_type.lib.array_type, None)


def device_type_of(a: Any) -> DeviceType:
    """The device type of storage array `a`."""
    if type(a) is np.ndarray:
        return CPU
    try:
        return _BY_ARRAY_TYPE[type(a)]
    except KeyError:
        raise TypeError(
            f"[device] a tensor's storage must be an array of a known device, got "
            f"{type(a).__name__}"
        ) from None


def library(a: Any) -> ArrayLibrary:
    """The array library of storage array `a`."""
    if type(a) is np.ndarray:
        return NUMPY
    return device_type_of(a).lib


def namespace(a: Any) -> Any:
    """The array API namespace of storage array `a`."""
    if type(a) is np.ndarray:
        return CPU_XP
    return device_type_of(a).lib.xp


def np_dtype(a: Any) -> np.dtype:
    """The NumPy dtype (fastdl's dtype identity) of storage array `a` (or of a NumPy scalar,
    which NumPy's arithmetic on 0-d arrays returns)."""
    if type(a) is np.ndarray or isinstance(a, np.generic):
        return a.dtype
    return device_type_of(a).lib.np_dtype(a.dtype)


def kernels(a: Any) -> ModuleType:
    """The backend module that runs heavy ops on storage array `a`: by its device, its dtype
    and the backend context."""
    if type(a) is np.ndarray:
        return _backend.get(a.dtype)
    device_type = device_type_of(a)
    return device_type.kernels(device_type.lib.np_dtype(a.dtype))


_warned: set = set()


class WithFallback:
    """A device's backend with the reference as its fallback: a kernel the device's own
    backend lacks runs on the reference (written against the array API, it computes on the
    device's arrays, with the reference's numbers) and warns once per op, never silently."""

    def __init__(self, device: str, primary: Any, fallback: Any) -> None:
        self._device, self._primary, self._fallback = device, primary, fallback

    def __getattr__(self, name: str) -> Any:
        f = getattr(self._primary, name, None)
        if f is None:
            f = getattr(self._fallback, name)  # AttributeError when neither has it
            warn_fallback(self._device, name)
        return f


def warn_fallback(device: str, op: str) -> None:
    """Warn, once per (device, op), that `op` runs on the reference on `device`."""
    if (device, op) in _warned:
        return
    _warned.add((device, op))
    warnings.warn(
        f"[{op}] the {device} backend has no kernel for {op}; running the NumPy-style "
        "reference on the device's arrays (correct, but slower)",
        RuntimeWarning,
        stacklevel=3,
    )


