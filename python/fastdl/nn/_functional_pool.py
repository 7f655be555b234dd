"""nn.functional: the pool family (PyTorch's names and signatures); nn/functional.py re-exports
everything in __all__.

avg_pool2d and the adaptive pools run the ops of fastdl/ops/pool.py (the backend's `pool`
kernels); the 1-D pools are the 2-D ones on a (N, C, 1, L) view.
"""

from __future__ import annotations


from .._args import float_arg, is_int, pair, single
from .._errors import ArgumentError, ArgumentTypeError
from .._tensor import Tensor
from ..ops import pool as _pool
from . import functional as _F  # NOTE: partly initialised here; its helpers are read at call time

__all__ = [
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_with_indices",
    "max_pool1d",
    "max_pool1d_with_indices",
]


def _batched(input, op, spatial):
    """input with a batch dim (unbatched (C, *spatial) gets one), and whether it had none."""
    float_arg(input, op, "input")
    if input.ndim not in (spatial + 1, spatial + 2):
        raise ArgumentError(
            f"[{op}] expected a {spatial + 1}-D or {spatial + 2}-D input, got shape "
            f"{tuple(input.shape)}"
        )
    if 0 in tuple(input.shape[1:]):  # PyTorch's rule: only the batch may be empty
        raise ArgumentError(
            f"[{op}] expected an input with non-zero sizes except the batch, got shape "
            f"{tuple(input.shape)}"
        )
    unbatched = input.ndim == spatial + 1
    return (input.unsqueeze(0) if unbatched else input), unbatched


def _pool1d_args(input, kernel_size, stride, padding, op):
    """(batched input, unbatched, k, s, p) of a 1-D pool; stride defaults to kernel_size."""
    k = single(kernel_size, op, "kernel_size")
    s = k if stride is None or stride == [] else single(stride, op, "stride")
    p = single(padding, op, "padding")
    return (*_batched(input, op, 1), k, s, p)


def avg_pool2d(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """2-D average pooling over (N, C, H, W) or (C, H, W); stride defaults to kernel_size."""
    op = "avg_pool2d"
    kernel = pair(kernel_size, op, "kernel_size")
    stride = kernel if stride is None or stride == [] else pair(stride, op, "stride")
    padding = pair(padding, op, "padding")
    if min(kernel) < 1 or min(stride) < 1:
        raise ArgumentError(f"[{op}] kernel_size and stride must be >= 1, got {kernel} and {stride}")
    if min(padding) < 0 or padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ArgumentError(
            f"[{op}] pad should be at most half of kernel size (and >= 0), got padding "
            f"{padding} and kernel_size {kernel}"
        )
    if divisor_override is not None and (not is_int(divisor_override) or divisor_override == 0):
        raise ArgumentError(f"[{op}] divisor_override must be a non-zero int, got "
                            f"{divisor_override!r}")
    x, unbatched = _batched(input, op, 2)
    H, W = x.shape[2:]
    # The output is empty when the kernel overhangs the padded input by a stride or more (by
    # anything, without ceil_mode); the kernels compute the sizes of the others.
    slack = [s - 1 if ceil_mode else 0 for s in stride]
    if any(k - (n + 2 * p) > e for k, n, p, e in zip(kernel, (H, W), padding, slack)):
        raise ArgumentError(
            f"[{op}] given input size ({x.shape[1]}x{H}x{W}) and kernel_size {kernel} with "
            f"padding {padding}: output size is too small"
        )
    y = _pool.AvgPool2d.apply(
        x, kernel=kernel, stride=stride, padding=padding, ceil_mode=bool(ceil_mode),
        count_include_pad=bool(count_include_pad),
        divisor_override=None if divisor_override is None else int(divisor_override),
    )
    return y.squeeze(0) if unbatched else y


def avg_pool1d(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """1-D average pooling over (N, C, L) or (C, L); stride defaults to kernel_size."""
    op = "avg_pool1d"
    x, unbatched, k, s, p = _pool1d_args(input, kernel_size, stride, padding, op)
    y = avg_pool2d(x.unsqueeze(2), (1, k), (1, s), (0, p), ceil_mode, count_include_pad)
    y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


# PyTorch's public signature, alike avg_pool1d's above but for its own arguments; what they share
# is _pool1d_args.
def max_pool1d(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """1-D max pooling over (N, C, L) or (C, L); stride defaults to kernel_size. Indices (with
    return_indices) are positions along L."""
    op = "max_pool1d"
    x, unbatched, k, s, p = _pool1d_args(input, kernel_size, stride, padding, op)
    d = single(dilation, op, "dilation")
    y, indices = _F.max_pool2d(
        x.unsqueeze(2), (1, k), (1, s), (0, p), (1, d), ceil_mode, return_indices=True
    )
    y, indices = y.squeeze(2), indices.squeeze(2)
    if unbatched:
        y, indices = y.squeeze(0), indices.squeeze(0)
    return (y, indices) if return_indices else y


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False) -> tuple:
    """max_pool1d that always returns (output, indices) (PyTorch's name for it)."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def _output_size(output_size, x, op):
    """(P, Q) from an int or a pair whose None entries keep the input's size."""
    if output_size is None or is_int(output_size):
        output_size = (output_size, output_size)
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
        raise ArgumentTypeError(
            f"[{op}] output_size must be an int or a pair of ints (or None), got {output_size!r}"
        )
    out = []
    for size, given in zip(x.shape[2:], output_size):
        if given is None:
            given = size
        if not is_int(given) or given < 0:
            raise ArgumentError(f"[{op}] output_size must be >= 0, got {output_size!r}")
        out.append(int(given))
    if 0 in out:
        raise ArgumentError(f"[{op}] output_size must be >= 1, got {tuple(out)}")
    return tuple(out)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling of (N, C, H, W) or (C, H, W) to (P, Q) = output_size over PyTorch's
    adaptive windows."""
    op = "adaptive_avg_pool2d"
    x, unbatched = _batched(input, op, 2)
    out_hw = _output_size(output_size, x, op)
    y = _pool.AdaptiveAvgPool2d.apply(x, out_hw=out_hw)
    return y.squeeze(0) if unbatched else y


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling of (N, C, H, W) or (C, H, W) to (P, Q) = output_size over PyTorch's adaptive
    windows; with return_indices also each max's index into the flattened (H * W) plane."""
    op = "adaptive_max_pool2d"
    x, unbatched = _batched(input, op, 2)
    out_hw = _output_size(output_size, x, op)
    y, indices = _pool.AdaptiveMaxPool2d.apply(x, out_hw=out_hw)
    if unbatched:
        y, indices = y.squeeze(0), indices.squeeze(0)
    return (y, indices) if return_indices else y


def adaptive_max_pool2d_with_indices(input: Tensor, output_size, return_indices: bool = False):
    """adaptive_max_pool2d that always returns (output, indices) (PyTorch's name for it)."""
    return adaptive_max_pool2d(input, output_size, True)
