"""Embedding lookup: the rows of a weight table at integer indices, and its scatter-add backward
(the backend's `embedding_backward`: the C++ kernel for CPU float32, the reference otherwise).

w is (V, D) (V = num_embeddings, D = embedding_dim), indices are any integer shape I; y is I + (D,).
"""

from __future__ import annotations

from .. import _devices
from ..autograd.function import Op


class Embedding(Op):
    """y = w[indices]; dw = scatter-add of dy's rows at indices (repeated indices add up), with
    the row padding_idx (when not None) left at zero. The indices are a parameter, not an
    input: they get no gradient. They are in range (nn.functional.embedding checks)."""

    @staticmethod
    def direct(w, indices, padding_idx):
        xp = _devices.namespace(w)
        flat = xp.reshape(indices, (-1,))
        return xp.reshape(xp.take(w, flat, axis=0), (*indices.shape, w.shape[1]))

    def forward(self, w, indices, padding_idx):
        self.shape, self.indices, self.padding_idx = w.shape, indices, padding_idx
        return Embedding.direct(w, indices, padding_idx)

    def backward(self, dy):
        xp = _devices.namespace(dy)
        v, d = self.shape
        flat = xp.reshape(self.indices, (-1,))
        dy2 = xp.reshape(dy, (-1, d))
        return (_devices.kernels(dy2).embedding_backward(dy2, flat, v, self.padding_idx),)
