"""Public Tensor and autograd.Function methods that no other test reached, held to PyTorch's
behaviour: detach_, sub_, mT, expand_as, element_size, is_cuda, mark_non_differentiable and
set_materialize_grads."""

import numpy as np
import pytest

import fastdl
from fastdl.autograd import Function


def test_detach_cuts_the_tensor_from_its_graph_in_place():
    x = fastdl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert y.detach_() is y
    assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0])
    with pytest.raises(RuntimeError):  # nothing to differentiate any more
        y.sum().backward()


def test_sub_in_place_with_alpha():
    x = fastdl.tensor([5.0, 7.0])
    assert x.sub_(fastdl.tensor([1.0, 2.0]), alpha=2) is x
    np.testing.assert_array_equal(x.numpy(), [3.0, 3.0])
    x.sub_(1)
    np.testing.assert_array_equal(x.numpy(), [2.0, 2.0])


def test_mT_transposes_the_last_two_dims_with_gradient():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = fastdl.tensor(a, requires_grad=True)
    y = x.mT
    assert y.shape == (2, 4, 3)
    np.testing.assert_array_equal(y.detach().numpy(), a.swapaxes(-1, -2))
    (y * fastdl.tensor(np.arange(24.0).reshape(2, 4, 3))).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(24.0).reshape(2, 4, 3).swapaxes(-1, -2))
    with pytest.raises(RuntimeError, match=r"\[mT\] .*got a 1-D tensor"):
        fastdl.tensor([1.0]).mT


def test_expand_as_and_its_gradient_sums_back():
    x = fastdl.tensor([[1.0], [2.0]], requires_grad=True)
    y = x.expand_as(fastdl.zeros(2, 3))
    assert y.shape == (2, 3)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[3.0], [3.0]])


@pytest.mark.parametrize(
    "dtype, size",
    [("float32", 4), ("float64", 8), ("int64", 8), ("int32", 4), ("uint8", 1),
     ("bool_", 1)],
)
def test_element_size(dtype, size):
    assert fastdl.zeros(3, dtype=getattr(fastdl, dtype)).element_size() == size


def test_is_cuda_is_false_on_the_cpu():
    assert fastdl.zeros(2).is_cuda is False


def test_mark_non_differentiable_outputs_get_no_graph():
    x = fastdl.tensor([-1.0, 2.0], requires_grad=True)

    class Marked(Function):
        @staticmethod
        def forward(ctx, x):
            out, flag = x * 2, (x > 0).to(fastdl.float32)
            ctx.mark_non_differentiable(flag)
            return out, flag

        @staticmethod
        def backward(ctx, dout, dflag):
            return dout * 2

    out, flag = Marked.apply(x)
    assert out.requires_grad and not flag.requires_grad
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_set_materialize_grads_false_passes_none_for_unused_outputs():
    seen = []

    class Two(Function):
        @staticmethod
        def forward(ctx, x, materialize):
            ctx.set_materialize_grads(materialize)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, da, db):
            seen.append(db)
            return (da * 2 if da is not None else None), None

    for materialize in (False, True):
        seen.clear()
        x = fastdl.tensor([1.0, 2.0], requires_grad=True)
        a, _ = Two.apply(x, materialize)
        a.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
        if materialize:
            np.testing.assert_array_equal(seen[0].numpy(), [0.0, 0.0])
        else:
            assert seen == [None]
