"""Normalisation ops (the reference; a fused C++ kernel is a later step).

One op serves batch, layer and group normalisation: `Standardize` normalises x over some axes
to zero mean and unit (biased) variance. The layers' affine part (x_hat * weight + bias) is
ordinary broadcasting arithmetic on tensors, so its gradients come from those ops.

Written once against the array API namespace of the input (any device).
"""

from __future__ import annotations

from .. import _devices
from ..autograd.function import Op


def _moments(xp, x, axes):
    """Mean and biased variance of x over `axes` (kept as size-1 dims)."""
    mean = xp.mean(x, axis=axes, keepdims=True)
    centred = x - mean
    return mean, xp.mean(centred * centred, axis=axes, keepdims=True), centred


class Standardize(Op):
    """x of any shape -> x_hat = (x - mean) / sqrt(var + eps) over `axes`; also outputs mean and
    the biased var (size-1 dims kept over `axes`, no gradient), which batch_norm's running
    statistics need. Saves x (recomputing x_hat in backward, as PyTorch does, so that an
    in-place op on the output cannot corrupt the gradient), mean and 1 / sqrt(var + eps)."""

    n_outputs = 3
    grad_outputs = (0,)
    saves = (0,)

    @staticmethod
    def direct(x, axes, eps):
        xp = _devices.namespace(x)
        mean, var, centred = _moments(xp, x, axes)
        return centred / xp.sqrt(var + eps), mean, var

    def forward(self, x, axes, eps):
        xp = _devices.namespace(x)
        mean, var, centred = _moments(xp, x, axes)
        self.x, self.mean, self.axes = x, mean, axes
        self.invstd = 1.0 / xp.sqrt(var + eps)
        return centred * self.invstd, mean, var

    def backward(self, g):
        # dx = invstd * (g - mean(g) - x_hat * mean(g * x_hat)), the means over `axes`
        xp = _devices.namespace(g)
        x_hat = (self.x - self.mean) * self.invstd
        g_mean = xp.mean(g, axis=self.axes, keepdims=True)
        gx_mean = xp.mean(g * x_hat, axis=self.axes, keepdims=True)
        return ((g - g_mean - x_hat * gx_mean) * self.invstd,)
