"""The cpu activations (csrc/cpu/activations.cpp, backends.cpu.<name>_forward/_backward)
against the NumPy reference.

Random shapes with hypothesis (odd sizes, 0-d to 4-d, large magnitudes, NaN inputs), infinities,
sizes around the threading threshold, thread-count invariance, and bad inputs straight to _C.
Runs in a few seconds.
"""

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu, reference
from fastdl.testing import assert_backends_match
from hypothesis import given, settings
from hypothesis import strategies as st

NAMES = ["relu", "sigmoid", "tanh"]
SHAPES = (
    st.lists(st.sampled_from([1, 2, 7, 17, 33, 65]), min_size=1, max_size=4)
    .filter(lambda s: np.prod(s) <= 1 << 17)  # up to 4x the threading threshold
    .map(tuple)
)


def inputs(shape, seed, scale=3.0, nan=0.0):
    # x of `shape` * scale with a `nan` fraction of NaNs, and an upstream dy.
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.standard_normal(shape) * scale, dtype=np.float32)
    x[rng.random(shape) < nan] = np.nan
    dy = np.asarray(rng.standard_normal(shape), dtype=np.float32)
    return x, dy


def check(name, x, dy):
    # Forward, then backward from the cpu forward's output, both against the reference.
    y = assert_backends_match(f"{name}_forward", x)
    assert_backends_match(f"{name}_backward", dy, y)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    shape=SHAPES,
    scale=st.sampled_from([1.0, 30.0, 1e4]),
    nan=st.sampled_from([0.0, 0.05]),
    seed=st.integers(0, 99),
)
def test_activations_random_shapes(name, shape, scale, nan, seed):
    check(name, *inputs(shape, seed, scale, nan))


@pytest.mark.parametrize("name", NAMES)
def test_activations_0d(name):
    check(name, *inputs((), seed=0))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [0, 1, (1 << 15) - 1, 1 << 15, (1 << 15) + 1, 100_003])
def test_activations_around_the_threading_threshold(name, n):
    check(name, *inputs((n,), seed=n, nan=0.01))


@pytest.mark.parametrize("name", NAMES)
def test_activations_nan_and_infinities(name):
    # Exact values (assert_close measures errors, which infinities make NaN).
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, 88.8, -88.8, 1e4, -1e4], np.float32)
    dy = np.ones_like(x)
    y = getattr(cpu, f"{name}_forward")(x)
    expected = getattr(reference, f"{name}_forward")(x)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-30)  # equal_nan, inf == inf
    np.testing.assert_allclose(
        getattr(cpu, f"{name}_backward")(dy, y),
        getattr(reference, f"{name}_backward")(dy, expected),
        rtol=1e-6,
        atol=1e-30,
    )
    assert np.isnan(y[0]) and not np.isnan(y[1:]).any()


@pytest.mark.parametrize("name", NAMES)
def test_activations_same_results_on_1_and_2_threads(threads, name):
    x, dy = inputs((64, 32, 28, 28), seed=5, nan=0.001)  # the founding CNN's conv1 output
    outs = []
    for n in (1, 2):
        threads(n)
        y = getattr(cpu, f"{name}_forward")(x)
        outs.append((y, getattr(cpu, f"{name}_backward")(dy, y)))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_activations_reject_bad_inputs(name):
    x = np.zeros((3, 4), np.float32)
    forward, backward = getattr(_C, f"{name}_forward"), getattr(_C, f"{name}_backward")
    for bad, match in [
        (x.astype(np.float64), "x must be float32"),
        (x.T, "x must be C-contiguous"),
    ]:
        with pytest.raises(ValueError, match=rf"\[{name}_forward\] {match}"):
            forward(bad)
    cases = [
        ((x, x[:2]), "dy and y must have the same shape"),
        ((x.astype(np.float64), x), "dy must be float32"),
        ((x, x.astype(np.int64)), "y must be float32"),
        ((x, x[:, ::2].T), "y must be C-contiguous"),
    ]
    for args, match in cases:
        with pytest.raises(ValueError, match=rf"\[{name}_backward\] {match}"):
            backward(*args)
