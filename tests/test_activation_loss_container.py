"""Activations (modules and functions), containers, Unflatten and the losses of issue 11:
forward and backward against PyTorch on the same inputs, float64 gradients against finite
differences, state_dict keys and round trips, repr, and argument errors."""

import math
import warnings
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastdl
import fastdl.nn as nn
import fastdl.nn.functional as F
from fastdl.nn import loss as loss_modules
from fastdl.ops.activation import erf
from gradcheck import assert_grad_close

NO_TORCH = "PyTorch is not installed: the parity checks need it"

# name, fastdl/torch keyword arguments
ACTIVATIONS = [
    ("gelu", {}),
    ("gelu", {"approximate": "tanh"}),
    ("elu", {}),
    ("elu", {"alpha": 0.5}),
    ("silu", {}),
    ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 3.0}),
    ("hardtanh", {}),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    ("relu6", {}),
    ("leaky_relu", {"negative_slope": 0.2}),
]
MODULES = [
    ("GELU", (), {}), ("GELU", ("tanh",), {}), ("ELU", (), {"alpha": 0.7}), ("SiLU", (), {}),
    ("Softplus", (2.0, 5.0), {}), ("Hardtanh", (-2.0, 3.0), {}), ("ReLU6", (), {}),
    ("LeakyReLU", (0.3,), {}), ("Softmax", (), {"dim": 1}), ("LogSoftmax", (), {"dim": -1}),
]


def _pair(torch, a, grad=True):
    """The same float array as a fastdl tensor (on the test device) and a torch tensor."""
    return (fastdl.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad))


def _inputs(shape, seed=0, dtype=np.float32, scale=3.0):
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    if x.size:  # the kinks and a large value, where the branches meet
        x.flat[0] = 0.0
        x.flat[-1] = 25.0
    return x.astype(dtype)


def _compare(ours, theirs, xs, ts, rtol=1e-5, atol=1e-6):
    """Forward and every input gradient (for one random upstream gradient) against torch."""
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol, atol)
    w = np.random.default_rng(1).standard_normal(tuple(theirs.shape)).astype(
        theirs.detach().numpy().dtype
    )
    (ours * fastdl.tensor(w)).sum().backward()
    import torch

    (theirs * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts):
        if t.grad is None:
            continue
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol, atol)


def _finite_difference_check(f, x, eps=1e-6):
    """f's gradient (fastdl autograd) against central differences, in float64."""
    x = np.asarray(x, np.float64)
    w = np.random.default_rng(2).standard_normal(x.shape)
    xt = fastdl.tensor(x, requires_grad=True)
    (f(xt) * fastdl.tensor(w)).sum().backward()
    numeric = np.zeros_like(x)
    for i in range(x.size):
        plus, minus = x.copy(), x.copy()
        plus.flat[i] += eps
        minus.flat[i] -= eps
        numeric.flat[i] = (
            (f(fastdl.tensor(plus)).numpy() * w).sum() - (f(fastdl.tensor(minus)).numpy() * w).sum()
        ) / (2 * eps)
    assert_grad_close(xt.grad.numpy(), numeric, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------- erf


def test_erf_is_accurate_in_float64_and_float32():
    x = np.linspace(-7, 7, 14001)
    exact = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(erf(x) - exact)) < 2e-15
    y32 = erf(x.astype(np.float32))
    assert y32.dtype == np.float32
    assert np.max(np.abs(y32 - exact)) < 3e-7
    special = erf(np.array([np.nan, np.inf, -np.inf, 0.0]))
    assert np.isnan(special[0]) and list(special[1:]) == [1.0, -1.0, 0.0]


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("name, kwargs", ACTIVATIONS)
@settings(max_examples=8, deadline=None, derandomize=True)
@given(shape=st.lists(st.integers(0, 5), min_size=0, max_size=3))
def test_activation_functions_match_torch(name, kwargs, shape):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    x, t = _pair(torch, _inputs(tuple(shape)))
    _compare(getattr(F, name)(x, **kwargs), getattr(torch.nn.functional, name)(t, **kwargs),
             [x], [t])


@pytest.mark.parametrize("name, kwargs", ACTIVATIONS)
def test_activation_gradients_float64_finite_differences(name, kwargs):
    # away from the kinks, where a central difference straddles two branches
    x = np.random.default_rng(3).uniform(0.1, 2.5, (3, 4)) * np.sign(
        np.random.default_rng(4).standard_normal((3, 4))
    )
    x[0, 0] = 1.3  # not on hardtanh's bound
    _finite_difference_check(lambda v: getattr(F, name)(v, **kwargs), x)


@pytest.mark.parametrize("name, args, kwargs", MODULES)
def test_activation_modules_match_torch(name, args, kwargs):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert ours.state_dict() == {} and list(ours.parameters()) == []
    x, t = _pair(torch, _inputs((3, 5)))
    _compare(ours(x), theirs(t), [x], [t])


@pytest.mark.parametrize(
    "make",
    [
        lambda nn: nn.LeakyReLU(0.2, True), lambda nn: nn.ELU(0.5, True), lambda nn: nn.SiLU(True),
        lambda nn: nn.Hardtanh(-2, 3, True), lambda nn: nn.ReLU6(True), lambda nn: nn.GELU("tanh"),
        lambda nn: nn.Softplus(2, 10), lambda nn: nn.Softmax(), lambda nn: nn.LeakyReLU(),
    ],
)
def test_activation_repr_matches_torch(make):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    assert repr(make(nn)) == repr(make(torch.nn))


@pytest.mark.parametrize("name, kwargs", [("elu", {}), ("silu", {}), ("hardtanh", {}),
                                          ("relu6", {}), ("leaky_relu", {})])
def test_inplace_activations_write_through_and_differentiate(name, kwargs):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    a = _inputs((4, 3))
    x, t = _pair(torch, a)
    y, u = x * 1, t * 1  # non-leaf, so in-place is allowed
    out = getattr(F, name)(y, inplace=True, **kwargs)
    ref = getattr(torch.nn.functional, name)(u, inplace=True, **kwargs)
    assert out is y
    np.testing.assert_allclose(y.detach().numpy(), u.detach().numpy(), 1e-6, 1e-6)
    _compare(out, ref, [x], [t])
    # no graph: written straight into the storage
    z = fastdl.tensor(a)
    getattr(F, name)(z, inplace=True, **kwargs)
    np.testing.assert_allclose(z.numpy(), ref.detach().numpy(), 1e-6, 1e-6)


def test_inplace_on_a_leaf_that_requires_grad_raises():
    with pytest.raises(RuntimeError):
        F.elu(fastdl.ones(2, requires_grad=True), inplace=True)


def test_softmax_module_default_dim_and_dtype():
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    a = _inputs((2, 3, 4))
    for dim in (None, 0, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = nn.Softmax(dim)(fastdl.tensor(a)).numpy()
            theirs = torch.nn.Softmax(dim)(torch.tensor(a)).numpy()
        np.testing.assert_allclose(ours, theirs, 1e-6, 1e-7)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: F.gelu(fastdl.ones(2), approximate="fast"), ValueError, r"\[gelu\] approximate"),
        (lambda: F.gelu(fastdl.ones(2, dtype=fastdl.int64)), TypeError, r"\[gelu\] input must be"),
        (lambda: F.elu([1.0]), TypeError, r"\[elu\] input must be a Tensor"),
        (lambda: F.hardtanh(fastdl.ones(2), 2.0, 1.0), ValueError, r"\[hardtanh\] min_val"),
        (lambda: nn.Hardtanh(1.0, 1.0), ValueError, r"\[Hardtanh\] max_val"),
    ],
)
def test_activation_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
    with pytest.raises(RuntimeError):  # PyTorch's type for these
        call()


# ---------------------------------------------------------------- Unflatten


def test_unflatten_matches_torch():
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    for dim, size in [(1, (2, 5)), (-1, (5, -1)), (0, (3, 1))]:
        ours, theirs = nn.Unflatten(dim, size), torch.nn.Unflatten(dim, size)
        assert repr(ours) == repr(theirs)
        x, t = _pair(torch, _inputs((3, 10)))
        _compare(ours(x), theirs(t), [x], [t])
    with pytest.raises(TypeError, match=r"\[Unflatten\]"):
        nn.Unflatten(1, 6)
    with pytest.raises(TypeError, match=r"\[Unflatten\]"):
        nn.Unflatten(1, (2.0, 3))


# ---------------------------------------------------------------- containers


def test_module_list_semantics_match_torch():
    torch = pytest.importorskip("torch", reason=NO_TORCH)

    def build(nn):
        layers = nn.ModuleList([nn.Linear(3, 3), nn.ReLU()])
        layers.append(nn.Linear(3, 2))
        layers.extend([nn.ReLU(), nn.ReLU()])
        layers.insert(1, nn.Tanh())
        layers += [nn.Sigmoid()]
        del layers[-2]
        return layers

    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    assert len(ours) == len(theirs) == 6
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert type(ours[-1]).__name__ == "Sigmoid" and type(ours[1]).__name__ == "Tanh"
    assert isinstance(ours[1:3], nn.ModuleList) and len(ours[1:3]) == 2
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    popped = ours.pop(1)
    assert type(popped).__name__ == "Tanh" and list(ours._modules) == [str(i) for i in range(5)]
    ours[0] = nn.Linear(3, 3, bias=False)
    assert "0.bias" not in ours.state_dict()
    combined = ours + nn.ModuleList([nn.ReLU()])
    assert len(combined) == 6 and len(ours) == 5
    with pytest.raises(IndexError):
        ours[7]
    with pytest.raises(NotImplementedError):
        ours(fastdl.ones(1))
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"


def test_module_list_in_a_model_loads_torch_weights():
    torch = pytest.importorskip("torch", reason=NO_TORCH)

    def build(nn):
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
                self.heads = nn.ModuleDict({"b": nn.Linear(4, 1), "a": nn.Linear(4, 2)})

            def forward(self, x):
                for block in self.blocks:
                    x = block(x).relu()
                return self.heads["a"](x) + self.heads["b"](x)

        return Net()

    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: fastdl.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    x = _inputs((5, 4), scale=1.0)
    np.testing.assert_allclose(
        ours(fastdl.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
        1e-5, 1e-6,
    )
    again = build(nn)
    again.load_state_dict(ours.state_dict())
    for (k, a), (_, b) in zip(again.state_dict().items(), ours.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)


def test_module_dict_semantics():
    torch = pytest.importorskip("torch", reason=NO_TORCH)

    def build(nn):
        d = nn.ModuleDict(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU())]))
        d["pool"] = nn.MaxPool2d(2)
        d.update([("fc", nn.Linear(2, 2))])
        del d["act"]
        return d

    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    assert list(ours.keys()) == list(theirs.keys()) == ["conv", "pool", "fc"]
    assert list(ours) == list(ours.keys()) and "conv" in ours and "act" not in ours
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert type(ours.pop("pool")).__name__ == "MaxPool2d" and len(ours) == 2
    assert [k for k, _ in ours.items()] == ["conv", "fc"] and len(list(ours.values())) == 2
    ours.clear()
    assert len(ours) == 0 and ours.state_dict() == {}
    with pytest.raises(TypeError):
        nn.ModuleDict({"x": 3})


def test_parameter_list_matches_torch():
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    a, b = _inputs((2, 3)), _inputs((4,), seed=1).astype(np.float64)

    def build(nn, tensor):
        p = nn.ParameterList([nn.Parameter(tensor(a))])
        p.append(tensor(b))  # a plain tensor becomes a Parameter
        return p

    ours, theirs = build(nn, fastdl.tensor), build(torch.nn, torch.tensor)
    assert isinstance(ours[1], nn.Parameter) and ours[1].requires_grad
    assert len(ours) == 2 and list(ours.state_dict()) == list(theirs.state_dict()) == ["0", "1"]
    assert len(list(ours.parameters())) == 2
    assert isinstance(ours[0:1], nn.ParameterList) and ours[-1] is ours[1]
    np.testing.assert_array_equal(ours[0].detach().numpy(), a)
    if ours[0].device.type == "cpu":  # the repr names the device off the CPU, as PyTorch's
        assert repr(ours) == repr(theirs).replace("torch.", "fastdl.")
    copy = build(nn, fastdl.tensor)
    copy.load_state_dict({k: v * 0 for k, v in ours.state_dict().items()})
    assert float(copy[1].detach().abs().sum()) == 0.0
    with pytest.raises(RuntimeError, match="should not be called"):
        ours(1)


def test_parameter_dict_matches_torch():
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    a = _inputs((3,))

    def build(nn, tensor):
        p = nn.ParameterDict({"scale": nn.Parameter(tensor(a)), "bias": tensor(a)})
        p["extra"] = nn.Parameter(tensor(a))
        return p

    ours, theirs = build(nn, fastdl.tensor), build(torch.nn, torch.tensor)
    assert list(ours.keys()) == list(theirs.keys())  # a plain dict's keys are sorted
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert isinstance(ours["bias"], nn.Parameter) and "scale" in ours and len(ours) == 3
    if ours["scale"].device.type == "cpu":
        one = nn.ParameterDict({"w": nn.Parameter(fastdl.zeros(3))})
        assert repr(one) == repr(
            torch.nn.ParameterDict({"w": torch.nn.Parameter(torch.zeros(3))})
        ).replace("torch.", "fastdl.")
        assert repr(ours) == repr(theirs).replace("torch.", "fastdl.")
    ours.pop("extra")
    assert list(ours) == ["bias", "scale"] and ours.get("nope") is None
    with pytest.raises(TypeError, match="parameter name should be a string"):
        ours[0] = nn.Parameter(fastdl.zeros(1))


# ---------------------------------------------------------------- losses


def _loss_inputs(shape, kind):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(np.float32) * 2
    if kind == "kl":
        x = np.log(rng.random(shape).astype(np.float32) + 0.05)
        t = rng.random(shape).astype(np.float32)
        t.flat[0] = 0.0  # xlogy's zero
        return x, t
    t = rng.standard_normal(shape).astype(np.float32) * 2
    if x.size:
        t.flat[0] = x.flat[0]  # d = 0
    return x, t


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "name, kwargs",
    [("l1_loss", {}), ("smooth_l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}),
     ("smooth_l1_loss", {"beta": 0.0}), ("huber_loss", {}), ("huber_loss", {"delta": 2.5}),
     ("mse_loss", {})],
)
@settings(max_examples=5, deadline=None, derandomize=True)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3))
def test_regression_losses_match_torch(name, kwargs, reduction, shape):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    x, t = _loss_inputs(tuple(shape), "reg")
    (xf, xt), (tf, tt) = _pair(torch, x), _pair(torch, t)
    ours = getattr(F, name)(xf, tf, reduction=reduction, **kwargs)
    theirs = getattr(torch.nn.functional, name)(xt, tt, reduction=reduction, **kwargs)
    _compare(ours, theirs, [xf, tf], [xt, tt])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    x, t = _loss_inputs((4, 5), "kl")
    if log_target:
        t = np.log(t + 0.1)
    (xf, xt), (tf, tt) = _pair(torch, x), _pair(torch, t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = F.kl_div(xf, tf, reduction=reduction, log_target=log_target)
        theirs = torch.nn.functional.kl_div(xt, tt, reduction=reduction, log_target=log_target)
    _compare(ours, theirs, [xf], [xt])
    # the target's gradient where it is positive (PyTorch's at 0 is its own convention)
    ours2 = F.kl_div(xf.detach(), tf, reduction="sum", log_target=log_target)
    theirs2 = torch.nn.functional.kl_div(xt.detach(), tt, reduction="sum", log_target=log_target)
    tf.grad, tt.grad = None, None
    ours2.backward()
    theirs2.backward()
    keep = t.reshape(-1) != 0 if not log_target else slice(None)
    np.testing.assert_allclose(
        tf.grad.numpy().reshape(-1)[keep], tt.grad.numpy().reshape(-1)[keep], 1e-5, 1e-6
    )


def test_kl_div_mean_warns_as_torch():
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(fastdl.zeros(2), fastdl.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.kl_div(fastdl.zeros(2), fastdl.ones(2), reduction="batchmean")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("margin", [0.0, 0.3, -0.2])
@pytest.mark.parametrize("batched", [True, False])
def test_cosine_embedding_loss_matches_torch(reduction, margin, batched):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    rng = np.random.default_rng(6)
    shape = (6, 4) if batched else (4,)
    a, b = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    y = np.array([1, -1, 1, -1, -1, 1]) if batched else np.array(-1)
    (af, at), (bf, bt) = _pair(torch, a), _pair(torch, b)
    ours = loss_modules.CosineEmbeddingLoss(margin, reduction=reduction)(af, bf, fastdl.tensor(y))
    theirs = torch.nn.CosineEmbeddingLoss(margin, reduction=reduction)(at, bt, torch.tensor(y))
    _compare(ours, theirs, [af, bf], [at, bt])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_weighted_bce_losses_match_torch(reduction):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    rng = np.random.default_rng(7)
    p = rng.uniform(0.05, 0.95, (4, 3)).astype(np.float32)
    logits = rng.standard_normal((4, 3)).astype(np.float32)
    y = (rng.random((4, 3)) > 0.5).astype(np.float32)
    w = rng.uniform(0.5, 2, (3,)).astype(np.float32)
    pw = rng.uniform(0.5, 2, (3,)).astype(np.float32)
    (pf, pt), (lf, lt) = _pair(torch, p), _pair(torch, logits)
    ours = nn.BCELoss(weight=fastdl.tensor(w), reduction=reduction)
    theirs = torch.nn.BCELoss(weight=torch.tensor(w), reduction=reduction)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    _compare(ours(pf, fastdl.tensor(y)), theirs(pt, torch.tensor(y)), [pf], [pt])
    ours = nn.BCEWithLogitsLoss(weight=fastdl.tensor(w), reduction=reduction,
                                pos_weight=fastdl.tensor(pw))
    theirs = torch.nn.BCEWithLogitsLoss(weight=torch.tensor(w), reduction=reduction,
                                        pos_weight=torch.tensor(pw))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _compare(ours(lf, fastdl.tensor(y)), theirs(lt, torch.tensor(y)), [lf], [lt])


@pytest.mark.parametrize(
    "name, args, kwargs",
    [("L1Loss", (), {}), ("SmoothL1Loss", (), {"beta": 0.5}), ("HuberLoss", (), {"delta": 0.7}),
     ("KLDivLoss", (), {"reduction": "batchmean"}), ("KLDivLoss", (), {"log_target": True}),
     ("SmoothL1Loss", (None, None, "sum"), {})],
)
def test_loss_modules_match_torch(name, args, kwargs):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    ours, theirs = getattr(loss_modules, name)(*args, **kwargs), getattr(torch.nn, name)(
        *args, **kwargs
    )
    assert repr(ours) == repr(theirs) and ours.state_dict() == {}
    assert ours.reduction == theirs.reduction
    for attr in ("beta", "delta", "log_target"):
        assert getattr(ours, attr, None) == getattr(theirs, attr, None)
    x, t = _loss_inputs((3, 4), "kl")
    (xf, xt), (tf, tt) = _pair(torch, x), _pair(torch, t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _compare(ours(xf, tf), theirs(xt, tt), [xf], [xt])


@pytest.mark.parametrize(
    "f",
    [
        lambda x, t: F.smooth_l1_loss(x, t, beta=0.7),
        lambda x, t: F.huber_loss(x, t, delta=0.8, reduction="sum"),
        lambda x, t: F.kl_div(x, t.abs() + 0.1, reduction="batchmean"),
        lambda x, t: F.kl_div(x, t, reduction="sum", log_target=True),
        lambda x, t: F.cosine_embedding_loss(x, t, fastdl.tensor([1, -1, -1]), margin=-0.5),
    ],
)
def test_loss_gradients_float64_finite_differences(f):
    rng = np.random.default_rng(8)
    t = fastdl.tensor(rng.standard_normal((3, 4)))
    x = rng.standard_normal((3, 4))
    _finite_difference_check(lambda v: f(v, t), x)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: F.smooth_l1_loss(fastdl.ones(2), fastdl.ones(3)), ValueError,
         r"\[smooth_l1_loss\] input and target must have the same shape"),
        (lambda: F.smooth_l1_loss(fastdl.ones(2), fastdl.ones(2), beta=-1.0), ValueError,
         r"\[smooth_l1_loss\] beta"),
        (lambda: F.huber_loss(fastdl.ones(2), fastdl.ones(2), delta=0.0), ValueError,
         r"\[huber_loss\] delta"),
        (lambda: F.huber_loss(fastdl.ones(2), fastdl.ones(2), reduction="avg"), ValueError,
         r"\[huber_loss\] reduction"),
        (lambda: F.kl_div(fastdl.ones(2), fastdl.ones(2), reduction="avg"), ValueError,
         r"\[kl_div\] reduction"),
        (lambda: F.cosine_embedding_loss(fastdl.ones(2, 3), fastdl.ones(2, 3), fastdl.ones(2, 1)),
         ValueError, r"\[cosine_embedding_loss\] 0D or 1D target"),
        (lambda: F.cosine_embedding_loss(fastdl.ones(2, 3), fastdl.ones(2, 4), fastdl.ones(2)),
         ValueError, r"\[cosine_embedding_loss\] input1 and input2"),
        (lambda: F.cosine_embedding_loss(fastdl.ones(3), fastdl.ones(3), fastdl.ones(2)),
         ValueError, r"\[cosine_embedding_loss\] 1D target tensor expects 2D"),
        (lambda: loss_modules.KLDivLoss(reduction="avg"), ValueError, r"\[KLDivLoss\]"),
        (lambda: loss_modules.HuberLoss(reduction="avg"), ValueError, r"\[HuberLoss\]"),
    ],
)
def test_loss_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
