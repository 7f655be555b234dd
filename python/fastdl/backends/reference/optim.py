"""Reference fused optimizer steps: SGD, Adam/AdamW (with AMSGrad), RMSprop, Adagrad and NAdam
with PyTorch's semantics, in place.

Each call updates every parameter of an optimizer: params, grads and the state lists hold one
array per parameter, of that parameter's shape. Parameters and state change in place (the
caller's arrays); grads are only read. Written against the array API standard (in-place
operators on the given arrays): runs on any device's arrays. The signatures are
backends/INTERFACE.md's, which cpu/optim.py and cuda/optim.py state again (the contract, checked by
tests/test_backend_contract.py); Adam's and NAdam's share their leading parameters there too.
Tested in tests/test_reference.py and tests/test_optim_extra.py (torch.optim over many steps).
"""

from __future__ import annotations

import math

from . import _arrays

__all__ = ["adagrad_step", "adam_step", "nadam_step", "rmsprop_step", "sgd_step"]


def _check(op, params, **lists):
    for name, arrays in lists.items():
        if len(arrays) != len(params):
            raise ValueError(f"[{op}] expected {len(params)} {name}, got {len(arrays)}")
        for p, a in zip(params, arrays):
            if a.shape != p.shape:
                raise ValueError(
                    f"[{op}] {name} entry of shape {a.shape} for a parameter of shape {p.shape}"
                )


def _gradient(p, grad, lr, weight_decay, decoupled, maximize):
    """The gradient a step applies: negated with maximize; weight_decay * p added to it, or with
    decoupled (AdamW, NAdam's decoupled_weight_decay) p *= 1 - lr * weight_decay in place."""
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled:
            p *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * p
    return g


def _update_moments(m, v, g, beta1, beta2):
    """Adam's (and NAdam's) running averages of g and g^2, in place."""
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g


def sgd_step(
    params: list,
    grads: list,
    momentum_buffers: list,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
    first_step: bool = False,
) -> None:
    # Each params[i], grads[i], momentum_buffers[i] has the i-th parameter's shape;
    # momentum_buffers may be [] when momentum == 0.
    buffers = {"momentum_buffers": momentum_buffers} if momentum != 0 else {}
    _check("sgd_step", params, grads=grads, **buffers)
    for i, (p, grad) in enumerate(zip(params, grads)):
        g = _gradient(p, grad, lr, weight_decay, False, maximize)
        if momentum != 0:
            buf = momentum_buffers[i]
            if first_step:
                buf[...] = g
            else:
                buf *= momentum
                buf += (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p -= lr * g


def adam_step(
    params: list,
    grads: list,
    exp_avgs: list,
    exp_avg_sqs: list,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    maximize: bool = False,
    max_exp_avg_sqs: list | None = None,
) -> None:
    # Each params[i], grads[i], exp_avgs[i], exp_avg_sqs[i] has the i-th parameter's shape;
    # step is the step count after incrementing (>= 1). decoupled=True is AdamW.
    # max_exp_avg_sqs (AMSGrad) is None or a list like exp_avg_sqs: the running max of v,
    # which then takes v's place in the denominator.
    if step < 1:
        raise ValueError(f"[adam_step] expected step >= 1 (counted after incrementing), got {step}")
    amsgrad = {} if max_exp_avg_sqs is None else {"max_exp_avg_sqs": max_exp_avg_sqs}
    _check("adam_step", params, grads=grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs, **amsgrad)
    bias1 = 1 - beta1**step
    bias2_sqrt = math.sqrt(1 - beta2**step)
    for i, (p, grad, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
        xp = _arrays.namespace(p)
        g = _gradient(p, grad, lr, weight_decay, decoupled, maximize)
        _update_moments(m, v, g, beta1, beta2)
        if max_exp_avg_sqs is not None:
            v_max = max_exp_avg_sqs[i]
            v_max[...] = xp.maximum(v_max, v)
            v = v_max
        # p -= lr / bias1 * m / (sqrt(v / bias2) + eps), in PyTorch's order of operations.
        p -= (lr / bias1) * m / (xp.sqrt(v) / bias2_sqrt + eps)


def rmsprop_step(
    params: list,
    grads: list,
    square_avgs: list,
    grad_avgs: list,
    momentum_buffers: list,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> None:
    # Each list entry has its parameter's shape; grad_avgs may be [] unless centered,
    # momentum_buffers may be [] when momentum == 0 (PyTorch keeps neither then).
    lists = {"grads": grads, "square_avgs": square_avgs}
    if centered:
        lists["grad_avgs"] = grad_avgs
    if momentum > 0:
        lists["momentum_buffers"] = momentum_buffers
    _check("rmsprop_step", params, **lists)
    for i, (p, grad, sq) in enumerate(zip(params, grads, square_avgs)):
        xp = _arrays.namespace(p)
        g = _gradient(p, grad, lr, weight_decay, False, maximize)
        sq *= alpha
        sq += (1 - alpha) * g * g
        if centered:
            g_avg = grad_avgs[i]
            g_avg += (1 - alpha) * (g - g_avg)  # PyTorch's lerp
            avg = xp.sqrt(sq - g_avg * g_avg) + eps
        else:
            avg = xp.sqrt(sq) + eps
        if momentum > 0:
            buf = momentum_buffers[i]
            buf *= momentum
            buf += g / avg
            p -= lr * buf
        else:
            p -= lr * (g / avg)


def adagrad_step(
    params: list,
    grads: list,
    state_sums: list,
    step: int,
    lr: float,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> None:
    # Each list entry has its parameter's shape; step is the count after incrementing (>= 1).
    if step < 1:
        raise ValueError(
            f"[adagrad_step] expected step >= 1 (counted after incrementing), got {step}"
        )
    _check("adagrad_step", params, grads=grads, state_sums=state_sums)
    clr = lr / (1 + (step - 1) * lr_decay)
    for p, grad, s in zip(params, grads, state_sums):
        xp = _arrays.namespace(p)
        g = _gradient(p, grad, lr, weight_decay, False, maximize)
        s += g * g
        p -= clr * (g / (xp.sqrt(s) + eps))


def nadam_step(
    params: list,
    grads: list,
    exp_avgs: list,
    exp_avg_sqs: list,
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
    # Each list entry has its parameter's shape; step is the count after incrementing (>= 1);
    # mu_product is the product of mu_t over steps 1..step (this step's included), which the
    # optimizer keeps as state. decoupled=True decays p directly (decoupled_weight_decay).
    if step < 1:
        raise ValueError(
            f"[nadam_step] expected step >= 1 (counted after incrementing), got {step}"
        )
    _check("nadam_step", params, grads=grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs)
    bias2 = 1 - beta2**step
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    coef_g = lr * (1.0 - mu) / (1.0 - mu_product)
    coef_m = lr * mu_next / (1.0 - mu_product * mu_next)
    for p, grad, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        xp = _arrays.namespace(p)
        g = _gradient(p, grad, lr, weight_decay, decoupled, maximize)
        _update_moments(m, v, g, beta1, beta2)
        denom = xp.sqrt(v / bias2) + eps
        p -= coef_g * (g / denom)
        p -= coef_m * (m / denom)
