"""Gradient clipping and flat-vector views of parameters (`nn.utils`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Union

import numpy as np

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


def clip_grad_norm_(
    parameters: Parameters,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale all gradients together so that their joint norm is at most max_norm.

    The norm is taken over every gradient as if concatenated into one vector; gradients are
    multiplied in place by min(1, max_norm / (norm + 1e-6)). Returns the norm before clipping.

    >>> import fastdl
    >>> w = fastdl.zeros(2, requires_grad=True)
    >>> (w * fastdl.tensor([3.0, 4.0])).sum().backward()
    >>> clip_grad_norm_([w], 1.0).item()
    5.0
    """
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    norm_type = float(norm_type)
    if not grads:
        return Tensor._make(np.zeros((), dtype=np.float32))
    dtype = grads[0]._data.dtype
    # Per-gradient norms, then the norm of those: the same as the norm of the concatenation.
    norms = np.array(
        [np.linalg.norm(g._data.reshape(-1).astype(np.float64), ord=norm_type) for g in grads]
    )
    total = float(np.linalg.norm(norms, ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
            "so it cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    coef = min(max_norm / (total + 1e-6), 1.0)
    with no_grad():
        for g in grads:
            g._data *= g._data.dtype.type(coef)
    return Tensor._make(np.array(total, dtype=dtype))


def clip_grad_value_(parameters: Parameters, clip_value: float) -> None:
    """Clamp every gradient elementwise to [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            np.clip(p.grad._data, -clip_value, clip_value, out=p.grad._data)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """One 1-D Tensor holding every parameter, flattened, in order.

    NOTE: a copy that records no graph (PyTorch's version is differentiable).
    """
    arrays = [p._data.reshape(-1) for p in _as_list(parameters)]
    if not arrays:
        raise ValueError("[parameters_to_vector] expected at least one parameter")
    return Tensor._make(np.concatenate(arrays))


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D `vec` into the parameters, in place."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected fastdl.Tensor, but got: {type(vec).__name__}")
    params = _as_list(parameters)
    total = sum(p._data.size for p in params)
    if vec._data.ndim != 1 or vec._data.size != total:
        raise ValueError(
            f"[vector_to_parameters] expected a 1-D vector of {total} elements, "
            f"got shape {tuple(vec._data.shape)}"
        )
    offset = 0
    for p in params:
        n = p._data.size
        with no_grad():
            p.copy_(vec._data[offset : offset + n].reshape(p._data.shape))
        offset += n
