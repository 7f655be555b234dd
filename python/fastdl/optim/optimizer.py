"""`Optimizer`, the base of SGD, Adam, AdamW, RMSprop, Adagrad and NAdam: parameter groups,
per-parameter state and state_dict in PyTorch's format.

Subclasses implement `_validate(group)` (hyperparameter checks) and `_step_group(group)`, which
gathers the arrays of every parameter with a gradient and updates them with ONE fused backend call
(`sgd_step`, `adam_step`, ...) per device and dtype, never a Python loop over elements. The backend is
the one of the parameters' device (`_devices.kernels`), and state lives on the parameter's device
(PyTorch's rules; the `step` count stays a CPU scalar, as in PyTorch, so that reading it never
waits for a device).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Callable

import numpy as np

from .. import _devices
from .._creation import zeros_like
from .._tensor import Tensor


class Optimizer:
    """Base class: holds `param_groups` (dicts with "params" and hyperparameters) and `state`
    (a dict per parameter).

    >>> import fastdl
    >>> import fastdl.nn as nn
    >>> import fastdl.optim as optim
    >>> w = nn.Parameter(fastdl.ones(2))
    >>> opt = optim.SGD([{"params": [w], "lr": 0.5}], lr=0.1)
    >>> opt.param_groups[0]["lr"], opt.defaults["lr"]
    (0.5, 0.1)
    """

    def __init__(self, params: Iterable[Any], defaults: dict) -> None:
        self.defaults = dict(defaults)
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list = []
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {type(params).__name__}"
            )
        param_groups = list(params)
        if not param_groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def _validate(self, group: dict) -> None:
        """Raise ValueError for an invalid hyperparameter in `group`."""

    @staticmethod
    def _check_nonnegative(group: dict, *names: str) -> None:
        """PyTorch's checks, in order: each hyperparameter `name` of `group` is >= 0 (NaN fails),
        else ValueError "Invalid <name> value: <value>" ("learning rate", "epsilon value")."""
        for name in names:
            value = group[name]
            if not 0.0 <= value:
                label = _LABELS.get(name, f"{name} value")
                raise ValueError(f"Invalid {label}: {value}")

    @staticmethod
    def _check_betas(group: dict) -> None:
        """PyTorch's check: both betas in [0, 1)."""
        for i, beta in enumerate(group["betas"]):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (defaults fill the rest)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is "
                    f"{type(p).__name__}"
                )
            if p._node is not None:
                raise ValueError("can't optimize a non-leaf Tensor")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer got the same parameter twice in one parameter group")
        group["params"] = params
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._validate(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (or zero it in place when set_to_none=False)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad._data[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns closure()'s loss if given."""
        loss = None
        if closure is not None:
            from ..autograd import enable_grad

            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _step_group")

    # ---------------------------------------------------------------- helpers for subclasses

    def _params_with_grads(self, group: dict) -> list:
        """(param, grad array, key) for each parameter of `group` that has a gradient, checked.
        The gradient array has the parameter's dtype and device (C-contiguous off the CPU); the
        key names the fused call it joins, one per device and dtype."""
        out = []
        for p in group["params"]:
            if p.grad is None:
                continue
            data, g = p._data, p.grad._data
            p._vc[0] += 1  # the step writes p in place: a graph that saved p must not reuse it
            if g.shape != data.shape:
                raise RuntimeError(
                    f"[{type(self).__name__}.step] gradient has shape {g.shape}, but its "
                    f"parameter has shape {data.shape}"
                )
            if type(g) is not type(data):
                raise RuntimeError(
                    f"[{type(self).__name__}.step] gradient is on device {p.grad.device}, but "
                    f"its parameter is on device {p.device}"
                )
            if g.dtype != data.dtype:
                g = _devices.namespace(g).astype(g, data.dtype)
            if type(g) is np.ndarray:
                # NOTE: on the CPU the cpu backend's wrapper makes its inputs C-contiguous (and
                # the reference reads any layout), so the hot path skips a second check.
                key = data.dtype
            else:
                g = _devices.library(g).contiguous(g)
                key = (type(data), _devices.library(data).device_index(data), data.dtype)
            out.append((p, g, key))
        return out

    @staticmethod
    def _cpu_scalar(value: float) -> Tensor:
        """A CPU float32 0-d state entry (`step`, NAdam's `mu_product`), as PyTorch keeps them."""
        return Tensor._make(np.array(value, dtype=np.float32))

    @staticmethod
    def _zeros_like(p: Tensor) -> Tensor:
        """A zero state buffer of `p`'s shape and dtype on `p`'s device."""
        return Tensor._make(_devices.namespace(p._data).zeros_like(p._data))

    # ---------------------------------------------------------------- state_dict

    def state_dict(self) -> dict:
        """{"state": {index: {name: Tensor}}, "param_groups": [{..., "params": [index, ...]}]},
        parameters numbered in order across groups, as in PyTorch.

        NOTE: as in PyTorch, the state Tensors are the optimizer's own (later steps change
        them); deep-copy the result to keep a snapshot in memory.
        """
        index_of, groups, next_index = {}, [], 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            indices = []
            for p in group["params"]:
                if id(p) not in index_of:
                    index_of[id(p)] = next_index
                    next_index += 1
                indices.append(index_of[id(p)])
            packed["params"] = indices
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if self.state.get(p):
                    state[index_of[id(p)]] = self.state[p]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state saved by `state_dict()` (from this library or from
        PyTorch, with NumPy arrays or tensors as values). The values are copied."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                "loaded state dict has a different number of parameter groups: "
                f"{len(saved_groups)} saved, {len(self.param_groups)} in this optimizer"
            )
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    f"of optimizer's group: group {i} has {len(saved['params'])} saved "
                    f"parameters, {len(group['params'])} here"
                )
        param_of = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for index, p in zip(saved["params"], group["params"]):
                param_of[int(index)] = p

        new_state: defaultdict = defaultdict(dict)
        for key, values in state_dict["state"].items():
            p = param_of.get(int(key))
            if p is None:
                continue  # state of a parameter this optimizer does not have; PyTorch keeps it
            new_state[p] = {name: _restore(p, name, v) for name, v in values.items()}

        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            restored = copy.deepcopy({k: v for k, v in saved.items() if k != "params"})
            restored["params"] = group["params"]
            for name, default in self.defaults.items():
                restored.setdefault(name, default)  # e.g. a checkpoint from an older version
            self._validate(restored)
            new_groups.append(restored)
        self.state = new_state
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"


# State entries that are one number, kept as CPU float32 scalars (PyTorch's 0-d tensors).
_SCALAR_STATE = ("step", "mu_product")


# The hyperparameters PyTorch's messages name in words.
_LABELS = {"lr": "learning rate", "eps": "epsilon value"}


def _restore(p: Tensor, name: str, value: Any) -> Any:
    """A fresh, contiguous Tensor copy of one saved state value, on `p`'s device (PyTorch's
    rule). Floating state takes the parameter's dtype and must have its shape; `step` (and
    NAdam's `mu_product`) stays a CPU float32 scalar."""
    if value is None or isinstance(value, (int, float, bool)):
        return value
    if isinstance(value, Tensor):
        saved = value.detach()
    elif hasattr(value, "detach") and hasattr(value, "numpy"):  # a PyTorch tensor
        saved = Tensor._make(value.detach().cpu().numpy())
    else:
        saved = Tensor._make(np.asarray(value))  # user input: a NumPy array or a number
    if name in _SCALAR_STATE:
        if saved.numel() != 1:
            raise ValueError(
                f"[Optimizer.load_state_dict] state {name!r} must be one number, got shape "
                f"{tuple(saved.shape)}"
            )
        return Tensor._make(np.array(saved.item(), dtype=np.float32))
    dtype = None
    if saved.is_floating_point():
        if tuple(saved.shape) != tuple(p.shape):
            raise ValueError(
                f"[Optimizer.load_state_dict] state {name!r} has shape {tuple(saved.shape)}, "
                f"but its parameter has shape {tuple(p.shape)}"
            )
        dtype = p.dtype
    out = zeros_like(saved, dtype=dtype, device=p.device)
    out.copy_(saved)  # copies across devices and casts
    return out
