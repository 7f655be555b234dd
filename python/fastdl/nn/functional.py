"""The functional forms of fastdl.nn's layers and losses, with PyTorch's signatures.

Each function checks its arguments (errors name the op and the expected and actual values) and
applies one differentiable op from fastdl/_functions.py.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import _devices
from .._args import check_reduction, float_arg, pair, tensor_arg
from .. import _functions as fn
from .._random import generator
from .._errors import ArgumentError, ArgumentIndexError, ArgumentTypeError
from .._tensor import Tensor, _dt, _promote

__all__ = [
    "linear", "conv2d", "max_pool2d", "relu", "sigmoid", "tanh", "leaky_relu", "softmax",
    "log_softmax", "dropout", "flatten", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "one_hot", "relu_",
    "leaky_relu_", "max_pool2d_with_indices",
]

def _legacy_reduction(size_average, reduce, reduction):
    """PyTorch's rule for the deprecated size_average/reduce arguments: either given overrides
    `reduction` (reduce=False -> 'none'; else size_average=False -> 'sum'; else 'mean')."""
    if size_average is None and reduce is None:
        return reduction
    if reduce is None or reduce:
        reduction = "mean" if size_average is None or size_average else "sum"
    else:
        reduction = "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{reduction}' "
        "instead.", UserWarning, stacklevel=3,
    )
    return reduction


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    return check_reduction(reduction, op)


def _same_dtype(x, other, op, name):
    """PyTorch's rule: a layer's input and its weight/bias share one dtype (no silent cast)."""
    if other is not None and other._data.dtype != x._data.dtype:
        raise ArgumentTypeError(
            f"[{op}] input and {name} must have the same dtype, got input {x.dtype} and "
            f"{name} {other.dtype}; convert one (e.g. input.float(), or model.double())"
        )
    return other


# ---------------------------------------------------------------- layers


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input @ weight.T + bias; input (..., in), weight (out, in), bias (out,)."""
    float_arg(input, "linear", "input")
    float_arg(weight, "linear", "weight")
    if weight.ndim != 2:
        raise ArgumentError(f"[linear] weight must be 2-D (out, in), got shape {tuple(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ArgumentError(
            f"[linear] input has {input.shape[-1] if input.ndim else 0} features in its last dim, "
            f"weight expects {weight.shape[1]} (input {tuple(input.shape)}, weight {tuple(weight.shape)})"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ArgumentError(f"[linear] bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    return fn.Linear.apply(
        input, _same_dtype(input, weight, "linear", "weight"),
        _same_dtype(input, bias, "linear", "bias"),
    )


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D cross-correlation; input (N, C, H, W) or (C, H, W), weight (K, C/groups, R, S),
    bias (K,); dilation spaces the kernel's taps, groups splits the channels (PyTorch's)."""
    op = "conv2d"
    float_arg(input, op, "input")
    float_arg(weight, op, "weight")
    dilation = pair(dilation, op, "dilation")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise ArgumentTypeError(f"[{op}] groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ArgumentError(f"[{op}] non-positive groups is not supported, got groups={groups}")
    if min(dilation) < 1:
        raise ArgumentError(f"[{op}] dilation must be >= 1, got {dilation}")
    unbatched = input.ndim == 3
    if unbatched:
        input = input.unsqueeze(0)
    if input.ndim != 4:
        raise ArgumentError(f"[{op}] expected a 3-D or 4-D input (N, C, H, W), got shape {tuple(input.shape)}")
    if weight.ndim != 4:
        raise ArgumentError(f"[{op}] expected a 4-D weight (K, C, R, S), got shape {tuple(weight.shape)}")
    n, c, h, w = input.shape
    k, wc, r, s = weight.shape
    if (h == 0 or w == 0) and n and c:
        raise ArgumentError(  # PyTorch's rule (a RuntimeError there too)
            f"[{op}] only zero batch or zero channel inputs are supported, got input shape "
            f"{tuple(input.shape)}"
        )
    if k == 0:  # PyTorch's rule (a RuntimeError there too)
        raise ArgumentError(f"[{op}] expected a weight with at least 1 output channel, got shape "
                            f"{tuple(weight.shape)}")
    if wc * groups != c:
        raise ArgumentError(
            f"[{op}] weight has {wc * groups} input channels, input has {c}"
            + (f" (groups={groups}, weight of size {tuple(weight.shape)})" if groups != 1 else "")
        )
    if k % groups:
        raise ArgumentError(
            f"[{op}] given groups={groups}, expected weight to be divisible by {groups} at "
            f"dimension 0, got weight of size {tuple(weight.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (k,):
        raise ArgumentError(f"[{op}] bias must have shape ({k},), got {tuple(bias.shape)}")
    stride = pair(stride, op, "stride")
    if min(stride) < 1:
        raise ArgumentError(f"[{op}] stride must be >= 1, got {stride}")
    # The dilated kernel's extent.
    rd, sd = dilation[0] * (r - 1) + 1, dilation[1] * (s - 1) + 1
    crop = (0, 0)  # leading output rows/columns to drop (padding='same', odd total padding)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ArgumentError(f"[{op}] padding='same' is not supported for strided convolutions")
            # NOTE: PyTorch pads total // 2 before and the rest after; an odd total is padded
            # by one more on both sides here, and the first output row/column dropped.
            padding = (rd // 2, sd // 2)
            crop = ((rd - 1) % 2, (sd - 1) % 2)
        else:
            raise ArgumentError(f"[{op}] padding must be 'valid', 'same', an int or a pair, got {padding!r}")
    padding = pair(padding, op, "padding")
    if min(padding) < 0:
        raise ArgumentError(f"[{op}] padding must be >= 0, got {padding}")
    if rd > h + 2 * padding[0] or sd > w + 2 * padding[1]:
        raise ArgumentError(
            f"[{op}] kernel size ({rd}, {sd}) is larger than the padded input "
            f"({h + 2 * padding[0]}, {w + 2 * padding[1]})"
        )
    weight, bias = _same_dtype(input, weight, op, "weight"), _same_dtype(input, bias, op, "bias")
    if groups == 1 and dilation == (1, 1):
        y = fn.Conv2d.apply(input, weight, bias, stride=stride, padding=padding)
    else:
        from ..ops.conv import Conv2dGrouped

        y = Conv2dGrouped.apply(
            input, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups
        )
    if crop != (0, 0):
        y = y[:, :, crop[0]:, crop[1]:]
    if c == 0:
        # NOTE: PyTorch's deliberate special case (Convolution.cpp): an input with no channels
        # gives an output with no channels, (N, 0, P, Q), whatever K is; weight and bias still
        # get their (zero) gradients.
        y = y[:, :0]
    return y.squeeze(0) if unbatched else y


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling over (N, C, H, W) or (C, H, W); stride defaults to kernel_size."""
    op = "max_pool2d"
    float_arg(input, op, "input")
    kernel = pair(kernel_size, op, "kernel_size")
    stride = kernel if stride is None or stride == [] else pair(stride, op, "stride")
    padding = pair(padding, op, "padding")
    if pair(dilation, op, "dilation") != (1, 1) or ceil_mode:
        raise NotImplementedError(f"[{op}] dilation != 1 and ceil_mode=True are not supported")
    if min(kernel) < 1 or min(stride) < 1:
        raise ArgumentError(f"[{op}] kernel_size and stride must be >= 1, got {kernel} and {stride}")
    if min(padding) < 0 or padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ArgumentError(
            f"[{op}] padding must be >= 0 and at most half the kernel size {kernel}, got {padding}"
        )
    unbatched = input.ndim == 3
    if unbatched:
        input = input.unsqueeze(0)
    if input.ndim != 4:
        raise ArgumentError(f"[{op}] expected a 3-D or 4-D input (N, C, H, W), got shape {tuple(input.shape)}")
    if 0 in input.shape[1:]:  # PyTorch's rule: only the batch may be empty
        raise ArgumentError(
            f"[{op}] expected an input with non-zero channels, height and width (an empty batch "
            f"is fine), got shape {tuple(input.shape)}"
        )
    h, w = input.shape[2] + 2 * padding[0], input.shape[3] + 2 * padding[1]
    if kernel[0] > h or kernel[1] > w:
        raise ArgumentError(f"[{op}] kernel size {kernel} is larger than the padded input ({h}, {w})")
    y, indices = fn.MaxPool2d.apply(input, kernel_size=kernel, stride=stride, padding=padding)
    if return_indices:
        if unbatched:
            return y.squeeze(0), indices.squeeze(0)
        return y, indices
    return y.squeeze(0) if unbatched else y


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False) -> tuple:
    """max_pool2d that always returns (output, indices) (PyTorch's name for it)."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode,
                      return_indices=True)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    if inplace:
        return tensor_arg(input, "relu", "input").relu_()
    return tensor_arg(input, "relu", "input").relu()


def relu_(input: Tensor) -> Tensor:
    """relu written into `input`'s storage (PyTorch's in-place rules); returns `input`."""
    return tensor_arg(input, "relu_", "input").relu_()


def sigmoid(input: Tensor) -> Tensor:
    return tensor_arg(input, "sigmoid", "input").sigmoid()


def tanh(input: Tensor) -> Tensor:
    return tensor_arg(input, "tanh", "input").tanh()


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    if inplace:
        return leaky_relu_(input, negative_slope)
    return fn.LeakyReLU.apply(float_arg(input, "leaky_relu", "input"), slope=negative_slope)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """leaky_relu written into `input`'s storage (PyTorch's in-place rules); returns `input`."""
    float_arg(input, "leaky_relu_", "input")

    def fast(data):
        data[...] = _devices.namespace(data).where(data < 0, data * negative_slope, data)

    return input._inplace(
        "leaky_relu_",
        lambda src: fn.LeakyReLUInplace.apply(src, slope=negative_slope),
        fast,
    )


def _softmax_dim(dim, ndim):
    # PyTorch's legacy rule when dim is omitted.
    return dim if dim is not None else (0 if ndim in (0, 1, 3) else 1)


def softmax(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    x = input if dtype is None else input.to(dtype)
    return x.softmax(_softmax_dim(dim, x.ndim))


def log_softmax(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    x = input if dtype is None else input.to(dtype)
    return x.log_softmax(_softmax_dim(dim, x.ndim))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"[dropout] probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if inplace:
        # The same draws as the out-of-place op, multiplied into the storage (recorded as an
        # in-place multiplication when autograd needs it).
        float_arg(input, "dropout", "input")
        keep = generator().random(input.shape) >= p  # drawn on the host, as Dropout's
        scale = (keep / (1 - p) if p < 1 else keep).astype(input.dtype)
        return input.mul_(Tensor._make(scale).to(input.device))
    return fn.Dropout.apply(float_arg(input, "dropout", "input"), p=p, generator=generator())


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return input.flatten(start_dim, end_dim)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """(...,) int64 class indices -> (..., num_classes) int64 one-hot rows, on the indices'
    device."""
    from .._creation import arange

    labels = tensor if isinstance(tensor, Tensor) else Tensor._make(np.asarray(tensor))
    if _dt(labels._data).kind not in "iu":
        raise ArgumentTypeError(f"[one_hot] expected integer class indices, got {labels.dtype}")
    empty = labels.numel() == 0
    if num_classes == -1:
        if empty:  # PyTorch's rule
            raise ArgumentError("[one_hot] can not infer the number of classes from an empty "
                                "tensor: pass num_classes")
        num_classes = int(labels.max()) + 1
    if not empty:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            raise ArgumentError(
                f"[one_hot] class values must be in [0, {num_classes}), got min {lo}, max {hi}"
            )
    classes = arange(num_classes, device=labels.device)
    return (labels.unsqueeze(-1) == classes).long()


# ---------------------------------------------------------------- losses


def _class_targets(input, target, op, ignore_index):
    """Move the class dim last: (N, C, d1, ...) -> (N*d1*..., C); index targets -> (N*d1*...,)."""
    c = input.shape[1] if input.ndim > 1 else input.shape[0]
    if input.ndim == 1:
        logits = input.unsqueeze(0)
    elif input.ndim == 2:
        logits = input
    else:
        dims = (0,) + tuple(range(2, input.ndim)) + (1,)
        logits = input.permute(*dims).reshape(-1, c)
    expected = (input.shape[0],) + tuple(input.shape[2:]) if input.ndim > 1 else ()
    if target.dtype.kind == "f":
        if tuple(target.shape) != tuple(input.shape):
            if tuple(target.shape) == expected:
                raise ArgumentError(
                    f"[{op}] a {target.dtype} target of shape {expected} looks like class labels: "
                    "targets must be int64 class indices (use target.long()) or class "
                    f"probabilities of the input's shape {tuple(input.shape)}"
                )
            raise ArgumentError(
                f"[{op}] probability target must have the input's shape {tuple(input.shape)}, "
                f"got {tuple(target.shape)} (class-index targets are int64 of shape {expected})"
            )
        dt = _promote(_dt(input._data), _dt(target._data))  # PyTorch promotes here
        if dt != _dt(input._data):
            logits = logits.to(dt)
        t = target.to(dt)
        if input.ndim == 1:
            t = t.unsqueeze(0)
        elif input.ndim > 2:
            t = t.permute(*((0,) + tuple(range(2, input.ndim)) + (1,))).reshape(-1, c)
        return logits, t, None
    if target.dtype.kind not in "iu":
        raise ArgumentTypeError(f"[{op}] target must hold class indices (int64) or probabilities, got {target.dtype}")
    if tuple(target.shape) != expected:
        raise ArgumentError(
            f"[{op}] class-index target must have shape {expected} for input {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        )
    data = target._data
    xp = _devices.namespace(data)
    labels = xp.reshape(data, (-1,))
    if _dt(labels) != np.int64:
        labels = xp.astype(labels, _devices.library(labels).dtype(np.dtype(np.int64)))
    labels = _devices.library(labels).contiguous(labels)
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= c))
    if bool(xp.any(bad)):
        host = target.detach().reshape(-1).cpu().numpy()  # the error's values, on the host
        first = host[(host != ignore_index) & ((host < 0) | (host >= c))][0]
        raise ArgumentIndexError(f"[{op}] target {int(first)} is out of range for {c} classes")
    return logits, Tensor._make(labels), expected


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0) -> Tensor:
    """Softmax cross-entropy on logits (N, C) or (N, C, d1, ...) or (C,), with class-index
    targets (int64) or class-probability targets (float, same shape as input), as in PyTorch."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "cross_entropy"
    float_arg(input, op, "input")
    tensor_arg(target, op, "target")
    check_reduction(reduction, op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ArgumentError(f"[{op}] label_smoothing must be in [0, 1], got {label_smoothing}")
    if input.ndim == 0:
        raise ArgumentError(f"[{op}] input must have at least 1 dimension (classes), got a 0-d tensor")
    c = input.shape[1] if input.ndim > 1 else input.shape[0]
    w = None
    if weight is not None:
        if tuple(weight.shape) != (c,):
            raise ArgumentError(f"[{op}] weight must have shape ({c},), got {tuple(weight.shape)}")
        w = weight.detach().to(input.dtype)._data
    logits, tgt, index_shape = _class_targets(input, target, op, ignore_index)
    w_tensor = None if w is None else Tensor._make(_devices.library(w).contiguous(w))
    eps = float(label_smoothing)
    if eps and index_shape is None:
        tgt = tgt * (1 - eps) + eps / max(c, 1)  # smoothed probabilities, as PyTorch does
    loss = fn.CrossEntropy.apply(logits, tgt, w_tensor, reduction=reduction, ignore_index=ignore_index)
    if eps and index_shape is not None:
        loss = (1 - eps) * loss + eps * _uniform_smoothing_loss(logits, tgt._data, w, reduction, ignore_index)
    if reduction == "none":
        shape = index_shape if index_shape is not None else (
            (input.shape[0],) + tuple(input.shape[2:]) if input.ndim > 1 else ()
        )
        loss = loss.reshape(shape)
    return loss


def _uniform_smoothing_loss(logits, labels, w, reduction, ignore_index):
    """PyTorch's label-smoothing term for index targets: -sum_c w_c log p_ic / C per sample,
    zero for ignored samples; "mean" divides by the same weight sum as the NLL term."""
    c = logits.shape[1]
    logp = logits.log_softmax(1)
    if w is not None:
        logp = logp * Tensor._make(w)
    keep = Tensor._make(labels != ignore_index)
    per_sample = -logp.sum(1) / c * keep.to(logits.dtype)
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    denom = _kept_weight(labels, w, ignore_index)
    return per_sample.sum() / denom if denom else per_sample.sum() * float("nan")


def _kept_weight(labels, w, ignore_index) -> float:
    """The number of labels that are not ignore_index, or the sum of their class weights `w`
    (the denominator of a "mean" reduction), read back as a Python float."""
    xp = _devices.namespace(labels)
    keep = labels != ignore_index
    if w is None:
        return float(xp.sum(xp.astype(keep, xp.int64)))
    picked = xp.take(w, xp.where(keep, labels, xp.zeros_like(labels)))
    return float(xp.sum(xp.where(keep, picked, xp.zeros_like(picked))))


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean") -> Tensor:
    """Negative log-likelihood on log-probabilities (N, C) or (N, C, d1, ...), int64 targets."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "nll_loss"
    float_arg(input, op, "input")
    tensor_arg(target, op, "target")
    check_reduction(reduction, op)
    if input.ndim < 1:
        raise ArgumentError(f"[{op}] input must have at least 1 dimension")
    c = input.shape[1] if input.ndim > 1 else input.shape[0]
    logp, tgt, index_shape = _class_targets(input, target, op, ignore_index)
    if index_shape is None:
        raise ArgumentTypeError(f"[{op}] target must hold class indices (int64), got {target.dtype}")
    w = None
    if weight is not None:
        if tuple(weight.shape) != (c,):
            raise ArgumentError(f"[{op}] weight must have shape ({c},), got {tuple(weight.shape)}")
        w = weight.detach().to(input.dtype)._data
    per_sample = fn.NLLLoss.apply(logp, tgt, weight=w, ignore_index=ignore_index)
    if reduction == "none":
        return per_sample.reshape(index_shape)
    if reduction == "sum":
        return per_sample.sum()
    denom = _kept_weight(tgt._data, w, ignore_index)
    return per_sample.sum() / denom if denom else per_sample.sum() * float("nan")


def _loss_pair(input, target, op, dtypes="promote"):
    """(input, target) of one shape and one dtype, by the loss's PyTorch rule: "promote" (to
    the common dtype: mse, l1), "same" (must match: binary_cross_entropy) or "target" (the
    target's float dtype: binary_cross_entropy_with_logits, a PyTorch quirk kept)."""
    float_arg(input, op, "input")
    tensor_arg(target, op, "target")
    if tuple(input.shape) != tuple(target.shape):
        raise ArgumentError(
            f"[{op}] input and target must have the same shape, got {tuple(input.shape)} "
            f"and {tuple(target.shape)}"
        )
    a, b = _dt(input._data), _dt(target._data)
    if a == b:
        return input, target
    if dtypes == "promote":
        dt = _promote(a, b)
    elif dtypes == "target" and b.kind == "f":
        dt = b
    else:
        raise ArgumentTypeError(
            f"[{op}] input and target must have the same dtype, got {input.dtype} and "
            f"{target.dtype}"
        )
    return input.to(dt), target.to(dt)


def _weighted_reduce(loss, weight, reduction, op):
    """PyTorch's rule for an elementwise `weight` (same shape as the input): 'mean' divides
    the weighted sum by the sum of the weights."""
    if weight is None:
        return _reduce(loss, reduction, op)
    tensor_arg(weight, op, "weight")
    if tuple(weight.shape) != tuple(loss.shape):
        raise ArgumentError(
            f"[{op}] weight and input must have the same size, got {tuple(weight.shape)} and "
            f"{tuple(loss.shape)}"
        )
    weight = weight.to(loss.dtype)
    weighted = loss * weight
    if reduction == "mean":
        return weighted.sum() / weight.sum()
    return _reduce(weighted, reduction, op)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean",
             weight=None) -> Tensor:
    reduction = _legacy_reduction(size_average, reduce, reduction)
    input, target = _loss_pair(input, target, "mse_loss")
    return _weighted_reduce(fn.SquaredError.apply(input, target), weight, reduction, "mse_loss")


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
            weight=None) -> Tensor:
    reduction = _legacy_reduction(size_average, reduce, reduction)
    input, target = _loss_pair(input, target, "l1_loss")
    return _weighted_reduce((input - target).abs(), weight, reduction, "l1_loss")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean") -> Tensor:
    """BCE on probabilities in [0, 1] (logs clamped at -100, as in PyTorch)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "binary_cross_entropy"
    input, target = _loss_pair(input, target, op, dtypes="same")
    p = input._data
    if input.numel() and not bool(_devices.namespace(p).all((p >= 0) & (p <= 1))):
        raise ArgumentError(f"[{op}] all elements of input should be between 0 and 1")
    loss = fn.BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, op)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None) -> Tensor:
    """Sigmoid + BCE in one stable op (no overflow for logits of any magnitude)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "binary_cross_entropy_with_logits"
    input, target = _loss_pair(input, target, op, dtypes="target")
    pw = None
    if pos_weight is not None:
        pw_t = pos_weight if isinstance(pos_weight, Tensor) else Tensor._make(np.asarray(pos_weight))
        pw = pw_t.detach().to(input.device, input.dtype)._data
    loss = fn.BinaryCrossEntropyWithLogits.apply(input, target, pos_weight=pw)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, op)


# ---------------------------------------------------------------- the other families
# Each family's functional forms live in their own module; they are re-exported here.
from . import (  # noqa: E402
    _functional_act, _functional_conv, _functional_loss, _functional_norm, _functional_pool,
    _functional_rnn,
)

for _family in (
    _functional_act, _functional_conv, _functional_loss, _functional_norm, _functional_pool,
    _functional_rnn,
):
    globals().update({name: getattr(_family, name) for name in _family.__all__})
    __all__ += [name for name in _family.__all__ if name not in __all__]
del _family

