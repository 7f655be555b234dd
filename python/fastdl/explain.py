"""Explanations of a trained model's predictions.

`saliency(model, x, target)`: how strongly each input pixel moves the score of the target
class, |d score_target / d x|, taken as the maximum over channels (Simonyan et al., 2014).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ._tensor import Tensor
from .autograd import enable_grad, no_grad


def _targets(target: Any, n: int, scores: np.ndarray) -> np.ndarray:
    if target is None:
        return scores.argmax(axis=1)
    t = target.detach().cpu().numpy() if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"[saliency] expected integer class indices as target, got dtype {t.dtype}")
    t = np.broadcast_to(t.astype(np.int64).reshape(-1), (n,)) if t.size == 1 else t.reshape(-1)
    if t.shape != (n,):
        raise ValueError(f"[saliency] expected one target per sample ({n}), got {t.shape[0]}")
    classes = scores.shape[1]
    if t.min() < 0 or t.max() >= classes:
        raise ValueError(f"[saliency] targets must be in [0, {classes}), got {t.min()}..{t.max()}")
    return t


def saliency(model: Any, x: Any, target: Optional[Any] = None) -> Tensor:
    """Saliency maps (N, H, W) for inputs x (N, C, H, W) and class indices `target` (one int,
    or one per sample; None: the predicted class). Runs in eval mode and leaves the model's
    parameters, their gradients and its train/eval mode as they were.

    >>> import fastdl
    >>> from fastdl.models import CNN
    >>> saliency(CNN(), fastdl.zeros(2, 1, 28, 28), target=3).shape
    fastdl.Size([2, 28, 28])
    """
    # A fresh float32 leaf on x's device (an array or list is user input, read on the CPU).
    inp = (x.detach() if isinstance(x, Tensor) else Tensor._make(np.asarray(x))).float().clone()
    if inp.ndim != 4:
        raise ValueError(f"[saliency] expected x of shape (N, C, H, W), got {tuple(inp.shape)}")
    n = inp.shape[0]
    inp.requires_grad = True
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    was_training = model.training
    try:
        model.eval()
        for p in params:
            p.requires_grad_(False)  # gradients for the input only; parameter grads untouched
        with enable_grad():
            scores = model(inp)
            if scores.ndim != 2:
                raise ValueError(
                    "[saliency] expected model scores (N, classes), "
                    f"got shape {tuple(scores.shape)}"
                )
            with no_grad():
                t = _targets(target, n, scores.detach().cpu().numpy())  # host values
            mask = np.zeros(tuple(scores.shape), np.float32)
            mask[np.arange(n), t] = 1.0
            (scores * Tensor._make(mask).to(scores.device)).sum().backward()
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
        model.train(was_training)
    return inp.grad.abs().amax(dim=1)
