"""Tensor ops of issue 11 item 3 (fastdl/ops/tensor_ops.py): values, dtypes, shapes and input
gradients against PyTorch (one helper, `same`), float64 finite differences where cheap, and
PyTorch's errors for bad arguments. Runs on the strict device too (`--device strict`)."""

import math

import fastdl
import numpy as np
import pytest
from gradcheck import assert_grad_close, numerical_grad
from hypothesis import given, settings
from hypothesis import strategies as st

TORCH_REASON = "PyTorch is not installed: the parity tests compare against it"


def _torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)


def _outputs(y):
    return list(y) if isinstance(y, (tuple, list)) else [y]


def same(f, *arrays, atol=1e-5, rtol=1e-5, grad=True):
    """f(lib, *tensors) on fastdl and on torch, from the same NumPy arrays (float arrays require
    grad): outputs (values, dtype, shape) and every float input's gradient of a fixed random
    weighting of the float outputs match."""
    torch = _torch()
    ours = [fastdl.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    yo, yt = _outputs(f(fastdl, *ours)), _outputs(f(torch, *theirs))
    assert len(yo) == len(yt)
    rng = np.random.default_rng(1)
    lo, lt = None, None
    for a, b in zip(yo, yt):
        if isinstance(b, bool):
            assert a == b
            continue
        assert tuple(a.shape) == tuple(b.shape), (a.shape, b.shape)
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1], (a.dtype, b.dtype)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=atol)
        if grad and b.requires_grad:
            w = rng.standard_normal(tuple(b.shape))
            lo_part = (a * fastdl.tensor(w.astype(a.detach().numpy().dtype))).sum()
            lt_part = (b * torch.tensor(w.astype(b.detach().numpy().dtype))).sum()
            lo = lo_part if lo is None else lo + lo_part
            lt = lt_part if lt is None else lt + lt_part
    if lt is None:
        return
    lt.backward()
    lo.backward()
    for a, b in zip(ours, theirs):
        if b.requires_grad:
            gb = np.zeros(b.shape) if b.grad is None else b.grad.numpy()
            ga = np.zeros(b.shape) if a.grad is None else a.grad.numpy()
            np.testing.assert_allclose(ga, gb, rtol=rtol, atol=atol)


def fd_check(f, *arrays):
    """Float64 finite differences of sum(f(x) * dy) against fastdl's backward (arrays[0])."""
    arrays = [np.asarray(a, np.float64) for a in arrays]
    x = fastdl.tensor(arrays[0], requires_grad=True)
    y = f(x, *[fastdl.tensor(a) for a in arrays[1:]])
    dy = np.random.default_rng(2).standard_normal(tuple(y.shape))
    (y * fastdl.tensor(dy)).sum().backward()

    def loss(a, *rest):
        out = f(fastdl.tensor(a), *[fastdl.tensor(r) for r in rest]).detach().numpy()
        return float((out * dy).sum())

    assert_grad_close(x.grad.numpy(), numerical_grad(loss, arrays, 0), atol=1e-6, rtol=1e-5)


RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)


# ---------------------------------------------------------------- splitting


@SETTINGS
@given(shape=shapes, size=st.integers(1, 4), data=st.data())
def test_split_chunk_unbind(shape, size, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = rand(*shape)
    same(lambda m, t: m.split(t, size, dim), x)
    same(lambda m, t: t.chunk(size, dim), x)
    same(lambda m, t: m.unbind(t, dim), x)


def test_split_sections_and_views():
    x = rand(7, 3)
    same(lambda m, t: t.split([2, 0, 5]), x)
    pieces = fastdl.tensor(x).split(3)
    assert [tuple(p.shape) for p in pieces] == [(3, 3), (3, 3), (1, 3)]
    assert pieces[0]._base is not None  # views, as PyTorch's
    same(lambda m, t: m.chunk(t, 4, 0), rand(0, 2))


def test_split_errors():
    x = fastdl.ones(5)
    with pytest.raises(RuntimeError, match=r"\[split\] split_with_sizes"):
        x.split([2, 2])
    with pytest.raises(RuntimeError, match=r"\[chunk\]"):
        x.chunk(0)
    with pytest.raises(IndexError, match=r"\[split\] dim 3"):
        x.split(2, 3)


# ---------------------------------------------------------------- gathering, scattering


def rand_along(shape, data):
    """A random x of shape, a dim drawn from its dims and that dim's size."""
    dim = data.draw(st.integers(0, len(shape) - 1))
    return rand(*shape), dim, shape[dim]


@SETTINGS
@given(shape=shapes, data=st.data())
def test_index_select_gather(shape, data):
    x, dim, n = rand_along(shape, data)
    idx = np.asarray(data.draw(st.lists(st.integers(0, n - 1), min_size=0, max_size=5)), np.int64)
    same(lambda m, t, i: m.index_select(t, dim, i), x, idx)
    gshape = tuple(data.draw(st.integers(1, s)) if d != dim else 3 for d, s in enumerate(shape))
    gidx = np.random.default_rng(len(gshape)).integers(0, n, gshape)
    same(lambda m, t, i: m.gather(t, dim, i), x, gidx)
    same(lambda m, t, i: t.gather(dim - len(shape), i), x, gidx)


@SETTINGS
@given(shape=shapes, data=st.data())
def test_scatter_and_scatter_add(shape, data):
    x, dim, n = rand_along(shape, data)
    ishape = tuple(
        data.draw(st.integers(1, s)) if d != dim else data.draw(st.integers(1, n))
        for d, s in enumerate(shape)
    )
    src = rand(*ishape)
    big = rand(*[s + 1 for s in ishape])  # src larger than index: its leading corner is used
    # scatter wants distinct positions along dim (PyTorch leaves repeated writes unspecified)
    rng = np.random.default_rng(n)
    idx = np.argsort(rng.random(shape), axis=dim)[tuple(slice(0, s) for s in ishape)]
    same(lambda m, t, i, s: t.scatter(dim, i, s), x, idx, src)
    same(lambda m, t, i: t.scatter(dim, i, 2.5), x, idx)
    same(lambda m, t, i, s: t.scatter(dim, i, s), x, idx, big, grad=False)
    rep = rng.integers(0, n, ishape)  # repeated positions add up
    same(lambda m, t, i, s: m.scatter_add(t, dim, i, s), x, rep, src)


def test_scatter_in_place():
    _torch()
    x = rand(3, 4)
    idx = np.array([[0, 1, 2, 0]])
    src = rand(1, 4)

    def f(m, t, i, s):
        y = t * 1
        y.scatter_(0, i, s)
        z = t * 1
        return y, z.scatter_add_(0, i, s)

    same(f, x, idx, src)


def test_gather_scatter_errors():
    x = fastdl.ones(2, 3)
    with pytest.raises(IndexError, match=r"\[gather\] index 3 is out of bounds"):
        x.gather(1, fastdl.tensor([[3]]))
    with pytest.raises(TypeError, match=r"\[gather\] expected index to have dtype int64"):
        x.gather(1, fastdl.tensor([[1.0]]))
    with pytest.raises(RuntimeError, match=r"\[gather\] Index tensor must have the same number"):
        x.gather(1, fastdl.tensor([1]))
    with pytest.raises(IndexError, match=r"\[index_select\]"):
        x.index_select(0, fastdl.tensor([2]))
    with pytest.raises(RuntimeError, match=r"\[scatter\] Expected self.dtype"):
        x.scatter(0, fastdl.tensor([[0]]), fastdl.ones(1, 1, dtype=fastdl.float64))
    with pytest.raises(NotImplementedError, match=r"\[scatter\] reduce"):
        x.scatter(0, fastdl.tensor([[0]]), 1.0, reduce="add")


def test_masked_select():
    x = rand(3, 4)
    mask = RNG.random((4,)) > 0.5
    same(lambda m, t, k: m.masked_select(t, k), x, mask)
    same(lambda m, t, k: t.masked_select(k), x, RNG.random((3, 4)) > 0.3)
    with pytest.raises(RuntimeError, match=r"\[masked_select\] expected a bool mask"):
        fastdl.tensor(x).masked_select(fastdl.tensor([1, 0, 1, 1]))


# ---------------------------------------------------------------- ordering


@SETTINGS
@given(shape=shapes, data=st.data(), descending=st.booleans())
def test_sort_argsort_topk(shape, data, descending):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = RNG.permutation(math.prod(shape)).reshape(shape).astype(np.float32)  # no ties
    same(lambda m, t: m.sort(t, dim, descending), x)
    same(lambda m, t: t.sort(dim=dim, descending=descending, stable=True), x)
    same(lambda m, t: m.argsort(t, dim, descending), x)
    k = data.draw(st.integers(0, shape[dim]))
    same(lambda m, t: m.topk(t, k, dim, largest=descending), x)
    same(lambda m, t: t.topk(k, dim)[0], x)


def test_sort_nan_and_ties_like_torch():
    x = np.array([3.0, np.nan, 1.0, 3.0, -np.inf, 1.0], np.float32)
    same(lambda m, t: m.sort(t, stable=True), x, grad=False)
    same(lambda m, t: m.sort(t, descending=True, stable=True), x, grad=False)
    with pytest.raises(IndexError, match=r"\[topk\] selected index k out of range"):
        fastdl.ones(3).topk(4)


@SETTINGS
@given(shape=shapes, data=st.data())
def test_cumsum_cumprod(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = rand(*shape)
    same(lambda m, t: m.cumsum(t, dim), x)
    same(lambda m, t: t.cumprod(dim), x, atol=1e-4)
    xi = RNG.integers(-3, 4, shape)
    same(lambda m, t: m.cumsum(t, dim), xi)
    same(lambda m, t: t.cumsum(dim, dtype=m.float64), x)


def test_cumprod_gradient_with_zeros():
    x = np.array([[2.0, 0.0, 3.0, 0.0, 1.5], [0.0, 1.0, 2.0, -1.0, 4.0]], np.float32)
    same(lambda m, t: m.cumprod(t, 1), x)
    fd_check(lambda t: t.cumprod(1), x)
    fd_check(lambda t: t.cumprod(0), x)


# ---------------------------------------------------------------- rearranging


@SETTINGS
@given(shape=shapes, data=st.data())
def test_repeat_tile_flip_roll(shape, data):
    x = rand(*shape)
    reps = tuple(
        data.draw(st.lists(st.integers(0, 3), min_size=len(shape), max_size=len(shape) + 2))
    )
    same(lambda m, t: t.repeat(*reps), x)
    same(lambda m, t: m.tile(t, reps[:-1] or (2,)), x)
    dims = tuple(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1)))
    same(lambda m, t: m.flip(t, dims), x)
    shifts = tuple(data.draw(st.integers(-5, 5)) for _ in dims)
    same(lambda m, t: m.roll(t, shifts, dims), x)
    same(lambda m, t: t.roll(shifts[0]), x)


@pytest.mark.parametrize("diagonal", [-2, -1, 0, 1, 3])
def test_tril_triu(diagonal):
    x = rand(2, 3, 4)
    same(lambda m, t: m.tril(t, diagonal), x)
    same(lambda m, t: t.triu(diagonal), x)
    same(lambda m, t: m.triu(t, diagonal), RNG.integers(0, 9, (4, 3)))
    with pytest.raises(RuntimeError, match=r"\[tril\]"):
        fastdl.ones(3).tril()


# ---------------------------------------------------------------- linear algebra


@pytest.mark.parametrize("p", [1, 2, 3, 0.5, math.inf, -math.inf, 0, -1])
@pytest.mark.parametrize("dim", [None, 1, (0, 2), -1])
def test_vector_norm(p, dim):
    x = rand(2, 3, 4)
    same(lambda m, t: m.linalg.vector_norm(t, p, dim), x, atol=1e-4, rtol=1e-4)
    same(lambda m, t: m.linalg.vector_norm(t, p, dim, keepdim=True), x, atol=1e-4, rtol=1e-4)
    if p not in (0, -1) and dim != (0, 2):
        same(lambda m, t: t.norm(p, dim), x, atol=1e-4, rtol=1e-4)


def test_norm_forms_and_zero_gradient():
    x = rand(3, 4)
    same(lambda m, t: t.norm(), x)
    same(lambda m, t: m.norm(t, dim=1, keepdim=True), x)
    same(lambda m, t: m.linalg.norm(t), x)
    same(lambda m, t: m.linalg.norm(t, dim=0), x)
    for ord in ("fro", 1, -1, math.inf, -math.inf):
        same(lambda m, t, o=ord: m.linalg.norm(t, o), x)
        same(lambda m, t, o=ord: m.linalg.matrix_norm(t, o, keepdim=True), x)
    same(lambda m, t: m.linalg.vector_norm(t), np.zeros((3,), np.float32))  # gradient 0, not NaN
    fd_check(lambda t: fastdl.linalg.vector_norm(t, 3, 1), rand(3, 4))
    with pytest.raises(RuntimeError, match=r"\[linalg.vector_norm\] Expected a floating point"):
        fastdl.linalg.vector_norm(fastdl.tensor([1, 2]))


def test_bmm_baddbmm():
    a, b, c = rand(3, 2, 4), rand(3, 4, 5), rand(3, 2, 5)
    same(lambda m, x, y: m.bmm(x, y), a, b)
    same(lambda m, i, x, y: m.baddbmm(i, x, y, beta=0.5, alpha=2.0), c, a, b)
    same(lambda m, i, x, y: i[0].baddbmm(x, y), c, a, b)
    with pytest.raises(RuntimeError, match=r"\[bmm\] batch1 must be a 3D"):
        fastdl.ones(2, 3).bmm(fastdl.ones(3, 2))
    with pytest.raises(RuntimeError, match=r"\[bmm\] Expected size"):
        fastdl.ones(2, 2, 3).bmm(fastdl.ones(2, 2, 3))


EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(5,), (5,)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ijk->", [(2, 3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("b...,b...->b", [(2, 3, 4), (2, 3, 4)]),
    ("...j,...ij->...i", [(4,), (2, 3, 4)]),
    ("i...,...->...", [(3, 1, 4), (2, 4)]),
    ("ij,kj", [(3, 4), (5, 4)]),
    ("ijk,ikl->jl", [(2, 3, 4), (2, 4, 5)]),
    ("ij,j->i", [(3, 4), (1,)]),
]


@pytest.mark.parametrize("equation, shapes", EINSUMS)
def test_einsum(equation, shapes):
    arrays = [rand(*s) for s in shapes]
    same(lambda m, *ts: m.einsum(equation, *ts), *arrays, atol=1e-4, rtol=1e-4)
    same(lambda m, *ts: m.einsum(equation, list(ts)), *arrays, atol=1e-4, rtol=1e-4)


def test_einsum_gradient_and_errors():
    fd_check(lambda x, y: fastdl.einsum("bij,bjk->bik", x, y), rand(2, 3, 4), rand(2, 4, 2))
    with pytest.raises(RuntimeError, match=r"\[einsum\] the equation has 2 operands"):
        fastdl.einsum("ij,jk->ik", fastdl.ones(2, 2))
    with pytest.raises(RuntimeError, match=r"\[einsum\] the subscripts"):
        fastdl.einsum("ijk->i", fastdl.ones(2, 2))


# ---------------------------------------------------------------- tests and comparisons


def test_isnan_isinf_isfinite():
    x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0], np.float32)
    for name in ("isnan", "isinf", "isfinite"):
        same(lambda m, t, n=name: getattr(m, n)(t), x, grad=False)
        same(lambda m, t, n=name: getattr(t, n)(), x, grad=False)
    same(lambda m, t: m.isnan(t), np.array([1, 2]), grad=False)


def test_isclose_allclose_equal():
    a = np.array([1.0, np.nan, np.inf, 2.0, 1e-9, -np.inf], np.float32)
    b = np.array([1.0 + 1e-6, np.nan, np.inf, 2.1, 0.0, np.inf], np.float32)
    for kwargs in ({}, {"equal_nan": True}, {"rtol": 0.1}, {"atol": 0.0, "rtol": 0.0}):
        same(lambda m, x, y, kw=kwargs: m.isclose(x, y, **kw), a, b, grad=False)
        same(lambda m, x, y, kw=kwargs: x.allclose(y, **kw), a, b, grad=False)
    same(lambda m, x, y: m.isclose(x, y, atol=1), np.array([1, 5]), np.array([2, 7]), grad=False)
    same(lambda m, x, y: m.equal(x, y), a[[0, 3]], a[[0, 3]], grad=False)
    same(lambda m, x, y: m.equal(x, y), a[:2], a[:3], grad=False)
    same(lambda m, x, y: x.equal(y), a[[0, 3]], b[[0, 3]], grad=False)


def test_unique():
    x = np.array([[3, 1, 2], [1, 3, 7]])
    same(lambda m, t: m.unique(t), x, grad=False)
    same(lambda m, t: t.unique(return_inverse=True, return_counts=True), x, grad=False)
    same(lambda m, t: m.unique(t, return_counts=True), rand(4, 2), grad=False)


def test_clamp_with_tensor_bounds():
    x = rand(3, 4)
    lo = rand(4) - 0.5
    hi = lo + np.abs(rand(3, 1))
    same(lambda m, t, a, b: t.clamp(a, b), x, lo, hi)
    same(lambda m, t, a: m.clamp(t, min=a), x, lo)
    same(lambda m, t, b: t.clamp(max=b), x, hi)
    same(lambda m, t, a, b: t.clamp(a, b), x, hi, lo)  # min > max: the result is max
    fd_check(lambda t, a, b: t.clamp(a, b), x + 0.01, lo, hi)


def test_lerp():
    a, b, w = rand(3, 4), rand(3, 4), RNG.random((4,)).astype(np.float32)
    same(lambda m, x, y: x.lerp(y, 0.3), a, b)
    same(lambda m, x, y: m.lerp(x, y, 0.8), a, b)
    same(lambda m, x, y, z: m.lerp(x, y, z), a, b, w)


# ---------------------------------------------------------------- edge cases


def test_zero_dim_and_empty_inputs():
    s = np.array(2.5, np.float32)
    same(lambda m, t: m.sort(t), s)
    same(lambda m, t: m.topk(t, 1), s)
    same(lambda m, t: m.cumsum(t, 0), s)
    same(lambda m, t: m.cumprod(t, 0), s)
    same(lambda m, t: m.flip(t, [0]), rand(3))
    same(lambda m, t, i: m.gather(t, 0, i), s, np.array(0))
    same(lambda m, t, i: m.index_select(t, 0, i), s, np.array([0]))
    same(lambda m, t, i: m.index_select(t, 0, i), rand(3), np.array(1))
    e = rand(0, 3)
    same(lambda m, t: m.sort(t, 0), e)
    same(lambda m, t: m.cumsum(t, 1), e)
    same(lambda m, t: t.repeat(2, 2), e)
    same(lambda m, t: m.linalg.vector_norm(t, dim=0), e)
    same(lambda m, t: m.tril(t), e)
    same(lambda m, t: m.einsum("ij->j", t), e)


def test_argument_errors():
    x = fastdl.ones(2, 3)
    with pytest.raises(RuntimeError, match=r"\[repeat\] Number of dimensions"):
        x.repeat(2)
    with pytest.raises(RuntimeError, match=r"\[roll\] shifts and dimensions must align"):
        x.roll((1, 2), 0)
    with pytest.raises(RuntimeError, match=r"\[flip\] dims has duplicates"):
        x.flip(0, 0)
    with pytest.raises(IndexError, match=r"\[cumsum\] dim 2"):
        x.cumsum(2)
    with pytest.raises(RuntimeError, match=r"\[isclose\]"):
        x.isclose(fastdl.ones(2, 3, dtype=fastdl.float64))
    with pytest.raises(NotImplementedError, match=r"\[unique\] dim"):
        x.unique(dim=0)
    with pytest.raises(RuntimeError, match=r"\[lerp\] expected dtype"):
        x.lerp(fastdl.ones(2, 3, dtype=fastdl.float64), 0.5)
    with pytest.raises(RuntimeError, match=r"\[clamp\] the bounds do not broadcast"):
        x.clamp(fastdl.ones(4))


def test_modified_saved_input_is_refused():
    x = fastdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    n = fastdl.linalg.vector_norm(y)
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        n.backward()
