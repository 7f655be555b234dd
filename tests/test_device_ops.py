"""Every op of fastdl/_functions.py and every function of the reference backend, run on NumPy
arrays and on the strict test device's arrays (array_api_strict on its non-default device, where
any NumPy call and any mixing with CPU arrays raises): the results must be the same values,
dtypes and shapes. This proves the ops reach their arrays only through the array API namespace
and the named functions of fastdl._devices.

float64 and float32 inside `fastdl.backend("reference")` run the same code on both devices:
exact. Plain float32 runs the C++ cpu kernels on NumPy and the reference on the device: close.
"""

from __future__ import annotations

import inspect

import fastdl
import numpy as np
import pytest
from fastdl import _devices
from fastdl import _functions as F
from fastdl.autograd.function import Op
from fastdl.backends import reference as ref

strict_device = pytest.importorskip("strict_device")
LIB = strict_device.StrictLibrary()

MODES = ["float64", "float32-reference", "float32"]


@pytest.fixture(scope="module", autouse=True)
def _registered():
    # Registered for this module, and unregistered after it unless the run itself is on the
    # strict device (`pytest --device strict` registered it first: the next modules need it).
    was_registered = strict_device.NAME in _devices.DEVICE_TYPES
    strict_device.register()
    yield
    if not was_registered:
        strict_device.unregister()


@pytest.fixture(params=MODES)
def mode(request):
    if request.param == "float32-reference":
        with fastdl.backend("reference"):
            yield request.param
    else:
        yield request.param


def _float(mode):
    return np.float64 if mode == "float64" else np.float32


def _on(device, a):
    """A NumPy value as the `device` ("cpu" or "strict") sees it: arrays move, the rest stays."""
    if device == "cpu" or not isinstance(a, np.ndarray):
        return a
    return LIB.from_numpy(a, None)


def _convert(device, value):
    """Convert every NumPy array inside value (tuples, lists, dicts) for `device`."""
    if isinstance(value, tuple):
        return tuple(_convert(device, v) for v in value)
    if isinstance(value, list):
        return [_convert(device, v) for v in value]
    if isinstance(value, dict):
        return {k: _convert(device, v) for k, v in value.items()}
    return _on(device, value)


def _host(a):
    """Any result as a NumPy array, checking that strict results never came back as NumPy."""
    if a is None or isinstance(a, (int, float)):
        return a
    if isinstance(a, LIB.array_type):
        return LIB.to_numpy(a)
    return np.asarray(a)


def _assert_same(cpu, dev, mode, what, device_result=True):
    if isinstance(cpu, tuple):  # a multi-output op: each output
        assert isinstance(dev, tuple) and len(dev) == len(cpu), f"{what}: outputs differ"
        for i, (c, d) in enumerate(zip(cpu, dev)):
            _assert_same(c, d, mode, f"{what} output {i}", device_result)
        return
    if cpu is None or dev is None:
        assert cpu is None and dev is None, f"{what}: one device gave None"
        return
    if device_result:
        assert isinstance(dev, LIB.array_type), f"{what}: the device gave {type(dev).__name__}"
    c, d = np.asarray(cpu), _host(dev)
    assert c.dtype == d.dtype, f"{what}: dtype {c.dtype} on cpu, {d.dtype} on the device"
    assert c.shape == d.shape, f"{what}: shape {c.shape} on cpu, {d.shape} on the device"
    if mode == "float32" and c.dtype.kind == "f":
        np.testing.assert_allclose(d, c, rtol=1e-5, atol=1e-6, err_msg=what)
    else:
        np.testing.assert_array_equal(d, c, err_msg=what)


# ---------------------------------------------------------------- the op table
#
# name -> (Op class, make(dtype, rng) -> (inputs, params), optional options). Inputs are NumPy
# arrays (or None); params may hold NumPy arrays (index arrays, weights), which move too.


def _x(rng, dt, *shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape).astype(dt)


def _distinct(rng, dt, *shape):
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.25 - n * 0.1).astype(dt).reshape(shape)


def _unary(cls, values=(-2.0, 2.0), **params):
    return cls, lambda dt, rng: ((_x(rng, dt, 3, 4, lo=values[0], hi=values[1]),), params)


def _binary(cls, lo=-2.0, hi=2.0):
    return cls, lambda dt, rng: ((_x(rng, dt, 3, 4, lo=lo, hi=hi), _x(rng, dt, 4, lo=lo, hi=hi)), {})


def _steps():
    return [(F.Index, {"index": (slice(1, 3), slice(None))}), (F.Permute, {"dims": (1, 0)})]


OPS = {
    "Neg": _unary(F.Neg),
    "Exp": _unary(F.Exp),
    "Log": _unary(F.Log, values=(-0.5, 2.0)),  # NaN below 0 on both
    "Log1p": _unary(F.Log1p, values=(-1.5, 2.0)),
    "Sqrt": _unary(F.Sqrt, values=(-0.5, 2.0)),
    "Abs": _unary(F.Abs),
    "Sin": _unary(F.Sin),
    "Cos": _unary(F.Cos),
    "PowScalar": _unary(F.PowScalar, values=(0.1, 2.0), exponent=2.5),
    "PowScalar-0": _unary(F.PowScalar, exponent=0),
    "Clamp": _unary(F.Clamp, lo=-1.5, hi=1.5),
    "Clamp-lo": _unary(F.Clamp, lo=-0.5, hi=None),
    "Contiguous": (F.Contiguous, lambda dt, rng: ((_x(rng, dt, 4, 3).T,), {})),
    "Cast": _unary(F.Cast, dtype=np.dtype(np.float32)),
    "Cast-int": _unary(F.Cast, dtype=np.dtype(np.int64)),
    "ToDevice": _unary(F.ToDevice, device=fastdl.device("cpu")),
    "ReLU": _unary(F.ReLU),
    "Sigmoid": _unary(F.Sigmoid, values=(-30, 30)),
    "Tanh": _unary(F.Tanh),
    "LeakyReLU": _unary(F.LeakyReLU, slope=0.1),
    "LeakyReLUInplace": _unary(F.LeakyReLUInplace, slope=0.2),
    "Sign": _unary(F.Sign),
    "Softmax": _unary(F.Softmax, dim=1),
    "Softmax-0": _unary(F.Softmax, dim=0),
    "LogSoftmax": _unary(F.LogSoftmax, dim=-1),
    "Add": _binary(F.Add),
    "Sub": _binary(F.Sub),
    "Mul": _binary(F.Mul),
    "Div": _binary(F.Div),
    "Pow": _binary(F.Pow, lo=0.1, hi=2.0),
    "Remainder": _binary(F.Remainder, lo=0.5, hi=3.0),
    "NoDerivative-floor_divide": (
        F.NoDerivative,
        lambda dt, rng: ((_x(rng, dt, 3, 4), _x(rng, dt, 4, lo=0.5)), {"ufunc": np.floor_divide}),
    ),
    "NoDerivative-mod": (
        F.NoDerivative,
        lambda dt, rng: ((_x(rng, dt, 3, 4), _x(rng, dt, 4, lo=0.5)), {"ufunc": "remainder"}),
    ),
    "SquaredError": _binary(F.SquaredError),
    "Maximum": (
        F.Maximum,
        lambda dt, rng: ((np.array([[1, 2, 3]], dt), np.array([3, 2, 1], dt)), {}),
    ),
    "Minimum": _binary(F.Minimum),
    "Where": (
        F.Where,
        lambda dt, rng: ((_x(rng, dt, 3, 4) > 0, _x(rng, dt, 3, 4), _x(rng, dt, 4)), {}),
    ),
    "MatMul-2d": (F.MatMul, lambda dt, rng: ((_x(rng, dt, 3, 5), _x(rng, dt, 5, 4)), {})),
    "MatMul-1d": (F.MatMul, lambda dt, rng: ((_x(rng, dt, 5), _x(rng, dt, 5)), {})),
    "MatMul-1d-2d": (F.MatMul, lambda dt, rng: ((_x(rng, dt, 5), _x(rng, dt, 5, 4)), {})),
    "MatMul-batched": (
        F.MatMul, lambda dt, rng: ((_x(rng, dt, 2, 1, 3, 5), _x(rng, dt, 4, 5, 2)), {}),
    ),
    "Sum": _unary(F.Sum, dim=None, keepdim=False),
    "Sum-dim": _unary(F.Sum, dim=(0,), keepdim=False),
    "Sum-keepdim": _unary(F.Sum, dim=1, keepdim=True),
    "Prod": _unary(F.Prod, dim=None, keepdim=False),
    "Prod-dim": _unary(F.Prod, dim=1, keepdim=True),
    "Mean": _unary(F.Mean, dim=None, keepdim=False),
    "Mean-dim": _unary(F.Mean, dim=(1,), keepdim=False),
    "Mean-empty": (F.Mean, lambda dt, rng: ((np.zeros((0, 3), dt),), {"dim": None, "keepdim": False})),
    "Var": _unary(F.Var, dim=(0,), correction=1, keepdim=False),
    "Var-all": _unary(F.Var, dim=None, correction=0, keepdim=True),
    "MaxMin": (F.MaxMin, lambda dt, rng: ((_distinct(rng, dt, 3, 4),), {"dim": None, "keepdim": False, "is_max": True})),
    "MaxMin-ties": (F.MaxMin, lambda dt, rng: ((np.array([[1, 3], [3, 0]], dt),), {"dim": None, "keepdim": False, "is_max": True})),
    "MaxMin-dim": (F.MaxMin, lambda dt, rng: ((_distinct(rng, dt, 3, 4),), {"dim": 1, "keepdim": False, "is_max": False})),
    "MaxMinDim": (F.MaxMinDim, lambda dt, rng: ((_distinct(rng, dt, 3, 4),), {"dim": 0, "keepdim": True, "is_max": True})),
    "AMaxMin": (F.AMaxMin, lambda dt, rng: ((np.array([[1, 3], [3, 0]], dt),), {"dims": (1,), "keepdim": False, "is_max": True})),
    "AMaxMin-min": (F.AMaxMin, lambda dt, rng: ((_x(rng, dt, 3, 4),), {"dims": (0, 1), "keepdim": True, "is_max": False})),
    "LogSumExp": _unary(F.LogSumExp, dim=1, keepdim=False),
    "LogSumExp-all": _unary(F.LogSumExp, dim=None, keepdim=True),
    "LogSumExp-empty": (F.LogSumExp, lambda dt, rng: ((np.zeros((2, 0), dt),), {"dim": 1, "keepdim": False})),
    "Reshape": _unary(F.Reshape, shape=(2, 6)),
    "Permute": (F.Permute, lambda dt, rng: ((_x(rng, dt, 2, 3, 4),), {"dims": (2, 0, 1)})),
    "Expand": (F.Expand, lambda dt, rng: ((_x(rng, dt, 3, 1),), {"shape": (2, 3, 4)})),
    "Index-basic": _unary(F.Index, index=(1, slice(None, None, 2))),
    "Index-scalar": _unary(F.Index, index=(1, 2)),
    "Index-array": _unary(F.Index, index=(np.array([0, 2, 0]),)),
    "Index-mask": (
        F.Index,
        lambda dt, rng: ((_x(rng, dt, 3, 4),), {"index": np.array([True, False, True])}),
    ),
    "Diagonal": (F.Diagonal, lambda dt, rng: ((_x(rng, dt, 3, 4),), {"offset": 1, "dim1": 0, "dim2": 1})),
    "Diagonal-3d": (F.Diagonal, lambda dt, rng: ((_x(rng, dt, 4, 2, 3),), {"offset": -1, "dim1": 2, "dim2": 0})),
    "ViewReplay": (F.ViewReplay, lambda dt, rng: ((_x(rng, dt, 4, 3),), {"steps": _steps()})),
    "CopySlices": (
        F.CopySlices,
        lambda dt, rng: ((_x(rng, dt, 4, 3), _x(rng, dt, 3, 2)), {"steps": _steps()}),
    ),
    "IndexPut": (
        F.IndexPut,
        lambda dt, rng: (
            (_x(rng, dt, 3, 4), _x(rng, dt, 4)),
            {"index": (np.array([0, 2, 0]),), "accumulate": False},
        ),
    ),
    "IndexPut-accumulate": (
        F.IndexPut,
        lambda dt, rng: (
            (_x(rng, dt, 3, 4), _x(rng, dt, 1)),
            {"index": (np.array([0, 2, 0]), np.array([1, 1, 1])), "accumulate": True},
        ),
    ),
    "IndexPut-mask": (
        F.IndexPut,
        lambda dt, rng: ((_x(rng, dt, 3, 4), _x(rng, dt)), {"index": np.array([True, False, True]), "accumulate": False}),
    ),
    "Cat": (F.Cat, lambda dt, rng: ((_x(rng, dt, 2, 3), _x(rng, dt, 4, 3)), {"dim": 0})),
    "Cat-last": (F.Cat, lambda dt, rng: ((_x(rng, dt, 2, 3), _x(rng, dt, 2, 1)), {"dim": -1})),
    "Stack": (F.Stack, lambda dt, rng: ((_x(rng, dt, 2, 3), _x(rng, dt, 2, 3)), {"dim": 1})),
    "Linear": (F.Linear, lambda dt, rng: ((_x(rng, dt, 2, 3, 5), _x(rng, dt, 4, 5), _x(rng, dt, 4)), {})),
    "Linear-nobias": (F.Linear, lambda dt, rng: ((_x(rng, dt, 3, 5), _x(rng, dt, 4, 5), None), {})),
    "Conv2d": (
        F.Conv2d,
        lambda dt, rng: (
            (_x(rng, dt, 2, 3, 7, 6), _x(rng, dt, 4, 3, 3, 2), _x(rng, dt, 4)),
            {"stride": (2, 1), "padding": (1, 1)},
        ),
    ),
    "MaxPool2d": (
        F.MaxPool2d,
        lambda dt, rng: (
            (_distinct(rng, dt, 2, 3, 7, 6),),
            {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1)},
        ),
    ),
    "CrossEntropy-index": (
        F.CrossEntropy,
        lambda dt, rng: (
            (_x(rng, dt, 5, 4), np.array([0, 3, -100, 1, 3]), None),
            {"reduction": "mean", "ignore_index": -100},
        ),
        {"inputs_with_grad": (0,)},
    ),
    "CrossEntropy-weight-none": (
        F.CrossEntropy,
        lambda dt, rng: (
            (_x(rng, dt, 5, 4), np.array([0, 3, 2, 1, 3]), _x(rng, dt, 4, lo=0.5)),
            {"reduction": "none", "ignore_index": -100},
        ),
        {"inputs_with_grad": (0,)},
    ),
    "CrossEntropy-probs": (
        F.CrossEntropy,
        lambda dt, rng: (
            (_x(rng, dt, 5, 4), _x(rng, dt, 5, 4, lo=0, hi=1), None),
            {"reduction": "sum", "ignore_index": -100},
        ),
    ),
    "CrossEntropy-no-classes": (
        F.CrossEntropy,
        lambda dt, rng: (
            (np.zeros((3, 0), dt), np.full(3, -100), None),
            {"reduction": "mean", "ignore_index": -100},
        ),
        {"inputs_with_grad": (0,)},
    ),
    "NLLLoss": (
        F.NLLLoss,
        lambda dt, rng: (
            (_x(rng, dt, 5, 4), np.array([0, 3, -100, 1, 3])),
            {"weight": _x(rng, dt, 4, lo=0.5), "ignore_index": -100},
        ),
        {"inputs_with_grad": (0,)},
    ),
    "NLLLoss-noweight": (
        F.NLLLoss,
        lambda dt, rng: ((_x(rng, dt, 5, 4), np.array([0, 3, 2, 1, 3])), {"weight": None, "ignore_index": 2}),
        {"inputs_with_grad": (0,)},
    ),
    "BinaryCrossEntropy": (
        F.BinaryCrossEntropy,
        lambda dt, rng: ((_x(rng, dt, 3, 4, lo=0.01, hi=0.99), _x(rng, dt, 3, 4, lo=0, hi=1)), {}),
    ),
    "BinaryCrossEntropyWithLogits": (
        F.BinaryCrossEntropyWithLogits,
        lambda dt, rng: ((_x(rng, dt, 3, 4), _x(rng, dt, 3, 4, lo=0, hi=1)), {"pos_weight": None}),
    ),
    "BinaryCrossEntropyWithLogits-pw": (
        F.BinaryCrossEntropyWithLogits,
        lambda dt, rng: ((_x(rng, dt, 3, 4), _x(rng, dt, 3, 4, lo=0, hi=1)), {"pos_weight": _x(rng, dt, 4, lo=0.5)}),
    ),
    "Dropout": _unary(F.Dropout, p=0.3),
    "Dropout-all": _unary(F.Dropout, p=1.0),
}

# Ops whose backward raises by design (PyTorch defines no derivative).
NO_BACKWARD = {F.NoDerivative}
# Not ops of their own: the base of the view ops.
ABSTRACT = {F.ViewOp}


def test_every_op_is_in_the_table():
    ops = {
        cls for cls in vars(F).values()
        if inspect.isclass(cls) and issubclass(cls, Op) and cls.__module__ == F.__name__
    }
    covered = {entry[0] for entry in OPS.values()}
    assert ops - ABSTRACT - covered == set()


def _params_for(device, params, rng_seed):
    params = _convert(device, params)
    if "p" in params:  # Dropout: the same host generator on both devices
        params["generator"] = np.random.default_rng(rng_seed)
    return params


def _run(device, cls, inputs, params, g_np, with_grad):
    op = cls()
    op.needs_input_grad = tuple(i in with_grad and x is not None for i, x in enumerate(inputs))
    out = op.forward(*_convert(device, inputs), **params)
    if cls in NO_BACKWARD:
        return out, None
    first = out[0] if cls.n_outputs > 1 else out  # the gradient flows from the first output
    # The upstream gradient lives where the output does (ToDevice moves it).
    g = g_np if not isinstance(first, LIB.array_type) else LIB.from_numpy(g_np, None)
    return out, op.backward(g)


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_matches_on_the_strict_device(name, mode):
    cls, make, *options = OPS[name]
    options = options[0] if options else {}
    dt = _float(mode)
    inputs, params = make(dt, np.random.default_rng(0))
    with_grad = options.get("inputs_with_grad", range(len(inputs)))
    if name == "Cast":  # a cast to the other float dtype
        params = {"dtype": np.dtype(np.float32 if dt == np.float64 else np.float64)}

    # Forward once on the CPU to learn the output's shape and dtype for the upstream gradient.
    probe = cls().forward(*inputs, **_params_for("cpu", params, 1))
    probe = np.asarray(probe[0] if cls.n_outputs > 1 else probe)
    g_dtype = probe.dtype if probe.dtype.kind == "f" else dt
    g_np = np.random.default_rng(1).standard_normal(probe.shape).astype(g_dtype)
    out_cpu, grads_cpu = _run("cpu", cls, inputs, _params_for("cpu", params, 1), g_np, with_grad)
    out_dev, grads_dev = _run("strict", cls, inputs, _params_for("strict", params, 1), g_np, with_grad)

    moves_to_cpu = cls is F.ToDevice
    _assert_same(out_cpu, out_dev, mode, f"{name} forward", device_result=not moves_to_cpu)
    if cls in NO_BACKWARD:
        op = cls()
        op.forward(*_convert("strict", inputs), **_params_for("strict", params, 1))
        with pytest.raises(RuntimeError, match="derivative"):
            op.backward(None)
        return
    assert len(grads_cpu) == len(grads_dev)
    for i, (gc, gd) in enumerate(zip(grads_cpu, grads_dev)):
        if i not in with_grad:
            continue
        _assert_same(gc, gd, mode, f"{name} gradient of input {i}")


def test_to_device_moves_onto_the_strict_device():
    x = np.arange(6.0).reshape(2, 3)
    op = F.ToDevice()
    y = op.forward(x, device=fastdl.device("strict"))
    assert isinstance(y, LIB.array_type)
    np.testing.assert_array_equal(LIB.to_numpy(y), x)
    (dx,) = op.backward(LIB.from_numpy(np.ones((2, 3)), None))
    assert type(dx) is np.ndarray and dx.shape == (2, 3)


# ---------------------------------------------------------------- the reference backend


def _ref_cases(dt, rng):
    """name -> (function, args as NumPy values, indices of args updated in place)."""
    x, w = _x(rng, dt, 2, 3, 7, 6), _x(rng, dt, 4, 3, 3, 2)
    y = ref.conv2d_forward(x, w, None, (2, 1), (1, 1))
    pool_x = _distinct(rng, dt, 2, 3, 7, 6)
    pool_y, idx = ref.maxpool2d_forward(pool_x, (3, 2), (2, 1), (1, 1))
    nan_x = pool_x.copy()
    nan_x[0, 0, 0, 0] = np.nan
    logits, target = _x(rng, dt, 5, 4), np.array([0, 3, -100, 1, 3])
    _, log_probs = ref.cross_entropy_forward(logits, target)
    params = [_x(rng, dt, 3, 4), _x(rng, dt, 5)]
    grads = [_x(rng, dt, 3, 4), _x(rng, dt, 5)]
    states = lambda: [_x(rng, dt, 3, 4, lo=0, hi=1), _x(rng, dt, 5, lo=0, hi=1)]  # noqa: E731
    a = _x(rng, dt, 3, 4)
    norm_x = _x(rng, dt, 2, 3, 5)
    lstm_act, lstm_tc = ref.lstm_cell_forward(*(_x(rng, dt, 2, 12) for _ in range(2)), None, _x(rng, dt, 2, 3))[2:]
    gru_act = ref.gru_cell_forward(_x(rng, dt, 2, 9), _x(rng, dt, 2, 9), _x(rng, dt, 9), _x(rng, dt, 2, 3))[1]
    block_x, block_w = _x(rng, dt, 2, 2, 6, 5), _x(rng, dt, 4, 2, 3, 3)
    block_y, block_codes = ref.conv2d_relu_maxpool2x2_forward(block_x, block_w, None, 1, 1)
    return {
        "matmul": (ref.matmul, (_x(rng, dt, 3, 5), _x(rng, dt, 5, 4)), {}),
        "matmul-trans": (ref.matmul, (_x(rng, dt, 5, 3), _x(rng, dt, 4, 5), True, True), {}),
        "matmul-batched": (ref.matmul, (_x(rng, dt, 2, 3, 5), _x(rng, dt, 2, 4, 5), False, True), {}),
        "matmul-k0": (ref.matmul, (np.zeros((3, 0), dt), np.zeros((0, 2), dt)), {}),
        "conv2d_forward": (ref.conv2d_forward, (x, w, _x(rng, dt, 4), (2, 1), (1, 1)), {}),
        "conv2d_forward-int-args": (ref.conv2d_forward, (x, w, None, 1, 0), {}),
        "conv2d_backward": (ref.conv2d_backward, (_x(rng, dt, *y.shape), x, w, (2, 1), (1, 1)), {}),
        "conv2d_backward-dx-only": (
            ref.conv2d_backward, (_x(rng, dt, *y.shape), x, w, (2, 1), (1, 1), True, False, False), {},
        ),
        "maxpool2d_forward": (ref.maxpool2d_forward, (pool_x, (3, 2), (2, 1), (1, 1)), {}),
        "maxpool2d_forward-nan": (ref.maxpool2d_forward, (nan_x, 2, 2, 0), {}),
        "maxpool2d_backward": (ref.maxpool2d_backward, (_x(rng, dt, *pool_y.shape), idx, pool_x.shape), {}),
        "avgpool2d_forward": (
            ref.avgpool2d_forward, (pool_x, (3, 2), (2, 1), (1, 1), True, False, None), {},
        ),
        "avgpool2d_backward": (
            ref.avgpool2d_backward,
            (_x(rng, dt, 2, 3, 4, 7), pool_x.shape, (3, 2), (2, 1), (1, 1), True, True, 5), {},
        ),
        "adaptive_avgpool2d_forward": (ref.adaptive_avgpool2d_forward, (pool_x, (3, 4)), {}),
        "adaptive_avgpool2d_backward": (
            ref.adaptive_avgpool2d_backward, (_x(rng, dt, 2, 3, 3, 4), pool_x.shape), {},
        ),
        "adaptive_maxpool2d_forward": (ref.adaptive_maxpool2d_forward, (pool_x, (3, 4)), {}),
        "adaptive_maxpool2d_forward-nan": (ref.adaptive_maxpool2d_forward, (nan_x, 2), {}),
        "norm_forward": (ref.norm_forward, (_x(rng, dt, 2, 3, 5), 1e-5), {}),
        "norm_backward": (
            ref.norm_backward, (_x(rng, dt, 2, 3, 5), norm_x, *ref.norm_forward(norm_x, 1e-5)[1::2]), {},
        ),
        "embedding_backward": (
            ref.embedding_backward, (_x(rng, dt, 6, 4), np.array([2, 0, 2, 4, 1, 2]), 5, 1), {},
        ),
        "lstm_cell_forward": (
            ref.lstm_cell_forward, (_x(rng, dt, 2, 12), _x(rng, dt, 2, 12), _x(rng, dt, 12), _x(rng, dt, 2, 3)), {},
        ),
        "lstm_cell_backward": (
            ref.lstm_cell_backward, (lstm_act, lstm_tc, _x(rng, dt, 2, 3), _x(rng, dt, 2, 3), _x(rng, dt, 2, 3)), {},
        ),
        "gru_cell_forward": (
            ref.gru_cell_forward, (_x(rng, dt, 2, 9), _x(rng, dt, 2, 9), None, _x(rng, dt, 2, 3)), {},
        ),
        "gru_cell_backward": (ref.gru_cell_backward, (gru_act, _x(rng, dt, 2, 3), _x(rng, dt, 2, 3)), {}),
        "relu_forward": (ref.relu_forward, (a,), {}),
        "bias_relu_": (ref.bias_relu_, (_x(rng, dt, 2, 3, 7, 6), _x(rng, dt, 3)), {"inplace": (0,)}),
        "bias_relu_-linear": (ref.bias_relu_, (a.copy(), _x(rng, dt, 4)), {"inplace": (0,)}),
        "relu_maxpool2x2_forward": (ref.relu_maxpool2x2_forward, (nan_x,), {}),
        "relu_maxpool2x2_backward": (
            ref.relu_maxpool2x2_backward,
            (_x(rng, dt, 2, 3, 3, 3), *ref.relu_maxpool2x2_forward(pool_x)[::-1], pool_x.shape), {},
        ),
        "conv2d_relu_maxpool2x2_forward": (
            ref.conv2d_relu_maxpool2x2_forward, (block_x, block_w, _x(rng, dt, 4), 1, 1), {},
        ),
        "conv2d_relu_maxpool2x2_backward": (
            ref.conv2d_relu_maxpool2x2_backward,
            (_x(rng, dt, 2, 4, 3, 2), block_codes, block_y, block_x, block_w, 1, 1), {},
        ),
        "relu_backward": (ref.relu_backward, (a, ref.relu_forward(a)), {}),
        "sigmoid_forward": (ref.sigmoid_forward, (a * 20,), {}),
        "sigmoid_backward": (ref.sigmoid_backward, (a, ref.sigmoid_forward(a)), {}),
        "tanh_forward": (ref.tanh_forward, (a,), {}),
        "tanh_backward": (ref.tanh_backward, (a, ref.tanh_forward(a)), {}),
        "cross_entropy_forward": (ref.cross_entropy_forward, (logits, target), {}),
        "cross_entropy_forward-weight-sum": (
            ref.cross_entropy_forward, (logits, target, _x(rng, dt, 4, lo=0.5), "sum"), {},
        ),
        "cross_entropy_forward-probs": (
            ref.cross_entropy_forward, (logits, _x(rng, dt, 5, 4, lo=0, hi=1), None, "none"), {},
        ),
        "cross_entropy_backward": (
            ref.cross_entropy_backward, (np.asarray(1.5, dt), log_probs, target), {},
        ),
        "cross_entropy_backward-none": (
            ref.cross_entropy_backward,
            (_x(rng, dt, 5), log_probs, target, _x(rng, dt, 4, lo=0.5), "none"), {},
        ),
        "cross_entropy_backward-probs": (
            ref.cross_entropy_backward,
            (np.asarray(0.5, dt), log_probs, _x(rng, dt, 5, 4, lo=0, hi=1), None, "mean"), {},
        ),
        "sgd_step": (
            ref.sgd_step,
            ([p.copy() for p in params], grads, states(), 0.1, 0.9, 0.1, True, 0.01, False, False),
            {"inplace": (0, 2)},
        ),
        "sgd_step-first-maximize": (
            ref.sgd_step,
            ([p.copy() for p in params], grads, states(), 0.1, 0.9, 0.0, False, 0.0, True, True),
            {"inplace": (0, 2)},
        ),
        "sgd_step-plain": (ref.sgd_step, ([p.copy() for p in params], grads, [], 0.1), {"inplace": (0,)}),
        "adam_step": (
            ref.adam_step,
            ([p.copy() for p in params], grads, states(), states(), 3, 1e-2, 0.9, 0.999, 1e-8, 0.01),
            {"inplace": (0, 2, 3)},
        ),
        "adam_step-adamw-maximize": (
            ref.adam_step,
            ([p.copy() for p in params], grads, states(), states(), 1, 1e-2, 0.9, 0.999, 1e-8, 0.1, True, True),
            {"inplace": (0, 2, 3)},
        ),
        "adam_step-amsgrad": (
            ref.adam_step,
            ([p.copy() for p in params], grads, states(), states(), 2, 1e-2, 0.9, 0.999, 1e-8, 0.0, False, False, states()),
            {"inplace": (0, 2, 3, 12)},
        ),
        "rmsprop_step": (
            ref.rmsprop_step,
            ([p.copy() for p in params], grads, states(), [], [], 1e-2, 0.99, 1e-8, 0.01),
            {"inplace": (0, 2)},
        ),
        "rmsprop_step-centered-momentum": (
            ref.rmsprop_step,
            ([p.copy() for p in params], grads, states(), [s * 0 for s in states()], states(), 1e-2, 0.99, 1e-8, 0.0, 0.9, True, True),
            {"inplace": (0, 2, 3, 4)},
        ),
        "adagrad_step": (
            ref.adagrad_step,
            ([p.copy() for p in params], grads, states(), 3, 1e-2, 0.1, 0.01),
            {"inplace": (0, 2)},
        ),
        "nadam_step": (
            ref.nadam_step,
            ([p.copy() for p in params], grads, states(), states(), 2, 2e-3, 0.9, 0.999, 1e-8, 0.5, 0.01, 4e-3, True, True),
            {"inplace": (0, 2, 3)},
        ),
    }


REF_NAMES = sorted(_ref_cases(np.float64, np.random.default_rng(0)))


def test_every_reference_function_is_in_the_table():
    public = {name for name in ref.__all__} if hasattr(ref, "__all__") else {
        name for name, v in vars(ref).items() if inspect.isfunction(v) and not name.startswith("_")
    }
    covered = {case[0].__name__ for case in _ref_cases(np.float64, np.random.default_rng(0)).values()}
    assert public - covered == set()


def _flatten(result):
    if isinstance(result, (tuple, list)):
        out = []
        for r in result:
            out.extend(_flatten(r))
        return out
    return [result]


@pytest.mark.parametrize("name", REF_NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_matches_on_the_strict_device(name, dtype):
    cpu_fn, cpu_args, opts = _ref_cases(dtype, np.random.default_rng(0))[name]
    _, dev_args, _ = _ref_cases(dtype, np.random.default_rng(0))[name]
    dev_args = _convert("strict", dev_args)
    cpu_result = cpu_fn(*cpu_args)
    dev_result = cpu_fn(*dev_args)
    for i, (c, d) in enumerate(zip(_flatten(cpu_result), _flatten(dev_result))):
        _assert_same(c, d, "exact", f"{name} output {i}")
    for k in opts.get("inplace", ()):
        # an optimizer's list of arrays, or one array (bias_relu_)
        listed = isinstance(cpu_args[k], list)
        pairs = zip(cpu_args[k], dev_args[k]) if listed else [(cpu_args[k], dev_args[k])]
        for j, (c, d) in enumerate(pairs):
            _assert_same(c, d, "exact", f"{name} argument {k}[{j}] (updated in place)")


def test_reference_has_all():
    # The contract test reads the public functions from the backend packages' __all__.
    assert "matmul" in dir(ref)
    assert _devices.DEVICE_TYPES["strict"].kernels(np.dtype(np.float32)) is ref
