"""cpu backend: the fused epilogues of fastdl.compile (csrc/cpu/fused.cpp): bias + ReLU in
place, ReLU + 2x2 max pooling forward and backward into optional reused buffers, and the conv
block conv2d + bias + ReLU + 2x2 max pool (csrc/cpu/conv2d.cpp, which owns the conv paths)."""

from ... import _C
from ..._args import pair
from . import conv2d as _conv2d
from ._arrays import f32, i64, u8

__all__ = [
    "bias_relu_",
    "conv2d_relu_maxpool2x2_backward",
    "conv2d_relu_maxpool2x2_forward",
    "relu_maxpool2x2_backward",
    "relu_maxpool2x2_forward",
]


def bias_relu_(x, bias):
    # In place: x must already be C-contiguous float32 (the binding says so otherwise).
    _C.bias_relu_(x, f32(bias))


def relu_maxpool2x2_forward(x, y_out=None, indices_out=None, need_indices=True):
    return _C.relu_maxpool2x2_forward(f32(x), y_out, indices_out, need_indices)


def relu_maxpool2x2_backward(dy, indices, y, input_shape, out=None):
    return _C.relu_maxpool2x2_backward(
        f32(dy), i64(indices), f32(y), tuple(int(d) for d in input_shape), out
    )


def conv2d_relu_maxpool2x2_forward(
    x, w, b, stride, padding, y_out=None, codes_out=None, need_codes=True
):
    (sh, sw) = pair(stride, "conv2d_relu_maxpool2x2_forward", "stride")
    (ph, pw) = pair(padding, "conv2d_relu_maxpool2x2_forward", "padding")
    return _C.conv2d_relu_maxpool2x2_forward(
        f32(x), f32(w), None if b is None else f32(b), sh, sw, ph, pw, y_out, codes_out,
        need_codes, _conv2d._get_algorithm(),
    )


def conv2d_relu_maxpool2x2_backward(
    dy, codes, y, x, w, stride, padding, need_dx=True, need_dw=True, need_db=True
):
    (sh, sw) = pair(stride, "conv2d_relu_maxpool2x2_backward", "stride")
    (ph, pw) = pair(padding, "conv2d_relu_maxpool2x2_backward", "padding")
    return _C.conv2d_relu_maxpool2x2_backward(
        f32(dy), u8(codes), f32(y), f32(x), f32(w), sh, sw,
        ph, pw, bool(need_dx), bool(need_dw), bool(need_db), _conv2d._get_algorithm(),
    )

