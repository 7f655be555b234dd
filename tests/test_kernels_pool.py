"""The cpu pool kernels (csrc/cpu/pool.cpp, backends.cpu avgpool2d_*, adaptive_*) against the
reference in float64, on every ISA build this processor supports.

Random shapes and options with hypothesis: kernel, stride, padding, ceil_mode (windows hanging
past the padded input, kernels larger than the input), count_include_pad and divisor_override;
adaptive windows that tile evenly, ragged ones and more outputs than inputs; adaptive max with
ties, -inf and NaN (the last NaN's index); the adaptive max's backward through
maxpool2d_backward; thread-count invariance; empty batches; bad inputs, through the wrapper and
straight to _C.
"""

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu, reference
from hypothesis import given, settings
from hypothesis import strategies as st
from fastdl.testing import assert_close

ISAS = _C.supported_isas()
SETTINGS = {"max_examples": 40, "deadline": None}


def rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def every_isa(run):
    """run() once with each ISA build active; the active one is restored."""
    saved = _C.simd_level()
    try:
        for name in ISAS:
            _C.set_simd_level(name)
            run()
    finally:
        _C.set_simd_level(saved)


def matches_float64(op, *args, rtol=1e-5, atol=1e-6):
    """cpu.<op> on float32 arrays against reference.<op> on their float64 copies; returns the
    cpu outputs."""
    widen = [a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args]
    expected, actual = getattr(reference, op)(*widen), getattr(cpu, op)(*args)
    pairs = zip(actual, expected) if isinstance(actual, tuple) else [(actual, expected)]
    for i, (a, e) in enumerate(pairs):
        a = a.astype(np.float64) if a.dtype == np.float32 else a
        assert_close(a, e, rtol=rtol, atol=atol, name=f"{op} output {i}")
    return actual


@st.composite
def avg_case(draw):
    R, S = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, R // 2)), draw(st.integers(0, S // 2))
    ceil_mode = draw(st.booleans())
    # Sizes whose output is not empty: the kernel may overhang the padded input in ceil_mode.
    H = draw(st.integers(max(1, R - 2 * ph - (sh - 1 if ceil_mode else 0)), 20))
    W = draw(st.integers(max(1, S - 2 * pw - (sw - 1 if ceil_mode else 0)), 40))
    return (R, S), (sh, sw), (ph, pw), ceil_mode, H, W


@settings(**SETTINGS)
@given(
    case=avg_case(),
    N=st.sampled_from([0, 1, 2]),
    C=st.sampled_from([1, 3]),
    include=st.booleans(),
    divisor=st.sampled_from([None, 1, 3, -2]),
    seed=st.integers(0, 2**32 - 1),
)
def test_avgpool2d_matches_reference_every_isa(case, N, C, include, divisor, seed):
    kernel, stride, padding, ceil_mode, H, W = case
    x = rand((N, C, H, W), seed)
    options = (kernel, stride, padding, ceil_mode, include, divisor)

    def run():
        y = matches_float64("avgpool2d_forward", x, *options)
        dy = rand(y.shape, seed + 1)
        matches_float64("avgpool2d_backward", dy, x.shape, *options)

    every_isa(run)


def test_avgpool2d_divisors_by_hand():
    # 1 x 5 row of ones, kernel 3, stride 2, padding 1, ceil_mode: windows [-1, 2), [1, 4),
    # [3, 6) (the last hangs one past the padded input [-1, 6)? no: 6 is its end), so P = 3.
    x = np.ones((1, 1, 1, 5), np.float32)
    y = cpu.avgpool2d_forward(x, (1, 3), (1, 2), (0, 1), True, True, None)
    np.testing.assert_allclose(y.ravel(), [2 / 3, 1, 2 / 3], rtol=1e-6)
    y = cpu.avgpool2d_forward(x, (1, 3), (1, 2), (0, 1), True, False, None)
    np.testing.assert_allclose(y.ravel(), [1, 1, 1], rtol=1e-6)
    # Length 6: the ceil-mode window [5, 8) overhangs the padded input [-1, 7) by one; with
    # count_include_pad it counts the padding at 6 but not the overhang at 7: 1 / 2.
    x = np.ones((1, 1, 1, 6), np.float32)
    y = cpu.avgpool2d_forward(x, (1, 3), (1, 2), (0, 1), True, True, None)
    np.testing.assert_allclose(y.ravel(), [2 / 3, 1, 1, 1 / 2], rtol=1e-6)
    y = cpu.avgpool2d_forward(x, (1, 3), (1, 2), (0, 1), True, True, 4)
    np.testing.assert_allclose(y.ravel(), [2 / 4, 3 / 4, 3 / 4, 1 / 4], rtol=1e-6)


def test_avgpool2d_huge_kernel_and_padding_do_not_overflow():
    # Windows of 2**62 rows padded by 2**61: every one of the H + 1 windows covers all rows.
    x = rand((1, 2, 6, 6), 0)
    for include in (False, True):
        y = cpu.avgpool2d_forward(x, (2**62, 2), (1, 2), (2**61, 0), False, include, None)
        assert y.shape == (1, 2, 7, 3)
        col_sums = x.reshape(1, 2, 6, 3, 2).sum(axis=(2, 4))[:, :, None]
        divisor = 2.0**62 * 2 if include else 12  # the whole kernel lies in the padded rows
        np.testing.assert_allclose(y, np.broadcast_to(col_sums / divisor, y.shape), rtol=1e-5)


@st.composite
def adaptive_case(draw):
    H, W = draw(st.integers(1, 20)), draw(st.integers(1, 40))
    P = draw(st.sampled_from([1, H, max(1, H // 2)]) | st.integers(1, 25))
    Q = draw(st.sampled_from([1, W, max(1, W // 3)]) | st.integers(1, 45))
    return H, W, (P, Q)


@settings(**SETTINGS)
@given(case=adaptive_case(), N=st.sampled_from([0, 1, 2]), C=st.sampled_from([1, 4]),
       seed=st.integers(0, 2**32 - 1))
def test_adaptive_avgpool2d_matches_reference_every_isa(case, N, C, seed):
    H, W, out = case
    x = rand((N, C, H, W), seed)

    def run():
        y = matches_float64("adaptive_avgpool2d_forward", x, out)
        assert y.shape == (N, C) + out
        matches_float64("adaptive_avgpool2d_backward", rand(y.shape, seed + 1), x.shape)

    every_isa(run)


@settings(**SETTINGS)
@given(case=adaptive_case(), N=st.sampled_from([0, 1, 2]), C=st.sampled_from([1, 4]),
       ties=st.booleans(), specials=st.sampled_from(["none", "nan", "-inf"]),
       seed=st.integers(0, 2**32 - 1))
def test_adaptive_maxpool2d_matches_reference(case, N, C, ties, specials, seed):
    H, W, out = case
    rng = np.random.default_rng(seed)
    x = rand((N, C, H, W), seed)
    if ties:  # few distinct values: windows with equal maxima take the first
        x = np.round(x).astype(np.float32)
    if specials != "none" and x.size:
        x.flat[rng.integers(0, x.size, size=max(1, x.size // 5))] = float(specials)
    # The max is one of the inputs: exact, infinities and NaN included.
    y, indices = cpu.adaptive_maxpool2d_forward(x, out)
    ey, eindices = reference.adaptive_maxpool2d_forward(x.astype(np.float64), out)
    np.testing.assert_array_equal(y.astype(np.float64), ey)
    np.testing.assert_array_equal(indices, eindices)
    assert y.dtype == np.float32 and indices.dtype == np.int64
    # Gradients go to the indices: maxpool2d_backward is the adaptive max's backward.
    dy = rand(y.shape, seed + 1)
    assert_close(
        cpu.maxpool2d_backward(dy, indices, x.shape).astype(np.float64),
        reference.maxpool2d_backward(dy.astype(np.float64), indices, x.shape),
        rtol=1e-5, atol=1e-6, name="adaptive max backward",
    )


def test_adaptive_maxpool2d_takes_the_last_nan():
    x = np.zeros((1, 1, 2, 4), np.float32)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan
    x[0, 0, :, 2:] = -np.inf
    for backend in (cpu, reference):
        y, indices = backend.adaptive_maxpool2d_forward(x, (1, 2))
        assert np.isnan(y[0, 0, 0, 0]) and indices[0, 0, 0, 0] == 4  # (1, 0), the later NaN
        assert y[0, 0, 0, 1] == -np.inf and indices[0, 0, 0, 1] == 2  # all -inf: the first


def test_thread_count_does_not_change_results(threads):
    x = rand((8, 32, 28, 28), 0)
    calls = [
        ("avgpool2d_forward", (x, (3, 3), (2, 2), (1, 1), True, False, None)),
        ("avgpool2d_backward", (rand((8, 32, 15, 15), 1), x.shape, (3, 3), (2, 2), (1, 1), True,
                                False, None)),
        ("adaptive_avgpool2d_forward", (x, (5, 5))),
        ("adaptive_avgpool2d_backward", (rand((8, 32, 5, 5), 2), x.shape)),
        ("adaptive_maxpool2d_forward", (x, (5, 5))),
    ]
    for name, args in calls:
        threads(1)
        one = getattr(cpu, name)(*args)
        threads(_C.max_num_threads())
        many = getattr(cpu, name)(*args)
        for a, b in zip(one if isinstance(one, tuple) else [one],
                        many if isinstance(many, tuple) else [many]):
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_wrapper_converts_non_contiguous_and_float64():
    x = rand((2, 3, 8, 12), 0).astype(np.float64)[:, :, :, ::2]
    expected = reference.avgpool2d_forward(x, 2, 2, 0, False, True, None)
    assert_close(cpu.avgpool2d_forward(x, 2, 2, 0, False, True, None).astype(np.float64),
                 expected, rtol=1e-5, atol=1e-6)
    assert_close(cpu.adaptive_avgpool2d_forward(x, 3).astype(np.float64),
                 reference.adaptive_avgpool2d_forward(x, 3), rtol=1e-5, atol=1e-6)


AVG = ((2, 2), (2, 2), (0, 0), False, True, None)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: cpu.avgpool2d_forward(x[0], *AVG), r"\[avgpool2d_forward\] x must have 4"),
        (lambda x: cpu.avgpool2d_forward(x, (0, 2), (2, 2), (0, 0), False, True, None),
         r"\[avgpool2d_forward\] kernel_size must be >= 1"),
        (lambda x: cpu.avgpool2d_forward(x, (2, 2), (2, 0), (0, 0), False, True, None),
         r"\[avgpool2d_forward\] stride must be >= 1"),
        (lambda x: cpu.avgpool2d_forward(x, (2, 2), (2, 2), (0, 2), False, True, None),
         r"\[avgpool2d_forward\] padding must be >= 0 and at most half"),
        (lambda x: cpu.avgpool2d_forward(x, (2, 2), (2, 2), (-1, 0), False, True, None),
         r"\[avgpool2d_forward\] padding must be >= 0"),
        (lambda x: cpu.avgpool2d_forward(x, (2, 2), (2, 2), (0, 0), False, True, 0),
         r"\[avgpool2d_forward\] divisor_override must not be zero"),
        (lambda x: cpu.avgpool2d_forward(x, (7, 2), (2, 2), (0, 0), False, True, None),
         r"\[avgpool2d_forward\] kernel_size \(7, 2\) .* gives an empty output"),
        (lambda x: cpu.avgpool2d_forward(x[:, :, :0], *AVG),
         r"\[avgpool2d_forward\] x must have height and width >= 1"),
        (lambda x: cpu.avgpool2d_backward(x, (2, 3, 8, 8), *AVG),
         r"\[avgpool2d_backward\] dy must have height and width \(4, 4\)"),
        (lambda x: cpu.avgpool2d_backward(x[:, :, :3, :3], (2, 4, 6, 6), *AVG),
         r"\[avgpool2d_backward\] input_shape \(2, 4, 6, 6\) must start with dy's"),
        (lambda x: cpu.avgpool2d_backward(x[:, :, :3, :3], (2, 3, 0, 6), *AVG),
         r"\[avgpool2d_backward\] input_shape must have height and width >= 1"),
        (lambda x: cpu.adaptive_avgpool2d_forward(x, (0, 2)),
         r"\[adaptive_avgpool2d_forward\] output_size must be >= 1"),
        (lambda x: cpu.adaptive_avgpool2d_forward(x, (2**62, 2)),
         r"\[adaptive_avgpool2d_forward\] output_size times the input size is too large"),
        (lambda x: cpu.adaptive_avgpool2d_backward(x, (2, 3, 6)),
         r"adaptive_avgpool2d_backward"),
        (lambda x: cpu.adaptive_avgpool2d_backward(x[:, :, :0], (2, 3, 6, 6)),
         r"\[adaptive_avgpool2d_backward\] output_size must be >= 1"),
        (lambda x: cpu.adaptive_maxpool2d_forward(x[..., None], 2),
         r"\[adaptive_maxpool2d_forward\] x must have 4 dimensions"),
        (lambda x: cpu.adaptive_maxpool2d_forward(x, (3, -1)),
         r"\[adaptive_maxpool2d_forward\] output_size must be >= 1"),
        # Straight to _C: wrong dtype, non-contiguous, misaligned.
        (lambda x: _C.avgpool2d_forward(x.astype(np.float64), *AVG),
         r"\[avgpool2d_forward\] x must be float32"),
        (lambda x: _C.adaptive_maxpool2d_forward(x[:, :, :, ::2], (2, 2)),
         r"\[adaptive_maxpool2d_forward\] x must be C-contiguous"),
        (lambda x: _C.adaptive_avgpool2d_backward(
            np.zeros(2 * 3 * 6 * 6 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(2, 3, 6, 6),
            (2, 3, 6, 6)),
         r"\[adaptive_avgpool2d_backward\] dy must be aligned"),
    ],
)
def test_bad_inputs_raise(call, message):
    x = rand((2, 3, 6, 6), 0)
    with pytest.raises((ValueError, TypeError), match=message):
        call(x)


@pytest.mark.parametrize("backend", [cpu, reference], ids=lambda m: m.name)
def test_reference_checks_too(backend):
    x = rand((2, 3, 6, 6), 0)
    with pytest.raises(ValueError, match=r"\[avgpool2d_forward\]"):
        backend.avgpool2d_forward(x, (7, 2), (2, 2), (0, 0), False, True, None)
    with pytest.raises(ValueError, match=r"\[avgpool2d_backward\]"):
        backend.avgpool2d_backward(x, (2, 3, 8, 8), *AVG)
    with pytest.raises(ValueError, match=r"\[adaptive_maxpool2d_forward\]"):
        backend.adaptive_maxpool2d_forward(x, (0, 1))
    with pytest.raises(ValueError, match=r"\[adaptive_avgpool2d_backward\]"):
        backend.adaptive_avgpool2d_backward(x, (2, 4, 6, 6))
