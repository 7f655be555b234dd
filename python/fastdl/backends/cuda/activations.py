"""cuda backend: ReLU, sigmoid, tanh forward and backward (csrc/cuda/activations.cu)."""

from __future__ import annotations

from ._arrays import cupy, f32, kernels, stream

__all__ = [
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "tanh_backward",
    "tanh_forward",
]


def _forward(name: str, x):
    x = f32(x)
    y = cupy().empty_like(x)
    kernels().activation_forward(name, y, x, stream())
    return y


def _backward(name: str, dy, y):
    dy, y = f32(dy), f32(y)
    dx = cupy().empty_like(dy)
    kernels().activation_backward(name, dx, dy, y, stream())
    return dx


def relu_forward(x):
    return _forward("relu", x)


def relu_backward(dy, y):
    return _backward("relu", dy, y)


def sigmoid_forward(x):
    return _forward("sigmoid", x)


def sigmoid_backward(dy, y):
    return _backward("sigmoid", dy, y)


def tanh_forward(x):
    return _forward("tanh", x)


def tanh_backward(dy, y):
    return _backward("tanh", dy, y)
