"""cuda backend: conv2d forward and backward as implicit GEMM (csrc/cuda/conv2d.cu)."""

from __future__ import annotations

from ._arrays import cupy, f32, kernels, pair, stream

__all__ = ["conv2d_backward", "conv2d_forward"]


def _out_hw(x, w, stride, padding) -> tuple:
    # (P, Q) of the output; (0, 0) for shapes the binding refuses (it names what is wrong).
    if x.ndim != 4 or w.ndim != 4:
        return 0, 0
    (sh, sw), (ph, pw) = stride, padding
    if sh < 1 or sw < 1:
        return 0, 0
    return (
        max((x.shape[2] + 2 * ph - w.shape[2]) // sh + 1, 0),
        max((x.shape[3] + 2 * pw - w.shape[3]) // sw + 1, 0),
    )


def conv2d_forward(x, w, b, stride, padding):
    # x is (N,C,H,W), w is (K,C,R,S), b is (K,) or None; y is (N,K,P,Q).
    stride, padding = pair(stride), pair(padding)
    x, w = f32(x), f32(w)
    P, Q = _out_hw(x, w, stride, padding)
    y = cupy().empty((x.shape[0] if x.ndim else 0, w.shape[0] if w.ndim else 0, P, Q), "float32")
    kernels().conv2d_forward(y, x, w, None if b is None else f32(b), stride, padding, stream())
    return y


def conv2d_backward(
    dy, x, w, stride, padding, need_dx: bool = True, need_dw: bool = True, need_db: bool = True
):
    # dy is (N,K,P,Q), x is (N,C,H,W), w is (K,C,R,S); returns dx (N,C,H,W), dw (K,C,R,S), db (K,).
    cp = cupy()
    dy, x, w = f32(dy), f32(x), f32(w)
    dx = cp.empty(x.shape, "float32") if need_dx else None
    dw = cp.empty(w.shape, "float32") if need_dw else None
    db = cp.empty(w.shape[:1], "float32") if need_db else None
    kernels().conv2d_backward(dx, dw, db, dy, x, w, pair(stride), pair(padding), stream())
    return dx, dw, db
