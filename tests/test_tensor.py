"""Tensor creation, dtypes, NumPy interchange, broadcasting, indexing, reductions and the
errors a PyTorch user would expect."""

import numpy as np
import pytest

import fastdl


def test_dtype_inference_follows_pytorch():
    assert fastdl.tensor([1.0, 2.0]).dtype == fastdl.float32
    assert fastdl.tensor([1, 2]).dtype == fastdl.int64
    assert fastdl.tensor([True]).dtype == fastdl.bool
    assert fastdl.tensor(np.zeros(2)).dtype == fastdl.float64
    assert fastdl.tensor([1, 2], dtype=fastdl.float64).dtype == fastdl.float64
    assert fastdl.randn(2, 3).dtype == fastdl.float32
    assert fastdl.zeros(2).dtype == fastdl.float32
    assert fastdl.arange(5).dtype == fastdl.int64
    assert fastdl.Tensor([1, 2]).dtype == fastdl.float32


def test_scalar_promotion_keeps_float32():
    x = fastdl.ones(3)
    assert (x * 2.5).dtype == fastdl.float32
    assert (2 + x).dtype == fastdl.float32
    assert (fastdl.arange(3) * 1.5).dtype == fastdl.float32
    assert (fastdl.arange(3) / 2).dtype == fastdl.float32
    assert (x + fastdl.ones(3, dtype=fastdl.float64)).dtype == fastdl.float64
    assert (fastdl.arange(3) + fastdl.ones(3)).dtype == fastdl.float32


def test_bad_data_raises():
    with pytest.raises(ValueError, match=r"\[tensor\] expected a rectangular"):
        fastdl.tensor([[1.0, 2.0], [3.0]])
    with pytest.raises(TypeError, match=r"\[tensor\] expected numeric"):
        fastdl.tensor(["a", "b"])
    with pytest.raises(TypeError, match=r"\[tensor\] expected numeric"):
        fastdl.tensor([object()])
    with pytest.raises(RuntimeError, match="only floating point"):
        fastdl.tensor([1, 2], requires_grad=True)


def test_from_numpy_is_zero_copy_both_ways():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = fastdl.from_numpy(a)
    a[0, 0] = 42
    assert t[0, 0].item() == 42
    assert t.numpy() is a
    with pytest.raises(TypeError):
        fastdl.from_numpy([1, 2])


def test_numpy_on_requires_grad_raises():
    t = fastdl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        t.numpy()
    assert t.detach().numpy().tolist() == [1.0, 1.0]


def test_broadcast_error_names_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"\[add\] shapes \(2, 3\) and \(4,\)"):
        fastdl.ones(2, 3) + fastdl.ones(4)


def test_matmul_shape_error():
    with pytest.raises(RuntimeError, match=r"\[matmul\] shapes \(2, 3\) and \(4, 5\)"):
        fastdl.ones(2, 3) @ fastdl.ones(4, 5)


def test_matmul_matches_numpy():
    rng = np.random.default_rng(0)
    for sa, sb in [((3, 4), (4, 5)), ((4,), (4,)), ((2, 3, 4), (4,)), ((2, 1, 3, 4), (5, 4, 2))]:
        a, b = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
        out = (fastdl.tensor(a) @ fastdl.tensor(b)).numpy()
        np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)


def test_reshape_view_flatten():
    t = fastdl.arange(24).reshape(2, 3, 4)
    assert t.view(-1, 4).shape == (6, 4)
    assert t.flatten().shape == (24,)
    assert t.flatten(1).shape == (2, 12)
    assert t.shape == fastdl.Size([2, 3, 4])
    assert t.size(1) == 3 and t.dim() == 3 and t.numel() == 24
    with pytest.raises(RuntimeError, match=r"\[reshape\] shape \(5, -1\)|\[reshape\] shape \(5, 5\)"):
        t.reshape(5, -1)
    with pytest.raises(IndexError, match=r"\[unsqueeze\] dim 5"):
        t.unsqueeze(5)


def test_reductions_and_argmax():
    a = np.array([[1.0, 5.0, 3.0], [7.0, 2.0, 0.0]], np.float32)
    t = fastdl.tensor(a)
    assert t.sum().item() == a.sum()
    np.testing.assert_allclose(t.mean(dim=0).numpy(), a.mean(0))
    values, indices = t.max(dim=1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert t.argmax().item() == 3
    assert t.argmax(dim=1).tolist() == [1, 0]
    assert t.max().item() == 7.0
    np.testing.assert_allclose(t.std(dim=1).numpy(), a.std(1, ddof=1), rtol=1e-6)


def test_indexing_and_setitem():
    t = fastdl.arange(12).reshape(3, 4)
    assert t[1].tolist() == [4, 5, 6, 7]
    assert t[:, 1].tolist() == [1, 5, 9]
    assert t[-1, -1].item() == 11
    assert t[fastdl.tensor([0, 2])].shape == (2, 4)
    t[0, 0] = 100
    assert t[0, 0].item() == 100


def test_item_and_bool_errors():
    with pytest.raises(RuntimeError, match=r"\[item\]"):
        fastdl.ones(2).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(fastdl.ones(2))


def test_inplace_on_leaf_requiring_grad_needs_no_grad():
    p = fastdl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        p.mul_(2)
    with fastdl.no_grad():
        p.mul_(2).add_(1)
    assert p.tolist() == [3.0, 3.0, 3.0]


def test_manual_seed_reproducible():
    fastdl.manual_seed(7)
    a = fastdl.randn(5).tolist()
    fastdl.manual_seed(7)
    assert fastdl.randn(5).tolist() == a


@pytest.mark.cpu_only(reason="PyTorch's repr of a CPU tensor (another device's names it)")
def test_repr():
    assert repr(fastdl.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(fastdl.ones(1, requires_grad=True))
    assert "dtype=fastdl.float64" in repr(fastdl.ones(1, dtype=fastdl.float64))


@pytest.mark.cpu_only(reason="asserts the default device is the CPU")
def test_device_and_cuda():
    t = fastdl.ones(2)
    assert t.device == "cpu" and str(t.device) == "cpu"
    assert t.to("cpu") is t
    assert isinstance(fastdl.cuda.is_available(), bool)
    if not fastdl.cuda.is_available():
        with pytest.raises(RuntimeError, match="not available"):
            t.to("cuda")


def test_backend_switch():
    assert fastdl._backend.current() == "cpu"
    with fastdl.backend("reference"):
        assert fastdl._backend.current() == "reference"
        y = fastdl.tensor([-1.0, 2.0]).relu()
    assert y.tolist() == [0.0, 2.0]
    assert fastdl._backend.current() == "cpu"
    with pytest.raises(ValueError, match=r"\[backend\] expected one of"):
        with fastdl.backend("gpu"):
            pass


def test_threads():
    n = fastdl.get_num_threads()
    fastdl.set_num_threads(1)
    assert fastdl.get_num_threads() == 1
    fastdl.set_num_threads(n)
    with pytest.raises(ValueError, match="set_num_threads"):
        fastdl.set_num_threads(0)
