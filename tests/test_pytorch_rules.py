"""PyTorch's dtype and error rules (issue "PyTorch-exact semantics", part 3): dtype objects, integer
reductions, no silent float64 compute in float32 layers, integer division by zero, errors that
are catchable as PyTorch's RuntimeError, the deprecated loss arguments, and versions bumped by
optimizer steps. Each test checks fastdl's own numbers or messages; where PyTorch is installed,
the same call in PyTorch must behave alike."""

import pickle
import warnings

import numpy as np
import pytest

import fastdl
import fastdl.nn as nn
import fastdl.nn.functional as F

try:
    import torch
except ImportError:  # the parity halves of these tests need PyTorch
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def test_dtypes_print_compare_and_pickle_like_torch_dtypes():
    assert str(fastdl.float32) == "fastdl.float32" and repr(fastdl.int64) == "fastdl.int64"
    assert str(fastdl.ones(2).dtype) == "fastdl.float32"
    assert fastdl.float32 == np.float32 and fastdl.float32 == np.dtype("float32")
    assert fastdl.float == fastdl.float32 and fastdl.long == fastdl.int64
    assert fastdl.float32 != fastdl.float64
    assert np.zeros(2, fastdl.float64).dtype == np.float64  # NumPy takes it as a dtype
    assert pickle.loads(pickle.dumps(fastdl.int32)) is fastdl.int32
    assert fastdl.float32.is_floating_point and not fastdl.int64.is_floating_point
    assert fastdl.ones(2).type() == "fastdl.FloatTensor"
    assert {fastdl.float32: "f"}[fastdl.ones(1).dtype] == "f"


@pytest.mark.parametrize("dtype", ["bool", "int32", "uint8"])
def test_integer_and_bool_sum_and_prod_are_int64(dtype):
    data = np.array([1, 0, 1, 1]).astype(dtype)
    x = fastdl.tensor(data)
    assert x.sum().dtype == fastdl.int64 and x.sum().item() == 3
    assert x.prod().dtype == fastdl.int64 and x.prod().item() == 0
    if torch is not None:
        t = torch.tensor(data)
        assert str(t.sum().dtype) == "torch.int64" and str(t.prod().dtype) == "torch.int64"


@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), (-1, False)])
def test_prod_values_and_gradient_with_zeros(dim, keepdim):
    data = np.array([[1.0, 0.0, 3.0], [2.0, 5.0, 0.5], [0.0, 0.0, 2.0]])
    x = fastdl.tensor(data, requires_grad=True)
    y = x.prod() if dim is None else x.prod(dim, keepdim=keepdim)
    (y * y).sum().backward()
    # d(prod^2)/dx_i = 2 prod * (product of the others), by hand:
    if dim is None:
        expected = np.zeros_like(data)  # two zeros: every product of the others is 0
    else:
        d = dim % 2
        moved = np.moveaxis(data, d, -1)
        others = np.stack(
            [np.prod(np.delete(moved, i, axis=-1), axis=-1) for i in range(3)], axis=-1
        )
        expected = np.moveaxis(2 * np.prod(moved, -1, keepdims=True) * others, -1, d)
    np.testing.assert_allclose(x.grad.numpy(), expected)
    if torch is not None:
        t = torch.tensor(data, requires_grad=True)
        u = t.prod() if dim is None else t.prod(dim, keepdim=keepdim)
        (u * u).sum().backward()
        np.testing.assert_allclose(y.detach().numpy(), u.detach().numpy())
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())


def test_float64_input_into_float32_layers_raises_runtime_error():
    lin, conv = nn.Linear(3, 2), nn.Conv2d(1, 2, 3)
    with pytest.raises(RuntimeError, match=r"\[linear\].*same dtype.*float64.*float32"):
        lin(fastdl.ones(2, 3, dtype=fastdl.float64))
    with pytest.raises(RuntimeError, match=r"\[conv2d\].*same dtype"):
        conv(fastdl.ones(1, 1, 5, 5, dtype=fastdl.float64))
    with pytest.raises(RuntimeError, match=r"\[matmul\].*same dtype"):
        fastdl.ones(2, 3) @ fastdl.ones(3, 2, dtype=fastdl.float64)
    assert lin.double()(fastdl.ones(2, 3, dtype=fastdl.float64)).dtype == fastdl.float64
    if torch is not None:
        with pytest.raises(RuntimeError):
            torch.nn.Linear(3, 2)(torch.ones(2, 3, dtype=torch.float64))
        with pytest.raises(RuntimeError):
            torch.ones(2, 3) @ torch.ones(3, 2, dtype=torch.float64)


@pytest.mark.parametrize("op", ["floordiv", "mod", "ifloordiv", "imod"])
def test_integer_division_by_zero_raises(op):
    def run(lib):
        x = lib.tensor([4, 5, 6])
        d = lib.tensor([1, 0, 2])
        if op == "floordiv":
            return x // d
        if op == "mod":
            return x % d
        if op == "ifloordiv":
            x //= d
        else:
            x %= d
        return x

    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        run(fastdl)
    if torch is not None:
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            run(torch)
    # float division by zero is IEEE's, as in PyTorch
    assert fastdl.tensor([1.0, -1.0]).__floordiv__(0.0).tolist() == [float("inf"), -float("inf")]


def test_float_class_labels_in_cross_entropy_say_what_is_expected():
    logits = fastdl.randn(4, 3)
    with pytest.raises(RuntimeError, match=r"int64 class indices.*target\.long\(\)"):
        F.cross_entropy(logits, fastdl.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="probability target must have the input's shape"):
        F.cross_entropy(logits, fastdl.rand(4, 5))


def test_argument_errors_are_catchable_as_runtime_error_and_value_error():
    for call in (
        lambda: F.linear(fastdl.ones(2, 4), fastdl.ones(3, 5)),
        lambda: F.cross_entropy(fastdl.randn(4, 3), fastdl.tensor([0, 1])),
        lambda: F.conv2d(fastdl.ones(1, 2, 5, 5), fastdl.ones(3, 1, 3, 3)),
    ):
        with pytest.raises(RuntimeError) as caught:
            call()
        assert isinstance(caught.value, ValueError)
    with pytest.raises(TypeError) as caught:
        F.linear(fastdl.ones(2, 3), fastdl.ones(2, 3, dtype=fastdl.float64))
    assert isinstance(caught.value, RuntimeError)


@pytest.mark.parametrize(
    "legacy", [{"size_average": False}, {"reduce": False}, {"size_average": True, "reduce": True},
               {"size_average": False, "reduce": False}],
)
def test_deprecated_size_average_and_reduce_follow_pytorch(legacy):
    rng = np.random.default_rng(0)
    p = rng.random((4, 3)).astype(np.float32)
    t = rng.random((4, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match="size_average and reduce"):
        mse = nn.MSELoss(**legacy)(fastdl.tensor(p), fastdl.tensor(t))
    with pytest.warns(UserWarning, match="size_average and reduce"):
        bce = F.binary_cross_entropy(fastdl.tensor(p), fastdl.tensor(t), **legacy)
    squared = (p - t) ** 2
    if legacy.get("reduce") is False:
        expected = squared
    elif legacy.get("size_average") is False:
        expected = squared.sum()
    else:
        expected = squared.mean()
    np.testing.assert_allclose(mse.numpy(), expected, rtol=1e-6)
    assert bce.shape == np.shape(expected)
    if torch is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = torch.nn.functional.binary_cross_entropy(
                torch.tensor(p), torch.tensor(t), **legacy
            )
        np.testing.assert_allclose(bce.numpy(), theirs.numpy(), rtol=1e-5)


def test_loss_modules_take_pytorch_positional_order():
    ce = nn.CrossEntropyLoss(None, None, 1)  # weight, size_average, ignore_index
    assert ce.ignore_index == 1 and ce.reduction == "mean"
    assert nn.NLLLoss(None, None, 2).ignore_index == 2


def test_backward_after_an_optimizer_step_on_its_weights_raises():
    def run(lib):
        model = lib.nn.Linear(2, 1)
        opt = lib.optim.SGD(model.parameters(), lr=0.1)
        x = lib.ones(3, 2, requires_grad=True)
        loss = model(x).sum()
        loss.backward(retain_graph=True)
        opt.step()
        loss.backward()

    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        run(fastdl)
    if torch is not None:
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            run(torch)


def test_strides_and_storage_offset_of_views_match_torch():
    x = fastdl.arange(12).reshape(3, 4)
    v = x[1:, 1:].t()
    assert v.stride() == (1, 4) and v.storage_offset() == 5 and not v.is_contiguous()
    if torch is not None:
        t = torch.arange(12).reshape(3, 4)[1:, 1:].t()
        assert v.stride() == t.stride() and v.storage_offset() == t.storage_offset()


@pytest.mark.parametrize(
    "name,flip,expected",
    [("mse_loss", False, "float64"), ("mse_loss", True, "float64"), ("l1_loss", False, "float64"),
     ("binary_cross_entropy", False, None), ("binary_cross_entropy_with_logits", False, "float64"),
     ("binary_cross_entropy_with_logits", True, "float32")],
)
def test_loss_dtype_rules_for_mixed_input_and_target(name, flip, expected):
    """PyTorch's per-loss rules when input and target dtypes differ: mse/l1 promote,
    binary_cross_entropy refuses, binary_cross_entropy_with_logits takes the target's dtype."""
    rng = np.random.default_rng(1)
    p, t = rng.random(3).astype(np.float32), rng.random(3)  # float32 input, float64 target
    if flip:
        p, t = p.astype(np.float64), t.astype(np.float32)

    def run(lib):
        return getattr(lib.nn.functional, name)(lib.tensor(p), lib.tensor(t))

    if expected is None:
        with pytest.raises(RuntimeError, match="same dtype"):
            run(fastdl)
        if torch is not None:
            with pytest.raises(RuntimeError):
                run(torch)
        return
    ours = run(fastdl)
    assert str(ours.dtype) == f"fastdl.{expected}"
    hand = {
        "mse_loss": np.mean((p.astype(np.float64) - t) ** 2),
        "l1_loss": np.mean(np.abs(p.astype(np.float64) - t)),
        "binary_cross_entropy_with_logits": np.mean(
            np.logaddexp(0, p.astype(np.float64)) - t * p.astype(np.float64)
        ),
    }[name]
    np.testing.assert_allclose(ours.item(), hand, rtol=1e-5)
    if torch is not None:
        theirs = run(torch)
        assert str(theirs.dtype) == f"torch.{expected}"
        np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-6)


def test_python_float_samples_collate_to_float64_like_pytorch():
    from fastdl.utils.data import default_collate

    batch = default_collate([(0.5, 1), (1.5, 2)])
    assert batch[0].dtype == fastdl.float64 and batch[1].dtype == fastdl.int64
    if torch is not None:
        from torch.utils.data import default_collate as torch_collate

        theirs = torch_collate([(0.5, 1), (1.5, 2)])
        assert str(theirs[0].dtype) == "torch.float64" and str(theirs[1].dtype) == "torch.int64"


# Expressions a prober found giving other numbers, dtypes or shapes than PyTorch, with no error.
# Each: (expression over `lib`, expected dtype name, expected values by hand).
SILENT_CASES = {
    "zero_d_does_not_promote": ("lib.ones(2) / lib.tensor(np.float64(2.0))", "float32", [0.5, 0.5]),
    "zero_d_int64_keeps_uint8": (
        "lib.tensor([1, 2, 3], dtype=lib.uint8) - lib.tensor(2)", "uint8", [255, 0, 1]),
    "zero_d_int64_keeps_int32": ("lib.tensor([1, 2], dtype=lib.int32) + lib.tensor(2)", "int32",
                                 [3, 4]),
    "zero_d_float_lifts_ints": (
        "lib.tensor([1, 2]) + lib.tensor(0.5, dtype=lib.float64)", "float64", [1.5, 2.5]),
    "bool_plus_zero_d_int": ("lib.tensor([True, False]) + lib.tensor(2)", "int64", [3, 2]),
    "cat_int_and_float": ("lib.cat([lib.tensor([]), lib.tensor([1, 2])])", "float32", [1.0, 2.0]),
    "stack_int_and_float": ("lib.stack([lib.tensor(1), lib.tensor(2.5)])", "float32", [1.0, 2.5]),
    "tensor_of_numpy_float64": (
        "lib.tensor([np.float64(0.1), np.float64(0.2)])", "float64", [0.1, 0.2]),
    "int_clamp_float_bound": ("lib.tensor([-3, 2, 9]).clamp(0.5, 5.5)", "float32",
                              [0.5, 2.0, 5.5]),
    "int_then_list_index": (
        "lib.arange(24.).reshape(2, 3, 4)[0, :, [1, 2]]", "float32",
        [[1.0, 2.0], [5.0, 6.0], [9.0, 10.0]]),
    "uint8_index_is_a_mask": (
        "lib.tensor([-1., 2., -3., 4.])[lib.tensor([0, 1, 0, 1], dtype=lib.uint8)]", "float32",
        [2.0, 4.0]),
    "bool_pow_int": ("lib.tensor([True, False]) ** 2", "int64", [1, 0]),
    "bool_xor": ("lib.tensor([True, False]) ^ lib.tensor([True, True])", "bool", [False, True]),
}


@pytest.mark.parametrize("name", list(SILENT_CASES))
def test_dtype_shape_and_values_match_pytorch(name):
    expr, dtype, values = SILENT_CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the uint8 index warns, in both libraries
        ours = eval(expr, {"lib": fastdl, "np": np})
    assert str(ours.dtype) == f"fastdl.{dtype}"
    np.testing.assert_allclose(np.asarray(ours.tolist(), dtype=float), values, rtol=1e-6)
    if torch is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = eval(expr, {"lib": torch, "np": np})
        assert str(theirs.dtype) == f"torch.{dtype}"
        assert list(ours.shape) == list(theirs.shape)
        np.testing.assert_allclose(np.asarray(ours.tolist()), np.asarray(theirs.tolist()))


def test_contiguous_softmax_and_masked_fill_give_contiguous_results():
    x = fastdl.zeros(2, 3, requires_grad=True)
    c = x.t().contiguous()
    assert c.is_contiguous() and c.stride() == (2, 1) and c.view(-1).shape == (6,)
    a = fastdl.arange(6.0).reshape(2, 3).t()
    assert F.softmax(a, 1).is_contiguous() and F.log_softmax(a, 0).is_contiguous()
    assert a.masked_fill(a > 2, 0.0).is_contiguous()
    assert a.clone().stride() == (1, 3)  # clone keeps the layout (PyTorch's preserve_format)
    c.sum().backward()
    assert x.grad.tolist() == [[1.0] * 3] * 2


def test_amax_along_a_dim_shares_the_gradient_of_ties():
    x = fastdl.tensor([[3.0, 3.0, 1.0], [0.0, 2.0, 2.0]], requires_grad=True)
    x.amax(dim=1).sum().backward()
    assert x.grad.tolist() == [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]]
    y = fastdl.tensor([[3.0, 3.0, 1.0]], requires_grad=True)
    y.amin(dim=(0, 1)).backward()
    assert y.grad.tolist() == [[0.0, 0.0, 1.0]]


def test_setitem_with_int_and_list_index_writes_pytorchs_positions():
    x = fastdl.arange(24.0).reshape(2, 3, 4)
    x[0, :, [1, 2]] = fastdl.zeros(3, 2)
    assert x[0].tolist() == [[0.0, 0.0, 0.0, 3.0], [4.0, 0.0, 0.0, 7.0], [8.0, 0.0, 0.0, 11.0]]


def test_format_spec_on_one_element_tensors():
    assert f"{fastdl.tensor(1.23456):.3f}" == "1.235"
    assert f"{fastdl.tensor([2.5]):.1f}" == "2.5"
    with pytest.raises(TypeError, match="format"):
        f"{fastdl.ones(2):.2f}"


@pytest.mark.parametrize("expr", [
    "lib.tensor([True]) - lib.tensor([True])", "-lib.tensor([True])", "lib.tensor([2]) ** -1",
    "lib.where(lib.tensor([True, False]), lib.ones(3), lib.zeros(3))",
])
def test_refused_like_pytorch_with_runtime_error(expr):
    with pytest.raises(RuntimeError):
        eval(expr, {"lib": fastdl})
    if torch is not None:
        with pytest.raises(RuntimeError):
            eval(expr, {"lib": torch})


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_class_target_out_of_range_is_an_index_error(loss):
    with pytest.raises(IndexError, match="out of range for 3 classes") as caught:
        getattr(F, loss)(fastdl.randn(2, 3), fastdl.tensor([0, 5]))
    assert isinstance(caught.value, (ValueError, RuntimeError))
    if torch is not None:
        with pytest.raises(IndexError):
            getattr(torch.nn.functional, loss)(torch.randn(2, 3), torch.tensor([0, 5]))


def test_legacy_tensor_constructor_takes_sizes_or_data_and_is_float32():
    assert fastdl.Tensor(2, 3).shape == (2, 3) and fastdl.Tensor(2, 3).dtype == fastdl.float32
    assert fastdl.Tensor(fastdl.Size([2, 2])).shape == (2, 2)
    assert fastdl.Tensor().shape == (0,)
    assert fastdl.Tensor(np.array([1, 2])).dtype == fastdl.float32
    assert fastdl.Tensor([1.5, 2]).tolist() == [1.5, 2.0]
    with pytest.raises(TypeError, match=r"\[Tensor\]"):
        fastdl.Tensor(2.5)
    if torch is not None:
        assert str(torch.Tensor(np.array([1, 2])).dtype) == "torch.float32"
        assert tuple(torch.Tensor(2, 3).shape) == (2, 3)


@pytest.mark.parametrize("args", [(), (1,), (-1,), (0, 1, 2), (2, -1, 0), (5,)])
def test_diagonal_is_a_view_with_pytorchs_shape_and_gradient(args):
    x = fastdl.arange(24.0).reshape(2, 3, 4)
    d = x.diagonal(*args)
    expected = np.diagonal(np.arange(24.0).reshape(2, 3, 4), *args)
    np.testing.assert_array_equal(d.numpy(), expected)
    if d.numel():
        d.zero_()  # writes through into x
        assert x.sum().item() == np.arange(24.0).sum() - expected.sum()
    w = fastdl.ones(3, 3, requires_grad=True)
    y = w * 2
    y.diagonal().mul_(5)
    (y * fastdl.arange(9.0).reshape(3, 3)).sum().backward()
    assert w.grad.tolist() == [[0.0, 2.0, 4.0], [6.0, 40.0, 10.0], [12.0, 14.0, 80.0]]
    if torch is not None:
        t = torch.arange(24.0).reshape(2, 3, 4).diagonal(*args)
        assert list(t.shape) == list(d.shape)


def test_setitem_into_one_element_of_an_expanded_tensor_under_no_grad():
    base = fastdl.tensor([[1.0, 2.0, 3.0]])
    e = base.expand(3, 3)
    with fastdl.no_grad():
        e[0, 0] = 5.0
        with pytest.raises(RuntimeError, match="more than one element"):
            e[:, 1] = 7.0
    assert base.tolist() == [[5.0, 2.0, 3.0]]
