"""Finite-difference gradient checks in float64, reusable by every gradient test.

    gradcheck(lambda x, w: conv2d_forward(x, w, None, 1, 0),
              [x, w],
              lambda dy, x, w: conv2d_backward(dy, x, w, 1, 0, need_db=False)[:2])

draws a fixed random dy, takes L = sum(f(*inputs) * dy) as the scalar to differentiate, and compares
backward(dy, *inputs), one gradient per input, with central differences of L. The pieces are usable
alone: `numerical_grad(fn, arrays, index)` for any scalar function, `assert_grad_close` for the
comparison (it reports the worst error).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

import numpy as np


def numerical_grad(
    fn: Callable[..., float], arrays: Sequence[np.ndarray], index: int, eps: float = 1e-6
):
    """Central differences (fn(x + eps) - fn(x - eps)) / 2 eps of the scalar fn(*arrays) with
    respect to arrays[index], one element at a time. arrays[index] is perturbed in place and
    restored; use float64 arrays so eps is meaningful."""
    x = arrays[index]
    assert x.dtype == np.float64, f"numerical_grad needs float64 inputs, got {x.dtype}"
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # views: writes reach x
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        f_plus = float(fn(*arrays))
        flat[i] = orig - eps
        f_minus = float(fn(*arrays))
        flat[i] = orig
        gflat[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def assert_grad_close(
    analytic, numeric, atol: float = 1e-5, rtol: float = 1e-4, name: str = "grad"
):
    """Assert |analytic - numeric| <= atol + rtol * |numeric| everywhere; the message names the
    worst element."""
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    assert analytic.shape == numeric.shape, f"{name}: shape {analytic.shape} != {numeric.shape}"
    if analytic.size == 0:
        return
    err = np.abs(analytic - numeric)
    allowed = atol + rtol * np.abs(numeric)
    worst = int(np.argmax(err - allowed))
    assert np.all(err <= allowed), (
        f"{name}: worst error {err.flat[worst]:.3g} at {np.unravel_index(worst, err.shape)} "
        f"(analytic {analytic.flat[worst]:.9g}, numeric {numeric.flat[worst]:.9g}, "
        f"allowed {allowed.flat[worst]:.3g}); max error overall {err.max():.3g}"
    )


def gradcheck(f, inputs, backward, *, wrt=None, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0):
    """Check backward against central differences of L = sum(f(*inputs) * dy) for a random dy.

    f(*inputs) -> array y; backward(dy, *inputs) -> the gradients of L for the inputs listed in
    `wrt` (indices into inputs, default all), in that order (a bare array when there is one).
    Inputs are copied to float64 first. Returns the analytic gradients."""
    xs = [np.array(a, dtype=np.float64) for a in inputs]
    wrt = list(range(len(xs))) if wrt is None else list(wrt)
    y = np.asarray(f(*xs))
    dy = np.asarray(np.random.default_rng(seed).standard_normal(y.shape))

    def loss(*arrays):
        return np.sum(np.asarray(f(*arrays)) * dy)

    grads = backward(dy, *xs)
    grads = [grads] if len(wrt) == 1 and isinstance(grads, np.ndarray) else list(grads)
    assert len(grads) == len(wrt), f"backward returned {len(grads)} gradients for {len(wrt)} inputs"
    for i, g in zip(wrt, grads):
        assert_grad_close(
            g, numerical_grad(loss, xs, i, eps), atol, rtol, name=f"grad of input {i}"
        )
    return grads
