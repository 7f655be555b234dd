"""Functions that make tensors: from data, filled, random, ranges; and tensor-list ops."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _devices, _functions as fn
from ._random import GeneratorLike, numpy_generator
from ._tensor import (
    Tensor, _default_device, _dt, _promote, bool_, _from_data, _same_device, _shape_arg, _to_device, as_dtype, float32, int64,
)


def _finish(arr, requires_grad=False, device=None):
    """A tensor of the NumPy array `arr` (made from the caller's data) on `device` (or the
    default device)."""
    t = Tensor._make(_to_device(arr, device if device is not None else _default_device[0]))
    if requires_grad:
        t.requires_grad = True
    return t


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of `data` (nested lists, numbers, NumPy arrays, tensors).

    >>> import fastdl
    >>> fastdl.tensor([[1, 2], [3, 4]]).dtype
    dtype('int64')
    """
    if isinstance(data, Tensor) and type(data._data) is not np.ndarray:  # on another device
        t = data.detach().to(dtype=dtype, device=device if device is not None else data.device)
        t = t.clone() if t._data is data._data else t
        return t.requires_grad_(requires_grad) if requires_grad else t
    arr = _from_data(data, dtype)
    source = data._data if isinstance(data, Tensor) else data
    # NOTE: np.ascontiguousarray would turn a 0-d array into 1-d; np.array keeps the shape.
    arr = np.array(arr, order="C", copy=arr is source or not arr.flags.c_contiguous)
    return _finish(arr, requires_grad, device)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor) and dtype is None:
        return data
    if (
        isinstance(data, np.ndarray) and dtype is None
        and data.dtype in (np.float32, np.float64, np.int64)
        and device is None and _default_device[0] is None
    ):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares memory with `array` (no copy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"[from_numpy] expected a np.ndarray, got {type(array).__name__}")
    as_dtype(array.dtype)  # raises for unsupported dtypes
    return Tensor._make(array)


_DLPACK_CPU, _DLPACK_CUDA = 1, 2  # DLPack's device types (kDLCPU, kDLCUDA)


def from_dlpack(ext: Any) -> Tensor:
    """A tensor sharing the memory of `ext`, any object with `__dlpack__` and
    `__dlpack_device__` (a PyTorch tensor, a NumPy or CuPy array, a fastdl tensor), as
    torch.from_dlpack: zero-copy, and outside autograd (requires_grad is False). CPU memory
    becomes a CPU tensor; GPU memory a CUDA tensor (fastdl.cuda.is_available() must be True).

    >>> import numpy as np
    >>> t = fastdl.from_dlpack(np.arange(3.0))
    """
    if not hasattr(ext, "__dlpack__") or not hasattr(ext, "__dlpack_device__"):
        raise TypeError(
            f"[from_dlpack] expected an object with __dlpack__ and __dlpack_device__ (a tensor "
            f"or array), got {type(ext).__name__}"
        )
    kind, _ = ext.__dlpack_device__()
    if kind == _DLPACK_CPU:
        arr = np.from_dlpack(ext)
    elif kind == _DLPACK_CUDA:
        from . import cuda

        arr = cuda.device_type().lib.cp.from_dlpack(ext)
    else:
        raise RuntimeError(
            f"[from_dlpack] DLPack device type {kind} is not one fastdl has (1: CPU, 2: CUDA)"
        )
    as_dtype(_devices.np_dtype(arr))  # raises for unsupported dtypes
    return Tensor._make(arr)


def _dtype(dtype, default=float32):
    return default if dtype is None else as_dtype(dtype)


def _float_dtype(dtype: Any, op: str) -> np.dtype:
    dt = _dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"[{op}] expected a floating point dtype, got {dt}")
    return dt


def _size(size, op):
    shape = _shape_arg(size)
    for s in shape:
        if not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"[{op}] sizes must be non-negative ints, got {shape}")
    return tuple(int(s) for s in shape)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.zeros(_size(size, "zeros"), _dtype(dtype)), requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.ones(_size(size, "ones"), _dtype(dtype)), requires_grad, device)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.zeros(_size(size, "empty"), _dtype(dtype)), requires_grad, device)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    if dtype is None:
        dtype = float32 if isinstance(fill_value, float) else (
            np.dtype(bool) if isinstance(fill_value, bool) else int64
        )
    return _finish(np.full(_size((size,), "full"), fill_value, as_dtype(dtype)), requires_grad, device)


def _like(t, device):
    """The device of a *_like result: `device`, else `t`'s (PyTorch's rule)."""
    return t.device if device is None else device


def zeros_like(t, dtype=None, requires_grad=False, *, device=None) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=_like(t, device),
                 requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False, *, device=None) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=_like(t, device),
                requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False, *, device=None) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=_like(t, device),
                requires_grad=requires_grad)


def empty_like(t, dtype=None, requires_grad=False, *, device=None) -> Tensor:
    return zeros_like(t, dtype, requires_grad, device=device)


def randn(
    *size: Any,
    generator: GeneratorLike = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal samples, from `generator` (a fastdl.Generator) or fastdl's global
    generator (seed it with fastdl.manual_seed).

    >>> import fastdl
    >>> g = fastdl.Generator().manual_seed(1)
    >>> fastdl.randn(2, 3, generator=g).shape
    fastdl.Size([2, 3])
    """
    rng = numpy_generator(generator, "randn")
    dt = _float_dtype(dtype, "randn")
    arr = rng.standard_normal(_size(size, "randn"), dtype=np.float64)
    return _finish(arr.astype(dt), requires_grad, device)


def rand(
    *size: Any,
    generator: GeneratorLike = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform samples in [0, 1), from `generator` or fastdl's global generator."""
    rng = numpy_generator(generator, "rand")
    dt = _float_dtype(dtype, "rand")
    return _finish(rng.random(_size(size, "rand")).astype(dt), requires_grad, device)


def randint(
    low: int = 0,
    high: Optional[int] = None,
    size: Any = None,
    *,
    generator: GeneratorLike = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Integers drawn uniformly from [low, high): `randint(high, size)` or
    `randint(low, high, size)`, int64 unless `dtype` says otherwise."""
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high  # randint(high, size)
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("[randint] size is required, e.g. randint(0, 10, (3,))")
    if high <= low:
        raise ValueError(f"[randint] expected low < high, got low={low}, high={high}")
    rng = numpy_generator(generator, "randint")
    arr = rng.integers(low, high, _size((size,), "randint"))
    return _finish(arr.astype(_dtype(dtype, int64)), requires_grad, device)


def randperm(
    n: int,
    *,
    generator: GeneratorLike = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """A random permutation of 0..n-1 (int64)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"[randperm] n must be an int >= 0, got {n!r}")
    rng = numpy_generator(generator, "randperm")
    return _finish(rng.permutation(int(n)).astype(_dtype(dtype, int64)), requires_grad, device)


def randn_like(
    input: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """randn with `input`'s shape (and dtype, unless `dtype` is given)."""
    return randn(input.shape, dtype=dtype or input.dtype, device=_like(input, device),
                 requires_grad=requires_grad)


def rand_like(
    input: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """rand with `input`'s shape (and dtype, unless `dtype` is given)."""
    return rand(input.shape, dtype=dtype or input.dtype, device=_like(input, device),
                requires_grad=requires_grad)


def randint_like(
    input: Tensor,
    low: int = 0,
    high: Optional[int] = None,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """randint with `input`'s shape: `randint_like(x, high)` or `randint_like(x, low, high)`."""
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype,
                   device=_like(input, device),
                   requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("[arange] step must be non-zero")
    is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    arr = np.arange(start, end, step)
    return _finish(arr.astype(_dtype(dtype, int64 if is_int else float32)), requires_grad, device)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    arr = np.linspace(start, end, int(steps))
    return _finish(arr.astype(_dtype(dtype)), requires_grad, device)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.eye(n, m, dtype=_dtype(dtype)), requires_grad, device)


def _tensors(tensors, op):
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"[{op}] expected a non-empty sequence of tensors")
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"[{op}] expected tensors, got {type(t).__name__}")
    dt = _dt(tensors[0]._data)
    for t in tensors[1:]:
        _same_device(op, tensors[0], t)
        if _dt(t._data) != dt:
            dt = _promote(dt, _dt(t._data))  # PyTorch's categories: int64 with float32 is float32
    return [t if _dt(t._data) == dt else t.to(dt) for t in tensors]


def cat(tensors, dim=0) -> Tensor:
    ts = _tensors(tensors, "cat")
    shaped = [t for t in ts if t.shape != (0,)]
    if shaped and len(shaped) < len(ts):
        # NOTE: PyTorch's legacy rule: 1-D empty tensors join any cat (as empty slices of dim).
        first = shaped[0]
        empty = tuple(0 if i == dim % first.ndim else n for i, n in enumerate(first.shape))
        ts = [t.reshape(empty) if t.shape == (0,) else t for t in ts]
    nd = ts[0].ndim
    d = dim % nd if nd else 0
    for t in ts[1:]:
        if t.ndim != nd or any(a != b for i, (a, b) in enumerate(zip(t.shape, ts[0].shape)) if i != d):
            raise RuntimeError(
                f"[cat] sizes must match except in dim {dim}: {tuple(ts[0].shape)} vs {tuple(t.shape)}"
            )
    return fn.Cat.apply(*ts, dim=d)


concat = cat


def stack(tensors, dim=0) -> Tensor:
    ts = _tensors(tensors, "stack")
    for t in ts[1:]:
        if t.shape != ts[0].shape:
            raise RuntimeError(
                f"[stack] expects tensors of equal shape, got {tuple(ts[0].shape)} and {tuple(t.shape)}"
            )
    return fn.Stack.apply(*ts, dim=dim % (ts[0].ndim + 1))


def where(condition, input, other) -> Tensor:
    if not isinstance(input, Tensor):
        input = tensor(input) if not isinstance(other, Tensor) else Tensor._make(
            other._on_my_device(np.array(input, dtype=other.dtype))
        )
    a, b = input._operands(other, "where")
    cond_t = condition if isinstance(condition, Tensor) else Tensor._make(
        a._on_my_device(np.asarray(condition))
    )
    _same_device("where", a, cond_t)
    cond = cond_t._data
    try:
        np.broadcast_shapes(tuple(cond.shape), tuple(a._data.shape), tuple(b._data.shape))
    except ValueError:
        raise RuntimeError(
            f"[where] condition, input and other of shapes {list(cond.shape)}, "
            f"{list(a._data.shape)} and {list(b._data.shape)} do not broadcast"
        ) from None
    if isinstance(condition, Tensor) and _dt(cond) == np.bool_:
        return fn.Where.apply(condition, a, b)  # saved as is: its version is checked
    return fn.Where.apply(cond_t.to(bool_), a, b)
