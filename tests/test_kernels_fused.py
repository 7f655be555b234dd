"""The fused kernels (csrc/cpu/fused.cpp, backends.cpu.bias_relu_ / relu_maxpool2x2_*) against
the reference (their definition as compositions of the relu, maxpool2d kernels) in float64, and
against PyTorch: random shapes with hypothesis (odd sizes, the floor of pooling), NaN, windows
with no positive value, reused output buffers, thread-count invariance, and bad inputs."""

import numpy as np
import pytest
from fastdl import _C
from fastdl.backends import cpu, reference
from hypothesis import given, settings
from hypothesis import strategies as st

import fastdl


def inputs(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(1, 1, 2, 2), (2, 3, 5, 7), (4, 32, 28, 28), (3, 64, 14, 14),
                           (1, 2, 9, 2), (0, 3, 4, 4)]),
    seed=st.integers(0, 2**32 - 1),
)
def test_relu_maxpool_matches_reference(shape, seed):
    x = inputs(shape, seed)
    y, idx = cpu.relu_maxpool2x2_forward(x)
    ry, ridx = reference.relu_maxpool2x2_forward(x.astype(np.float64))
    np.testing.assert_array_equal(y, ry.astype(np.float32))  # a max and a ReLU: exact
    np.testing.assert_array_equal(idx, ridx)
    dy = inputs(y.shape, seed + 1)
    dx = cpu.relu_maxpool2x2_backward(dy, idx, y, shape)
    rdx = reference.relu_maxpool2x2_backward(dy.astype(np.float64), ridx, ry, shape)
    np.testing.assert_array_equal(dx, rdx.astype(np.float32))
    # the definition: the unfused kernels
    y2, idx2 = cpu.maxpool2d_forward(cpu.relu_forward(x), 2, 2, 0)
    np.testing.assert_array_equal(y, y2)
    dx2 = cpu.relu_backward(cpu.maxpool2d_backward(dy, idx2, shape), cpu.relu_forward(x))
    np.testing.assert_array_equal(dx, dx2)
    # inference: the same y without indices, on both backends
    for backend in (cpu, reference):
        y3, none = backend.relu_maxpool2x2_forward(x, need_indices=False)
        assert none is None
        np.testing.assert_array_equal(y3, y)


def test_relu_maxpool_matches_torch():
    torch = pytest.importorskip("torch")
    x = inputs((2, 4, 7, 10), 0)
    x[0, 0, :2, :2] = -1.0  # no positive value: 0 out, no gradient
    x[1, 1, 2, 2] = np.nan
    dy = inputs((2, 4, 3, 5), 1)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(torch.relu(xt), 2)
    yt.backward(torch.tensor(dy))
    y, idx = cpu.relu_maxpool2x2_forward(x)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    assert np.isnan(y[1, 1, 1, 1]) and y[0, 0, 0, 0] == 0
    dx = cpu.relu_maxpool2x2_backward(dy, idx, y, x.shape)
    # NOTE: at a NaN, PyTorch's ReLU passes the gradient (NaN <= 0 is false) and fastdl's
    # relu_backward does not (its mask is y > 0); the fused kernel follows fastdl's.
    ours = dx.copy()
    ours[1, 1, 2, 2] = dy[1, 1, 1, 1]
    np.testing.assert_array_equal(ours, xt.grad.numpy())


def test_relu_maxpool_writes_into_given_buffers():
    x = inputs((2, 3, 8, 8), 2)
    ybuf = np.full((2, 3, 4, 4), 7.0, np.float32)
    ibuf = np.zeros((2, 3, 4, 4), np.int64)
    y, idx = cpu.relu_maxpool2x2_forward(x, ybuf, ibuf)
    assert y is ybuf and idx is ibuf
    ry, ridx = reference.relu_maxpool2x2_forward(x)
    np.testing.assert_array_equal(ybuf, ry)
    np.testing.assert_array_equal(ibuf, ridx)
    dxbuf = np.full(x.shape, 5.0, np.float32)
    dy = inputs(y.shape, 3)
    dx = cpu.relu_maxpool2x2_backward(dy, idx, y, x.shape, dxbuf)
    assert dx is dxbuf
    np.testing.assert_array_equal(dxbuf, reference.relu_maxpool2x2_backward(dy, ridx, ry, x.shape))


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(1, 1), (64, 128), (3, 10), (2, 32, 28, 28), (5, 7, 3), (0, 4),
                           (2, 3, 1, 1)]),
    seed=st.integers(0, 2**32 - 1),
)
def test_bias_relu_matches_reference(shape, seed):
    x, b = inputs(shape, seed) * 2, inputs((shape[1],), seed + 1)
    ref = x.astype(np.float64)
    reference.bias_relu_(ref, b.astype(np.float64))
    cpu.bias_relu_(x, b)
    # one float32 addition each side: equal to the float64 sum rounded once
    np.testing.assert_allclose(x, ref, rtol=1e-6, atol=1e-7)
    assert (x >= 0).all()


def test_bias_relu_propagates_nan_like_relu():
    x = np.array([[np.nan, -1.0, 2.0]], np.float32)
    cpu.bias_relu_(x, np.array([0.0, 0.5, -3.0], np.float32))
    assert np.isnan(x[0, 0]) and x[0, 1] == 0 and x[0, 2] == 0


def test_thread_count_does_not_change_results():
    x = inputs((8, 32, 28, 28), 4)
    b = inputs((32,), 5)
    before = fastdl.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            fastdl.set_num_threads(n)
            y, idx = cpu.relu_maxpool2x2_forward(x)
            z = x.copy()
            cpu.bias_relu_(z, b)
            outs.append((y, idx, z, cpu.relu_maxpool2x2_backward(y, idx, y, x.shape)))
    finally:
        fastdl.set_num_threads(before)
    for a, c in zip(*outs):
        np.testing.assert_array_equal(a, c)


def test_bad_inputs_raise():
    x = inputs((2, 3, 4, 4), 0)
    with pytest.raises(ValueError, match="bias must have shape"):
        _C.bias_relu_(x, np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="writeable"):
        ro = x.copy()
        ro.flags.writeable = False
        _C.bias_relu_(ro, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.bias_relu_(x.transpose(0, 1, 3, 2), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="height and width >= 2"):
        _C.relu_maxpool2x2_forward(np.zeros((1, 1, 1, 4), np.float32))
    with pytest.raises(ValueError, match="y_out must have shape"):
        _C.relu_maxpool2x2_forward(x, np.zeros((2, 3, 2, 3), np.float32))
    with pytest.raises(ValueError, match="float32"):
        _C.relu_maxpool2x2_forward(x.astype(np.float64))
    y, idx = _C.relu_maxpool2x2_forward(x)
    for bad in (-1, 16, 2):  # outside the plane, and a position of another window
        wrong = idx.copy()
        wrong[0, 0, 0, 0] = bad
        for backend in (cpu, reference):
            with pytest.raises(ValueError, match="not in their 2x2 windows"):
                backend.relu_maxpool2x2_backward(y, wrong, y, x.shape)
    with pytest.raises(ValueError, match="dy must have shape"):
        _C.relu_maxpool2x2_backward(y, idx, y, (2, 3, 6, 6))
    with pytest.raises(ValueError, match="out must have shape"):
        _C.relu_maxpool2x2_backward(y, idx, y, x.shape, np.zeros((2, 3, 4, 5), np.float32))


@pytest.mark.parametrize("backend", [cpu, reference], ids=["cpu", "reference"])
def test_relu_maxpool_without_indices_refuses_an_indices_buffer(backend):
    x = inputs((2, 3, 6, 6), 0)
    y_out = np.full((2, 3, 3, 3), np.nan, np.float32)
    y, none = backend.relu_maxpool2x2_forward(x, y_out, need_indices=False)
    assert y is y_out and none is None
    np.testing.assert_array_equal(y, backend.relu_maxpool2x2_forward(x)[0])
    with pytest.raises(ValueError, match="need_indices=False"):
        backend.relu_maxpool2x2_forward(
            x, None, np.zeros((2, 3, 3, 3), np.int64), need_indices=False
        )


# ---- the conv block: conv2d + bias + ReLU + 2x2 max pool (conv2d_relu_maxpool2x2_*) ----

# (x shape, output channels, kernel, stride, padding, bias): one input channel runs the fused
# path (the conv output never leaves a worker's scratch), several channels the conv then the pool.
BLOCKS = [
    ((3, 1, 28, 28), 32, 3, 1, 1, True),  # the founding CNN's conv1
    ((2, 1, 9, 11), 5, 3, 1, 1, False),  # odd sizes: the pooling's floor, no bias
    ((2, 1, 7, 20), 3, 3, 1, 0, True),  # rows of 9 outputs: one masked vector
    ((1, 1, 40, 70), 4, 5, 2, 2, True),  # stride 2 (the direct path takes any stride_h)
    ((2, 1, 5, 5), 2, 1, 1, 0, True),  # 1x1 kernel
    ((2, 3, 10, 10), 6, 3, 1, 1, True),  # several channels: conv, then pool
    ((2, 2, 8, 9), 3, 3, 2, 1, True),
]


def _block_args(block, seed):
    shape, k, r, stride, padding, bias = block
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((k, shape[1], r, r)) / r).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32) if bias else None
    return x, w, b, stride, padding


def _unfused(x, w, b, stride, padding):
    """The block from the cpu backend's separate kernels, with the argmax as codes."""
    y = cpu.conv2d_forward(x, w, b, stride, padding)
    pooled, idx = cpu.relu_maxpool2x2_forward(y)
    Q = y.shape[3]
    p, q = np.indices(pooled.shape[2:])
    k = idx - (2 * p * Q + 2 * q)
    return y.shape, pooled, idx, ((k // Q) * 2 + k % Q).astype(np.uint8)


NEEDS = [(False, True, True), (True, True, True), (True, False, False), (False, False, True)]


def _assert_same_sum(a, e, what):
    """a is e summed in another order: equal to float32 rounding, with the same NaN, the same
    infinities and the same exact zeros (an exact 0 that became 1e-9 would move a weight under
    Adam, whose first step divides the gradient by its own magnitude)."""
    assert a.shape == e.shape and a.dtype == e.dtype, what
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=f"{what}: NaN")
    finite = np.isfinite(e)
    np.testing.assert_array_equal(a[~finite & ~np.isnan(e)], e[~finite & ~np.isnan(e)])
    np.testing.assert_array_equal(a[finite] == 0, e[finite] == 0, err_msg=f"{what}: exact zeros")
    if finite.any():
        scale = max(1.0, float(np.abs(e[finite]).max()))
        np.testing.assert_allclose(a[finite], e[finite], rtol=1e-5, atol=2e-6 * scale, err_msg=what)


def _assert_backward_is_unfused(dy, codes, y, idx, pooled, conv_shape, x, w, stride, padding):
    """The block's backward, for every need flag, against conv2d_backward of the dense dz the
    unfused kernels build, bit for bit; except that under the automatic setting the gathered
    gradients (several input channels) sum only each window's argmax, in another order than the
    dense product: where a result is not bit for bit, it is held to the implicit GEMM's (direct
    sums, as PyTorch's: Winograd's transforms spread an inf in dy into NaN over whole tiles) by
    _assert_same_sum."""
    dz = cpu.relu_maxpool2x2_backward(dy, idx, pooled, conv_shape)
    setting = cpu.conv2d_algorithm
    for need in NEEDS:
        want = cpu.conv2d_backward(dz, x, w, stride, padding, *need)
        cpu.conv2d_algorithm = "gemm"
        try:
            direct = cpu.conv2d_backward(dz, x, w, stride, padding, *need)
        finally:
            cpu.conv2d_algorithm = setting
        have = cpu.conv2d_relu_maxpool2x2_backward(dy, codes, y, x, w, stride, padding, *need)
        for name, a, e, d in zip(("dx", "dw", "db"), have, want, direct):
            assert (a is None) == (e is None)
            if e is None:
                continue
            if setting != "auto" or np.array_equal(a, e, equal_nan=True):
                np.testing.assert_array_equal(a, e, err_msg=name)
            else:
                _assert_same_sum(a, d, name)


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_conv_block_equals_its_unfused_kernels_every_isa(block, isa):
    x, w, b, stride, padding = _block_args(block, 0)
    x[0, 0, 1, 1] = np.nan  # NaN stays NaN through the conv, the ReLU and the pool
    conv_shape, pooled, idx, codes = _unfused(x, w, b, stride, padding)
    y, got = cpu.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding)
    assert got.dtype == np.uint8 and got.shape == pooled.shape
    np.testing.assert_array_equal(y, pooled)  # the same arithmetic: bit for bit
    np.testing.assert_array_equal(got, codes)
    dy = inputs(y.shape, 1)
    dy.flat[3] = np.inf  # an inf gradient: NaN where it meets a zero, as the unfused kernels
    _assert_backward_is_unfused(dy, got, y, idx, pooled, conv_shape, x, w, stride, padding)


@pytest.mark.parametrize("algorithm", ["auto", "gemm", "winograd_2x2", "winograd_4x4"])
@pytest.mark.parametrize(
    "block",
    [
        ((2, 1, 12, 12), 4, 3, 1, 1, True),  # one channel: the direct path unless forced
        ((64, 32, 14, 14), 64, 3, 1, 1, True),  # the CNN's conv2: units of whole images
        ((1, 16, 37, 38), 8, 3, 1, 1, True),  # units of tile rows; an odd last row
        ((2, 5, 11, 9), 7, 3, 1, 0, False),
    ],
    ids=str,
)
def test_conv_block_follows_the_conv_algorithm_setting(block, algorithm):
    # Winograd pools each unit's rows as they leave its output transform: the same numbers as
    # the convolution's own output pooled afterwards, under every setting.
    x, w, b, stride, padding = _block_args(block, 3)
    x = np.maximum(x, 0)  # post-ReLU inputs, as in a CNN
    x[0, 0, 2, 3] = np.nan  # NaN windows pool to NaN, with the unfused pooling's codes
    saved = cpu.conv2d_algorithm
    cpu.conv2d_algorithm = algorithm
    try:
        conv_shape, pooled, idx, codes = _unfused(x, w, b, stride, padding)
        y, got = cpu.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding)
        y2, none = cpu.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding, need_codes=False)
    finally:
        cpu.conv2d_algorithm = saved
    np.testing.assert_array_equal(y, pooled)
    np.testing.assert_array_equal(got, codes)
    np.testing.assert_array_equal(y2, pooled)
    assert none is None
    # Backward: the implicit-GEMM dw and the Winograd dx read dz an image at a time, rebuilt
    # from the codes in a worker's scratch; the same numbers as the dense dz's conv2d_backward.
    dy = inputs(y.shape, 4)
    dy.flat[5] = np.inf
    cpu.conv2d_algorithm = algorithm
    try:
        _assert_backward_is_unfused(dy, got, y, idx, pooled, conv_shape, x, w, stride, padding)
        bad = got.copy()
        bad.flat[[0, 7]] = 200
        with pytest.raises(ValueError, match="2 codes are not 0..3"):
            cpu.conv2d_relu_maxpool2x2_backward(dy, bad, y, x, w, stride, padding)
    finally:
        cpu.conv2d_algorithm = saved


# The gathered weight gradient (several input channels, the automatic setting): per output
# channel, each window's g times the input patch under its argmax, a quarter of the dense
# product's multiply-adds. (x shape, output channels, kernel, stride, padding.)
GATHERED = [
    ((4, 32, 14, 14), 64, 3, 1, 1),  # the CNN's conv2: one register pass per patch (AVX-512)
    ((2, 16, 13, 11), 5, 3, 1, 1),  # odd sizes: a row and a column no window reads
    ((2, 8, 12, 9), 7, 5, 2, 2),  # stride 2 and a 5x5 kernel
    ((1, 64, 8, 8), 40, 3, 1, 0),  # 64 channels: two passes per patch; no padding
    ((2, 24, 6, 30), 3, 1, 1, 0),  # a 1x1 kernel
    ((3, 12, 40, 38), 6, 3, 1, 1),  # several bands of rows per image
    ((1, 16, 150, 150), 4, 3, 1, 1),  # past the gathered dx's scratch: dx by the dense paths
]


def _gathered_case(block, seed):
    x, w, b, stride, padding = _block_args(block + (True,), seed)
    x = np.maximum(x, 0)  # post-ReLU inputs, as in a CNN
    x[:, 1] = 0  # a dead input channel: its taps' gradient is exactly 0
    y, codes = cpu.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding)
    dy = inputs(y.shape, seed + 1)
    dy[:, 0] = 0  # an output channel without gradient: exactly 0 too
    return x, w, b, stride, padding, y, codes, dy


@pytest.mark.parametrize("block", GATHERED, ids=str)
def test_gathered_weight_gradient_every_isa(block, isa):
    x, w, b, stride, padding, y, codes, dy = _gathered_case(block, 12)
    dx, dw, db = cpu.conv2d_relu_maxpool2x2_backward(dy, codes, y, x, w, stride, padding)
    assert (dw[:, 1] == 0).all() and (dw[0] == 0).all() and db[0] == 0
    f64 = [a.astype(np.float64) for a in (dy, y, x, w)]
    rdx, rdw, rdb = reference.conv2d_relu_maxpool2x2_backward(
        f64[0], codes, f64[1], f64[2], f64[3], stride, padding
    )
    for a, e in ((dx, rdx), (dw, rdw), (db, rdb)):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5 * max(1, np.abs(e).max()))
    # and the same numbers as the dense dz's conv2d_backward, to rounding, every need flag
    conv_shape, pooled, idx, _ = _unfused(x, w, b, stride, padding)
    _assert_backward_is_unfused(dy, codes, y, idx, pooled, conv_shape, x, w, stride, padding)


@pytest.mark.parametrize("block", GATHERED[:3], ids=str)
def test_gathered_weight_gradient_keeps_the_dense_products_nan(block, isa):
    # An inf in x: the dense product's 0 * inf makes NaN in every tap that meets it, so an image
    # with a non-finite x lists all its pixels; an inf in dy makes NaN where it meets a zero x.
    x, w, b, stride, padding, y, codes, dy = _gathered_case(block, 14)
    x[0, 2, 3, 4] = np.inf
    y, codes = cpu.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding)
    dy.flat[7] = np.inf
    conv_shape, pooled, idx, _ = _unfused(x, w, b, stride, padding)
    _assert_backward_is_unfused(dy, codes, y, idx, pooled, conv_shape, x, w, stride, padding)
    dw = cpu.conv2d_relu_maxpool2x2_backward(dy, codes, y, x, w, stride, padding)[1]
    assert np.isnan(dw).any() and not np.isnan(dw).all()
    # An inf in w: the input gradient takes the dense paths (0 * inf is NaN wherever w reaches).
    w[1, 0, 0, 0] = np.inf
    _assert_backward_is_unfused(dy, codes, y, idx, pooled, conv_shape, x, w, stride, padding)


def test_gathered_weight_gradient_thread_count_and_bad_codes():
    x, w, b, stride, padding, y, codes, dy = _gathered_case(((64, 32, 14, 14), 64, 3, 1, 1), 16)
    assert 64 * 64 * 32 * 9 * 14 * 14 >= _C.build_config["parallel_min"]["macs"]
    before = fastdl.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            fastdl.set_num_threads(n)
            outs.append(cpu.conv2d_relu_maxpool2x2_backward(dy, codes, y, x, w, stride, padding))
    finally:
        fastdl.set_num_threads(before)
    for a, c in zip(*outs):
        np.testing.assert_array_equal(a, c)  # fixed groups of images, added in order
    bad = codes.copy()
    bad.flat[[3, 4000, 90000]] = [4, 255, 9]
    with pytest.raises(ValueError, match="3 codes are not 0..3"):
        cpu.conv2d_relu_maxpool2x2_backward(dy, bad, y, x, w, stride, padding, False, True, True)


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_conv_block_matches_reference(block):
    x, w, b, stride, padding = _block_args(block, 5)
    y, codes = cpu.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding)
    f64 = [None if a is None else a.astype(np.float64) for a in (x, w, b)]
    ry, rcodes = reference.conv2d_relu_maxpool2x2_forward(*f64, stride, padding)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)
    # a code may differ only where two candidates are within rounding of each other
    assert rcodes.dtype == np.uint8 and (codes == rcodes).mean() > 0.99
    dy = inputs(y.shape, 6)
    for need in NEEDS:
        got = cpu.conv2d_relu_maxpool2x2_backward(dy, codes, y, x, w, stride, padding, *need)
        want = reference.conv2d_relu_maxpool2x2_backward(
            dy.astype(np.float64), codes, y.astype(np.float64), *f64[:2], stride, padding, *need
        )
        for a, e in zip(got, want):
            assert (a is None) == (e is None)
            if e is not None:
                np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4 * max(1, np.abs(e).max()))


@pytest.mark.parametrize(
    "block",
    [BLOCKS[0], ((4, 32, 14, 14), 64, 3, 1, 1, True), ((2, 16, 13, 11), 8, 5, 2, 2, True)],
    ids=["conv1 (one channel)", "conv2 (gathered)", "5x5 stride 2 (gathered)"],
)
def test_conv_block_matches_torch(block):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, b, stride, padding = _block_args(block, 7)
    if block[0][1] > 1:
        x = np.maximum(x, 0)  # post-ReLU inputs, as in a CNN
    dy = inputs(cpu.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding)[0].shape, 8)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = F.max_pool2d(F.relu(F.conv2d(xt, wt, bt, stride, padding)), 2)
    yt.backward(torch.tensor(dy))
    y, codes = cpu.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding)
    dx, dw, db = cpu.conv2d_relu_maxpool2x2_backward(dy, codes, y, x, w, stride, padding)
    if block[0][1] == 1:
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    else:  # Winograd F(4x4) forward: within ~1e-5 of the output's scale
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5 * np.abs(y).max())
    for a, t in ((dx, xt), (dw, wt), (db, bt)):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_conv_block_thread_count_does_not_change_results():
    # the founding CNN's conv1 at batch 64: above the threshold where convolutions take threads
    x, w, b, stride, padding = _block_args(((64, 1, 28, 28), 32, 3, 1, 1, True), 9)
    dy = inputs((64, 32, 14, 14), 10)
    assert 64 * 32 * 9 * 28 * 28 >= _C.build_config["parallel_min"]["macs"]
    before = fastdl.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            fastdl.set_num_threads(n)
            y, codes = cpu.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding)
            grads = cpu.conv2d_relu_maxpool2x2_backward(dy, codes, y, x, w, stride, padding)
            outs.append((y, codes, *grads))
    finally:
        fastdl.set_num_threads(before)
    for a, c in zip(*outs):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("backend", [cpu, reference], ids=["cpu", "reference"])
def test_conv_block_buffers_and_inference(backend):
    x, w, b, stride, padding = _block_args(BLOCKS[1], 11)
    y_out = np.full((2, 5, 4, 5), np.nan, np.float32)
    c_out = np.full((2, 5, 4, 5), 9, np.uint8)
    y, codes = backend.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding, y_out, c_out)
    assert y is y_out and codes is c_out
    _, pooled, _, want = _unfused(x, w, b, stride, padding)
    np.testing.assert_allclose(y, pooled, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(codes, want)
    y2, none = backend.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding, need_codes=False)
    assert none is None
    np.testing.assert_array_equal(y2, y)
    with pytest.raises(ValueError, match="need_codes=False"):
        backend.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding, None, c_out, False)


def test_conv_block_bad_inputs_raise():
    x, w, b, stride, padding = _block_args(BLOCKS[1], 12)
    y, codes = cpu.conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding)
    for backend in (cpu, reference):
        bad = codes.copy()
        bad[1, 2, 3, 4] = 4
        with pytest.raises(ValueError, match=r"conv2d_relu_maxpool2x2_backward.*not 0\.\.3"):
            backend.conv2d_relu_maxpool2x2_backward(y, bad, y, x, w, stride, padding)
        with pytest.raises(ValueError, match="at least 2x2 to pool"):
            backend.conv2d_relu_maxpool2x2_forward(x[:, :, :3, :3].copy(), w, b, 1, 0)
    with pytest.raises(ValueError, match="codes must be uint8"):
        cpu.conv2d_relu_maxpool2x2_backward(y, codes.astype(np.int64), y, x, w, stride, padding)
    with pytest.raises(ValueError, match="dy must have shape"):
        cpu.conv2d_relu_maxpool2x2_backward(y[:, :, :3], codes, y, x, w, stride, padding)
    with pytest.raises(ValueError, match="y_out must have shape"):
        cpu.conv2d_relu_maxpool2x2_forward(
            x, w, b, stride, padding, np.zeros((2, 5, 4, 4), np.float32)
        )
    with pytest.raises(ValueError, match="codes_out.*uint8"):
        cpu.conv2d_relu_maxpool2x2_forward(
            x, w, b, stride, padding, None, np.zeros(y.shape, np.int64)
        )
    with pytest.raises(ValueError, match="bias has 3 elements"):
        cpu.conv2d_relu_maxpool2x2_forward(x, w, np.zeros(3, np.float32), stride, padding)
    with pytest.raises(ValueError, match="input channels"):
        cpu.conv2d_relu_maxpool2x2_forward(x, w[:, :0], b, stride, padding)


@pytest.mark.parametrize("backend", [cpu, reference], ids=["cpu", "reference"])
@pytest.mark.parametrize("channels", [1, 3])  # the one-channel path and the unfused one
def test_conv_block_of_an_empty_batch(backend, channels):
    x = np.zeros((0, channels, 8, 8), np.float32)
    w, b = np.ones((4, channels, 3, 3), np.float32), np.ones(4, np.float32)
    y, codes = backend.conv2d_relu_maxpool2x2_forward(x, w, b, 1, 1)
    assert y.shape == codes.shape == (0, 4, 4, 4)
    dx, dw, db = backend.conv2d_relu_maxpool2x2_backward(y, codes, y, x, w, 1, 1)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw, np.zeros_like(w))  # empty sums, as conv2d_backward's
    np.testing.assert_array_equal(db, np.zeros(4, np.float32))
