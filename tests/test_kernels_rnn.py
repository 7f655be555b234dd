"""The cpu rnn kernels (csrc/cpu/rnn.cpp: lstm_cell_forward/backward, gru_cell_forward/backward,
float32) against the reference in float64, on every ISA build this processor runs.

Random shapes with hypothesis (empty batches, H around the vector widths, with and without bias
and dc), large magnitudes and NaN, 1 and 2 threads giving the same bits above the threading
threshold, and bad inputs through the wrapper and straight to _C.
"""

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu, reference
from hypothesis import given, settings
from hypothesis import strategies as st
from fastdl.testing import assert_close

ISAS = _C.supported_isas()
HIDDEN = st.sampled_from([0, 1, 3, 4, 8, 15, 16, 17, 33, 64])


def rand(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def f64(a):
    return None if a is None else a.astype(np.float64)


def check(op, *args, atol=2e-6):
    """cpu.<op> on the float32 args against reference.<op> on float64 copies; returns cpu's."""
    actual = getattr(cpu, op)(*args)
    expected = getattr(reference, op)(*(f64(a) if isinstance(a, np.ndarray) else a for a in args))
    assert len(actual) == len(expected)
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, e.astype(np.float32), rtol=1e-5, atol=atol, name=f"{op} output {k}")
    return actual


def lstm_round_trip(N, H, seed, bias=True, dc=True, scale=1.0):
    gi, gh = rand((N, 4 * H), seed, scale), rand((N, 4 * H), seed + 1, scale)
    b = rand(4 * H, seed + 2) if bias else None
    c = rand((N, H), seed + 3, scale)
    h, c_new, act, tanh_c = check("lstm_cell_forward", gi, gh, b, c)
    dh, dcv = rand((N, H), seed + 4), rand((N, H), seed + 5) if dc else None
    return (h, c_new, act, tanh_c), check("lstm_cell_backward", act, tanh_c, c, dh, dcv)


def gru_round_trip(N, H, seed, bias=True, scale=1.0):
    gi, gh = rand((N, 3 * H), seed, scale), rand((N, 3 * H), seed + 1, scale)
    b = rand(3 * H, seed + 2) if bias else None
    h = rand((N, H), seed + 3, scale)
    h_new, act = check("gru_cell_forward", gi, gh, b, h)
    return (h_new, act), check("gru_cell_backward", act, h, rand((N, H), seed + 4))


@settings(max_examples=30, deadline=None)
@given(
    N=st.sampled_from([0, 1, 2, 5, 20]),
    H=HIDDEN,
    bias=st.booleans(),
    dc=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_lstm_matches_reference_every_isa(N, H, bias, dc, seed):
    saved = _C.simd_level()
    try:
        for name in ISAS:
            _C.set_simd_level(name)
            (h, c_new, act, tanh_c), (dgates, dc_prev) = lstm_round_trip(N, H, seed, bias, dc)
            assert h.shape == c_new.shape == tanh_c.shape == dc_prev.shape == (N, H)
            assert act.shape == dgates.shape == (N, 4 * H) and h.dtype == np.float32
    finally:
        _C.set_simd_level(saved)


@settings(max_examples=30, deadline=None)
@given(
    N=st.sampled_from([0, 1, 2, 5, 20]), H=HIDDEN, bias=st.booleans(), seed=st.integers(0, 2**31)
)
def test_gru_matches_reference_every_isa(N, H, bias, seed):
    saved = _C.simd_level()
    try:
        for name in ISAS:
            _C.set_simd_level(name)
            (h_new, act), (dgi, dgh, dh_prev) = gru_round_trip(N, H, seed, bias)
            assert h_new.shape == dh_prev.shape == (N, H) and act.shape == (N, 4 * H)
            assert dgi.shape == dgh.shape == (N, 3 * H)
    finally:
        _C.set_simd_level(saved)


def test_saturated_gates_and_nan(isa):
    # Pre-activations of magnitude ~30 saturate sigmoid and tanh; a NaN reaches exactly the
    # outputs it feeds, as in the reference (check compares NaN positions).
    lstm_round_trip(4, 19, 0, scale=30.0)
    gru_round_trip(4, 19, 1, scale=30.0)
    gi, gh, c = rand((3, 4 * 5), 2), rand((3, 4 * 5), 3), rand((3, 5), 4)
    gi[1, 2] = np.nan  # row 1, gate i, unit 2
    h = check("lstm_cell_forward", gi, gh, None, c)[0]
    assert np.isnan(h[1, 2]) and np.isnan(h).sum() == 1
    gi3, gh3, hh = rand((3, 3 * 5), 5), rand((3, 3 * 5), 6), rand((3, 5), 7)
    gh3[2, 2 * 5 + 1] = np.nan  # row 2, hn, unit 1
    h_new, _ = check("gru_cell_forward", gi3, gh3, None, hh)
    assert np.isnan(h_new[2, 1]) and np.isnan(h_new).sum() == 1


@pytest.mark.parametrize("N,H", [(64, 128), (257, 33)])  # both above the threading threshold
def test_1_and_2_threads_give_the_same_bits(threads, N, H):
    outs = []
    for n in (1, 2):
        threads(n)
        outs.append(
            [
                *lstm_round_trip(N, H, 3)[0],
                *lstm_round_trip(N, H, 3)[1],
                *gru_round_trip(N, H, 4)[0],
                *gru_round_trip(N, H, 4)[1],
            ]
        )
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_wrapper_converts_float64_and_non_contiguous():
    gi = rand((3, 4 * 6 * 2), 0).astype(np.float64)[:, ::2]
    gh, c = rand((3, 24), 1), rand((3, 6), 2)
    h, *_ = cpu.lstm_cell_forward(gi, gh, None, c)
    expected, *_ = reference.lstm_cell_forward(gi, f64(gh), None, f64(c))
    assert h.dtype == np.float32
    np.testing.assert_allclose(h, expected, rtol=1e-5, atol=1e-6)


def test_bad_inputs_raise():
    gi, c = rand((2, 12), 0), rand((2, 3), 1)
    for backend in (cpu, reference):
        with pytest.raises(ValueError, match=r"\[lstm_cell_forward\] gi must have shape \(2, 12\)"):
            backend.lstm_cell_forward(gi[:, :8], gi, None, c)
        with pytest.raises(ValueError, match=r"\[lstm_cell_forward\] b must have shape \(12,\)"):
            backend.lstm_cell_forward(gi, gi, gi[0, :4], c)
        with pytest.raises(ValueError, match=r"\[lstm_cell_backward\] dh and c must have the same"):
            backend.lstm_cell_backward(gi, c, c, c[:1], None)
        with pytest.raises(ValueError, match=r"\[gru_cell_forward\] gh must have shape \(2, 9\)"):
            backend.gru_cell_forward(gi[:, :9], gi, None, c)
        with pytest.raises(
            ValueError, match=r"\[gru_cell_backward\] act must have shape \(2, 12\)"
        ):
            backend.gru_cell_backward(gi[:, :9], c, c)
        with pytest.raises(ValueError, match=r"\[gru_cell_forward\] h must have 2 dimensions"):
            backend.gru_cell_forward(gi[:, :9], gi[:, :9], None, c[0])
    # Straight to _C: wrong dtype, non-contiguous, misaligned.
    with pytest.raises(ValueError, match=r"\[lstm_cell_forward\] c must be float32"):
        _C.lstm_cell_forward(gi, gi, None, c.astype(np.float64))
    with pytest.raises(ValueError, match=r"\[gru_cell_backward\] dh must be C-contiguous"):
        _C.gru_cell_backward(gi, c, rand((2, 6), 2)[:, ::2])
    raw = np.zeros(2 * 12 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(2, 12)
    with pytest.raises(ValueError, match=r"\[lstm_cell_backward\] act must be aligned"):
        _C.lstm_cell_backward(raw, c, c, c, c)
