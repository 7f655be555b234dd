"""cpu backend: ReLU, sigmoid, tanh forward and backward (csrc/cpu/activations.cpp)."""

import numpy as np

from ... import _C
from ._arrays import f32 as _f32

__all__ = [
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
]


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
