"""cpu backend: fused softmax cross-entropy forward and backward (csrc/cpu/cross_entropy.cpp)."""

from __future__ import annotations

import numpy as np

from ... import _C
from ._arrays import f32 as _f32
from ._arrays import i64

__all__ = ["cross_entropy_forward", "cross_entropy_backward"]


def _target(target):
    # Integer targets are class indices (int64); anything else is class probabilities (float32),
    # as in the reference.
    target = np.asarray(target)
    if np.issubdtype(target.dtype, np.integer):
        return i64(target)
    return _f32(target)


def cross_entropy_forward(
    logits: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> tuple[np.ndarray, np.ndarray]:
    """logits (N, C) -> (loss, log_probs); loss is (N,) for reduction "none", else 0-d."""
    w = None if weight is None else _f32(weight)
    return _C.cross_entropy_forward(_f32(logits), _target(target), w, reduction, int(ignore_index))


def cross_entropy_backward(
    dloss: np.ndarray,
    log_probs: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> np.ndarray:
    """dloss ((N,) for "none", else 0-d) and the forward's log_probs (N, C) -> dlogits (N, C)."""
    dloss = _f32(dloss)  # keeps a 0-d dloss 0-d
    w = None if weight is None else _f32(weight)
    return _C.cross_entropy_backward(
        dloss, _f32(log_probs), _target(target), w, reduction, int(ignore_index)
    )
