"""Pooling ops: average pooling, and adaptive average and max pooling over PyTorch's adaptive
windows. The windows, divisors and arithmetic run in the backend's `pool` kernels (the C++ one
for CPU float32, the array-API reference otherwise); the max's backward is maxpool2d_backward.
"""

from __future__ import annotations

from .. import _devices
from ..autograd.function import Op


class AvgPool2d(Op):
    """x is (N, C, H, W) -> y (N, C, P, Q): each window's sum over its divisor (PyTorch's
    ceil_mode, count_include_pad and divisor_override rules). Saves nothing of x but its
    shape."""

    @staticmethod
    def direct(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        return _devices.kernels(x).avgpool2d_forward(
            x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
        )

    def forward(self, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        self.shape = x.shape
        self.options = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
        return _devices.kernels(x).avgpool2d_forward(x, *self.options)

    def backward(self, g):
        return (_devices.kernels(g).avgpool2d_backward(g, self.shape, *self.options),)


class AdaptiveAvgPool2d(Op):
    """x is (N, C, H, W) -> y (N, C, P, Q): the mean of each adaptive window."""

    @staticmethod
    def direct(x, out_hw):
        return _devices.kernels(x).adaptive_avgpool2d_forward(x, out_hw)

    def forward(self, x, out_hw):
        self.shape = x.shape
        return _devices.kernels(x).adaptive_avgpool2d_forward(x, out_hw)

    def backward(self, g):
        return (_devices.kernels(g).adaptive_avgpool2d_backward(g, self.shape),)


class AdaptiveMaxPool2d(Op):
    """x is (N, C, H, W) -> y (N, C, P, Q), the max of each adaptive window, and its position
    as int64 indices into the flattened (H * W) plane (PyTorch's; no gradient); saves the
    indices."""

    n_outputs = 2

    @staticmethod
    def direct(x, out_hw):
        return _devices.kernels(x).adaptive_maxpool2d_forward(x, out_hw)

    def forward(self, x, out_hw):
        self.shape = x.shape
        y, self.indices = _devices.kernels(x).adaptive_maxpool2d_forward(x, out_hw)
        return y, self.indices

    def backward(self, g):
        # Each output's gradient goes to its argmax, as max pooling's.
        return (_devices.kernels(g).maxpool2d_backward(g, self.indices, self.shape),)
