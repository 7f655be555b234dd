"""Reference norm: per-channel standardisation of x viewed as (A, C, B), the hot part of batch,
layer and group normalisation.

x is (A,C,B); each channel c's group is x[:, c, :]. mean, var (biased) and rstd = 1 / sqrt(var +
eps) are (C,); y = (x - mean) * rstd. The backward, with x_hat = (x - mean) * rstd and means over
each group: dx = (dy - mean(dy) - x_hat * mean(dy * x_hat)) * rstd.
NOTE: an empty group (A * B = 0) has NaN statistics, the mean of nothing.
Written against the array API standard: runs on any device's arrays.
Tested against the C++ kernel in tests/test_kernels_norm.py.
"""

from . import _arrays

__all__ = ["norm_backward", "norm_forward"]

_AXES = (0, 2)


def _check(op, name, a, ndim):
    if a.ndim != ndim:
        raise ValueError(f"[{op}] {name} must have {ndim} dimensions, got shape {tuple(a.shape)}")


def norm_forward(x, eps):
    # x is (A,C,B); returns y (A,C,B) and mean, var, rstd (C,), all of x's dtype.
    _check("norm_forward", "x", x, 3)
    xp = _arrays.namespace(x)
    n = x.shape[0] * x.shape[2]
    # sum / n is NumPy's mean, but an empty group gives NaN without a warning under errstate.
    with _arrays.library(x).errstate():
        mean = xp.sum(x, axis=_AXES, keepdims=True) / n
        centred = x - mean
        var = xp.sum(centred * centred, axis=_AXES, keepdims=True) / n
        rstd = 1.0 / xp.sqrt(var + eps)
    C = x.shape[1]
    flat = lambda a: xp.reshape(a, (C,))
    return centred * rstd, flat(mean), flat(var), flat(rstd)


def norm_backward(dy, x, mean, rstd):
    # dy, x are (A,C,B); mean, rstd are (C,); returns dx (A,C,B).
    _check("norm_backward", "dy", dy, 3)
    _check("norm_backward", "x", x, 3)
    C = x.shape[1]
    if dy.shape != x.shape or mean.shape != (C,) or rstd.shape != (C,):
        raise ValueError(
            f"[norm_backward] dy {tuple(dy.shape)}, x {tuple(x.shape)}, mean {tuple(mean.shape)}"
            f" and rstd {tuple(rstd.shape)} do not match"
        )
    xp = _arrays.namespace(dy)
    m, r = xp.reshape(mean, (1, C, 1)), xp.reshape(rstd, (1, C, 1))
    n = x.shape[0] * x.shape[2]
    with _arrays.library(dy).errstate():
        x_hat = (x - m) * r
        g_mean = xp.sum(dy, axis=_AXES, keepdims=True) / n
        gx_mean = xp.sum(dy * x_hat, axis=_AXES, keepdims=True) / n
    return (dy - g_mean - x_hat * gx_mean) * r
