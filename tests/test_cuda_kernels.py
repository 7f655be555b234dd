"""The CUDA kernels (csrc/cuda/, through fastdl.backends.cuda) against the NumPy reference, on
hypothesis shapes, forward and backward: gemm (every transpose, batched, odd and misaligned
sizes, TF32), conv2d, maxpool2d (ties, NaN), activations, cross-entropy (indices, probabilities,
weights, ignore_index, every reduction) and the fused optimizer steps (many tensors, tensors
larger than one launch's table). Skipped, with the reason, where there is no GPU and CuPy; the
plumbing that needs no GPU is in tests/test_cuda_plumbing.py.
"""

from __future__ import annotations

import fastdl
import numpy as np
import pytest

if not fastdl.cuda.is_available():
    pytest.skip(
        f"needs an NVIDIA GPU and CuPy ({fastdl.cuda.unavailable_reason()})",
        allow_module_level=True,
    )

import cupy as cp
from fastdl.backends import cuda, reference
from hypothesis import given, settings
from hypothesis import strategies as st
from fastdl.testing import assert_close
from test_kernels_conv2d import conv_cases, output_of

fastdl.cuda.device_type()  # registers the device: its arrays are CuPy's


def _to_device(a):
    if isinstance(a, np.ndarray):
        return cp.asarray(a)
    if isinstance(a, list):
        return [_to_device(v) for v in a]
    return a


def _host(a):
    return cp.asnumpy(a) if isinstance(a, cp.ndarray) else a


def _as64(a):
    return a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype == np.float32 else a


def assert_cuda_matches(name, *args, rtol=1e-4, atol=1e-5, **kwargs):
    """Runs backend function `name` on the GPU (float32) and on the reference (float64 on the
    host), compares every returned array; returns the GPU's results on the host."""
    got = getattr(cuda, name)(*[_to_device(a) for a in args], **kwargs)
    want = getattr(reference, name)(*[_as64(a) for a in args], **kwargs)
    got_t = got if isinstance(got, tuple) else (got,)
    want_t = want if isinstance(want, tuple) else (want,)
    assert len(got_t) == len(want_t)
    out = []
    for i, (g, w) in enumerate(zip(got_t, want_t)):
        if w is None:
            assert g is None, f"{name}[{i}]: expected None"
            out.append(None)
            continue
        assert isinstance(g, cp.ndarray), f"{name}[{i}] is not on the GPU"
        g = cp.asnumpy(g)
        w = np.asarray(w)
        assert_close(
            g,
            w.astype(g.dtype) if w.dtype != g.dtype else w,
            rtol=rtol,
            atol=atol,
            name=f"{name}[{i}]",
        )
        out.append(g)
    return out if isinstance(got, tuple) else out[0]


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


# ---------------------------------------------------------------- gemm


@settings(max_examples=60, deadline=None)
@given(
    M=st.integers(1, 300),
    N=st.integers(1, 300),
    K=st.integers(0, 300),
    batch=st.sampled_from([None, 1, 3]),
    trans_a=st.booleans(),
    trans_b=st.booleans(),
    seed=st.integers(0, 99),
)
def test_matmul_random_shapes(M, N, K, batch, trans_a, trans_b, seed):
    lead = () if batch is None else (batch,)
    a = rand(*lead, *((K, M) if trans_a else (M, K)), seed=seed)
    b = rand(*lead, *((N, K) if trans_b else (K, N)), seed=seed + 1)
    assert_cuda_matches("matmul", a, b, trans_a, trans_b)


@pytest.mark.parametrize("n", [1024, 4096])
def test_matmul_large_and_tf32(n):
    a, b = rand(n, n, seed=1), rand(n, n, seed=2)
    assert_cuda_matches("matmul", a, b)
    cuda.matmul.allow_tf32 = True
    try:
        got = cp.asnumpy(cuda.matmul(cp.asarray(a), cp.asarray(b)))
    finally:
        cuda.matmul.allow_tf32 = False
    want = a.astype(np.float64) @ b
    err = np.abs(got - want).max() / np.abs(want).max()
    assert 0 < err < 5e-3  # TF32 rounds the inputs to 10 bits: close, but not float32-exact


def test_matmul_misaligned_and_transposed_views():
    base = cp.asarray(rand(1, 65 * 33 + 1))[0, 1:].reshape(65, 33)  # 4 bytes off 16
    b = cp.asarray(rand(33, 70, seed=3))
    got = cp.asnumpy(cuda.matmul(base, b))
    assert_close(got, (cp.asnumpy(base).astype(np.float64) @ cp.asnumpy(b)).astype(np.float32))
    at = cp.asarray(rand(40, 65, seed=4)).T  # a transposed view goes uncopied, flag flipped
    got = cp.asnumpy(cuda.matmul(at, cp.asarray(rand(40, 9, seed=5))))
    assert_close(got, (cp.asnumpy(at).astype(np.float64) @ rand(40, 9, seed=5)).astype(np.float32))


# ---------------------------------------------------------------- conv2d


@settings(max_examples=50, deadline=None)
@given(case=conv_cases())
def test_conv2d_forward_random_shapes(case):
    assert_cuda_matches("conv2d_forward", *case)


@settings(max_examples=50, deadline=None)
@given(case=conv_cases(), need=st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_conv2d_backward_random_shapes(case, need):
    x, w, _, stride, padding = case
    dy = output_of(x, w, stride, padding)
    assert_cuda_matches("conv2d_backward", dy, x, w, stride, padding, *need)


@pytest.mark.parametrize("batch", [1, 64, 256])
def test_conv2d_founding_cnn(batch):
    for (C, H), K in (((1, 28), 32), ((32, 14), 64)):
        x, w, b = rand(batch, C, H, H), rand(K, C, 3, 3, seed=1), rand(K, seed=2)
        assert_cuda_matches("conv2d_forward", x, w, b, (1, 1), (1, 1))
        dy = rand(batch, K, H, H, seed=3)
        assert_cuda_matches("conv2d_backward", dy, x, w, (1, 1), (1, 1), rtol=1e-4, atol=3e-5)


# ---------------------------------------------------------------- maxpool2d


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 17), st.integers(1, 17)),
    window=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),
    ties=st.booleans(),
    nan=st.sampled_from([0.0, 0.2]),
    seed=st.integers(0, 99),
)
def test_maxpool2d_random_shapes(shape, window, ties, nan, seed):
    R, S, sh, sw = window
    N, C, H, W = shape
    if H < R or W < S:
        return
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(np.float32)
    x[rng.random(shape) < nan] = np.nan
    padding = (min(R // 2, 1), min(S // 2, 1))
    y, idx = assert_cuda_matches("maxpool2d_forward", x, (R, S), (sh, sw), padding)
    dy = rand(*y.shape, seed=seed + 1)
    assert_cuda_matches("maxpool2d_backward", dy, idx, x.shape)


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("n", [0, 1, 5, 4096 + 3, 1 << 20])
def test_activations(act, n):
    x = rand(n, seed=n) * 8
    if n > 3:
        x[:3] = [np.nan, 1e4, -1e4]
    y = assert_cuda_matches(f"{act}_forward", x)
    assert_cuda_matches(f"{act}_backward", rand(n, seed=1), y)
    odd = cp.asarray(rand(n + 1))[1:]  # 4 bytes off 16: the scalar loop
    assert_close(
        cp.asnumpy(getattr(cuda, f"{act}_forward")(odd)),
        getattr(reference, f"{act}_forward")(cp.asnumpy(odd)),
    )


# ---------------------------------------------------------------- cross_entropy


@settings(max_examples=80, deadline=None)
@given(
    N=st.integers(0, 70),
    C=st.integers(1, 300),
    scale=st.sampled_from([1.0, 1e4]),
    probs=st.booleans(),
    weighted=st.booleans(),
    reduction=st.sampled_from(["none", "mean", "sum"]),
    ignore_index=st.sampled_from([-100, 2]),
    seed=st.integers(0, 99),
)
def test_cross_entropy_random_shapes(N, C, scale, probs, weighted, reduction, ignore_index, seed):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((N, C)) * scale).astype(np.float32)
    if probs:
        target = rng.random((N, C)).astype(np.float32)
        target /= np.maximum(target.sum(axis=1, keepdims=True), 1e-6)
    else:
        target = rng.integers(0, C, N)
        target[rng.random(N) < 0.3] = ignore_index
    weight = (rng.random(C) * 1.5 + 0.5).astype(np.float32) if weighted else None
    kw = dict(reduction=reduction, ignore_index=ignore_index)
    _, log_probs = assert_cuda_matches("cross_entropy_forward", logits, target, weight, **kw)
    dloss = rng.standard_normal(N if reduction == "none" else ()).astype(np.float32)
    dloss = np.asarray(dloss, dtype=np.float32)
    assert_cuda_matches("cross_entropy_backward", dloss, log_probs, target, weight, **kw)


def test_cross_entropy_out_of_range_target_gives_nan():
    loss, _ = cuda.cross_entropy_forward(cp.zeros((2, 3), "float32"), cp.asarray([0, 7]))
    assert np.isnan(float(loss))


# ---------------------------------------------------------------- optim


def _steps(op, shapes, steps=3, **hyper):
    rng = np.random.default_rng(0)
    names = {"sgd_step": ["momentum_buffers"], "adam_step": ["exp_avgs", "exp_avg_sqs"]}[op]
    state = {"params": [rng.standard_normal(s).astype(np.float32) for s in shapes]}
    for n in names:
        state[n] = [np.abs(rng.standard_normal(s)).astype(np.float32) for s in shapes]
    if hyper.pop("amsgrad", False):
        state["max_exp_avg_sqs"] = [np.zeros(s, np.float32) for s in shapes]
    host = {k: [a.astype(np.float64) for a in v] for k, v in state.items()}
    dev = {k: [cp.asarray(a) for a in v] for k, v in state.items()}
    for step in range(1, steps + 1):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        kw = dict(hyper)
        if op == "adam_step":
            kw["step"] = step
        elif kw.get("momentum", 0):
            kw["first_step"] = step == 1
        for side, arrays, g in (
            (reference, host, [x.astype(np.float64) for x in grads]),
            (cuda, dev, [cp.asarray(x) for x in grads]),
        ):
            lists = [arrays["params"], g] + [arrays[n] for n in names]
            more = {}
            if "max_exp_avg_sqs" in arrays:
                more["max_exp_avg_sqs"] = arrays["max_exp_avg_sqs"]
            getattr(side, op)(*lists, **kw, **more)
        for k in state:
            for j, (a, e) in enumerate(zip(dev[k], host[k])):
                assert_close(
                    cp.asnumpy(a),
                    e.astype(np.float32),
                    rtol=1e-4,
                    atol=1e-6,
                    name=f"{op} step {step} {k}[{j}]",
                )


SHAPES = [(3, 5), (7,), (1,), (64, 32, 3, 3), (0,), (100003,)]


@pytest.mark.parametrize(
    "hyper",
    [
        dict(lr=0.1),
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.1, momentum=0.9, nesterov=True),
        dict(lr=0.1, momentum=0.9, dampening=0.5, weight_decay=1e-2, maximize=True),
    ],
)
def test_sgd_step(hyper):
    _steps("sgd_step", SHAPES, **hyper)


@pytest.mark.parametrize(
    "hyper",
    [
        dict(),
        dict(weight_decay=1e-2),
        dict(weight_decay=1e-2, decoupled=True),
        dict(amsgrad=True, maximize=True),
    ],
)
def test_adam_step(hyper):
    _steps("adam_step", SHAPES, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, **hyper)


def test_adam_step_over_more_tensors_and_chunks_than_one_launch_holds():
    # 40 tensors (the table holds 32) and one of 20M elements (305 chunks; the table holds 256).
    _steps(
        "adam_step",
        [(i % 7 + 1, 3) for i in range(40)] + [(20_000_000,)],
        steps=1,
        lr=1e-3,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
    )


def test_optim_refuses_host_and_strided_arrays():
    p = cp.zeros(4, "float32")
    with pytest.raises(ValueError, match=r"^\[sgd_step\] params\[0\] must be a CUDA array"):
        cuda.sgd_step([np.zeros(4, np.float32)], [p], [], lr=0.1)
    with pytest.raises(ValueError, match=r"^\[adam_step\] params\[0\] must be C-contiguous"):
        cuda.adam_step(
            [cp.zeros(8, "float32")[::2]], [p], [p.copy()], [p.copy()], 1, 1e-3, 0.9, 0.999, 1e-8
        )
    with pytest.raises(ValueError, match=r"share memory"):
        cuda.sgd_step([p, p[:2]], [p.copy(), cp.zeros(2, "float32")], [], lr=0.1)
