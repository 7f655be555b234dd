"""Reference GEMM: c = op(a) @ op(b), 2-D or batched 3-D (float32 and float64).

op(a) is (M, K), op(b) is (K, N), c is (M, N); op transposes the last two axes when asked.
Batched: a and b carry the same leading B and c is (B, M, N). No broadcasting of B.
Written against the array API standard: runs on any device's arrays.
Tested in tests/test_reference.py (naive loops, finite differences); the cpu kernel is held to it
through tests/kernel_check.py.
"""

from . import _arrays

__all__ = ["matmul"]


def matmul(a, b, trans_a: bool = False, trans_b: bool = False):
    # a is (M,K) or (K,M) if trans_a, b is (K,N) or (N,K) if trans_b; each may carry a leading B.
    if a.ndim not in (2, 3) or a.ndim != b.ndim:
        raise ValueError(
            f"[matmul] expected two 2-D or two 3-D arrays, got {a.ndim}-D and {b.ndim}-D"
        )
    if a.dtype != b.dtype:
        raise TypeError(f"[matmul] expected inputs of one dtype, got {a.dtype} and {b.dtype}")
    if a.ndim == 3 and a.shape[0] != b.shape[0]:
        raise ValueError(
            f"[matmul] expected the same batch size, got {a.shape[0]} and {b.shape[0]}"
        )
    op_a = a.mT if trans_a else a
    op_b = b.mT if trans_b else b
    if op_a.shape[-1] != op_b.shape[-2]:
        raise ValueError(
            f"[matmul] inner sizes differ: op(a) is {op_a.shape}, op(b) is {op_b.shape}"
        )
    # K = 0 gives zeros: matmul sums over an empty axis.
    return _arrays.library(a).contiguous(_arrays.namespace(a).matmul(op_a, op_b))
