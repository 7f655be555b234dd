"""Reference softmax cross-entropy: fused log-softmax + negative log-likelihood, like PyTorch.

logits and log_probs are (N,C); target is int (N,) class indices (or ignore_index) or float (N,C)
class probabilities; weight is None or (C,). reduction "none" gives (N,), "sum" and "mean" 0-d.
Index targets: l_i = -w[t_i] log_probs[i, t_i]; mean divides by sum(w[t_i]) over kept samples.
Probability targets: l_i = -sum_c w[c] target[i,c] log_probs[i,c]; mean divides by N.
Tested in tests/test_reference.py (loop formula, finite differences, PyTorch).
"""

from __future__ import annotations

import numpy as np

__all__ = ["cross_entropy_backward", "cross_entropy_forward"]

_REDUCTIONS = ("none", "sum", "mean")


def _check(op, x, target, weight, reduction):
    # x is (N,C); returns True for index targets, False for probability targets.
    if x.ndim != 2:
        raise ValueError(f"[{op}] expected 2-D (N, C) input, got {x.ndim}-D")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"[{op}] reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if weight is not None and weight.shape != (x.shape[1],):
        raise ValueError(f"[{op}] expected weight of shape {(x.shape[1],)}, got {weight.shape}")
    is_index = np.issubdtype(target.dtype, np.integer)
    expected = x.shape[:1] if is_index else x.shape
    if target.shape != expected:
        raise ValueError(f"[{op}] expected target of shape {expected}, got {target.shape}")
    return is_index


def _sample_weights(op, target, weight, C, ignore_index, dtype):
    # target is (N,) int; returns (t, w_t): t with ignored entries replaced by 0, and
    # w_t (N,) = weight[t_i], 0 for ignored samples.
    keep = target != ignore_index
    bad = keep & ((target < 0) | (target >= C))
    if bad.any():
        raise ValueError(f"[{op}] target {target[bad][0]} is out of range for {C} classes")
    t = np.where(keep, target, 0)
    w_t = np.ones(len(t), dtype) if weight is None else weight.astype(dtype, copy=False)[t]
    return t, np.where(keep, w_t, 0).astype(dtype, copy=False)


def _log_softmax(x):
    # x is (N,C). Subtracting the row max keeps exp() <= 1, so |x| ~ 1e4 stays finite.
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def cross_entropy_forward(
    logits: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> tuple[np.ndarray, np.ndarray]:
    # logits is (N,C), target (N,) int or (N,C) float, weight (C,); returns loss, log_probs (N,C).
    op = "cross_entropy_forward"
    is_index = _check(op, logits, target, weight, reduction)
    N, C = logits.shape
    dtype = logits.dtype
    log_probs = _log_softmax(logits)
    if is_index:
        t, w_t = _sample_weights(op, target, weight, C, ignore_index, dtype)
        loss = -w_t * log_probs[np.arange(N), t]
        denominator = w_t.sum()
    else:
        w = np.ones(C, dtype) if weight is None else weight.astype(dtype, copy=False)
        loss = -(w * target.astype(dtype, copy=False) * log_probs).sum(axis=1)
        denominator = dtype.type(N)
    if reduction == "none":
        return loss, log_probs
    if reduction == "sum":
        return np.asarray(loss.sum(), dtype), log_probs
    with np.errstate(invalid="ignore", divide="ignore"):  # NOTE: all ignored gives 0/0 = NaN
        return np.asarray(loss.sum() / denominator, dtype), log_probs


def cross_entropy_backward(
    dloss: np.ndarray,
    log_probs: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> np.ndarray:
    # dloss is 0-d (sum, mean) or (N,) (none), log_probs (N,C), target as in forward;
    # dlogits is (N,C).
    op = "cross_entropy_backward"
    is_index = _check(op, log_probs, target, weight, reduction)
    N, C = log_probs.shape
    dtype = log_probs.dtype
    dloss = np.asarray(dloss, dtype)
    if dloss.shape != ((N,) if reduction == "none" else ()):
        raise ValueError(
            f"[{op}] dloss of shape {dloss.shape} does not fit reduction {reduction!r}"
        )
    softmax = np.exp(log_probs)
    if is_index:
        t, w_t = _sample_weights(op, target, weight, C, ignore_index, dtype)
        # dlogits[i] = g_i w[t_i] (softmax_i - onehot(t_i)); ignored rows stay 0 even if g is NaN.
        with np.errstate(invalid="ignore", divide="ignore"):
            g = dloss / w_t.sum() if reduction == "mean" else dloss
            coef = np.where(target != ignore_index, g * w_t, 0).astype(dtype, copy=False)
        dlogits = softmax
        dlogits[np.arange(N), t] -= 1
        return coef[:, None] * dlogits
    w = np.ones(C, dtype) if weight is None else weight.astype(dtype, copy=False)
    wt = w * target.astype(dtype, copy=False)  # (N,C)
    with np.errstate(divide="ignore", invalid="ignore"):  # N = 0: an empty batch
        g = dloss / dtype.type(N) if reduction == "mean" else dloss
    g = np.broadcast_to(g, (N,))
    return g[:, None] * (softmax * wt.sum(axis=1, keepdims=True) - wt)
