"""Fuzzing the C++ bindings (issue "Hardening"): arbitrary dtypes, shapes (zero sizes too),
layouts (transposed, strided, misaligned, read-only), NaN/inf and absurd hyperparameters go
straight into fastdl._C. Every call must either return a result that matches the NumPy
reference or raise a Python exception; a crash, a hang or an out-of-bounds access (which the
ASan/UBSan CI pass catches: its file name puts it in the `-k kernels` selection) is a failure.
"""

import fastdl._C as C
import numpy as np
import pytest
from fastdl.backends import reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ACCEPTED = (ValueError, TypeError, RuntimeError, IndexError, OverflowError)
DTYPES = [np.float32, np.float32, np.float32, np.float64, np.int64, np.int32, np.bool_, np.float16]


@st.composite
def arrays(draw, ndim=None, max_side=6, dtypes=DTYPES, special=True, shape=None, good=None):
    """An array of a drawn dtype and shape in a drawn layout: C, transposed, strided, misaligned
    or read-only; values may hold NaN and inf. Mostly (`good`) a float32 C array, so the
    kernels run; otherwise anything, so the checks run."""
    if good is None:
        good = draw(st.integers(0, 9)) < 7
    if shape is None:
        nd = draw(st.integers(0, 4)) if ndim is None else ndim
        shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=nd, max_size=nd)))
    dtype = np.dtype(np.float32 if good else draw(st.sampled_from(dtypes)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = np.asarray(rng.standard_normal(shape) * 3)
    if special and values.size and draw(st.booleans()):
        flat = values.reshape(-1)
        flat[rng.integers(0, flat.size, size=max(1, flat.size // 4))] = rng.choice(
            [np.nan, np.inf, -np.inf, 0.0, 1e30]
        )
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.asarray(values.astype(dtype))
    layouts = ["c", "c", "transposed", "strided", "misaligned", "readonly"]
    layout = "c" if good else draw(st.sampled_from(layouts))
    if layout == "transposed" and a.ndim >= 2:
        a = np.ascontiguousarray(a.swapaxes(-1, -2)).swapaxes(-1, -2)
    elif layout == "strided" and a.ndim >= 1:
        wide = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
        wide[..., ::2] = a
        a = wide[..., ::2]
    elif layout == "misaligned" and a.itemsize > 1:
        raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
        b = raw.view(a.dtype).reshape(a.shape)
        b[...] = a
        a = b
    elif layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
    return a


def call(fn, *args, **kwargs):
    """fn's result, or None when it raised one of the Python exceptions a bad input may get."""
    try:
        return fn(*args, **kwargs)
    except ACCEPTED:
        return None


def valid_f32(*arrays_):
    return all(
        a.dtype == np.float32 and a.flags.c_contiguous and a.flags.aligned for a in arrays_
    )


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
@FUZZ
@given(data=st.data())
def test_activation_bindings(name, data):
    x = data.draw(arrays())
    y = call(getattr(C, f"{name}_forward"), x)
    if y is not None:
        assert valid_f32(x) and y.shape == x.shape
        expected = getattr(reference, f"{name}_forward")(x)
        np.testing.assert_allclose(y, expected, rtol=2e-6, atol=2e-6, equal_nan=True)
    dy = data.draw(arrays())
    dx = call(getattr(C, f"{name}_backward"), dy, x)
    if dx is not None:
        assert valid_f32(dy, x) and dx.shape == x.shape == dy.shape


@FUZZ
@given(data=st.data())
def test_gemm_binding(data):
    m, k, n = (data.draw(st.integers(0, 40)) for _ in range(3))
    ta, tb = data.draw(st.booleans()), data.draw(st.booleans())
    if data.draw(st.integers(0, 9)) < 7:
        a = data.draw(arrays(shape=(k, m) if ta else (m, k)))
        b = data.draw(arrays(shape=(n, k) if tb else (k, n)))
    else:
        a = data.draw(arrays(ndim=data.draw(st.integers(0, 3)), max_side=9))
        b = data.draw(arrays(ndim=data.draw(st.integers(0, 3)), max_side=9))
    out = call(C.gemm, a, b, ta, tb)
    if out is not None:
        assert valid_f32(a, b)
        with np.errstate(all="ignore"):
            expected = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
        finite = np.isfinite(expected) & (np.abs(expected) < 1e20)
        np.testing.assert_allclose(out[finite], expected[finite], rtol=1e-4, atol=1e-3)
    batch = data.draw(st.integers(0, 3))
    a3 = data.draw(arrays(shape=(batch,) + ((k, m) if ta else (m, k))))
    b3 = data.draw(arrays(shape=(batch,) + ((n, k) if tb else (k, n))))
    out = call(C.bmm, a3, b3, ta, tb)
    if out is not None:
        assert valid_f32(a3, b3) and out.shape == (batch, m, n)


@FUZZ
@given(data=st.data())
def test_conv2d_bindings(data):
    if data.draw(st.integers(0, 9)) < 7:
        n, c, k = (data.draw(st.integers(0, 4)) for _ in range(3))
        h, w_, r, s_ = (data.draw(st.integers(1, 7)) for _ in range(4))
        x = data.draw(arrays(shape=(n, c, h, w_)))
        w = data.draw(arrays(shape=(k, c, r, s_)))
        b = data.draw(st.one_of(st.none(), arrays(shape=(k,))))
        sh, sw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
        ph, pw = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))
    else:
        x = data.draw(arrays(ndim=data.draw(st.sampled_from([3, 4, 4, 5])), max_side=5))
        w = data.draw(arrays(ndim=data.draw(st.sampled_from([3, 4, 4])), max_side=4))
        b = data.draw(st.one_of(st.none(), arrays(ndim=1, max_side=5)))
        ints = st.integers(-2, 4) | st.sampled_from([0, 2**31 - 1, -(2**31)])
        sh, sw, ph, pw = (data.draw(ints) for _ in range(4))
    y = call(C.conv2d_forward, x, w, b, sh, sw, ph, pw)
    if y is not None:
        assert valid_f32(x, w) and (b is None or valid_f32(b))
        with np.errstate(all="ignore"):
            expected = reference.conv2d_forward(
                x.astype(np.float64), w.astype(np.float64),
                None if b is None else b.astype(np.float64), (sh, sw), (ph, pw),
            )
        finite = np.isfinite(expected) & (np.abs(expected) < 1e20)
        np.testing.assert_allclose(y[finite], expected[finite], rtol=1e-4, atol=1e-3)
        dy = data.draw(st.sampled_from([np.ones_like(y), np.ones(y.shape[:-1] + (1,), np.float32)]))
        flags = [data.draw(st.booleans()) for _ in range(3)]
        grads = call(C.conv2d_backward, dy, x, w, sh, sw, ph, pw, *flags)
        if grads is not None:
            assert dy.shape == y.shape


def draw_pool_args(data, k_max):
    """(valid, x, kernel, stride, padding): 7 times in 10 an (N, C, H, W) x with kernel sides up
    to k_max and padding up to half the kernel, else any ndim and out-of-range values."""
    valid = data.draw(st.integers(0, 9)) < 7
    if valid:
        x = data.draw(arrays(shape=tuple(data.draw(st.integers(0, 3)) for _ in range(2))
                             + tuple(data.draw(st.integers(1, 7)) for _ in range(2))))
        k = [data.draw(st.integers(1, k_max)) for _ in range(2)]
        s = [data.draw(st.integers(1, 3)) for _ in range(2)]
        p = [data.draw(st.integers(0, k[i] // 2)) for i in range(2)]
    else:
        x = data.draw(arrays(ndim=data.draw(st.sampled_from([3, 4, 4, 5])), max_side=6))
        k = [data.draw(st.integers(-1, 4)) for _ in range(2)]
        s = [data.draw(st.integers(-1, 3)) for _ in range(2)]
        p = [data.draw(st.integers(-1, 3)) for _ in range(2)]
    return valid, x, k, s, p


@FUZZ
@given(data=st.data())
def test_maxpool2d_bindings(data):
    _, x, k, s, p = draw_pool_args(data, 3)
    out = call(C.maxpool2d_forward, x, k, s, p)
    if out is None:
        return
    y, idx = out
    assert valid_f32(x)
    expected, expected_idx = reference.maxpool2d_forward(x, tuple(k), tuple(s), tuple(p))
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(idx, expected_idx)
    bad = data.draw(st.sampled_from(["ok", "negative", "too_big", "shape"]))
    indices = idx.copy()
    if bad == "negative" and indices.size:
        indices.reshape(-1)[0] = -1
    elif bad == "too_big" and indices.size:
        indices.reshape(-1)[0] = x.shape[2] * x.shape[3]
    dy = np.ones(y.shape if bad != "shape" else y.shape[:-1] + (y.shape[-1] + 1,), np.float32)
    dx = call(C.maxpool2d_backward, dy, indices, list(x.shape))
    if dx is not None:  # a corrupted index or a wrong dy shape must have been refused
        assert bad == "ok" or (bad in ("negative", "too_big") and not indices.size)
        assert dx.shape == x.shape


@FUZZ
@given(data=st.data())
def test_pool_bindings(data):
    valid, x, k, s, p = draw_pool_args(data, 4)
    out_sides = st.integers(1, 9) if valid else st.sampled_from([-1, 0, 1, 3, 2**62])
    out_hw = [data.draw(out_sides) for _ in range(2)]
    options = (k, s, p, data.draw(st.booleans()), data.draw(st.booleans()),
               data.draw(st.sampled_from([None, None, 0, -2, 3])))
    y = call(C.avgpool2d_forward, x, *options)
    if y is not None:
        assert valid_f32(x)
        expected = reference.avgpool2d_forward(x.astype(np.float64), *options)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
        shape = list(x.shape)
        if data.draw(st.booleans()):  # a wrong input_shape must be refused
            shape[data.draw(st.integers(0, 3))] += data.draw(st.sampled_from([-9, -1, 1, 9]))
        dx = call(C.avgpool2d_backward, np.ones_like(y), shape, *options)
        if dx is not None:
            assert dx.shape == tuple(shape)
            np.testing.assert_allclose(
                dx, reference.avgpool2d_backward(np.ones(y.shape), shape, *options), rtol=1e-5,
                atol=1e-5,
            )
    for name in ("adaptive_avgpool2d_forward", "adaptive_maxpool2d_forward"):
        out = call(getattr(C, name), x, out_hw)
        if out is None:
            continue
        assert valid_f32(x)
        expected = getattr(reference, name)(x.astype(np.float64), tuple(out_hw))
        for a, e in zip(out if isinstance(out, tuple) else [out],
                        expected if isinstance(expected, tuple) else [expected]):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)
    dx = call(C.adaptive_avgpool2d_backward, x, [data.draw(st.integers(-1, 6)) for _ in range(4)])
    if dx is not None:
        assert valid_f32(x) and x.ndim == 4


@FUZZ
@given(data=st.data())
def test_cross_entropy_bindings(data):
    logits = data.draw(arrays(ndim=data.draw(st.sampled_from([1, 2, 2, 2, 3])), max_side=6))
    n = logits.shape[0] if logits.ndim else 0
    c = logits.shape[1] if logits.ndim > 1 else 1
    target = data.draw(st.one_of(
        st.builds(lambda v: np.asarray(v, np.int64), st.lists(st.integers(-101, c + 1),
                                                             min_size=n, max_size=n)),
        st.builds(lambda v: np.asarray(v, np.int64), st.lists(st.integers(0, max(c - 1, 0)),
                                                             min_size=n, max_size=n)),
        arrays(shape=logits.shape),
        arrays(ndim=data.draw(st.integers(1, 2)), max_side=6),
    ))
    weight = data.draw(st.one_of(st.none(), arrays(shape=(c,)), arrays(ndim=1, max_side=7)))
    reduction = data.draw(st.sampled_from(["mean", "sum", "none", "mean", "bogus"]))
    ignore = data.draw(st.sampled_from([-100, 0, 2**62]))
    out = call(C.cross_entropy_forward, logits, target, weight, reduction, ignore)
    if out is None:
        return
    loss, log_probs = out
    assert valid_f32(logits) and reduction in ("mean", "sum", "none")
    dloss = np.ones(loss.shape, np.float32)
    grad = call(C.cross_entropy_backward, dloss, log_probs, target, weight, reduction, ignore)
    if grad is not None:
        assert grad.shape == logits.shape


@FUZZ
@given(data=st.data())
def test_optimizer_bindings(data):
    count = data.draw(st.integers(0, 3))
    params = [data.draw(arrays(ndim=data.draw(st.integers(0, 2)), max_side=5, special=False,
                               good=data.draw(st.integers(0, 9)) < 8)) for _ in range(count)]
    shapes = [p.shape for p in params]
    like = data.draw(st.sampled_from(["same", "same", "same", "other"]))

    def partner():
        if like == "same":
            return [np.ones(s, np.float32) for s in shapes]
        return [data.draw(arrays(ndim=len(s), max_side=5)) for s in shapes]

    grads, m, v = partner(), partner(), partner()
    wild = [0.0, -1.0, float("nan"), float("inf"), 1.0, 1e30]

    def hyper(*valid):  # mostly a value the step accepts, sometimes a wild one
        return data.draw(st.sampled_from(list(valid) if data.draw(st.integers(0, 9)) < 8 else wild))

    step = data.draw(st.sampled_from([1, 2, 7, 1, 0, -3, 2**40]))
    call(C.adam_step, params, grads, m, v, step, hyper(1e-3, 0.1), hyper(0.9, 0.0),
         hyper(0.999, 0.5), hyper(1e-8, 1e-3), hyper(0.0, 1e-2), data.draw(st.booleans()))
    call(C.sgd_step, params, grads, m, hyper(1e-3, 0.1), hyper(0.0, 0.9), hyper(0.0, 0.1),
         data.draw(st.booleans()), hyper(0.0, 1e-2), data.draw(st.booleans()),
         data.draw(st.booleans()))
    for p, s in zip(params, shapes):
        assert p.shape == s  # parameters keep their shape whatever happened


@FUZZ
@given(data=st.data())
def test_embedding_binding(data):
    V = data.draw(st.integers(-1, 6))
    if data.draw(st.integers(0, 9)) < 7:
        m, d = data.draw(st.integers(0, 8)), data.draw(st.integers(0, 40))
        dy = data.draw(arrays(shape=(m, d)))
        values = data.draw(st.lists(st.integers(-1, max(V, 0)), min_size=m, max_size=m))
        indices = np.asarray(values, np.int64).reshape(m)
    else:
        dy = data.draw(arrays(ndim=data.draw(st.integers(0, 3))))
        indices = data.draw(arrays(ndim=data.draw(st.integers(0, 2)), special=False,
                                   dtypes=[np.int64, np.int64, np.int32, np.float32]))
    padding_idx = data.draw(st.one_of(st.none(), st.integers(-2, 7)))
    dw = call(C.embedding_backward, dy, indices, V, padding_idx)
    if dw is None:
        return
    assert valid_f32(dy) and indices.dtype == np.int64 and indices.shape == dy.shape[:1]
    assert ((indices >= 0) & (indices < V)).all() and (padding_idx is None or 0 <= padding_idx < V)
    # The same float32 additions in the same (index) order as the reference's: the same bits.
    np.testing.assert_array_equal(dw, reference.embedding_backward(dy, indices, V, padding_idx))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@FUZZ
@given(data=st.data())
def test_rnn_cell_bindings(cell, data):
    G = 4 if cell == "lstm" else 3
    n, h = data.draw(st.integers(0, 4)), data.draw(st.integers(0, 20))
    if data.draw(st.integers(0, 9)) < 7:
        gi, gh, state = (data.draw(arrays(shape=s)) for s in [(n, G * h), (n, G * h), (n, h)])
        b = data.draw(st.one_of(st.none(), arrays(shape=(G * h,))))
    else:
        gi, gh, state = (data.draw(arrays(ndim=data.draw(st.integers(0, 3)))) for _ in range(3))
        b = data.draw(st.one_of(st.none(), arrays(ndim=1, max_side=9)))
    out = call(getattr(C, f"{cell}_cell_forward"), gi, gh, b, state)
    if out is None:
        return
    assert valid_f32(gi, gh, state) and (b is None or valid_f32(b))
    with np.errstate(all="ignore"):
        expected = getattr(reference, f"{cell}_cell_forward")(gi, gh, b, state)
        for a, e in zip(out, expected):
            np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5, equal_nan=True)
    dh = data.draw(arrays(shape=state.shape) | arrays(ndim=2))
    if cell == "lstm":
        dc = data.draw(st.none() | arrays(shape=state.shape) | arrays(ndim=2))
        grads = call(C.lstm_cell_backward, out[2], out[3], state, dh, dc)
        ok = dc is None or (valid_f32(dc) and dc.shape == state.shape)
    else:
        grads = call(C.gru_cell_backward, out[1], state, dh)
        ok = True
    if grads is not None:
        assert ok and valid_f32(dh) and dh.shape == state.shape
        assert grads[0].shape == (n, G * h) and grads[-1].shape == (n, h)
