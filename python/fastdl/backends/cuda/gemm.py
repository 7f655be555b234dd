"""cuda backend: matrix multiply, 2-D and batched 3-D (csrc/cuda/gemm.cu via _C.cuda.matmul)."""

from __future__ import annotations

from ._arrays import cupy, f32, kernels, stream

__all__ = ["matmul"]


def _operand(a, trans: bool):
    # A C-contiguous float32 array and the transpose flag that together mean op(a); a transposed
    # view of a C-contiguous array (a.T) goes as its base with the flag flipped, uncopied.
    if a.ndim >= 2 and a.dtype == "float32" and not a.flags.c_contiguous:
        t = cupy().swapaxes(a, -1, -2)
        if t.flags.c_contiguous:
            return t, not trans
    return f32(a), trans


def matmul(a, b, trans_a: bool = False, trans_b: bool = False):
    # a is (M,K) or (K,M) if trans_a, b is (K,N) or (N,K) if trans_b; each may carry a leading B.
    if a.ndim not in (2, 3) or a.ndim != b.ndim:
        raise ValueError(
            f"[matmul] expected two 2-D or two 3-D arrays, got {a.ndim}-D and {b.ndim}-D"
        )
    a, trans_a = _operand(a, bool(trans_a))
    b, trans_b = _operand(b, bool(trans_b))
    M = a.shape[-1] if trans_a else a.shape[-2]
    N = b.shape[-2] if trans_b else b.shape[-1]
    c = cupy().empty(a.shape[:-2] + (M, N), dtype="float32")
    kernels().matmul(c, a, b, trans_a, trans_b, bool(matmul.allow_tf32), stream())
    return c


matmul.allow_tf32 = False  # fastdl.backends.cuda.matmul.allow_tf32, PyTorch's switch
