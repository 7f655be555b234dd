"""RMSprop with PyTorch's formulas (centered, momentum, weight decay, maximize)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _devices
from .optimizer import Optimizer


# The docstring's example is Adagrad's (adagrad.py) on purpose: each optimizer documents one step
# of its own on the same w, which reaches the same values.
class RMSprop(Optimizer):
    """PyTorch's RMSprop: v = alpha v + (1 - alpha) g^2; avg = sqrt(v) + eps (centered: sqrt(v -
    g_avg^2) + eps, with g_avg the running mean of g); with momentum, buf = momentum buf + g / avg
    and p -= lr buf, else p -= lr g / avg. weight_decay adds weight_decay * p to g.

    >>> import fastdl
    >>> import fastdl.nn as nn
    >>> w = nn.Parameter(fastdl.tensor([1.0, -1.0]))
    >>> opt = RMSprop([w], lr=0.01)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 4) for v in w.tolist()]
    [0.9, -0.9]
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        self._check_nonnegative(group, "lr", "eps", "momentum", "weight_decay", "alpha")

    def _step_group(self, group: dict) -> None:
        momentum, centered = group["momentum"], group["centered"]
        buckets: dict = {}  # one fused call per device and dtype
        for p, g, key in self._params_with_grads(group):
            state = self.state[p]
            if not state:
                state["step"] = self._cpu_scalar(0.0)  # a CPU scalar
                state["square_avg"] = self._zeros_like(p)
            if momentum > 0 and state.get("momentum_buffer") is None:
                state["momentum_buffer"] = self._zeros_like(p)
            if centered and state.get("grad_avg") is None:
                state["grad_avg"] = self._zeros_like(p)
            step = state["step"]._data
            step += 1  # in place on the 0-d array; RMSprop's formulas do not read it
            params, grads, sqs, g_avgs, bufs = buckets.setdefault(key, ([], [], [], [], []))
            params.append(p._data)
            grads.append(g)
            sqs.append(state["square_avg"]._data)
            if centered:
                g_avgs.append(state["grad_avg"]._data)
            if momentum > 0:
                bufs.append(state["momentum_buffer"]._data)
        for params, grads, sqs, g_avgs, bufs in buckets.values():
            _devices.kernels(params[0]).rmsprop_step(
                params,
                grads,
                sqs,
                g_avgs,
                bufs,
                group["lr"],
                group["alpha"],
                group["eps"],
                weight_decay=group["weight_decay"],
                momentum=momentum,
                centered=centered,
                maximize=group["maximize"],
            )
