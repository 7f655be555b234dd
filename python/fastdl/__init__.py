"""fastdl: a fast deep-learning library for the CPU with PyTorch's API.

    import fastdl as torch
    import fastdl.nn as nn
    import fastdl.optim as optim

Hot kernels are C++ (fastdl._C); every kernel has a NumPy twin in fastdl.backends.reference,
and `with fastdl.backend("reference"): ...` runs the same code on it.
"""

from __future__ import annotations

from . import _C
from ._backend import backend
from ._config import info, show_config
from ._creation import (
    arange, as_tensor, cat, concat, empty, empty_like, eye, from_numpy, full, full_like, linspace,
    ones, ones_like, rand, randint, randn, randperm, stack, tensor, where, zeros, zeros_like,
)
from ._random import manual_seed, seed
from ._tensor import (
    Size, Tensor, bool_, device, float16, float32, float64, int8, int16, int32, int64, matmul,
    uint8,
)
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from . import autograd  # noqa: E402
from .checkpoint import load, save
from .summary import summary
from . import nn, optim  # noqa: E402

__version__ = _C.build_config["version"]

float = float32  # noqa: A001  (PyTorch's aliases)
double = float64
long = int64
int = int32  # noqa: A001
bool = bool_  # noqa: A001
FloatTensor = Tensor


def set_num_threads(n: int) -> None:
    """Set the number of threads the C++ kernels use (default: the machine's cores)."""
    import builtins

    if not isinstance(n, builtins.int) or isinstance(n, builtins.bool) or n < 1:
        raise ValueError(f"[set_num_threads] expected an int >= 1, got {n!r}")
    _C.set_num_threads(n)


def get_num_threads() -> int:
    return _C.get_num_threads()


def _unary(name):
    def f(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)

    f.__name__ = name
    f.__doc__ = f"fastdl.{name}(t, ...) is t.{name}(...)."
    return f


for _name in (
    "exp", "log", "log1p", "sqrt", "rsqrt", "abs", "sin", "cos", "square", "reciprocal", "sign",
    "clamp", "clip", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "sum", "mean", "var",
    "std", "max", "min", "amax", "amin", "argmax", "argmin", "logsumexp", "reshape", "flatten",
    "squeeze", "unsqueeze", "permute", "transpose", "t", "maximum", "minimum", "all", "any",
    "numel", "clone", "detach",
):
    globals()[_name] = _unary(_name)
del _name


def add(input, other, alpha=1):
    return input + (other * alpha if alpha != 1 else other)


def sub(input, other, alpha=1):
    return input - (other * alpha if alpha != 1 else other)


def mul(input, other):
    return input * other


def div(input, other):
    return input / other


def pow(input, exponent):  # noqa: A001
    return input ** exponent


def eq(input, other):
    return input == other


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


class cuda:
    """CUDA availability (a build without the CUDA backend reports none)."""

    @staticmethod
    def is_available() -> bool:
        return _C.build_config["cuda_built"] and _C.cuda_device_count() > 0

    @staticmethod
    def device_count() -> int:
        return _C.cuda_device_count()


_LAZY_SUBMODULES = ("data", "datasets", "explain", "models")


def __getattr__(name):
    # fastdl.data, fastdl.datasets, fastdl.explain, fastdl.models import on first use, so
    # `import fastdl` stays light (pandas, matplotlib and friends load only when needed).
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fastdl' has no attribute {name!r}")
