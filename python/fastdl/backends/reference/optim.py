"""Reference fused optimizer steps: SGD and Adam/AdamW with PyTorch's semantics, in place.

Each call updates every parameter of an optimizer: params, grads and the state lists hold one
array per parameter, of that parameter's shape. Parameters and state change in place (the
caller's arrays); grads are only read. Written against the array API standard (in-place
operators on the given arrays): runs on any device's arrays.
Tested in tests/test_reference.py (a scalar loop formula and torch.optim over several steps).
"""

import math

from . import _arrays

__all__ = ["adam_step", "sgd_step"]


def _check(op, params, **lists):
    for name, arrays in lists.items():
        if len(arrays) != len(params):
            raise ValueError(f"[{op}] expected {len(params)} {name}, got {len(arrays)}")
        for p, a in zip(params, arrays):
            if a.shape != p.shape:
                raise ValueError(
                    f"[{op}] {name} entry of shape {a.shape} for a parameter of shape {p.shape}"
                )


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
        g = -grad if maximize else grad
        if weight_decay != 0:
            g = g + weight_decay * p
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
) -> None:
    # Each params[i], grads[i], exp_avgs[i], exp_avg_sqs[i] has the i-th parameter's shape;
    # step is the step count after incrementing (>= 1). decoupled=True is AdamW.
    if step < 1:
        raise ValueError(f"[adam_step] expected step >= 1 (counted after incrementing), got {step}")
    _check("adam_step", params, grads=grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs)
    bias1 = 1 - beta1**step
    bias2_sqrt = math.sqrt(1 - beta2**step)
    for p, grad, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        xp = _arrays.namespace(p)
        g = -grad if maximize else grad
        if weight_decay != 0:
            if decoupled:
                p *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        # p -= lr / bias1 * m / (sqrt(v / bias2) + eps), in PyTorch's order of operations.
        p -= (lr / bias1) * m / (xp.sqrt(v) / bias2_sqrt + eps)
