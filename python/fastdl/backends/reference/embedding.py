"""Reference embedding: the weight gradient of a lookup, the scatter-add of dy's rows at the
indices.

dy is (M, D), indices int64 (M,) in [0, V), dw (V, D) with V = num_embeddings: zeros with each
row dy[m] added at row indices[m] (repeated indices add up, in index order); the row
padding_idx (None or an int in [0, V)) stays zero.
Written against the array API standard (the scatter-add through the array library's
`index_add`): runs on any device's arrays. Tested against the C++ kernel in
tests/test_kernels_embedding.py.
"""

from . import _arrays

__all__ = ["embedding_backward"]


def embedding_backward(dy, indices, num_embeddings, padding_idx):
    # dy is (M,D), indices (M,); returns dw (V,D) of dy's dtype.
    op = "embedding_backward"
    if dy.ndim != 2 or indices.ndim != 1 or indices.shape[0] != dy.shape[0]:
        raise ValueError(
            f"[{op}] expected dy (M, D) and indices (M,), got {tuple(dy.shape)} and "
            f"{tuple(indices.shape)}"
        )
    V = num_embeddings
    if padding_idx is not None and not 0 <= padding_idx < V:
        raise ValueError(f"[{op}] padding_idx must be None or in [0, {V}), got {padding_idx}")
    xp = _arrays.namespace(dy)
    if indices.shape[0]:
        lo, hi = int(xp.min(indices)), int(xp.max(indices))
        if lo < 0 or hi >= V:
            raise IndexError(
                f"[{op}] index {lo if lo < 0 else hi} is out of range: indices must be in [0, {V})"
            )
    dw = xp.zeros((V, dy.shape[1]), dtype=dy.dtype, device=dy.device)
    _arrays.library(dw).index_add(dw, indices, dy)
    if padding_idx is not None:
        dw[padding_idx, ...] = 0
    return dw
