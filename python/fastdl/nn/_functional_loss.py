"""nn.functional: the loss family (PyTorch's names and signatures); nn/functional.py re-exports
everything in __all__.

Composites of differentiable Tensor ops, so they run on every device and get their gradients
(for input and target) from autograd.
"""

from __future__ import annotations

import warnings

from .._args import float_arg, tensor_arg
from .._creation import ones_like, zeros_like
from .._errors import ArgumentError
from .._tensor import Tensor
from . import functional as _F

__all__ = ["cosine_embedding_loss", "huber_loss", "kl_div", "smooth_l1_loss"]


def _where(cond: Tensor, a: Tensor, b: Tensor) -> Tensor:
    from .. import where  # NOTE: imported late; fastdl's package imports nn

    return where(cond, a, b)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
                   beta=1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = input - target).

    >>> import fastdl
    >>> smooth_l1_loss(fastdl.tensor([0.0, 3.0]), fastdl.zeros(2), reduction="none").tolist()
    [0.0, 2.5]
    """
    reduction = _F._legacy_reduction(size_average, reduce, reduction)
    if beta < 0:
        raise ArgumentError(f"[smooth_l1_loss] beta must be non-negative, got {beta}")
    if beta == 0:  # PyTorch's rule: plain L1
        return _F.l1_loss(input, target, reduction=reduction)
    input, target = _F._loss_pair(input, target, "smooth_l1_loss")
    d = (input - target).abs()
    loss = _where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _F._reduce(loss, reduction, "smooth_l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None) -> Tensor:
    """0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere (d = input - target).

    >>> import fastdl
    >>> huber_loss(fastdl.tensor([0.5, 3.0]), fastdl.zeros(2), reduction="none").tolist()
    [0.125, 2.5]
    """
    if delta <= 0:
        raise ArgumentError(f"[huber_loss] delta must be positive, got {delta}")
    input, target = _F._loss_pair(input, target, "huber_loss")
    d = (input - target).abs()
    loss = _where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    return _F._weighted_reduce(loss, weight, reduction, "huber_loss")


def kl_div(input, target, size_average=None, reduce=None, reduction="mean",
           log_target=False) -> Tensor:
    """Pointwise KL divergence target * (log target - input), input being log-probabilities
    (target too when log_target); reduction 'batchmean' divides the sum by the batch size.

    >>> import fastdl
    >>> kl_div(fastdl.tensor([0.0]), fastdl.tensor([1.0]), reduction="sum").item()
    0.0
    """
    op = "kl_div"
    if size_average is not None or reduce is not None:
        reduction = _F._legacy_reduction(size_average, reduce, reduction)
    elif reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.", UserWarning, stacklevel=2,
        )
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ArgumentError(
            f"[{op}] reduction must be one of ('none', 'batchmean', 'sum', 'mean'), got "
            f"{reduction!r}"
        )
    input, target = _F._loss_pair(input, target, op)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # xlogy(t, t) - t * input: 0 where t == 0 (a NaN for t < 0 stays, as PyTorch's)
        safe = _where(target == 0, ones_like(target), target)
        loss = target * safe.log() - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim != 0 else total
    return _F._reduce(loss, reduction, op)


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean") -> Tensor:
    """1 - cos(x1, x2) where target is 1, max(0, cos(x1, x2) - margin) where it is -1.

    >>> import fastdl
    >>> x = fastdl.tensor([[1.0, 0.0]])
    >>> cosine_embedding_loss(x, x, fastdl.tensor([1])).item()
    0.0
    """
    op = "cosine_embedding_loss"
    reduction = _F._legacy_reduction(size_average, reduce, reduction)
    float_arg(input1, op, "input1")
    float_arg(input2, op, "input2")
    tensor_arg(target, op, "target")
    if target.ndim not in (0, 1):
        raise ArgumentError(
            f"[{op}] 0D or 1D target tensor expected, multi-target not supported, got "
            f"{target.ndim}D"
        )
    want = target.ndim + 1
    if input1.ndim != want or input2.ndim != want:
        raise ArgumentError(
            f"[{op}] {target.ndim}D target tensor expects {want}D input tensors, but found "
            f"inputs with sizes {tuple(input1.shape)} and {tuple(input2.shape)}"
        )
    if tuple(input1.shape) != tuple(input2.shape):
        raise ArgumentError(
            f"[{op}] input1 and input2 must have the same size, got {tuple(input1.shape)} and "
            f"{tuple(input2.shape)}"
        )
    if target.ndim == 1 and target.shape[0] != input1.shape[0]:
        raise ArgumentError(
            f"[{op}] the size of target ({target.shape[0]}) must match the batch size of the "
            f"inputs ({input1.shape[0]})"
        )
    eps = 1e-12  # PyTorch's EPSILON
    dim = input1.ndim - 1
    prod = (input1 * input2).sum(dim)
    mag1 = (input1 * input1).sum(dim) + eps
    mag2 = (input2 * input2).sum(dim) + eps
    cos = prod / (mag1 * mag2).sqrt()
    zeros = zeros_like(cos)
    pos = _where(target == 1, 1 - cos, zeros)
    neg = _where(target == -1, (cos - margin).clamp(min=0), zeros)
    return _F._reduce(pos + neg, reduction, op)
