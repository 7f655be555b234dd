"""cuda backend: fused softmax cross-entropy forward and backward (csrc/cuda/cross_entropy.cu).
NOTE: an index target outside [0, C) that is not ignore_index gives a NaN loss here (the CPU
raises ValueError; checking here would need a synchronisation)."""

from __future__ import annotations

import numpy as np

from ._arrays import cupy, f32, i64, kernels, stream

__all__ = ["cross_entropy_backward", "cross_entropy_forward"]


def _target(target):
    # Integer targets are class indices (int64); anything else class probabilities (float32).
    return i64(target) if np.issubdtype(target.dtype, np.integer) else f32(target)


def cross_entropy_forward(
    logits, target, weight=None, reduction: str = "mean", ignore_index: int = -100
):
    """logits (N, C) -> (loss, log_probs); loss is (N,) for reduction "none", else 0-d."""
    cp = cupy()
    logits = f32(logits)
    n = logits.shape[0] if logits.ndim else 0
    loss = cp.empty((n,) if reduction == "none" else (), "float32")
    log_probs = cp.empty(logits.shape, "float32")
    scratch = cp.empty((2 * n,), "float32")
    w = None if weight is None else f32(weight)
    kernels().cross_entropy_forward(
        loss, log_probs, scratch, logits, _target(target), w, reduction, int(ignore_index), stream()
    )
    return loss, log_probs


def cross_entropy_backward(
    dloss, log_probs, target, weight=None, reduction: str = "mean", ignore_index: int = -100
):
    """dloss ((N,) for "none", else 0-d) and the forward's log_probs (N, C) -> dlogits (N, C)."""
    cp = cupy()
    log_probs = f32(log_probs)
    dlogits = cp.empty(log_probs.shape, "float32")
    scratch = cp.empty((1,), "float32")
    w = None if weight is None else f32(weight)
    kernels().cross_entropy_backward(
        dlogits,
        scratch,
        f32(dloss),
        log_probs,
        _target(target),
        w,
        reduction,
        int(ignore_index),
        stream(),
    )
    return dlogits
