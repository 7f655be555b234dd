"""nn.RNN, LSTM, GRU and their cells: PyTorch's parameters (names, layout, gate order, init),
repr, argument errors, and parity with PyTorch (outputs, and the gradients of the input, the
initial states and every parameter) from the same weights, for every combination of layers,
directions, batch_first, bias and unbatched input; dropout between layers; an LSTM
language-model step against PyTorch's loss and gradients; float64 finite differences.

PyTorch parity tests skip without torch; the rest runs everywhere, also with --device strict.
"""

from __future__ import annotations

import itertools
import math

import fastdl
import numpy as np
import pytest
from fastdl import nn
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck import numerical_grad

NO_TORCH = "PyTorch parity needs torch (pip install torch)"

# (fastdl/torch class name, extra constructor kwargs, number of states)
SEQUENCE = {
    "RNN_tanh": ("RNN", {}, 1),
    "RNN_relu": ("RNN", {"nonlinearity": "relu"}, 1),
    "LSTM": ("LSTM", {}, 2),
    "GRU": ("GRU", {}, 1),
}
CELLS = {
    "RNNCell_tanh": ("RNNCell", {}, 1),
    "RNNCell_relu": ("RNNCell", {"nonlinearity": "relu"}, 1),
    "LSTMCell": ("LSTMCell", {}, 2),
    "GRUCell": ("GRUCell", {}, 1),
}


def _host(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _close(got, want, what: str, rtol: float = 2e-4, atol: float = 2e-5) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=what)


def _pair(torch, name: str, kwargs: dict):
    """The torch module and a fastdl module of the same class holding torch's weights."""
    theirs = getattr(torch.nn, name)(**kwargs)
    ours = getattr(nn, name)(**kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _compare(torch, ours, theirs, x: np.ndarray, states: list, n_out: int, seed: int = 1):
    """Runs both modules on x (and states, or None), back-propagates the same random weighting
    of every output, and compares outputs and the gradients of x, the states and every
    parameter."""
    rng = np.random.default_rng(seed)
    fx = fastdl.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    fs = [fastdl.tensor(s, requires_grad=True) for s in states]
    ts = [torch.tensor(s, requires_grad=True) for s in states]

    def call(module, inp, st):
        if not st:
            return module(inp)
        return module(inp, tuple(st) if len(st) == 2 else st[0])

    def flat(out):
        if n_out == "cell2":  # LSTMCell: (h, c)
            return list(out)
        if n_out == "cell1":
            return [out]
        output, last = out
        return [output] + (list(last) if isinstance(last, tuple) else [last])

    f_outs, t_outs = flat(call(ours, fx, fs)), flat(call(theirs, tx, ts))
    weights = [rng.standard_normal(tuple(t.shape)).astype(x.dtype) for t in t_outs]
    f_loss = sum((o * fastdl.tensor(w)).sum() for o, w in zip(f_outs, weights))
    t_loss = sum((o * torch.tensor(w)).sum() for o, w in zip(t_outs, weights))
    f_loss.backward()
    t_loss.backward()
    for k, (a, b) in enumerate(zip(f_outs, t_outs)):
        _close(_host(a), b.detach().numpy(), f"output {k}")
    _close(_host(fx.grad), tx.grad.numpy(), "input grad")
    for k, (a, b) in enumerate(zip(fs, ts)):
        _close(_host(a.grad), b.grad.numpy(), f"state {k} grad")
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(_host(p.grad), theirs_params[name].grad.numpy(), f"{name} grad")


def _sequence_case(torch, kind, num_layers, bidirectional, batch_first, bias, unbatched,
                   with_state, L=3, N=2, H_in=4, H=5, seed=0):
    name, extra, n_states = SEQUENCE[kind]
    kwargs = dict(input_size=H_in, hidden_size=H, num_layers=num_layers, bias=bias,
                  batch_first=batch_first, bidirectional=bidirectional, **extra)
    torch.manual_seed(seed)
    ours, theirs = _pair(torch, name, kwargs)
    rng = np.random.default_rng(seed)
    if unbatched:
        x_shape = (L, H_in)
        s_shape = ((2 if bidirectional else 1) * num_layers, H)
    else:
        x_shape = (N, L, H_in) if batch_first else (L, N, H_in)
        s_shape = ((2 if bidirectional else 1) * num_layers, N, H)
    x = rng.standard_normal(x_shape).astype(np.float32)
    states = [rng.standard_normal(s_shape).astype(np.float32) for _ in range(n_states)]
    _compare(torch, ours, theirs, x, states if with_state else [], "seq")


# Every combination of layers, directions, batch_first, bias and unbatched input; half of them
# pass initial states (those of even parity, so every pair of settings meets both).
COMBOS = [
    combo + (sum(map(int, combo)) % 2 == 0,)
    for combo in itertools.product([1, 2], [False, True], [False, True], [True, False],
                                   [False, True])
]


@pytest.mark.parametrize("kind", list(SEQUENCE))
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias,unbatched,with_state", COMBOS)
def test_sequence_matches_torch(kind, num_layers, bidirectional, batch_first, bias, unbatched,
                                with_state):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    _sequence_case(torch, kind, num_layers, bidirectional, batch_first, bias, unbatched,
                   with_state)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    kind=st.sampled_from(list(SEQUENCE)),
    L=st.integers(1, 6), N=st.integers(1, 4), H_in=st.integers(1, 7), H=st.integers(1, 7),
    num_layers=st.integers(1, 3), bidirectional=st.booleans(), batch_first=st.booleans(),
)
def test_sequence_matches_torch_on_random_sizes(kind, L, N, H_in, H, num_layers, bidirectional,
                                                batch_first):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    _sequence_case(torch, kind, num_layers, bidirectional, batch_first, True, False, True,
                   L=L, N=N, H_in=H_in, H=H)


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("unbatched,with_state", [(False, False), (False, True), (True, True),
                                                  (True, False)])
def test_cell_matches_torch(kind, bias, unbatched, with_state):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    name, extra, n_states = CELLS[kind]
    torch.manual_seed(0)
    ours, theirs = _pair(torch, name, dict(input_size=4, hidden_size=6, bias=bias, **extra))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4,) if unbatched else (3, 4)).astype(np.float32)
    states = [rng.standard_normal((6,) if unbatched else (3, 6)).astype(np.float32)
              for _ in range(n_states)]
    _compare(torch, ours, theirs, x, states if with_state else [], f"cell{n_states}")


@settings(max_examples=10, deadline=None, derandomize=True)
@given(kind=st.sampled_from(list(CELLS)), N=st.integers(1, 5), H_in=st.integers(1, 8),
       H=st.integers(1, 8))
def test_cell_matches_torch_on_random_sizes(kind, N, H_in, H):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    name, extra, n_states = CELLS[kind]
    torch.manual_seed(1)
    ours, theirs = _pair(torch, name, dict(input_size=H_in, hidden_size=H, **extra))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, H_in)).astype(np.float32)
    states = [rng.standard_normal((N, H)).astype(np.float32) for _ in range(n_states)]
    _compare(torch, ours, theirs, x, states, f"cell{n_states}")


# ---------------------------------------------------------------- parameters, repr, init


def test_parameter_names_and_shapes():
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    shapes = {k: tuple(v.shape) for k, v in lstm.state_dict().items()}
    expected = {}
    for layer in range(2):
        for suffix in ("", "_reverse"):
            s = f"_l{layer}{suffix}"
            expected[f"weight_ih{s}"] = (20, 3 if layer == 0 else 10)
            expected[f"weight_hh{s}"] = (20, 5)
            expected[f"bias_ih{s}"] = (20,)
            expected[f"bias_hh{s}"] = (20,)
    assert shapes == expected
    assert list(shapes)[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                "weight_ih_l0_reverse"]
    gru = nn.GRU(3, 5, bias=False)
    assert list(gru.state_dict()) == ["weight_ih_l0", "weight_hh_l0"]
    assert tuple(gru.weight_ih_l0.shape) == (15, 3)
    assert [tuple(p.shape) for p in gru.all_weights[0]] == [(15, 3), (15, 5)]
    cell = nn.LSTMCell(3, 5, bias=False)
    assert list(cell.state_dict()) == ["weight_ih", "weight_hh"] and cell.bias_ih is None
    assert [tuple(p.shape) for p in nn.GRUCell(2, 4).parameters()] == [(12, 2), (12, 4), (12,),
                                                                       (12,)]


@pytest.mark.parametrize("make", [
    lambda m: m.RNN(3, 7, num_layers=2, bidirectional=True),
    lambda m: m.LSTM(3, 7),
    lambda m: m.GRUCell(3, 7),
])
def test_initialisation_is_uniform_within_one_over_sqrt_hidden(make):
    fastdl.manual_seed(0)
    bound = 1 / math.sqrt(7)
    for name, p in make(nn).named_parameters():
        v = _host(p)
        assert np.all(np.abs(v) <= bound + 1e-7), name
        assert np.unique(v).size == v.size, name  # independent draws, not a constant
    values = np.concatenate([_host(p).ravel() for p in make(nn).parameters()])
    assert abs(values.mean()) < bound / 5 and values.max() > 0.9 * bound


REPRS = [
    ("RNN", (3, 4), {}, "RNN(3, 4)"),
    ("RNN", (3, 4), dict(nonlinearity="relu", num_layers=2, bias=False, batch_first=True,
                         dropout=0.5, bidirectional=True),
     "RNN(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True)"),
    ("LSTM", (3, 4), dict(num_layers=3), "LSTM(3, 4, num_layers=3)"),
    ("GRU", (3, 4), dict(batch_first=True), "GRU(3, 4, batch_first=True)"),
    ("RNNCell", (3, 4), dict(bias=False, nonlinearity="relu"),
     "RNNCell(3, 4, bias=False, nonlinearity=relu)"),
    ("LSTMCell", (3, 4), {}, "LSTMCell(3, 4)"),
    ("GRUCell", (3, 4), dict(bias=False), "GRUCell(3, 4, bias=False)"),
]


@pytest.mark.parametrize("name,args,kwargs,text", REPRS)
def test_repr(name, args, kwargs, text):
    assert repr(getattr(nn, name)(*args, **kwargs)) == text


@pytest.mark.parametrize("name,args,kwargs,text", REPRS)
def test_repr_matches_torch(name, args, kwargs, text):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


def test_rnn_takes_nonlinearity_positionally_like_torch():
    rnn = nn.RNN(3, 4, 2, "relu", False)
    assert rnn.nonlinearity == "relu" and rnn.num_layers == 2 and rnn.bias is False


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_weights_move_both_ways_with_torch(name):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    kwargs = dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    fastdl.manual_seed(3)
    ours = getattr(nn, name)(**kwargs)
    theirs = getattr(torch.nn, name)(**kwargs)
    theirs.load_state_dict({k: torch.from_numpy(_host(v).copy())
                            for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    _close(_host(ours(fastdl.tensor(x))[0]), theirs(torch.from_numpy(x))[0].detach().numpy(),
           "fastdl -> torch")


def test_module_moves_dtype_and_runs_in_float64():
    gru = nn.GRU(3, 4).double()
    out, h = gru(fastdl.randn(2, 1, 3, dtype=fastdl.float64))
    assert out.dtype == fastdl.float64 and h.dtype == fastdl.float64


# ---------------------------------------------------------------- dropout between layers


def test_dropout_is_inactive_in_eval_and_with_one_layer():
    fastdl.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = fastdl.randn(5, 2, 3)
    lstm.eval()
    a, _ = lstm(x)
    b, _ = lstm(x)
    np.testing.assert_array_equal(_host(a), _host(b))
    lstm.train()
    fastdl.manual_seed(1)
    c, _ = lstm(x)
    fastdl.manual_seed(1)
    d, _ = lstm(x)
    np.testing.assert_array_equal(_host(c), _host(d))  # the seed decides the mask
    assert not np.allclose(_host(a), _host(c))


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_dropout_one_zeroes_the_input_of_the_upper_layers(name):
    """With p=1 in training, layer 1 sees zeros: the same as weight_ih_l1 = 0 without dropout."""
    fastdl.manual_seed(0)
    kwargs = dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    dropped = getattr(nn, name)(dropout=1.0, **kwargs)
    plain = getattr(nn, name)(**kwargs)
    state = dict(dropped.state_dict())
    for key in ("weight_ih_l1", "weight_ih_l1_reverse"):
        state[key] = fastdl.zeros(*state[key].shape)
    plain.load_state_dict(state)
    x = fastdl.randn(4, 2, 3)
    (a, ha), (b, hb) = dropped(x), plain(x)
    a, b = (a, ha), (b, hb)
    _close(_host(a[0]), _host(b[0]), "output")
    _close(_host(a[1] if name != "LSTM" else a[1][0]), _host(b[1] if name != "LSTM" else b[1][0]),
           "h_n")


def test_dropout_backward_runs():
    fastdl.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=3, dropout=0.3)
    x = fastdl.randn(4, 2, 3, requires_grad=True)
    out, h = gru(x)
    (out.sum() + h.sum()).backward()
    assert x.grad is not None and all(p.grad is not None for p in gru.parameters())


# ---------------------------------------------------------------- errors


def test_bad_arguments():
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="only supported for LSTM"):
        nn.GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNNCell(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size"):
        nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="num_layers"):
        nn.RNN(3, 4, num_layers=0)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.2)


def test_bad_inputs_name_what_was_expected():
    lstm = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        lstm(fastdl.randn(2, 2, 2, 3))
    with pytest.raises(RuntimeError, match="Expected 3, got 5"):
        lstm(fastdl.randn(2, 2, 5))
    h = fastdl.zeros(1, 2, 4)
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(2, 2, 4\), got \[1, 2, 4\]"):
        lstm(fastdl.randn(5, 2, 3), (h, fastdl.zeros(2, 2, 4)))
    with pytest.raises(RuntimeError, match="should also be 2-D"):
        lstm(fastdl.randn(5, 3), (fastdl.zeros(2, 1, 4), fastdl.zeros(2, 1, 4)))
    with pytest.raises(TypeError, match="PackedSequence"):
        lstm([1, 2, 3])
    with pytest.raises(ValueError, match="length at least 1"):
        nn.GRU(3, 4)(fastdl.randn(0, 2, 3))
    cell = nn.GRUCell(3, 4)
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D, got 3D"):
        cell(fastdl.randn(2, 2, 3))
    with pytest.raises(RuntimeError, match="inconsistent input_size: got 5 expected 3"):
        cell(fastdl.randn(2, 5))
    with pytest.raises(RuntimeError, match="batch size 2 doesn't match hidden0 batch size 3"):
        cell(fastdl.randn(2, 3), fastdl.zeros(3, 4))


# ---------------------------------------------------------------- float64 finite differences


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_gradients_match_finite_differences_in_float64(name):
    """Backward of the whole (2-layer, bidirectional) module against central differences."""
    fastdl.manual_seed(0)
    module = getattr(nn, name)(2, 3, num_layers=2, bidirectional=True).double()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 2))
    w = rng.standard_normal((3, 2, 6))
    weight_hh = _host(module.weight_hh_l1_reverse).copy()

    def loss(x_arr, whh_arr):
        with fastdl.no_grad():
            module.weight_hh_l1_reverse.copy_(fastdl.tensor(whh_arr))
            out = module(fastdl.tensor(x_arr))[0]
            return float((out * fastdl.tensor(w)).sum())

    num_x = numerical_grad(loss, [x, weight_hh], 0)
    num_w = numerical_grad(loss, [x, weight_hh], 1)
    with fastdl.no_grad():
        module.weight_hh_l1_reverse.copy_(fastdl.tensor(weight_hh))
    fx = fastdl.tensor(x, requires_grad=True)
    (module(fx)[0] * fastdl.tensor(w)).sum().backward()
    np.testing.assert_allclose(_host(fx.grad), num_x, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(_host(module.weight_hh_l1_reverse.grad), num_w, rtol=1e-5,
                               atol=1e-7)


# ---------------------------------------------------------------- the proof


class _LanguageModel:
    """embedding -> 2-layer LSTM (batch_first) -> linear over the vocabulary, built from either
    library's nn. `one_hot` replaces the Embedding layer by one-hot rows @ an embedding matrix
    (the same function of the same weights)."""

    def __init__(self, lib, nn_mod, vocab, dim, hidden, one_hot):
        self.lib, self.nn, self.one_hot = lib, nn_mod, one_hot
        if one_hot:
            self.embedding = nn_mod.Parameter(lib.zeros(vocab, dim))
        else:
            self.embedding = nn_mod.Embedding(vocab, dim)
        self.lstm = nn_mod.LSTM(dim, hidden, num_layers=2, batch_first=True)
        self.head = nn_mod.Linear(hidden, vocab)
        self.vocab = vocab

    def parameters(self):
        emb = [("embedding.weight", self.embedding)] if self.one_hot else [
            ("embedding." + k, v) for k, v in self.embedding.named_parameters()]
        return dict(emb + [("lstm." + k, v) for k, v in self.lstm.named_parameters()]
                    + [("head." + k, v) for k, v in self.head.named_parameters()])

    def loss(self, tokens, targets):
        F = self.nn.functional
        if self.one_hot:
            x = F.one_hot(tokens, self.vocab).to(self.embedding.dtype) @ self.embedding
        else:
            x = self.embedding(tokens)
        out, _ = self.lstm(x)
        logits = self.head(out)
        return F.cross_entropy(logits.reshape(-1, self.vocab), targets.reshape(-1))


@pytest.mark.parametrize("one_hot", [False, True], ids=["Embedding", "one_hot"])
def test_lstm_language_model_step_matches_torch(one_hot):
    """An LSTM language-model step matches PyTorch's loss and gradients from the same weights."""
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    if not one_hot and not hasattr(nn, "Embedding"):
        pytest.skip("fastdl.nn.Embedding is not there yet; the one_hot variant covers the step")
    vocab, dim, hidden, N, L = 11, 6, 8, 3, 7
    torch.manual_seed(0)
    theirs = _LanguageModel(torch, torch.nn, vocab, dim, hidden, one_hot)
    if one_hot:
        with torch.no_grad():
            theirs.embedding.normal_()
    ours = _LanguageModel(fastdl, nn, vocab, dim, hidden, one_hot)
    t_params, f_params = theirs.parameters(), ours.parameters()
    assert list(t_params) == list(f_params)
    with fastdl.no_grad():
        for k, p in f_params.items():
            p.copy_(fastdl.tensor(t_params[k].detach().numpy()))
    rng = np.random.default_rng(0)
    text = rng.integers(0, vocab, (N, L + 1))
    t_loss = theirs.loss(torch.from_numpy(text[:, :-1]), torch.from_numpy(text[:, 1:]))
    f_loss = ours.loss(fastdl.tensor(text[:, :-1]), fastdl.tensor(text[:, 1:]))
    t_loss.backward()
    f_loss.backward()
    assert abs(f_loss.item() - t_loss.item()) <= 1e-5 * max(1.0, abs(t_loss.item()))
    for k, p in f_params.items():
        _close(_host(p.grad), t_params[k].grad.numpy(), f"{k} grad")
