"""fastdl.nn: Module registration and traversal, state_dict round trips (with PyTorch when
installed), repr, layers, losses and nn.utils.

PyTorch parity tests call `pytest.importorskip("torch")` themselves and skip without it.
"""

import copy
import io
import math
from collections import OrderedDict

import fastdl
import numpy as np
import pytest
from fastdl import nn

CNN_KEYS = [
    "conv1.weight",
    "conv1.bias",
    "conv2.weight",
    "conv2.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
]


def founding_cnn(lib_nn):
    """The founding CNN, written once for either library (fastdl.nn or torch.nn)."""

    class Net(lib_nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = lib_nn.Conv2d(1, 8, 3, padding=1)
            self.conv2 = lib_nn.Conv2d(8, 16, 3, padding=1)
            self.pool = lib_nn.MaxPool2d(2)
            self.fc1 = lib_nn.Linear(16 * 7 * 7, 64)
            self.fc2 = lib_nn.Linear(64, 10)

        def forward(self, x):
            x = self.pool(lib_nn.functional.relu(self.conv1(x)))
            x = self.pool(lib_nn.functional.relu(self.conv2(x)))
            x = lib_nn.functional.relu(self.fc1(x.flatten(1)))
            return self.fc2(x)

    return Net()


def every_layer(lib_nn):
    """One Sequential holding every layer kind with non-default options (for repr parity)."""
    return lib_nn.Sequential(
        lib_nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False),
        lib_nn.Conv2d(4, 4, (3, 5), padding="same"),
        lib_nn.Conv2d(4, 6, 1, padding="valid"),
        lib_nn.ReLU(inplace=True),
        lib_nn.MaxPool2d(3, stride=2, padding=1),
        lib_nn.MaxPool2d((2, 2)),
        lib_nn.Sigmoid(),
        lib_nn.Tanh(),
        lib_nn.Dropout(0.25),
        lib_nn.Flatten(0, 2),
        lib_nn.Identity(),
        lib_nn.Sequential(OrderedDict(fc=lib_nn.Linear(6, 2, bias=False), act=lib_nn.ReLU())),
        lib_nn.CrossEntropyLoss(),
        lib_nn.MSELoss(reduction="sum"),
        lib_nn.BCEWithLogitsLoss(),
    )


def arr(t):
    return np.asarray(t.detach().numpy())


# ---------------------------------------------------------------- registration and traversal


def test_founding_cnn_registration_and_state_dict_keys():
    net = founding_cnn(nn)
    assert [name for name, _ in net.named_parameters()] == CNN_KEYS
    assert list(net.state_dict().keys()) == CNN_KEYS
    assert [name for name, _ in net.named_children()] == ["conv1", "conv2", "pool", "fc1", "fc2"]
    assert [name for name, _ in net.named_modules()] == ["", "conv1", "conv2", "pool", "fc1", "fc2"]
    assert len(list(net.parameters())) == 8
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert len(list(net.parameters(recurse=False))) == 0
    assert tuple(net.conv1.weight.shape) == (8, 1, 3, 3)
    assert tuple(net.fc1.weight.shape) == (64, 784)


def test_setattr_registers_and_getattr_delattr():
    m = nn.Module()
    m.w = nn.Parameter(fastdl.ones(2))
    m.sub = nn.Linear(2, 2)
    m.plain = fastdl.ones(3)  # a plain Tensor is just an attribute
    m.register_buffer("running", fastdl.zeros(2))
    m.register_buffer("scratch", fastdl.zeros(1), persistent=False)
    assert list(m._parameters) == ["w"] and list(m._modules) == ["sub"]
    assert list(m.state_dict()) == ["w", "running", "sub.weight", "sub.bias"]
    assert [n for n, _ in m.named_buffers()] == ["running", "scratch"]
    assert m.running is m._buffers["running"]
    with pytest.raises(TypeError, match="parameter 'w'"):
        m.w = fastdl.ones(2)
    m.w = None
    assert "w" not in dict(m.named_parameters())
    with pytest.raises(TypeError, match="child module 'sub'"):
        m.sub = 3
    del m.sub
    assert not hasattr(m, "sub") and list(m.children()) == []
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nope'"):
        _ = m.nope
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("plain", fastdl.ones(1))
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", nn.Parameter(fastdl.ones(1)))
    with pytest.raises(TypeError, match="fastdl.Tensor or None"):
        m.register_buffer("bad", np.ones(2))


def test_assigning_before_init_raises():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(fastdl.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Broken()


def test_shared_parameter_is_listed_once_but_saved_under_each_name():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    assert len(list(model.parameters())) == 3
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


@pytest.mark.cpu_only(reason="the repr names the device off the CPU, as PyTorch's does")
def test_parameter_shares_storage_and_repr():
    t = fastdl.ones(2)
    p = nn.Parameter(t)
    assert p._data is t._data and p.requires_grad and p.is_leaf
    assert repr(p) == "Parameter containing:\ntensor([1., 1.], requires_grad=True)"
    assert not nn.Parameter(fastdl.ones(1), requires_grad=False).requires_grad
    assert type(p * 2) is fastdl.Tensor  # ops on a Parameter give plain Tensors


def test_train_eval_apply_hooks_and_missing_forward():
    net = founding_cnn(nn)
    assert net.training and net.conv1.training
    assert net.eval() is net and not net.training and not net.fc2.training
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="boolean"):
        net.train("yes")
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Conv2d", "Conv2d", "MaxPool2d", "Linear", "Linear", "Net"]

    lin = nn.Linear(2, 2)
    handle = lin.register_forward_hook(lambda mod, inputs, out: out * 0)
    assert float(lin(fastdl.ones(1, 2)).abs().sum()) == 0.0
    handle.remove()
    assert float(lin(fastdl.ones(1, 2)).abs().sum()) != 0.0
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(fastdl.ones(1))


def test_zero_grad_and_requires_grad_():
    lin = nn.Linear(3, 2)
    lin(fastdl.ones(4, 3)).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad(set_to_none=False)
    assert np.all(lin.weight.grad.numpy() == 0)
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None
    lin.requires_grad_(False)
    assert not any(p.requires_grad for p in lin.parameters())


def test_deepcopy_keeps_parameters_with_their_own_storage():
    net = founding_cnn(nn)
    twin = copy.deepcopy(net)
    assert all(isinstance(p, nn.Parameter) for p in twin.parameters())
    assert list(twin.state_dict()) == CNN_KEYS
    with fastdl.no_grad():
        twin.fc2.bias.fill_(7.0)
    assert not np.any(net.fc2.bias.detach().numpy() == 7.0)


# ---------------------------------------------------------------- state_dict


def test_state_dict_values_are_detached_and_share_storage():
    lin = nn.Linear(3, 2)
    sd = lin.state_dict()
    assert isinstance(sd, OrderedDict)
    assert not sd["weight"].requires_grad and not isinstance(sd["weight"], nn.Parameter)
    with fastdl.no_grad():
        lin.weight.fill_(2.0)
    assert np.all(sd["weight"].numpy() == 2.0)
    assert lin.state_dict(keep_vars=True)["weight"] is lin.weight


def test_load_state_dict_copies_in_place_from_tensors_and_arrays():
    src, dst = founding_cnn(nn), founding_cnn(nn)
    params_before = [(p, p._data) for p in dst.parameters()]
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    for (p, data), q in zip(params_before, src.parameters()):
        assert p._data is data  # copied into the existing storage
        np.testing.assert_array_equal(arr(p), arr(q))
    as_arrays = {k: v.numpy() * 0 + 1.5 for k, v in src.state_dict().items()}
    dst.load_state_dict(as_arrays)
    assert np.all(dst.conv2.bias.detach().numpy() == 1.5)
    with fastdl.no_grad():
        dst.fc1.weight.fill_(0.0)
    assert np.all(as_arrays["fc1.weight"] == 1.5)  # no aliasing of the source


def test_load_state_dict_strict_errors_and_non_strict_result():
    net = founding_cnn(nn)
    sd = net.state_dict()
    del sd["fc2.bias"]
    sd["extra.weight"] = fastdl.ones(1)
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(sd)
    msg = str(err.value)
    assert "Error(s) in loading state_dict for Net" in msg
    assert 'Missing key(s) in state_dict: "fc2.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["fc2.bias"] and result.unexpected_keys == ["extra.weight"]
    missing, _unexpected = result  # a NamedTuple
    assert missing == ["fc2.bias"]


def test_load_state_dict_size_mismatch_names_key_and_shapes_and_changes_nothing():
    net = founding_cnn(nn)
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    sd = {k: fastdl.zeros(*v.shape) for k, v in net.state_dict().items()}
    sd["conv1.weight"] = fastdl.zeros(8, 1, 5, 5)
    for strict in (True, False):
        with pytest.raises(RuntimeError) as err:
            net.load_state_dict(sd, strict=strict)
        msg = str(err.value)
        assert "size mismatch for conv1.weight" in msg
        assert "(8, 1, 5, 5)" in msg and "(8, 1, 3, 3)" in msg
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    with pytest.raises(TypeError, match="dict-like"):
        net.load_state_dict([1, 2])
    with pytest.raises(TypeError, match="'fc2.bias' must be a numeric"):
        net.load_state_dict({**sd, "conv1.weight": net.conv1.weight, "fc2.bias": "zeros"})


# A module reachable under two names and a parameter shared by two modules: PyTorch's
# state_dict (and so load_state_dict) walks `_modules` without removing duplicates, while
# named_parameters/named_buffers/named_modules/modules/children list each object once.


def _with_buffers(lib):
    class WithBuffers(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = lib.nn.Parameter(lib.ones(2))
            self.register_buffer("running", lib.zeros(2))
            self.register_buffer("scratch", lib.zeros(2), persistent=False)

        def forward(self, x):
            return x * self.scale

    return WithBuffers


def _sharing_models(lib):
    """name -> a module with shared submodules or tied parameters/buffers, for either library."""
    lnn, buffered = lib.nn, _with_buffers(lib)
    lin = lnn.Linear(2, 2)
    twice = lnn.Sequential(lin, lnn.ReLU(), lin)
    a, b = lnn.Linear(2, 2), lnn.Linear(2, 2)
    b.weight = a.weight
    tied = lnn.Sequential(a, b)
    buf = buffered()
    buffered_twice = lnn.Sequential(lnn.Linear(2, 2), buf, buf)
    c, d = buffered(), buffered()
    d.running = c.running
    tied_buffer = lnn.Sequential(c, d)
    inner_lin = lnn.Linear(2, 2)
    inner = lnn.Sequential(inner_lin, inner_lin)
    nested = lnn.Sequential(inner, lnn.Sequential(inner, inner_lin))
    also_attribute = lnn.Sequential(lnn.Linear(2, 2))
    also_attribute.add_module("again", also_attribute[0])
    return {
        "twice": twice,
        "tied": tied,
        "buffered_twice": buffered_twice,
        "tied_buffer": tied_buffer,
        "nested": nested,
        "also_attribute": also_attribute,
    }


def _traversal(model):
    """Every traversal's names, and which objects they yield (numbered by first sight)."""
    ids = {}

    def ident(x):
        return ids.setdefault(id(x), len(ids))

    return {
        "state_dict": list(model.state_dict()),
        "state_dict_prefix": list(model.state_dict(prefix="m.")),
        "named_parameters": [(n, ident(p)) for n, p in model.named_parameters()],
        "named_parameters_all": [
            (n, ident(p)) for n, p in model.named_parameters(remove_duplicate=False)
        ],
        "parameters": [ident(p) for p in model.parameters()],
        "named_buffers": [(n, ident(b)) for n, b in model.named_buffers()],
        "named_buffers_all": [
            (n, ident(b)) for n, b in model.named_buffers(remove_duplicate=False)
        ],
        "buffers": [ident(b) for b in model.buffers()],
        "named_modules": [(n, ident(m)) for n, m in model.named_modules()],
        "named_modules_all": [
            (n, ident(m)) for n, m in model.named_modules(remove_duplicate=False)
        ],
        "modules": [ident(m) for m in model.modules()],
        "named_children": [(n, ident(m)) for n, m in model.named_children()],
        "children": [ident(m) for m in model.children()],
    }


def test_shared_submodule_is_in_state_dict_under_every_name():
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    sd = model.state_dict()
    assert type(sd) is OrderedDict
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    with fastdl.no_grad():
        lin.weight.fill_(3.0)
    assert np.all(sd["0.weight"].numpy() == 3.0) and np.all(sd["2.weight"].numpy() == 3.0)
    kept = model.state_dict(keep_vars=True)
    assert kept["0.weight"] is kept["2.weight"] is lin.weight
    # ... but the traversals list it (and its parameters) once
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]
    assert [n for n, _ in model.named_children()] == ["0", "1"]
    # nested sharing and a child registered under a second name
    models = _sharing_models(fastdl)
    assert list(models["nested"].state_dict()) == [
        "0.0.weight", "0.0.bias", "0.1.weight", "0.1.bias",
        "1.0.0.weight", "1.0.0.bias", "1.0.1.weight", "1.0.1.bias", "1.1.weight", "1.1.bias",
    ]  # fmt: skip
    assert list(models["also_attribute"].state_dict()) == [
        "0.weight", "0.bias", "again.weight", "again.bias"
    ]
    assert list(models["buffered_twice"].state_dict()) == [
        "0.weight", "0.bias", "1.scale", "1.running", "2.scale", "2.running"
    ]
    # PyTorch's prefix rule: every key is prefix + name
    assert list(lin.state_dict(prefix="m.")) == ["m.weight", "m.bias"]
    assert list(model.state_dict(prefix="net.")) == [
        "net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"
    ]


def test_tied_parameter_is_in_state_dict_under_every_name():
    model = _sharing_models(fastdl)["tied"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    assert len(list(model.parameters())) == 3
    names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_state_dict_of_shared_modules_loads_back_strictly():
    for name, model in _sharing_models(fastdl).items():
        sd = model.state_dict()
        result = model.load_state_dict(sd)  # strict: every key state_dict produces is accepted
        assert result.missing_keys == [] and result.unexpected_keys == [], name
        fresh = _sharing_models(fastdl)[name]
        fresh.load_state_dict({k: v.numpy() for k, v in sd.items()})
        for key, value in fresh.state_dict().items():
            np.testing.assert_array_equal(value.numpy(), sd[key].numpy(), err_msg=name)
        buffer = io.BytesIO()
        fastdl.save(sd, buffer)
        buffer.seek(0)
        assert fresh.load_state_dict(fastdl.load(buffer)).missing_keys == []


def test_load_state_dict_of_shared_module_copies_in_order_and_needs_every_name():
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    values = {k: np.full(v.shape, 1.0 if k[0] == "0" else 2.0, np.float32)
              for k, v in model.state_dict().items()}  # fmt: skip
    model.load_state_dict(values)
    assert np.all(lin.weight.detach().numpy() == 2.0)  # '2.weight' is copied last, as in torch
    partial = {k: v for k, v in values.items() if k.startswith("0.")}
    with pytest.raises(RuntimeError, match='Missing key.*"2.weight", "2.bias"'):
        model.load_state_dict(partial)
    result = model.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["2.weight", "2.bias"] and result.unexpected_keys == []
    assert np.all(lin.weight.detach().numpy() == 1.0)


def test_traversals_of_shared_modules_and_tied_parameters_match_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = _sharing_models(fastdl), _sharing_models(torch)
    for name in ours:
        mine, ref = _traversal(ours[name]), _traversal(theirs[name])
        for what in ref:
            assert mine[what] == ref[what], f"{name}: {what}"


def test_load_state_dict_of_shared_modules_matches_torch():
    torch = pytest.importorskip("torch")
    for name in _sharing_models(fastdl):
        theirs = _sharing_models(torch)[name]
        keys = list(theirs.state_dict().items())
        torch_sd = OrderedDict((k, torch.full_like(v, float(i))) for i, (k, v) in enumerate(keys))
        ours = _sharing_models(fastdl)[name]
        assert list(ours.state_dict()) == list(torch_sd)
        ours.load_state_dict(torch_sd)
        theirs.load_state_dict(torch_sd)
        for key, value in theirs.state_dict().items():
            np.testing.assert_array_equal(
                ours.state_dict()[key].numpy(), value.numpy(), err_msg=f"{name}: {key}"
            )
        partial = OrderedDict(list(torch_sd.items())[:2])
        mine, ref = ours.load_state_dict(partial, False), theirs.load_state_dict(partial, False)
        assert mine.missing_keys == ref.missing_keys, name
        assert mine.unexpected_keys == ref.unexpected_keys, name


def test_state_dict_weight_transfer_both_ways_with_torch():
    torch = pytest.importorskip("torch")
    fnet, tnet = founding_cnn(nn), founding_cnn(torch.nn)
    assert list(tnet.state_dict()) == list(fnet.state_dict()) == CNN_KEYS

    fnet.load_state_dict(tnet.state_dict())  # torch tensors in, directly
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    y_t = tnet(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(arr(fnet(fastdl.tensor(x))), y_t, rtol=1e-4, atol=1e-5)

    fresh = founding_cnn(nn)  # and back: fastdl -> torch
    tnet.load_state_dict(
        {k: torch.from_numpy(v.numpy().copy()) for k, v in fresh.state_dict().items()}
    )
    y_t = tnet(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(arr(fresh(fastdl.tensor(x))), y_t, rtol=1e-4, atol=1e-5)


def test_repr_matches_torch():
    torch = pytest.importorskip("torch")
    assert repr(founding_cnn(nn)) == repr(founding_cnn(torch.nn))
    assert repr(every_layer(nn)) == repr(every_layer(torch.nn))
    assert repr(nn.Module()) == repr(torch.nn.Module()) == "Module()"


def test_repr_format_without_torch():
    expected = (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): Sequential(\n"
        "    (0): ReLU()\n"
        "  )\n"
        ")"
    )
    assert repr(nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU()))) == expected


# ---------------------------------------------------------------- dtype and device


def test_to_double_float_keep_parameter_objects_and_skip_integer_buffers():
    lin = nn.Linear(3, 2)
    lin.register_buffer("count", fastdl.zeros(1, dtype=fastdl.int64))
    weight = lin.weight
    assert lin.double() is lin
    assert lin.weight is weight and lin.weight.dtype == fastdl.float64
    assert lin.bias.dtype == fastdl.float64 and lin.count.dtype == fastdl.int64
    out = lin(fastdl.ones(1, 3, dtype=fastdl.float64))
    assert out.dtype == fastdl.float64
    lin.to(fastdl.float32)
    assert lin.weight.dtype == fastdl.float32
    lin.float().cpu()
    lin.to("cpu", dtype=fastdl.float64)
    assert lin.weight.dtype == fastdl.float64
    with pytest.raises(TypeError, match="floating point"):
        lin.to(fastdl.int64)
    if not fastdl.cuda.is_available():
        with pytest.raises(RuntimeError):
            lin.to("cuda")


# ---------------------------------------------------------------- layers


def test_sequential_container_api():
    a, b, c = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)
    seq = nn.Sequential(a, b)
    assert len(seq) == 2 and seq[0] is a and seq[-1] is b and list(seq) == [a, b]
    assert seq.append(c) is seq and seq[2] is c
    assert tuple(seq(fastdl.ones(5, 4)).shape) == (5, 2)
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and list(head) == [a, b]
    with pytest.raises(IndexError):
        seq[3]
    del seq[0]
    assert list(seq._modules) == ["0", "1"] and seq[0] is b
    named = nn.Sequential(OrderedDict([("fc", a), ("act", b)]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    assert named.fc is a


def test_linear_conv_maxpool_shapes_and_forward():
    x = fastdl.randn(2, 3, 9, 9)
    assert tuple(nn.Conv2d(3, 5, 3)(x).shape) == (2, 5, 7, 7)
    assert tuple(nn.Conv2d(3, 5, 3, stride=2, padding=1)(x).shape) == (2, 5, 5, 5)
    assert tuple(nn.Conv2d(3, 5, (3, 5), padding="same")(x).shape) == (2, 5, 9, 9)
    assert tuple(nn.Conv2d(3, 5, 3, padding="valid")(x).shape) == (2, 5, 7, 7)
    assert nn.Conv2d(3, 5, 3, bias=False).bias is None
    assert tuple(nn.MaxPool2d(2)(x).shape) == (2, 3, 4, 4)
    y, idx = nn.MaxPool2d(3, stride=3, return_indices=True)(x)
    assert tuple(y.shape) == tuple(idx.shape) == (2, 3, 3, 3)
    lin = nn.Linear(9, 4)
    expected = x.detach().numpy() @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
    np.testing.assert_allclose(arr(lin(x)), expected, rtol=1e-5, atol=1e-6)
    assert tuple(nn.Flatten()(x).shape) == (2, 243)
    assert tuple(nn.Flatten(0, 1)(x).shape) == (6, 9, 9)
    assert nn.Identity(3, foo=1)(x) is x
    np.testing.assert_array_equal(arr(nn.ReLU()(x)), np.maximum(x.detach().numpy(), 0))
    np.testing.assert_allclose(arr(nn.Tanh()(x)), np.tanh(x.detach().numpy()), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        arr(nn.Sigmoid()(x)), 1 / (1 + np.exp(-x.detach().numpy())), rtol=1e-6, atol=1e-6
    )


def test_unsupported_conv_and_pool_options_raise_clearly():
    # (groups, dilation and 'same' with an even kernel work now: tests/test_conv_embedding.py)
    with pytest.raises(NotImplementedError, match="reflect"):
        nn.Conv2d(4, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(4, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(4, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="Invalid padding string"):
        nn.Conv2d(4, 4, 3, padding="full")
    with pytest.raises(NotImplementedError, match="dilation"):
        nn.MaxPool2d(2, dilation=2)
    with pytest.raises(NotImplementedError, match="ceil_mode"):
        nn.MaxPool2d(2, ceil_mode=True)
    with pytest.raises(ValueError, match="half of kernel size"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="dropout probability"):
        nn.Dropout(1.5)


def test_dropout_train_and_eval():
    fastdl.manual_seed(0)
    drop = nn.Dropout(0.25)
    x = fastdl.ones(200, 100)
    y = arr(drop(x))
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    drop.eval()
    np.testing.assert_array_equal(arr(drop(x)), x.detach().numpy())


# ---------------------------------------------------------------- losses


def test_losses_against_hand_computed_values():
    x = fastdl.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    target = fastdl.tensor([0, 2])
    logp = x.detach().numpy() - np.log(np.exp(x.detach().numpy()).sum(1, keepdims=True))
    ce = -(logp[0, 0] + logp[1, 2]) / 2
    assert nn.CrossEntropyLoss()(x, target).item() == pytest.approx(ce, rel=1e-5)
    assert nn.NLLLoss()(fastdl.tensor(logp), target).item() == pytest.approx(ce, rel=1e-5)
    w = fastdl.tensor([1.0, 2.0, 3.0])
    ce_w = -(1.0 * logp[0, 0] + 3.0 * logp[1, 2]) / 4.0
    assert nn.CrossEntropyLoss(weight=w)(x, target).item() == pytest.approx(ce_w, rel=1e-5)
    per_sample = nn.CrossEntropyLoss(reduction="none")(x, target)
    np.testing.assert_allclose(arr(per_sample), [-logp[0, 0], -logp[1, 2]], rtol=1e-5)

    a, b = fastdl.tensor([1.0, 2.0, 3.0]), fastdl.tensor([1.0, 4.0, 0.0])
    assert nn.MSELoss()(a, b).item() == pytest.approx(13 / 3)
    assert nn.MSELoss(reduction="sum")(a, b).item() == pytest.approx(13.0)

    p, t = fastdl.tensor([0.9, 0.2]), fastdl.tensor([1.0, 0.0])
    bce = -(math.log(0.9) + math.log(0.8)) / 2
    assert nn.BCELoss()(p, t).item() == pytest.approx(bce, rel=1e-5)
    z = fastdl.tensor([0.3, -1.2])
    pw = fastdl.tensor([2.0])
    sig = 1 / (1 + np.exp(-z.detach().numpy().astype(np.float64)))
    bcel = -(2.0 * math.log(sig[0]) + math.log(1 - sig[1])) / 2
    assert nn.BCEWithLogitsLoss(pos_weight=pw)(z, t).item() == pytest.approx(bcel, rel=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def test_loss_weights_are_buffers():
    loss = nn.CrossEntropyLoss(weight=fastdl.ones(3))
    assert list(loss.state_dict()) == ["weight"]
    assert list(nn.BCEWithLogitsLoss(pos_weight=fastdl.ones(2)).state_dict()) == ["pos_weight"]
    assert list(nn.MSELoss().state_dict()) == []


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("MSELoss", {}),
        ("MSELoss", {"reduction": "sum"}),
        ("CrossEntropyLoss", {}),
        ("CrossEntropyLoss", {"weight": [0.5, 1.0, 2.0, 1.5], "ignore_index": 1}),
        ("CrossEntropyLoss", {"probs": True}),
        ("NLLLoss", {"reduction": "sum"}),
        ("BCELoss", {}),
        ("BCEWithLogitsLoss", {"pos_weight": [1.0, 2.0, 0.5, 3.0]}),
    ],
)
def test_losses_and_gradients_against_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    kwargs = dict(kwargs)
    probs = kwargs.pop("probs", False)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    if name in ("CrossEntropyLoss", "NLLLoss"):
        target = rng.integers(0, 4, 6)
        if probs:
            target = rng.dirichlet(np.ones(4), 6).astype(np.float32)
        if name == "NLLLoss":
            x = x - np.log(np.exp(x).sum(1, keepdims=True))
    elif name == "BCELoss":
        x = 1 / (1 + np.exp(-x))
        target = rng.random((6, 4)).astype(np.float32)
    else:
        target = rng.random((6, 4)).astype(np.float32)
    f_kwargs = {k: fastdl.tensor(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    t_kwargs = {k: torch.tensor(v) if isinstance(v, list) else v for k, v in kwargs.items()}

    fx = fastdl.tensor(x, requires_grad=True)
    f_loss = getattr(nn, name)(**f_kwargs)(fx, fastdl.tensor(target))
    f_loss.backward()
    tx = torch.tensor(x, requires_grad=True)
    t_loss = getattr(torch.nn, name)(**t_kwargs)(tx, torch.tensor(target))
    t_loss.backward()
    assert f_loss.item() == pytest.approx(t_loss.item(), rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- nn.utils


def _params_with_grads(grads):
    params = []
    for g in grads:
        p = nn.Parameter(fastdl.zeros(*np.shape(g)))
        p.grad = fastdl.tensor(np.asarray(g, dtype=np.float32))
        params.append(p)
    return params


def test_clip_grad_norm_hand_computed():
    params = _params_with_grads([[3.0, 0.0], [[4.0]]])
    total = nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert isinstance(total, fastdl.Tensor) and total.item() == pytest.approx(5.0)
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(params[0].grad.numpy(), [3 * scale, 0.0], rtol=1e-6)
    np.testing.assert_allclose(params[1].grad.numpy(), [[4 * scale]], rtol=1e-6)

    small = _params_with_grads([[0.3, 0.4]])
    assert nn.utils.clip_grad_norm_(small, 10.0).item() == pytest.approx(0.5)
    np.testing.assert_allclose(small[0].grad.numpy(), [0.3, 0.4], rtol=1e-6)  # untouched

    inf = _params_with_grads([[1.0, -7.0], [2.0]])
    assert nn.utils.clip_grad_norm_(inf, 3.5, norm_type=math.inf).item() == pytest.approx(7.0)
    np.testing.assert_allclose(inf[0].grad.numpy(), [0.5, -3.5], rtol=1e-5)

    one = _params_with_grads([[1.0, -2.0], [3.0]])
    assert nn.utils.clip_grad_norm_(one[0], 100.0, norm_type=1).item() == pytest.approx(3.0)

    assert nn.utils.clip_grad_norm_([nn.Parameter(fastdl.ones(2))], 1.0).item() == 0.0
    bad = _params_with_grads([[np.nan, 1.0]])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)


def test_clip_grad_norm_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s).astype(np.float32) * 3 for s in [(4, 5), (5,), (2, 3, 3)]]
    for norm_type in (2.0, 1.0, 3.0, math.inf):
        f_params = _params_with_grads(grads)
        t_params = []
        for g in grads:
            p = torch.zeros(g.shape, requires_grad=True)
            p.grad = torch.tensor(g)
            t_params.append(p)
        f_total = nn.utils.clip_grad_norm_(f_params, 2.0, norm_type=norm_type)
        t_total = torch.nn.utils.clip_grad_norm_(t_params, 2.0, norm_type=norm_type)
        assert f_total.item() == pytest.approx(t_total.item(), rel=1e-5)
        for fp, tp in zip(f_params, t_params):
            np.testing.assert_allclose(fp.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_value_and_vector_round_trip():
    params = _params_with_grads([[-3.0, 0.5], [[2.0, -0.1]]])
    nn.utils.clip_grad_value_(params, 1.0)
    np.testing.assert_array_equal(params[0].grad.numpy(), [-1.0, 0.5])
    np.testing.assert_allclose(params[1].grad.numpy(), [[1.0, -0.1]], rtol=1e-6)

    lin = nn.Linear(3, 2)
    vec = nn.utils.parameters_to_vector(lin.parameters())
    assert tuple(vec.shape) == (8,)
    np.testing.assert_array_equal(vec.numpy()[:6], lin.weight.detach().numpy().ravel())
    nn.utils.vector_to_parameters(fastdl.arange(8, dtype=fastdl.float32), lin.parameters())
    np.testing.assert_array_equal(lin.bias.detach().numpy(), [6.0, 7.0])
    with pytest.raises(ValueError, match="8 elements"):
        nn.utils.vector_to_parameters(fastdl.zeros(5), lin.parameters())
