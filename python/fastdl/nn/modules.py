"""The layers: Linear, Conv2d, MaxPool2d, activations, Flatten, Dropout, Identity, Sequential.

Each is a thin Module over `fastdl.nn.functional`, with PyTorch's constructor arguments, default
initialisation and `extra_repr` text.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Union

import numpy as np

from .._creation import empty
from .._args import ntuple, pair
from .._tensor import Tensor
from . import functional as F
from . import init
from .container import _renumber
from .module import Module
from .parameter import Parameter
from .pooling import _MaxPoolNd

__all__ = [
    "Conv2d",
    "Dropout",
    "Flatten",
    "Identity",
    "Linear",
    "MaxPool2d",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
]

IntOrPair = Union[int, tuple]


def _new_parameter(shape: tuple, dtype: Any, device: Any) -> Parameter:
    """An uninitialised Parameter; reset_parameters fills it."""
    data = empty(*shape, dtype=np.float32 if dtype is None else dtype)
    if device is not None:
        data = data.to(device)
    return Parameter(data)


def _weight_and_bias(module: Module, shape: tuple, bias: bool, dtype: Any, device: Any) -> None:
    """Linear's and Conv's parameters: a weight of `shape`, a bias of shape[0] (or None when not
    `bias`), then module.reset_parameters()."""
    module.weight = _new_parameter(shape, dtype, device)
    if bias:
        module.bias = _new_parameter((shape[0],), dtype, device)
    else:
        module.register_parameter("bias", None)
    module.reset_parameters()


def _reset_weight_and_bias(weight: Parameter, bias: Parameter | None) -> None:
    """PyTorch's default for Linear and Conv: kaiming_uniform_(a=sqrt(5)) on the weight, which is
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


class Identity(Module):
    """Returns its input unchanged (arguments are accepted and ignored).

    >>> import fastdl
    >>> Identity(54, unused="x")(fastdl.ones(2)).shape
    fastdl.Size([2])
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """y = x @ weight.T + bias, with weight (out_features, in_features).

    >>> import fastdl
    >>> layer = Linear(20, 30)
    >>> layer(fastdl.randn(128, 20)).shape
    fastdl.Size([128, 30])
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(
                f"[Linear] expected non-negative sizes, got in_features={in_features}, "
                f"out_features={out_features}"
            )
        self.in_features = in_features
        self.out_features = out_features
        _weight_and_bias(self, (out_features, in_features), bias, dtype, device)

    def reset_parameters(self) -> None:
        _reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """What Conv1d and Conv2d share (PyTorch's _ConvNd): arguments, weight
    (out_channels, in_channels // groups, *kernel_size), initialisation and repr."""

    _dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: IntOrPair | str = 0,
        dilation: IntOrPair = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        op, n = type(self).__name__, self._dims
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels < 0 or out_channels < 0:  # 0 is PyTorch's too (forward decides)
            raise ValueError(
                f"[{op}] expected non-negative channel counts, got in_channels={in_channels}, "
                f"out_channels={out_channels}"
            )
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = ntuple(kernel_size, n, op, "kernel_size")
        self.stride = ntuple(stride, n, op, "stride")
        self.dilation = ntuple(dilation, n, op, "dilation")
        self.groups = int(groups)
        self.padding_mode = padding_mode
        self.output_padding = (0,) * n
        self.transposed = False
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError(
                f"[{op}] expected kernel_size, stride and dilation >= 1, got kernel_size="
                f"{self.kernel_size}, stride={self.stride}, dilation={self.dilation}"
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {list(_PADDING_MODES)}, "
                f"but got padding_mode='{padding_mode}'"
            )
        if padding_mode != "zeros":
            raise NotImplementedError(
                f"[{op}] padding_mode='{padding_mode}' is not supported; only 'zeros'"
            )
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(
                    f"Invalid padding string '{padding}', should be one of {{'valid', 'same'}}"
                )
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = ntuple(padding, n, op, "padding")
            if min(self.padding) < 0:
                raise ValueError(f"[{op}] expected padding >= 0, got {padding}")
        _weight_and_bias(
            self, (out_channels, in_channels // groups, *self.kernel_size), bias, dtype, device
        )

    def reset_parameters(self) -> None:
        _reset_weight_and_bias(self.weight, self.bias)

    def extra_repr(self) -> str:
        n = self._dims
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D cross-correlation over (N, C, H, W) input, weight (K, C / groups, R, S).

    Supported: any kernel_size, stride, dilation and groups (depthwise included), integer
    padding, padding='valid' and padding='same' (stride 1). Non-zero padding modes raise.

    >>> import fastdl
    >>> conv = Conv2d(1, 8, 3, padding=1)
    >>> conv(fastdl.randn(2, 1, 28, 28)).shape
    fastdl.Size([2, 8, 28, 28])
    """

    _dims = 2

    def forward(self, input: Tensor) -> Tensor:
        return F.conv2d(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class Conv1d(_ConvNd):
    """1-D cross-correlation over (N, C, L) input, weight (K, C / groups, kernel_size); runs as a
    conv2d with H = 1.

    >>> import fastdl
    >>> conv = Conv1d(4, 8, 3, padding=1)
    >>> conv(fastdl.randn(2, 4, 50)).shape
    fastdl.Size([2, 8, 50])
    """

    _dims = 1

    def forward(self, input: Tensor) -> Tensor:
        return F.conv1d(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class MaxPool2d(_MaxPoolNd):
    """Max over (kernel_size) windows of (N, C, H, W) input; stride defaults to kernel_size.

    >>> import fastdl
    >>> MaxPool2d(2)(fastdl.randn(1, 3, 8, 8)).shape
    fastdl.Size([1, 3, 4, 4])
    """

    def _check_arguments(self) -> None:
        kernel_size, padding, dilation = self.kernel_size, self.padding, self.dilation
        k = pair(kernel_size, "MaxPool2d", "kernel_size")
        s = pair(self.stride, "MaxPool2d", "stride")
        p = pair(padding, "MaxPool2d", "padding")
        if min(k) < 1 or min(s) < 1 or min(p) < 0:
            raise ValueError(
                f"[MaxPool2d] expected kernel_size >= 1, stride >= 1, padding >= 0, got "
                f"kernel_size={kernel_size}, stride={self.stride}, padding={padding}"
            )
        if p[0] > k[0] // 2 or p[1] > k[1] // 2:
            raise ValueError(
                f"[MaxPool2d] pad should be at most half of kernel size, got padding={padding}, "
                f"kernel_size={kernel_size}"
            )
        if pair(dilation, "MaxPool2d", "dilation") != (1, 1):
            raise NotImplementedError(
                f"[MaxPool2d] dilation={dilation} is not supported; only dilation=1"
            )
        if self.ceil_mode:
            raise NotImplementedError("[MaxPool2d] ceil_mode=True is not supported")

    def forward(self, input: Tensor) -> Any:
        if self.return_indices:
            return F.max_pool2d(
                input, self.kernel_size, self.stride, self.padding, return_indices=True
            )
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding)


class ReLU(Module):
    """max(x, 0) elementwise.

    >>> import fastdl
    >>> ReLU()(fastdl.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        if self.inplace:
            return F.relu(input, inplace=True)
        return F.relu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """1 / (1 + exp(-x)) elementwise.

    >>> import fastdl
    >>> Sigmoid()(fastdl.zeros(2)).tolist()
    [0.5, 0.5]
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Tanh(Module):
    """tanh(x) elementwise.

    >>> import fastdl
    >>> Tanh()(fastdl.zeros(2))
    tensor([0., 0.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Flatten(Module):
    """Flattens dims start_dim..end_dim into one (by default all but the batch dim).

    >>> import fastdl
    >>> Flatten()(fastdl.zeros(2, 3, 4, 5)).shape
    fastdl.Size([2, 60])
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class _DropoutNd(Module):
    # PyTorch's common base of Dropout and Dropout2d (normalization.py): p, inplace and repr.
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """In training, zeroes each element with probability p and scales the rest by 1 / (1 - p);
    the identity in eval mode.

    >>> import fastdl
    >>> Dropout(0.5).eval()(fastdl.ones(3))
    tensor([1., 1., 1.])
    """

    def forward(self, input: Tensor) -> Tensor:
        if self.inplace:
            return F.dropout(input, self.p, self.training, inplace=True)
        return F.dropout(input, self.p, self.training)


class Sequential(Module):
    """Runs its modules in order, each on the previous one's output. Built from modules
    (named "0", "1", ...) or from one OrderedDict of name -> module.

    >>> import fastdl
    >>> model = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
    >>> model(fastdl.randn(3, 4)).shape
    fastdl.Size([3, 2])
    >>> len(model), type(model[1]).__name__
    (3, 'ReLU')
    """

    def __init__(self, *args: Module) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(args):
                self.add_module(str(index), module)

    def _index(self, idx: int) -> int:
        n = len(self)
        if not isinstance(idx, (int, np.integer)) or isinstance(idx, bool):
            raise TypeError(f"[Sequential] indices must be integers or slices, not {type(idx)}")
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for Sequential of length {n}")
        return int(idx) % n

    def __getitem__(self, idx: int | slice) -> Module | Sequential:
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[self._index(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        key = list(self._modules.keys())[self._index(idx)]
        self.add_module(key, module)

    def __delitem__(self, idx: int | slice) -> None:
        keys = list(self._modules.keys())
        doomed = keys[idx] if isinstance(idx, slice) else [keys[self._index(idx)]]
        for key in doomed:
            del self._modules[key]
        # Renumber, so that append() after a deletion never collides with an existing name.
        if all(key.isdigit() for key in self._modules):
            _renumber(self)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Any) -> Sequential:
        for module in modules:
            self.append(module)
        return self

    def forward(self, input: Any) -> Any:
        for module in self:
            input = module(input)
        return input
