"""nn.functional: the norm family (PyTorch's names and signatures); nn/functional.py re-exports
everything in __all__.

batch_norm, layer_norm and group_norm normalise with one op (fastdl/ops/norm.py's Standardize)
and apply the affine weight and bias as broadcasting tensor arithmetic. dropout2d zeroes whole
channels. Reference-quality: a fused C++ kernel per norm is a later step.
"""

from __future__ import annotations

import math
import warnings

from .._args import float_arg, tensor_arg
from .._errors import ArgumentError, ArgumentTypeError
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad
from ..ops.norm import Standardize
from . import functional as _F  # NOTE: partly initialised here; its helpers are read at call time

__all__ = ["batch_norm", "layer_norm", "group_norm", "dropout2d"]


def _float_input(input, op):
    return float_arg(input, op, "input")


def _param(x, t, op, name, shape):
    """Check an optional weight or bias: a tensor of `shape`, of x's dtype."""
    if t is None:
        return None
    tensor_arg(t, op, name)
    _F._same_dtype(x, t, op, name)
    if tuple(t.shape) != tuple(shape):
        raise ArgumentError(
            f"[{op}] expected {name} of shape {tuple(shape)}, got {tuple(t.shape)}"
        )
    return t


def _affine(y, weight, bias, shape):
    """y * weight + bias, with weight and bias viewed as `shape` (broadcast against y)."""
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise (N, C, *) input per channel C. In training, with the batch's mean and biased
    variance, and (when given) running_mean/running_var are updated in place:
    running = (1 - momentum) * running + momentum * batch statistic, with the unbiased variance
    (PyTorch's rule). Otherwise with running_mean and running_var."""
    op = "batch_norm"
    _float_input(input, op)
    if input.ndim < 2:
        raise ArgumentError(f"[{op}] expected an input of 2 or more dims (N, C, *), got shape "
                            f"{tuple(input.shape)}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None:
            tensor_arg(t, op, name)
            if tuple(t.shape) != (c,):
                raise ArgumentError(
                    f"[{op}] expected {name} of shape ({c},), got {tuple(t.shape)}"
                )
    _param(input, weight, op, "weight", (c,))
    _param(input, bias, op, "bias", (c,))
    shape = (1, c) + (1,) * (input.ndim - 2)
    if training:
        count = input.numel() // c if c else 0
        if count == 0:  # an empty batch: an empty output, the running statistics kept (PyTorch's)
            return _affine(input, weight, bias, shape)
        if count == 1:
            raise ArgumentError(
                "[batch_norm] expected more than 1 value per channel when training, got input "
                f"size {list(input.shape)}"
            )
        axes = (0,) + tuple(range(2, input.ndim))
        y, mean, var = Standardize.apply(input, axes=axes, eps=float(eps))
        with no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(mean.reshape(c) * momentum)
            if running_var is not None:
                unbiased = var.reshape(c) * (count / (count - 1))
                running_var.mul_(1 - momentum).add_(unbiased * momentum)
        return _affine(y, weight, bias, shape)
    if running_mean is None or running_var is None:
        raise ArgumentError(
            f"[{op}] running_mean and running_var must be given when training=False"
        )
    # Eval: an affine map with the running statistics.
    invstd = (running_var.reshape(shape) + eps).rsqrt()
    y = (input - running_mean.reshape(shape)) * invstd
    return _affine(y, weight, bias, shape)


def _normalized_shape(normalized_shape, op):
    if isinstance(normalized_shape, int) and not isinstance(normalized_shape, bool):
        return (normalized_shape,)
    try:
        return tuple(int(s) for s in normalized_shape)
    except TypeError:
        raise ArgumentTypeError(
            f"[{op}] normalized_shape must be an int or a sequence of ints, got "
            f"{normalized_shape!r}"
        ) from None


def layer_norm(
    input: Tensor,
    normalized_shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the last len(normalized_shape) dims of input, which must equal
    normalized_shape; weight and bias have normalized_shape."""
    op = "layer_norm"
    _float_input(input, op)
    shape = _normalized_shape(normalized_shape, op)
    d = len(shape)
    if d == 0 or input.ndim < d or tuple(input.shape[input.ndim - d:]) != shape:
        raise ArgumentError(
            f"[{op}] given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(map(str, shape))}], but got input of size {list(input.shape)}"
        )
    _param(input, weight, op, "weight", shape)
    _param(input, bias, op, "bias", shape)
    axes = tuple(range(input.ndim - d, input.ndim))
    y, _, _ = Standardize.apply(input, axes=axes, eps=float(eps))
    return _affine(y, weight, bias, shape)


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise (N, C, *) input over each of num_groups groups of C // num_groups channels
    (and all of *); weight and bias are per channel (C,)."""
    op = "group_norm"
    _float_input(input, op)
    if input.ndim < 2:
        raise ArgumentError(f"[{op}] expected an input of 2 or more dims (N, C, *), got shape "
                            f"{tuple(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise ArgumentError(
            f"[{op}] expected number of channels in input to be divisible by num_groups, but got "
            f"input of shape {list(input.shape)} and num_groups={num_groups}"
        )
    _param(input, weight, op, "weight", (c,))
    _param(input, bias, op, "bias", (c,))
    grouped = input.reshape(n, num_groups, math.prod(input.shape[1:]) // num_groups)
    y, _, _ = Standardize.apply(grouped, axes=(2,), eps=float(eps))
    y = y.reshape(input.shape)
    return _affine(y, weight, bias, (1, c) + (1,) * (input.ndim - 2))


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zeroes whole channels: each (n, c) plane of (N, C, H, W) input with probability p, and
    scales the rest by 1 / (1 - p). NOTE: as PyTorch, a 3-D input is taken as (N, C, L)."""
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"[dropout2d] probability must be in [0, 1], got {p}")
    _float_input(input, "dropout2d")
    if input.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated and "
            "will result in an error in a future release. To retain the behavior and silence "
            "this warning, please use dropout instead.", UserWarning, stacklevel=2,
        )
    elif input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), where C is "
            "the channel dim.", UserWarning, stacklevel=2,
        )
    if not training or p == 0.0 or input.ndim < 2:
        return input
    from .._creation import ones

    # One draw per (n, c), as Dropout draws them (host generator), broadcast over the plane.
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    with no_grad():
        mask = _F.dropout(ones(*shape, dtype=input.dtype, device=input.device), p, True)
    if inplace:
        return input.mul_(mask)
    return input * mask
