"""Functions that make tensors: from data, filled, random, ranges; and tensor-list ops."""

from __future__ import annotations

import numpy as np

from . import _functions as fn
from ._random import generator
from ._tensor import Tensor, _check_device, _from_data, _shape_arg, as_dtype, float32, int64


def _finish(arr, requires_grad=False, device=None):
    _check_device(device)
    t = Tensor._make(arr)
    if requires_grad:
        t.requires_grad = True
    return t


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of `data` (nested lists, numbers, NumPy arrays, tensors).

    >>> import fastdl
    >>> fastdl.tensor([[1, 2], [3, 4]]).dtype
    dtype('int64')
    """
    arr = _from_data(data, dtype)
    source = data._data if isinstance(data, Tensor) else data
    # NOTE: np.ascontiguousarray would turn a 0-d array into 1-d; np.array keeps the shape.
    arr = np.array(arr, order="C", copy=arr is source or not arr.flags.c_contiguous)
    return _finish(arr, requires_grad, device)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor) and dtype is None:
        return data
    if isinstance(data, np.ndarray) and dtype is None and data.dtype in (np.float32, np.float64, np.int64):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares memory with `array` (no copy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"[from_numpy] expected a np.ndarray, got {type(array).__name__}")
    as_dtype(array.dtype)  # raises for unsupported dtypes
    return Tensor._make(array)


def _dtype(dtype, default=float32):
    return default if dtype is None else as_dtype(dtype)


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


def zeros_like(t, dtype=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad)


def empty_like(t, dtype=None, requires_grad=False) -> Tensor:
    return zeros_like(t, dtype, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples from fastdl's global generator (seed with fastdl.manual_seed)."""
    arr = generator().standard_normal(_size(size, "randn"), dtype=np.float64)
    return _finish(arr.astype(_dtype(dtype)), requires_grad, device)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    arr = generator().random(_size(size, "rand"))
    return _finish(arr.astype(_dtype(dtype)), requires_grad, device)


def randint(low, high=None, size=None, dtype=None, device=None) -> Tensor:
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("[randint] size is required, e.g. randint(0, 10, (3,))")
    if high <= low:
        raise ValueError(f"[randint] expected low < high, got low={low}, high={high}")
    arr = generator().integers(low, high, _size((size,), "randint"))
    return _finish(arr.astype(_dtype(dtype, int64)), False, device)


def randperm(n, dtype=None, device=None) -> Tensor:
    return _finish(generator().permutation(int(n)).astype(_dtype(dtype, int64)), False, device)


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
    dt = tensors[0].dtype
    for t in tensors[1:]:
        if t.dtype != dt:
            dt = np.result_type(dt, t.dtype)
    return [t if t.dtype == dt else t.to(dt) for t in tensors]


def cat(tensors, dim=0) -> Tensor:
    ts = _tensors(tensors, "cat")
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
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if not isinstance(input, Tensor):
        input = tensor(input) if not isinstance(other, Tensor) else Tensor._make(
            np.array(input, dtype=other.dtype)
        )
    a, b = input._operands(other, "where")
    return fn.Where.apply(Tensor._make(cond.astype(bool)), a, b)
