"""Activation ops: GELU (exact and tanh), ELU, SiLU, Softplus, Hardtanh, with PyTorch's formulas
for the forward and the backward (the same branch conditions, so results match at the kinks).

Written against the array API namespace of the input, so they run on every device. The standard
has no erf: `erf` here is a Chebyshev approximation fitted to the double-precision erf (error
below 1e-15 in float64; a few ulp in float32), evaluated with standard functions only.
"""

from __future__ import annotations

import math

from .._functions import _namespace
from ..autograd.function import Op

# ---------------------------------------------------------------- erf

# erf(x) / x as a Chebyshev series in t = 2 x^2 - 1, for |x| <= 1.
_ERF_SMALL = (
    0.9754769393826542, -0.1422612051037136, 0.010035582187599808, -0.0005768764699766813,
    2.7419931252179807e-05, -1.1043175506784584e-06, 3.848875539530956e-08,
    -1.1808582270806902e-09, 3.233417366474558e-11, -7.990936578885187e-13,
    1.8028156657175538e-14, -3.256505295274099e-16,
)
# erfc(x) exp(x^2) as a Chebyshev series in u = 1/x mapped from [1/6, 1] to [-1, 1], for
# 1 <= x <= 6 (erf(x) is 1 in float64 beyond 6).
_ERFC_LARGE = (
    0.27477468589795295, 0.16699329119310397, -0.014778434908201264, 0.0004607660043734951,
    0.00017657967835413906, -5.026984064248075e-05, 7.4270133556401516e-06,
    -3.5188112193081085e-07, -1.7150112881022937e-07, 6.70662305106885e-08,
    -1.4316589283234885e-08, 1.7595567666456502e-09, 7.452129221897404e-11,
    -1.1543783649521337e-10, 3.887349616212452e-11, -8.50485052981232e-12,
    1.127264135483105e-12, 4.331284693510632e-14, -8.42343048707094e-14,
    3.200545938378386e-14, -8.107175084958163e-15, 1.4427342890192511e-15,
    -6.164816067218785e-17,
)
_U_LO, _U_HI = 1.0 / 6.0, 1.0


def _chebyshev(t, coefs):
    """sum_k coefs[k] T_k(t) by Clenshaw's recurrence (t is an array in [-1, 1])."""
    b1 = b2 = 0.0
    two_t = 2.0 * t
    for c in reversed(coefs[1:]):
        b1, b2 = two_t * b1 - b2 + c, b1
    return t * b1 - b2 + coefs[0]


def erf(x):
    """The error function of a floating-point array, elementwise (device-neutral)."""
    xp = _namespace(x)
    a = xp.abs(x)
    small = xp.clip(a, 0.0, 1.0)
    erf_small = small * _chebyshev(2.0 * small * small - 1.0, _ERF_SMALL)
    large = xp.clip(a, 1.0, 6.0)
    u = 1.0 / large
    t = (2.0 * u - (_U_LO + _U_HI)) / (_U_HI - _U_LO)
    erf_large = 1.0 - xp.exp(-large * large) * _chebyshev(t, _ERFC_LARGE)
    # NOTE: tests written as "a > bound" so a NaN falls through to erf_small, which keeps it
    y = xp.where(a > 6.0, xp.ones_like(x), xp.where(a > 1.0, erf_large, erf_small))
    return xp.where(x < 0, -y, y)


def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow for any x."""
    xp = _namespace(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# ---------------------------------------------------------------- ops

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_BETA = math.sqrt(2.0 / math.pi)
_TANH_KAPPA = 0.044715


class GELU(Op):
    """x Phi(x): exact (Phi the normal CDF, through erf) or PyTorch's tanh approximation."""

    saves = (0,)

    @staticmethod
    def direct(x, approximate):
        xp = _namespace(x)
        if approximate == "tanh":
            inner = _TANH_BETA * (x + _TANH_KAPPA * x * x * x)
            return 0.5 * x * (1.0 + xp.tanh(inner))
        return x * 0.5 * (1.0 + erf(x * _SQRT1_2))

    def forward(self, x, approximate):
        self.x, self.approximate = x, approximate
        return GELU.direct(x, approximate)

    def backward(self, g):
        x = self.x
        xp = _namespace(x)
        if self.approximate == "tanh":
            x_sq = x * x
            tanh_inner = xp.tanh(_TANH_BETA * (x + _TANH_KAPPA * x_sq * x))
            left_derivative = 0.5 * (1.0 + tanh_inner)
            right_derivative = (
                0.5 * x * (1.0 - tanh_inner * tanh_inner) * _TANH_BETA
                * (1.0 + 3.0 * _TANH_KAPPA * x_sq)
            )
            return (g * (left_derivative + right_derivative),)
        cdf = 0.5 * (1.0 + erf(x * _SQRT1_2))
        pdf = xp.exp(-0.5 * x * x) * _INV_SQRT_2PI
        return (g * (cdf + x * pdf),)


class ELU(Op):
    """x for x > 0, alpha (exp(x) - 1) otherwise."""

    saves = (0,)

    @staticmethod
    def direct(x, alpha):
        xp = _namespace(x)
        # exp of min(x, 0): the discarded branch never overflows
        return xp.where(x > 0, x, alpha * xp.expm1(xp.clip(x, None, 0.0)))

    def forward(self, x, alpha):
        self.x, self.alpha = x, alpha
        return ELU.direct(x, alpha)

    def backward(self, g):
        xp = _namespace(g)
        x = self.x
        return (xp.where(x <= 0, g * (self.alpha * xp.exp(xp.clip(x, None, 0.0))), g),)


class SiLU(Op):
    """x sigmoid(x)."""

    saves = (0,)

    @staticmethod
    def direct(x):
        return x * _sigmoid(x)

    def forward(self, x):
        self.x = x
        return x * _sigmoid(x)

    def backward(self, g):
        x = self.x
        s = _sigmoid(x)
        return (g * (s * (1.0 + x * (1.0 - s))),)


class Softplus(Op):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""

    saves = (0,)

    @staticmethod
    def direct(x, beta, threshold):
        xp = _namespace(x)
        bx = x * beta
        soft = xp.log1p(xp.exp(xp.clip(bx, None, float(threshold)))) / beta
        return xp.where(bx > threshold, x, soft)

    def forward(self, x, beta, threshold):
        self.x, self.beta, self.threshold = x, beta, threshold
        return Softplus.direct(x, beta, threshold)

    def backward(self, g):
        xp = _namespace(g)
        bx = self.x * self.beta
        return (xp.where(bx > self.threshold, g, g * _sigmoid(bx)),)


class Hardtanh(Op):
    """x clipped to [min_val, max_val]; the gradient is zero at and beyond the bounds."""

    saves = (0,)

    @staticmethod
    def direct(x, min_val, max_val):
        return _namespace(x).clip(x, float(min_val), float(max_val))

    def forward(self, x, min_val, max_val):
        self.x, self.min_val, self.max_val = x, min_val, max_val
        return Hardtanh.direct(x, min_val, max_val)

    def backward(self, g):
        xp = _namespace(g)
        x = self.x
        outside = (x <= self.min_val) | (x >= self.max_val)
        return (xp.where(outside, xp.zeros_like(g), g),)


__all__ = ["ELU", "GELU", "Hardtanh", "SiLU", "Softplus", "erf"]
