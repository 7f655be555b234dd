"""The cpu norm kernels (csrc/cpu/norm.cpp, backends.cpu.norm_*) against the reference.

x is (A, C, B), standardised per channel over A and B. Random shapes with hypothesis (zero-size
groups and channels, 1-element groups, batch-norm-like and layer-norm-like views), NaN and inf
propagation, thread-count invariance, and bad inputs (through the wrapper and straight to _C).
"""

import warnings

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu, reference
from fastdl.testing import assert_backends_match
from hypothesis import given, settings
from hypothesis import strategies as st

SIZE = st.sampled_from([0, 1, 2, 3, 7, 17, 64, 196])


def inputs(shape, seed, scale=1.0, offset=0.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape, dtype=np.float32) * scale + offset).astype(np.float32)


def check(x, dy, eps=1e-5, offset=0.0):
    # x - mean is known to about ulp(offset): the tolerance grows with the offset (the two sides
    # sum in different orders, the kernel partly in double).
    atol = 1e-5 + 2e-6 * abs(offset)
    y, mean, var, rstd = assert_backends_match("norm_forward", x, eps, rtol=1e-4, atol=atol)
    assert y.shape == x.shape and mean.shape == var.shape == rstd.shape == (x.shape[1],)
    assert_backends_match("norm_backward", dy, x, mean, rstd, rtol=1e-3, atol=10 * atol)


@settings(max_examples=60, deadline=None)
@given(
    A=SIZE,
    C=st.sampled_from([0, 1, 3, 32]),
    B=SIZE,
    seed=st.integers(0, 2**32 - 1),
    offset=st.sampled_from([0.0, 3.0, -100.0]),
)
def test_matches_reference(A, C, B, seed, offset):
    x = inputs((A, C, B), seed, offset=offset)
    check(x, inputs((A, C, B), seed + 1), offset=offset)


def test_one_element_groups():
    # var = 0: y = 0, rstd = 1 / sqrt(eps), dx = 0.
    x = inputs((1, 5, 1), 0)
    y, mean, var, rstd = cpu.norm_forward(x, 1e-5)
    np.testing.assert_array_equal(y, 0)
    np.testing.assert_array_equal(var, 0)
    np.testing.assert_array_equal(mean, x.reshape(5))
    np.testing.assert_array_equal(cpu.norm_backward(inputs((1, 5, 1), 1), x, mean, rstd), 0)


def test_empty_groups_give_nan_statistics():
    x = np.zeros((0, 4, 3), np.float32)
    y, mean, var, rstd = cpu.norm_forward(x, 1e-5)
    assert y.shape == (0, 4, 3) and np.isnan(mean).all() and np.isnan(var).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, rmean, _, _ = reference.norm_forward(x.astype(np.float64), 1e-5)
    assert np.isnan(rmean).all()
    assert cpu.norm_backward(x, x, mean, rstd).shape == (0, 4, 3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_propagate(bad):
    x = inputs((4, 3, 9), 0)
    x[2, 1, 5] = bad
    y, mean, var, rstd = cpu.norm_forward(x, 1e-5)
    ry, rmean, rvar, rrstd = reference.norm_forward(x, 1e-5)
    for a, e in [(y, ry), (mean, rmean), (var, rvar), (rstd, rrstd)]:
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
    assert np.isnan(y[:, 1]).all() and np.isfinite(y[:, [0, 2]]).all()
    dy = inputs(x.shape, 1)
    dx = cpu.norm_backward(dy, x, mean, rstd)
    rdx = reference.norm_backward(dy, x, rmean, rrstd)
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(rdx))
    assert np.isfinite(dx[:, [0, 2]]).all()


def test_large_groups_and_offsets():
    # A batch of feature maps with a large mean, held to float64: the double sums across runs and
    # the two-pass variance keep the kernel accurate.
    x, dy = inputs((64, 8, 196), 3, scale=0.1, offset=1000.0), inputs((64, 8, 196), 4)
    y, mean, var, rstd = cpu.norm_forward(x, 1e-5)
    ry, rmean, rvar, rrstd = reference.norm_forward(x.astype(np.float64), 1e-5)
    np.testing.assert_allclose(mean, rmean, rtol=1e-6)
    np.testing.assert_allclose(var, rvar, rtol=1e-2)  # x - mean loses digits to the offset
    np.testing.assert_allclose(y, ry, atol=2e-3)
    dx = cpu.norm_backward(dy, x, mean, rstd)
    rdx = reference.norm_backward(dy.astype(np.float64), x.astype(np.float64), rmean, rrstd)
    np.testing.assert_allclose(dx, rdx, atol=2e-3 * np.abs(rdx).max())


def test_thread_count_does_not_change_results(threads):
    x, dy = inputs((16, 64, 100), 5), inputs((16, 64, 100), 6)
    threads(1)
    one = cpu.norm_forward(x, 1e-5)
    dx1 = cpu.norm_backward(dy, x, one[1], one[3])
    threads(_C.max_num_threads())
    many = cpu.norm_forward(x, 1e-5)
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(dx1, cpu.norm_backward(dy, x, many[1], many[3]))


def test_wrapper_converts_non_contiguous_and_float64():
    x = inputs((3, 4, 10), 0).astype(np.float64)[:, :, ::2]
    y, _, _, _ = cpu.norm_forward(x, 1e-5)
    ry, _, _, _ = reference.norm_forward(np.ascontiguousarray(x, np.float32), 1e-5)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)


def test_bad_inputs_raise():
    x = inputs((2, 3, 4), 0)
    _, mean, _, rstd = cpu.norm_forward(x, 1e-5)
    with pytest.raises(ValueError, match=r"\[norm_forward\] x must have 3 dimensions"):
        cpu.norm_forward(x.reshape(6, 4), 1e-5)
    with pytest.raises(ValueError, match=r"\[norm_forward\] eps"):
        cpu.norm_forward(x, -1.0)
    with pytest.raises(ValueError, match=r"\[norm_forward\] eps"):
        cpu.norm_forward(x, float("nan"))
    with pytest.raises(ValueError, match=r"\[norm_backward\] dy and x must have the same shape"):
        cpu.norm_backward(x[:1], x, mean, rstd)
    with pytest.raises(ValueError, match=r"\[norm_backward\] mean and rstd must have shape"):
        cpu.norm_backward(x, x, mean[:2], rstd)
    with pytest.raises(ValueError, match=r"\[norm_backward\] rstd must have 1 dimensions"):
        cpu.norm_backward(x, x, mean, rstd.reshape(1, 3))
    # Straight to _C: wrong dtype, non-contiguous, misaligned.
    with pytest.raises(ValueError, match=r"\[norm_forward\] x must be float32"):
        _C.norm_forward(x.astype(np.float64), 1e-5)
    with pytest.raises(ValueError, match=r"\[norm_forward\] x must be C-contiguous"):
        _C.norm_forward(np.zeros((2, 3, 8), np.float32)[:, :, ::2], 1e-5)
    raw = np.zeros(2 * 3 * 4 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(2, 3, 4)
    with pytest.raises(ValueError, match=r"\[norm_backward\] dy must be aligned"):
        _C.norm_backward(raw, x, mean, rstd)
    with pytest.raises(ValueError, match=r"\[norm_backward\] x must have 3 dimensions"):
        reference.norm_backward(x, x.reshape(6, 4), mean, rstd)
