"""cuda backend: fused in-place SGD and Adam/AdamW (with AMSGrad) steps over every parameter of
an optimizer in one multi-tensor launch (csrc/cuda/optim.cu)."""

from __future__ import annotations

from ._arrays import f32, kernels, stream

__all__ = ["adam_step", "sgd_step"]

# NOTE: params and state buffers are updated in place, so they go to _C untouched (converting one
# would update a copy); the binding refuses any that is not a C-contiguous float32 CUDA array.
# The signatures are backends/INTERFACE.md's, as in reference/optim.py and cpu/optim.py (the
# contract each backend states itself); the _C calls differ (max_exp_avg_sqs before the
# numbers, a stream last).


def sgd_step(
    params,
    grads,
    momentum_buffers,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
    first_step: bool = False,
) -> None:
    """One in-place SGD step over every parameter, with PyTorch's semantics."""
    kernels().sgd_step(
        list(params),
        [f32(g) for g in grads],
        [] if momentum_buffers is None else list(momentum_buffers),
        float(lr),
        float(momentum),
        float(dampening),
        bool(nesterov),
        float(weight_decay),
        bool(maximize),
        bool(first_step),
        stream(),
    )


def adam_step(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    maximize: bool = False,
    max_exp_avg_sqs=None,
) -> None:
    """One in-place Adam (decoupled=False) or AdamW (decoupled=True) step; `step` counts from 1."""
    kernels().adam_step(
        list(params),
        [f32(g) for g in grads],
        list(exp_avgs),
        list(exp_avg_sqs),
        None if max_exp_avg_sqs is None else list(max_exp_avg_sqs),
        int(step),
        float(lr),
        float(beta1),
        float(beta2),
        float(eps),
        float(weight_decay),
        bool(decoupled),
        bool(maximize),
        stream(),
    )
