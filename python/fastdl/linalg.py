"""fastdl.linalg: PyTorch's torch.linalg norms (vector_norm, norm, matrix_norm) on fastdl
tensors, with gradients; the ops live in fastdl/ops/tensor_ops.py.

>>> import fastdl
>>> fastdl.linalg.vector_norm(fastdl.tensor([3.0, 4.0]))
tensor(5.)
"""

from __future__ import annotations

from .ops import tensor_ops as _tops


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The vector ord-norm of x over dim (every element when None): ord may be any float,
    inf, -inf or 0."""
    return _tops.vector_norm(x, ord, dim, keepdim, dtype=dtype)


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """A vector norm (1-D input or one dim) or a matrix norm (2-D input or two dims; "fro", 1,
    -1, inf, -inf); ord None is the 2-norm of the flattened input or the Frobenius norm."""
    return _tops.linalg_norm(A, ord, dim, keepdim, dtype=dtype)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    return _tops.linalg_norm(A, ord, tuple(dim), keepdim, dtype=dtype)
