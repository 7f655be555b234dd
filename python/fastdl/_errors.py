"""fastdl's exception classes for bad arguments.

PyTorch raises most argument errors (shapes, dtypes, sizes) as RuntimeError, while Python code
expects ValueError and TypeError. fastdl's argument errors are both, so code written for either
catches them: `except RuntimeError` (ported from PyTorch) and `except ValueError` alike.
"""

from __future__ import annotations

# PyTorch's legacy type names, which its messages use ("[torch.FloatTensor [3]]", "Long").
_TORCH_TYPE_NAMES = {
    "float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "int16": "Short",
    "int8": "Char", "uint8": "Byte", "bool": "Bool",
}


def torch_type_name(dtype) -> str:
    """"Float" for float32, "Long" for int64, ...: how PyTorch's messages name a dtype."""
    name = str(getattr(dtype, "dtype", dtype))
    return _TORCH_TYPE_NAMES.get(name, name)


class ArgumentError(ValueError, RuntimeError):
    """A bad argument value (a shape, a size, an option): a ValueError and a RuntimeError."""


class ArgumentTypeError(TypeError, RuntimeError):
    """An argument of the wrong type or dtype: a TypeError and a RuntimeError."""


class ArgumentIndexError(IndexError, ValueError, RuntimeError):
    """An index argument out of range (class targets): an IndexError as PyTorch's, and a
    ValueError and RuntimeError like fastdl's other argument errors."""
