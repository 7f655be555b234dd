"""nn.functional: the conv family (PyTorch's names and signatures); nn/functional.py re-exports
everything in __all__. conv2d itself lives in nn/functional.py; conv1d runs on it with H = 1."""

from __future__ import annotations


from .. import _devices
from .._args import single
from .._errors import ArgumentError, ArgumentIndexError, ArgumentTypeError, torch_type_name
from .._tensor import Tensor, _dt
from ..ops.embedding import Embedding as _Embedding

__all__: list = ["conv1d", "embedding"]


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D cross-correlation; input (N, C, L) or (C, L), weight (K, C/groups, kernel), bias (K,).

    >>> import fastdl
    >>> conv1d(fastdl.randn(2, 4, 10), fastdl.randn(6, 2, 3), groups=2).shape
    fastdl.Size([2, 6, 8])
    """
    from . import functional as F  # nn.functional imports this module

    op = "conv1d"
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"[{op}] {name} must be a Tensor, got {type(t).__name__}")
    if input.ndim not in (2, 3):
        raise ArgumentError(
            f"[{op}] expected a 2-D or 3-D input (N, C, L), got shape {tuple(input.shape)}"
        )
    if weight.ndim != 3:
        raise ArgumentError(
            f"[{op}] expected a 3-D weight (K, C/groups, kernel), got shape {tuple(weight.shape)}"
        )
    stride, dilation = single(stride, op, "stride"), single(dilation, op, "dilation")
    if not isinstance(padding, str):
        padding = (0, single(padding, op, "padding"))
    y = F.conv2d(
        input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, stride), padding, (1, dilation),
        groups,
    )
    return y.squeeze(-2)


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """The rows of `weight` (num_embeddings, embedding_dim) at the integer indices `input`:
    output input.shape + (embedding_dim,). The row padding_idx gets no gradient.

    >>> import fastdl
    >>> embedding(fastdl.tensor([[0, 2], [1, 0]]), fastdl.randn(3, 4)).shape
    fastdl.Size([2, 2, 4])
    """
    op = "embedding"
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"[{op}] input must be a Tensor, got {type(input).__name__}")
    if not isinstance(weight, Tensor):
        raise ArgumentTypeError(f"[{op}] weight must be a Tensor, got {type(weight).__name__}")
    kind = _dt(input._data)
    if kind.kind not in "iu":
        raise ArgumentTypeError(
            f"[{op}] expected indices of an integer dtype (Long or Int), got "
            f"{torch_type_name(input.dtype)}"
        )
    if weight.ndim != 2:
        raise ArgumentError(
            f"[{op}] weight must be 2-D (num_embeddings, embedding_dim), got shape "
            f"{tuple(weight.shape)}"
        )
    if max_norm is not None:
        raise NotImplementedError(
            f"[{op}] max_norm (renormalising the looked-up rows in place) is not supported; "
            "renormalise the weight yourself"
        )
    if scale_grad_by_freq:
        raise NotImplementedError(f"[{op}] scale_grad_by_freq=True is not supported")
    if sparse:
        raise NotImplementedError(f"[{op}] sparse=True (sparse gradients) is not supported")
    num = weight.shape[0]
    if padding_idx is not None:
        if padding_idx > 0 and padding_idx >= num:
            raise ArgumentError(f"[{op}] padding_idx must be within num_embeddings ({num})")
        if padding_idx < 0:
            if padding_idx < -num:
                raise ArgumentError(f"[{op}] padding_idx must be within num_embeddings ({num})")
            padding_idx += num
    if input.device != weight.device:
        raise ArgumentError(
            f"[{op}] expected input and weight on one device, got input on {input.device} and "
            f"weight on {weight.device}"
        )
    if input.numel():
        xp = _devices.namespace(input._data)
        lo, hi = int(xp.min(input._data)), int(xp.max(input._data))
        if lo < 0 or hi >= num:
            bad = lo if lo < 0 else hi
            raise ArgumentIndexError(
                f"[{op}] index out of range in self: index {bad}, num_embeddings {num}"
            )
    return _Embedding.apply(weight, indices=input._data, padding_idx=padding_idx)
