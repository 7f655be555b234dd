"""Reference fused kernels: what fastdl.compile runs after a conv or GEMM kernel, defined as the
composition of the reference kernels it replaces (the C++ twins do each in one pass).

- bias_relu_(x, bias): x (N, C, *) = relu(x + bias) with bias (C,) along dim 1, in place.
- relu_maxpool2x2_forward(x) = maxpool2d_forward(relu_forward(x), 2, 2, 0).
- relu_maxpool2x2_backward(dy, indices, y, input_shape): the max-pool backward of dy masked where
  the pooled output y is not > 0 (the ReLU's mask at the argmax; 2x2 stride-2 windows do not
  overlap, so this is relu_backward of maxpool2d_backward).
The optional output buffers are written and returned (a compiled plan reuses them every step).
Written against the array API standard: runs on any device's arrays.
Tested against the C++ kernels in tests/test_kernels_fused.py.
"""

from . import _arrays
from .activations import relu_forward
from .maxpool2d import maxpool2d_backward, maxpool2d_forward

__all__ = ["bias_relu_", "relu_maxpool2x2_backward", "relu_maxpool2x2_forward"]


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
    P, Q = dy.shape[2:]
    # each index's place inside its own window: 0, 1, W or W + 1
    corner = (
        xp.arange(P, dtype=indices.dtype, device=dy.device)[:, None] * (2 * W)
        + xp.arange(Q, dtype=indices.dtype, device=dy.device)[None, :] * 2
    )
    k = indices - corner
    if not bool(xp.all((k == 0) | (k == 1) | (k == W) | (k == W + 1))):
        raise ValueError("[relu_maxpool2x2_backward] indices are not in their 2x2 windows")
    masked = xp.astype(xp.where(y > 0, dy, 0), dy.dtype, copy=False)
    return _into(out, maxpool2d_backward(masked, indices, tuple(input_shape)))
