"""nn layers: normalization (PyTorch's names, signatures, defaults, initialisation and state_dict keys).

BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm, and Dropout2d (channel dropout), each a thin
Module over the functional forms in nn/_functional_norm.py.
"""

from __future__ import annotations

from typing import Any

from .. import _creation
from .._tensor import Tensor
from . import _functional_norm as FN
from . import init
from .module import Module
from .modules import _DropoutNd
from .parameter import Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "Dropout2d"]


def _new(shape: tuple, dtype: Any, device: Any, fill: float = 0.0) -> Tensor:
    make = _creation.ones if fill == 1.0 else _creation.zeros
    return make(*shape, dtype="float32" if dtype is None else dtype, device=device)


def _affine_parameters(module: Module, shape: tuple, affine: bool, bias: bool, dtype: Any,
                       device: Any) -> None:
    """The norms' weight and bias of `shape` (None when not affine; bias None when not bias)."""
    weight = Parameter(_new(shape, dtype, device)) if affine else None
    module.register_parameter("weight", weight)
    module.register_parameter(
        "bias", Parameter(_new(shape, dtype, device)) if affine and bias else None
    )


def _reset_affine(module: Module) -> None:
    """PyTorch's initialisation of a norm's weight (ones) and bias (zeros)."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _BatchNorm(Module):
    """PyTorch's _BatchNorm: weight (ones) and bias (zeros) when affine; buffers running_mean
    (zeros), running_var (ones) and num_batches_tracked (int64 0) when track_running_stats."""

    _dims: tuple = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine_parameters(self, (num_features,), affine, bias, dtype, device)
        if track_running_stats:
            self.register_buffer("running_mean", _new((num_features,), dtype, device))
            self.register_buffer("running_var", _new((num_features,), dtype, device, 1.0))
            count = _creation.tensor(0, dtype="int64", device=device)
            self.register_buffer("num_batches_tracked", count)
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim not in self._dims:
            want = " or ".join(f"{d}D" for d in self._dims)
            raise ValueError(f"[{type(self).__name__}] expected {want} input (got {input.ndim}D input)")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # the cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats  # buffers updated or used
        return FN.batch_norm(
            input,
            self.running_mean if keep else None,
            self.running_var if keep else None,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input over N (and L), per channel C.

    >>> import fastdl
    >>> BatchNorm1d(3)(fastdl.randn(8, 3)).shape
    fastdl.Size([8, 3])
    """

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input over N, H and W, per channel C.

    >>> import fastdl
    >>> BatchNorm2d(3)(fastdl.randn(2, 3, 4, 4)).shape
    fastdl.Size([2, 3, 4, 4])
    """

    _dims = (4,)


class LayerNorm(Module):
    """Normalises over the last dims, normalized_shape; weight (ones) and bias (zeros) of that
    shape when elementwise_affine.

    >>> import fastdl
    >>> LayerNorm(4)(fastdl.randn(2, 4)).shape
    fastdl.Size([2, 4])
    """

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.normalized_shape = FN._normalized_shape(normalized_shape, "LayerNorm")
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias, dtype, device)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return FN.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Normalises (N, C, *) input over groups of C // num_groups channels; weight (ones) and bias
    (zeros) per channel when affine.

    >>> import fastdl
    >>> GroupNorm(2, 4)(fastdl.randn(3, 4, 5)).shape
    fastdl.Size([3, 4, 5])
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups != 0:
            raise ValueError(
                f"[GroupNorm] num_channels must be divisible by num_groups, got "
                f"num_channels={num_channels} and num_groups={num_groups}"
            )
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _affine_parameters(self, (num_channels,), affine, bias, dtype, device)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return FN.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


class Dropout2d(_DropoutNd):
    """In training, zeroes each channel (a whole (H, W) plane of (N, C, H, W) input) with
    probability p and scales the rest by 1 / (1 - p); the identity in eval mode.

    >>> import fastdl
    >>> Dropout2d(0.5).eval()(fastdl.ones(1, 2, 2, 2)).sum().item()
    8.0
    """

    def forward(self, input: Tensor) -> Tensor:
        return FN.dropout2d(input, self.p, self.training, self.inplace)
