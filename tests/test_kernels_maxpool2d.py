"""The cpu maxpool2d (csrc/cpu/maxpool2d.cpp, backends.cpu.maxpool2d_*) against the NumPy reference.

Random shapes with hypothesis (odd sizes, batch 1, every kernel / stride / padding combination up
to 4 x 4, ties from small integer values, NaN inputs), rows wider than the kernel's 256-column
sweep, the founding CNN's pools, thread-count invariance, and bad inputs (through the wrapper and
straight to _C). Runs in a few seconds.
"""

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu
from fastdl.testing import assert_backends_match
from hypothesis import assume, given, settings
from hypothesis import strategies as st

SIZE = st.sampled_from([1, 2, 7, 17, 33, 65])


def inputs(shape, seed, ties=False, nan=0.0):
    # x of `shape`; with ties, values from {-2..2} so windows hold equal maxima; a `nan` fraction
    # of NaNs.
    rng = np.random.default_rng(seed)
    if ties:
        x = rng.integers(-2, 3, shape).astype(np.float32)
    else:
        x = rng.standard_normal(shape, dtype=np.float32)
    x[rng.random(shape) < nan] = np.nan
    return x


def check_pool(x, kernel, stride, padding, seed=0):
    # Forward against the reference, then the backward through the indices it returned.
    y, indices = assert_backends_match("maxpool2d_forward", x, kernel, stride, padding)
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape, dtype=np.float32)
    assert_backends_match("maxpool2d_backward", dy, indices, x.shape)


# ---- parity on random shapes ----


@settings(max_examples=80, deadline=None)
@given(
    N=st.sampled_from([1, 2]),
    C=st.sampled_from([1, 3]),
    H=SIZE,
    W=SIZE,
    R=st.integers(1, 4),
    S=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    data=st.data(),
    ties=st.booleans(),
    nan=st.sampled_from([0.0, 0.0, 0.05, 0.5]),
    seed=st.integers(0, 99),
)
def test_maxpool2d_random_shapes(N, C, H, W, R, S, sh, sw, data, ties, nan, seed):
    ph = data.draw(st.integers(0, R // 2), label="ph")
    pw = data.draw(st.integers(0, S // 2), label="pw")
    assume(H + 2 * ph >= R and W + 2 * pw >= S)
    check_pool(inputs((N, C, H, W), seed, ties, nan), (R, S), (sh, sw), (ph, pw), seed)


@pytest.mark.parametrize(
    "kernel,stride,padding", [(2, 2, 0), (3, 1, 1), (3, 2, 1), (5, 3, 2), ((1, 4), (1, 3), (0, 2))]
)
def test_maxpool2d_rows_wider_than_one_sweep(kernel, stride, padding):
    # W of 600 spans several 256-column blocks of the interior sweep.
    check_pool(inputs((1, 2, 9, 600), seed=3, ties=True, nan=0.01), kernel, stride, padding)


@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 1, 0), (3, 1, 1), (3, 2, 1)])
def test_maxpool2d_every_row_width(kernel, stride, padding, isa):
    # Widths around every vector length (4, 8, 16 columns): whole blocks, a shifted last block,
    # and rows too short for one block, on every ISA build (2x2 stride 2 runs per-ISA bodies).
    # Ties and NaNs check the vector selects.
    for W in range(3, 44):
        check_pool(inputs((1, 2, 5, W), seed=W, ties=True, nan=0.02), kernel, stride, padding)


@pytest.mark.parametrize("shape", [(64, 32, 28, 28), (64, 64, 14, 14), (1, 32, 28, 28)])
def test_maxpool2d_founding_cnn(shape, isa):
    check_pool(inputs(shape, seed=4), (2, 2), (2, 2), (0, 0))


def test_maxpool2d_nan_gives_last_nan_index():
    # NOTE: PyTorch's CPU kernel (replace when val > max or val is NaN), per INTERFACE.md.
    x = np.array([[[[1.0, np.nan], [np.nan, 5.0]]]], np.float32)
    y, indices = cpu.maxpool2d_forward(x, 2, 2, 0)
    assert np.isnan(y[0, 0, 0, 0]) and indices[0, 0, 0, 0] == 2


def test_maxpool2d_ties_and_padding_never_selected():
    # All -inf: the max is -inf, at the first real element, never a padded position.
    x = np.full((1, 1, 3, 3), -np.inf, np.float32)
    y, indices = cpu.maxpool2d_forward(x, 3, 1, 1)
    assert np.all(y == -np.inf)
    np.testing.assert_array_equal(indices[0, 0], [[0, 0, 1], [0, 0, 1], [3, 3, 4]])


def test_maxpool2d_backward_accumulates_overlaps():
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 1, 1] = 1  # the max of all four 2x2 windows with stride 1
    y, indices = cpu.maxpool2d_forward(x, 2, 1, 0)
    dx = cpu.maxpool2d_backward(np.ones_like(y), indices, x.shape)
    assert dx[0, 0, 1, 1] == 4 and dx.sum() == 4


def test_maxpool2d_backward_of_other_windows_with_the_2x2_shape(isa):
    # (28 + 2 - 3) // 2 + 1 = 14: 3x3 stride-2 windows give the 2x2 pool's output shape, but
    # their indices leave the 2x2 windows and overlap: the backward scatters by index alone,
    # whatever the windows were (a 2x2-only shortcut taken from the shapes would be wrong here).
    x = inputs((2, 3, 28, 28), seed=6, ties=True)
    check_pool(x, 3, 2, 1)
    y, indices = cpu.maxpool2d_forward(x, 2, 2, 0)
    dy = inputs(y.shape, seed=7)
    dy[0, 0, 0, :3] = -0.0  # a -0 gradient lands as +0, as 0 + -0 does in the scatter
    mixed = indices.copy()
    mixed[1, 2] = cpu.maxpool2d_forward(x, 3, 2, 1)[1][1, 2]  # one plane of other windows
    for idx in (indices, mixed):
        dx = cpu.maxpool2d_backward(dy, idx, x.shape)
        want = np.zeros(x.shape, np.float32)
        n, c, p, q = np.indices(y.shape)
        np.add.at(want.reshape(2, 3, -1), (n, c, idx), dy)
        np.testing.assert_array_equal(dx, want)
    assert not np.signbit(cpu.maxpool2d_backward(dy, indices, x.shape)[0, 0, 0:2, 0:6]).any()


# ---- threads ----


@pytest.mark.parametrize(
    "shape,kernel,stride,padding",
    [
        ((4, 8, 65, 65), 3, 2, 1),
        ((1, 1, 257, 257), 2, 2, 0),  # one plane: the forward splits rows
    ],
)
def test_maxpool2d_same_results_on_1_and_2_threads(threads, shape, kernel, stride, padding):
    x = inputs(shape, seed=5, ties=True, nan=0.001)
    outs = []
    for n in (1, 2):
        threads(n)
        y, indices = cpu.maxpool2d_forward(x, kernel, stride, padding)
        dx = cpu.maxpool2d_backward(np.ones_like(y), indices, x.shape)
        outs.append((y, indices, dx))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


# ---- bad inputs: ValueError naming the op, never a crash ----

X = np.zeros((1, 2, 5, 5), np.float32)


@pytest.mark.parametrize(
    "kernel,stride,padding,match",
    [
        ((0, 2), (1, 1), (0, 0), "kernel_size must be >= 1"),
        ((2, 2), (0, 1), (0, 0), "stride must be >= 1"),
        ((2, 2), (1, 1), (-1, 0), "padding must be >= 0 and at most half"),
        ((3, 3), (1, 1), (0, 2), "padding must be >= 0 and at most half"),
        ((6, 2), (1, 1), (0, 0), "does not fit the input"),
        ((2, 9), (1, 1), (0, 1), "does not fit the input"),
    ],
)
def test_maxpool2d_forward_rejects_bad_windows(kernel, stride, padding, match):
    with pytest.raises(ValueError, match=r"\[maxpool2d_forward\] .*" + match):
        cpu.maxpool2d_forward(X, kernel, stride, padding)


@pytest.mark.parametrize(
    "x,match",
    [
        (X.astype(np.float64), "x must be float32"),
        (X[..., ::2], "x must be C-contiguous"),
        (X[0], "x must have 4 dimensions"),
        (np.zeros((1, 2, 0, 5), np.float32), "height and width >= 1"),
    ],
)
def test_maxpool2d_forward_rejects_bad_arrays(x, match):
    with pytest.raises(ValueError, match=r"\[maxpool2d_forward\] .*" + match):
        _C.maxpool2d_forward(x, (2, 2), (2, 2), (0, 0))


def test_maxpool2d_backward_rejects_bad_inputs():
    y, indices = cpu.maxpool2d_forward(X, 2, 2, 0)
    dy = np.ones_like(y)
    op = r"\[maxpool2d_backward\] .*"
    for bad in (-1, 25, 2**62):
        wrong = indices.copy()
        wrong[0, 1, 1, 0] = bad
        with pytest.raises(ValueError, match=op + f"index {bad} .* outside the 5 x 5 input plane"):
            cpu.maxpool2d_backward(dy, wrong, X.shape)
    cases = [
        ((dy.astype(np.float64), indices, X.shape), "dy must be float32"),
        ((dy, indices.astype(np.int32), X.shape), "indices must be int64"),
        ((dy, np.ascontiguousarray(indices[..., :1]), X.shape), "must have the same shape"),
        ((dy, indices, (2, 2, 5, 5)), "must start with dy's batch and channels"),
        ((dy, indices, (1, 2, 0, 5)), "height and width >= 1"),
        ((dy, indices, (1, 2, 2**40, 2**40)), "fits int64"),
        ((dy[0], indices[0], X.shape), "dy must have 4 dimensions"),
        ((dy.transpose(0, 1, 3, 2), indices, X.shape), "dy must be C-contiguous"),
    ]
    for args, match in cases:
        with pytest.raises(ValueError, match=op + match):
            _C.maxpool2d_backward(*args)
