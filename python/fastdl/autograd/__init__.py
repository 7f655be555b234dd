"""Reverse-mode automatic differentiation on a dynamic graph."""

from .engine import backward, grad
from .function import Function, FunctionCtx, Op
from .grad_mode import (
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
    set_grad_enabled,
)

__all__ = [
    "Function", "FunctionCtx", "Op", "no_grad", "enable_grad", "set_grad_enabled",
    "inference_mode", "is_grad_enabled", "is_inference_mode_enabled", "backward", "grad",
]
