"""Gradient clipping and flat-vector views of parameters (`nn.utils`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Union

from .. import _devices
from .._creation import cat, zeros
from .._tensor import Tensor
from ..autograd import no_grad

__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "parameters_to_vector",
    "vector_to_parameters",
]

Parameters = Union[Tensor, Iterable[Tensor]]


def _as_list(parameters: Parameters) -> list:
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def _vector_norm(a: Any, norm_type: float) -> Any:
    """The `norm_type`-norm of every element of storage array `a`, as a 0-d float64 array on
    `a`'s device (float64 so that large gradients sum without float32 rounding)."""
    xp = _devices.namespace(a)
    a = xp.abs(xp.reshape(xp.astype(a, xp.float64), (-1,)))
    if norm_type == math.inf:
        norm = xp.max(a) if a.shape[0] else xp.sum(a)
    elif norm_type == -math.inf:
        norm = xp.min(a) if a.shape[0] else xp.sum(a)
    elif norm_type == 0:
        norm = xp.sum(xp.astype(a != 0, xp.float64))
    elif norm_type == 1:
        norm = xp.sum(a)
    elif norm_type == 2:
        norm = xp.sqrt(xp.sum(a * a))
    else:
        norm = xp.sum(a**norm_type) ** (1.0 / norm_type)
    return xp.asarray(norm)  # NOTE: NumPy's reductions give scalars, not 0-d arrays


def clip_grad_norm_(
    parameters: Parameters,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale all gradients together so that their joint norm is at most max_norm.

    The norm is taken over every gradient as if concatenated into one vector; gradients are
    multiplied in place by min(1, max_norm / (norm + 1e-6)). Returns the norm before clipping,
    on the gradients' device (the first gradient's, as in PyTorch).

    >>> import fastdl
    >>> w = fastdl.zeros(2, requires_grad=True)
    >>> (w * fastdl.tensor([3.0, 4.0])).sum().backward()
    >>> clip_grad_norm_([w], 1.0).item()
    5.0
    """
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    norm_type = float(norm_type)
    if not grads:
        return zeros(())
    device = grads[0].device
    # Per-gradient norms, then the norm of those: the same as the norm of the concatenation.
    norms = []
    for g in grads:
        norm = _vector_norm(g._data, norm_type)
        if g.device != device:
            norm = Tensor._make(norm).to(device)._data
        norms.append(norm)
    xp = _devices.namespace(norms[0])
    total = _vector_norm(xp.stack(norms), norm_type)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
            "so it cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    # NOTE: the coefficient stays on the device (no host sync), as in PyTorch.
    coef = xp.clip(max_norm / (total + 1e-6), max=1.0)
    with no_grad():
        for g in grads:
            data = g._data
            c = coef if g.device == device else Tensor._make(coef).to(g.device)._data
            data *= _devices.namespace(data).astype(c, data.dtype)
    return Tensor._make(xp.astype(total, grads[0]._data.dtype))


def clip_grad_value_(parameters: Parameters, clip_value: float) -> None:
    """Clamp every gradient elementwise to [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            data = p.grad._data
            data[...] = _devices.namespace(data).clip(data, -clip_value, clip_value)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """One 1-D Tensor holding every parameter, flattened, in order, on their device.

    NOTE: a copy that records no graph (PyTorch's version is differentiable).
    """
    params = _as_list(parameters)
    if not params:
        raise ValueError("[parameters_to_vector] expected at least one parameter")
    with no_grad():
        return cat([p.detach().reshape(-1) for p in params]).contiguous()


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D `vec` into the parameters, in place."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected fastdl.Tensor, but got: {type(vec).__name__}")
    params = _as_list(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(
            f"[vector_to_parameters] expected a 1-D vector of {total} elements, "
            f"got shape {tuple(vec.shape)}"
        )
    offset = 0
    vec = vec.detach()
    for p in params:
        n = p.numel()
        with no_grad():
            p.copy_(vec[offset : offset + n].reshape(p.shape))
        offset += n
