"""Tensor dtypes, as torch's: `fastdl.float32`, ..., what a tensor may hold, and PyTorch's
promotion rules for two dtypes and for a Python number next to a tensor."""

from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np


class dtype:
    """A tensor's element type, as `torch.dtype`: `fastdl.float32`, `fastdl.int64`, ...

    It prints as `fastdl.float32`, compares equal to the NumPy dtype it stands for (and to
    NumPy's type objects and names: `fastdl.float32 == np.float32`), hashes like it, and
    NumPy accepts it wherever a dtype goes (`np.zeros(3, fastdl.float32)`).
    """

    __slots__ = ("dtype", "_name", "kind", "itemsize")

    def __init__(self, np_dtype, name: str):
        self.dtype = np.dtype(np_dtype)  # NumPy reads this attribute to convert it
        self._name = name
        self.kind, self.itemsize = self.dtype.kind, self.dtype.itemsize  # read often: no lookup

    @property
    def is_floating_point(self) -> bool:
        return self.dtype.kind == "f"

    @property
    def is_complex(self) -> bool:
        return False

    @property
    def is_signed(self) -> bool:
        return self.dtype.kind in "fi"

    def __getattr__(self, name):  # kind, char, type, ...: NumPy's
        return getattr(object.__getattribute__(self, "dtype"), name)

    def __eq__(self, other):
        if isinstance(other, dtype):
            return self.dtype == other.dtype
        try:
            return self.dtype == np.dtype(other)
        except TypeError:
            return False

    def __hash__(self):
        return hash(self.dtype)

    def __repr__(self):
        return f"fastdl.{self._name}"

    __str__ = __repr__

    def __reduce__(self):
        return (_dtype_named, (self._name,))


def _dtype_named(name: str) -> dtype:
    return globals()[name]


float32 = dtype(np.float32, "float32")
float64 = dtype(np.float64, "float64")
float16 = dtype(np.float16, "float16")
int64 = dtype(np.int64, "int64")
int32 = dtype(np.int32, "int32")
int16 = dtype(np.int16, "int16")
int8 = dtype(np.int8, "int8")
uint8 = dtype(np.uint8, "uint8")
bool_ = dtype(np.bool_, "bool")
SUPPORTED_DTYPES = (float32, float64, int64, int32, int16, int8, uint8, bool_)
# The fastdl dtype of each NumPy dtype a tensor can hold.
_FASTDL_DTYPES = {d.dtype: d for d in SUPPORTED_DTYPES + (float16,)}

_PY_DTYPES = {builtins.float: float32, builtins.int: int64, builtins.bool: bool_}

values_indices = namedtuple("values_indices", ["values", "indices"])


def as_dtype(spec) -> np.dtype:
    """The NumPy dtype of a fastdl dtype (or NumPy dtype, or Python's float/int/bool, which map
    as in PyTorch)."""
    if spec in _PY_DTYPES:
        return _PY_DTYPES[spec].dtype
    try:
        d = np.dtype(spec)
    except TypeError:
        raise TypeError(f"[dtype] expected a dtype such as fastdl.float32, got {spec!r}") from None
    if d not in SUPPORTED_DTYPES:
        raise TypeError(
            f"[dtype] unsupported dtype {_FASTDL_DTYPES.get(d, d)}; supported: "
            f"{[str(x) for x in SUPPORTED_DTYPES]}"
        )
    return d


def _scalar_dtype(value, like: np.dtype) -> np.dtype:
    """The dtype a Python number takes next to a tensor of dtype `like` (PyTorch's rule: the
    tensor's dtype wins within its kind; a float next to an int tensor gives float32)."""
    if isinstance(value, (bool, np.bool_)):
        return like
    if isinstance(value, (int, np.integer)):
        return like if like != bool_ else int64
    return like if like.kind == "f" else float32


def _promote(a: np.dtype, b: np.dtype) -> np.dtype:
    if a == b:
        return a
    if a.kind == "f" and b.kind != "f":
        return a
    if b.kind == "f" and a.kind != "f":
        return b
    return np.result_type(a, b)
