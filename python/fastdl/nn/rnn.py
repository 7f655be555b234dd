"""nn layers: rnn (PyTorch's names, signatures, defaults, initialisation and state_dict keys).

RNNCell, LSTMCell, GRUCell run one time step; RNN, LSTM, GRU run a whole sequence through
`num_layers` stacked layers, each in one or two directions. The input projection of a
whole sequence is one `linear` before the time loop; the recurrence is one fused op with its
own backward (fastdl/ops/rnn.py): per call for a cell, per layer and direction for a sequence.

Sizes: L sequence length, N batch, H_in input features, H hidden features, D directions
(2 if bidirectional else 1). Weights follow PyTorch's layout: the gates are stacked along the
rows, `weight_ih_l{k}` is (G*H, H_in) for layer 0 and (G*H, D*H) above it, `weight_hh_l{k}` is
(G*H, H), with G = 1 (RNN), 4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n); the reverse direction's
parameters end in `_reverse`. So `state_dict`s move between fastdl and PyTorch unchanged.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Optional

from .._creation import cat, stack, zeros
from .._errors import ArgumentError
from .._tensor import Tensor
from ..ops.rnn import CELL_OPS, SEQUENCE_OPS
from . import functional as F
from . import init
from .module import Module
from .modules import _new_parameter

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# ---------------------------------------------------------------- one time step
# gi = x @ W_ih.T + b_ih, (N, G*H) per step: one matmul, done before the time loop for a whole
# sequence. The recurrence (h @ W_hh.T + b_hh and the gates) is one fused op per cell call
# (ops/rnn.py's CELL_OPS) or per layer and direction (SEQUENCE_OPS).


def _dims(t: Tensor) -> str:
    return f"{t.ndim}-D"


# ---------------------------------------------------------------- cells


class RNNCellBase(Module):
    """What RNNCell, LSTMCell and GRUCell share: parameters weight_ih (G*H, H_in), weight_hh
    (G*H, H), bias_ih and bias_hh (G*H,), all drawn from U(-1/sqrt(H), 1/sqrt(H))."""

    _mode = "RNN_TANH"

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
        device=None, dtype=None,
    ) -> None:
        super().__init__()
        _check_sizes(type(self).__name__, input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = _new_parameter((num_chunks * hidden_size, input_size), dtype, device)
        self.weight_hh = _new_parameter((num_chunks * hidden_size, hidden_size), dtype, device)
        if bias:
            self.bias_ih = _new_parameter((num_chunks * hidden_size,), dtype, device)
            self.bias_hh = _new_parameter((num_chunks * hidden_size,), dtype, device)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_uniform(self)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        if nonlinearity != "tanh":
            s += f", nonlinearity={nonlinearity}"
        return s

    def _check(self, input: Tensor, states: tuple) -> bool:
        """Checks input (N, H_in) or (H_in,) and states (N, H) or (H,); True if batched."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"[{name}] expected input to be a Tensor, got {type(input).__name__}")
        if input.ndim not in (1, 2):
            raise ArgumentError(
                f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead"
            )
        if input.shape[-1] != self.input_size:
            raise ArgumentError(
                f"[{name}] input has inconsistent input_size: got {input.shape[-1]} expected "
                f"{self.input_size}"
            )
        batched = input.ndim == 2
        for k, s in enumerate(states):
            if s is None:
                continue
            if s.ndim != input.ndim:
                raise ArgumentError(
                    f"{name}: Expected hidden to be {input.ndim}D for {input.ndim}D input, got "
                    f"{s.ndim}D instead"
                )
            if batched and s.shape[0] != input.shape[0]:
                raise ArgumentError(
                    f"[{name}] Input batch size {input.shape[0]} doesn't match hidden{k} batch "
                    f"size {s.shape[0]}"
                )
            if s.shape[-1] != self.hidden_size:
                raise ArgumentError(
                    f"[{name}] hidden{k} has inconsistent hidden_size: got {s.shape[-1]}, "
                    f"expected {self.hidden_size}"
                )
        return batched

    def _run(self, input: Tensor, states: tuple) -> tuple:
        """The cell's step on (possibly unbatched) input; missing states start at zero."""
        batched = self._check(input, states)
        x = input if batched else input.unsqueeze(0)
        zero = None
        full = []
        for s in states:
            if s is None:
                if zero is None:
                    zero = zeros(
                        x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device
                    )
                s = zero
            elif not batched:
                s = s.unsqueeze(0)
            full.append(s)
        gi = F.linear(x, self.weight_ih, self.bias_ih)
        new = CELL_OPS[self._mode].apply(gi, self.weight_hh, self.bias_hh, *full)
        if not isinstance(new, tuple):
            new = (new,)
        return new if batched else tuple(s.squeeze(0) for s in new)


class RNNCell(RNNCellBase):
    """An Elman RNN cell: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu).

    input (N, H_in) or (H_in,), hx (N, H) or (H,) (zeros if omitted); returns h' like hx.

    >>> import fastdl
    >>> cell = RNNCell(10, 20)
    >>> cell(fastdl.randn(3, 10)).shape
    fastdl.Size([3, 20])
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True,
        nonlinearity: str = "tanh", device=None, dtype=None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        return self._run(input, (hx,))[0]


class LSTMCell(RNNCellBase):
    """A long short-term memory cell, gates i, f, g, o stacked in that order:
    c' = f * c + i * g, h' = o * tanh(c').

    input (N, H_in) or (H_in,), hx = (h, c) each (N, H) or (H,) (zeros if omitted); returns
    (h', c').

    >>> import fastdl
    >>> cell = LSTMCell(10, 20)
    >>> h, c = cell(fastdl.randn(3, 10))
    >>> h.shape, c.shape
    (fastdl.Size([3, 20]), fastdl.Size([3, 20]))
    """

    _mode = "LSTM"

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: Optional[tuple] = None) -> tuple[Tensor, Tensor]:
        states = (None, None) if hx is None else tuple(hx)
        if len(states) != 2:
            raise ArgumentError(f"[LSTMCell] expected hx to be a pair (h, c), got {len(states)}")
        return self._run(input, states)


class GRUCell(RNNCellBase):
    """A gated recurrent unit cell, gates r, z, n stacked in that order:
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.

    input (N, H_in) or (H_in,), hx (N, H) or (H,) (zeros if omitted); returns h' like hx.

    >>> import fastdl
    >>> cell = GRUCell(10, 20)
    >>> cell(fastdl.randn(3, 10)).shape
    fastdl.Size([3, 20])
    """

    _mode = "GRU"

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        return self._run(input, (hx,))[0]


# ---------------------------------------------------------------- sequences


def _check_sizes(name: str, input_size: Any, hidden_size: Any) -> None:
    for what, v in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"[{name}] {what} should be of type int, got: {type(v).__name__}")
    if hidden_size <= 0:
        raise ArgumentError(f"[{name}] hidden_size must be greater than zero, got {hidden_size}")
    if input_size < 0:
        raise ArgumentError(f"[{name}] input_size must be non-negative, got {input_size}")


def _reset_uniform(module: Module) -> None:
    """PyTorch's recurrent default: every parameter from U(-1/sqrt(H), 1/sqrt(H))."""
    stdv = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0.0
    for weight in module.parameters():
        init.uniform_(weight, -stdv, stdv)


class RNNBase(Module):
    """What RNN, LSTM and GRU share: the stacked, optionally bidirectional layers, their
    parameters (PyTorch's names and layout), argument checks and the time loop."""

    def __init__(
        self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
        bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
        bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _check_sizes(name, input_size, hidden_size)
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers <= 0:
            raise ArgumentError(f"[{name}] num_layers must be a positive int, got {num_layers!r}")
        if (
            not isinstance(dropout, (int, float)) or isinstance(dropout, bool)
            or not 0 <= dropout <= 1
        ):
            raise ArgumentError(
                "dropout should be a number in range [0, 1] representing the probability of "
                f"an element being zeroed, got {dropout!r}"
            )
        if proj_size != 0:
            raise NotImplementedError(
                f"[{name}] proj_size={proj_size} is not supported by fastdl (only proj_size=0)"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=3,
            )
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        gate_size = _GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [
                    ("weight_ih", (gate_size, layer_input)),
                    ("weight_hh", (gate_size, hidden_size)),
                ]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                for prefix, shape in shapes:
                    setattr(self, prefix + suffix, _new_parameter(shape, dtype, device))
                    self._flat_weights_names.append(prefix + suffix)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_uniform(self)

    def flatten_parameters(self) -> None:
        """PyTorch's cuDNN weight compaction; nothing to do here."""

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list:
        """The parameters per layer and direction: [[w_ih, w_hh, b_ih, b_hh], ...]."""
        per = 4 if self.bias else 2
        flat = self._flat_weights
        return [flat[i : i + per] for i in range(0, len(flat), per)]

    def extra_repr(self) -> str:
        # PyTorch's text: the sizes, then each argument not at its default (the same shape as
        # Embedding's in sparse.py, with other names, defaults and wording).
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def _params(self, layer: int, direction: int) -> tuple:
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        get = lambda prefix: getattr(self, prefix + suffix, None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _check_input(self, input: Any) -> bool:
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(
                f"[{name}] expected input to be a Tensor, got {type(input).__name__} "
                "(PackedSequence is not supported)"
            )
        if input.ndim not in (2, 3):
            raise ArgumentError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise ArgumentError(
                f"[{name}] input.size(-1) must be equal to input_size. Expected "
                f"{self.input_size}, got {input.shape[-1]}"
            )
        return input.ndim == 3

    def _check_state(self, state: Any, k: int, batched: bool, batch: int) -> None:
        name = type(self).__name__
        if not isinstance(state, Tensor):
            raise TypeError(
                f"[{name}] expected hidden[{k}] to be a Tensor, got {type(state).__name__}"
            )
        layers = self.num_layers * (2 if self.bidirectional else 1)
        expected = (layers, batch, self.hidden_size) if batched else (layers, self.hidden_size)
        if state.ndim != len(expected):
            raise ArgumentError(
                f"[{name}] For {'batched 3' if batched else 'unbatched 2'}-D input, hx should "
                f"also be {len(expected)}-D but got {_dims(state)} tensor"
            )
        if tuple(state.shape) != expected:
            raise ArgumentError(
                f"[{name}] Expected hidden[{k}] size {expected}, got {list(state.shape)}"
            )

    def _run(self, input: Tensor, states: tuple) -> tuple[Tensor, tuple]:
        """input as given, states (h0,) or (h0, c0), each None or PyTorch's shape. Returns the
        output and the final states, shaped like the input and the states."""
        batched = self._check_input(input)
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        # x is now (L, N, H_in)
        batch = x.shape[1]
        directions = 2 if self.bidirectional else 1
        full = []
        for k, s in enumerate(states):
            if s is None:
                s = zeros(
                    self.num_layers * directions, batch, self.hidden_size,
                    dtype=x.dtype, device=x.device,
                )
            else:
                self._check_state(s, k, batched, batch)
                if not batched:
                    s = s.unsqueeze(1)
            full.append(s)

        finals = [[] for _ in states]  # per state: (N, H) for each layer and direction
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, training=True)
            outs = []
            for direction in range(directions):
                index = layer * directions + direction
                start = tuple(s[index] for s in full)
                out, last = _sequence(
                    self.mode, x, start, self._params(layer, direction), reverse=direction == 1,
                )
                outs.append(out)
                for k, s in enumerate(last):
                    finals[k].append(s)
            x = outs[0] if directions == 1 else cat(outs, dim=2)

        output = x
        if batched and self.batch_first:
            output = output.transpose(0, 1)
        h_n = tuple(stack(f, 0) for f in finals)
        if not batched:
            output = output.squeeze(1)
            h_n = tuple(h.squeeze(1) for h in h_n)
        return output, h_n


def _sequence(
    mode: str, x: Tensor, state: tuple, params: tuple, reverse: bool
) -> tuple[Tensor, tuple]:
    """One layer in one direction: x (L, N, H_in), state (h0,) or (h0, c0) each (N, H).
    Returns the hidden states of every step (L, N, H), in input order, and the last state."""
    w_ih, w_hh, b_ih, b_hh = params
    gi_all = F.linear(x, w_ih, b_ih)  # (L, N, G*H): the input projection of every step at once
    length = x.shape[0]
    if length == 0:
        raise ArgumentError("[rnn] expected a sequence of length at least 1, got 0")
    out, *last = SEQUENCE_OPS[mode].apply(gi_all, w_hh, b_hh, *state, reverse=reverse)
    return out, tuple(last)


class RNN(RNNBase):
    """A multi-layer Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu).

    input (L, N, H_in), (N, L, H_in) with batch_first, or unbatched (L, H_in); hx (D*num_layers,
    N, H) or (D*num_layers, H), zeros if omitted. Returns (output, h_n): output (L, N, D*H)
    (batch first if asked), h_n like hx.

    >>> import fastdl
    >>> rnn = RNN(10, 20, num_layers=2)
    >>> output, h_n = rnn(fastdl.randn(5, 3, 10))
    >>> output.shape, h_n.shape
    (fastdl.Size([5, 3, 20]), fastdl.Size([2, 3, 20]))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        nonlinearity = kwargs.pop("nonlinearity", None)
        if len(args) > 3:  # PyTorch's positional order: input, hidden, layers, nonlinearity, ...
            nonlinearity = args[3]
            args = args[:3] + args[4:]
        nonlinearity = "tanh" if nonlinearity is None else nonlinearity
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        # NOTE: PyTorch's RNN repr omits the nonlinearity; so does this one.
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", *args, **kwargs)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        output, (h_n,) = self._run(input, (hx,))
        return output, h_n


class LSTM(RNNBase):
    """A multi-layer long short-term memory RNN, gates i, f, g, o (PyTorch's order).

    input (L, N, H_in), (N, L, H_in) with batch_first, or unbatched (L, H_in); hx = (h0, c0),
    each (D*num_layers, N, H) or (D*num_layers, H), zeros if omitted. Returns
    (output, (h_n, c_n)). proj_size is not supported (NotImplementedError).

    >>> import fastdl
    >>> lstm = LSTM(10, 20, batch_first=True)
    >>> output, (h_n, c_n) = lstm(fastdl.randn(3, 5, 10))
    >>> output.shape, c_n.shape
    (fastdl.Size([3, 5, 20]), fastdl.Size([1, 3, 20]))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("LSTM", *args, **kwargs)

    def forward(
        self, input: Tensor, hx: Optional[tuple] = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        states = (None, None) if hx is None else tuple(hx)
        if len(states) != 2:
            raise ArgumentError(f"[LSTM] expected hx to be a pair (h_0, c_0), got {len(states)}")
        if (states[0] is None) != (states[1] is None):
            raise ArgumentError("[LSTM] expected both h_0 and c_0, or neither")
        output, (h_n, c_n) = self._run(input, states)
        return output, (h_n, c_n)


class GRU(RNNBase):
    """A multi-layer gated recurrent unit RNN, gates r, z, n (PyTorch's order and its
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))).

    input (L, N, H_in), (N, L, H_in) with batch_first, or unbatched (L, H_in); hx
    (D*num_layers, N, H) or (D*num_layers, H), zeros if omitted. Returns (output, h_n).

    >>> import fastdl
    >>> gru = GRU(10, 20, bidirectional=True)
    >>> output, h_n = gru(fastdl.randn(5, 10))
    >>> output.shape, h_n.shape
    (fastdl.Size([5, 40]), fastdl.Size([2, 20]))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        output, (h_n,) = self._run(input, (hx,))
        return output, h_n
