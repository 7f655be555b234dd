"""CUDA tensors through the user's API, on a GPU: to/cuda/cpu and device= round trips, ops that
stay on the device, Module.to("cuda") and optimizers on CUDA parameters, the seed CNN's four
Adam steps on cuda against cpu (losses, gradients, parameters to float32 tolerance, TF32 off),
DLPack with PyTorch CUDA and CuPy both ways, load(map_location="cuda"), memory_allocated,
`fastdl info`, and the reference fallback's one warning. Skipped, with the reason, where there
is no GPU and CuPy (tests/test_cuda_plumbing.py covers that machine).
"""

from __future__ import annotations

import io
import warnings

import fastdl
import numpy as np
import pytest

if not fastdl.cuda.is_available():
    pytest.skip(
        f"needs an NVIDIA GPU and CuPy ({fastdl.cuda.unavailable_reason()})",
        allow_module_level=True,
    )

import cupy as cp
from fastdl import (
    nn,
    optim,
)
from fastdl.models import CNN
from test_seed_cnn import assert_trees_close

CUDA = fastdl.device("cuda", 0)


def test_round_trips_and_device_of_results():
    x = fastdl.randn(3, 4)
    g = x.to("cuda")
    assert g.device == CUDA and g.is_cuda and isinstance(g._data, cp.ndarray)
    assert x.cuda().device == CUDA and x.to(CUDA).device == CUDA
    assert g.cpu().tolist() == x.tolist()
    y = (g * 2 + 1).relu().sum(dim=1)
    assert y.device == CUDA
    np.testing.assert_allclose(y.cpu().numpy(), (x.numpy() * 2 + 1).clip(0).sum(1), rtol=1e-6)
    assert fastdl.zeros(2, device="cuda").device == CUDA
    assert fastdl.tensor([1.0], device=CUDA).item() == 1.0
    with pytest.raises(TypeError, match=r"^\[numpy\] can't convert cuda"):
        g.numpy()
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        g + x  # devices do not mix, as in PyTorch


def test_autograd_on_the_device():
    x = fastdl.randn(5, 3).cuda().requires_grad_()
    w = fastdl.randn(3, 2).cuda().requires_grad_()
    (x @ w).tanh().sum().backward()
    assert x.grad.device == CUDA and w.grad.device == CUDA
    xc, wc = x.detach().cpu().requires_grad_(), w.detach().cpu().requires_grad_()
    (xc @ wc).tanh().sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), xc.grad.numpy(), rtol=1e-4, atol=1e-6)
    # A gradient through .to() goes back to the source device.
    a = fastdl.randn(4, requires_grad=True)
    (a.to("cuda") * 3).sum().backward()
    assert a.grad.device == fastdl.device("cpu") and a.grad.tolist() == [3.0] * 4


def _train(device, steps=4, batch=8):
    fastdl.manual_seed(0)
    model = CNN().to(device)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = fastdl.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)).to(device)
    labels = fastdl.tensor(rng.integers(0, 10, batch)).to(device)
    losses, grads = [], {}
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(x), labels)
        loss.backward()
        grads = {k: p.grad.cpu().numpy().copy() for k, p in model.named_parameters()}
        opt.step()
        losses.append(loss.item())
    params = {k: v.cpu().numpy().copy() for k, v in model.state_dict().items()}
    return losses, grads, params, model


def test_seed_cnn_four_adam_steps_match_the_cpu():
    assert fastdl.backends.cuda.matmul.allow_tf32 is False
    l_gpu, g_gpu, p_gpu, model = _train("cuda")
    l_cpu, g_cpu, p_cpu, _ = _train("cpu")
    assert all(p.device == CUDA for p in model.parameters())
    np.testing.assert_allclose(l_gpu, l_cpu, rtol=1e-4, atol=1e-5)
    assert_trees_close(g_gpu, g_cpu, rtol=1e-3, atol=1e-5, what="gradient")
    assert_trees_close(p_gpu, p_cpu, rtol=0, atol=5e-5, what="parameter")


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        lambda ps: optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
        lambda ps: optim.RMSprop(ps, lr=1e-2),  # no CUDA kernel: the reference runs, warned once
    ],
)
def test_optimizers_on_cuda_parameters(make):
    fastdl.manual_seed(1)
    gpu, cpu = nn.Linear(6, 3).cuda(), nn.Linear(6, 3)
    cpu.load_state_dict({k: v.cpu() for k, v in gpu.state_dict().items()})
    x = fastdl.randn(4, 6)
    for model, data in ((gpu, x.cuda()), (cpu, x)):
        opt = make(model.parameters())
        for _ in range(3):
            opt.zero_grad()
            model(data).square().mean().backward()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                opt.step()
    for k, v in gpu.state_dict().items():
        np.testing.assert_allclose(
            v.cpu().numpy(), cpu.state_dict()[k].numpy(), rtol=1e-4, atol=1e-6, err_msg=k
        )


def test_dlpack_with_cupy_and_torch_cuda_both_ways():
    a = cp.arange(6, dtype=cp.float32)
    t = fastdl.from_dlpack(a)
    assert t.device == CUDA and not t.requires_grad
    t[0] = 9.0
    assert float(a[0]) == 9.0
    b = cp.from_dlpack(t)
    b[1] = -1.0
    assert t[1].item() == -1.0
    assert t.__dlpack_device__() == (2, 0)
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch has no CUDA")
    src = torch.ones(3, device="cuda")
    f = fastdl.from_dlpack(src)
    src.add_(1)
    torch.cuda.synchronize()
    assert f.device == CUDA and f.tolist() == [2.0, 2.0, 2.0]
    back = torch.from_dlpack(f)
    assert back.is_cuda and back.data_ptr() == src.data_ptr()


def test_load_onto_the_gpu_and_memory_figures():
    buffer = io.BytesIO()
    fastdl.save({"w": fastdl.arange(4, dtype=fastdl.float32)}, buffer)
    for where in ("cuda", "cuda:0", CUDA, {"cpu": "cuda"}):
        state = fastdl.load(io.BytesIO(buffer.getvalue()), map_location=where)
        assert state["w"].device == CUDA and state["w"].tolist() == [0, 1, 2, 3]
    before = fastdl.cuda.memory_allocated()
    big = fastdl.zeros(1 << 20, device="cuda")
    assert fastdl.cuda.memory_allocated() >= before + 4 * (1 << 20)
    del big
    fastdl.cuda.synchronize()
    fastdl.cuda.empty_cache()
    assert fastdl.cuda.device_count() >= 1 and fastdl.cuda.current_device() == 0
    major, minor = fastdl.cuda.get_device_capability()
    assert major >= 7 and fastdl.cuda.get_device_name()
    line = fastdl.info()["cuda"]
    assert "compute capability" in line and "CUDA runtime" in line and "CuPy" in line


def test_a_kernel_the_device_lacks_runs_on_the_reference_with_one_warning():
    from fastdl import _devices

    _devices._warned.discard(("cuda", "norm_forward"))  # once per process: this test's own
    bn = nn.BatchNorm2d(3).cuda()
    x = fastdl.randn(2, 3, 4, 4).cuda()
    with pytest.warns(RuntimeWarning, match=r"\[norm_forward\] the cuda backend has no kernel"):
        y = bn(x)
    assert y.device == CUDA
    np.testing.assert_allclose(
        y.cpu().numpy(), nn.BatchNorm2d(3)(x.cpu()).detach().numpy(), rtol=1e-4, atol=1e-5
    )
