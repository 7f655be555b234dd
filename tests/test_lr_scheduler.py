"""optim.lr_scheduler against torch.optim.lr_scheduler: the same schedulers over the same
optimizers, every learning rate compared with == (PyTorch's recursive arithmetic, reproduced),
state_dict round trips, and the errors PyTorch raises."""

import copy
import math

import fastdl
import pytest
from fastdl import nn, optim
from fastdl.optim import lr_scheduler as fsched

torch = pytest.importorskip("torch")
tsched = torch.optim.lr_scheduler


def make_optimizers(kind="sgd", lrs=(0.1, 0.03)):
    """A fastdl and a torch optimizer with one group per lr."""
    f_groups = [{"params": [nn.Parameter(fastdl.ones(2))], "lr": lr} for lr in lrs]
    t_groups = [{"params": [torch.nn.Parameter(torch.ones(2))], "lr": lr} for lr in lrs]
    if kind == "sgd":
        return optim.SGD(f_groups, lr=0.1, momentum=0.9), torch.optim.SGD(
            t_groups, lr=0.1, momentum=0.9
        )
    return optim.Adam(f_groups, lr=0.1), torch.optim.Adam(t_groups, lr=0.1)


def groups_of(opt):
    return [{k: v for k, v in g.items() if k in KEYS} for g in opt.param_groups]


KEYS = ("lr", "initial_lr", "momentum", "betas", "max_lr", "min_lr")


SCHEDULERS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=3, gamma=0.7),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 11], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=1e-3),
    "CosineAnnealingLR-default": lambda m, o: m.CosineAnnealingLR(o, T_max=10),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=6),
    "LinearLR-default": lambda m, o: m.LinearLR(o),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lr_lambda=lambda e: 0.95**e + 0.01 * e),
    "LambdaLR-list": lambda m, o: m.LambdaLR(o, lr_lambda=[lambda e: 1 / (e + 1), lambda e: 2.0]),
    "OneCycleLR-cos": lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=41),
    "OneCycleLR-linear-3phase": lambda m, o: m.OneCycleLR(
        o, max_lr=[0.5, 0.2], epochs=4, steps_per_epoch=10, pct_start=0.25,
        anneal_strategy="linear", three_phase=True,
    ),
    "OneCycleLR-no-momentum": lambda m, o: m.OneCycleLR(
        o, max_lr=0.5, total_steps=41, cycle_momentum=False, div_factor=10.0
    ),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o,
        [m.LinearLR(o, start_factor=0.1, total_iters=4), m.CosineAnnealingLR(o, T_max=9),
         m.ExponentialLR(o, gamma=0.9)],
        milestones=[5, 15],
    ),
}  # fmt: skip


def run_side_by_side(name, kind, steps=40):
    f_opt, t_opt = make_optimizers(kind)
    f_s = SCHEDULERS[name](fsched, f_opt)
    t_s = SCHEDULERS[name](tsched, t_opt)
    assert f_s.get_last_lr() == t_s.get_last_lr()
    assert groups_of(f_opt) == groups_of(t_opt)
    for step in range(steps):
        f_opt.step()
        t_opt.step()
        f_s.step()
        t_s.step()
        assert f_s.get_last_lr() == t_s.get_last_lr(), (name, step)
        assert groups_of(f_opt) == groups_of(t_opt), (name, step)
        assert f_s.last_epoch == t_s.last_epoch
    return f_opt, f_s, t_opt, t_s


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_lr_matches_torch(name, kind):
    run_side_by_side(name, kind)


def test_cosine_keeps_going_past_t_max_like_torch():
    run_side_by_side("CosineAnnealingLR", "sgd", steps=60)


def test_one_cycle_raises_past_total_steps():
    _, f_s, _, _ = run_side_by_side("OneCycleLR-cos", "sgd")
    f_s.step()  # step 41 == total_steps is allowed, as in torch
    with pytest.raises(ValueError, match="Tried to step 42 times"):
        f_s.step()


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
                                  "LinearLR"])  # fmt: skip
def test_step_with_epoch_uses_the_closed_form_like_torch(name):
    f_opt, t_opt = make_optimizers()
    f_s, t_s = SCHEDULERS[name](fsched, f_opt), SCHEDULERS[name](tsched, t_opt)
    for epoch in (3, 8, 2, 12, 5):
        with pytest.warns(UserWarning):
            f_s.step(epoch)
        with pytest.warns(UserWarning):
            t_s.step(epoch)
        assert f_s.get_last_lr() == t_s.get_last_lr()


def test_cosine_resumed_from_last_epoch_matches_torch():
    f_opt, t_opt = make_optimizers()
    for opt in (f_opt, t_opt):
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
    f_s = fsched.CosineAnnealingLR(f_opt, T_max=10, last_epoch=4)
    t_s = tsched.CosineAnnealingLR(t_opt, T_max=10, last_epoch=4)
    for _ in range(12):
        assert f_s.get_last_lr() == t_s.get_last_lr()
        f_opt.step(), t_opt.step(), f_s.step(), t_s.step()


def test_reduce_lr_on_plateau_matches_torch():
    metrics = [1.0, 0.9, 0.9, 0.95, 0.91, 0.89999, 0.9, 0.92, 0.8, 0.8, 0.81, 0.82, 0.83, 0.84]
    metrics = metrics * 4
    for kwargs in (
        {},
        {"patience": 2, "factor": 0.5},
        {"mode": "max", "patience": 1, "threshold_mode": "abs", "threshold": 0.01},
        {"patience": 0, "cooldown": 2, "min_lr": [0.01, 0.02]},
        {"patience": 1, "min_lr": 0.05, "eps": 1e-3},
    ):
        f_opt, t_opt = make_optimizers()
        f_s = fsched.ReduceLROnPlateau(f_opt, **kwargs)
        t_s = tsched.ReduceLROnPlateau(t_opt, **kwargs)
        for m in metrics:
            f_opt.step(), t_opt.step()
            f_s.step(m)
            t_s.step(m)
            assert f_s.get_last_lr() == t_s.get_last_lr(), kwargs
            assert (f_s.best, f_s.num_bad_epochs, f_s.cooldown_counter) == (
                t_s.best, t_s.num_bad_epochs, t_s.cooldown_counter
            )  # fmt: skip


@pytest.mark.parametrize("name", sorted(SCHEDULERS) + ["ReduceLROnPlateau"])
def test_state_dict_round_trip_continues_identically(name):
    def build(opt):
        if name == "ReduceLROnPlateau":
            return fsched.ReduceLROnPlateau(opt, patience=1)
        return SCHEDULERS[name](fsched, opt)

    def advance(opt, s, steps, first):
        lrs = []
        for i in range(first, first + steps):
            opt.step()
            s.step(1.0 / (1 + i % 3)) if name == "ReduceLROnPlateau" else s.step()
            lrs.append(s.get_last_lr())
        return lrs

    opt_a, _ = make_optimizers()
    a = build(opt_a)
    advance(opt_a, a, 12, 0)
    saved_sched = copy.deepcopy(a.state_dict())
    saved_opt = copy.deepcopy(opt_a.state_dict())
    expected = advance(opt_a, a, 20, 12)

    opt_b, _ = make_optimizers()
    b = build(opt_b)
    opt_b.load_state_dict(saved_opt)
    b.load_state_dict(saved_sched)
    assert advance(opt_b, b, 20, 12) == expected


def test_state_dict_has_torchs_keys():
    for name in ("StepLR", "OneCycleLR-cos", "SequentialLR", "LambdaLR"):
        f_opt, t_opt = make_optimizers()
        f_keys = set(SCHEDULERS[name](fsched, f_opt).state_dict())
        t_keys = set(SCHEDULERS[name](tsched, t_opt).state_dict())
        # torch's extra bookkeeping of its step-order warnings is not kept
        assert f_keys <= t_keys, (name, t_keys - f_keys, f_keys - t_keys)
        assert {"last_epoch", "_last_lr"} <= f_keys


def test_lambda_state_dict_saves_callable_objects_only():
    class Factor:
        def __init__(self):
            self.scale = 0.5

        def __call__(self, epoch):
            return self.scale * epoch

    f_opt, _ = make_optimizers()
    fn = Factor()
    s = fsched.LambdaLR(f_opt, [fn, lambda e: 1.0])
    state = s.state_dict()
    assert state["lr_lambdas"] == [{"scale": 0.5}, None]
    fn.scale = 2.0
    s.load_state_dict(state)
    assert fn.scale == 0.5


def test_errors_match_torch():
    f_opt, _ = make_optimizers()
    with pytest.raises(TypeError, match="is not an Optimizer"):
        fsched.StepLR(object(), 3)
    with pytest.raises(KeyError, match="initial_lr"):
        fsched.StepLR(f_opt, 3, last_epoch=4)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        fsched.LinearLR(f_opt, start_factor=0)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas"):
        fsched.LambdaLR(f_opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        fsched.ReduceLROnPlateau(f_opt, factor=1.0)
    with pytest.raises(ValueError, match="total_steps"):
        fsched.OneCycleLR(f_opt, max_lr=1.0)
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        fsched.OneCycleLR(f_opt, max_lr=[1.0], total_steps=5)
    with pytest.raises(ValueError, match="number of milestone"):
        fsched.SequentialLR(f_opt, [fsched.StepLR(f_opt, 2)], milestones=[3])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        fsched.SequentialLR(f_opt, [fsched.ReduceLROnPlateau(f_opt)], milestones=[])


def test_scheduled_lr_drives_the_optimizer():
    # The lr the scheduler writes is the one the next step uses: SGD without momentum moves
    # the weight by lr * grad.
    w = nn.Parameter(fastdl.zeros(1))
    opt = optim.SGD([w], lr=1.0)
    s = fsched.StepLR(opt, step_size=1, gamma=0.5)
    total = 0.0
    for _ in range(4):
        w.grad = fastdl.ones(1)
        opt.step()
        total += s.get_last_lr()[0]
        s.step()
    assert math.isclose(float(w.detach().numpy()[0]), -total)
