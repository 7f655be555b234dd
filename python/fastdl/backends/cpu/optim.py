"""cpu backend: fused in-place SGD, Adam/AdamW (with AMSGrad), RMSprop, Adagrad and NAdam steps
over all parameters of an optimizer (csrc/cpu/optim.cpp)."""

from __future__ import annotations

import numpy as np

from ... import _C
from ._arrays import f32

__all__ = ["adagrad_step", "adam_step", "nadam_step", "rmsprop_step", "sgd_step"]

# NOTE: params and state buffers are updated in place, so they go to _C untouched: converting
# one would update a copy. The binding raises ValueError for any that is not a writeable,
# C-contiguous float32 ndarray. Gradients are only read, so they may be converted.
#
# The parameter lists repeat reference/optim.py's (and cuda/optim.py's) on purpose: they are
# the contract of backends/INTERFACE.md, which every backend states in its own signatures and
# tests/test_backend_contract.py checks; what each wrapper adds is its _C call.


def _grads(grads) -> list:
    return [f32(g) for g in grads]


def sgd_step(
    params: list[np.ndarray],
    grads: list[np.ndarray],
    momentum_buffers: list[np.ndarray],
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
    first_step: bool = False,
) -> None:
    """One in-place SGD step over every parameter, with PyTorch's semantics."""
    bufs = [] if momentum_buffers is None else list(momentum_buffers)
    _C.sgd_step(
        list(params),
        _grads(grads),
        bufs,
        float(lr),
        float(momentum),
        float(dampening),
        bool(nesterov),
        float(weight_decay),
        bool(maximize),
        bool(first_step),
    )


def adam_step(
    params: list[np.ndarray],
    grads: list[np.ndarray],
    exp_avgs: list[np.ndarray],
    exp_avg_sqs: list[np.ndarray],
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    maximize: bool = False,
    max_exp_avg_sqs: list[np.ndarray] | None = None,
) -> None:
    """One in-place Adam (decoupled=False) or AdamW (decoupled=True) step; `step` counts from 1.
    max_exp_avg_sqs: AMSGrad's running max of exp_avg_sqs, or None."""
    _C.adam_step(
        list(params),
        _grads(grads),
        list(exp_avgs),
        list(exp_avg_sqs),
        int(step),
        float(lr),
        float(beta1),
        float(beta2),
        float(eps),
        float(weight_decay),
        bool(decoupled),
        bool(maximize),
        None if max_exp_avg_sqs is None else list(max_exp_avg_sqs),
    )


def rmsprop_step(
    params: list[np.ndarray],
    grads: list[np.ndarray],
    square_avgs: list[np.ndarray],
    grad_avgs: list[np.ndarray],
    momentum_buffers: list[np.ndarray],
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> None:
    """One in-place RMSprop step; grad_avgs may be [] unless centered, momentum_buffers [] when
    momentum == 0."""
    _C.rmsprop_step(
        list(params),
        _grads(grads),
        list(square_avgs),
        [] if grad_avgs is None else list(grad_avgs),
        [] if momentum_buffers is None else list(momentum_buffers),
        float(lr),
        float(alpha),
        float(eps),
        float(weight_decay),
        float(momentum),
        bool(centered),
        bool(maximize),
    )


def adagrad_step(
    params: list[np.ndarray],
    grads: list[np.ndarray],
    state_sums: list[np.ndarray],
    step: int,
    lr: float,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> None:
    """One in-place Adagrad step; `step` counts from 1."""
    _C.adagrad_step(
        list(params),
        _grads(grads),
        list(state_sums),
        int(step),
        float(lr),
        float(lr_decay),
        float(weight_decay),
        float(eps),
        bool(maximize),
    )


def nadam_step(
    params: list[np.ndarray],
    grads: list[np.ndarray],
    exp_avgs: list[np.ndarray],
    exp_avg_sqs: list[np.ndarray],
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    mu_product: float,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled: bool = False,
    maximize: bool = False,
) -> None:
    """One in-place NAdam step; `step` counts from 1, mu_product includes this step's mu."""
    _C.nadam_step(
        list(params),
        _grads(grads),
        list(exp_avgs),
        list(exp_avg_sqs),
        int(step),
        float(lr),
        float(beta1),
        float(beta2),
        float(eps),
        float(mu_product),
        float(weight_decay),
        float(momentum_decay),
        bool(decoupled),
        bool(maximize),
    )
