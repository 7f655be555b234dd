"""nn layers: activation (PyTorch's names, signatures, defaults, initialisation and state_dict keys).

Thin Modules over nn.functional's activations; none has parameters or buffers.
"""

from __future__ import annotations

from .._errors import ArgumentError
from .._tensor import Tensor
from . import functional as F
from .module import Module

__all__ = [
    "ELU", "GELU", "Hardtanh", "LeakyReLU", "LogSoftmax", "ReLU6", "SiLU", "Softmax", "Softplus",
]


def _inplace_repr(text: str, inplace: bool) -> str:
    return text + ", inplace=True" if inplace else text


class LeakyReLU(Module):
    """x for x >= 0, negative_slope * x otherwise.

    >>> import fastdl
    >>> LeakyReLU(0.5)(fastdl.tensor([-2.0, 3.0])).tolist()
    [-1.0, 3.0]
    """

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(f"negative_slope={self.negative_slope}", self.inplace)


class GELU(Module):
    """x * Phi(x) (Phi the standard normal CDF), exact or with the tanh approximation.

    >>> import fastdl
    >>> GELU()(fastdl.tensor([0.0, 1.0])).tolist()[1] > 0.84
    True
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class ELU(Module):
    """x for x > 0, alpha * (exp(x) - 1) otherwise.

    >>> import fastdl
    >>> ELU()(fastdl.tensor([1.0])).item()
    1.0
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(f"alpha={self.alpha}", self.inplace)


class SiLU(Module):
    """x * sigmoid(x).

    >>> import fastdl
    >>> SiLU()(fastdl.zeros(2)).tolist()
    [0.0, 0.0]
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, linear where beta * x > threshold.

    >>> import fastdl
    >>> round(Softplus()(fastdl.zeros(1)).item(), 4)
    0.6931
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    """x clipped to [min_val, max_val] (min_value/max_value: PyTorch's deprecated names).

    >>> import fastdl
    >>> Hardtanh()(fastdl.tensor([-3.0, 0.5, 3.0])).tolist()
    [-1.0, 0.5, 1.0]
    """

    def __init__(
        self,
        min_val: float = -1.0,
        max_val: float = 1.0,
        inplace: bool = False,
        min_value: float | None = None,
        max_value: float | None = None,
    ) -> None:
        super().__init__()
        if min_value is not None:
            min_val = min_value
        if max_value is not None:
            max_val = max_value
        if not max_val > min_val:
            raise ArgumentError(
                f"[Hardtanh] max_val must be greater than min_val, got {min_val} and {max_val}"
            )
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(f"min_val={self.min_val}, max_val={self.max_val}", self.inplace)


class ReLU6(Hardtanh):
    """min(max(x, 0), 6).

    >>> import fastdl
    >>> ReLU6()(fastdl.tensor([-1.0, 7.0])).tolist()
    [0.0, 6.0]
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Softmax(Module):
    """exp(x) / sum(exp(x)) along `dim` (None: PyTorch's legacy choice by the input's rank).

    >>> import fastdl
    >>> Softmax(dim=0)(fastdl.zeros(2)).tolist()
    [0.5, 0.5]
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log(softmax(x)) along `dim`, computed stably.

    >>> import fastdl
    >>> round(LogSoftmax(dim=0)(fastdl.zeros(2)).tolist()[0], 4)
    -0.6931
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
