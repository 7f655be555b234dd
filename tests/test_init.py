"""fastdl.nn.init: PyTorch's formulas (gains, fans, bounds), sample statistics of every
initialiser, and the default initialisation of Linear and Conv2d."""

import math

import fastdl
import numpy as np
import pytest
from fastdl import nn
from fastdl.nn import init


def values(t):
    return t.detach().numpy().astype(np.float64).ravel()


def assert_uniform(t, bound):
    # U(-b, b): inside the bounds, mean 0 and std b / sqrt(3), within sampling error.
    v = values(t)
    assert np.all(np.abs(v) <= bound * (1 + 1e-6))
    assert np.abs(v).max() > 0.95 * bound  # actually reaches towards the bound
    se = bound / math.sqrt(3 * v.size)
    assert abs(v.mean()) < 6 * se
    assert v.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)


def assert_normal(t, std):
    v = values(t)
    assert abs(v.mean()) < 6 * std / math.sqrt(v.size)
    assert v.std() == pytest.approx(std, rel=0.02)


@pytest.mark.parametrize(
    "name, param, expected",
    [
        ("linear", None, 1.0),
        ("conv2d", None, 1.0),
        ("sigmoid", None, 1.0),
        ("tanh", None, 5.0 / 3),
        ("relu", None, math.sqrt(2.0)),
        ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01**2))),
        ("leaky_relu", math.sqrt(5), math.sqrt(2.0 / 6)),
        ("selu", None, 0.75),
    ],
)
def test_calculate_gain(name, param, expected):
    assert init.calculate_gain(name, param) == pytest.approx(expected, rel=1e-12)


def test_calculate_gain_errors_and_torch_parity():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", "big")
    torch = pytest.importorskip("torch")
    for name in ("linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"):
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2)
    )


def test_fans():
    assert init._calculate_fan_in_and_fan_out(fastdl.empty(30, 20)) == (20, 30)
    assert init._calculate_fan_in_and_fan_out(fastdl.empty(16, 8, 3, 5)) == (120, 240)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(fastdl.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(fastdl.empty(3, 3), mode="fan_avg")


def test_default_linear_init_matches_pytorch_formula():
    fastdl.manual_seed(0)
    layer = nn.Linear(400, 1000)
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) reduces to this
    assert_uniform(layer.weight, bound)
    assert_uniform(nn.Linear(400, 20000).bias, bound)
    assert layer.weight.requires_grad and layer.weight.is_leaf and layer.weight.grad is None


def test_default_conv2d_init_matches_pytorch_formula():
    fastdl.manual_seed(1)
    conv = nn.Conv2d(16, 256, (3, 5))
    bound = 1 / math.sqrt(16 * 3 * 5)
    assert_uniform(conv.weight, bound)
    assert_uniform(nn.Conv2d(16, 20000, (3, 5)).bias, bound)
    assert conv.weight.dtype == fastdl.float32


def test_default_init_matches_torch_layers():
    torch = pytest.importorskip("torch")
    for f_layer, t_layer, fan_in in [
        (nn.Linear(50, 300), torch.nn.Linear(50, 300), 50),
        (nn.Conv2d(3, 64, 5), torch.nn.Conv2d(3, 64, 5), 75),
    ]:
        bound = 1 / math.sqrt(fan_in)
        for name in ("weight", "bias"):
            f_v = values(getattr(f_layer, name))
            t_v = getattr(t_layer, name).detach().numpy().astype(np.float64).ravel()
            assert np.abs(f_v).max() <= bound and np.abs(t_v).max() <= bound
        # Same U(-b, b): the weights' spreads agree within sampling error.
        assert values(f_layer.weight).std() == pytest.approx(
            t_layer.weight.detach().numpy().std(), rel=0.06
        )


def test_seeded_init_is_reproducible():
    fastdl.manual_seed(7)
    a = nn.Linear(5, 5).weight.detach().numpy().copy()
    fastdl.manual_seed(7)
    b = nn.Linear(5, 5).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


def test_xavier_and_kaiming_statistics():
    fastdl.manual_seed(2)
    w = fastdl.empty(500, 300)
    fan_in, fan_out = 300, 500
    assert init.xavier_uniform_(w, gain=2.0) is w
    assert_uniform(w, 2.0 * math.sqrt(6.0 / (fan_in + fan_out)))
    assert_normal(init.xavier_normal_(w), math.sqrt(2.0 / (fan_in + fan_out)))
    # a=0 makes leaky_relu's gain sqrt(2): the slope is a itself, not the 0.01 default.
    assert_uniform(init.kaiming_uniform_(w), math.sqrt(2.0) * math.sqrt(3.0 / fan_in))
    assert_uniform(
        init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu"), math.sqrt(6.0 / fan_out)
    )
    assert_normal(init.kaiming_normal_(w, nonlinearity="relu"), math.sqrt(2.0 / fan_in))
    conv = fastdl.empty(64, 32, 3, 3)
    assert_normal(init.kaiming_normal_(conv, mode="fan_out"), math.sqrt(2.0 / (64 * 9)))


def test_uniform_normal_constant():
    fastdl.manual_seed(3)
    w = fastdl.empty(200, 500)
    v = values(init.uniform_(w, -1.0, 3.0))
    assert v.min() >= -1.0 and v.max() <= 3.0 and v.mean() == pytest.approx(1.0, abs=0.02)
    v = values(init.normal_(w, 2.0, 0.5))
    assert v.mean() == pytest.approx(2.0, abs=0.01) and v.std() == pytest.approx(0.5, rel=0.02)
    assert np.all(values(init.constant_(w, 0.25)) == 0.25)
    assert np.all(values(init.zeros_(w)) == 0.0)
    assert np.all(values(init.ones_(w)) == 1.0)
    gen = np.random.default_rng(5)
    a = values(init.uniform_(fastdl.empty(10), generator=gen))
    b = values(init.uniform_(fastdl.empty(10), generator=np.random.default_rng(5)))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "mean, std, a, b",
    [
        (0.0, 1.0, -2.0, 2.0),
        (1.0, 0.5, 0.0, 1.2),
        (0.0, 1.0, 3.0, 4.0),
        (0.0, 1.0, -9.0, -8.0),
        (0.0, 1.0, 8.0, 9.0),
    ],
)
def test_trunc_normal_bounds_and_moments(mean, std, a, b):
    fastdl.manual_seed(4)
    v = values(init.trunc_normal_(fastdl.empty(400, 500), mean, std, a, b))
    assert v.min() >= a and v.max() <= b
    # Moments of the truncated normal, from the standard normal pdf phi and cdf Phi.
    alpha, beta = (a - mean) / std, (b - mean) / std
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    Phi = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))
    z = Phi(beta) - Phi(alpha) if alpha <= 0 else Phi(-alpha) - Phi(-beta)  # no cancellation
    t_mean = mean + std * (phi(alpha) - phi(beta)) / z
    t_var = std**2 * (
        1 + (alpha * phi(alpha) - beta * phi(beta)) / z - ((phi(alpha) - phi(beta)) / z) ** 2
    )
    assert v.mean() == pytest.approx(t_mean, abs=0.01 * std)
    assert v.std() == pytest.approx(math.sqrt(t_var), rel=0.02)


def test_init_records_no_graph_and_zero_element_warns():
    p = nn.Parameter(fastdl.empty(4, 4))
    init.kaiming_uniform_(p)
    init.trunc_normal_(p)
    assert p.is_leaf and p.requires_grad and p.grad_fn is None
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(fastdl.empty(0, 3))
