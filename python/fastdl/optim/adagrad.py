"""Adagrad with PyTorch's formulas (lr_decay, weight decay, initial accumulator, maximize)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _devices
from .._tensor import Tensor
from .optimizer import Optimizer


class Adagrad(Optimizer):
    """PyTorch's Adagrad: clr = lr / (1 + (step - 1) lr_decay); sum += g^2;
    p -= clr g / (sqrt(sum) + eps); weight_decay adds weight_decay * p to g. The state ("step",
    "sum" = initial_accumulator_value) exists from construction, as in PyTorch.

    >>> import fastdl
    >>> import fastdl.nn as nn
    >>> w = nn.Parameter(fastdl.tensor([1.0, -1.0]))
    >>> opt = Adagrad([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 4) for v in w.tolist()]
    [0.9, -0.9]
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "maximize": maximize,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _validate(self, group: dict) -> None:
        self._check_nonnegative(
            group, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"
        )

    def _init_state(self, p: Tensor, group: dict) -> None:
        state = self.state[p]
        state["step"] = self._cpu_scalar(0.0)  # a CPU scalar
        xp = _devices.namespace(p._data)
        state["sum"] = Tensor._make(xp.full_like(p._data, group["initial_accumulator_value"]))

    def _step_group(self, group: dict) -> None:
        # One fused call per (device, dtype, step count): the kernel takes one step count.
        buckets: dict = {}
        for p, g, key in self._params_with_grads(group):
            state = self.state[p]
            if not state:  # a parameter group added after construction
                self._init_state(p, group)
            step = state["step"]._data
            step += 1  # in place on the 0-d array
            params, grads, sums = buckets.setdefault((key, int(step)), ([], [], []))
            params.append(p._data)
            grads.append(g)
            sums.append(state["sum"]._data)
        for (_, step), (params, grads, sums) in buckets.items():
            _devices.kernels(params[0]).adagrad_step(
                params,
                grads,
                sums,
                step,
                group["lr"],
                lr_decay=group["lr_decay"],
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
            )
