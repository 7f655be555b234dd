"""The cpu embedding kernel (csrc/cpu/embedding.cpp: embedding_backward, float32) against the
reference in float64, on every ISA build this processor runs.

Random shapes with hypothesis (empty index lists, D around the vector widths and the 16-float
column blocks, many repeats, padding_idx), 1 and 2 threads giving the same bits, and bad
inputs: indices out of range (IndexError, nothing written), bad padding_idx, dtypes and shapes.
"""

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu, reference
from hypothesis import given, settings
from hypothesis import strategies as st
from fastdl.testing import assert_close

ISAS = _C.supported_isas()


def inputs(M, V, D, seed):
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal((M, D), dtype=np.float32)
    return dy, rng.integers(0, max(V, 1), M) if V else np.zeros(M, np.int64)


def check(dy, indices, V, padding_idx):
    dw = cpu.embedding_backward(dy, indices, V, padding_idx)
    expected = reference.embedding_backward(dy.astype(np.float64), indices, V, padding_idx)
    assert_close(dw, expected.astype(np.float32), rtol=1e-5, atol=1e-6, name="dw")
    return dw


@settings(max_examples=40, deadline=None)
@given(
    M=st.sampled_from([0, 1, 5, 64, 300]),
    V=st.sampled_from([1, 2, 7, 50]),
    D=st.sampled_from([1, 3, 4, 8, 15, 16, 17, 33, 128]),
    padding=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_matches_reference_every_isa(M, V, D, padding, seed):
    dy, indices = inputs(M, V, D, seed)
    padding_idx = int(indices[0]) if padding and M else None
    saved = _C.simd_level()
    try:
        for name in ISAS:
            _C.set_simd_level(name)
            dw = check(dy, indices, V, padding_idx)
            assert dw.shape == (V, D) and dw.dtype == np.float32
            if padding_idx is not None:
                np.testing.assert_array_equal(dw[padding_idx], 0)
    finally:
        _C.set_simd_level(saved)


def test_rows_never_indexed_are_zero_and_repeats_add_up():
    dy = np.ones((6, 20), np.float32)
    dw = cpu.embedding_backward(dy, np.array([4, 1, 4, 4, 1, 0]), 6, None)
    np.testing.assert_array_equal(dw[:, 0], [1, 2, 0, 0, 3, 0])
    np.testing.assert_array_equal(cpu.embedding_backward(dy[:0], np.zeros(0, np.int64), 3, 1), 0)


@pytest.mark.parametrize("V,D", [(10000, 128), (300, 33), (40, 1000)])
def test_1_and_2_threads_give_the_same_bits(threads, V, D):
    # Large enough to run on two threads; indices into the first 40 rows only, so each row is
    # summed from many of them.
    dy, indices = inputs(4096, 40, D, 0)
    dws = []
    for n in (1, 2):
        threads(n)
        dws.append(check(dy, indices, V, 3))
    np.testing.assert_array_equal(dws[0], dws[1])


@pytest.mark.parametrize("n_threads", [1, 2])
def test_bad_indices_raise_and_write_nothing_outside(threads, n_threads):
    threads(n_threads)
    dy, indices = inputs(4096, 100, 64, 1)
    for bad in (-1, 100, 2**40):
        wrong = indices.copy()
        wrong[777] = bad
        for backend in (cpu, reference):
            with pytest.raises(
                IndexError, match=rf"\[embedding_backward\] index {bad} .*\[0, 100\)"
            ):
                backend.embedding_backward(dy, wrong, 100, None)


def test_bad_arguments_raise():
    dy, indices = inputs(5, 10, 4, 2)
    for backend in (cpu, reference):
        with pytest.raises(ValueError, match=r"\[embedding_backward\] padding_idx must be None or"):
            backend.embedding_backward(dy, indices, 10, 10)
        with pytest.raises(ValueError, match=r"\[embedding_backward\] padding_idx must be None or"):
            backend.embedding_backward(dy, indices, 10, -1)
        with pytest.raises(ValueError, match=r"\[embedding_backward\]"):
            backend.embedding_backward(dy, indices[:4], 10, None)
    with pytest.raises(ValueError, match=r"\[embedding_backward\] num_embeddings must be >= 0"):
        cpu.embedding_backward(dy, indices, -1, None)
    with pytest.raises(ValueError, match=r"\[embedding_backward\] dw is too large"):
        cpu.embedding_backward(dy, indices, 2**62, None)
    # Straight to _C: wrong dtypes, dimensions, layout.
    with pytest.raises(ValueError, match=r"\[embedding_backward\] indices must be int64"):
        _C.embedding_backward(dy, indices.astype(np.int32), 10, None)
    with pytest.raises(ValueError, match=r"\[embedding_backward\] dy must be float32"):
        _C.embedding_backward(dy.astype(np.float64), indices, 10, None)
    with pytest.raises(ValueError, match=r"\[embedding_backward\] dy must have 2 dimensions"):
        _C.embedding_backward(dy.reshape(-1), indices, 10, None)
    with pytest.raises(ValueError, match=r"\[embedding_backward\] indices must be C-contiguous"):
        _C.embedding_backward(dy, np.zeros(10, np.int64)[::2], 10, None)
