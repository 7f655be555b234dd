"""Normalisation and pooling layers (BatchNorm1d/2d, LayerNorm, GroupNorm, Dropout2d, AvgPool1d/2d,
MaxPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool2d) and their functional forms: forward and every
gradient against PyTorch on the same inputs and weights, gradients against finite differences
in float64, running statistics, state_dict keys and round trips, repr, and bad arguments."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastdl
import fastdl.nn as nn
import fastdl.nn.functional as F
from gradcheck import assert_grad_close, numerical_grad

torch = pytest.importorskip("torch", reason="the parity tests compare with PyTorch")
TF = torch.nn.functional

SETTINGS = dict(max_examples=15, deadline=None, derandomize=True)


def _host(t):
    return np.asarray(t.detach().numpy())


def _run(lib, fn, arrays, grads):
    """fn(lib, *tensors) on copies of `arrays` (those flagged in `grads` require grad), then
    backward of sum(out * g) for a fixed random g: (outputs..., input grads...) as NumPy."""
    tensors = [lib.tensor(a, requires_grad=r) for a, r in zip(arrays, grads)]
    out = fn(lib, *tensors)
    outs = out if isinstance(out, tuple) else (out,)
    y = outs[0]
    g = np.random.default_rng(7).standard_normal(tuple(y.shape)).astype(arrays[0].dtype)
    (y * lib.tensor(g)).sum().backward()
    return [_host(o) for o in outs] + [_host(t.grad) for t, r in zip(tensors, grads) if r]


def assert_matches_torch(fn, arrays, grads=None, atol=1e-5, rtol=1e-4):
    """fn(lib, *tensors) is written once for lib = fastdl and lib = torch (F is picked by lib)."""
    grads = grads or [True] * len(arrays)
    ours, theirs = _run(fastdl, fn, arrays, grads), _run(torch, fn, arrays, grads)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape, f"output {i}: shape {a.shape} != {b.shape}"
        np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), atol=atol,
                                   rtol=rtol, err_msg=f"output/grad {i}")


def _F(lib):
    return F if lib is fastdl else TF


def _randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- functional norms


@settings(**SETTINGS)
@given(n=st.integers(2, 4), c=st.integers(1, 4), spatial=st.lists(st.integers(1, 4), max_size=2),
       affine=st.booleans(), seed=st.integers(0, 9))
def test_batch_norm_training_matches_torch(n, c, spatial, affine, seed):
    rng = np.random.default_rng(seed)
    x = _randn(rng, n, c, *spatial) * 3 + 1
    w, b = _randn(rng, c), _randn(rng, c)
    rm, rv = _randn(rng, c), np.abs(_randn(rng, c)) + 0.5

    def fn(lib, x, w, b):
        mean, var = lib.tensor(rm), lib.tensor(rv)
        y = _F(lib).batch_norm(x, mean, var, w if affine else None, b if affine else None,
                               True, 0.3, 1e-3)
        return y, mean, var

    assert_matches_torch(fn, [x, w, b], [True, affine, affine])


@settings(**SETTINGS)
@given(n=st.integers(1, 3), c=st.integers(1, 4), spatial=st.lists(st.integers(1, 4), max_size=2),
       seed=st.integers(0, 9))
def test_batch_norm_eval_matches_torch(n, c, spatial, seed):
    rng = np.random.default_rng(seed)
    x, w, b = _randn(rng, n, c, *spatial), _randn(rng, c), _randn(rng, c)
    rm, rv = _randn(rng, c), np.abs(_randn(rng, c)) + 0.5

    def fn(lib, x, w, b):
        return _F(lib).batch_norm(x, lib.tensor(rm), lib.tensor(rv), w, b, False)

    assert_matches_torch(fn, [x, w, b])


@settings(**SETTINGS)
@given(lead=st.lists(st.integers(1, 3), max_size=2), norm=st.lists(st.integers(1, 4), min_size=1,
       max_size=2), affine=st.booleans(), seed=st.integers(0, 9))
def test_layer_norm_matches_torch(lead, norm, affine, seed):
    rng = np.random.default_rng(seed)
    x, w, b = _randn(rng, *lead, *norm) * 2, _randn(rng, *norm), _randn(rng, *norm)

    def fn(lib, x, w, b):
        return _F(lib).layer_norm(x, tuple(norm), w if affine else None, b if affine else None,
                                  1e-4)

    assert_matches_torch(fn, [x, w, b], [True, affine, affine])


@settings(**SETTINGS)
@given(n=st.integers(1, 3), groups=st.integers(1, 3), per=st.integers(1, 3),
       spatial=st.lists(st.integers(1, 4), max_size=2), seed=st.integers(0, 9))
def test_group_norm_matches_torch(n, groups, per, spatial, seed):
    rng = np.random.default_rng(seed)
    c = groups * per
    if per * int(np.prod(spatial)) == 1:
        spatial = spatial + [2]  # one value per group normalises to 0 either way
    x, w, b = _randn(rng, n, c, *spatial), _randn(rng, c), _randn(rng, c)
    assert_matches_torch(lambda lib, x, w, b: _F(lib).group_norm(x, groups, w, b), [x, w, b])


@pytest.mark.parametrize("name", ["batch_norm", "layer_norm", "group_norm"])
def test_norm_gradients_match_finite_differences(name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 2))
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    g = rng.standard_normal((3, 4, 2))
    call = {
        "batch_norm": lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
        "layer_norm": lambda x, w, b: F.layer_norm(x.transpose(1, 2), (4,), w, b).transpose(1, 2),
        "group_norm": lambda x, w, b: F.group_norm(x, 2, w, b),
    }[name]

    def loss(x, w, b):
        with fastdl.no_grad():
            out = call(fastdl.tensor(x), fastdl.tensor(w), fastdl.tensor(b))
        return float((out * fastdl.tensor(g)).sum().item())

    ts = [fastdl.tensor(a, requires_grad=True) for a in (x, w, b)]
    (call(*ts) * fastdl.tensor(g)).sum().backward()
    for i, t in enumerate(ts):
        assert_grad_close(_host(t.grad), numerical_grad(loss, [x, w, b], i), name=f"{name} {i}")


# ---------------------------------------------------------------- functional pools


@st.composite
def _pool2d_case(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    h, w = draw(st.integers(k[0], 7)), draw(st.integers(k[1], 7))
    return k, s, p, h, w


@settings(**SETTINGS)
@given(case=_pool2d_case(), ceil=st.booleans(), include=st.booleans(),
       divisor=st.sampled_from([None, 3]), batched=st.booleans(), seed=st.integers(0, 9))
def test_avg_pool2d_matches_torch(case, ceil, include, divisor, batched, seed):
    k, s, p, h, w = case
    x = _randn(np.random.default_rng(seed), *((2, 3) if batched else (3,)), h, w)
    assert_matches_torch(
        lambda lib, x: _F(lib).avg_pool2d(x, k, s, p, ceil, include, divisor), [x]
    )


@settings(**SETTINGS)
@given(k=st.integers(1, 4), s=st.integers(1, 3), pad=st.integers(0, 2), length=st.integers(4, 9),
       ceil=st.booleans(), include=st.booleans(), seed=st.integers(0, 9))
def test_avg_pool1d_and_max_pool1d_match_torch(k, s, pad, length, ceil, include, seed):
    pad = min(pad, k // 2)
    x = _randn(np.random.default_rng(seed), 2, 3, length)
    assert_matches_torch(lambda lib, x: _F(lib).avg_pool1d(x, k, s, pad, ceil, include), [x])
    assert_matches_torch(
        lambda lib, x: _F(lib).max_pool1d(x, k, s, pad, return_indices=True), [x]
    )
    assert_matches_torch(lambda lib, x: _F(lib).max_pool1d(x[0], k), [x])


@settings(**SETTINGS)
@given(h=st.integers(1, 9), w=st.integers(1, 9), out=st.tuples(st.integers(1, 5),
       st.one_of(st.none(), st.integers(1, 5))), batched=st.booleans(), seed=st.integers(0, 9))
def test_adaptive_pools_match_torch(h, w, out, batched, seed):
    x = _randn(np.random.default_rng(seed), *((2, 3) if batched else (3,)), h, w)
    assert_matches_torch(lambda lib, x: _F(lib).adaptive_avg_pool2d(x, out), [x])
    assert_matches_torch(lambda lib, x: _F(lib).adaptive_max_pool2d(x, out, True), [x])
    assert_matches_torch(lambda lib, x: _F(lib).adaptive_avg_pool2d(x, out[0]), [x])


@pytest.mark.parametrize(
    "shape, out",
    [((2, 3, 14, 14), 1), ((2, 3, 14, 14), (7, 7)), ((2, 3, 12, 8), (4, 2)), ((3, 12, 8), (3, 4)),
     ((2, 3, 13, 10), (4, 3))],
)
def test_adaptive_avg_pool_on_evenly_tiled_and_ragged_windows(shape, out):
    """Windows that tile the plane evenly take the reshape-and-mean path, others the windows'."""
    x = _randn(np.random.default_rng(0), *shape)
    assert_matches_torch(lambda lib, x: _F(lib).adaptive_avg_pool2d(x, out), [x])


@pytest.mark.parametrize(
    "shape, args",
    [
        ((1, 2, 2, 5), (3, 3, 0, True)),  # the kernel overhangs the input, in ceil_mode only
        ((1, 2, 2, 5), (5, 3, 2, True)),
        ((2, 3, 6, 7), (3, 2, 1, True)),  # a last window past the padding
        ((8, 16, 28, 28), (3, 2, 1, False)),  # many planes: threaded kernels
        ((8, 16, 28, 28), (2, 2, 0, False)),
    ],
)
@pytest.mark.parametrize("include, divisor", [(True, None), (False, None), (False, 5)])
def test_avg_pool2d_overhangs_and_large_inputs_match_torch(shape, args, include, divisor):
    # args: kernel_size, stride, padding, ceil_mode
    x = _randn(np.random.default_rng(3), *shape)
    assert_matches_torch(
        lambda lib, x: _F(lib).avg_pool2d(x, *args, count_include_pad=include,
                                          divisor_override=divisor), [x]
    )


@pytest.mark.parametrize("shape, out", [((8, 16, 14, 14), 5), ((2, 3, 7, 9), (4, 12))])
def test_adaptive_pools_on_large_and_upsampling_shapes_match_torch(shape, out):
    x = _randn(np.random.default_rng(4), *shape)
    assert_matches_torch(lambda lib, x: _F(lib).adaptive_avg_pool2d(x, out), [x])
    assert_matches_torch(lambda lib, x: _F(lib).adaptive_max_pool2d(x, out, True), [x])


def test_adaptive_max_pool2d_nan_and_ties_match_torch():
    rng = np.random.default_rng(5)
    x = np.round(_randn(rng, 2, 3, 9, 7))  # ties
    x.flat[rng.integers(0, x.size, 20)] = np.nan
    x[0, 0] = -np.inf
    for out in [(4, 3), (2, 5)]:
        ours = F.adaptive_max_pool2d(fastdl.tensor(x), out, True)
        theirs = TF.adaptive_max_pool2d(torch.tensor(x), out, True)
        np.testing.assert_array_equal(_host(ours[0]), theirs[0].numpy())
        np.testing.assert_array_equal(_host(ours[1]), theirs[1].numpy())


@pytest.mark.parametrize("name", ["avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"])
def test_pool_gradients_match_finite_differences(name):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 5, 4))
    call = {
        "avg_pool2d": lambda x: F.avg_pool2d(x, 3, 2, 1, True, False),
        "adaptive_avg_pool2d": lambda x: F.adaptive_avg_pool2d(x, (3, 3)),
        "adaptive_max_pool2d": lambda x: F.adaptive_max_pool2d(x, (3, 2)),
    }[name]
    xt = fastdl.tensor(x, requires_grad=True)
    y = call(xt)
    g = rng.standard_normal(tuple(y.shape))
    (y * fastdl.tensor(g)).sum().backward()

    def loss(x):
        with fastdl.no_grad():
            return float((call(fastdl.tensor(x)) * fastdl.tensor(g)).sum().item())

    assert_grad_close(_host(xt.grad), numerical_grad(loss, [x], 0), name=name)


# ---------------------------------------------------------------- modules


def _to_torch(module_fd, module_t):
    module_t.load_state_dict({k: torch.tensor(_host(v)) for k, v in module_fd.state_dict().items()})


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (5, 3)), ("BatchNorm1d", (4, 3, 2)),
                                       ("BatchNorm2d", (2, 3, 2, 3))])
def test_batchnorm_module_running_stats_train_and_eval_match_torch(cls, shape, momentum):
    ours, theirs = getattr(nn, cls)(3, momentum=momentum), getattr(torch.nn, cls)(3,
                                                                                   momentum=momentum)
    rng = np.random.default_rng(0)
    w, b = _randn(rng, 3), _randn(rng, 3)
    ours.load_state_dict({"weight": w, "bias": b}, strict=False)
    theirs.load_state_dict({"weight": torch.tensor(w), "bias": torch.tensor(b)}, strict=False)
    for step in range(3):
        x = _randn(rng, *shape) * (step + 1) + step
        assert_matches_torch(
            lambda lib, x: (ours if lib is fastdl else theirs)(x), [x]
        )
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(_host(ours.state_dict()[key]), value.numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=key)
    assert int(ours.num_batches_tracked.item()) == 3
    ours.eval(), theirs.eval()
    x = _randn(rng, *shape)
    assert_matches_torch(lambda lib, x: (ours if lib is fastdl else theirs)(x), [x])


def _host_t(v):
    return v.detach().numpy()


def test_batchnorm_without_running_stats_uses_batch_statistics_in_eval():
    ours = nn.BatchNorm2d(2, affine=False, track_running_stats=False).eval()
    theirs = torch.nn.BatchNorm2d(2, affine=False, track_running_stats=False).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    assert ours.running_mean is None and ours.num_batches_tracked is None
    x = _randn(np.random.default_rng(3), 3, 2, 2, 2)
    assert_matches_torch(lambda lib, x: (ours if lib is fastdl else theirs)(x), [x])


def test_empty_batches_and_inplace_ops_on_the_output():
    m = nn.BatchNorm1d(3)
    assert tuple(m(fastdl.zeros(0, 3)).shape) == (0, 3)
    np.testing.assert_array_equal(_host(m.running_mean), np.zeros(3, np.float32))
    np.testing.assert_array_equal(_host(m.running_var), np.ones(3, np.float32))
    assert tuple(F.group_norm(fastdl.zeros(0, 4, 2), 2).shape) == (0, 4, 2)
    assert tuple(F.avg_pool2d(fastdl.zeros(0, 2, 4, 4), 2).shape) == (0, 2, 2, 2)
    # BatchNorm (no affine) then an in-place ReLU, as in many CNNs: the saved input is intact
    x = _randn(np.random.default_rng(4), 4, 2, 3)

    def fn(lib, x):
        return _F(lib).relu(_F(lib).batch_norm(x * 1, None, None, training=True), inplace=True)

    assert_matches_torch(fn, [x])


CONFIGS = [
    ("BatchNorm1d", (4,), {}),
    ("BatchNorm1d", (4,), {"eps": 1e-3, "momentum": None, "affine": False}),
    ("BatchNorm2d", (3,), {"track_running_stats": False}),
    ("BatchNorm2d", (3,), {"bias": False}),
    ("LayerNorm", (4,), {}),
    ("LayerNorm", ((2, 3),), {"eps": 1e-6, "bias": False}),
    ("LayerNorm", ([3],), {"elementwise_affine": False}),
    ("GroupNorm", (2, 4), {}),
    ("GroupNorm", (1, 3), {"eps": 1e-3, "affine": False}),
    ("GroupNorm", (3, 3), {"bias": False}),
    ("Dropout2d", (), {}),
    ("Dropout2d", (0.2, True), {}),
    ("AvgPool2d", (2,), {}),
    ("AvgPool2d", ((3, 2), (2, 1), 1), {"ceil_mode": True, "count_include_pad": False,
                                       "divisor_override": 2}),
    ("AvgPool1d", (3,), {}),
    ("AvgPool1d", (3, 2, 1), {"ceil_mode": True}),
    ("MaxPool1d", (2,), {}),
    ("MaxPool1d", (3, 1, 1), {"return_indices": True}),
    ("AdaptiveAvgPool2d", ((2, None),), {}),
    ("AdaptiveAvgPool2d", (1,), {}),
    ("AdaptiveMaxPool2d", (3, True), {}),
]


@pytest.mark.parametrize("name,args,kwargs", CONFIGS, ids=[f"{c[0]}-{i}" for i, c in
                                                           enumerate(CONFIGS)])
def test_modules_repr_state_dict_and_init_match_torch(name, args, kwargs):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for key, value in theirs_sd.items():
        assert _host(ours_sd[key]).shape == tuple(value.shape), key
        assert _host(ours_sd[key]).dtype == value.numpy().dtype, key
        np.testing.assert_array_equal(_host(ours_sd[key]), value.numpy(), err_msg=key)


@pytest.mark.parametrize("name,args,shape", [
    ("LayerNorm", ((3, 2),), (4, 3, 2)),
    ("GroupNorm", (2, 4), (3, 4, 5)),
    ("BatchNorm1d", (3,), (6, 3)),
])
def test_affine_modules_forward_backward_and_round_trip_with_torch(name, args, shape):
    rng = np.random.default_rng(5)
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    # non-trivial weights from torch into ours (torch -> fastdl), then back (fastdl -> torch)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.tensor(_randn(rng, *p.shape)))
    ours.load_state_dict({k: _host_t(v) for k, v in theirs.state_dict().items()})
    copy = getattr(torch.nn, name)(*args)
    _to_torch(ours, copy)
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(copy.state_dict()[key].numpy(), value.numpy(), err_msg=key)
    x = _randn(rng, *shape)
    xs = [fastdl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)]
    g = _randn(rng, *shape)
    for module, lib, t in ((ours, fastdl, xs[0]), (theirs, torch, xs[1])):
        (module(t) * lib.tensor(g)).sum().backward()
    np.testing.assert_allclose(_host(xs[0].grad), xs[1].grad.numpy(), atol=1e-5, rtol=1e-4)
    for (k, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(_host(p.grad), q.grad.numpy(), atol=1e-5, rtol=1e-4,
                                   err_msg=k)


def test_pool_modules_match_torch():
    x = _randn(np.random.default_rng(2), 2, 3, 7, 6)
    for name, args, kwargs, inp in [
        ("AvgPool2d", (3, 2, 1), {"count_include_pad": False}, x),
        ("AvgPool1d", (3, 2, 1), {}, x[:, :, 0]),
        ("MaxPool1d", (3, 2, 1), {"return_indices": True}, x[:, :, 0]),
        ("AdaptiveAvgPool2d", ((4, 3),), {}, x),
        ("AdaptiveMaxPool2d", (2, True), {}, x),
    ]:
        ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
        inp = np.ascontiguousarray(inp)
        assert_matches_torch(lambda lib, t: (ours if lib is fastdl else theirs)(t), [inp])


def test_dropout2d_zeroes_whole_channels_and_scales_the_rest():
    fastdl.manual_seed(0)
    x = fastdl.tensor(np.ones((8, 16, 3, 3), np.float32), requires_grad=True)
    y = F.dropout2d(x, 0.25)
    out = _host(y)
    per_channel = out.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == np.float32(1 / 0.75)).all(-1))
    dropped = (per_channel == 0).all(-1).mean()
    assert 0.05 < dropped < 0.5
    y.sum().backward()
    np.testing.assert_array_equal(_host(x.grad), out)  # d(x * mask)/dx = mask
    m = nn.Dropout2d(0.25)
    assert _host(m.eval()(x)) is not None and np.array_equal(_host(m(x)), _host(x))
    assert np.array_equal(_host(F.dropout2d(x, 0.5, training=False)), _host(x))
    z = fastdl.tensor(np.ones((2, 3, 2, 2), np.float32))
    assert F.dropout2d(z, 1.0, inplace=True) is z and not _host(z).any()
    with pytest.warns(UserWarning, match="3D input"):
        F.dropout2d(fastdl.ones(2, 3, 4), 0.5)


# ---------------------------------------------------------------- bad arguments


def test_bad_arguments_raise_clear_errors():
    x = fastdl.ones(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"\[batch_norm\] expected more than 1 value"):
        F.batch_norm(fastdl.ones(1, 3), None, None, training=True)
    with pytest.raises(RuntimeError, match=r"\[batch_norm\] expected running_mean of shape"):
        F.batch_norm(x, fastdl.zeros(2), fastdl.ones(3))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        nn.BatchNorm2d(3)(fastdl.ones(2, 3))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input"):
        nn.BatchNorm1d(3)(x)
    with pytest.raises(RuntimeError, match=r"\[layer_norm\] given normalized_shape=\[5\]"):
        F.layer_norm(x, (5,))
    with pytest.raises(RuntimeError, match=r"\[group_norm\] expected number of channels"):
        F.group_norm(x, 2)
    with pytest.raises(ValueError, match=r"\[GroupNorm\] num_channels must be divisible"):
        nn.GroupNorm(2, 3)
    with pytest.raises(TypeError, match=r"\[layer_norm\] input and weight must have the same"):
        F.layer_norm(x, (4,), fastdl.ones(4, dtype=fastdl.float64))
    with pytest.raises(TypeError, match=r"\[batch_norm\] input must be a floating point"):
        F.batch_norm(fastdl.ones(2, 3, dtype=fastdl.int64), None, None, training=True)
    with pytest.raises(RuntimeError, match=r"\[avg_pool2d\] pad should be at most half"):
        F.avg_pool2d(x, 2, padding=2)
    with pytest.raises(RuntimeError, match=r"\[avg_pool2d\] kernel_size and stride must be"):
        F.avg_pool2d(x, 2, stride=0)
    with pytest.raises(RuntimeError, match=r"\[avg_pool2d\] .*output size is too small"):
        F.avg_pool2d(x, 5)
    with pytest.raises(RuntimeError, match=r"\[avg_pool2d\] divisor_override"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(RuntimeError, match=r"\[avg_pool1d\] expected a 2-D or 3-D input"):
        F.avg_pool1d(x, 2)
    with pytest.raises(RuntimeError, match=r"\[max_pool1d\] expected a 2-D or 3-D input"):
        nn.MaxPool1d(2)(x)
    with pytest.raises(RuntimeError, match=r"\[adaptive_avg_pool2d\] output_size must be >= 1"):
        F.adaptive_avg_pool2d(x, 0)
    with pytest.raises(TypeError, match=r"\[adaptive_max_pool2d\] output_size must be"):
        F.adaptive_max_pool2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match=r"dropout probability"):
        nn.Dropout2d(1.5)
