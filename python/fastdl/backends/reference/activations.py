"""Reference activations: ReLU, sigmoid, tanh forward and backward (float32 and float64).

Backward passes take the forward's output y: relu' = [y > 0], sigmoid' = y(1 - y), tanh' = 1 - y^2.
"""

import numpy as np

__all__ = [
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
]


def relu_forward(x):
    # NOTE: np.maximum propagates NaN, as PyTorch's relu does.
    return np.maximum(x, x.dtype.type(0))


def relu_backward(dy, y):
    return np.where(y > 0, dy, 0).astype(dy.dtype, copy=False)


def sigmoid_forward(x):
    # Stable for large |x|: exp only ever sees non-positive arguments.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_backward(dy, y):
    return dy * y * (1 - y)


def tanh_forward(x):
    return np.tanh(x)


def tanh_backward(dy, y):
    return dy * (1 - y * y)
