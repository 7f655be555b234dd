"""Reference activations: ReLU, sigmoid, tanh forward and backward (float32 and float64).

Backward passes take the forward's output y: relu' = [y > 0], sigmoid' = y(1 - y), tanh' = 1 - y^2.
Written against the array API standard: runs on any device's arrays (the fallback of a device).
"""

from . import _arrays

__all__ = [
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
]


def relu_forward(x):
    # NOTE: maximum propagates NaN, as PyTorch's relu does.
    return _arrays.namespace(x).maximum(x, 0)


def relu_backward(dy, y):
    xp = _arrays.namespace(dy)
    return xp.astype(xp.where(y > 0, dy, 0), dy.dtype, copy=False)


def sigmoid_forward(x):
    # Stable for large |x|: exp only ever sees non-positive arguments.
    xp = _arrays.namespace(x)
    e = xp.exp(-xp.abs(x))
    return xp.astype(xp.where(x >= 0, 1 / (1 + e), e / (1 + e)), x.dtype, copy=False)


def sigmoid_backward(dy, y):
    return dy * y * (1 - y)


def tanh_forward(x):
    return _arrays.namespace(x).tanh(x)


def tanh_backward(dy, y):
    return dy * (1 - y * y)
