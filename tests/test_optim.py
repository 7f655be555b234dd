"""fastdl.optim: SGD, Adam and AdamW against hand-computed steps and against torch.optim over
several steps; one fused backend call per group; state, state_dict round trips and errors."""

import copy

import fastdl
import numpy as np
import pytest
from fastdl import _backend, nn, optim


def param(values, dtype=np.float32):
    return nn.Parameter(fastdl.tensor(np.asarray(values, dtype=dtype)))


def set_grad(p, values):
    p.grad = fastdl.tensor(np.asarray(values, dtype=p.dtype))


def small_model(lib_nn):
    return lib_nn.Sequential(lib_nn.Linear(5, 8), lib_nn.Tanh(), lib_nn.Linear(8, 3))


def batch(step):
    rng = np.random.default_rng(100 + step)
    return rng.standard_normal((16, 5)).astype(np.float32), rng.standard_normal((16, 3)).astype(
        np.float32
    )


def train_fastdl(model, opt, steps, first=0):
    for s in range(first, first + steps):
        x, y = batch(s)
        opt.zero_grad()
        nn.MSELoss()(model(fastdl.tensor(x)), fastdl.tensor(y)).backward()
        opt.step()


def train_torch(torch, model, opt, steps, first=0):
    for s in range(first, first + steps):
        x, y = batch(s)
        opt.zero_grad()
        torch.nn.MSELoss()(model(torch.tensor(x)), torch.tensor(y)).backward()
        opt.step()


def assert_same_params(f_model, t_model, rtol=2e-5, atol=2e-6):
    for (name, fp), (_, tp) in zip(f_model.named_parameters(), t_model.named_parameters()):
        np.testing.assert_allclose(
            fp.detach().numpy(), tp.detach().numpy(), rtol=rtol, atol=atol, err_msg=name
        )


# ---------------------------------------------------------------- hand-computed steps


def test_sgd_plain_and_weight_decay_hand_computed():
    p = param([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1, weight_decay=0.5)
    set_grad(p, [0.5, 1.0])
    opt.step()
    # g = grad + wd * p = [1.0, 0.0]; p -= 0.1 * g
    np.testing.assert_allclose(p.detach().numpy(), [0.9, -2.0], rtol=1e-6)
    assert len(opt.state) == 0  # no momentum, no state


def test_sgd_momentum_dampening_nesterov_maximize_hand_computed():
    p = param([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    for grad in (2.0, 4.0):
        set_grad(p, [grad])
        opt.step()
    # buf1 = 2 (first step: no dampening), p = 1 - 0.2 = 0.8
    # buf2 = 0.9 * 2 + 0.5 * 4 = 3.8, p = 0.8 - 0.38 = 0.42
    np.testing.assert_allclose(p.detach().numpy(), [0.42], rtol=1e-6)
    buf = opt.state[p]["momentum_buffer"]
    assert isinstance(buf, fastdl.Tensor)
    np.testing.assert_allclose(buf.numpy(), [3.8], rtol=1e-6)

    q = param([1.0])
    opt = optim.SGD([q], lr=0.1, momentum=0.5, nesterov=True, maximize=True)
    set_grad(q, [2.0])
    opt.step()
    # maximize: g = -2; buf = -2; nesterov g = -2 + 0.5 * -2 = -3; p = 1 + 0.3
    np.testing.assert_allclose(q.detach().numpy(), [1.3], rtol=1e-6)


def test_adam_and_adamw_first_steps_hand_computed():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    p = param([1.0, -1.0])
    opt = optim.Adam([p], lr=lr)
    set_grad(p, [0.5, -3.0])
    opt.step()
    # Step 1: m_hat = g, v_hat = g^2, so the update is lr * sign(g) (up to eps).
    np.testing.assert_allclose(p.detach().numpy(), [0.9, -0.9], rtol=1e-6)
    set_grad(p, [1.0, 1.0])
    opt.step()
    g1, g2 = np.array([0.5, -3.0]), np.array([1.0, 1.0])
    m = (1 - b1) * (b1 * g1 + g2)
    v = (1 - b2) * (b2 * g1**2 + g2**2)
    expected = np.array([0.9, -0.9]) - lr / (1 - b1**2) * m / (np.sqrt(v / (1 - b2**2)) + eps)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-5)
    state = opt.state[p]
    assert state["step"].item() == 2.0 and state["step"].shape == ()
    np.testing.assert_allclose(state["exp_avg"].numpy(), m, rtol=1e-5)
    np.testing.assert_allclose(state["exp_avg_sq"].numpy(), v, rtol=1e-5)

    w = param([2.0])
    opt = optim.AdamW([w], lr=lr, weight_decay=0.5)
    set_grad(w, [1.0])
    opt.step()
    # p *= 1 - lr * wd first (2 -> 1.9), then the Adam step (-0.1)
    np.testing.assert_allclose(w.detach().numpy(), [1.8], rtol=1e-6)
    assert optim.AdamW([param([1.0])]).defaults["weight_decay"] == 0.01


def test_parameters_without_grad_are_skipped():
    a, b = param([1.0]), param([1.0])
    opt = optim.Adam([a, b], lr=0.1)
    set_grad(a, [1.0])
    opt.step()
    assert b.detach().numpy()[0] == 1.0 and b not in opt.state
    assert a.detach().numpy()[0] == pytest.approx(0.9)


def test_closure_is_called_and_its_loss_returned():
    p = param([3.0])
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(p.detach().numpy(), [2.4], rtol=1e-6)


def test_zero_grad_modes():
    p = param([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1)
    set_grad(p, [1.0, 1.0])
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


# ---------------------------------------------------------------- one fused call per group


def count_calls(monkeypatch, name):
    calls = []
    modules = {id(m): m for m in (_backend.get(np.float32), _backend.get(np.float64))}
    for module in modules.values():
        original = getattr(module, name)

        def counted(*args, _original=original, **kwargs):
            calls.append(len(args[0]))
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: optim.Adam(ps, lr=0.1),
    ],
)
def test_one_backend_call_per_group(monkeypatch, make):
    name = "sgd_step" if "SGD" in repr(make([param([1.0])])) else "adam_step"
    calls = count_calls(monkeypatch, name)
    model = small_model(nn)
    opt = make(model.parameters())
    train_fastdl(model, opt, 2)
    assert calls == [4, 4]  # every parameter of the group, in one call, each step


def test_mixed_dtypes_in_one_group_get_one_call_per_dtype(monkeypatch):
    calls = count_calls(monkeypatch, "sgd_step")
    a, b = param([1.0]), param([1.0], np.float64)
    opt = optim.SGD([a, b], lr=0.5)
    set_grad(a, [1.0])
    set_grad(b, [2.0])
    opt.step()
    assert sorted(calls) == [1, 1]
    assert a.detach().numpy()[0] == 0.5 and b.detach().numpy()[0] == 0.0
    assert b.dtype == fastdl.float64


# ---------------------------------------------------------------- against torch.optim

OPTIMIZER_CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "maximize": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.02, "betas": (0.5, 0.9), "weight_decay": 0.3}),
]


@pytest.mark.parametrize("name, kwargs", OPTIMIZER_CASES)
def test_matches_torch_over_several_steps(name, kwargs):
    torch = pytest.importorskip("torch")
    f_model, t_model = small_model(nn), small_model(torch.nn)
    f_model.load_state_dict(t_model.state_dict())
    f_opt = getattr(optim, name)(f_model.parameters(), **kwargs)
    t_opt = getattr(torch.optim, name)(t_model.parameters(), **kwargs)
    train_fastdl(f_model, f_opt, 6)
    train_torch(torch, t_model, t_opt, 6)
    assert_same_params(f_model, t_model)


def test_param_groups_with_own_hyperparameters_match_torch():
    torch = pytest.importorskip("torch")
    f_model, t_model = small_model(nn), small_model(torch.nn)
    f_model.load_state_dict(t_model.state_dict())

    def groups(model):
        return [
            {"params": model[0].parameters(), "lr": 0.05, "momentum": 0.5},
            {"params": model[2].parameters()},
        ]

    f_opt = optim.SGD(groups(f_model), lr=0.1, momentum=0.9, nesterov=True)
    t_opt = torch.optim.SGD(groups(t_model), lr=0.1, momentum=0.9, nesterov=True)
    assert [g["lr"] for g in f_opt.param_groups] == [0.05, 0.1]
    train_fastdl(f_model, f_opt, 4)
    train_torch(torch, t_model, t_opt, 4)
    assert_same_params(f_model, t_model)


# ---------------------------------------------------------------- state_dict


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
        lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.01),
        lambda ps: optim.AdamW(ps, lr=0.01),
    ],
)
def test_state_dict_round_trip_continues_identically(make):
    model = small_model(nn)
    opt = make(model.parameters())
    train_fastdl(model, opt, 3)

    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert sd["param_groups"][0]["params"] == [0, 1, 2, 3]
    assert sorted(sd["state"]) == [0, 1, 2, 3]
    assert all(isinstance(v, fastdl.Tensor) for st in sd["state"].values() for v in st.values())

    twin = copy.deepcopy(model)
    twin_opt = make(twin.parameters())
    twin_opt.load_state_dict(sd)
    for p, q in zip(model.parameters(), twin.parameters()):
        for key, value in opt.state[p].items():
            assert twin_opt.state[q][key]._data is not value._data  # copied, not shared
            np.testing.assert_array_equal(twin_opt.state[q][key].numpy(), value.numpy())

    train_fastdl(model, opt, 3, first=3)
    train_fastdl(twin, twin_opt, 3, first=3)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_load_state_dict_restores_hyperparameters_and_checks_groups():
    a, b = param([1.0]), param([2.0, 3.0])
    saved = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1).state_dict()
    opt = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.01)
    opt.load_state_dict(saved)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["params"][0] is b
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.SGD([a, b], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.SGD([{"params": [a, b]}, {"params": [param([0.0])]}]).load_state_dict(saved)


def test_load_torch_optimizer_state_and_continue():
    torch = pytest.importorskip("torch")
    f_model, t_model = small_model(nn), small_model(torch.nn)
    t_opt = torch.optim.Adam(t_model.parameters(), lr=0.01)
    train_torch(torch, t_model, t_opt, 3)
    f_model.load_state_dict(t_model.state_dict())
    f_opt = optim.Adam(f_model.parameters(), lr=0.01)
    f_opt.load_state_dict(t_opt.state_dict())
    train_torch(torch, t_model, t_opt, 3, first=3)
    train_fastdl(f_model, f_opt, 3, first=3)
    assert_same_params(f_model, t_model)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: optim.SGD(p, lr=-0.1), "Invalid learning rate: -0.1"),
        (lambda p: optim.SGD(p, momentum=-0.5), "Invalid momentum value: -0.5"),
        (lambda p: optim.SGD(p, weight_decay=-1), "Invalid weight_decay value: -1"),
        (lambda p: optim.SGD(p, nesterov=True), "Nesterov momentum requires"),
        (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "zero dampening"),
        (lambda p: optim.Adam(p, lr=-1e-3), "Invalid learning rate: -0.001"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
        (lambda p: optim.Adam(p, betas=(-0.1, 0.999)), "Invalid beta parameter at index 0"),
        (lambda p: optim.Adam(p, betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
        (lambda p: optim.AdamW(p, eps=-1e-8), "Invalid epsilon value: -1e-08"),
        (lambda p: optim.AdamW(p, weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
        (lambda p: optim.SGD([{"params": p, "lr": -2.0}], lr=0.1), "Invalid learning rate: -2.0"),
    ],
)
def test_invalid_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make([param([1.0])])


def test_construction_errors():
    p = param([1.0])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    opt.add_param_group({"params": param([2.0]), "lr": 0.3})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["momentum"] == 0
    assert repr(opt).startswith("SGD (\nParameter Group 0\n    dampening: 0\n")


@pytest.mark.parametrize(
    "name, kwargs",
    [("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"lr": 0.1}), ("AdamW", {"lr": 0.1})],
)
def test_parameters_that_start_late_match_torch(monkeypatch, name, kwargs):
    # b has no gradient on the first step, so later steps mix step counts (Adam) or first and
    # later momentum steps (SGD) inside one group: one backend call per kind, same numbers.
    torch = pytest.importorskip("torch")
    calls = count_calls(monkeypatch, "sgd_step" if name == "SGD" else "adam_step")
    f_a, f_b = param([1.0, -2.0]), param([0.5])
    t_a, t_b = (
        torch.tensor([1.0, -2.0], requires_grad=True),
        torch.tensor([0.5], requires_grad=True),
    )
    f_opt = getattr(optim, name)([f_a, f_b], **kwargs)
    t_opt = getattr(torch.optim, name)([t_a, t_b], **kwargs)
    grads = [([0.3, -1.0], None), ([0.2, 0.4], [1.0]), ([-0.5, 0.1], [-2.0])]
    for ga, gb in grads:
        for p, t, g in ((f_a, t_a, ga), (f_b, t_b, gb)):
            p.grad = None if g is None else fastdl.tensor(g)
            t.grad = None if g is None else torch.tensor(g)
        f_opt.step()
        t_opt.step()
    for p, t in ((f_a, t_a), (f_b, t_b)):
        np.testing.assert_allclose(p.detach().numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-7)
    # Step 1: a alone. Step 2: a and b apart. Step 3: SGD joins them (both have buffers now);
    # Adam keeps them apart (step counts 3 and 2).
    assert calls == ([1, 1, 1, 2] if name == "SGD" else [1, 1, 1, 1, 1])
