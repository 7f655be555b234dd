"""The cpu softmax cross-entropy (csrc/cpu/cross_entropy.cpp, backends.cpu.cross_entropy_*)
against the NumPy reference.

Random shapes with hypothesis (odd N and C, batch 1, logits of magnitude 1 and 1e4, index and
probability targets, class weights, ignore_index anywhere, every reduction) for the forward and
the backward, every sample ignored, NaN logits, thread-count invariance, and bad inputs (through
the wrapper and straight to _C). Runs in a few seconds.
"""

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu
from fastdl.testing import assert_backends_match, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

SIZE = st.sampled_from([1, 2, 7, 17, 33, 65])
REDUCTIONS = ["none", "sum", "mean"]


def case(N, C, seed, scale=1.0, probs=False, weighted=False, ignore_index=-100, ignored=0.0):
    # logits (N, C) * scale; index targets (N,) with an `ignored` fraction set to ignore_index,
    # or probability rows (N, C) summing to 1; weight (C,) in [0.5, 2) or None.
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((N, C)) * scale).astype(np.float32)
    if probs:
        target = rng.random((N, C)).astype(np.float32)
        target /= target.sum(axis=1, keepdims=True)
    else:
        target = rng.integers(0, C, N)
        target[rng.random(N) < ignored] = ignore_index
    weight = (rng.random(C) * 1.5 + 0.5).astype(np.float32) if weighted else None
    return logits, target, weight


def dloss_for(reduction, N, seed):
    rng = np.random.default_rng(seed + 7)
    if reduction == "none":
        return rng.standard_normal(N).astype(np.float32)
    return np.asarray(rng.standard_normal(), dtype=np.float32)


def check(logits, target, weight, reduction, ignore_index=-100, seed=0):
    # Forward, then backward from the cpu forward's log_probs, both against the reference.
    kw = dict(reduction=reduction, ignore_index=ignore_index)
    _, log_probs = assert_backends_match("cross_entropy_forward", logits, target, weight, **kw)
    dloss = dloss_for(reduction, len(logits), seed)
    assert_backends_match("cross_entropy_backward", dloss, log_probs, target, weight, **kw)


# ---- parity on random shapes ----


@settings(max_examples=120, deadline=None)
@given(
    N=SIZE,
    C=SIZE,
    scale=st.sampled_from([1.0, 30.0, 1e4]),
    probs=st.booleans(),
    weighted=st.booleans(),
    reduction=st.sampled_from(REDUCTIONS),
    ignore_index=st.sampled_from([-100, 0, 3]),
    ignored=st.sampled_from([0.0, 0.3]),
    seed=st.integers(0, 99),
)
def test_cross_entropy_random_shapes(
    N, C, scale, probs, weighted, reduction, ignore_index, ignored, seed
):
    logits, target, weight = case(N, C, seed, scale, probs, weighted, ignore_index, ignored)
    check(logits, target, weight, reduction, ignore_index, seed)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_founding_cnn_and_large(reduction):
    for N, C in [(64, 10), (1, 10), (512, 1000)]:
        check(*case(N, C, seed=N, weighted=N == 512), reduction)
        check(*case(N, C, seed=N, probs=True), reduction)


def test_cross_entropy_logits_of_magnitude_1e4_stay_finite():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], np.float32)
    loss, log_probs = cpu.cross_entropy_forward(logits, np.array([1, 2]), reduction="none")
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(log_probs))
    np.testing.assert_allclose(loss, [2e4, np.log(3)], rtol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_every_sample_ignored(weighted):
    # mean is 0 / 0 = NaN (as in PyTorch); sum is 0; the gradient is all zeros.
    logits, target, weight = case(5, 4, seed=1, weighted=weighted)
    target[:] = -100
    for reduction in REDUCTIONS:
        check(logits, target, weight, reduction)
    loss, _ = cpu.cross_entropy_forward(logits, target, weight)
    assert np.isnan(loss)


def test_cross_entropy_nan_logits_give_nan_rows():
    logits, target, _ = case(4, 5, seed=2)
    logits[1, 3] = np.nan
    check(logits, target, None, "none")
    loss, log_probs = cpu.cross_entropy_forward(logits, target, reduction="none")
    assert (
        np.isnan(loss[1])
        and np.all(np.isnan(log_probs[1]))
        and np.all(np.isfinite(loss[[0, 2, 3]]))
    )


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # the reference's 1 / N
def test_cross_entropy_empty_batch():
    logits = np.zeros((0, 3), np.float32)
    for target in (np.zeros(0, np.int64), np.zeros((0, 3), np.float32)):
        for reduction in REDUCTIONS:
            check(logits, target, None, reduction)


# ---- threads ----


@pytest.mark.parametrize("probs", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_same_results_on_1_and_2_threads(threads, probs, reduction):
    logits, target, weight = case(
        1000, 65, seed=3, scale=5.0, probs=probs, weighted=True, ignored=0.1
    )
    dloss = dloss_for(reduction, 1000, seed=3)
    outs = []
    for n in (1, 2):
        threads(n)
        loss, log_probs = cpu.cross_entropy_forward(logits, target, weight, reduction)
        dlogits = cpu.cross_entropy_backward(dloss, log_probs, target, weight, reduction)
        outs.append((loss, log_probs, dlogits))
    (loss1, lp1, d1), (loss2, lp2, d2) = outs
    # Rows are computed identically; only a reduction's summation order may change.
    np.testing.assert_array_equal(lp1, lp2)
    np.testing.assert_array_equal(d1, d2)
    assert_close(loss2, loss1, rtol=1e-6, atol=0)


# ---- bad inputs: ValueError naming the op, never a crash ----

LOGITS, TARGET, WEIGHT = case(4, 10, seed=4, weighted=True)


@pytest.mark.parametrize("op", ["cross_entropy_forward", "cross_entropy_backward"])
@pytest.mark.parametrize("bad", [12, 10, -1, -101])
def test_cross_entropy_rejects_targets_out_of_range(op, bad):
    target = TARGET.copy()
    target[2] = bad
    # The backward reads log_probs only after checking every target, so logits stand in for them.
    args = (LOGITS, target) if op == "cross_entropy_forward" else (np.float32(1), LOGITS, target)
    with pytest.raises(ValueError, match=rf"\[{op}\] target {bad} is out of range for 10 classes"):
        getattr(cpu, op)(*args)


def test_cross_entropy_forward_rejects_bad_arrays():
    f = _C.cross_entropy_forward
    op = r"\[cross_entropy_forward\] .*"
    cases = [
        ((LOGITS.astype(np.float64), TARGET), "logits must be float32"),
        ((LOGITS[:, ::2], TARGET), "logits must be C-contiguous"),
        ((LOGITS[0], TARGET), "logits must have 2 dimensions"),
        ((np.zeros((4, 0), np.float32), TARGET), "at least one class"),
        ((LOGITS, TARGET[:3]), r"must have shape \(4,\)"),
        ((LOGITS, TARGET.astype(np.int32)), "int64 class indices or float32 class probabilities"),
        ((LOGITS, TARGET.astype(np.float64)), "int64 class indices or float32 class probabilities"),
        ((LOGITS, np.zeros((4, 9), np.float32)), "must have the same shape"),
        ((LOGITS, np.zeros(4, np.float32)), "target must have 2 dimensions"),
        ((LOGITS, TARGET, WEIGHT[:9]), r"weight must have shape \(10,\)"),
        ((LOGITS, TARGET, WEIGHT.astype(np.float64)), "weight must be float32"),
        ((LOGITS, TARGET, None, "avg"), "reduction must be 'none', 'sum' or 'mean'"),
    ]
    for args, match in cases:
        with pytest.raises(ValueError, match=op + match):
            f(*args)


def test_cross_entropy_backward_rejects_bad_arrays():
    f = _C.cross_entropy_backward
    op = r"\[cross_entropy_backward\] .*"
    _, log_probs = cpu.cross_entropy_forward(LOGITS, TARGET)
    one = np.asarray(1.0, np.float32)
    cases = [
        ((one, log_probs.astype(np.float64), TARGET), "log_probs must be float32"),
        ((one, log_probs, TARGET[:2]), r"must have shape \(4,\)"),
        ((one.astype(np.float64), log_probs, TARGET), "dloss must be float32"),
        ((np.ones(1, np.float32), log_probs, TARGET), "dloss must be 0-d for reduction 'mean'"),
        ((one, log_probs, TARGET, None, "none"), r"dloss must have shape \(4,\)"),
        (
            (np.ones(3, np.float32), log_probs, TARGET, None, "none"),
            r"dloss must have shape \(4,\)",
        ),
        ((one, log_probs, TARGET, WEIGHT[:3]), r"weight must have shape \(10,\)"),
        ((one, log_probs, TARGET, None, "max"), "reduction must be"),
    ]
    for args, match in cases:
        with pytest.raises(ValueError, match=op + match):
            f(*args)
