"""nn.functional details not covered elsewhere: label smoothing (against PyTorch and finite
differences), and the argument errors of the functional layer."""

import numpy as np
import pytest

import fastdl
import fastdl.nn.functional as F
from test_autograd import check_op


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("probs", [False, True])
def test_label_smoothing_matches_torch(reduction, weighted, probs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    if probs:
        t = rng.random((6, 5)).astype(np.float32)
        t /= t.sum(1, keepdims=True)
    else:
        t = np.array([1, 0, 4, -100, 2, 3])
    w = (rng.random(5) + 0.5).astype(np.float32) if weighted else None
    ours = F.cross_entropy(
        fastdl.tensor(x), fastdl.tensor(t), weight=None if w is None else fastdl.tensor(w),
        reduction=reduction, label_smoothing=0.2,
    )
    theirs = torch.nn.functional.cross_entropy(
        torch.tensor(x), torch.tensor(t), weight=None if w is None else torch.tensor(w),
        reduction=reduction, label_smoothing=0.2,
    )
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_label_smoothing_gradient():
    labels = fastdl.tensor([1, 0, 4, 2])
    check_op(lambda x: F.cross_entropy(x, labels, label_smoothing=0.3), (4, 5))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: F.linear(fastdl.ones(2, 3), fastdl.ones(4, 5)), ValueError, r"\[linear\] input has 3 features"),
        (lambda: F.conv2d(fastdl.ones(1, 3, 5, 5), fastdl.ones(2, 4, 3, 3)), ValueError,
         r"\[conv2d\] weight has 4 input channels, input has 3"),
        (lambda: F.conv2d(fastdl.ones(1, 1, 2, 2), fastdl.ones(1, 1, 5, 5)), ValueError,
         r"\[conv2d\] kernel size \(5, 5\) is larger than the padded input"),
        (lambda: F.conv2d(fastdl.ones(1, 1, 5, 5), fastdl.ones(1, 1, 3, 3), stride=0), ValueError,
         r"\[conv2d\] stride must be >= 1"),
        (lambda: F.conv2d(fastdl.ones(1, 1, 5, 5), fastdl.ones(1, 1, 3, 3), padding=-1), ValueError,
         r"\[conv2d\] padding must be >= 0"),
        (lambda: F.conv2d(fastdl.ones(5, 5), fastdl.ones(1, 1, 3, 3)), ValueError,
         r"\[conv2d\] expected a 3-D or 4-D input"),
        (lambda: F.max_pool2d(fastdl.ones(1, 1, 4, 4), 0), ValueError, r"\[max_pool2d\] kernel_size and stride must be >= 1"),
        (lambda: F.max_pool2d(fastdl.ones(1, 1, 4, 4), 2, padding=2), ValueError, r"\[max_pool2d\] padding"),
        (lambda: F.max_pool2d(fastdl.ones(1, 1, 2, 2), 3), ValueError, r"\[max_pool2d\] kernel size"),
        (lambda: F.cross_entropy(fastdl.ones(2, 3), fastdl.tensor([0, 3])), ValueError,
         r"\[cross_entropy\] target 3 is out of range for 3 classes"),
        (lambda: F.cross_entropy(fastdl.ones(2, 3), fastdl.tensor([0, 1, 2])), ValueError,
         r"\[cross_entropy\] class-index target must have shape \(2,\)"),
        (lambda: F.cross_entropy(fastdl.ones(2, 3), fastdl.ones(2, 4)), ValueError,
         r"\[cross_entropy\] probability target must have the input's shape"),
        (lambda: F.cross_entropy(fastdl.ones(2, 3), fastdl.tensor([0, 1]), reduction="avg"), ValueError,
         r"\[cross_entropy\] reduction must be one of"),
        (lambda: F.nll_loss(fastdl.ones(2, 3), fastdl.tensor([0, -5])), ValueError, r"\[nll_loss\] target -5"),
        (lambda: F.mse_loss(fastdl.ones(2, 3), fastdl.ones(3, 2)), ValueError, r"\[mse_loss\] input and target"),
        (lambda: F.binary_cross_entropy(fastdl.tensor([1.5]), fastdl.tensor([1.0])), ValueError,
         r"between 0 and 1"),
        (lambda: F.dropout(fastdl.ones(2), p=1.5), ValueError, r"\[dropout\] probability"),
    ],
)
def test_bad_arguments_raise(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_bce_with_logits_is_stable_for_large_logits():
    x = fastdl.tensor([1e4, -1e4, 50.0, -50.0], requires_grad=True)
    y = fastdl.tensor([0.0, 1.0, 1.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), [1e4, 1e4, 0.0, 0.0], atol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, -1.0, 0.0, 0.0], atol=1e-6)
