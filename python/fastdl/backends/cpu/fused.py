"""cpu backend: the fused epilogues of fastdl.compile (csrc/cpu/fused.cpp): bias + ReLU in
place, and ReLU + 2x2 max pooling forward and backward into optional reused buffers."""

from ... import _C
from ._arrays import f32, i64

__all__ = ["bias_relu_", "relu_maxpool2x2_backward", "relu_maxpool2x2_forward"]


def bias_relu_(x, bias):
    # In place: x must already be C-contiguous float32 (the binding says so otherwise).
    _C.bias_relu_(x, f32(bias))


def relu_maxpool2x2_forward(x, y_out=None, indices_out=None, need_indices=True):
    return _C.relu_maxpool2x2_forward(f32(x), y_out, indices_out, need_indices)


def relu_maxpool2x2_backward(dy, indices, y, input_shape, out=None):
    return _C.relu_maxpool2x2_backward(
        f32(dy), i64(indices), f32(y), tuple(int(d) for d in input_shape), out
    )
