"""The cpu fused optimizer steps (csrc/cpu/optim.cpp, backends.cpu.sgd_step / adam_step) against
the NumPy reference.

Several steps over several parameter tensors of odd sizes, with hypothesis-drawn hyperparameters
(momentum, dampening, Nesterov, weight decay, maximize; Adam and AdamW, betas, eps), the founding
CNN's parameters, updates landing in the caller's arrays, thread-count invariance, and bad inputs
(through the wrapper and straight to _C). Runs in a few seconds.

assert_backends_match compares returned values, and these steps return None and update in place,
so `run_both` below runs both backends on copies and compares the updated arrays
(tests/test_kernels_optim_extra.py uses it too).
"""

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu, reference
from fastdl.testing import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

SHAPES = st.lists(
    st.sampled_from([(1,), (7,), (17,), (33,), (65,), (7, 17), (33, 65), (2, 3, 5, 7)]),
    min_size=1,
    max_size=5,
)


def tensors(shapes, rng, scale=1.0):
    return [(rng.standard_normal(s) * scale).astype(np.float32) for s in shapes]


def moments(params, amsgrad=False):
    """Adam's (and NAdam's) zero state for `params`, as `run_both` takes it."""
    state = {
        "params": params,
        "exp_avgs": [np.zeros_like(p) for p in params],
        "exp_avg_sqs": [np.zeros_like(p) for p in params],
    }
    if amsgrad:
        state["kw:max_exp_avg_sqs"] = [np.zeros_like(p) for p in params]
    return state


def step_count(step):
    return {"step": step}


def sgd_first_step(step):
    return {"first_step": step == 1}


def run_both(op, state, steps, rng, step_kw=None, **hyper):
    """`steps` calls of `op` on the reference and the cpu backend, each from its own copy of
    `state` (a dict of lists of arrays: params first, then the state lists in the op's argument
    order; a "kw:NAME" list goes as keyword NAME), with the same random gradients; compares every
    array after every step. step_kw(step) gives the per-step keyword arguments."""
    names = list(state)
    sides = {b: {k: [a.copy() for a in v] for k, v in state.items()} for b in (reference, cpu)}
    shapes = [p.shape for p in state["params"]]
    for step in range(1, steps + 1):
        grads = tensors(shapes, rng)
        kw = dict(hyper, **(step_kw(step) if step_kw else {}))
        for backend, s in sides.items():
            lists = [s[names[0]], grads] + [s[k] for k in names[1:] if not k.startswith("kw:")]
            extra = {k[3:]: s[k] for k in names if k.startswith("kw:")}
            getattr(backend, op)(*lists, **kw, **extra)
        for k in names:
            for j, (a, e) in enumerate(zip(sides[cpu][k], sides[reference][k])):
                assert_close(a, e, name=f"{op} step {step} {k}[{j}]")


# ---- parity over several steps ----


@settings(max_examples=60, deadline=None)
@given(
    shapes=SHAPES,
    lr=st.sampled_from([0.0, 1e-3, 0.1]),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    dampening=st.sampled_from([0.0, 0.1]),
    nesterov=st.booleans(),
    weight_decay=st.sampled_from([0.0, 1e-2]),
    maximize=st.booleans(),
    seed=st.integers(0, 99),
)
def test_sgd_random(shapes, lr, momentum, dampening, nesterov, weight_decay, maximize, seed):
    if nesterov and (momentum == 0 or dampening != 0):  # PyTorch's rule: the binding rejects it
        nesterov = False
    rng = np.random.default_rng(seed)
    params = tensors(shapes, rng)
    bufs = [np.zeros_like(p) for p in params] if momentum != 0 else []
    run_both(
        "sgd_step", {"params": params, "momentum_buffers": bufs}, 3, rng, step_kw=sgd_first_step,
        lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
        weight_decay=weight_decay, maximize=maximize,
    )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    shapes=SHAPES,
    lr=st.sampled_from([0.0, 1e-3, 0.1]),
    beta1=st.sampled_from([0.0, 0.9]),
    beta2=st.sampled_from([0.0, 0.999]),
    eps=st.sampled_from([0.0, 1e-8, 1e-3]),
    weight_decay=st.sampled_from([0.0, 1e-2]),
    decoupled=st.booleans(),
    maximize=st.booleans(),
    seed=st.integers(0, 99),
)
def test_adam_random(shapes, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, seed):
    rng = np.random.default_rng(seed)
    run_both(
        "adam_step", moments(tensors(shapes, rng)), 4, rng, step_kw=step_count, lr=lr,
        beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, decoupled=decoupled,
        maximize=maximize,
    )  # fmt: skip


# The founding CNN's parameters (421,642 of them): above the threading threshold.
CNN = [(32, 1, 3, 3), (32,), (64, 32, 3, 3), (64,), (128, 3136), (128,), (10, 128), (10,)]


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_founding_cnn(decoupled):
    rng = np.random.default_rng(1)
    run_both(
        "adam_step", moments(tensors(CNN, rng, scale=0.1)), 3, rng, step_kw=step_count, lr=1e-3,
        beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2, decoupled=decoupled,
    )  # fmt: skip


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_founding_cnn(nesterov):
    rng = np.random.default_rng(2)
    params = tensors(CNN, rng, scale=0.1)
    state = {"params": params, "momentum_buffers": [np.zeros_like(p) for p in params]}
    run_both(
        "sgd_step", state, 3, rng, step_kw=sgd_first_step, lr=0.05, momentum=0.9,
        nesterov=nesterov, weight_decay=1e-4,
    )  # fmt: skip


def test_steps_update_the_callers_arrays():
    p, b = np.ones(5, np.float32), np.ones(5, np.float32)
    m, v = np.zeros(5, np.float32), np.zeros(5, np.float32)
    before = [a.__array_interface__["data"][0] for a in (p, m, v, b)]
    cpu.adam_step([p], [np.ones(5)], [m], [v], 1, 0.1, 0.9, 0.999, 1e-8)  # float64 grad is fine
    np.testing.assert_allclose(p, 0.9, rtol=1e-6)
    cpu.sgd_step((p,), (np.ones(5, np.float32),), (b,), 0.5, momentum=0.9, first_step=True)
    np.testing.assert_allclose(p, 0.4, rtol=1e-6)
    np.testing.assert_allclose(b, 1.0)
    assert before == [a.__array_interface__["data"][0] for a in (p, m, v, b)]


def test_sgd_keeps_infinite_params_without_weight_decay():
    # weight_decay == 0 adds no 0 * inf = NaN, as PyTorch skips the term.
    p = np.array([np.inf, 1.0], np.float32)
    cpu.sgd_step([p], [np.ones(2, np.float32)], [], 0.1)
    assert p[0] == np.inf


def test_momentum_buffers_may_be_empty_or_none_without_momentum():
    for bufs in ([], (), None):
        p = np.ones(3, np.float32)
        cpu.sgd_step([p], [np.ones(3, np.float32)], bufs, 0.5)
        np.testing.assert_allclose(p, 0.5)
    with pytest.raises(ValueError, match=r"\[sgd_step\] momentum_buffers must be a list"):
        _C.sgd_step([P], [P], np.zeros(3, np.float32), 0.1, momentum=0.9)


def test_empty_lists_and_empty_tensors():
    assert cpu.sgd_step([], [], [], 0.1) is None
    assert cpu.adam_step([], [], [], [], 1, 0.1, 0.9, 0.999, 1e-8) is None
    # An empty tensor beside a real one: the real one is updated exactly as on its own.
    e = np.zeros(0, np.float32)
    rng = np.random.default_rng(5)
    p, g = rng.standard_normal(5).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    alone = [p.copy(), np.zeros(5, np.float32), np.zeros(5, np.float32)]
    cpu.adam_step([alone[0]], [g.copy()], [alone[1]], [alone[2]], 1, 0.1, 0.9, 0.999, 1e-8)
    mixed = [p.copy(), np.zeros(5, np.float32), np.zeros(5, np.float32)]
    cpu.adam_step(
        [e, mixed[0]], [e.copy(), g.copy()], [e.copy(), mixed[1]], [e.copy(), mixed[2]],
        1, 0.1, 0.9, 0.999, 1e-8,
    )
    for a, b in zip(mixed, alone):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(mixed[0], p) and e.shape == (0,)


# ---- threads ----


@pytest.mark.parametrize("op", ["sgd_step", "adam_step"])
def test_steps_same_results_on_1_and_2_threads(threads, op):
    # Elementwise updates: where the slices between threads fall cannot change any value.
    rng = np.random.default_rng(3)
    shapes = [(40001,), (7,), (33, 65), (1,), (30000,)]
    params = tensors(shapes, rng)
    grads = tensors(shapes, rng)
    results = []
    for n in (1, 2):
        threads(n)
        p = [a.copy() for a in params]
        s1, s2 = [np.full_like(a, 0.1) for a in p], [np.full_like(a, 0.2) for a in p]
        for step in (1, 2):
            if op == "sgd_step":
                cpu.sgd_step(
                    p, grads, s1, 0.1, momentum=0.9, weight_decay=1e-3, first_step=step == 1
                )
            else:
                cpu.adam_step(
                    p, grads, s1, s2, step, 1e-3, 0.9, 0.999, 1e-8, weight_decay=0.1, decoupled=True
                )
        results.append(p + s1 + s2)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# ---- bad inputs: ValueError naming the op, never a crash or a silent copy ----


def step_args(states, change, **hyper):
    """Keyword arguments of a step over two small parameters: zero grads and zero state lists
    `states`, the hyperparameters, then `change` over them."""
    p = [np.zeros(3, np.float32), np.zeros((2, 2), np.float32)]
    args = {"params": p}
    for name in ("grads", *states):
        args[name] = [np.zeros_like(a) for a in p]
    return {**args, **hyper, **change}


def adam_args(**change):
    states = ("exp_avgs", "exp_avg_sqs")
    return step_args(states, change, step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)


def sgd_args(**change):
    return step_args(("momentum_buffers",), change, lr=0.1, momentum=0.9)


P = np.zeros(3, np.float32)
Q = np.zeros((2, 2), np.float32)
READ_ONLY = np.zeros(3, np.float32)
READ_ONLY.flags.writeable = False
SHARED = np.zeros(8, np.float32)


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(params=[P.astype(np.float64), Q]), r"params\[0\] must be float32, got float64"),
        (
            dict(params=[P, np.zeros((2, 4), np.float32)[:, ::2]]),
            r"params\[1\] must be C-contiguous",
        ),
        (dict(params=[READ_ONLY, Q]), r"params\[0\] must be writeable"),
        (dict(params=[P, [0.0] * 4]), r"params\[1\] must be a NumPy array, got <class 'list'>"),
        (dict(params=P), "params must be a list of arrays"),
        (dict(grads=[P]), r"grads must have one entry per parameter \(2\), got 1"),
        (
            dict(grads=[P, np.zeros(4, np.float32)]),
            r"grads\[1\] and params\[1\] must have the same shape",
        ),
        (dict(exp_avgs=[P, Q.astype(np.float16)]), r"exp_avgs\[1\] must be float32"),
        (dict(exp_avg_sqs=[P]), "exp_avg_sqs must have one entry per parameter"),
        (dict(step=0), "step must be >= 1"),
        (dict(lr=-1e-3), "lr must be >= 0"),
        (dict(lr=float("nan")), "lr must be >= 0, got nan"),
        (dict(beta1=1.0), r"beta1 must be in \[0, 1\)"),
        (dict(beta2=-0.1), r"beta2 must be in \[0, 1\)"),
        (dict(eps=-1e-8), "eps must be >= 0"),
        (dict(weight_decay=-0.1), "weight_decay must be >= 0"),
    ],
)
def test_adam_rejects_bad_inputs(change, match):
    with pytest.raises(ValueError, match=r"\[adam_step\] " + match):
        _C.adam_step(**adam_args(**change))


def test_adam_rejects_arrays_sharing_memory():
    p, m = [SHARED[:4]], [SHARED[4:]]
    _C.adam_step(
        **adam_args(
            params=p,
            grads=[np.zeros(4, np.float32)],
            exp_avgs=m,
            exp_avg_sqs=[np.zeros(4, np.float32)],
        )
    )  # adjacent is fine
    for change, match in [
        (dict(exp_avgs=[SHARED[2:6]]), r"params\[0\] and exp_avgs\[0\] share memory"),
        (dict(grads=[SHARED[3:7]]), r"and grads\[0\] share memory"),  # it overlaps two
        (dict(exp_avg_sqs=[SHARED[:4]]), r"share memory"),
    ]:
        args = adam_args(
            params=p,
            grads=[np.zeros(4, np.float32)],
            exp_avgs=m,
            exp_avg_sqs=[np.zeros(4, np.float32)],
        )
        args.update(change)
        with pytest.raises(ValueError, match=r"\[adam_step\] .*" + match):
            _C.adam_step(**args)
    same = [np.zeros(3, np.float32)]
    with pytest.raises(ValueError, match=r"\[adam_step\] params\[0\] and params\[1\] share memory"):
        _C.adam_step(
            **adam_args(
                params=same * 2,
                grads=[P, P],
                exp_avgs=[P.copy(), P.copy()],
                exp_avg_sqs=[P.copy(), P.copy()],
            )
        )


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(params=[P.astype(np.float64), Q]), r"params\[0\] must be float32"),
        (dict(momentum_buffers=[]), "momentum_buffers must have one entry per parameter"),
        (
            dict(momentum_buffers=[P, READ_ONLY.reshape(3)]),
            r"momentum_buffers\[1\] must be writeable",
        ),
        (
            dict(momentum_buffers=[P, P]),
            r"momentum_buffers\[1\] and params\[1\] must have the same shape",
        ),
        (dict(lr=-0.1), "lr must be >= 0"),
        (dict(momentum=-0.9), "momentum must be >= 0"),
        (dict(weight_decay=float("nan")), "weight_decay must be >= 0, got nan"),
        (dict(dampening=float("inf")), "dampening must be finite"),
        (dict(nesterov=True, dampening=0.1), "nesterov needs momentum > 0 and dampening == 0"),
        (dict(nesterov=True, momentum=0.0, momentum_buffers=[]), "nesterov needs momentum > 0"),
    ],
)
def test_sgd_rejects_bad_inputs(change, match):
    with pytest.raises(ValueError, match=r"\[sgd_step\] " + match):
        _C.sgd_step(**sgd_args(**change))


def test_wrappers_refuse_to_update_a_copy():
    # A float64 parameter would be converted to a float32 copy and the step lost: refused.
    p = np.zeros(3)
    with pytest.raises(ValueError, match=r"\[sgd_step\] params\[0\] must be float32"):
        cpu.sgd_step([p], [np.ones(3)], [], 0.1)
    with pytest.raises(ValueError, match=r"\[adam_step\] exp_avgs\[0\] must be C-contiguous"):
        q = np.zeros(3, np.float32)
        cpu.adam_step(
            [q], [q.copy()], [np.zeros(6, np.float32)[::2]], [q.copy()], 1, 0.1, 0.9, 0.999, 1e-8
        )
