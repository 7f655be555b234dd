"""Reference conv2d: cross-correlation with zero padding, forward and backward (like PyTorch).

x is (N,C,H,W), w is (K,C,R,S), b is (K,), y is (N,K,P,Q) with
P = (H + 2ph - R) // sh + 1 and Q = (W + 2pw - S) // sw + 1.
Forward is im2col (a strided window view of the padded input, through the array library's
`as_strided`) followed by one tensordot; backward reuses the same columns for dw and scatters
dx back with a loop over R, S (col2im). Written against the array API standard: runs on any
device's arrays.
Tested in tests/test_reference.py (a 7-loop naive conv, finite differences, PyTorch).
"""

from __future__ import annotations

from ..._args import pair
from . import _arrays

__all__ = ["conv2d_backward", "conv2d_forward"]


def _check(op, x, w, stride, padding):
    # Returns the output size (P, Q) after checking every argument.
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"[{op}] expected 4-D x and w, got {x.ndim}-D and {w.ndim}-D")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"[{op}] expected input with {w.shape[1]} channels, got {x.shape[1]}")
    (sh, sw), (ph, pw) = stride, padding
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError(f"[{op}] expected stride >= 1 and padding >= 0, got {stride}, {padding}")
    H, W = x.shape[2:]
    R, S = w.shape[2:]
    P, Q = (H + 2 * ph - R) // sh + 1, (W + 2 * pw - S) // sw + 1
    if P < 1 or Q < 1:
        raise ValueError(f"[{op}] kernel {R}x{S} is larger than the padded input {H}x{W}")
    return P, Q


def pad2d(x, padding, value=0):
    # x is (N,C,H,W); returns (N,C,H+2ph,W+2pw), `value` outside x (C-contiguous, new).
    (ph, pw), (N, C, H, W) = padding, x.shape
    xp = _arrays.namespace(x)
    out = xp.full((N, C, H + 2 * ph, W + 2 * pw), value, dtype=x.dtype, device=x.device)
    out[:, :, ph : ph + H, pw : pw + W] = x
    return out


def windows2d(xpad, R, S, stride):
    # xpad is (N,C,Hp,Wp) C-contiguous; returns the view (N,C,P,Q,R,S) of its R x S windows
    # taken every (sh, sw): view[n,c,p,q,r,s] = xpad[n, c, p*sh + r, q*sw + s].
    (sh, sw), (N, C, Hp, Wp) = stride, xpad.shape
    lib = _arrays.library(xpad)
    sN, sC, sH, sW = lib.strides(xpad)
    P, Q = (Hp - R) // sh + 1, (Wp - S) // sw + 1
    return lib.as_strided(xpad, (N, C, P, Q, R, S), (sN, sC, sH * sh, sW * sw, sH, sW))


def _im2col(x, R, S, stride, padding):
    # x is (N,C,H,W); returns a view cols (N,C,P,Q,R,S) with
    # cols[n,c,p,q,r,s] = x_padded[n, c, p*sh + r, q*sw + s].
    return windows2d(pad2d(x, padding), R, S, stride)


def conv2d_forward(x, w, b, stride, padding):
    # x is (N,C,H,W), w is (K,C,R,S), b is (K,) or None; y is (N,K,P,Q).
    stride, padding = pair(stride, "conv2d", "stride"), pair(padding, "conv2d", "padding")
    _check("conv2d_forward", x, w, stride, padding)
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"[conv2d_forward] expected bias of shape {(w.shape[0],)}, got {b.shape}")
    xp = _arrays.namespace(x)
    cols = _im2col(x, w.shape[2], w.shape[3], stride, padding)
    y = xp.tensordot(cols, w, axes=([1, 4, 5], [1, 2, 3]))  # (N,P,Q,K)
    y = xp.permute_dims(y, (0, 3, 1, 2))
    if b is not None:
        y = y + b[:, None, None]
    return _arrays.library(x).contiguous(xp.astype(y, x.dtype, copy=False))


def conv2d_backward(
    dy,
    x,
    w,
    stride,
    padding,
    need_dx: bool = True,
    need_dw: bool = True,
    need_db: bool = True,
):
    # dy is (N,K,P,Q), x is (N,C,H,W), w is (K,C,R,S); returns dx (N,C,H,W), dw (K,C,R,S), db (K,).
    stride, padding = pair(stride, "conv2d", "stride"), pair(padding, "conv2d", "padding")
    P, Q = _check("conv2d_backward", x, w, stride, padding)
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    if dy.shape != (N, K, P, Q):
        raise ValueError(f"[conv2d_backward] expected dy of shape {(N, K, P, Q)}, got {dy.shape}")
    (sh, sw), (ph, pw) = stride, padding
    xp = _arrays.namespace(x)
    dx = dw = db = None
    if need_db:
        db = xp.astype(xp.sum(dy, axis=(0, 2, 3)), x.dtype, copy=False)
    if need_dw:
        cols = _im2col(x, R, S, stride, padding)
        dw = xp.astype(xp.tensordot(dy, cols, axes=([0, 2, 3], [0, 2, 3])), x.dtype, copy=False)
    if need_dx:
        dcols = xp.tensordot(dy, w, axes=([1], [0]))  # (N,P,Q,C,R,S)
        dxp = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype, device=x.device)
        for r in range(R):
            for s in range(S):
                # Tap (r, s) of output (p, q) read x_padded[p*sh + r, q*sw + s]; send dy back there.
                hs, ws = slice(r, r + sh * (P - 1) + 1, sh), slice(s, s + sw * (Q - 1) + 1, sw)
                dxp[:, :, hs, ws] += xp.permute_dims(dcols[:, :, :, :, r, s], (0, 3, 1, 2))
        dx = _arrays.library(x).contiguous(dxp[:, :, ph : ph + H, pw : pw + W])
    return dx, dw, db
