"""nn layers: sparse (PyTorch's names, signatures, defaults, initialisation and state_dict keys).

Conv1d lives in nn/modules.py beside Conv2d; it is listed here so that nn exports it."""

from __future__ import annotations

from typing import Any, Optional

from .._tensor import Tensor
from . import _functional_conv as _F
from . import init
from .module import Module
from .modules import Conv1d, _new_parameter
from .parameter import Parameter

__all__: list = ["Conv1d", "Embedding"]


class Embedding(Module):
    """A lookup table of num_embeddings vectors of size embedding_dim: input integer indices of
    any shape, output input.shape + (embedding_dim,). The weight is drawn from N(0, 1); the row
    padding_idx (when given) starts at zero and gets no gradient.

    >>> import fastdl
    >>> emb = Embedding(10, 3, padding_idx=0)
    >>> emb(fastdl.tensor([[1, 2, 0], [4, 3, 9]])).shape
    fastdl.Size([2, 3, 3])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: Optional[int] = None,
        max_norm: Optional[float] = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Optional[Tensor] = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if max_norm is not None:
            raise NotImplementedError(
                "[Embedding] max_norm (renormalising the looked-up rows in place) is not "
                "supported; renormalise the weight yourself"
            )
        if scale_grad_by_freq:
            raise NotImplementedError("[Embedding] scale_grad_by_freq=True is not supported")
        if sparse:
            raise NotImplementedError("[Embedding] sparse=True (sparse gradients) is not supported")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        if padding_idx is not None:
            # PyTorch's checks (assertions there too).
            if padding_idx > 0:
                assert padding_idx < num_embeddings, "Padding_idx must be within num_embeddings"
            elif padding_idx < 0:
                assert padding_idx >= -num_embeddings, "Padding_idx must be within num_embeddings"
                padding_idx = num_embeddings + padding_idx
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            self.weight = _new_parameter((num_embeddings, embedding_dim), dtype, device)
            self.weight.requires_grad_(not _freeze)
            self.reset_parameters()
        else:
            assert list(_weight.shape) == [num_embeddings, embedding_dim], (
                "Shape of weight does not match num_embeddings and embedding_dim"
            )
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            from ..autograd.grad_mode import no_grad

            with no_grad():
                self.weight[self.padding_idx] = 0.0

    def forward(self, input: Tensor) -> Tensor:
        return _F.embedding(
            input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
            self.scale_grad_by_freq, self.sparse,
        )

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += ", scale_grad_by_freq=True"
        if self.sparse is not False:
            s += ", sparse=True"
        return s

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Tensor,
        freeze: bool = True,
        padding_idx: Optional[int] = None,
        max_norm: Optional[float] = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> "Embedding":
        """An Embedding whose weight is `embeddings` (2-D); frozen (no gradient) by default.
        NOTE: as in PyTorch, the padding_idx row is not zeroed here."""
        assert embeddings.dim() == 2, "Embeddings parameter is expected to be 2-dimensional"
        rows, cols = embeddings.shape
        return cls(
            num_embeddings=rows,
            embedding_dim=cols,
            _weight=embeddings,
            _freeze=freeze,
            padding_idx=padding_idx,
            max_norm=max_norm,
            norm_type=norm_type,
            scale_grad_by_freq=scale_grad_by_freq,
            sparse=sparse,
        )
