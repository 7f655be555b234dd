"""Reference fused kernels: what fastdl.compile runs after a conv or GEMM kernel, defined as the
composition of the reference kernels it replaces (the C++ twins do each in one pass).

- bias_relu_(x, bias): x (N, C, *) = relu(x + bias) with bias (C,) along dim 1, in place.
- relu_maxpool2x2_forward(x) = maxpool2d_forward(relu_forward(x), 2, 2, 0).
- relu_maxpool2x2_backward(dy, indices, y, input_shape): the max-pool backward of dy masked where
  the pooled output y is not > 0 (the ReLU's mask at the argmax; 2x2 stride-2 windows do not
  overlap, so this is relu_backward of maxpool2d_backward).
- conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding) = relu_maxpool2x2_forward of
  conv2d_forward, the argmax as its place in the 2x2 window (a code 0..3, uint8) instead of an
  index; conv2d_relu_maxpool2x2_backward = conv2d_backward of relu_maxpool2x2_backward.
The optional output buffers are written and returned (a compiled plan reuses them every step).
Written against the array API standard: runs on any device's arrays.
Tested against the C++ kernels in tests/test_kernels_fused.py.
"""

from ..._args import pair
from . import _arrays
from .activations import relu_forward
from .conv2d import _check, conv2d_backward, conv2d_forward
from .maxpool2d import maxpool2d_backward, maxpool2d_forward

__all__ = [
    "bias_relu_",
    "conv2d_relu_maxpool2x2_backward",
    "conv2d_relu_maxpool2x2_forward",
    "relu_maxpool2x2_backward",
    "relu_maxpool2x2_forward",
]


def _into(out, value):
    if out is None:
        return value
    out[...] = value
    return out


def bias_relu_(x, bias):
    if x.ndim < 2 or bias.shape != (x.shape[1],):
        raise ValueError(
            f"[bias_relu_] expected x (N, C, *) and bias (C,), got {tuple(x.shape)} and "
            f"{tuple(bias.shape)}"
        )
    xp = _arrays.namespace(x)
    x[...] = relu_forward(x + xp.reshape(bias, (x.shape[1],) + (1,) * (x.ndim - 2)))


def relu_maxpool2x2_forward(x, y_out=None, indices_out=None, need_indices=True):
    if not need_indices and indices_out is not None:
        raise ValueError("[relu_maxpool2x2_forward] indices_out given with need_indices=False")
    y, indices = maxpool2d_forward(relu_forward(x), (2, 2), (2, 2), (0, 0))
    return _into(y_out, y), (_into(indices_out, indices) if need_indices else None)


def relu_maxpool2x2_backward(dy, indices, y, input_shape, out=None):
    xp = _arrays.namespace(dy)
    N, C, H, W = input_shape
    k = indices - _corners(xp, dy, indices.dtype, W)  # each index's place: 0, 1, W or W + 1
    if not bool(xp.all((k == 0) | (k == 1) | (k == W) | (k == W + 1))):
        raise ValueError("[relu_maxpool2x2_backward] indices are not in their 2x2 windows")
    masked = xp.astype(xp.where(y > 0, dy, 0), dy.dtype, copy=False)
    return _into(out, maxpool2d_backward(masked, indices, tuple(input_shape)))


def _corners(xp, pooled, dtype, W):
    # (P, Q): the flat index h * W + w of each 2x2 window's top-left corner, for pooled (.., P, Q).
    P, Q = pooled.shape[-2:]
    return (
        xp.arange(P, dtype=dtype, device=pooled.device)[:, None] * (2 * W)
        + xp.arange(Q, dtype=dtype, device=pooled.device)[None, :] * 2
    )


def _conv_shape(op, x, w, stride, padding):
    stride, padding = pair(stride, op, "stride"), pair(padding, op, "padding")
    P, Q = _check(op, x, w, stride, padding)
    if P < 2 or Q < 2:
        raise ValueError(
            f"[{op}] the convolution's output must be at least 2x2 to pool, got {(P, Q)}"
        )
    return (x.shape[0], w.shape[0], P, Q), stride, padding


def conv2d_relu_maxpool2x2_forward(
    x, w, b, stride, padding, y_out=None, codes_out=None, need_codes=True
):
    op = "conv2d_relu_maxpool2x2_forward"
    if not need_codes and codes_out is not None:
        raise ValueError(f"[{op}] codes_out given with need_codes=False")
    shape, stride, padding = _conv_shape(op, x, w, stride, padding)
    y, indices = relu_maxpool2x2_forward(conv2d_forward(x, w, b, stride, padding))
    if not need_codes:
        return _into(y_out, y), None
    xp = _arrays.namespace(x)
    k = indices - _corners(xp, y, indices.dtype, shape[3])  # 0, 1, W or W + 1
    codes = xp.astype((k // shape[3]) * 2 + k % shape[3], xp.uint8)
    return _into(y_out, y), _into(codes_out, codes)


def conv2d_relu_maxpool2x2_backward(
    dy, codes, y, x, w, stride, padding, need_dx=True, need_dw=True, need_db=True
):
    op = "conv2d_relu_maxpool2x2_backward"
    shape, stride, padding = _conv_shape(op, x, w, stride, padding)
    pooled = shape[:2] + (shape[2] // 2, shape[3] // 2)
    if tuple(dy.shape) != pooled or tuple(codes.shape) != pooled or tuple(y.shape) != pooled:
        raise ValueError(
            f"[{op}] expected dy, codes and y of shape {pooled}, got {tuple(dy.shape)}, "
            f"{tuple(codes.shape)} and {tuple(y.shape)}"
        )
    xp = _arrays.namespace(dy)
    if bool(xp.any(codes > 3)):
        raise ValueError(f"[{op}] codes are not 0..3 (not from the forward?)")
    code = xp.astype(codes, xp.int64)
    indices = _corners(xp, dy, xp.int64, shape[3]) + (code // 2) * shape[3] + code % 2
    dz = relu_maxpool2x2_backward(dy, indices, y, shape)
    return conv2d_backward(dz, x, w, stride, padding, need_dx, need_dw, need_db)

