"""fastdl: a fast deep-learning library for the CPU (and NVIDIA GPUs) with PyTorch's API.

    import fastdl as torch
    import fastdl.nn as nn
    import fastdl.optim as optim

Hot kernels are C++ (fastdl._C); every kernel has a NumPy twin in fastdl.backends.reference,
and `with fastdl.backend("reference"): ...` runs the same code on it.
"""

from __future__ import annotations

from ._openmp import passive_wait as _passive_wait

with _passive_wait():
    from . import _C
from ._backend import backend
from ._config import info, show_config
from . import _random, _tensor as _tensor_module
import numpy as _np
from ._creation import (
    arange, as_tensor, cat, concat, empty, empty_like, eye, from_dlpack, from_numpy, full,
    full_like, linspace, ones, ones_like, rand, rand_like, randint, randint_like, randn,
    randn_like, randperm, stack, tensor, where, zeros, zeros_like,
)
from ._random import (
    Generator, default_generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state,
)
from ._tensor import (
    Size, Tensor, bool_, device, float16, float32, float64, get_default_device, int8, int16, int32,
    int64, matmul, set_default_device, uint8,
)
from .autograd import (
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
    set_grad_enabled,
)
from . import autograd  # noqa: E402
from .backends import cudnn as _cudnn, mps as _mps  # noqa: E402,F401  (fastdl.backends.cudnn)
from .checkpoint import load, save
from . import cuda  # noqa: E402  (torch.cuda's queries; CuPy only on first CUDA tensor)
from .summary import summary
from . import nn, optim  # noqa: E402
from . import linalg  # noqa: E402
from .ops.tensor_ops import einsum  # noqa: E402

__version__ = _C.build_config["version"]

float = float32  # noqa: A001  (PyTorch's aliases)
double = float64
half = float16  # NOTE: float16 tensors are not supported: making one raises TypeError
long = int64
int = int32  # noqa: A001
short = int16
bool = bool_  # noqa: A001
FloatTensor = Tensor


class _UnsupportedDtype:
    """A PyTorch dtype name that fastdl has no tensors of: using it as a dtype raises
    TypeError (fastdl's dtype check rejects it)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"fastdl.{self.name} (not supported by fastdl)"


bfloat16 = getattr(_tensor_module, "bfloat16", None) or _UnsupportedDtype("bfloat16")
dtype = getattr(_tensor_module, "dtype", None) or _np.dtype  # the class of fastdl's dtypes


def get_default_dtype() -> "dtype":
    """The dtype of floating point tensors made without a dtype: float32 in fastdl."""
    return float32


def set_default_dtype(d) -> None:
    """PyTorch's default-dtype switch. fastdl's default is float32 and stays float32:
    `set_default_dtype(fastdl.float32)` is accepted; float64 raises NotImplementedError (pass
    `dtype=fastdl.float64` where you create tensors instead); non-float dtypes raise TypeError."""
    from ._tensor import as_dtype

    name = _np.dtype(as_dtype(d)).name
    if _np.dtype(name).kind != "f":
        raise TypeError(
            "[set_default_dtype] only floating point types are supported as the default type, "
            f"got fastdl.{name}"
        )
    if name != "float32":
        raise NotImplementedError(
            f"[set_default_dtype] fastdl's default dtype is float32 and cannot change; got "
            f"fastdl.{name}. Pass dtype=fastdl.{name} to the functions that create tensors instead"
        )


def set_num_threads(n: int) -> None:
    """Set the number of threads the C++ kernels use, for every thread of the process (default:
    the machine's cores; at most `max(64, 4 * processors)`)."""
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
    "numel", "clone", "detach", "prod", "diagonal", "masked_fill", "narrow", "select",
    # tensor ops (fastdl/ops/tensor_ops.py)
    "split", "chunk", "unbind", "index_select", "gather", "scatter", "scatter_add",
    "masked_select", "topk", "sort", "argsort", "cumsum", "cumprod", "tile", "flip", "roll",
    "tril", "triu", "norm", "bmm", "baddbmm", "isnan", "isinf", "isfinite", "isclose", "allclose",
    "equal", "unique", "lerp",
):
    globals()[_name] = _unary(_name)
del _name


# The activations without arguments, called directly (no *args / getattr): on a tiny tensor the
# call path is most of the time (bench overhead.relu).
def relu(input):
    """fastdl.relu(t) is t.relu()."""
    return input.relu()


def sigmoid(input):
    """fastdl.sigmoid(t) is t.sigmoid()."""
    return input.sigmoid()


def tanh(input):
    """fastdl.tanh(t) is t.tanh()."""
    return input.tanh()


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


_LAZY_SUBMODULES = ("data", "datasets", "distributed", "explain", "models", "utils")
# fastdl.compile (torch.compile's name) loads its module on first use too.
_LAZY_ATTRIBUTES = {"compile": "._compile"}


def __getattr__(name):
    # fastdl.data, fastdl.datasets, fastdl.explain, fastdl.models, fastdl.distributed and
    # fastdl.compile import on first use, so `import fastdl` stays light (pandas, matplotlib,
    # mpi4py and the compiler load only when needed).
    import importlib

    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_ATTRIBUTES:
        value = getattr(importlib.import_module(_LAZY_ATTRIBUTES[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fastdl' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES) | set(_LAZY_ATTRIBUTES))
