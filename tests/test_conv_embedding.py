"""Conv2d with groups and dilation, Conv1d, Embedding (issue 11): PyTorch's numbers (forward, input
and parameter gradients on the same weights), repr, state_dict, initialisation and errors; float64
finite-difference checks of the grouped/dilated conv and the embedding backward. Runs on the CPU
and with --device strict."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastdl
import fastdl.nn as nn
import fastdl.nn.functional as F
from gradcheck import assert_grad_close, numerical_grad

# PyTorch warns that its own even-kernel padding='same' may copy the input.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

TORCH_REASON = "PyTorch is not installed; the comparisons with it are skipped"


def _torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)


def _np(t):
    return np.asarray(t.detach().numpy())


def _torch_twin(module, torch_module):
    """torch_module with module's weights."""
    torch = _torch()
    torch_module.load_state_dict(
        {k: torch.tensor(_np(v)) for k, v in module.state_dict().items()}
    )
    return torch_module


def _check_against_torch(module, torch_module, x, atol=1e-5):
    """Forward, input gradient and every parameter gradient of module against torch_module."""
    torch = _torch()
    torch_module = _torch_twin(module, torch_module)
    xf = fastdl.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yf, yt = module(xf), torch_module(xt)
    assert tuple(yf.shape) == tuple(yt.shape)
    np.testing.assert_allclose(_np(yf), yt.detach().numpy(), rtol=1e-4, atol=atol)
    dy = np.random.default_rng(1).standard_normal(tuple(yt.shape)).astype(np.float32)
    yf.backward(fastdl.tensor(dy))
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(_np(xf.grad), xt.grad.numpy(), rtol=1e-4, atol=atol)
    torch_params = dict(torch_module.named_parameters())
    for name, p in module.named_parameters():
        np.testing.assert_allclose(
            _np(p.grad), torch_params[name].grad.numpy(), rtol=1e-4, atol=10 * atol,
            err_msg=name,
        )


# ---------------------------------------------------------------- Conv2d

CONV2D_CASES = [
    dict(in_channels=4, out_channels=6, kernel_size=3, groups=2),
    dict(in_channels=4, out_channels=4, kernel_size=3, groups=4, padding=1),  # depthwise
    dict(in_channels=3, out_channels=6, kernel_size=(3, 2), groups=3, bias=False),  # multiplier 2
    dict(in_channels=2, out_channels=3, kernel_size=3, dilation=2),
    dict(in_channels=4, out_channels=8, kernel_size=(2, 3), dilation=(3, 2), stride=(2, 1),
         padding=(2, 1), groups=2),
    dict(in_channels=4, out_channels=4, kernel_size=2, padding="same", dilation=3, groups=2),
    dict(in_channels=2, out_channels=2, kernel_size=(2, 4), padding="same"),  # even kernel
    dict(in_channels=3, out_channels=5, kernel_size=3, padding="valid", dilation=(1, 2)),
]


def _case_id(kwargs):
    return ",".join(f"{a}={b}" for a, b in kwargs.items())


def _check_conv_against_torch(name, kwargs, x_shape):
    """nn.<name>(**kwargs) against torch.nn.<name>: repr, state_dict keys, weight shape, then
    forward and gradients on an x of x_shape."""
    torch = _torch()
    fastdl.manual_seed(0)
    m = getattr(nn, name)(**kwargs)
    t = getattr(torch.nn, name)(**kwargs)
    assert repr(m) == repr(t)
    assert list(m.state_dict()) == list(t.state_dict())
    assert tuple(m.weight.shape) == tuple(t.weight.shape)
    x = np.random.default_rng(0).standard_normal(x_shape)
    _check_against_torch(m, t, x.astype(np.float32))


@pytest.mark.parametrize("kwargs", CONV2D_CASES, ids=_case_id)
def test_conv2d_groups_dilation_match_torch(kwargs):
    _check_conv_against_torch("Conv2d", kwargs, (2, kwargs["in_channels"], 9, 10))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    groups=st.integers(1, 3),
    cin_per=st.integers(1, 2),
    kout_per=st.integers(1, 2),
    r=st.integers(1, 3),
    s=st.integers(1, 3),
    dh=st.integers(1, 3),
    dw=st.integers(1, 3),
    sh=st.integers(1, 2),
    sw=st.integers(1, 2),
    ph=st.integers(0, 2),
    pw=st.integers(0, 2),
    n=st.integers(1, 2),
)
def test_conv2d_hypothesis_shapes_match_torch(groups, cin_per, kout_per, r, s, dh, dw, sh, sw,
                                              ph, pw, n):
    torch = _torch()
    c, k = groups * cin_per, groups * kout_per
    h = w = 8
    rng = np.random.default_rng(groups * 100 + r * 10 + s)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, cin_per, r, s)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    args = dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
    xf, wf, bf = (fastdl.tensor(a, requires_grad=True) for a in (x, wt, b))
    xt, wtt, bt = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    yf = F.conv2d(xf, wf, bf, **args)
    yt = torch.nn.functional.conv2d(xt, wtt, bt, **args)
    np.testing.assert_allclose(_np(yf), yt.detach().numpy(), rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yf.backward(fastdl.tensor(dy))
    yt.backward(torch.tensor(dy))
    for a, b_ in ((xf, xt), (wf, wtt), (bf, bt)):
        np.testing.assert_allclose(_np(a.grad), b_.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_conv2d_groups_dilation_gradcheck_float64():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 6, 7))
    w = rng.standard_normal((6, 2, 2, 3))
    b = rng.standard_normal(6)
    args = dict(stride=(1, 2), padding=(1, 2), dilation=(2, 1), groups=2)
    dy = rng.standard_normal(tuple(F.conv2d(*(fastdl.tensor(a) for a in (x, w, b)), **args).shape))

    def loss(x, w, b):
        y = F.conv2d(fastdl.tensor(x), fastdl.tensor(w), fastdl.tensor(b), **args)
        return float((_np(y) * dy).sum())

    tensors = [fastdl.tensor(a, requires_grad=True) for a in (x, w, b)]
    F.conv2d(*tensors, **args).backward(fastdl.tensor(dy))
    for i, name in enumerate(("x", "w", "b")):
        assert_grad_close(_np(tensors[i].grad), numerical_grad(loss, [x, w, b], i), name=name)


def test_conv2d_plain_path_unchanged():
    # groups = dilation = 1 runs the direct kernel op, not the grouped one.
    y = nn.Conv2d(2, 3, 3)(fastdl.randn(1, 2, 5, 5))
    assert type(y.grad_fn).__module__ == "fastdl._functions"
    y = nn.Conv2d(2, 4, 3, groups=2)(fastdl.randn(1, 2, 5, 5))
    assert type(y.grad_fn).__name__ == "Conv2dGrouped"


def test_conv2d_unbatched_and_zero_batch():
    torch = _torch()
    m = nn.Conv2d(4, 6, 3, groups=2, dilation=2)
    t = _torch_twin(m, torch.nn.Conv2d(4, 6, 3, groups=2, dilation=2))
    x = np.random.default_rng(3).standard_normal((4, 7, 7)).astype(np.float32)
    np.testing.assert_allclose(_np(m(fastdl.tensor(x))), t(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    assert tuple(m(fastdl.zeros(0, 4, 7, 7)).shape) == (0, 6, 3, 3)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_conv2d_init_bounds_and_state_dict(groups):
    fastdl.manual_seed(0)
    m = nn.Conv2d(8, 4, 3, groups=groups)
    assert tuple(m.weight.shape) == (4, 8 // groups, 3, 3)
    assert list(m.state_dict()) == ["weight", "bias"]
    bound = 1 / math.sqrt(8 // groups * 9)
    for p in (m.weight, m.bias):
        assert np.abs(_np(p)).max() <= bound
    m2 = nn.Conv2d(8, 4, 3, groups=groups)
    m2.load_state_dict(m.state_dict())
    x = fastdl.randn(1, 8, 5, 5)
    np.testing.assert_array_equal(_np(m2(x)), _np(m(x)))


def test_conv_bad_arguments():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.Conv1d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        nn.Conv2d(4, 4, 3, groups=0)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv1d(4, 4, 3, stride=2, padding="same")
    with pytest.raises(RuntimeError, match=r"\[conv2d\] weight has 6 input channels, input has 4"):
        F.conv2d(fastdl.randn(1, 4, 5, 5), fastdl.randn(6, 3, 3, 3), groups=2)
    with pytest.raises(RuntimeError, match=r"\[conv2d\] given groups=4, expected weight"):
        F.conv2d(fastdl.randn(1, 4, 5, 5), fastdl.randn(6, 1, 3, 3), groups=4)
    with pytest.raises(RuntimeError, match=r"\[conv2d\] kernel size \(5, 5\) is larger"):
        F.conv2d(fastdl.randn(1, 1, 4, 4), fastdl.randn(1, 1, 3, 3), dilation=2)
    with pytest.raises(RuntimeError, match=r"\[conv2d\] dilation must be >= 1"):
        F.conv2d(fastdl.randn(1, 1, 4, 4), fastdl.randn(1, 1, 3, 3), dilation=0)
    with pytest.raises(RuntimeError, match=r"\[conv1d\] expected a 3-D weight"):
        F.conv1d(fastdl.randn(1, 1, 4), fastdl.randn(1, 1, 3, 3))


# ---------------------------------------------------------------- Conv1d

CONV1D_CASES = [
    dict(in_channels=3, out_channels=5, kernel_size=3),
    dict(in_channels=4, out_channels=6, kernel_size=4, stride=2, padding=1, groups=2),
    dict(in_channels=4, out_channels=4, kernel_size=3, dilation=2, groups=4, bias=False),
    dict(in_channels=2, out_channels=4, kernel_size=4, padding="same", dilation=3),
    dict(in_channels=2, out_channels=4, kernel_size=(5,), padding=(2,), stride=(3,)),
]


@pytest.mark.parametrize("kwargs", CONV1D_CASES, ids=_case_id)
def test_conv1d_matches_torch(kwargs):
    _check_conv_against_torch("Conv1d", kwargs, (3, kwargs["in_channels"], 17))


def test_conv1d_functional_unbatched_and_init():
    torch = _torch()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 11)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3)).astype(np.float32)
    yf = F.conv1d(fastdl.tensor(x), fastdl.tensor(w), None, 2, 1, 2, 2)
    yt = torch.nn.functional.conv1d(torch.tensor(x), torch.tensor(w), None, 2, 1, 2, 2)
    np.testing.assert_allclose(_np(yf), yt.numpy(), rtol=1e-4, atol=1e-5)
    fastdl.manual_seed(0)
    m = nn.Conv1d(6, 3, 5, groups=3)
    bound = 1 / math.sqrt(2 * 5)
    assert np.abs(_np(m.weight)).max() <= bound and np.abs(_np(m.bias)).max() <= bound
    assert np.abs(_np(m.weight)).max() > bound / 2  # drawn over the whole range


# ---------------------------------------------------------------- Embedding


@pytest.mark.parametrize("padding_idx", [None, 0, 3, -2])
def test_embedding_matches_torch(padding_idx):
    torch = _torch()
    fastdl.manual_seed(0)
    m = nn.Embedding(7, 4, padding_idx=padding_idx)
    t = _torch_twin(m, torch.nn.Embedding(7, 4, padding_idx=padding_idx))
    assert repr(m) == repr(t)
    assert list(m.state_dict()) == ["weight"]
    if padding_idx is not None:
        assert np.all(_np(m.weight)[padding_idx] == 0)
    idx = np.array([[0, 3, 3, 6], [5, 0, 1, 3], [3, 3, 2, 5]], dtype=np.int64)
    yf, yt = m(fastdl.tensor(idx)), t(torch.tensor(idx))
    np.testing.assert_array_equal(_np(yf), yt.detach().numpy())
    dy = np.random.default_rng(0).standard_normal(tuple(yt.shape)).astype(np.float32)
    yf.backward(fastdl.tensor(dy))
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(_np(m.weight.grad), t.weight.grad.numpy(), rtol=1e-5, atol=1e-6)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=3),
    num=st.integers(1, 6),
    dim=st.integers(1, 3),
    seed=st.integers(0, 10),
)
def test_embedding_hypothesis_shapes_match_torch(shape, num, dim, seed):
    torch = _torch()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num, size=tuple(shape))
    w = rng.standard_normal((num, dim)).astype(np.float32)
    wf, wt = fastdl.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    yf = F.embedding(fastdl.tensor(idx), wf)
    yt = torch.nn.functional.embedding(torch.tensor(idx), wt)
    np.testing.assert_array_equal(_np(yf), yt.detach().numpy())
    dy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yf.backward(fastdl.tensor(dy))
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(_np(wf.grad), wt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_embedding_gradcheck_float64():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((5, 3))
    idx = fastdl.tensor(np.array([[1, 4, 1], [0, 2, 1]]))
    dy = rng.standard_normal((2, 3, 3))

    def loss(w):
        return float((_np(F.embedding(idx, fastdl.tensor(w))) * dy).sum())

    wf = fastdl.tensor(w, requires_grad=True)
    F.embedding(idx, wf, padding_idx=4).backward(fastdl.tensor(dy))
    numeric = numerical_grad(loss, [w], 0)
    numeric[4] = 0  # the padding row gets no gradient
    assert_grad_close(_np(wf.grad), numeric)


def test_embedding_init_and_from_pretrained():
    fastdl.manual_seed(0)
    w = _np(nn.Embedding(400, 50).weight)
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02  # N(0, 1)
    table = fastdl.tensor(np.arange(12, dtype=np.float32).reshape(4, 3))
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(_np(frozen(fastdl.tensor([2]))), [[6, 7, 8]])
    trainable = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=1)
    assert trainable.weight.requires_grad and trainable.padding_idx == 1
    assert repr(trainable) == "Embedding(4, 3, padding_idx=1)"
    np.testing.assert_array_equal(_np(trainable.weight)[1], [3, 4, 5])  # not zeroed (PyTorch's)
    trainable(fastdl.tensor([1, 2, 1])).sum().backward()
    np.testing.assert_array_equal(_np(trainable.weight.grad), [[0] * 3, [0] * 3, [1] * 3, [0] * 3])
    m = nn.Embedding(4, 3)
    m.load_state_dict(frozen.state_dict())
    np.testing.assert_array_equal(_np(m.weight), _np(table))


def test_embedding_bad_arguments():
    w = fastdl.randn(5, 3)
    with pytest.raises(IndexError, match=r"\[embedding\] index out of range"):
        F.embedding(fastdl.tensor([0, 5]), w)
    with pytest.raises(IndexError, match=r"\[embedding\] index out of range"):
        F.embedding(fastdl.tensor([-1]), w)
    with pytest.raises(RuntimeError, match=r"\[embedding\] expected indices of an integer"):
        F.embedding(fastdl.tensor([0.0]), w)
    with pytest.raises(NotImplementedError, match=r"\[Embedding\] max_norm"):
        nn.Embedding(5, 3, max_norm=1.0)
    with pytest.raises(NotImplementedError, match=r"\[embedding\] max_norm"):
        F.embedding(fastdl.tensor([0]), w, max_norm=1.0)
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(5, 3, padding_idx=5)


def test_nn_exports():
    assert nn.Conv1d is nn.modules.Conv1d and nn.Embedding is nn.sparse.Embedding
    assert F.conv1d and F.embedding and "conv1d" in F.__all__ and "Embedding" in nn.__all__
