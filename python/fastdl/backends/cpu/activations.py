"""cpu backend: ReLU, sigmoid, tanh forward and backward (csrc/cpu/activations.cpp)."""

import numpy as np

from ... import _C

__all__ = [
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
]


def _f32(a):
    if a.dtype == np.float32 and a.flags.c_contiguous:
        return a  # the common case, without np.require's ~2 us
    # NOTE: np.require keeps a 0-d array 0-d (np.ascontiguousarray would make it (1,)).
    return np.require(a, np.float32, "C")


def relu_forward(x):
    return _C.relu_forward(_f32(x))


def relu_backward(dy, y):
    return _C.relu_backward(_f32(dy), _f32(y))


def sigmoid_forward(x):
    return _C.sigmoid_forward(_f32(x))


def sigmoid_backward(dy, y):
    return _C.sigmoid_backward(_f32(dy), _f32(y))


def tanh_forward(x):
    return _C.tanh_forward(_f32(x))


def tanh_backward(dy, y):
    return _C.tanh_backward(_f32(dy), _f32(y))
