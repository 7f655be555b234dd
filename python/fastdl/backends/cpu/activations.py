"""cpu backend: ReLU, sigmoid, tanh forward and backward (csrc/cpu/activations.cpp).

The arrays go to _C as they are: its bindings check dtype, layout and alignment, and only an
array they refuse (another dtype, a strided or misaligned view) is converted and passed again.
On a tiny tensor that saves the ~200 ns of checking first in Python (a per-op overhead goal).
"""

from ... import _C
from ._arrays import f32 as _f32

__all__ = [
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
]


def _forward(kernel, x):
    try:
        return kernel(x)
    except ValueError:  # not a C-contiguous aligned float32 array
        return kernel(_f32(x))


def _backward(kernel, dy, y):
    try:
        return kernel(dy, y)
    except ValueError:
        return kernel(_f32(dy), _f32(y))


def relu_forward(x):
    return _forward(_C.relu_forward, x)


def relu_backward(dy, y):
    return _backward(_C.relu_backward, dy, y)


def sigmoid_forward(x):
    return _forward(_C.sigmoid_forward, x)


def sigmoid_backward(dy, y):
    return _backward(_C.sigmoid_backward, dy, y)


def tanh_forward(x):
    return _forward(_C.tanh_forward, x)


def tanh_backward(dy, y):
    return _backward(_C.tanh_backward, dy, y)
