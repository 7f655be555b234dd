"""Devices: a tensor's device follows its storage; moving between devices, the errors PyTorch
gives for another device's tensor, and the default device. The second device here is the
strict test device (tests/strict_device.py), registered for these tests only."""

import pickle

import numpy as np
import pytest

import fastdl

strict_device = pytest.importorskip("strict_device", reason="needs array-api-strict")


strict = strict_device.strict


def test_to_device_and_back_keeps_values_and_gradients(strict):
    x = fastdl.tensor([[1.0, -2.0], [3.0, 4.0]], requires_grad=True)
    y = x.to(strict)
    assert y.device == strict and str(y.device) == strict and y.dtype == fastdl.float32
    assert y.requires_grad and y.grad_fn is not None
    z = (y * y).sum()
    assert z.device == strict
    z.backward()
    assert x.grad.device == "cpu"  # the gradient goes back to the CPU through the copy
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy())
    back = y.detach().cpu()
    assert back.device == "cpu"
    np.testing.assert_array_equal(back.numpy(), x.detach().numpy())
    assert y.to(strict) is y and x.cpu() is x


@pytest.mark.cpu_only(
    reason="under --device strict, .numpy() and NumPy's functions called from the tests read "
    "back on the host (conftest._read_back_on_host), so the error this test expects cannot come"
)
def test_numpy_off_the_cpu_raises_pytorchs_error(strict):
    y = fastdl.ones(2, device=strict)
    with pytest.raises(TypeError, match=f"can't convert {strict} device type tensor to numpy"):
        y.numpy()
    with pytest.raises(TypeError, match="Tensor.cpu()"):
        np.asarray(y)
    assert y.tolist() == [1.0, 1.0] and y.sum().item() == 2.0  # Python values are fine


def test_mixing_devices_raises_pytorchs_error(strict):
    a, b = fastdl.ones(2), fastdl.ones(2, device=strict)
    for op in (lambda: a + b, lambda: b * a, lambda: fastdl.cat([a, b]), lambda: b == a):
        with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
            op()


def test_creation_device_and_like_functions(strict):
    for make in (
        lambda: fastdl.zeros(2, 3, device=strict),
        lambda: fastdl.ones(2, device=strict),
        lambda: fastdl.full((2,), 7.0, device=strict),
        lambda: fastdl.tensor([1, 2], device=strict),
        lambda: fastdl.arange(4, device=strict),
        lambda: fastdl.randn(3, device=strict),
        lambda: fastdl.eye(2, device=strict),
    ):
        assert make().device == strict
    y = fastdl.ones(2, 2, device=strict)
    for like in (fastdl.zeros_like, fastdl.ones_like, fastdl.randn_like, fastdl.empty_like):
        assert like(y).device == strict  # PyTorch's rule: the input's device
    assert fastdl.zeros_like(y, device="cpu").device == "cpu"


def test_default_device(strict):
    assert fastdl.get_default_device() == "cpu"
    fastdl.set_default_device(strict)
    assert fastdl.get_default_device() == strict
    assert fastdl.ones(2).device == strict and fastdl.tensor([1.0]).device == strict
    assert fastdl.from_numpy(np.ones(2, np.float32)).device == "cpu"  # shares NumPy's memory
    fastdl.set_default_device("cpu")
    assert fastdl.ones(2).device == "cpu"
    if not fastdl.cuda.is_available():
        with pytest.raises(RuntimeError, match="not available"):
            fastdl.set_default_device("cuda")


def test_repr_pickle_and_copy_across_devices(strict):
    y = fastdl.tensor([1.0, 2.0], device=strict)
    assert repr(y) == f"tensor([1., 2.], device='{strict}')"
    back = pickle.loads(pickle.dumps(y))
    assert back.device == strict and back.tolist() == [1.0, 2.0]
    x = fastdl.zeros(2)
    x.copy_(y)  # PyTorch's copy_ copies across devices
    assert x.device == "cpu" and x.tolist() == [1.0, 2.0]
    y.copy_(fastdl.tensor([5.0, 6.0]))
    assert y.device == strict and y.tolist() == [5.0, 6.0]


def test_in_place_ops_and_views_on_the_device(strict):
    y = fastdl.zeros(2, 3, device=strict)
    row = y[0]
    row += 1.0
    y[1, 2] = 5.0
    assert y.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 5.0]]
    assert y._version > 0 and row._base is y


def test_cuda_without_a_cuda_backend_raises():
    if fastdl.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(RuntimeError, match="not available"):
        fastdl.ones(1).cuda()
    with pytest.raises(RuntimeError, match="expected a device type"):
        fastdl.device("tpu")


def test_a_kernel_the_device_lacks_runs_on_the_reference_and_warns_once(strict):
    """The fallback of a device's backend (CUDA's, later): correct numbers on the device's
    arrays, and a warning on the first use of each op, not a silent slow path."""
    import types
    import warnings

    from fastdl import _devices
    from fastdl.backends import reference

    partial = types.SimpleNamespace(  # a backend with the activations only
        relu_forward=reference.relu_forward, relu_backward=reference.relu_backward
    )
    device_type = strict_device.DEVICE_TYPE
    kernels = device_type._kernels
    device_type._kernels = lambda dtype: _devices.WithFallback(strict, partial, reference)
    _devices._warned.clear()
    try:
        x = fastdl.randn(2, 3, 5, 5, generator=fastdl.Generator().manual_seed(0))
        w = fastdl.randn(4, 3, 3, 3, generator=fastdl.Generator().manual_seed(1))
        expected = fastdl.nn.functional.conv2d(x, w).numpy()
        xs, ws = x.to(strict), w.to(strict)
        with pytest.warns(RuntimeWarning, match=r"\[conv2d_forward\].*reference"):
            y = fastdl.nn.functional.conv2d(xs, ws)
        assert y.device == strict
        np.testing.assert_allclose(y.cpu().numpy(), expected, rtol=1e-5, atol=1e-5)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the second use is quiet, and relu never warns
            fastdl.nn.functional.conv2d(xs, ws).relu()
    finally:
        device_type._kernels = kernels
        _devices._warned.clear()
