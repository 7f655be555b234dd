"""`Parameter`: a Tensor that a Module registers as a learnable weight."""

from __future__ import annotations

import numpy as np

from .. import _devices
from .._tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default; assigning one to a Module attribute registers
    it in `parameters()` and `state_dict()`. Built from a Tensor, it shares that Tensor's storage.

    >>> import fastdl
    >>> import fastdl.nn as nn
    >>> w = nn.Parameter(fastdl.ones(2))
    >>> w
    Parameter containing:
    tensor([1., 1.], requires_grad=True)
    """

    def __init__(self, data: Tensor | np.ndarray | None = None, requires_grad: bool = True) -> None:
        if data is None:
            array = np.zeros((0,), np.float32)
        elif isinstance(data, Tensor):
            array = data._data
        elif isinstance(data, np.ndarray):
            array = data
        elif type(data) in _devices._BY_ARRAY_TYPE:  # a device's storage array (deepcopy)
            array = data
        else:
            raise TypeError(
                f"[Parameter] expected a Tensor or np.ndarray as data, got {type(data).__name__}"
            )
        # NOTE: no copy when already C-contiguous and aligned, so the Parameter shares the
        # Tensor's storage (the fused optimizer kernels update it in place).
        if type(array) is np.ndarray:
            array = np.require(array, requirements=("C", "A"))
        else:
            array = _devices.library(array).contiguous(array)
        self._init_leaf(array, requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        # Tensor's reduce rebuilds a plain Tensor; copy.deepcopy(model) must keep Parameters.
        return (_rebuild_parameter, (self._data, self._requires_grad))


def _rebuild_parameter(data, requires_grad: bool) -> Parameter:
    return Parameter(data, requires_grad)
