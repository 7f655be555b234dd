"""cpu backend: the weight gradient of an embedding lookup (csrc/cpu/embedding.cpp)."""

from __future__ import annotations

import numpy as np

from ... import _C
from ._arrays import f32, i64

__all__ = ["embedding_backward"]


def embedding_backward(
    dy: np.ndarray, indices: np.ndarray, num_embeddings: int, padding_idx: int | None
) -> np.ndarray:
    """dy (M, D), indices int64 (M,) -> dw (num_embeddings, D), row padding_idx zero."""
    return _C.embedding_backward(f32(dy), i64(indices), int(num_embeddings), padding_idx)
