"""nn layers: pooling (PyTorch's names, signatures, defaults, initialisation and state_dict keys).

AvgPool1d, AvgPool2d, MaxPool1d, AdaptiveAvgPool2d and AdaptiveMaxPool2d, each a thin Module
over the functional forms in nn/_functional_pool.py (no parameters, no state). Arguments are
stored as PyTorch stores them, so repr prints the same text.
"""

from __future__ import annotations

from .._args import ntuple
from .._tensor import Tensor
from . import _functional_pool as FP
from .module import Module

__all__ = ["AvgPool1d", "AvgPool2d", "MaxPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]


def _store_window(module: Module, kernel_size, stride, padding) -> None:
    # Stored as given, as PyTorch does (repr prints `kernel_size=2` for an int); stride defaults
    # to kernel_size.
    module.kernel_size = kernel_size
    module.stride = stride if stride is not None else kernel_size
    module.padding = padding


class _AvgPoolNd(Module):
    # PyTorch's base of the average pools: their common repr.
    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _MaxPoolNd(Module):
    # PyTorch's base of MaxPool1d and MaxPool2d (nn/modules.py): PyTorch's signature, the
    # arguments and their repr.
    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        dilation=1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        _store_window(self, kernel_size, stride, padding)
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode
        self._check_arguments()

    def _check_arguments(self) -> None:
        """A subclass's checks of the stored arguments (MaxPool2d's); none here."""

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(_AvgPoolNd):
    """Mean over (kernel_size) windows of (N, C, H, W) input; stride defaults to kernel_size.

    >>> import fastdl
    >>> AvgPool2d(2)(fastdl.randn(1, 3, 8, 8)).shape
    fastdl.Size([1, 3, 4, 4])
    """

    # PyTorch's signature, the same arguments as F.avg_pool2d's in nn/_functional_pool.py (the
    # Module stores them for forward to pass on): kept as two signatures, as PyTorch has.
    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        _store_window(self, kernel_size, stride, padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return FP.avg_pool2d(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
            self.count_include_pad, self.divisor_override,
        )


class AvgPool1d(_AvgPoolNd):
    """Mean over kernel_size windows of (N, C, L) input; stride defaults to kernel_size.

    >>> import fastdl
    >>> AvgPool1d(2)(fastdl.randn(1, 3, 8)).shape
    fastdl.Size([1, 3, 4])
    """

    # PyTorch's signature: AvgPool2d's without divisor_override.
    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = ntuple(kernel_size, 1, "AvgPool1d", "kernel_size")
        self.stride = ntuple(kernel_size if stride is None else stride, 1, "AvgPool1d", "stride")
        self.padding = ntuple(padding, 1, "AvgPool1d", "padding")
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return FP.avg_pool1d(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
            self.count_include_pad,
        )


class MaxPool1d(_MaxPoolNd):
    """Max over kernel_size windows of (N, C, L) input; stride defaults to kernel_size.

    >>> import fastdl
    >>> MaxPool1d(2)(fastdl.randn(1, 3, 8)).shape
    fastdl.Size([1, 3, 4])
    """

    def forward(self, input: Tensor):
        return FP.max_pool1d(
            input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
            self.return_indices,
        )


class AdaptiveAvgPool2d(Module):
    """Mean pooling of (N, C, H, W) input to output_size (an int, or a pair whose None keeps
    the input's size) over PyTorch's adaptive windows.

    >>> import fastdl
    >>> AdaptiveAvgPool2d((2, 3))(fastdl.randn(1, 3, 7, 7)).shape
    fastdl.Size([1, 3, 2, 3])
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return FP.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling of (N, C, H, W) input to output_size over PyTorch's adaptive windows; with
    return_indices also each max's index into the flattened (H * W) plane.

    >>> import fastdl
    >>> AdaptiveMaxPool2d(1)(fastdl.randn(1, 3, 7, 7)).shape
    fastdl.Size([1, 3, 1, 1])
    """

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input: Tensor):
        return FP.adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
