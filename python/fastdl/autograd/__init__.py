"""Reverse-mode automatic differentiation on a dynamic graph."""

from .function import Function, FunctionCtx, Op
from .grad_mode import (
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
    set_grad_enabled,
)

__all__ = [
    "Function", "FunctionCtx", "Op", "no_grad", "enable_grad", "set_grad_enabled",
    "inference_mode", "is_grad_enabled", "is_inference_mode_enabled", "backward",
]


def backward(tensors, grad_tensors=None, retain_graph=False):
    """Compute the gradients of `tensors` (a Tensor or a sequence) with respect to the leaves."""
    from .._tensor import Tensor

    if isinstance(tensors, Tensor):
        tensors = [tensors]
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors]
    for t, g in zip(tensors, grad_tensors):
        t.backward(g, retain_graph=retain_graph)
