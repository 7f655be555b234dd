"""Fused recurrent ops: one RNN, LSTM or GRU time step (the cells) or a whole sequence (one
layer in one direction) per op, with hand-written backward.

Composing a step of Tensor ops costs a dozen dispatches and graph nodes per step; these ops do
a step as one matmul (h @ W_hh^T) plus elementwise math on arrays, and a sequence op runs the
whole time loop in one forward and backpropagates through time in one backward (one matmul per
step for dh, and one big matmul for dW_hh at the end).

Sizes: L sequence length, N batch, H hidden, G = 1 (RNN), 4 (LSTM: i, f, g, o) or 3 (GRU:
r, z, n) gate blocks. gi is the input projection x @ W_ih^T + b_ih, (N, G*H) for a step or
(L, N, G*H) for a sequence (computed before, by one matmul); w_hh is (G*H, H), b_hh (G*H,) or
None; the state is (h,) or, for the LSTM, (h, c), each (N, H). PyTorch's math exactly: the
LSTM and GRU steps' pointwise part (gates, activations, state update and their gradients) is
the backend's fused lstm_cell_* / gru_cell_* (backends/INTERFACE.md, section rnn).

Written against the array API namespace of the arrays, with the matmuls, activations and cell
kernels on `_devices.kernels`, so it runs on every device. Tested by tests/test_rnn_ops.py
(float64 finite differences, in-place checks) and tests/test_rnn.py (parity with PyTorch).
"""

from __future__ import annotations

from .. import _devices
from ..autograd.function import Op

# ---------------------------------------------------------------- one step, on arrays
# Each step_forward returns the new state and what its backward needs; each step_backward
# takes that and the state's gradients, and returns dgi (N, G*H), dgh (the gradient of
# h @ W_hh^T + b_hh, (N, G*H)) and the gradients reaching the previous state other than
# through dgh @ W_hh (None where there are none).


def _hidden_proj(kern, lib, h, w):
    """h @ w^T: h (N, H), w (G*H, H) -> (N, G*H) (b_hh is added by the step)."""
    return kern.matmul(lib.contiguous(h), w, trans_b=True)


def rnn_step_forward(kern, xp, lib, gi, state, w, b, relu):
    pre = gi + _hidden_proj(kern, lib, state[0], w)
    if b is not None:
        pre += b
    y = kern.relu_forward(pre) if relu else kern.tanh_forward(pre)
    return (y,), y


def rnn_step_backward(kern, xp, saved, dstate, relu):
    y = saved
    d = kern.relu_backward(dstate[0], y) if relu else kern.tanh_backward(dstate[0], y)
    return d, d, (None,)


# The LSTM and GRU steps' pointwise math is the backend's lstm_cell_* and gru_cell_* (one fused
# pass each; see backends/INTERFACE.md).


def lstm_step_forward(kern, xp, lib, gi, state, w, b):
    h, c = state
    h_new, c_new, act, tc = kern.lstm_cell_forward(gi, _hidden_proj(kern, lib, h, w), b, c)
    return (h_new, c_new), (act, tc, c)


def lstm_step_backward(kern, xp, saved, dstate):
    act, tc, c = saved
    d, dc_prev = kern.lstm_cell_backward(act, tc, c, *dstate)
    return d, d, (None, dc_prev)


def gru_step_forward(kern, xp, lib, gi, state, w, b):
    (h,) = state
    h_new, act = kern.gru_cell_forward(gi, _hidden_proj(kern, lib, h, w), b, h)
    return (h_new,), (act, h)


def gru_step_backward(kern, xp, saved, dstate):
    act, h = saved
    dgi, dgh, dh_prev = kern.gru_cell_backward(act, h, dstate[0])
    return dgi, dgh, (dh_prev,)


# ---------------------------------------------------------------- the loop, on arrays


def _forward(mode, gi_all, w, b, state, reverse):
    """gi_all (L, N, G*H), state a tuple of (N, H) arrays -> per-step h list (in input order),
    the final state, and what backward needs (per-step saved values and previous h)."""
    kern, xp, lib = _devices.kernels(gi_all), _devices.namespace(gi_all), _devices.library(gi_all)
    length = gi_all.shape[0]
    order = range(length - 1, -1, -1) if reverse else range(length)
    outs, saved, h_prev = [None] * length, [None] * length, [None] * length
    for t in order:
        h_prev[t] = state[0]
        if mode == "LSTM":
            state, saved[t] = lstm_step_forward(kern, xp, lib, gi_all[t, ...], state, w, b)
        elif mode == "GRU":
            state, saved[t] = gru_step_forward(kern, xp, lib, gi_all[t, ...], state, w, b)
        else:
            state, saved[t] = rnn_step_forward(
                kern, xp, lib, gi_all[t, ...], state, w, b, mode == "RNN_RELU"
            )
        outs[t] = state[0]
    return outs, state, (saved, h_prev)


def _backward(mode, ctx, w, dout, dstate, reverse, needs):
    """Backpropagation through time. dout (L, N, H) or None, dstate per state (N, H) or None.
    needs: whether gi_all, w, b and each initial state need gradients. Returns one gradient
    per input (gi_all, w, b, *state)."""
    saved, h_prev = ctx
    ref = h_prev[0]
    kern, xp, lib = _devices.kernels(ref), _devices.namespace(ref), _devices.library(ref)
    length = len(saved)
    order = range(length) if reverse else range(length - 1, -1, -1)
    dgi, dgh = [None] * length, [None] * length
    dstate = list(dstate)
    for k, t in enumerate(order):
        if dout is not None:
            dstate[0] = dout[t, ...] if dstate[0] is None else dstate[0] + dout[t, ...]
        if dstate[0] is None:
            dstate[0] = xp.zeros(ref.shape, dtype=ref.dtype, device=ref.device)
        if mode == "LSTM":
            dgi[t], dgh[t], direct = lstm_step_backward(kern, xp, saved[t], dstate)
        elif mode == "GRU":
            dgi[t], dgh[t], direct = gru_step_backward(kern, xp, saved[t], dstate)
        else:
            dgi[t], dgh[t], direct = rnn_step_backward(
                kern, xp, saved[t], dstate, mode == "RNN_RELU"
            )
        last = k == length - 1
        dh = None
        if not last or needs[3]:
            dh = kern.matmul(dgh[t], w)  # (N, G*H) @ (G*H, H)
            if direct[0] is not None:
                dh += direct[0]
        dstate = [dh, *direct[1:]]
    need_gi, need_w, need_b = needs[:3]
    dgi_all = xp.stack(dgi) if need_gi else None
    dw = db = None
    if need_w or need_b:
        # (L, N, G*H); the LSTM and RNN steps' dgh is their dgi: stacked once
        dgh_all = dgi_all if dgi_all is not None and dgh[0] is dgi[0] else xp.stack(dgh)
        rows = length * ref.shape[0]
        dgh_rows = xp.reshape(dgh_all, (rows, dgh_all.shape[-1]))
        if need_w:
            h_rows = lib.contiguous(xp.reshape(xp.stack(h_prev), (rows, ref.shape[1])))
            dw = kern.matmul(dgh_rows, h_rows, trans_a=True)  # (G*H, H)
        if need_b:
            db = xp.sum(dgh_rows, axis=0)
    return (dgi_all, dw, db, *(d if n else None for d, n in zip(dstate, needs[3:])))


# ---------------------------------------------------------------- ops


class _Recurrent(Op):
    """Inputs (gi, w_hh, b_hh, *state); saves w_hh and the initial state (gi only reaches the
    saved activations, which are the op's own)."""

    mode = "RNN_TANH"
    sequence = False

    def forward(self, gi, w, b, *state, reverse=False):
        self.reverse, self.w = reverse, w
        if not self.sequence:
            gi = _devices.namespace(gi).expand_dims(gi, axis=0)
        outs, final, self.ctx = _forward(self.mode, gi, w, b, state, reverse)
        if self.sequence:
            xp = _devices.namespace(gi)
            if self.mode.startswith("RNN"):  # h_n is also the last step's saved output
                final = (xp.asarray(final[0], copy=True),)
            return (xp.stack(outs), *final)
        return final if len(final) > 1 else final[0]

    def backward_all(self, grads_out):
        grads_out = list(grads_out)
        if self.sequence:
            dout, dstate = grads_out[0], grads_out[1:]
        else:
            dout, dstate = None, grads_out
        grads = _backward(
            self.mode, self.ctx, self.w, dout, dstate, self.reverse, self.needs_input_grad
        )
        if not self.sequence and grads[0] is not None:
            grads = (grads[0][0, ...], *grads[1:])
        return grads


class RNNCellOp(_Recurrent):
    """(gi (N, H), w_hh, b_hh, h (N, H)) -> h' = tanh(gi + h @ w_hh^T + b_hh) (RNNReLUCellOp:
    relu). Its backward reads h', so an in-place change of h' is caught."""

    saves = (1, 3)
    saves_output = True


class RNNReLUCellOp(RNNCellOp):
    mode = "RNN_RELU"


class LSTMCellOp(_Recurrent):
    """(gi (N, 4H), w_hh, b_hh, h (N, H), c (N, H)) -> (h', c')."""

    mode = "LSTM"
    n_outputs = 2
    grad_outputs = (0, 1)
    saves = (1, 3, 4)


class GRUCellOp(_Recurrent):
    """(gi (N, 3H), w_hh, b_hh, h (N, H)) -> h'."""

    mode = "GRU"
    saves = (1, 3)


class RNNSequenceOp(_Recurrent):
    """(gi_all (L, N, H), w_hh, b_hh, h0; reverse) -> (output (L, N, H), h_n)."""

    sequence = True
    n_outputs = 2
    grad_outputs = (0, 1)
    saves = (1, 3)


class RNNReLUSequenceOp(RNNSequenceOp):
    mode = "RNN_RELU"


class LSTMSequenceOp(_Recurrent):
    """(gi_all (L, N, 4H), w_hh, b_hh, h0, c0; reverse) -> (output (L, N, H), h_n, c_n)."""

    mode = "LSTM"
    sequence = True
    n_outputs = 3
    grad_outputs = (0, 1, 2)
    saves = (1, 3, 4)


class GRUSequenceOp(_Recurrent):
    """(gi_all (L, N, 3H), w_hh, b_hh, h0; reverse) -> (output (L, N, H), h_n)."""

    mode = "GRU"
    sequence = True
    n_outputs = 2
    grad_outputs = (0, 1)
    saves = (1, 3)


CELL_OPS = {"RNN_TANH": RNNCellOp, "RNN_RELU": RNNReLUCellOp, "LSTM": LSTMCellOp, "GRU": GRUCellOp}
SEQUENCE_OPS = {
    "RNN_TANH": RNNSequenceOp, "RNN_RELU": RNNReLUSequenceOp, "LSTM": LSTMSequenceOp,
    "GRU": GRUSequenceOp,
}
