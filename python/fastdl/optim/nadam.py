"""NAdam (Adam with Nesterov momentum) with PyTorch's formulas and momentum-decay schedule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import _devices
from .optimizer import Optimizer


# NAdam's constructor, checks and moment state repeat Adam's (adam.py) on purpose: as in PyTorch,
# NAdam is its own Optimizer with its own signature, not an Adam subclass (isinstance(opt, Adam)
# is False), and its step differs (mu_product, two terms).
class NAdam(Optimizer):
    """PyTorch's NAdam: mu_t = b1 (1 - 0.5 * 0.96^(t momentum_decay)), mu_product = prod mu_t;
    m, v as in Adam; p -= lr (1 - mu_t) / (1 - mu_product) g / d
    + lr mu_{t+1} / (1 - mu_product mu_{t+1}) m / d, d = sqrt(v / (1 - b2^t)) + eps.
    weight_decay adds weight_decay * p to g, or with decoupled_weight_decay scales p by
    1 - lr weight_decay first.

    >>> import fastdl
    >>> import fastdl.nn as nn
    >>> w = nn.Parameter(fastdl.ones(3))
    >>> opt = NAdam([w])
    >>> opt.defaults["lr"], opt.defaults["momentum_decay"]
    (0.002, 0.004)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        self._check_nonnegative(group, "lr", "eps")
        self._check_betas(group)
        self._check_nonnegative(group, "weight_decay", "momentum_decay")

    def _step_group(self, group: dict) -> None:
        # One fused call per (device, dtype, step count, mu_product): the kernel takes one of
        # each; parameters that stepped together share both.
        beta1, beta2 = group["betas"]
        momentum_decay = group["momentum_decay"]
        buckets: dict = {}
        for p, g, key in self._params_with_grads(group):
            state = self.state[p]
            if not state:
                state["step"] = self._cpu_scalar(0.0)  # CPU scalars
                state["mu_product"] = self._cpu_scalar(1.0)
                state["exp_avg"] = self._zeros_like(p)
                state["exp_avg_sq"] = self._zeros_like(p)
            step = state["step"]._data
            step += 1  # in place on the 0-d array
            mu = beta1 * (1.0 - 0.5 * (0.96 ** (float(step) * momentum_decay)))
            mu_product = state["mu_product"]._data
            mu_product *= np.float32(mu)  # float32, as PyTorch's state tensor
            lists = buckets.setdefault((key, int(step), float(mu_product)), ([], [], [], []))
            for dst, array in zip(
                lists, (p._data, g, state["exp_avg"]._data, state["exp_avg_sq"]._data)
            ):
                dst.append(array)
        for (_, step, mu_product), (params, grads, exp_avgs, exp_avg_sqs) in buckets.items():
            _devices.kernels(params[0]).nadam_step(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                step,
                group["lr"],
                beta1,
                beta2,
                group["eps"],
                mu_product,
                weight_decay=group["weight_decay"],
                momentum_decay=momentum_decay,
                decoupled=group["decoupled_weight_decay"],
                maximize=group["maximize"],
            )
