"""The cpu GEMM (csrc/cpu/gemm.cpp, backends.cpu.matmul) against the NumPy reference.

Random shapes with hypothesis (odd sizes, all transposes, batched), sizes straddling the active
micro-kernel's blocking (read from _C.gemm_config(), so SIMD variants are covered too), both
sides of the direct / blocked boundary, the founding CNN's linear layers, thread-count
invariance, and bad inputs passed straight to _C. tests/test_kernels_simd.py repeats the parity
checks under every ISA build the processor supports. Runs in a few seconds.
"""

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu, reference
from fastdl.testing import assert_backends_match, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

CFG = _C.gemm_config()
ODD = st.sampled_from([1, 2, 7, 17, 33, 65]) | st.integers(1, 80)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def operands(M, N, K, trans_a, trans_b, batch=None, seed=0):
    # a is (M, K) or (K, M) when trans_a, b is (K, N) or (N, K) when trans_b, optionally batched.
    lead = () if batch is None else (batch,)
    a = rand(*lead, *((K, M) if trans_a else (M, K)), seed=seed)
    b = rand(*lead, *((N, K) if trans_b else (K, N)), seed=seed + 1)
    return a, b


# ---- parity on random shapes ----


@settings(max_examples=60, deadline=None)
@given(M=ODD, N=ODD, K=ODD, trans_a=st.booleans(), trans_b=st.booleans(), seed=st.integers(0, 99))
def test_matmul_random_shapes(M, N, K, trans_a, trans_b, seed):
    a, b = operands(M, N, K, trans_a, trans_b, seed=seed)
    assert_backends_match("matmul", a, b, trans_a, trans_b)


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 5), M=ODD, N=ODD, K=ODD, trans_a=st.booleans(), trans_b=st.booleans())
def test_matmul_batched_random_shapes(batch, M, N, K, trans_a, trans_b):
    a, b = operands(M, N, K, trans_a, trans_b, batch=batch)
    assert_backends_match("matmul", a, b, trans_a, trans_b)


# ---- sizes around the blocking: full and partial MR/NR tiles, several MC/KC/NC blocks ----

MR, NR, MC, KC, NC = (CFG[k] for k in ("MR", "NR", "MC", "KC", "NC"))
STRADDLE = [
    (MR - 1, NR + 1, 3),
    (MR + 1, NR - 1, 5),
    (MC - 1, 33, KC - 1),
    (MC + 1, 65, KC + 1),
    (2 * MC + 1, 17, 2 * KC + 1),
    (3, NC + 1, 9),
    (7, 2 * NC + NR + 1, 2),
]


@pytest.mark.parametrize(
    "trans_a,trans_b", [(False, False), (False, True), (True, False), (True, True)]
)
@pytest.mark.parametrize("M,N,K", STRADDLE)
def test_matmul_straddles_blocking(M, N, K, trans_a, trans_b):
    assert_backends_match("matmul", *operands(M, N, K, trans_a, trans_b), trans_a, trans_b)


def test_matmul_vectors_and_empty_inner():
    assert_backends_match("matmul", rand(1, 1), rand(1, 1))
    assert_backends_match("matmul", rand(1, 300), rand(300, 1))
    assert_backends_match("matmul", rand(300, 1), rand(1, 300))
    assert_backends_match("matmul", rand(5, 0), rand(0, 3))  # K = 0 gives zeros
    assert_backends_match("matmul", rand(2, 5, 0), rand(2, 0, 3))


def test_matmul_batched_large_and_single():
    # Large matrices run one after another with a threaded GEMM; batch 1 too.
    assert_backends_match("matmul", *operands(300, 290, 210, False, True, batch=2), False, True)
    assert_backends_match("matmul", *operands(65, 33, 17, True, False, batch=1), True, False)


# ---- the two paths: direct (M * N * K <= 128^3, A read in place) and blocked (packed) ----


@pytest.mark.parametrize(
    "M,N,K",
    [
        (128, 128, 128),  # the largest direct product: rows 512 bytes apart alias in L1
        (128, 128, 129),  # the smallest blocked one
        (64, 64, 64),
        (127, 9, 130),  # few NR panels: the direct path's threads split row tiles
        (3, 2000, 300),  # one row tile, many panels
        (256, 256, 256),
        # the skinny path (C of a few rows, or K of a few terms):
        (1, 128, 3136),  # the founding CNN's fc1 at batch 1: y = x @ w.T ...
        (1, 3136, 128),  # ... dx = dy @ w
        (128, 3136, 1),  # ... dw = dy.T @ x, an outer product
        (4, 4 * NR + 3, 2 * KC + 5),  # whole strips and a tail; K past the last full vector
        (2, 7, 3),
        (33, 70, 4),
        (33, 70, 5),  # past kSkinnyMaxK: the tile
        (1, 4000, 2100),  # at the threading threshold: two threads split the columns
        (2100, 4000, 1),
    ],
)
@pytest.mark.parametrize(
    "trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)]
)
def test_matmul_skinny_direct_and_blocked_paths(M, N, K, trans_a, trans_b, threads):
    a, b = operands(M, N, K, trans_a, trans_b, seed=M + N)
    threads(1)
    one = assert_backends_match("matmul", a, b, trans_a, trans_b)
    threads(2)
    np.testing.assert_array_equal(cpu.matmul(a, b, trans_a, trans_b), one)


# ---- the founding CNN's linear layers: 3136 -> 128 -> 10 at batch 64 ----


def test_matmul_cnn_linear_layers():
    x, w1, dy1 = rand(64, 3136), rand(128, 3136, seed=1), rand(64, 128, seed=2)
    assert_backends_match("matmul", x, rand(3136, 128, seed=3))  # 64x3136 @ 3136x128
    assert_backends_match("matmul", x, w1, False, True)  # y = x @ w.T
    assert_backends_match("matmul", dy1, x, True, False)  # dw = dy.T @ x
    assert_backends_match("matmul", dy1, w1)  # dx = dy @ w
    assert_backends_match("matmul", rand(64, 128), rand(10, 128, seed=4), False, True)


# ---- the wrapper: views and dtypes ----


def test_matmul_transposed_views_and_other_dtypes():
    # Transposed views go to _C as their C-contiguous base with the flag flipped (no copy);
    # strided views and other dtypes are copied to C-contiguous float32.
    a, b, a3 = rand(40, 30), rand(50, 40, seed=1), rand(3, 40, 30, seed=2)
    b3 = rand(3, 40, 20, seed=3)
    assert_close(cpu.matmul(a.T, b.T), reference.matmul(a.T.copy(), b.T.copy()))
    assert_close(cpu.matmul(a.T, b, False, True), reference.matmul(a.T.copy(), b, False, True))
    assert_close(cpu.matmul(a3.swapaxes(1, 2), b3), reference.matmul(a3.swapaxes(1, 2).copy(), b3))
    view = b[:9, :15].T  # (15, 9) strided view: copied, like a[:, ::2]
    assert_close(cpu.matmul(a[:, ::2], view), reference.matmul(a[:, ::2].copy(), view.copy()))
    c64 = cpu.matmul(a.T.astype(np.float64), b.T.astype(np.float64))
    assert_close(c64, reference.matmul(a.T.copy(), b.T.copy()))  # computed in float32


# ---- threads: each C element sums over K in the same order whatever the thread count ----


@pytest.mark.parametrize(
    "M,N,K",
    [
        (64, 128, 3136),  # fc1 at batch 64: 5 row tiles, so two threads split the panels
        (64, 3136, 128),  # its input gradient
        (128, 3136, 64),  # its weight gradient: 10 row tiles, 5 to each thread
        (2 * MC + 1, 2 * NR + 3, 2 * KC + 1),
        (7, 300, 65),
    ],
)
def test_matmul_same_bits_on_1_and_2_threads(M, N, K, threads):
    a, b = operands(M, N, K, False, True)
    assert_close(cpu.matmul(a, b, False, True), reference.matmul(a, b.T.copy()))
    threads(1)
    one = cpu.matmul(a, b, False, True)
    threads(2)
    two = cpu.matmul(a, b, False, True)
    np.testing.assert_array_equal(one, two)
    threads(2)
    batched = cpu.matmul(np.stack([a] * 4), np.stack([b] * 4), False, True)
    for c in batched:
        np.testing.assert_array_equal(c, one)


# ---- bad inputs, straight to _C ----


def test_gemm_rejects_bad_inputs():
    a, b = rand(4, 3), rand(3, 5)
    with pytest.raises(ValueError, match=r"\[gemm\] a must be float32, got float64"):
        _C.gemm(a.astype(np.float64), b, False, False)
    with pytest.raises(ValueError, match=r"\[gemm\] b must be float32, got int64"):
        _C.gemm(a, np.ones((3, 5), dtype=np.int64), False, False)
    with pytest.raises(ValueError, match=r"\[gemm\] a must be C-contiguous"):
        _C.gemm(rand(3, 4).T, b, False, False)
    with pytest.raises(ValueError, match=r"\[gemm\] b must be C-contiguous"):
        _C.gemm(a, rand(3, 10)[:, ::2], False, False)
    with pytest.raises(ValueError, match=r"\[gemm\] a must have 2 dimensions, got 3"):
        _C.gemm(rand(2, 4, 3), b, False, False)
    with pytest.raises(ValueError, match=r"\[gemm\] b must have 2 dimensions, got 1"):
        _C.gemm(a, rand(3), False, False)
    with pytest.raises(ValueError, match=r"\[gemm\] inner sizes differ: op\(a\) is \(4, 3\)"):
        _C.gemm(a, rand(4, 5), False, False)
    with pytest.raises(ValueError, match=r"\[gemm\] inner sizes differ"):
        _C.gemm(a, b, True, False)
    with pytest.raises(TypeError):
        _C.gemm([[1.0]], [[1.0]], False, False)


def test_bmm_rejects_bad_inputs():
    a, b = rand(2, 4, 3), rand(2, 3, 5)
    with pytest.raises(ValueError, match=r"\[bmm\] a must have 3 dimensions, got 2"):
        _C.bmm(rand(4, 3), b, False, False)
    with pytest.raises(ValueError, match=r"\[bmm\] batch sizes differ"):
        _C.bmm(a, rand(3, 3, 5), False, False)
    with pytest.raises(ValueError, match=r"\[bmm\] inner sizes differ"):
        _C.bmm(a, b, False, True)
    with pytest.raises(ValueError, match=r"\[bmm\] b must be float32"):
        _C.bmm(a, b.astype(np.float16), False, False)
    with pytest.raises(ValueError, match=r"\[bmm\] a must be C-contiguous"):
        _C.bmm(rand(2, 8, 3)[:, ::2], b, False, False)
    with pytest.raises(ValueError, match=r"\[matmul\] expected two 2-D or two 3-D arrays"):
        cpu.matmul(rand(3), rand(3))
