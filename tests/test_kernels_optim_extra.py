"""The cpu fused RMSprop, Adagrad, NAdam and AMSGrad steps (csrc/cpu/optim.cpp,
backends.cpu.rmsprop_step / adagrad_step / nadam_step / adam_step(max_exp_avg_sqs)) against the
reference, over several steps, tensors of odd sizes, hypothesis-drawn hyperparameters, sizes
large enough to split across threads, and bad inputs (through the wrapper and straight to _C)."""

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu, reference
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernels_optim import SHAPES, moments, run_both, step_count, tensors


@settings(max_examples=60, deadline=None)
@given(
    shapes=SHAPES,
    lr=st.sampled_from([0.0, 1e-3, 0.01]),
    alpha=st.sampled_from([0.0, 0.9, 0.99]),
    eps=st.sampled_from([1e-8, 1e-3]),
    weight_decay=st.sampled_from([0.0, 1e-2]),
    momentum=st.sampled_from([0.0, 0.9]),
    centered=st.booleans(),
    maximize=st.booleans(),
    seed=st.integers(0, 99),
)
def test_rmsprop_random(shapes, lr, alpha, eps, weight_decay, momentum, centered, maximize, seed):
    if centered and alpha == 0.0:
        alpha = 0.9  # sq - g_avg^2 is 0 up to rounding: sqrt of a tiny negative gives NaN
    rng = np.random.default_rng(seed)
    params = tensors(shapes, rng)
    zeros = [np.zeros_like(p) for p in params]
    state = {
        "params": params,
        "square_avgs": zeros,
        "grad_avgs": zeros if centered else [],
        "momentum_buffers": zeros if momentum > 0 else [],
    }
    run_both(
        "rmsprop_step", state, 4, rng, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
        momentum=momentum, centered=centered, maximize=maximize,
    )  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    shapes=SHAPES,
    lr=st.sampled_from([0.0, 1e-2, 0.1]),
    lr_decay=st.sampled_from([0.0, 0.1]),
    weight_decay=st.sampled_from([0.0, 1e-2]),
    eps=st.sampled_from([1e-10, 1e-3]),
    initial=st.sampled_from([0.0, 0.1]),
    maximize=st.booleans(),
    seed=st.integers(0, 99),
)
def test_adagrad_random(shapes, lr, lr_decay, weight_decay, eps, initial, maximize, seed):
    rng = np.random.default_rng(seed)
    params = tensors(shapes, rng)
    state = {"params": params, "state_sums": [np.full_like(p, initial) for p in params]}
    run_both(
        "adagrad_step", state, 4, rng, step_kw=step_count, lr=lr, lr_decay=lr_decay,
        weight_decay=weight_decay, eps=eps, maximize=maximize,
    )  # fmt: skip


def nadam_kw(beta1, momentum_decay):
    def kw(step):
        product = 1.0
        for t in range(1, step + 1):
            product *= beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
        return {"step": step, "mu_product": product}

    return kw


@settings(max_examples=60, deadline=None)
@given(
    shapes=SHAPES,
    lr=st.sampled_from([0.0, 2e-3, 0.05]),
    beta1=st.sampled_from([0.0, 0.9]),
    beta2=st.sampled_from([0.0, 0.999]),
    eps=st.sampled_from([1e-8, 1e-3]),
    weight_decay=st.sampled_from([0.0, 1e-2]),
    momentum_decay=st.sampled_from([0.0, 4e-3]),
    decoupled=st.booleans(),
    maximize=st.booleans(),
    seed=st.integers(0, 99),
)
def test_nadam_random(
    shapes, lr, beta1, beta2, eps, weight_decay, momentum_decay, decoupled, maximize, seed
):
    rng = np.random.default_rng(seed)
    run_both(
        "nadam_step", moments(tensors(shapes, rng)), 4, rng, step_kw=nadam_kw(beta1, momentum_decay), lr=lr,
        beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
        momentum_decay=momentum_decay, decoupled=decoupled, maximize=maximize,
    )  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    shapes=SHAPES,
    lr=st.sampled_from([1e-3, 0.1]),
    beta2=st.sampled_from([0.0, 0.999]),
    weight_decay=st.sampled_from([0.0, 1e-2]),
    decoupled=st.booleans(),
    maximize=st.booleans(),
    seed=st.integers(0, 99),
)
def test_adam_amsgrad_random(shapes, lr, beta2, weight_decay, decoupled, maximize, seed):
    rng = np.random.default_rng(seed)
    run_both(
        "adam_step", moments(tensors(shapes, rng), amsgrad=True), 5, rng, step_kw=step_count, lr=lr, beta1=0.9,
        beta2=beta2, eps=1e-8, weight_decay=weight_decay, decoupled=decoupled, maximize=maximize,
    )  # fmt: skip


@pytest.mark.parametrize("op", ["rmsprop", "adagrad", "nadam", "amsgrad"])
def test_large_tensors_split_across_threads(op):
    # 3 tensors, 200k floats in all: above the kernel's parallel threshold.
    rng = np.random.default_rng(0)
    params = tensors([(70001,), (3, 33333), (30000,)], rng)
    zeros = lambda: [np.zeros_like(p) for p in params]
    if op == "rmsprop":
        state = {"params": params, "square_avgs": zeros(), "grad_avgs": zeros(),
                 "momentum_buffers": zeros()}  # fmt: skip
        run_both("rmsprop_step", state, 2, rng, lr=0.01, alpha=0.9, eps=1e-8, momentum=0.9,
                 centered=True, weight_decay=0.01)  # fmt: skip
    elif op == "adagrad":
        run_both("adagrad_step", {"params": params, "state_sums": zeros()}, 2, rng,
                 step_kw=step_count, lr=0.1, lr_decay=0.1)  # fmt: skip
    elif op == "nadam":
        run_both("nadam_step", moments(params), 2, rng, step_kw=nadam_kw(0.9, 4e-3), lr=0.01, beta1=0.9,
                 beta2=0.999, eps=1e-8, weight_decay=0.01)  # fmt: skip
    else:
        run_both("adam_step", moments(params, amsgrad=True), 2, rng, step_kw=step_count,
                 lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)  # fmt: skip


def test_amsgrad_max_propagates_nan_like_the_reference():
    p = [np.ones(4, np.float32)]
    g = [np.array([1.0, np.nan, 1.0, 1.0], np.float32)]
    state = {"params": p, "exp_avgs": [np.zeros(4, np.float32)],
             "exp_avg_sqs": [np.zeros(4, np.float32)],
             "kw:max_exp_avg_sqs": [np.array([0.0, 0.0, np.nan, 0.0], np.float32)]}  # fmt: skip
    sides = {}
    for backend in (reference, cpu):
        s = {k: [a.copy() for a in v] for k, v in state.items()}
        backend.adam_step(s["params"], g, s["exp_avgs"], s["exp_avg_sqs"], 1, 0.1, 0.9, 0.999,
                          1e-8, max_exp_avg_sqs=s["kw:max_exp_avg_sqs"])  # fmt: skip
        sides[backend] = s
    for k in state:
        np.testing.assert_allclose(sides[cpu][k][0], sides[reference][k][0], rtol=1e-6)
    assert np.isnan(sides[cpu]["kw:max_exp_avg_sqs"][0][1:3]).all()


def test_updates_land_in_the_callers_arrays():
    p, g, s = np.ones(5, np.float32), np.ones(5, np.float32), np.zeros(5, np.float32)
    cpu.adagrad_step([p], [g], [s], 1, 0.1)
    assert (s == 1).all() and np.allclose(p, 0.9)


def test_bad_inputs():
    p = [np.ones(4, np.float32)]
    g = [np.ones(4, np.float32)]
    z = lambda: [np.zeros(4, np.float32)]
    with pytest.raises(ValueError, match=r"\[rmsprop_step\].*grad_avgs"):
        cpu.rmsprop_step(p, g, z(), [], [], 0.01, 0.99, 1e-8, centered=True)
    with pytest.raises(ValueError, match=r"\[rmsprop_step\].*momentum_buffers"):
        cpu.rmsprop_step(p, g, z(), [], [], 0.01, 0.99, 1e-8, momentum=0.9)
    with pytest.raises(ValueError, match=r"\[rmsprop_step\] alpha"):
        cpu.rmsprop_step(p, g, z(), [], [], 0.01, -0.5, 1e-8)
    with pytest.raises(ValueError, match=r"\[adagrad_step\] step"):
        cpu.adagrad_step(p, g, z(), 0, 0.1)
    with pytest.raises(ValueError, match=r"\[adagrad_step\].*state_sums"):
        cpu.adagrad_step(p, g, [np.zeros(3, np.float32)], 1, 0.1)
    with pytest.raises(ValueError, match=r"\[nadam_step\] mu_product"):
        cpu.nadam_step(p, g, z(), z(), 1, 0.1, 0.9, 0.999, 1e-8, 1.0)
    with pytest.raises(ValueError, match=r"\[adam_step\].*max_exp_avg_sqs"):
        cpu.adam_step(p, g, z(), z(), 1, 0.1, 0.9, 0.999, 1e-8, max_exp_avg_sqs=[])
    shared = z()
    with pytest.raises(ValueError, match="share memory"):
        _C.nadam_step(p, g, shared, shared, 1, 0.1, 0.9, 0.999, 1e-8, 0.5)
    with pytest.raises(ValueError, match=r"\[rmsprop_step\]"):
        _C.rmsprop_step(p, g, [np.zeros(4, np.float64)], [], [], 0.01, 0.99, 1e-8)
    with pytest.raises(ValueError, match=r"\[adagrad_step\]"):
        _C.adagrad_step([np.ones(8, np.float32)[::2]], g, z(), 1, 0.1)
