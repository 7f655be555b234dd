"""Argument checks shared by the public API (nn layers and functions, data): PyTorch's
_single/_pair/_ntuple, reductions, tensor and floating-point arguments. Each error names the op
and the expected and actual values. The backends' bindings check sizes again for themselves;
nothing between the two checks repeats them.
"""

from __future__ import annotations

import numbers
from typing import Any

from ._errors import ArgumentError, ArgumentTypeError
from ._storage import _dt

REDUCTIONS = ("none", "mean", "sum")


def is_int(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    if type(value) is int:  # the common case, without the ABC check's ~0.3 us
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def ntuple(value: Any, n: int, op: str, name: str) -> tuple:
    """An int as n copies, or a sequence of n ints, as a tuple of ints (PyTorch's _ntuple)."""
    # NOTE: on every conv and pool call; plain ints and tuples of them take the first two lines.
    if type(value) is int:
        return (value,) * n
    if type(value) is tuple and len(value) == n and all(type(v) is int for v in value):
        return value
    if is_int(value):
        return (int(value),) * n
    if isinstance(value, (tuple, list)) and len(value) == n and all(is_int(v) for v in value):
        return tuple(int(v) for v in value)
    what = "a 1-tuple of ints" if n == 1 else ("a pair of ints" if n == 2 else f"{n} ints")
    raise ArgumentTypeError(f"[{op}] {name} must be an int or {what}, got {value!r}")


def pair(value: Any, op: str, name: str) -> tuple:
    return ntuple(value, 2, op, name)


def single(value: Any, op: str, name: str) -> int:
    return ntuple(value, 1, op, name)[0]


def check_reduction(reduction: Any, op: str, allowed: tuple = REDUCTIONS) -> str:
    if reduction not in allowed:
        raise ArgumentError(f"[{op}] reduction must be one of {allowed}, got {reduction!r}")
    return reduction


_TENSOR = None  # fastdl.Tensor, bound on the first call (this module is imported before it)


def _tensor_class() -> type:
    global _TENSOR
    from ._tensor import Tensor

    _TENSOR = Tensor
    return Tensor


def tensor_arg(x: Any, op: str, name: str):
    # NOTE: on every functional call: no import statement on this path after the first.
    if not isinstance(x, _TENSOR or _tensor_class()):
        raise ArgumentTypeError(f"[{op}] {name} must be a Tensor, got {type(x).__name__}")
    return x


def float_arg(x: Any, op: str, name: str):
    """A Tensor of a floating-point dtype."""
    tensor_arg(x, op, name)
    if _dt(x._data).kind != "f":
        raise ArgumentTypeError(f"[{op}] {name} must be a floating point tensor, got {x.dtype}")
    return x
