"""Pooling ops (the reference; C++ kernels are a later step): average pooling over windows,
and adaptive average and max pooling over PyTorch's adaptive windows.

Written once against the array API namespace of the input (any device): windows are read as
strided slices, one slice per kernel offset (R * S slices), and gradients are added back
through the same slices.
"""

from __future__ import annotations

from .. import _devices
from ..autograd.function import Op


def _zeros(xp, shape, like):
    return xp.zeros(shape, dtype=like.dtype, device=like.device)


def _offset_slices(kernel, stride, out_hw):
    """For each kernel offset (r, s), the index of the (P, Q) window elements it picks."""
    (R, S), (sh, sw), (P, Q) = kernel, stride, out_hw
    for r in range(R):
        for s in range(S):
            yield (..., slice(r, r + sh * (P - 1) + 1, sh), slice(s, s + sw * (Q - 1) + 1, sw))


def _window_sum(x, kernel, stride, out_hw):
    """x (..., H, W) -> (..., P, Q): each window's sum."""
    total = None
    for index in _offset_slices(kernel, stride, out_hw):
        total = x[index] if total is None else total + x[index]
    return total


def _pad(xp, x, before, size):
    """x (..., H, W) placed at offset `before` (top, left) in zeros of spatial `size`."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    out = _zeros(xp, tuple(x.shape[:-2]) + tuple(size), x)
    h, w = x.shape[-2:]
    out[..., before[0] : before[0] + h, before[1] : before[1] + w] = x
    return out


def pool_output_size(size, k, s, p, ceil_mode):
    """PyTorch's pooled length of one dim: floor (or ceil) of (size + 2p - k) / s, plus 1; with
    ceil_mode the last window must start inside the input or its left padding."""
    span = size + 2 * p - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _divisor(xp, x, kernel, stride, padding, out_hw, full, count_include_pad, divisor_override):
    """What each window's sum is divided by: a number, or a (P, Q) array of counts where windows
    differ (count_include_pad=False with padding; windows past the padded input in ceil_mode)."""
    if divisor_override is not None:
        return divisor_override
    (H, W), (ph, pw) = x.shape[-2:], padding
    counted = (H + 2 * ph, W + 2 * pw) if count_include_pad else (H, W)
    before = (0, 0) if count_include_pad else (ph, pw)
    if counted == tuple(full):
        return kernel[0] * kernel[1]
    ones = xp.ones(counted, dtype=x.dtype, device=x.device)
    return _window_sum(_pad(xp, ones, before, full), kernel, stride, out_hw)


class AvgPool2d(Op):
    """x is (N, C, H, W) -> y (N, C, P, Q): each window's sum over its divisor (PyTorch's
    count_include_pad and divisor_override rules); the windows of (P, Q) are given by the
    caller (pool_output_size). Saves nothing of x but its shape."""

    def forward(self, x, kernel, stride, padding, out_hw, count_include_pad, divisor_override):
        xp = _devices.namespace(x)
        H, W = x.shape[-2:]
        full = (
            max(H + 2 * padding[0], (out_hw[0] - 1) * stride[0] + kernel[0]),
            max(W + 2 * padding[1], (out_hw[1] - 1) * stride[1] + kernel[1]),
        )
        self.divisor = _divisor(
            xp, x, kernel, stride, padding, out_hw, full, count_include_pad, divisor_override
        )
        self.shape, self.full = x.shape, full
        self.kernel, self.stride, self.padding, self.out_hw = kernel, stride, padding, out_hw
        return _window_sum(_pad(xp, x, padding, full), kernel, stride, out_hw) / self.divisor

    def backward(self, g):
        # Each window's gradient, divided like its sum, goes to every element of the window.
        xp = _devices.namespace(g)
        g = g / self.divisor
        dx = _zeros(xp, tuple(self.shape[:-2]) + self.full, g)
        for index in _offset_slices(self.kernel, self.stride, self.out_hw):
            dx[index] = dx[index] + g
        (H, W), (ph, pw) = self.shape[-2:], self.padding
        return (dx[..., ph : ph + H, pw : pw + W],)


def adaptive_windows(size, out):
    """PyTorch's adaptive windows of one dim: window i is [floor(i * size / out),
    ceil((i + 1) * size / out))."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _dim_index(axis, window):
    """The index of `window` along axis -1 or -2."""
    return (..., slice(*window)) if axis == -1 else (..., slice(*window), slice(None))


def _adaptive_mean(xp, x, axis, out):
    """x (..., L) or (..., L, W) for axis -1 or -2 -> each adaptive window's mean along it."""
    size = x.shape[axis]
    if size % out == 0:  # equal, disjoint windows: one reshape
        k = size // out
        if axis == -1:
            return xp.mean(xp.reshape(x, tuple(x.shape[:-1]) + (out, k)), axis=-1)
        return xp.mean(xp.reshape(x, tuple(x.shape[:-2]) + (out, k, x.shape[-1])), axis=-2)
    parts = [xp.mean(x[_dim_index(axis, w)], axis=axis) for w in adaptive_windows(size, out)]
    return xp.stack(parts, axis=axis)


def _adaptive_mean_backward(xp, g, axis, size):
    """The gradient of _adaptive_mean: g (..., out) -> (..., size) along `axis`."""
    out = g.shape[axis]
    shape = list(g.shape)
    shape[axis] = size
    dx = _zeros(xp, tuple(shape), g)
    for i, w in enumerate(adaptive_windows(size, out)):
        gi = g[_dim_index(axis, (i, i + 1))] / (w[1] - w[0])
        index = _dim_index(axis, w)
        dx[index] = dx[index] + gi
    return dx


class AdaptiveAvgPool2d(Op):
    """x is (N, C, H, W) -> y (N, C, P, Q): the mean of each adaptive window. A rectangle's
    mean is the mean over its rows of the means over its columns, so the two dims are pooled
    one after the other."""

    def forward(self, x, out_hw):
        xp = _devices.namespace(x)
        self.hw = H, W = x.shape[-2:]
        P, Q = out_hw
        # When the windows tile the plane evenly (global pooling, 14 -> 7), each is a block of
        # a reshape: one mean instead of a loop over windows.
        self.even = P and Q and H % P == 0 and W % Q == 0
        if self.even:
            lead = tuple(x.shape[:-2])
            blocks = xp.reshape(x, lead + (P, H // P, Q, W // Q))
            return xp.mean(blocks, axis=(-3, -1))
        return _adaptive_mean(xp, _adaptive_mean(xp, x, -1, Q), -2, P)

    def backward(self, g):
        xp = _devices.namespace(g)
        H, W = self.hw
        if self.even:
            lead, (P, Q) = tuple(g.shape[:-2]), g.shape[-2:]
            kh, kw = H // P, W // Q
            share = xp.reshape(g / (kh * kw), lead + (P, 1, Q, 1))
            return (xp.reshape(xp.broadcast_to(share, lead + (P, kh, Q, kw)), lead + (H, W)),)
        return (_adaptive_mean_backward(xp, _adaptive_mean_backward(xp, g, -2, H), -1, W),)


class AdaptiveMaxPool2d(Op):
    """x is (N, C, H, W) -> y (N, C, P, Q), the max of each adaptive window, and its position
    as int64 indices into the flattened (H * W) plane (PyTorch's; the first of equal maxima);
    saves the indices."""

    n_outputs = 2

    def forward(self, x, out_hw):
        xp = _devices.namespace(x)
        H, W = x.shape[-2:]
        lead = tuple(x.shape[:-2])
        self.rows, self.cols = adaptive_windows(H, out_hw[0]), adaptive_windows(W, out_hw[1])
        values, indices = [], []
        for h0, h1 in self.rows:
            for w0, w1 in self.cols:
                window = xp.reshape(x[..., h0:h1, w0:w1], lead + ((h1 - h0) * (w1 - w0),))
                local = xp.argmax(window, axis=-1)
                values.append(xp.max(window, axis=-1))
                kw = w1 - w0
                indices.append((h0 + local // kw) * W + (w0 + local % kw))
        shape = lead + tuple(out_hw)
        y = xp.reshape(xp.stack(values, axis=-1), shape)
        self.indices = xp.astype(xp.reshape(xp.stack(indices, axis=-1), shape), xp.int64)
        self.shape = x.shape
        return y, self.indices

    def backward(self, g):
        # Each output's gradient goes to its argmax: a one-hot of the window per output cell.
        xp = _devices.namespace(g)
        W = self.shape[-1]
        dx = _zeros(xp, self.shape, g)
        for i, (h0, h1) in enumerate(self.rows):
            for j, (w0, w1) in enumerate(self.cols):
                kh, kw = h1 - h0, w1 - w0
                idx = self.indices[..., i, j]
                local = (idx // W - h0) * kw + (idx % W - w0)
                positions = xp.arange(kh * kw, dtype=idx.dtype, device=idx.device)
                onehot = xp.astype(local[..., None] == positions, g.dtype)
                window = xp.reshape(onehot * g[..., i, j, None], tuple(g.shape[:-2]) + (kh, kw))
                dx[..., h0:h1, w0:w1] = dx[..., h0:h1, w0:w1] + window
        return (dx,)
