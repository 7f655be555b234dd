"""Layers, optimizers, clipping and checkpoints across devices (PyTorch's rules): Module.to moves
parameters in place, state_dict keeps devices and load_state_dict copies onto each parameter's
device, optimizer state lives on the parameter's device (the step count on the CPU), the total
norm of clip_grad_norm_ comes back on the gradients' device, and map_location names a device.
The second device is the strict test device (tests/strict_device.py)."""

import io

import numpy as np
import pytest

import fastdl
import fastdl.nn as nn
import fastdl.optim as optim

strict_device = pytest.importorskip("strict_device", reason="needs array-api-strict")


strict = strict_device.strict


def _host(t):
    return np.asarray(t.detach().cpu().tolist())


def _model():
    fastdl.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def _train(model, opt, steps=3):
    x = fastdl.tensor(np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3))
    x = x.to(next(model.parameters()).device)
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


def test_module_to_moves_parameters_in_place_and_back(strict):
    model = _model()
    params = list(model.parameters())
    before = [_host(p) for p in params]
    assert model.to(strict) is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(p.device == strict and isinstance(p, nn.Parameter) for p in params)
    assert all(v.device == strict for v in model.state_dict().values())
    model.cpu()
    assert all(p.device == "cpu" for p in params)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(_host(p), b)


def test_load_state_dict_copies_onto_each_parameters_device(strict):
    source, target = _model(), nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    target.to(strict)
    target.load_state_dict(source.state_dict())  # CPU values into a model on the device
    for (name, p), q in zip(target.named_parameters(), source.parameters()):
        assert p.device == strict, name
        np.testing.assert_array_equal(_host(p), _host(q))
    source.load_state_dict(target.state_dict())  # and back
    assert all(p.device == "cpu" for p in source.parameters())


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda ps: optim.Adam(ps, lr=0.01),
        lambda ps: optim.AdamW(ps, lr=0.01),
    ],
)
def test_optimizer_on_the_device_matches_the_cpu(strict, make):
    cpu_model, dev_model = _model(), _model().to(strict)
    cpu_opt, dev_opt = make(cpu_model.parameters()), make(dev_model.parameters())
    _train(cpu_model, cpu_opt)
    _train(dev_model, dev_opt)
    for p, q in zip(cpu_model.parameters(), dev_model.parameters()):
        np.testing.assert_allclose(_host(q), _host(p), rtol=1e-5, atol=1e-6)
        for name, value in dev_opt.state[q].items():
            if name == "step":
                assert value.device == "cpu"  # PyTorch's: a CPU scalar
            else:
                assert value.device == strict, name
    dev_opt.zero_grad(set_to_none=False)
    assert all(p.grad.device == strict and not _host(p.grad).any() for p in dev_model.parameters())


def test_optimizer_load_state_dict_copies_state_onto_the_parameters_device(strict):
    cpu_model = _model()
    cpu_opt = optim.Adam(cpu_model.parameters(), lr=0.01)
    _train(cpu_model, cpu_opt, steps=2)
    dev_model = _model()
    dev_model.load_state_dict(cpu_model.state_dict())
    dev_model.to(strict)
    dev_opt = optim.Adam(dev_model.parameters(), lr=0.01)
    dev_opt.load_state_dict(cpu_opt.state_dict())
    for p in dev_model.parameters():
        state = dev_opt.state[p]
        assert state["exp_avg"].device == strict and state["exp_avg_sq"].device == strict
        assert state["step"].device == "cpu" and state["step"].item() == 2
    _train(cpu_model, cpu_opt, steps=2)
    _train(dev_model, dev_opt, steps=2)
    for p, q in zip(cpu_model.parameters(), dev_model.parameters()):
        np.testing.assert_allclose(_host(q), _host(p), rtol=1e-5, atol=1e-6)
    # and state from the device loads onto CPU parameters
    cpu_opt.load_state_dict(dev_opt.state_dict())
    assert all(s["exp_avg"].device == "cpu" for s in cpu_opt.state.values())


def test_clip_grad_norm_and_vectors_stay_on_the_device(strict):
    w = nn.Parameter(fastdl.zeros(2, device=strict))
    b = nn.Parameter(fastdl.zeros(1, device=strict))
    w.grad = fastdl.tensor([3.0, 0.0], device=strict)
    b.grad = fastdl.tensor([4.0], device=strict)
    total = nn.utils.clip_grad_norm_([w, b], 1.0)
    assert total.device == strict and total.dtype == fastdl.float32
    assert abs(total.item() - 5.0) < 1e-6
    np.testing.assert_allclose(_host(w.grad), [0.6, 0.0], rtol=1e-5)
    nn.utils.clip_grad_value_([w, b], 0.5)
    np.testing.assert_allclose(_host(b.grad), [0.5], rtol=1e-6)
    vec = nn.utils.parameters_to_vector([w, b])
    assert vec.device == strict and vec.tolist() == [0.0, 0.0, 0.0]
    nn.utils.vector_to_parameters(fastdl.tensor([1.0, 2.0, 3.0], device=strict), [w, b])
    assert w.tolist() == [1.0, 2.0] and b.tolist() == [3.0] and w.device == strict


def test_init_fills_parameters_on_the_device(strict):
    w = fastdl.empty(4, 3, device=strict)
    fastdl.manual_seed(1)
    nn.init.kaiming_uniform_(w, a=5 ** 0.5)
    c = fastdl.empty(4, 3)
    fastdl.manual_seed(1)
    nn.init.kaiming_uniform_(c, a=5 ** 0.5)
    assert w.device == strict
    np.testing.assert_array_equal(_host(w), _host(c))
    nn.init.trunc_normal_(w, std=0.02)
    nn.init.zeros_(w)
    assert w.device == strict and not _host(w).any()


def test_checkpoint_saves_host_copies_and_map_location_names_the_device(strict):
    model = _model().to(strict)
    buffer = io.BytesIO()
    fastdl.save({"model": model.state_dict(), "epoch": 3}, buffer)
    buffer.seek(0)
    back = fastdl.load(buffer)
    assert back["epoch"] == 3 and all(v.device == "cpu" for v in back["model"].values())
    for where in (strict, fastdl.device(strict), {"cpu": strict}):
        buffer.seek(0)
        moved = fastdl.load(buffer, map_location=where)
        assert all(v.device == strict for v in moved["model"].values())
        for k, v in moved["model"].items():
            np.testing.assert_array_equal(_host(v), _host(back["model"][k]))
    buffer.seek(0)
    if not fastdl.cuda.is_available():
        with pytest.raises(RuntimeError, match="CPU only"):
            fastdl.load(buffer, map_location="cuda")
