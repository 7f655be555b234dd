"""Adam and AdamW (PyTorch's formulas; AdamW decays the weights directly, not the gradient)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _devices
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
    p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps), with weight_decay added to g;
    amsgrad=True uses the running max of v in the denominator.

    >>> import fastdl
    >>> import fastdl.nn as nn
    >>> w = nn.Parameter(fastdl.tensor([1.0, -1.0]))
    >>> opt = Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 4) for v in w.tolist()]
    [0.9, -0.9]
    """

    _decoupled = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        self._check_nonnegative(group, "lr", "eps")
        self._check_betas(group)
        self._check_nonnegative(group, "weight_decay")

    def _step_group(self, group: dict) -> None:
        # One fused call per (device, dtype, step count): the kernel takes one step count.
        # Parameters of a group share it unless some of them missed gradients on earlier steps.
        # AMSGrad adds max_exp_avg_sq (the running max of exp_avg_sq) to the state.
        amsgrad = group["amsgrad"]
        buckets: dict = {}
        for p, g, key in self._params_with_grads(group):
            state = self.state[p]
            if not state:
                state["step"] = self._cpu_scalar(0.0)  # a CPU scalar
                state["exp_avg"] = self._zeros_like(p)
                state["exp_avg_sq"] = self._zeros_like(p)
                if amsgrad:
                    state["max_exp_avg_sq"] = self._zeros_like(p)
            step = state["step"]._data
            step += 1  # in place on the 0-d array
            lists = buckets.setdefault((key, int(step)), ([], [], [], [], []))
            arrays = [p._data, g, state["exp_avg"]._data, state["exp_avg_sq"]._data]
            if amsgrad:
                if state.get("max_exp_avg_sq") is None:  # e.g. amsgrad turned on later
                    state["max_exp_avg_sq"] = self._zeros_like(p)
                arrays.append(state["max_exp_avg_sq"]._data)
            for dst, array in zip(lists, arrays):
                dst.append(array)
        beta1, beta2 = group["betas"]
        for (_, step), (params, grads, exp_avgs, exp_avg_sqs, maxes) in buckets.items():
            _devices.kernels(params[0]).adam_step(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                step,
                group["lr"],
                beta1,
                beta2,
                group["eps"],
                weight_decay=group["weight_decay"],
                decoupled=self._decoupled,
                maximize=group["maximize"],
                max_exp_avg_sqs=maxes if amsgrad else None,
            )


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before the Adam update.

    >>> import fastdl
    >>> import fastdl.nn as nn
    >>> w = nn.Parameter(fastdl.ones(3))
    >>> opt = AdamW([w], lr=1e-3)
    >>> opt.defaults["weight_decay"]
    0.01
    """

    _decoupled = True

    # Adam's signature but for weight_decay's default (1e-2): PyTorch's AdamW states it whole.
    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
