"""nn.functional: the act family (PyTorch's names and signatures); nn/functional.py re-exports
everything in __all__.

Each function checks its input and applies one op of fastdl/ops/activation.py; `inplace=True`
writes the result into the input's storage by PyTorch's in-place rules.
"""

from __future__ import annotations

from .._errors import ArgumentError, ArgumentTypeError
from .._tensor import Tensor, _dt
from ..ops import activation as ops

__all__ = [
    "elu",
    "elu_",
    "gelu",
    "hardtanh",
    "hardtanh_",
    "relu6",
    "silu",
    "softplus",
]


def _float_input(x, op):
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"[{op}] input must be a Tensor, got {type(x).__name__}")
    if _dt(x._data).kind != "f":
        raise ArgumentTypeError(f"[{op}] input must be a floating point tensor, got {x.dtype}")
    return x


def _apply(op_cls, input, name, inplace, **params):
    """op_cls on input, or written into input's storage when `inplace`."""
    _float_input(input, name)
    if inplace:
        # keeps_old: the op saves its input, so autograd gets a copy of the old value
        return input._inplace(
            name + "_", lambda src: op_cls.apply(src, **params), keeps_old=True
        )
    return op_cls.apply(input, **params)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF; approximate='tanh' uses PyTorch's tanh form.

    >>> import fastdl
    >>> round(gelu(fastdl.tensor([1.0])).item(), 6)
    0.841345
    """
    if approximate not in ("none", "tanh"):
        raise ArgumentError(
            f"[gelu] approximate argument must be either none or tanh, got {approximate!r}"
        )
    return _apply(ops.GELU, input, "gelu", False, approximate=approximate)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return _apply(ops.ELU, input, "elu", inplace, alpha=float(alpha))


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, inplace=True)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return _apply(ops.SiLU, input, "silu", inplace)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta; x itself where beta * x > threshold (no overflow)."""
    return _apply(ops.Softplus, input, "softplus", False, beta=beta, threshold=threshold)


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """x clipped to [min_val, max_val]."""
    if min_val > max_val:
        raise ArgumentError(
            f"[hardtanh] min_val cannot be greater than max_val, got {min_val} and {max_val}"
        )
    return _apply(ops.Hardtanh, input, "hardtanh", inplace, min_val=min_val, max_val=max_val)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    return hardtanh(input, 0.0, 6.0, inplace)
