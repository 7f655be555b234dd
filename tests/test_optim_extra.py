"""RMSprop, Adagrad, NAdam and Adam(amsgrad=True) against torch.optim: the same gradients fed to
both for many steps, parameters and every state buffer compared (float32, ~1e-6 relative),
state_dict layout and round trips, one fused backend call per group, and PyTorch's errors."""

import copy

import fastdl
import numpy as np
import pytest
from fastdl import nn, optim

torch = pytest.importorskip("torch")

SHAPES = [(7,), (3, 5), (33,), (2, 3, 4)]

CASES = [
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.003, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.002, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.002, "centered": True}),
    ("RMSprop", {"lr": 0.001, "centered": True, "momentum": 0.5, "weight_decay": 0.05,
                 "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.05, "lr_decay": 0.01, "weight_decay": 0.1}),
    ("Adagrad", {"lr": 0.05, "initial_accumulator_value": 0.3, "eps": 1e-6, "maximize": True}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True,
               "momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.01, "maximize": True}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    ("AdamW", {"lr": 0.01, "amsgrad": True}),
]  # fmt: skip


def make_pair(name, kwargs, shapes=SHAPES, seed=0):
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    f_params = [nn.Parameter(fastdl.tensor(v)) for v in values]
    t_params = [torch.nn.Parameter(torch.tensor(v)) for v in values]
    return (
        f_params,
        getattr(optim, name)(f_params, **kwargs),
        t_params,
        getattr(torch.optim, name)(t_params, **kwargs),
    )


def feed(f_params, t_params, rng, skip=()):
    # The same gradient to both: noise plus a pull towards 0 (so decay and curvature matter).
    for i, (fp, tp) in enumerate(zip(f_params, t_params)):
        if i in skip:
            fp.grad, tp.grad = None, None
            continue
        g = (rng.standard_normal(tuple(tp.shape)) + tp.detach().numpy()).astype(np.float32)
        fp.grad = fastdl.tensor(g)
        tp.grad = torch.tensor(g)


def run_steps(pair, rng, steps, skip=lambda step: (), check=None):
    """`steps` steps of both optimizers of `pair` (make_pair's) on the same gradients, none for
    the parameters in skip(step); check(f_params, t_params) after each step when given."""
    f_params, f_opt, t_params, t_opt = pair
    for step in range(steps):
        feed(f_params, t_params, rng, skip(step))
        f_opt.step()
        t_opt.step()
        if check is not None:
            check(f_params, t_params)


def assert_state_matches(f_opt, t_opt, rtol=2e-6, atol=1e-7):
    f_state, t_state = f_opt.state_dict()["state"], t_opt.state_dict()["state"]
    assert sorted(f_state) == sorted(t_state)
    for index, t_entry in t_state.items():
        f_entry = f_state[index]
        assert sorted(f_entry) == sorted(t_entry), index
        for key, t_value in t_entry.items():
            np.testing.assert_allclose(
                np.asarray(f_entry[key].numpy(), dtype=np.float64),
                t_value.numpy().astype(np.float64),
                rtol=rtol,
                atol=atol,
                err_msg=f"state {index} {key}",
            )


def assert_params_match(f_params, t_params, rtol=2e-6, atol=1e-7):
    for fp, tp in zip(f_params, t_params):
        np.testing.assert_allclose(fp.detach().numpy(), tp.detach().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_matches_torch_over_many_steps(name, kwargs):
    f_params, f_opt, t_params, t_opt = pair = make_pair(name, kwargs)
    run_steps(pair, np.random.default_rng(1), 60, skip=lambda step: {1} if step % 7 == 3 else ())
    assert_params_match(f_params, t_params, rtol=1e-5, atol=1e-6)
    assert_state_matches(f_opt, t_opt, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_first_steps_match_torch_to_float32_rounding(name, kwargs):
    _, f_opt, _, t_opt = pair = make_pair(name, kwargs)
    run_steps(pair, np.random.default_rng(2), 3, check=assert_params_match)
    assert_state_matches(f_opt, t_opt)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_state_dict_round_trip_and_torch_checkpoint(name, kwargs):
    _, f_opt, t_params, t_opt = pair = make_pair(name, kwargs)
    rng = np.random.default_rng(3)
    run_steps(pair, rng, 5)
    # Our own checkpoint, and torch's, loaded into fresh optimizers, continue like torch.
    f_saved = copy.deepcopy(f_opt.state_dict())
    f2_params = [nn.Parameter(fastdl.tensor(tp.detach().numpy())) for tp in t_params]
    f3_params = [nn.Parameter(fastdl.tensor(tp.detach().numpy())) for tp in t_params]
    f2_opt = getattr(optim, name)(f2_params, **kwargs)
    f3_opt = getattr(optim, name)(f3_params, **kwargs)
    f2_opt.load_state_dict(f_saved)
    f3_opt.load_state_dict(t_opt.state_dict())
    assert f2_opt.param_groups[0]["lr"] == t_opt.param_groups[0]["lr"]
    for _ in range(5):
        state = rng.bit_generator.state
        for fp in (f2_params, f3_params):
            rng.bit_generator.state = state
            feed(fp, t_params, rng)
        f2_opt.step()
        f3_opt.step()
        t_opt.step()
    assert_params_match(f2_params, t_params, rtol=1e-5, atol=1e-6)
    assert_params_match(f3_params, t_params, rtol=1e-5, atol=1e-6)
    assert_state_matches(f3_opt, t_opt, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_defaults_match_torch(name, kwargs):
    _, f_opt, _, t_opt = make_pair(name, {})
    for key, value in f_opt.defaults.items():
        assert t_opt.defaults[key] == value, key


def test_adagrad_state_exists_from_construction_like_torch():
    _, f_opt, _, t_opt = make_pair("Adagrad", {"initial_accumulator_value": 0.5})
    assert_state_matches(f_opt, t_opt)


@pytest.mark.parametrize(
    "name, backend_function",
    [
        ("RMSprop", "rmsprop_step"),
        ("Adagrad", "adagrad_step"),
        ("NAdam", "nadam_step"),
        ("Adam", "adam_step"),
    ],
)
def test_one_backend_call_per_group(monkeypatch, name, backend_function):
    from fastdl import _devices

    calls = []
    kernels = _devices.kernels

    class Counting:
        def __init__(self, backend):
            self.backend = backend

        def __getattr__(self, attr):
            fn = getattr(self.backend, attr)

            def counted(*args, **kwargs):
                calls.append(attr)
                return fn(*args, **kwargs)

            return counted

    monkeypatch.setattr(_devices, "kernels", lambda a: Counting(kernels(a)))
    kwargs = {"amsgrad": True} if name == "Adam" else {}
    f_params, f_opt, t_params, _ = make_pair(name, kwargs)
    feed(f_params, t_params, np.random.default_rng(0))
    f_opt.step()
    assert calls == [backend_function]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: optim.RMSprop(p, lr=-1), "Invalid learning rate"),
        (lambda p: optim.RMSprop(p, alpha=-0.1), "Invalid alpha value"),
        (lambda p: optim.RMSprop(p, momentum=-0.1), "Invalid momentum value"),
        (lambda p: optim.Adagrad(p, lr_decay=-1), "Invalid lr_decay value"),
        (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "initial_accumulator_value"),
        (lambda p: optim.NAdam(p, betas=(1.0, 0.9)), "Invalid beta parameter at index 0"),
        (lambda p: optim.NAdam(p, momentum_decay=-1), "Invalid momentum_decay value"),
    ],
)
def test_invalid_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make([nn.Parameter(fastdl.ones(2))])
