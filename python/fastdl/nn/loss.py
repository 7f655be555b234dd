"""Loss modules: thin Modules over the functional losses, with PyTorch's arguments.

Class weights (`weight`, `pos_weight`) are registered as buffers, as in PyTorch, so they move with
`to()` and appear in `state_dict()` when set.
"""

from __future__ import annotations

from .._args import check_reduction
from .._tensor import Tensor
from . import functional as F
from .module import Module

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CosineEmbeddingLoss", "CrossEntropyLoss", "HuberLoss",
    "KLDivLoss", "L1Loss", "MSELoss", "NLLLoss", "SmoothL1Loss",
]

class _Loss(Module):
    # NOTE: PyTorch's argument order, deprecated size_average/reduce included (they override
    # `reduction` by PyTorch's rule), so positional arguments mean the same thing.
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__()
        reduction = F._legacy_reduction(size_average, reduce, reduction)
        self.reduction = check_reduction(reduction, type(self).__name__)


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


# Each loss keeps PyTorch's own signature and spells out its functional call (NLLLoss,
# CrossEntropyLoss and BCEWithLogitsLoss look alike): a generic forward reading the arguments from a
# table would hide PyTorch's keywords and add work to every call.
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


class L1Loss(_Loss):
    """Mean absolute error: mean(|input - target|) (or sum, or none).

    >>> import fastdl
    >>> L1Loss()(fastdl.tensor([1.0, 2.0]), fastdl.tensor([1.0, 4.0])).item()
    1.0
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = input - target).

    >>> import fastdl
    >>> SmoothL1Loss()(fastdl.tensor([0.0, 3.0]), fastdl.zeros(2)).item()
    1.25
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere (d = input - target).

    >>> import fastdl
    >>> HuberLoss(delta=2.0)(fastdl.tensor([4.0]), fastdl.zeros(1)).item()
    6.0
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(_Loss):
    """KL divergence of log-probabilities `input` from `target` (probabilities, or
    log-probabilities when log_target); 'batchmean' is the KL divergence per sample.

    >>> import fastdl
    >>> KLDivLoss(reduction="batchmean")(fastdl.zeros(2, 1), fastdl.ones(2, 1)).item()
    0.0
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 log_target: bool = False) -> None:
        batchmean = reduction == "batchmean" and size_average is None and reduce is None
        super().__init__(size_average, reduce, "mean" if batchmean else reduction)
        if batchmean:
            self.reduction = "batchmean"
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class CosineEmbeddingLoss(_Loss):
    """1 - cos(x1, x2) for target 1, max(0, cos(x1, x2) - margin) for target -1.

    >>> import fastdl
    >>> x = fastdl.tensor([[1.0, 0.0]])
    >>> CosineEmbeddingLoss()(x, -x, fastdl.tensor([1])).item()
    2.0
    """

    def __init__(self, margin: float = 0.0, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return F.cosine_embedding_loss(
            input1, input2, target, margin=self.margin, reduction=self.reduction
        )
