"""The cpu conv2d (csrc/cpu/conv2d.cpp, backends.cpu.conv2d_*) against the NumPy reference.

Random shapes, strides and paddings with hypothesis (batch and channels of 1, rectangular
inputs and kernels, kernels as large as the padded input), each path (implicit GEMM, one input
channel, the input gradient as a flipped forward or through col2im, blocks of the K loops, image
groups of the weight gradient), the founding CNN's two convolutions at batch 64 and 1,
thread-count invariance, and bad inputs passed straight to _C. tests/test_kernels_simd.py
repeats the path checks under every ISA build the processor supports. Runs in a few seconds.
"""

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu, reference
from fastdl.testing import assert_backends_match
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


@st.composite
def conv_cases(draw):
    # (x, w, b or None, stride, padding) with the kernel no larger than the padded input.
    N, C, K = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 7))
    R, S = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    H = draw(st.integers(max(1, R - 2 * padding[0]), 13))
    W = draw(st.integers(max(1, S - 2 * padding[1]), 13))
    seed = draw(st.integers(0, 99))
    b = rand(K, seed=seed + 2) if draw(st.booleans()) else None
    return rand(N, C, H, W, seed=seed), rand(K, C, R, S, seed=seed + 1), b, stride, padding


def output_of(x, w, stride, padding, seed=3):
    # A random dy of the output's shape (N, K, P, Q).
    (N, _, H, W), (K, _, R, S) = x.shape, w.shape
    P = (H + 2 * padding[0] - R) // stride[0] + 1
    Q = (W + 2 * padding[1] - S) // stride[1] + 1
    return rand(N, K, P, Q, seed=seed)


def assert_stride1_matches(x_shape, w_shape, padding):
    # Forward (with a bias) and backward at stride 1 on random data, against the reference.
    x, w, b = rand(*x_shape), rand(*w_shape, seed=1), rand(w_shape[0], seed=2)
    y = assert_backends_match("conv2d_forward", x, w, b, 1, padding)
    assert_backends_match("conv2d_backward", rand(*y.shape, seed=3), x, w, 1, padding)


# ---- parity on random shapes ----


@settings(max_examples=50, deadline=None)
@given(case=conv_cases())
def test_conv2d_forward_random_shapes(case):
    assert_backends_match("conv2d_forward", *case)


@settings(max_examples=50, deadline=None)
@given(case=conv_cases(), need=st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_conv2d_backward_random_shapes(case, need):
    x, w, _, stride, padding = case
    dy = output_of(x, w, stride, padding)
    assert_backends_match("conv2d_backward", dy, x, w, stride, padding, *need)


@pytest.mark.parametrize(
    "x_shape,w_shape,stride,padding",
    [
        ((2, 6, 5, 7), (3, 6, 1, 1), (1, 1), (0, 0)),  # 1x1: no im2col
        ((2, 6, 5, 7), (3, 6, 1, 1), (2, 1), (0, 1)),  # 1x1 with stride and padding: im2col
        ((1, 1, 1, 1), (1, 1, 1, 1), (1, 1), (0, 0)),
        ((1, 1, 1, 1), (2, 1, 3, 3), (1, 1), (1, 1)),  # every tap but the centre is padding
        ((3, 2, 4, 9), (4, 2, 6, 11), (1, 1), (1, 1)),  # kernel exactly the padded input
        ((2, 3, 17, 5), (5, 3, 3, 2), (4, 3), (2, 0)),
        ((1, 4, 9, 9), (2, 4, 2, 2), (5, 5), (0, 0)),  # stride larger than the kernel
    ],
)
def test_conv2d_edge_shapes(x_shape, w_shape, stride, padding):
    x, w, b = rand(*x_shape), rand(*w_shape, seed=1), rand(w_shape[0], seed=2)
    assert_backends_match("conv2d_forward", x, w, b, stride, padding)
    dy = output_of(x, w, stride, padding)
    assert_backends_match("conv2d_backward", dy, x, w, stride, padding)


def test_conv2d_int_stride_and_padding_and_empty_batch():
    x, w = rand(2, 3, 8, 8), rand(4, 3, 3, 3, seed=1)
    assert_backends_match("conv2d_forward", x, w, None, 2, 1)
    assert_backends_match("conv2d_backward", output_of(x, w, (2, 2), (1, 1)), x, w, 2, 1)
    x0 = rand(0, 3, 8, 8)
    assert_backends_match("conv2d_forward", x0, w, rand(4, seed=2), 1, 1)
    assert_backends_match("conv2d_backward", output_of(x0, w, (1, 1), (1, 1)), x0, w, 1, 1)


# ---- the founding CNN: conv 1->32 on 28x28 and 32->64 on 14x14, 3x3 pad 1 ----


@pytest.mark.parametrize("batch", [64, 1])
def test_conv2d_cnn_layers(batch):
    x1, w1, b1 = rand(batch, 1, 28, 28), rand(32, 1, 3, 3, seed=1), rand(32, seed=2)
    assert_backends_match("conv2d_forward", x1, w1, b1, (1, 1), (1, 1))
    dy1 = rand(batch, 32, 28, 28, seed=3)
    assert_backends_match("conv2d_backward", dy1, x1, w1, (1, 1), (1, 1), False, True, True)
    x2, w2, b2 = rand(batch, 32, 14, 14, seed=4), rand(64, 32, 3, 3, seed=5), rand(64, seed=6)
    assert_backends_match("conv2d_forward", x2, w2, b2, (1, 1), (1, 1))
    dy2 = rand(batch, 64, 14, 14, seed=7)
    assert_backends_match("conv2d_backward", dy2, x2, w2, (1, 1), (1, 1))


# ---- the paths: implicit GEMM, one input channel, and the input gradient's two ways ----


@pytest.mark.parametrize(
    "x_shape,w_shape,stride,padding",
    [
        ((2, 1, 7, 1), (3, 1, 3, 1), (1, 1), (1, 0)),  # C = 1, one output column
        ((2, 1, 6, 17), (4, 1, 2, 3), (2, 1), (0, 1)),  # C = 1, stride_h 2, Q = 17
        ((3, 1, 5, 33), (2, 1, 4, 4), (1, 1), (2, 2)),  # C = 1, 16 taps
        ((2, 1, 8, 8), (3, 1, 5, 4), (1, 1), (2, 1)),  # C = 1, 20 taps: implicit GEMM
        ((2, 1, 9, 9), (3, 1, 3, 3), (1, 2), (1, 1)),  # C = 1, stride_w 2: implicit GEMM
        ((1, 70, 4, 5), (9, 70, 3, 3), (1, 1), (1, 1)),  # 630 taps: two blocks of the K loop
        ((1, 2, 41, 40), (3, 2, 3, 3), (1, 1), (1, 1)),  # 1640 pixels: two dw pixel blocks
        ((2, 3, 6, 6), (4, 3, 3, 3), (1, 1), (0, 0)),  # no padding: no padded copy
        ((2, 3, 6, 6), (4, 3, 3, 3), (1, 1), (3, 2)),  # pad > kernel - 1: dx through col2im
    ],
)
def test_conv2d_paths(x_shape, w_shape, stride, padding):
    x, w, b = rand(*x_shape), rand(*w_shape, seed=1), rand(w_shape[0], seed=2)
    assert_backends_match("conv2d_forward", x, w, b, stride, padding)
    dy = output_of(x, w, stride, padding)
    assert_backends_match("conv2d_backward", dy, x, w, stride, padding)
    assert_backends_match("conv2d_backward", dy, x, w, stride, padding, False, True, False)


@pytest.mark.parametrize("batch", [7, 8, 9, 17])
def test_conv2d_weight_gradient_image_groups(batch):
    # The batch is summed in up to 8 groups of images.
    for C in (1, 3):
        x, w = rand(batch, C, 6, 7), rand(5, C, 3, 3, seed=1)
        dy = output_of(x, w, (1, 1), (1, 1))
        assert_backends_match("conv2d_backward", dy, x, w, (1, 1), (1, 1), False, True, True)


# ---- Winograd F(2x2, 3x3) and F(4x4, 3x3): 3x3 stride-1 forwards and input gradients ----

WINOGRAD = ["winograd_2x2", "winograd_4x4"]


@st.composite
def winograd_cases(draw):
    # 3x3 stride-1 convolutions: odd and even planes (partial tiles), padding 0, 1 or 2, N and C
    # of 1, channels that are not a multiple of any vector width.
    N, C, K = draw(st.integers(1, 3)), draw(st.integers(1, 21)), draw(st.integers(1, 37))
    pad = draw(st.integers(0, 2))
    H, W = draw(st.integers(max(1, 3 - 2 * pad), 13)), draw(st.integers(max(1, 3 - 2 * pad), 13))
    seed = draw(st.integers(0, 99))
    b = rand(K, seed=seed + 2) if draw(st.booleans()) else None
    return rand(N, C, H, W, seed=seed), rand(K, C, 3, 3, seed=seed + 1), b, (1, 1), (pad, pad)


@pytest.mark.parametrize("algorithm", WINOGRAD + ["winograd", "gemm"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=winograd_cases())
def test_conv2d_winograd_random_shapes(case, algorithm, conv2d_algorithm):
    conv2d_algorithm(algorithm)
    x, w, b, stride, padding = case
    assert_backends_match("conv2d_forward", x, w, b, stride, padding)
    dy = output_of(x, w, stride, padding)
    assert_backends_match("conv2d_backward", dy, x, w, stride, padding)


@pytest.mark.parametrize("algorithm", WINOGRAD)
@pytest.mark.parametrize(
    "x_shape,w_shape,padding",
    [
        ((64, 32, 14, 14), (64, 32, 3, 3), 1),  # conv2: whole images per unit
        ((1, 32, 14, 14), (64, 32, 3, 3), 1),  # batch 1
        ((1, 24, 61, 45), (40, 24, 3, 3), 1),  # units of tile rows, partial tiles both ways
        ((2, 3, 3, 3), (5, 3, 3, 3), 0),  # one output pixel
        ((2, 70, 5, 6), (9, 70, 3, 3), 2),  # wide channels, padding 2: dx without padding
        ((2, 4, 9, 7), (3, 4, 3, 3), 3),  # padding 3: dx through col2im, forward Winograd
    ],
)
def test_conv2d_winograd_shapes(x_shape, w_shape, padding, algorithm, conv2d_algorithm):
    conv2d_algorithm(algorithm)
    assert_stride1_matches(x_shape, w_shape, padding)


def test_conv2d_auto_takes_winograd_where_it_pays(conv2d_algorithm):
    # conv2 (32 -> 64 on 14x14) runs Winograd for y and dx; conv1 (one input channel) keeps the
    # direct path for y but its dx (32 -> 1) runs Winograd; 4 -> 8 channels keep the GEMM; dw
    # always does (Winograd's dw only when asked for: see carve_backward_plan in conv2d.cpp).
    # Which tile (F(2x2) or F(4x4)) is the cost model's choice for the ISA build in use: F(4x4)
    # on the AVX2 and AVX-512 builds; on the baseline build (4-lane vectors) conv1's dx may keep
    # the GEMM.
    def run(algorithm, x, w, dy):
        conv2d_algorithm(algorithm)
        _, dw, _ = cpu.conv2d_backward(dy, x, w, 1, 1)
        return cpu.conv2d_forward(x, w, None, 1, 1), cpu.conv2d_backward(dy, x, w, 1, 1)[0], dw

    WINO = ("winograd_2x2", "winograd_4x4") if _C.simd_level() == "baseline" else ("winograd_4x4",)
    for shape, wants in [
        ((8, 32, 14, 14, 64), (WINO, WINO, ("gemm",))),
        ((8, 1, 28, 28, 32), (("gemm",), WINO + ("gemm",) * (len(WINO) > 1), ("gemm",))),
        ((8, 4, 14, 14, 8), (("gemm",), ("gemm",), ("gemm",))),
    ]:
        N, C, H, W, K = shape
        x, w, dy = rand(N, C, H, W), rand(K, C, 3, 3, seed=1), rand(N, K, H, W, seed=2)
        auto = run("auto", x, w, dy)
        for i, (got, want) in enumerate(zip(auto, wants)):
            assert any(np.array_equal(got, run(a, x, w, dy)[i]) for a in want), (shape, i, want)


def test_conv2d_algorithm_changes_the_path(conv2d_algorithm):
    # Winograd's rounding differs from the GEMM's: each setting really takes its own path.
    x, w = rand(2, 32, 14, 14), rand(64, 32, 3, 3, seed=1)
    dy = rand(2, 64, 14, 14, seed=2)
    ys, dxs, dws = {}, {}, {}
    for algorithm in ["gemm", "winograd_2x2", "winograd_4x4"]:
        conv2d_algorithm(algorithm)
        ys[algorithm] = cpu.conv2d_forward(x, w, None, 1, 1)
        dxs[algorithm], dws[algorithm], _ = cpu.conv2d_backward(dy, x, w, 1, 1, True, True, False)
    for a, b in [
        ("gemm", "winograd_2x2"),
        ("gemm", "winograd_4x4"),
        ("winograd_2x2", "winograd_4x4"),
    ]:
        for out in (ys, dxs, dws):
            assert not np.array_equal(out[a], out[b])


# Max error over max |exact| against the float64 reference (bench/RESULTS.md has the figures):
# post-ReLU activations and Kaiming-uniform weights as in training.
WINOGRAD_BOUND = {"gemm": 2e-6, "winograd_2x2": 4e-6, "winograd_4x4": 2e-5}


@pytest.mark.parametrize("algorithm", list(WINOGRAD_BOUND))
def test_conv2d_winograd_error_against_float64(algorithm, conv2d_algorithm):
    conv2d_algorithm(algorithm)
    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal((16, 64, 14, 14)), 0).astype(np.float32)
    bound = 1 / np.sqrt(64 * 9)
    w = rng.uniform(-bound, bound, (64, 64, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((16, 64, 14, 14)).astype(np.float32)
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    y64 = reference.conv2d_forward(x64, w64, None, 1, 1)
    dx64, dw64, _ = reference.conv2d_backward(dy64, x64, w64, 1, 1, True, True, False)
    y = cpu.conv2d_forward(x, w, None, 1, 1)
    dx, dw, _ = cpu.conv2d_backward(dy, x, w, 1, 1, True, True, False)
    for got, exact in [(y, y64), (dx, dx64), (dw, dw64)]:
        assert np.max(np.abs(got - exact)) / np.max(np.abs(exact)) < WINOGRAD_BOUND[algorithm]


def test_conv2d_algorithm_setting(conv2d_algorithm):
    import fastdl

    assert fastdl.backends.cpu.conv2d_algorithm == "auto"
    fastdl.backends.cpu.conv2d_algorithm = "winograd"
    assert fastdl.backends.cpu.conv2d_algorithm == "winograd"
    with pytest.raises(
        ValueError, match=r"conv2d_algorithm must be one of 'auto', 'gemm'.*got 'fft'"
    ):
        fastdl.backends.cpu.conv2d_algorithm = "fft"
    with pytest.raises(TypeError, match=r"conv2d_algorithm must be a str, got int"):
        fastdl.backends.cpu.conv2d_algorithm = 1
    assert fastdl.backends.cpu.conv2d_algorithm == "winograd"  # a refused value changes nothing
    x, w = rand(1, 2, 5, 5), rand(3, 2, 3, 3, seed=1)
    for call in (
        lambda: _C.conv2d_forward(x, w, None, 1, 1, 1, 1, "fft"),
        lambda: _C.conv2d_backward(rand(1, 3, 5, 5), x, w, 1, 1, 1, 1, True, True, True, "fft"),
    ):
        with pytest.raises(ValueError, match=r"\[conv2d_\w+\] algorithm must be one of 'auto'"):
            call()


# ---- threads: every output comes out bit for bit (orders are fixed by the shapes alone) ----


# Convolutions below this many multiply-adds run on one thread (csrc/cpu/parallel.h).
PARALLEL_MIN_MACS = int(_C.build_config["parallel_min"]["macs"])


def threaded_conv_case(batch, C, S, stride, K=8, H=20, W=18):
    """x, w, b, dy of a convolution with `batch` images (0: as many as it takes) and C input
    channels (0: as many as it takes) of at least PARALLEL_MIN_MACS multiply-adds, so that two
    threads really split it."""
    P, Q = (H + 2 - 3) // stride[0] + 1, (W + 2 - S) // stride[1] + 1
    per_unit = K * 3 * S * P * Q * (batch or C)  # multiply-adds per image (or per channel)
    need = -(-PARALLEL_MIN_MACS // per_unit)
    batch, C = (batch, need) if batch else (need, C)
    x, w, b = rand(batch, C, H, W), rand(K, C, 3, S, seed=1), rand(K, seed=2)
    assert batch * C * K * 3 * S * P * Q >= PARALLEL_MIN_MACS
    return x, w, b, output_of(x, w, stride, (1, 1))


@pytest.mark.parametrize("one_image", [True, False])  # dw: threads split taps, or image groups
@pytest.mark.parametrize(
    "C,S,stride,algorithm",
    [
        (5, 2, (2, 1), "auto"),
        (1, 2, (1, 1), "auto"),
        (6, 3, (1, 1), "winograd_2x2"),
        (6, 3, (1, 1), "winograd_4x4"),
    ],
)
def test_conv2d_1_and_2_threads_agree(one_image, C, S, stride, algorithm, threads,
                                      conv2d_algorithm):
    conv2d_algorithm(algorithm)
    if one_image and C == 1:
        pytest.skip("one image of one channel is far below the threading threshold")
    x, w, b, dy = threaded_conv_case(1 if one_image else 0, 0 if one_image else C, S, stride)
    results = []
    for n in (1, 2):
        threads(n)
        y = cpu.conv2d_forward(x, w, b, stride, (1, 1))
        results.append((y, *cpu.conv2d_backward(dy, x, w, stride, (1, 1))))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


# ---- bad inputs, straight to _C ----


def test_conv2d_forward_rejects_bad_inputs():
    x, w, b = rand(2, 3, 8, 8), rand(4, 3, 3, 3, seed=1), rand(4, seed=2)
    fwd = _C.conv2d_forward

    def bad(match, *args):
        with pytest.raises(ValueError, match=match):
            fwd(*args)

    bad(
        r"\[conv2d_forward\] x must be float32, got float64", x.astype(np.float64), w, b, 1, 1, 1, 1
    )
    bad(r"\[conv2d_forward\] w must be float32", x, w.astype(np.float16), b, 1, 1, 1, 1)
    bad(r"\[conv2d_forward\] bias must be float32", x, w, b.astype(np.int32), 1, 1, 1, 1)
    bad(r"\[conv2d_forward\] x must be C-contiguous", x[:, :, ::2], w, b, 1, 1, 1, 1)
    bad(r"\[conv2d_forward\] w must be C-contiguous", x, rand(4, 3, 3, 6)[..., ::2], b, 1, 1, 1, 1)
    bad(r"\[conv2d_forward\] x must have 4 dimensions, got 3", x[0], w, b, 1, 1, 1, 1)
    bad(r"\[conv2d_forward\] w must have 4 dimensions, got 2", x, w.reshape(4, 27), b, 1, 1, 1, 1)
    bad(r"\[conv2d_forward\] bias must have 1 dimensions", x, w, b.reshape(2, 2), 1, 1, 1, 1)
    bad(
        r"\[conv2d_forward\] bias has 3 elements, weight has 4 output channels",
        x,
        w,
        b[:3],
        1,
        1,
        1,
        1,
    )
    bad(r"\[conv2d_forward\] bias must be a NumPy array or None", x, w, [0.0] * 4, 1, 1, 1, 1)
    bad(
        r"\[conv2d_forward\] weight has 4 input channels, input has 3",
        x,
        rand(4, 4, 3, 3),
        b,
        1,
        1,
        1,
        1,
    )
    bad(r"\[conv2d_forward\] stride must be >= 1, got \(0, 1\)", x, w, b, 0, 1, 1, 1)
    bad(r"\[conv2d_forward\] stride must be >= 1, got \(1, -2\)", x, w, b, 1, -2, 1, 1)
    bad(r"\[conv2d_forward\] padding must be >= 0, got \(-1, 0\)", x, w, b, 1, 1, -1, 0)
    bad(
        r"\[conv2d_forward\] kernel \(9, 3\) is larger than the padded input \(8, 10\)",
        x,
        rand(4, 3, 9, 3),
        b,
        1,
        1,
        0,
        1,
    )
    bad(
        r"\[conv2d_forward\] kernel \(3, 11\) is larger than the padded input \(10, 10\)",
        x,
        rand(4, 3, 3, 11),
        b,
        1,
        1,
        1,
        1,
    )
    bad(r"\[conv2d_forward\] kernel must be at least 1x1", x, rand(4, 3, 0, 3), b, 1, 1, 1, 1)
    bad(r"\[conv2d_forward\] padding \(.*\) is too large", x, w, b, 1, 1, 1 << 62, 0)
    bad(r"\[conv2d_forward\] the output is too large", x, w, b, 1, 1, 1 << 35, 1 << 35)
    big = 1 << 40  # a tiny output, but a padded copy of 2^82 floats
    bad(r"\[conv2d_forward\] the padded input is too large", x, w, b, big, big, big, big)
    x0 = rand(0, 3, 8, 8)  # no output elements, but the per-image columns would still overflow
    bad(r"\[conv2d_forward\] the column matrix is too large", x0, w, b, 1, 1, 1 << 35, 1 << 35)
    with pytest.raises(TypeError):
        fwd(x.tolist(), w, b, 1, 1, 1, 1)


def test_conv2d_backward_rejects_bad_inputs():
    x, w = rand(2, 3, 8, 8), rand(4, 3, 3, 3, seed=1)
    dy = output_of(x, w, (1, 1), (1, 1))
    bwd = _C.conv2d_backward

    def bad(match, *args):
        with pytest.raises(ValueError, match=match):
            bwd(*args, True, True, True)

    bad(r"\[conv2d_backward\] dy must be float32", dy.astype(np.float64), x, w, 1, 1, 1, 1)
    bad(r"\[conv2d_backward\] dy must be C-contiguous", dy.transpose(0, 1, 3, 2), x, w, 1, 1, 1, 1)
    bad(r"\[conv2d_backward\] dy must have 4 dimensions", dy[0], x, w, 1, 1, 1, 1)
    bad(
        r"\[conv2d_backward\] dy must have shape \(2, 4, 8, 8\), got \(2, 4, 7, 8\)",
        dy[:, :, 1:].copy(),
        x,
        w,
        1,
        1,
        1,
        1,
    )
    bad(r"\[conv2d_backward\] dy must have shape \(2, 4, 4, 4\)", dy, x, w, 2, 2, 1, 1)
    bad(
        r"\[conv2d_backward\] weight has 3 input channels, input has 2",
        dy,
        x[:, :2].copy(),
        w,
        1,
        1,
        1,
        1,
    )
    bad(r"\[conv2d_backward\] stride must be >= 1", dy, x, w, 0, 0, 1, 1)
    bad(r"\[conv2d_backward\] padding must be >= 0", dy, x, w, 1, 1, 0, -3)
    bad(
        r"\[conv2d_backward\] kernel \(3, 3\) is larger than the padded input \(2, 10\)",
        rand(2, 4, 1, 8),
        x[:, :, :2].copy(),
        w,
        1,
        1,
        0,
        1,
    )
    with pytest.raises(ValueError, match=r"\[conv2d_forward\] stride must be >= 1"):
        cpu.conv2d_forward(x, w, None, (1, 0), 1)  # the wrapper passes it through to _C


@pytest.mark.parametrize("C", [8, 16, 3, 1])
def test_dw_inf_in_dy_over_padding_gives_nan_as_pytorch(C, isa):
    # dw sums x * dy over every output pixel, the padding included: an inf in dy where the
    # kernel reads padding makes 0 * inf = NaN there (PyTorch's and the reference's result);
    # skipping the products with the padding would leave those taps finite.
    rng = np.random.default_rng(C)
    x = rng.standard_normal((2, C, 6, 6), dtype=np.float32)
    w = rng.standard_normal((8, C, 3, 3), dtype=np.float32)
    dy = np.ones((2, 8, 6, 6), np.float32)
    dy[1, 0, 0, 0] = np.inf
    _, dw, _ = cpu.conv2d_backward(dy, x, w, (1, 1), (1, 1), need_dx=False)
    _, want, _ = reference.conv2d_backward(
        dy.astype(np.float64), x.astype(np.float64), w.astype(np.float64), (1, 1), (1, 1),
        need_dx=False,
    )
    assert np.isnan(want[0, :, 0, :]).all() and np.isnan(want[0, :, :, 0]).all()
    np.testing.assert_array_equal(np.isnan(dw), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(dw), np.isinf(want))
