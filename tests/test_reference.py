"""The NumPy reference backend against finite differences, naive loops and PyTorch.

Every backward is checked with central differences in float64 (tests/gradcheck.py); every forward
against an independently written loop; and, when torch is importable, against PyTorch (those tests
skip cleanly without it). Runs in a few seconds.
"""

import itertools
import math

import numpy as np
import pytest
from fastdl.backends import reference as ref
from gradcheck import gradcheck
from hypothesis import assume, given, settings
from hypothesis import strategies as st

DTYPES = [np.float32, np.float64]


def rng(seed=0):
    return np.random.default_rng(seed)


def distinct(shape, seed=0):
    # Values at least 0.01 apart in random order, so a max never flips under a 1e-6 perturbation.
    n = math.prod(shape)
    return (rng(seed).permutation(n) * 0.01 - n * 0.005).reshape(shape)


# ---------------------------------------------------------------- gemm


def matmul_loops(a, b, trans_a, trans_b):
    # a, b are 2-D; c[i, j] = sum_k op(a)[i, k] op(b)[k, j] with Python loops.
    A = a.T if trans_a else a
    B = b.T if trans_b else b
    M, K = A.shape
    N = B.shape[1]
    c = np.zeros((M, N))
    for i, j, k in itertools.product(range(M), range(N), range(K)):
        c[i, j] += float(A[i, k]) * float(B[k, j])
    return c


def matmul_grads(dc, a, b, trans_a, trans_b):
    # The chain rule of c = op(a) op(b), written with matmul itself (as autograd will use it).
    da = (
        ref.matmul(b, dc, trans_a=trans_b, trans_b=True)
        if trans_a
        else ref.matmul(dc, b, trans_b=not trans_b)
    )
    db = (
        ref.matmul(dc, a, trans_a=True, trans_b=trans_a)
        if trans_b
        else ref.matmul(a, dc, trans_a=not trans_a)
    )
    return da, db


def matmul_operands(M, N, K, trans_a, trans_b, batch=None, seed=0):
    lead = () if batch is None else (batch,)
    a = rng(seed).standard_normal(lead + ((K, M) if trans_a else (M, K)))
    b = rng(seed + 1).standard_normal(lead + ((N, K) if trans_b else (K, N)))
    return a, b


TRANSPOSES = list(itertools.product([False, True], repeat=2))


@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_matmul_matches_loops(trans_a, trans_b):
    a, b = matmul_operands(3, 5, 4, trans_a, trans_b, batch=2)
    c = ref.matmul(a, b, trans_a, trans_b)
    assert c.shape == (2, 3, 5) and c.flags.c_contiguous
    for i in range(2):
        np.testing.assert_allclose(
            c[i], matmul_loops(a[i], b[i], trans_a, trans_b), rtol=1e-12, atol=1e-12
        )
        np.testing.assert_allclose(
            ref.matmul(a[i], b[i], trans_a, trans_b), c[i], rtol=1e-12, atol=1e-12
        )


@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
@pytest.mark.parametrize("batch", [None, 2])
def test_matmul_gradients(trans_a, trans_b, batch):
    a, b = matmul_operands(3, 4, 5, trans_a, trans_b, batch)
    gradcheck(
        lambda a, b: ref.matmul(a, b, trans_a, trans_b),
        [a, b],
        lambda dc, a, b: matmul_grads(dc, a, b, trans_a, trans_b),
    )


@settings(max_examples=40, deadline=None)
@given(
    M=st.integers(1, 9),
    N=st.integers(1, 9),
    K=st.integers(0, 9),
    batch=st.sampled_from([None, 1, 3]),
    trans_a=st.booleans(),
    trans_b=st.booleans(),
)
def test_matmul_random_shapes(M, N, K, batch, trans_a, trans_b):
    a, b = matmul_operands(M, N, K, trans_a, trans_b, batch)
    c = ref.matmul(a, b, trans_a, trans_b)
    A = np.swapaxes(a, -1, -2) if trans_a else a
    B = np.swapaxes(b, -1, -2) if trans_b else b
    expected = np.einsum("...mk,...kn->...mn", A, B)  # K = 0 gives zeros
    assert c.shape == expected.shape
    np.testing.assert_allclose(c, expected, rtol=1e-12, atol=1e-12)


def test_matmul_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[matmul\]"):
        ref.matmul(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"\[matmul\]"):
        ref.matmul(np.ones((2, 2, 3)), np.ones((3, 3, 2)))


# ---------------------------------------------------------------- conv2d


def conv2d_loops(x, w, b, stride, padding):
    # Seven loops; zero padding by bounds checks (no np.pad), cross-correlation like PyTorch.
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    (sh, sw), (ph, pw) = stride, padding
    P, Q = (H + 2 * ph - R) // sh + 1, (W + 2 * pw - S) // sw + 1
    y = np.zeros((N, K, P, Q))
    for n, k, p, q in itertools.product(range(N), range(K), range(P), range(Q)):
        acc = 0.0 if b is None else float(b[k])
        for c, r, s in itertools.product(range(C), range(R), range(S)):
            h, v = p * sh - ph + r, q * sw - pw + s
            if 0 <= h < H and 0 <= v < W:
                acc += float(x[n, c, h, v]) * float(w[k, c, r, s])
        y[n, k, p, q] = acc
    return y


# (N, C, H, W, K, R, S, stride, padding): stride 2, padding 0/1/2, rectangular, 1 channel, batch 1.
CONV_CASES = [
    (2, 3, 6, 6, 4, 3, 3, (1, 1), (1, 1)),
    (1, 2, 7, 7, 3, 3, 3, (2, 2), (0, 0)),
    (2, 1, 5, 8, 2, 2, 3, (2, 1), (2, 2)),
    (1, 2, 6, 5, 2, 3, 2, (1, 2), (1, 0)),
    (1, 1, 4, 5, 1, 1, 1, (1, 1), (0, 0)),
    (2, 2, 5, 5, 3, 5, 5, (1, 1), (2, 2)),
]


def conv_inputs(N, C, H, W, K, R, S, seed=0):
    g = rng(seed)
    return g.standard_normal((N, C, H, W)), g.standard_normal((K, C, R, S)), g.standard_normal(K)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_forward_matches_loops(case):
    *shape, stride, padding = case
    x, w, b = conv_inputs(*shape)
    y = ref.conv2d_forward(x, w, b, stride, padding)
    np.testing.assert_allclose(y, conv2d_loops(x, w, b, stride, padding), rtol=1e-12, atol=1e-12)
    assert y.flags.c_contiguous


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_backward_gradcheck(case):
    *shape, stride, padding = case
    gradcheck(
        lambda x, w, b: ref.conv2d_forward(x, w, b, stride, padding),
        conv_inputs(*shape),
        lambda dy, x, w, b: ref.conv2d_backward(dy, x, w, stride, padding),
    )


def test_conv2d_backward_skips_unneeded():
    x, w, _ = conv_inputs(1, 2, 5, 5, 3, 3, 3)
    dy = rng(1).standard_normal((1, 3, 3, 3))
    full = ref.conv2d_backward(dy, x, w, (1, 1), (0, 0))
    for flags in itertools.product([False, True], repeat=3):
        out = ref.conv2d_backward(dy, x, w, (1, 1), (0, 0), *flags)
        for needed, got, want in zip(flags, out, full):
            assert got is None if not needed else np.array_equal(got, want)


@st.composite
def conv_shapes(draw):
    R, S = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    P, Q = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H = (P - 1) * sh + R - 2 * ph + draw(st.integers(0, sh - 1))
    W = (Q - 1) * sw + S - 2 * pw + draw(st.integers(0, sw - 1))
    assume(H >= 1 and W >= 1)
    N, C, K = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (N, C, H, W, K, R, S), (sh, sw), (ph, pw)


@settings(max_examples=40, deadline=None)
@given(conv_shapes(), st.integers(0, 2**16))
def test_conv2d_random_shapes(shapes, seed):
    # Forward against the loops; backward through the adjoint identities of a linear map:
    # <conv(x, w), dy> = <x, dx> = <w, dw>, and <b, db> for the bias part.
    shape, stride, padding = shapes
    x, w, b = conv_inputs(*shape, seed=seed)
    y = ref.conv2d_forward(x, w, None, stride, padding)
    np.testing.assert_allclose(y, conv2d_loops(x, w, None, stride, padding), rtol=1e-10, atol=1e-10)
    dy = rng(seed + 1).standard_normal(y.shape)
    dx, dw, db = ref.conv2d_backward(dy, x, w, stride, padding)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    inner = np.sum(y * dy)
    np.testing.assert_allclose(
        [np.sum(x * dx), np.sum(w * dw)], [inner, inner], rtol=1e-9, atol=1e-9
    )
    yb = ref.conv2d_forward(x, w, b, stride, padding) - y
    np.testing.assert_allclose(np.sum(yb * dy), np.sum(b * db), rtol=1e-9, atol=1e-9)


def test_conv2d_rejects_bad_input():
    x, w, b = conv_inputs(1, 3, 5, 5, 2, 3, 3)
    with pytest.raises(
        ValueError, match=r"\[conv2d_forward\] expected input with 3 channels, got 2"
    ):
        ref.conv2d_forward(x[:, :2], w, b, (1, 1), (0, 0))
    with pytest.raises(ValueError, match=r"\[conv2d_forward\]"):
        ref.conv2d_forward(x[:, :, :2, :2], w, b, (1, 1), (0, 0))


# ---------------------------------------------------------------- maxpool2d


def maxpool2d_loops(x, kernel_size, stride, padding):
    # Scan each window in row-major order, skipping padding, with PyTorch's update rule
    # `val > best or isnan(val)`: the first max wins ties, and the last NaN wins over all.
    N, C, H, W = x.shape
    (R, S), (sh, sw), (ph, pw) = kernel_size, stride, padding
    P, Q = (H + 2 * ph - R) // sh + 1, (W + 2 * pw - S) // sw + 1
    y, idx = np.zeros((N, C, P, Q), x.dtype), np.zeros((N, C, P, Q), np.int64)
    for n, c, p, q in itertools.product(range(N), range(C), range(P), range(Q)):
        best, best_i = None, -1
        for r, s in itertools.product(range(R), range(S)):
            h, v = p * sh - ph + r, q * sw - pw + s
            if not (0 <= h < H and 0 <= v < W):
                continue
            val = x[n, c, h, v]
            if best is None or math.isnan(val) or val > best:
                best, best_i = val, h * W + v
        y[n, c, p, q], idx[n, c, p, q] = best, best_i
    return y, idx


# (kernel_size, stride, padding)
POOL_CASES = [
    ((2, 2), (2, 2), (0, 0)),
    ((3, 3), (1, 1), (1, 1)),
    ((3, 2), (2, 1), (1, 0)),
    ((2, 3), (1, 2), (1, 1)),
    ((3, 3), (2, 2), (1, 1)),
    ((1, 1), (1, 1), (0, 0)),
]


@pytest.mark.parametrize("kernel_size,stride,padding", POOL_CASES)
def test_maxpool2d_forward_matches_loops(kernel_size, stride, padding):
    # Small integers make many ties; -inf and NaN entries exercise padding and propagation.
    x = rng(0).integers(-3, 4, (2, 2, 7, 6)).astype(np.float64)
    x[0, 0, 0, :3] = -np.inf
    x[1, 1, 3, 2] = x[1, 1, 4, 4] = x[1, 1, 4, 5] = np.nan
    y, idx = ref.maxpool2d_forward(x, kernel_size, stride, padding)
    y_loop, idx_loop = maxpool2d_loops(x, kernel_size, stride, padding)
    np.testing.assert_array_equal(y, y_loop)
    np.testing.assert_array_equal(idx, idx_loop)
    assert idx.dtype == np.int64


def test_maxpool2d_nan_ties_and_padding_semantics():
    n = np.nan
    x = np.array([[[[1.0, n, 5.0, n], [5.0, 2.0, 5.0, 0.0]]]])
    y, idx = ref.maxpool2d_forward(x, (2, 2), (2, 2), (0, 0))
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1
    assert np.isnan(y[0, 0, 0, 1]) and idx[0, 0, 0, 1] == 3
    x = np.array([[[[n, n], [1.0, n]]]])
    y, idx = ref.maxpool2d_forward(x, (2, 2), (2, 2), (0, 0))
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 3  # the last NaN, as in PyTorch
    x = np.full((1, 1, 2, 2), 7.0)
    y, idx = ref.maxpool2d_forward(x, (2, 2), (1, 1), (1, 1))
    np.testing.assert_array_equal(
        idx[0, 0], [[0, 0, 1], [0, 0, 1], [2, 2, 3]]
    )  # first tie, no padding
    y, idx = ref.maxpool2d_forward(np.full((1, 1, 2, 2), -np.inf), (2, 2), (1, 1), (1, 1))
    np.testing.assert_array_equal(
        idx[0, 0], [[0, 0, 1], [0, 0, 1], [2, 2, 3]]
    )  # padding never picked


@pytest.mark.parametrize("kernel_size,stride,padding", POOL_CASES)
def test_maxpool2d_backward_gradcheck(kernel_size, stride, padding):
    def backward(dy, x):
        _, idx = ref.maxpool2d_forward(x, kernel_size, stride, padding)
        return ref.maxpool2d_backward(dy, idx, x.shape)

    gradcheck(
        lambda x: ref.maxpool2d_forward(x, kernel_size, stride, padding)[0],
        [distinct((2, 2, 6, 7))],
        backward,
    )


def test_maxpool2d_backward_accumulates_overlaps():
    x = np.array([[[[0.0, 9.0, 1.0, 2.0]]]])  # 9 is the max of three overlapping windows
    _, idx = ref.maxpool2d_forward(x, (1, 3), (1, 1), (0, 1))
    np.testing.assert_array_equal(idx[0, 0, 0], [1, 1, 1, 3])
    dx = ref.maxpool2d_backward(np.array([[[[1.0, 2.0, 4.0, 8.0]]]]), idx, x.shape)
    np.testing.assert_array_equal(dx[0, 0, 0], [0.0, 7.0, 0.0, 8.0])


@settings(max_examples=40, deadline=None)
@given(
    R=st.integers(1, 4),
    S=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    H=st.integers(4, 8),
    W=st.integers(4, 8),
    data=st.data(),
)
def test_maxpool2d_random_shapes(R, S, sh, sw, H, W, data):
    ph, pw = data.draw(st.integers(0, R // 2)), data.draw(st.integers(0, S // 2))
    # Few distinct values: ties, several NaNs per window, windows of -inf only.
    values = np.array([-np.inf, -1.0, 0.0, 2.0, 2.0, 2.0, np.nan], np.float32)
    x = rng(data.draw(st.integers(0, 2**16))).choice(values, (1, 2, H, W))
    y, idx = ref.maxpool2d_forward(x, (R, S), (sh, sw), (ph, pw))
    y_loop, idx_loop = maxpool2d_loops(x, (R, S), (sh, sw), (ph, pw))
    np.testing.assert_array_equal(y, y_loop)
    np.testing.assert_array_equal(idx, idx_loop)


def test_maxpool2d_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[maxpool2d_forward\] padding"):
        ref.maxpool2d_forward(np.zeros((1, 1, 4, 4)), (2, 2), (1, 1), (2, 0))
    with pytest.raises(ValueError, match=r"\[maxpool2d_backward\]"):
        ref.maxpool2d_backward(np.zeros((1, 1, 1, 1)), np.array([[[[4]]]]), (1, 1, 2, 2))


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activation_backward_gradcheck(name):
    forward, backward = getattr(ref, f"{name}_forward"), getattr(ref, f"{name}_backward")
    x = rng(0).standard_normal((3, 4, 5)) * 3
    x[np.abs(x) < 1e-3] = 0.5  # keep relu away from its kink
    gradcheck(forward, [x], lambda dy, x: backward(dy, forward(x)))


def test_activation_forward_values():
    x = np.array([-2.0, 0.0, 1.5, np.nan, -800.0, 800.0])
    np.testing.assert_array_equal(ref.relu_forward(x), [0.0, 0.0, 1.5, np.nan, 0.0, 800.0])
    np.testing.assert_allclose(
        ref.sigmoid_forward(x),
        [1 / (1 + math.exp(2)), 0.5, 1 / (1 + math.exp(-1.5)), np.nan, 0.0, 1.0],
    )
    np.testing.assert_allclose(
        ref.tanh_forward(x), [math.tanh(-2), 0.0, math.tanh(1.5), np.nan, -1.0, 1.0]
    )


# ---------------------------------------------------------------- cross_entropy


def cross_entropy_loops(logits, target, weight, reduction, ignore_index):
    # Per-sample loss from the definition with math.exp/log in float64, then the reduction.
    N, C = logits.shape
    w = np.ones(C) if weight is None else weight
    losses, denominator = [], 0.0
    for i in range(N):
        row = [float(v) for v in logits[i]]
        top = max(row)
        log_z = top + math.log(sum(math.exp(v - top) for v in row))
        if target.ndim == 1:
            t = int(target[i])
            kept = t != ignore_index
            losses.append(-w[t] * (row[t] - log_z) if kept else 0.0)
            denominator += w[t] if kept else 0.0
        else:
            losses.append(-sum(w[c] * target[i, c] * (row[c] - log_z) for c in range(C)))
            denominator += 1.0
    if reduction == "none":
        return np.array(losses)
    total = sum(losses)
    return np.array(
        total if reduction == "sum" else (total / denominator if denominator else np.nan)
    )


def ce_case(kind, weighted, seed=0):
    # 6 samples, 5 classes; "index" targets include ignore_index (-100) twice.
    g = rng(seed)
    logits = g.standard_normal((6, 5)) * 2
    if kind == "index":
        target = np.array([0, 4, -100, 2, 2, -100], np.int64)
    else:
        target = g.random((6, 5))
        target /= target.sum(axis=1, keepdims=True)
    weight = g.random(5) + 0.5 if weighted else None
    return logits, target, weight


CE_CASES = list(itertools.product(["index", "probs"], [False, True], ["none", "sum", "mean"]))


@pytest.mark.parametrize("kind,weighted,reduction", CE_CASES)
def test_cross_entropy_forward_matches_loops(kind, weighted, reduction):
    logits, target, weight = ce_case(kind, weighted)
    loss, log_probs = ref.cross_entropy_forward(logits, target, weight, reduction)
    np.testing.assert_allclose(
        loss, cross_entropy_loops(logits, target, weight, reduction, -100), rtol=1e-12
    )
    assert loss.shape == ((6,) if reduction == "none" else ())
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("kind,weighted,reduction", CE_CASES)
def test_cross_entropy_backward_gradcheck(kind, weighted, reduction):
    logits, target, weight = ce_case(kind, weighted)

    def backward(dloss, z):
        _, log_probs = ref.cross_entropy_forward(z, target, weight, reduction)
        return ref.cross_entropy_backward(dloss, log_probs, target, weight, reduction)

    gradcheck(
        lambda z: ref.cross_entropy_forward(z, target, weight, reduction)[0], [logits], backward
    )


def test_cross_entropy_custom_ignore_index_and_all_ignored():
    logits, _, weight = ce_case("index", True)
    target = np.array([3, 1, 3, 0, 4, 3], np.int64)
    loss, _ = ref.cross_entropy_forward(logits, target, weight, "mean", ignore_index=3)
    np.testing.assert_allclose(
        loss, cross_entropy_loops(logits, target, weight, "mean", 3), rtol=1e-12
    )
    target = np.full(6, -100, np.int64)
    loss, log_probs = ref.cross_entropy_forward(logits, target, weight, "mean")
    assert np.isnan(loss)
    np.testing.assert_array_equal(
        ref.cross_entropy_backward(np.array(1.0), log_probs, target, weight), 0.0
    )
    assert ref.cross_entropy_forward(logits, target, weight, "sum")[0] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_is_stable_for_huge_logits(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4 + 1]], dtype)
    target = np.array([1, 2], np.int64)
    loss, log_probs = ref.cross_entropy_forward(logits, target, reduction="none")
    assert np.all(np.isfinite(log_probs)) and np.all(np.isfinite(loss))
    np.testing.assert_allclose(loss, [2e4, math.log1p(2 * math.exp(-1))], rtol=1e-6)
    dlogits = ref.cross_entropy_backward(np.ones(2, dtype), log_probs, target, reduction="none")
    assert np.all(np.isfinite(dlogits))


def test_cross_entropy_rejects_out_of_range_target():
    logits = np.zeros((3, 5))
    with pytest.raises(ValueError, match=r"\[cross_entropy_forward\].*\b7\b.*\b5 classes"):
        ref.cross_entropy_forward(logits, np.array([0, 7, 1]))
    with pytest.raises(ValueError, match=r"\[cross_entropy_forward\].*-1\b.*\b5 classes"):
        ref.cross_entropy_forward(logits, np.array([0, -1, 1]))


# ---------------------------------------------------------------- optim


def sgd_loops(p, grads, lr, momentum, dampening, nesterov, weight_decay, maximize):
    # One parameter as a list of floats through several steps, straight from PyTorch's docs.
    p, buf = list(p), None
    for step, grad in enumerate(grads):
        g = [-v if maximize else v for v in grad]
        g = [gi + weight_decay * pi for gi, pi in zip(g, p)]
        if momentum:
            buf = g if step == 0 else [momentum * b + (1 - dampening) * gi for b, gi in zip(buf, g)]
            g = [gi + momentum * b for gi, b in zip(g, buf)] if nesterov else buf
        p = [pi - lr * gi for pi, gi in zip(p, g)]
    return p


def adam_loops(p, grads, lr, b1, b2, eps, weight_decay, decoupled, maximize):
    p, m, v = list(p), [0.0] * len(p), [0.0] * len(p)
    for step, grad in enumerate(grads, start=1):
        for i in range(len(p)):
            g = -grad[i] if maximize else grad[i]
            if decoupled:
                p[i] *= 1 - lr * weight_decay
            else:
                g += weight_decay * p[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            p[i] -= lr / (1 - b1**step) * m[i] / (math.sqrt(v[i] / (1 - b2**step)) + eps)
    return p


SGD_CONFIGS = [  # momentum, dampening, nesterov, weight_decay, maximize
    (0.0, 0.0, False, 0.0, False),
    (0.9, 0.0, False, 0.0, False),
    (0.9, 0.3, False, 0.01, False),
    (0.8, 0.0, True, 0.05, False),
    (0.5, 0.1, False, 0.1, True),
    (0.0, 0.0, False, 0.02, True),
]
ADAM_CONFIGS = [  # weight_decay, decoupled, maximize
    (0.0, False, False),
    (0.1, False, False),
    (0.1, True, False),
    (0.05, True, True),
    (0.02, False, True),
]
STEPS = 5


def optim_problem(dtype, seed=0):
    # Two parameters of different shapes and a gradient for each of STEPS steps.
    g = rng(seed)
    shapes = [(3, 4), (5,)]
    params = [g.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[g.standard_normal(s).astype(dtype) for s in shapes] for _ in range(STEPS)]
    return params, grads


def run_sgd(params, grads, lr, config):
    momentum, dampening, nesterov, weight_decay, maximize = config
    buffers = [np.zeros_like(p) for p in params] if momentum else []
    for step, g in enumerate(grads):
        ref.sgd_step(
            params, g, buffers, lr, momentum, dampening, nesterov, weight_decay, maximize, step == 0
        )


def run_adam(params, grads, lr, betas, eps, config):
    weight_decay, decoupled, maximize = config
    m, v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    for step, g in enumerate(grads, start=1):
        ref.adam_step(params, g, m, v, step, lr, *betas, eps, weight_decay, decoupled, maximize)


@pytest.mark.parametrize("config", SGD_CONFIGS)
def test_sgd_matches_loops_in_place(config):
    params, grads = optim_problem(np.float64)
    before = [p.copy() for p in params]
    originals = list(params)
    run_sgd(params, grads, 0.1, config)
    for i, (p, p0) in enumerate(zip(params, before)):
        assert p is originals[i]
        expected = sgd_loops(p0.ravel(), [g[i].ravel() for g in grads], 0.1, *config)
        np.testing.assert_allclose(p.ravel(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config", ADAM_CONFIGS)
def test_adam_matches_loops_in_place(config):
    params, grads = optim_problem(np.float64)
    before = [p.copy() for p in params]
    grads_before = [[g.copy() for g in step] for step in grads]
    run_adam(params, grads, 0.01, (0.9, 0.999), 1e-8, config)
    for i, (p, p0) in enumerate(zip(params, before)):
        expected = adam_loops(
            p0.ravel(), [g[i].ravel() for g in grads], 0.01, 0.9, 0.999, 1e-8, *config
        )
        np.testing.assert_allclose(p.ravel(), expected, rtol=1e-12, atol=1e-12)
    for step, step_before in zip(grads, grads_before):  # grads are only read
        for g, g0 in zip(step, step_before):
            np.testing.assert_array_equal(g, g0)


def test_adam_rejects_step_zero():
    with pytest.raises(ValueError, match=r"\[adam_step\]"):
        ref.adam_step(
            [np.zeros(2)], [np.zeros(2)], [np.zeros(2)], [np.zeros(2)], 0, 0.1, 0.9, 0.999, 1e-8
        )


# ---------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_keep_input_dtype(dtype):
    g = rng(0)
    x = g.standard_normal((2, 3, 6, 6)).astype(dtype)
    w = g.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = g.standard_normal(4).astype(dtype)
    out = {"matmul": ref.matmul(x[0, 0], x[0, 1], False, True)}
    out["matmul batched"] = ref.matmul(x[0], x[1])
    out["conv2d_forward"] = y = ref.conv2d_forward(x, w, b, (2, 2), (1, 1))
    for name, grad in zip(["dx", "dw", "db"], ref.conv2d_backward(y, x, w, (2, 2), (1, 1))):
        out[f"conv2d_backward {name}"] = grad
    pooled, idx = ref.maxpool2d_forward(x, (2, 2), (2, 2), (0, 0))
    out["maxpool2d_forward"] = pooled
    out["maxpool2d_backward"] = ref.maxpool2d_backward(pooled, idx, x.shape)
    for name in ["relu", "sigmoid", "tanh"]:
        out[f"{name}_forward"] = ya = getattr(ref, f"{name}_forward")(x)
        out[f"{name}_backward"] = getattr(ref, f"{name}_backward")(ya, ya)
    logits = x.reshape(6, -1)[:, :5]
    weight = np.linspace(0.5, 1.5, 5)  # float64 weights must not promote float32 results
    probs = np.full((6, 5), 0.2, dtype)
    for target in [np.array([0, 1, 2, 3, 4, -100]), probs]:
        for reduction in ["none", "sum", "mean"]:
            loss, log_probs = ref.cross_entropy_forward(logits, target, weight, reduction)
            out[f"ce loss {reduction}"], out["ce log_probs"] = loss, log_probs
            out[f"ce dlogits {reduction}"] = ref.cross_entropy_backward(
                loss, log_probs, target, weight, reduction
            )
    params, grads = optim_problem(dtype)
    run_sgd(params, grads, 0.1, SGD_CONFIGS[3])
    run_adam(params, grads, 0.01, (0.9, 0.999), 1e-8, ADAM_CONFIGS[2])
    out.update({f"param {i}": p for i, p in enumerate(params)})
    wrong = {name: a.dtype for name, a in out.items() if a.dtype != dtype}
    assert not wrong, f"expected {np.dtype(dtype)}, got {wrong}"
    assert idx.dtype == np.int64


# -------------------------------------------------- PyTorch parity (skipped without torch)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_torch(case):
    torch = pytest.importorskip("torch")
    *shape, stride, padding = case
    x, w, b = (a.astype(np.float32) for a in conv_inputs(*shape))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding)
    y = ref.conv2d_forward(x, w, b, stride, padding)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    dy = rng(1).standard_normal(y.shape).astype(np.float32)
    ty.backward(torch.tensor(dy))
    for got, want in zip(ref.conv2d_backward(dy, x, w, stride, padding), (tx, tw, tb)):
        np.testing.assert_allclose(got, want.grad.numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kernel_size,stride,padding", POOL_CASES)
def test_maxpool2d_matches_torch(kernel_size, stride, padding):
    torch = pytest.importorskip("torch")
    x = rng(0).integers(-3, 4, (2, 3, 7, 6)).astype(np.float32)  # ties everywhere
    x[0, 0, 0, :] = -np.inf
    x[1, 2, 3, 3] = x[1, 2, 3, 4] = x[1, 2, 4, 3] = np.nan  # several NaNs in some windows
    tx = torch.tensor(x, requires_grad=True)
    ty, tidx = torch.nn.functional.max_pool2d(tx, kernel_size, stride, padding, return_indices=True)
    y, idx = ref.maxpool2d_forward(x, kernel_size, stride, padding)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    dy = rng(1).standard_normal(y.shape).astype(np.float32)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(
        ref.maxpool2d_backward(dy, idx, x.shape), tx.grad.numpy(), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("kind,weighted,reduction", CE_CASES)
def test_cross_entropy_matches_torch(kind, weighted, reduction):
    torch = pytest.importorskip("torch")
    logits, target, weight = ce_case(kind, weighted)
    logits = logits.astype(np.float32)
    target = target if kind == "index" else target.astype(np.float32)
    weight = None if weight is None else weight.astype(np.float32)
    tz = torch.tensor(logits, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(
        tz,
        torch.tensor(target),
        None if weight is None else torch.tensor(weight),
        reduction=reduction,
    )
    loss, log_probs = ref.cross_entropy_forward(logits, target, weight, reduction)
    np.testing.assert_allclose(loss, tloss.detach().numpy(), rtol=1e-5, atol=1e-6)
    dloss = np.asarray(rng(2).standard_normal(loss.shape), np.float32)
    tloss.backward(torch.tensor(dloss))
    dlogits = ref.cross_entropy_backward(dloss, log_probs, target, weight, reduction)
    np.testing.assert_allclose(dlogits, tz.grad.numpy(), rtol=1e-5, atol=1e-6)


def torch_optimize(torch, make_optimizer, params, grads):
    tparams = [torch.tensor(p.copy()) for p in params]
    opt = make_optimizer(tparams)
    for g in grads:
        for tp, gi in zip(tparams, g):
            tp.grad = torch.tensor(gi)
        opt.step()
    return [tp.numpy() for tp in tparams]


@pytest.mark.parametrize("config", SGD_CONFIGS)
def test_sgd_matches_torch(config):
    torch = pytest.importorskip("torch")
    momentum, dampening, nesterov, weight_decay, maximize = config
    params, grads = optim_problem(np.float32)
    expected = torch_optimize(
        torch,
        lambda ps: torch.optim.SGD(
            ps,
            lr=0.1,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=weight_decay,
            maximize=maximize,
        ),
        params,
        grads,
    )
    run_sgd(params, grads, 0.1, config)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("config", ADAM_CONFIGS)
def test_adam_matches_torch(config):
    torch = pytest.importorskip("torch")
    weight_decay, decoupled, maximize = config
    params, grads = optim_problem(np.float32)
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    expected = torch_optimize(
        torch,
        lambda ps: cls(
            ps, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=weight_decay, maximize=maximize
        ),
        params,
        grads,
    )
    run_adam(params, grads, 0.01, (0.9, 0.99), 1e-8, config)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e, rtol=1e-5, atol=1e-6)
