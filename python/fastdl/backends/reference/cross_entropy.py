"""Reference softmax cross-entropy: fused log-softmax + negative log-likelihood, like PyTorch.

logits and log_probs are (N,C); target is int (N,) class indices (or ignore_index) or float (N,C)
class probabilities; weight is None or (C,). reduction "none" gives (N,), "sum" and "mean" 0-d.
Index targets: l_i = -w[t_i] log_probs[i, t_i]; mean divides by sum(w[t_i]) over kept samples.
Probability targets: l_i = -sum_c w[c] target[i,c] log_probs[i,c]; mean divides by N.
Written against the array API standard: runs on any device's arrays.
Tested in tests/test_reference.py (loop formula, finite differences, PyTorch).
"""

from __future__ import annotations

from . import _arrays

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
    is_index = _arrays.namespace(target).isdtype(target.dtype, "integral")
    expected = x.shape[:1] if is_index else x.shape
    if target.shape != expected:
        raise ValueError(f"[{op}] expected target of shape {expected}, got {target.shape}")
    return is_index


def _weights(xp, weight, C, dtype, device):
    # weight (C,) in dtype, ones when None.
    if weight is None:
        return xp.ones((C,), dtype=dtype, device=device)
    return xp.astype(weight, dtype, copy=False)


def _sample_weights(op, target, weight, C, ignore_index, dtype):
    # target is (N,) int; returns (t, w_t): t with ignored entries replaced by 0, and
    # w_t (N,) = weight[t_i], 0 for ignored samples.
    xp = _arrays.namespace(target)
    keep = target != ignore_index
    bad = keep & ((target < 0) | (target >= C))
    if bool(xp.any(bad)):
        raise ValueError(f"[{op}] target {int(target[bad][0])} is out of range for {C} classes")
    t = xp.where(keep, target, 0)
    if weight is None:
        w_t = xp.ones(t.shape, dtype=dtype, device=target.device)
    else:
        w_t = xp.take(xp.astype(weight, dtype, copy=False), t, axis=0)
    return t, xp.astype(xp.where(keep, w_t, 0), dtype, copy=False)


def _log_softmax(x):
    # x is (N,C). Subtracting the row max keeps exp() <= 1, so |x| ~ 1e4 stays finite.
    xp = _arrays.namespace(x)
    z = x - xp.max(x, axis=1, keepdims=True)
    return z - xp.log(xp.sum(xp.exp(z), axis=1, keepdims=True))


def _onehot(t, C, dtype):
    # t (N,) int -> (N,C) of dtype with 1 at [i, t_i].
    xp = _arrays.namespace(t)
    return xp.astype(xp.arange(C, dtype=t.dtype, device=t.device) == t[:, None], dtype)


def cross_entropy_forward(logits, target, weight=None, reduction: str = "mean", ignore_index: int = -100):
    # logits is (N,C), target (N,) int or (N,C) float, weight (C,); returns loss, log_probs (N,C).
    op = "cross_entropy_forward"
    is_index = _check(op, logits, target, weight, reduction)
    N, C = logits.shape
    dtype = logits.dtype
    xp = _arrays.namespace(logits)
    log_probs = _log_softmax(logits)
    if is_index:
        t, w_t = _sample_weights(op, target, weight, C, ignore_index, dtype)
        picked = xp.take_along_axis(log_probs, t[:, None], axis=1)[:, 0]
        loss = -w_t * picked
        denominator = xp.sum(w_t)
    else:
        w = _weights(xp, weight, C, dtype, logits.device)
        loss = -xp.sum(w * xp.astype(target, dtype, copy=False) * log_probs, axis=1)
        denominator = float(N)
    if reduction == "none":
        return loss, log_probs
    if reduction == "sum":
        return xp.asarray(xp.sum(loss), dtype=dtype, device=logits.device), log_probs
    with _arrays.library(logits).errstate():  # NOTE: all ignored gives 0/0 = NaN
        mean = xp.sum(loss) / denominator
        return xp.asarray(mean, dtype=dtype, device=logits.device), log_probs


def cross_entropy_backward(
    dloss, log_probs, target, weight=None, reduction: str = "mean", ignore_index: int = -100
):
    # dloss is 0-d (sum, mean) or (N,) (none), log_probs (N,C), target as in forward;
    # dlogits is (N,C).
    op = "cross_entropy_backward"
    is_index = _check(op, log_probs, target, weight, reduction)
    N, C = log_probs.shape
    dtype = log_probs.dtype
    xp = _arrays.namespace(log_probs)
    errstate = _arrays.library(log_probs).errstate
    dloss = xp.asarray(dloss, dtype=dtype, device=log_probs.device)
    if dloss.shape != ((N,) if reduction == "none" else ()):
        raise ValueError(
            f"[{op}] dloss of shape {dloss.shape} does not fit reduction {reduction!r}"
        )
    softmax = xp.exp(log_probs)
    if is_index:
        t, w_t = _sample_weights(op, target, weight, C, ignore_index, dtype)
        # dlogits[i] = g_i w[t_i] (softmax_i - onehot(t_i)); ignored rows stay 0 even if g is NaN.
        with errstate():
            g = dloss / xp.sum(w_t) if reduction == "mean" else dloss
            coef = xp.astype(xp.where(target != ignore_index, g * w_t, 0), dtype, copy=False)
        return coef[:, None] * (softmax - _onehot(t, C, dtype))
    w = _weights(xp, weight, C, dtype, log_probs.device)
    wt = w * xp.astype(target, dtype, copy=False)  # (N,C)
    with errstate():  # N = 0: an empty batch
        g = dloss / float(N) if reduction == "mean" else dloss
    g = xp.broadcast_to(g, (N,))
    return g[:, None] * (softmax * xp.sum(wt, axis=1, keepdims=True) - wt)
