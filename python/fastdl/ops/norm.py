"""Normalisation ops: the statistics and the standardised output run in the backend's `norm`
kernels (the C++ one for CPU float32, the array-API reference otherwise).

One op serves batch, layer and group normalisation: `Standardize` normalises x over some axes
to zero mean and unit (biased) variance. The layers' affine part (x_hat * weight + bias) is
ordinary broadcasting arithmetic on tensors, so its gradients come from those ops.

The kernels see x as (A, C, B), reduced over A and B: the reduced axes must be leading and
trailing ones (batch norm's (0, 2, 3), layer norm's last axes); any other set is first moved to
the end (kept axes in order), so A = 1.
"""

from __future__ import annotations

import math

from .. import _devices
from ..autograd.function import Op


def _layout(shape, axes):
    """(perm or None, (A, C, B), keepdims shape) for reducing `shape` over `axes`."""
    nd = len(shape)
    red = sorted({a % nd for a in axes}) if nd else []
    kept = [d for d in range(nd) if d not in red]
    stats_shape = tuple(1 if d in red else shape[d] for d in range(nd))
    C = math.prod(shape[d] for d in kept)
    i = kept[0] if kept else nd
    if kept == list(range(i, i + len(kept))):  # reduced axes are leading and trailing
        return None, (math.prod(shape[:i]), C, math.prod(shape[i + len(kept) :])), stats_shape
    perm = tuple(kept + red)
    return perm, (1, C, math.prod(shape[d] for d in red)), stats_shape


def _to_acb(xp, x, perm, acb):
    if perm is not None:
        x = xp.permute_dims(x, perm)
    return xp.reshape(x, acb)


def _from_acb(xp, y, perm, shape):
    if perm is None:
        return xp.reshape(y, shape)
    y = xp.reshape(y, tuple(shape[d] for d in perm))
    inverse = [0] * len(perm)
    for pos, d in enumerate(perm):
        inverse[d] = pos
    return xp.permute_dims(y, tuple(inverse))


def _forward(x, axes, eps):
    xp = _devices.namespace(x)
    perm, acb, stats_shape = _layout(x.shape, axes)
    x3 = _to_acb(xp, x, perm, acb)
    y, mean, var, rstd = _devices.kernels(x3).norm_forward(x3, eps)
    out = (
        _from_acb(xp, y, perm, x.shape),
        xp.reshape(mean, stats_shape),
        xp.reshape(var, stats_shape),
    )
    return out, x3, mean, rstd, perm


class Standardize(Op):
    """x of any shape -> x_hat = (x - mean) / sqrt(var + eps) over `axes`; also outputs mean and
    the biased var (size-1 dims kept over `axes`, no gradient), which batch_norm's running
    statistics need. Saves x (the backward recomputes x_hat, as PyTorch does, so that an
    in-place op on the output cannot corrupt the gradient), mean and 1 / sqrt(var + eps)."""

    n_outputs = 3
    grad_outputs = (0,)
    saves = (0,)

    @staticmethod
    def direct(x, axes, eps):
        return _forward(x, axes, eps)[0]

    def forward(self, x, axes, eps):
        out, self.x3, self.mean, self.rstd, self.perm = _forward(x, axes, eps)
        self.shape = x.shape
        return out

    def backward(self, g):
        # dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat)), the means over `axes`
        xp = _devices.namespace(g)
        g3 = _to_acb(xp, g, self.perm, self.x3.shape)
        dx = _devices.kernels(g3).norm_backward(g3, self.x3, self.mean, self.rstd)
        return (_from_acb(xp, dx, self.perm, self.shape),)
