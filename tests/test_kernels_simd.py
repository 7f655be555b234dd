"""Runtime SIMD dispatch (csrc/cpu/dispatch.cpp) and the per-ISA kernel bodies.

Every parity check of the GEMM, conv2d, activation and cross-entropy kernels runs once per
instruction-set build this processor supports (`_C.supported_isas()`, switched with
`_C.set_simd_level`), so the AVX2 build that CI machines run proves the source the AVX-512 build
shares. Also: the FMA peak loop the benchmark's roof comes from; the accuracy
of the vectorised exp, sigmoid and tanh against float64 NumPy, in ulps, over a wide range with
NaN, infinities and denormal results; the FASTDL_SIMD environment variable, in a subprocess.
Runs in a few seconds.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu, reference
from fastdl.testing import assert_backends_match
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernels_conv2d import assert_stride1_matches, threaded_conv_case

ISAS = _C.supported_isas()
KERNEL_NAMES = {"baseline": "portable_6x8", "avx2": "avx2_6x16", "avx512": "avx512_14x32"}


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


# ---- dispatch ----


def test_supported_isas_and_switching():
    assert ISAS[0] == "baseline" and set(ISAS) <= {"baseline", "avx2", "avx512"}
    assert _C.simd_level() in ISAS
    builds = _C.build_config["simd_builds"]
    assert list(builds) == ["baseline", "avx2", "avx512"]
    import platform

    if platform.machine() in ("x86_64", "AMD64"):
        assert builds["avx512"].startswith("AVX-512") and builds["avx2"] == "AVX2 + FMA"
        assert set(_C.cpu_features()) == {"avx2", "fma", "avx512f", "avx512vl", "avx512bw",
                                          "avx512dq"}
    else:
        assert builds["avx2"].startswith("portable")
    with pytest.raises(ValueError, match=r"\[set_simd_level\] expected one of baseline"):
        _C.set_simd_level("sse9")
    for name in {"avx2", "avx512"} - set(ISAS):
        with pytest.raises(
            ValueError, match=rf"\[set_simd_level\] this processor cannot run {name}"
        ):
            _C.set_simd_level(name)


def test_each_isa_reports_its_kernel(isa):
    assert _C.simd_level() == isa
    cfg = _C.gemm_config()
    assert cfg["kernel"] == KERNEL_NAMES[isa]
    assert cfg["MC"] % cfg["MR"] == 0 and cfg["NR"] % 8 == 0


def test_fma_peak_runs_the_active_isa(isa):
    # The benchmark's roof: a register-resident FMA loop of the active ISA build.
    lanes = {"baseline": "4 lanes", "avx2": "8 lanes", "avx512": "16 lanes"}[isa]
    one = _C.fma_peak(10_000, 1)
    assert lanes in one["kernel"] and one["kernel"].startswith({"baseline": "sse2"}.get(isa, isa))
    assert one["gflops"] > 0 and np.isfinite(one["gflops"])
    assert _C.fma_peak(10_000, 2)["gflops"] > 0
    for steps, threads, what in ((0, 1, "steps"), (1, 0, "thread count")):
        with pytest.raises(ValueError, match=rf"\[fma_peak\] expected (a )?{what}"):
            _C.fma_peak(steps, threads)


def run_fresh(code, **env):
    # Runs `code` in a new interpreter with extra environment variables; returns its stdout.
    full = dict(os.environ, **env)
    done = subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_environment_variable_selects_the_isa():
    code = "import fastdl; i = fastdl.info(); print(i['simd'], i.get('simd_note', '-'), sep='|')"
    assert run_fresh(code, FASTDL_SIMD="baseline") == "baseline|-"
    best = ISAS[-1]
    simd, note = run_fresh(code, FASTDL_SIMD="sse9").split("|")
    assert simd == best and note.startswith("FASTDL_SIMD=sse9 is not one of")
    if "avx512" not in ISAS:
        simd, note = run_fresh(code, FASTDL_SIMD="avx512").split("|")
        assert simd == best and "not supported by this processor" in note
    out = run_fresh("import fastdl; fastdl.show_config()", FASTDL_SIMD="baseline")
    assert "simd: baseline" in out and "gemm_kernel: portable_6x8" in out


# ---- GEMM on every ISA ----

ODD = st.sampled_from([1, 5, 6, 7, 13, 14, 15, 16, 17, 31, 33]) | st.integers(1, 70)


@settings(max_examples=25, deadline=None)
@given(M=ODD, N=ODD, K=ODD, ta=st.booleans(), tb=st.booleans(), seed=st.integers(0, 9))
def test_gemm_random_shapes_every_isa(M, N, K, ta, tb, seed):
    saved = _C.simd_level()
    try:
        for name in ISAS:
            _C.set_simd_level(name)
            a = rand(*((K, M) if ta else (M, K)), seed=seed)
            b = rand(*((N, K) if tb else (K, N)), seed=seed + 1)
            assert_backends_match("matmul", a, b, ta, tb)
    finally:
        _C.set_simd_level(saved)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, True), (False, True), (True, False)])
def test_gemm_blocking_edges_every_isa(isa, ta, tb):
    # Partial MR / NR tiles, several KC blocks, both sides of the direct / blocked boundary.
    cfg = _C.gemm_config()
    MR, NR, MC, KC = cfg["MR"], cfg["NR"], cfg["MC"], cfg["KC"]
    for M, N, K in [
        (MR + 1, NR - 1, KC + 3),
        (2 * MC + MR - 1, 2 * NR + 1, 2 * KC + 1),
        (128, 128, 128),
        (129, 128, 129),
        (1, 300, 200),
        (300, 1, 7),
        (MR // 3, 4 * NR + 3, KC + 5),  # the skinny path: strips, a tail, K past a vector
        (MR // 3 + 1, 4 * NR + 3, 37),
        (40, 4 * NR + 3, 3),  # K of a few terms: skinny too
        (40, 70, 5),
    ]:
        a = rand(*((K, M) if ta else (M, K)))
        b = rand(*((N, K) if tb else (K, N)), seed=1)
        assert_backends_match("matmul", a, b, ta, tb)


def test_gemm_same_bits_on_1_and_2_threads_every_isa(isa, threads):
    for M, N, K in [(64, 64, 64), (100, 90, 300), (300, 290, 210)]:
        a, b = rand(M, K), rand(K, N, seed=1)
        threads(1)
        one = cpu.matmul(a, b)
        threads(2)
        np.testing.assert_array_equal(cpu.matmul(a, b), one)


# ---- conv2d on every ISA ----


@pytest.mark.parametrize(
    "x_shape,w_shape,stride,padding,bias",
    [
        ((3, 32, 14, 14), (64, 32, 3, 3), (1, 1), (1, 1), True),  # conv2: implicit GEMM
        ((3, 1, 28, 28), (32, 1, 3, 3), (1, 1), (1, 1), True),  # conv1: one input channel
        ((2, 1, 9, 23), (5, 1, 4, 2), (2, 1), (1, 0), False),  # C = 1, stride_h 2, odd sizes
        ((2, 1, 9, 9), (3, 1, 5, 5), (1, 1), (2, 2), True),  # C = 1 with 25 taps: implicit
        ((2, 3, 8, 8), (7, 3, 1, 1), (1, 1), (0, 0), True),  # 1x1, no padding
        ((2, 4, 9, 11), (6, 4, 3, 2), (2, 3), (1, 2), True),  # strided: dx through col2im
        ((1, 2, 5, 5), (3, 2, 1, 1), (1, 1), (1, 1), False),  # pad > kernel - 1: col2im
        # The padded copy: rows of several vectors, padding wider than half a vector, and none
        # above or below (its last vector writes zeros over the next row's or plane's start).
        ((2, 3, 5, 37), (4, 3, 3, 3), (1, 1), (2, 9), True),
        ((2, 3, 4, 21), (5, 3, 3, 3), (1, 1), (0, 1), False),
    ],
)
def test_conv2d_paths_every_isa(isa, x_shape, w_shape, stride, padding, bias):
    x, w = rand(*x_shape), rand(*w_shape, seed=1)
    b = rand(w_shape[0], seed=2) if bias else None
    y = assert_backends_match("conv2d_forward", x, w, b, stride, padding)
    dy = rand(*y.shape, seed=3)
    assert_backends_match("conv2d_backward", dy, x, w, stride, padding)
    assert_backends_match("conv2d_backward", dy, x, w, stride, padding, False, True, True)
    assert_backends_match("conv2d_backward", dy, x, w, stride, padding, True, False, False)


@pytest.mark.parametrize("algorithm", ["winograd_2x2", "winograd_4x4", "auto"])
@pytest.mark.parametrize(
    "x_shape,w_shape,padding",
    [
        ((3, 32, 14, 14), (64, 32, 3, 3), 1),  # conv2
        ((2, 5, 11, 7), (37, 5, 3, 3), 0),  # partial tiles, channels off every vector width
        ((1, 19, 5, 13), (3, 19, 3, 3), 2),
    ],
)
def test_conv2d_winograd_every_isa(isa, x_shape, w_shape, padding, algorithm, conv2d_algorithm):
    conv2d_algorithm(algorithm)
    assert_stride1_matches(x_shape, w_shape, padding)


def test_conv2d_one_channel_keeps_nan_and_inf_where_they_belong(isa):
    # The C = 1 weight gradient reads past each row's end in its last vector; those lanes must
    # contribute nothing, even when the values there are inf or NaN.
    x, w = rand(2, 1, 6, 13), rand(4, 1, 3, 3, seed=1)
    x[0, 0, 2, 0] = np.inf
    x[1, 0, 4, 12] = np.nan
    dy = rand(2, 4, 6, 13, seed=2)
    for op, args in [
        ("conv2d_forward", (x, w, None, 1, 1)),
        ("conv2d_backward", (dy, x, w, 1, 1, False, True, True)),
    ]:
        got_all, want_all = getattr(cpu, op)(*args), getattr(reference, op)(*args)
        if op == "conv2d_forward":
            got_all, want_all = [got_all], [want_all]
        for got, want in zip(got_all, want_all):
            if want is None:
                continue
            # Same NaN and inf positions and signs (assert_close measures differences, which
            # infinities make NaN), then the finite values.
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_array_equal(
                np.where(np.isinf(got), got, 0), np.where(np.isinf(want), want, 0)
            )
            finite = np.isfinite(want)
            np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("C", [1, 5])
def test_conv2d_threads_agree_every_isa(isa, threads, C):
    # No result depends on the thread count (dw sums the batch in groups fixed by its size).
    x, w, b, dy = threaded_conv_case(0, C, 3, (1, 1))
    out = []
    for n in (1, 2):
        threads(n)
        y = cpu.conv2d_forward(x, w, b, (1, 1), (1, 1))
        out.append((y, *cpu.conv2d_backward(dy, x, w, (1, 1), (1, 1))))
    for one, two in zip(out[0], out[1]):
        np.testing.assert_array_equal(one, two)


# ---- activations on every ISA ----


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("n", [1, 3, 4, 5, 8, 15, 16, 17, 33, 40_001])
def test_activations_tails_every_isa(isa, name, n):
    # Sizes around each vector width (4, 8, 16 lanes): the masked tail gets the same math.
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 5).astype(np.float32)
    x[rng.random(n) < 0.05] = np.nan
    y = assert_backends_match(f"{name}_forward", x)
    assert_backends_match(f"{name}_backward", rng.standard_normal(n).astype(np.float32), y)


WIDE = np.concatenate(
    [
        np.linspace(-110, 110, 400_001),
        np.geomspace(1e-38, 20, 20_000),
        -np.geomspace(1e-38, 20, 20_000),
        [0.0, -0.0, 88.72, 88.7228, 88.73, -87.3, -103.9, -104.0, -150.0, 1e-45],
    ]
).astype(np.float32)


def ulp_error(actual, exact):
    # |actual - exact| in units of the float32 spacing at the exact value (exact in float64).
    spacing = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    return np.abs(actual.astype(np.float64) - exact) / spacing


def stable_sigmoid64(x):
    x = x.astype(np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


@pytest.mark.parametrize(
    "name,exact,max_ulp",
    [
        ("exp", lambda x: np.exp(x.astype(np.float64)), 1.5),
        ("sigmoid", stable_sigmoid64, 3.0),
        ("tanh", lambda x: np.tanh(x.astype(np.float64)), 3.0),
    ],
)
def test_vectorised_math_is_accurate_every_isa(isa, name, exact, max_ulp):
    y = getattr(_C, f"{name}_forward")(WIDE)
    with np.errstate(over="ignore"):
        ref = exact(WIDE)
        finite = np.isfinite(ref.astype(np.float32))
    np.testing.assert_array_equal(np.isinf(y), ~finite)  # overflow exactly where float32's is
    err = ulp_error(y[finite], ref[finite])
    worst = int(np.argmax(err))
    assert err[worst] <= max_ulp, f"{name}: {err[worst]:.2f} ulp at x = {WIDE[finite][worst]!r}"


def test_vectorised_math_special_values_every_isa(isa):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 100.0, -100.0, 1e-30, -1e-30], np.float32)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(_C.exp_forward(x), np.exp(x))
    s = _C.sigmoid_forward(x)
    np.testing.assert_array_equal(s[:6], [np.nan, 1.0, 0.0, 0.5, 0.5, 1.0])
    assert s[6] == np.float32(3.720076e-44)  # e^-100: a denormal, not flushed to 0
    t = _C.tanh_forward(x)
    np.testing.assert_array_equal(
        t, np.array([np.nan, 1, -1, 0, -0.0, 1, -1, 1e-30, -1e-30], np.float32)
    )
    assert np.signbit(t[4])  # tanh(-0) = -0
    np.testing.assert_array_equal(
        cpu.relu_forward(x), reference.relu_forward(x)
    )  # NaN propagates, -0 -> 0


# ---- softmax cross-entropy rows on every ISA (cross_entropy_kernels.cpp) ----


@pytest.mark.parametrize("C", [1, 3, 16, 17, 31, 1000, 1031, 2100])
@pytest.mark.parametrize("probs", [False, True])
def test_cross_entropy_rows_every_isa(isa, C, probs):
    # Full vectors, masked tails and sums over more than one block of 1024, against the reference.
    rng = np.random.default_rng(C)
    logits = (rng.standard_normal((6, C)) * 3).astype(np.float32)
    if probs:
        target = rng.random((6, C)).astype(np.float32)
        target /= target.sum(axis=1, keepdims=True)
        weight = (rng.random(C) + 0.5).astype(np.float32)
    else:
        target, weight = rng.integers(0, C, 6), None
    for reduction in ("none", "mean"):
        kw = dict(reduction=reduction)
        _, log_probs = assert_backends_match("cross_entropy_forward", logits, target, weight, **kw)
        dloss = np.float32(0.7) if reduction == "mean" else rng.random(6).astype(np.float32)
        assert_backends_match("cross_entropy_backward", dloss, log_probs, target, weight, **kw)


def test_cross_entropy_nan_row_every_isa(isa):
    # A NaN logit anywhere in a row (a full vector or the tail) makes that row NaN, not others.
    for where in (0, 19):
        logits = rand(2, 20, seed=where)
        logits[0, where] = np.nan
        loss, log_probs = cpu.cross_entropy_forward(logits, np.array([1, 2]), reduction="none")
        assert np.isnan(loss[0]) and np.isnan(log_probs[0]).all()
        assert np.isfinite(loss[1]) and np.isfinite(log_probs[1]).all()



# ---- Adam's element loop on every ISA (optim_kernels.cpp) ----


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, False), (1e-2, False), (1e-2, True)])
def test_adam_step_every_isa(isa, amsgrad, weight_decay, decoupled):
    # Tensors of 1 to 100 floats (vector bodies and tails), 3 steps, against the reference.
    from test_kernels_optim import moments, run_both, step_count, tensors

    rng = np.random.default_rng(3)
    state = moments(tensors([(1,), (15,), (16,), (17,), (100,)], rng), amsgrad=amsgrad)
    run_both(
        "adam_step", state, 3, rng, step_kw=step_count, lr=1e-2, beta1=0.9,
        beta2=0.999, eps=1e-8, weight_decay=weight_decay, decoupled=decoupled,
    )  # fmt: skip
