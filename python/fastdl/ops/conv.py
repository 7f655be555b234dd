"""Convolution with groups and dilation (Conv2d and Conv1d beyond groups = dilation = 1,
depthwise included), built on the backend's conv2d_forward / conv2d_backward kernels.

x is (N, C, H, W), w is (K, C/G, R, S), b is (K,) or None; y is (N, K, P, Q) with
P = (H + 2ph - dh (R - 1) - 1) // sh + 1 (and Q likewise), G = groups.

- groups: the kernel runs once per group on the group's channel slices (input channels
  [g C/G, (g+1) C/G) against output channels [g K/G, (g+1) K/G)), and the outputs are
  concatenated along the channel dim.
- dilation: the weight is dilated, zeros inserted between its taps, to (K, C/G, dh (R-1) + 1,
  dw (S-1) + 1); a dilated conv is a plain conv with that weight. The weight's gradient is the
  dilated weight's gradient at the taps.

NOTE: correctness first. The per-group loop makes G kernel calls (a depthwise conv with many
channels pays G calls of one channel each), and the dilated weight multiplies by zeros:
(dh (R-1) + 1)(dw (S-1) + 1) / (R S) times the work of the taps. A grouped/dilated kernel in
csrc/ would remove both. The groups = dilation = 1 case never comes here: nn.functional.conv2d
runs fastdl._functions.Conv2d on the kernels directly.
"""

from __future__ import annotations

from .. import _devices
from ..autograd.function import Op


def dilate(w, dilation):
    """w (K, C, R, S) with dh - 1 and dw - 1 zeros between its taps: (K, C, dh(R-1)+1, dw(S-1)+1)."""
    dh, dw = dilation
    if dh == 1 and dw == 1:
        return w
    xp = _devices.namespace(w)
    k, c, r, s = w.shape
    wd = xp.zeros((k, c, dh * (r - 1) + 1, dw * (s - 1) + 1), dtype=w.dtype, device=w.device)
    wd[:, :, ::dh, ::dw] = w
    return wd


def undilate(dwd, dilation):
    """The taps of a dilated weight's gradient: the inverse of `dilate`'s placement."""
    dh, dw = dilation
    if dh == 1 and dw == 1:
        return dwd
    return _devices.library(dwd).contiguous(dwd[:, :, ::dh, ::dw])


def _group(a, axis, g, size):
    """Channels [g size, (g+1) size) of `a` along `axis` (0 or 1), C-contiguous for the kernels."""
    part = a[g * size : (g + 1) * size, ...] if axis == 0 else a[:, g * size : (g + 1) * size, ...]
    return _devices.library(a).contiguous(part)


class Conv2dGrouped(Op):
    """x is (N, C, H, W), w is (K, C/G, R, S), b is (K,) or None; y is (N, K, P, Q)."""

    saves = (0, 1)

    def forward(self, x, w, b, stride, padding, dilation, groups):
        self.x, self.w = x, w
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        be = _devices.kernels(x)
        wd = dilate(w, dilation)
        if groups == 1:
            return be.conv2d_forward(x, wd, b, stride, padding)
        cg, kg = x.shape[1] // groups, w.shape[0] // groups
        ys = [
            be.conv2d_forward(
                _group(x, 1, g, cg), _group(wd, 0, g, kg),
                None if b is None else _group(b, 0, g, kg), stride, padding,
            )
            for g in range(groups)
        ]
        return _devices.namespace(x).concat(ys, axis=1)

    def backward(self, dy):
        need_x, need_w, need_b = self.needs_input_grad
        x, groups, stride, padding = self.x, self.groups, self.stride, self.padding
        be = _devices.kernels(dy)
        wd = dilate(self.w, self.dilation)
        if groups == 1:
            dx, dwd, db = be.conv2d_backward(dy, x, wd, stride, padding, need_x, need_w, need_b)
            return dx, (undilate(dwd, self.dilation) if need_w else None), db
        xp = _devices.namespace(dy)
        cg, kg = x.shape[1] // groups, wd.shape[0] // groups
        parts = [
            be.conv2d_backward(
                _group(dy, 1, g, kg), _group(x, 1, g, cg), _group(wd, 0, g, kg),
                stride, padding, need_x, need_w, need_b,
            )
            for g in range(groups)
        ]
        dx = xp.concat([p[0] for p in parts], axis=1) if need_x else None
        dw = undilate(xp.concat([p[1] for p in parts], axis=0), self.dilation) if need_w else None
        db = xp.concat([p[2] for p in parts], axis=0) if need_b else None
        return dx, dw, db
