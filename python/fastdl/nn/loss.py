"""Loss modules: thin Modules over the functional losses, with PyTorch's arguments.

Class weights (`weight`, `pos_weight`) are registered as buffers, as in PyTorch, so they move with
`to()` and appear in `state_dict()` when set.
"""

from __future__ import annotations

from .._tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "MSELoss", "NLLLoss"]

_REDUCTIONS = ("none", "mean", "sum")


class _Loss(Module):
    # NOTE: PyTorch's argument order, deprecated size_average/reduce included (they override
    # `reduction` by PyTorch's rule), so positional arguments mean the same thing.
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__()
        reduction = F._legacy_reduction(size_average, reduce, reduction)
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"[{type(self).__name__}] {reduction!r} is not a valid value for reduction; "
                f"expected one of {_REDUCTIONS}"
            )
        self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(
        self, weight: Tensor | None = None, size_average=None, reduce=None, reduction: str = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class MSELoss(_Loss):
    """Mean squared error: mean((input - target)^2) (or sum, or none).

    >>> import fastdl
    >>> MSELoss()(fastdl.tensor([1.0, 2.0]), fastdl.tensor([1.0, 4.0])).item()
    2.0
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """log_softmax + negative log-likelihood over (N, C) logits; target is (N,) class indices or
    (N, C) class probabilities.

    >>> import fastdl
    >>> logits = fastdl.tensor([[2.0, 0.0, -1.0]])
    >>> round(CrossEntropyLoss()(logits, fastdl.tensor([0])).item(), 4)
    0.1698
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average=None,
        ignore_index: int = -100,
        reduce=None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"[CrossEntropyLoss] label_smoothing must be in [0, 1], got {label_smoothing}"
            )
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of (N, C) log-probabilities at (N,) class indices.

    >>> import fastdl
    >>> NLLLoss()(fastdl.tensor([[-0.5, -1.0]]), fastdl.tensor([1])).item()
    1.0
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average=None,
        ignore_index: int = -100,
        reduce=None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities in [0, 1]: -(t log p + (1 - t) log(1 - p)).

    >>> import fastdl
    >>> round(BCELoss()(fastdl.tensor([0.5]), fastdl.tensor([1.0])).item(), 4)
    0.6931
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy in one numerically stable step; `pos_weight` (C,) scales
    the positive term.

    >>> import fastdl
    >>> round(BCEWithLogitsLoss()(fastdl.tensor([0.0]), fastdl.tensor([1.0])).item(), 4)
    0.6931
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average=None,
        reduce=None,
        reduction: str = "mean",
        pos_weight: Tensor | None = None,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input,
            target,
            weight=self.weight,
            reduction=self.reduction,
            pos_weight=self.pos_weight,
        )
