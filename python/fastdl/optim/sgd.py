"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (PyTorch's)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _devices
from .optimizer import Optimizer


class SGD(Optimizer):
    """PyTorch's SGD: g = grad (+ weight_decay * p); with momentum, buf = momentum * buf +
    (1 - dampening) * g (buf = g on the first step) and g = buf, or g + momentum * buf with
    nesterov; then p -= lr * g (p += with maximize).

    >>> import fastdl
    >>> import fastdl.nn as nn
    >>> w = nn.Parameter(fastdl.tensor([1.0, 2.0]))
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 4) for v in w.tolist()]
    [0.8, 1.6]
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        if group["lr"] < 0.0:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        if group["momentum"] < 0.0:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if group["weight_decay"] < 0.0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    # The bucketing loop and fused call below have the shape of every optimizer's (adagrad.py,
    # adam.py, nadam.py, rmsprop.py), kept per class on purpose: the bucket keys and state lists
    # differ, and a shared loop would cost step() a Python callback per parameter.
    def _step_group(self, group: dict) -> None:
        use_momentum = group["momentum"] != 0
        # One fused call per (device, dtype, first step or not): the kernel takes one
        # first_step flag.
        buckets: dict = {}
        for p, g, key in self._params_with_grads(group):
            first = False
            if use_momentum:
                state = self.state[p]
                if state.get("momentum_buffer") is None:
                    state["momentum_buffer"] = self._zeros_like(p)
                    first = True
                buf = [state["momentum_buffer"]._data]
            else:
                buf = []
            params, grads, bufs = buckets.setdefault((key, first), ([], [], []))
            params.append(p._data)
            grads.append(g)
            bufs.extend(buf)
        for (_, first), (params, grads, bufs) in buckets.items():
            _devices.kernels(params[0]).sgd_step(
                params,
                grads,
                bufs,
                group["lr"],
                momentum=group["momentum"],
                dampening=group["dampening"],
                nesterov=group["nesterov"],
                weight_decay=group["weight_decay"],
                maximize=group["maximize"],
                first_step=first,
            )
