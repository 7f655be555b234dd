"""Reference rnn: the pointwise part of one LSTM and one GRU time step, PyTorch's math.

N rows, H hidden units. gi = x @ W_ih^T + b_ih and gh = h @ W_hh^T (without b_hh) are (N, G*H)
in PyTorch's gate order (LSTM G = 4: i, f, g, o; GRU G = 3: r, z, n); b is b_hh (G*H,) or None.
- LSTM: gates = gi + gh + b; act = (sigmoid i, sigmoid f, tanh g, sigmoid o); c_new = f c + i g;
  tanh_c = tanh(c_new); h = o tanh_c. Backward: dc_t = dc + dh o (1 - tanh_c^2) and the gates'
  gradient (dc_t g i (1-i), dc_t c f (1-f), dc_t i (1-g^2), dh tanh_c o (1-o)); dc_prev = dc_t f.
- GRU: r, z = sigmoid(gi + gh + b) on their blocks; hn = gh_n + b_n; n = tanh(gi_n + r hn);
  h_new = n + z (h - n); act = (r, z, n, hn). Backward: dn = dh (1-z) (1-n^2),
  dr = dn hn r (1-r), dz = dh (h - n) z (1-z); dgi = (dr, dz, dn), dgh = (dr, dz, dn r), and
  dh_prev = dh z, h's gradient other than through gh (the caller adds dgh @ W_hh).
Written against the array API standard: runs on any device's arrays. Tested against the C++
kernels in tests/test_kernels_rnn.py; ops/rnn.py runs its steps on these functions.
"""

from . import _arrays
from .activations import sigmoid_forward, tanh_forward

__all__ = ["gru_cell_backward", "gru_cell_forward", "lstm_cell_backward", "lstm_cell_forward"]


def _check(op, state_name, state, gates, arrays, G):
    """state (N,H) 2-D; each of `gates` (name -> array) (N, G*H); each of `arrays` like state."""
    if state.ndim != 2:
        raise ValueError(
            f"[{op}] {state_name} must have 2 dimensions, got shape {tuple(state.shape)}"
        )
    N, H = state.shape
    for name, a in gates.items():
        if tuple(a.shape) != (N, G * H):
            raise ValueError(
                f"[{op}] {name} must have shape ({N}, {G * H}) for {state_name} of shape "
                f"{tuple(state.shape)}, got {tuple(a.shape)}"
            )
    for name, a in arrays.items():
        if a is not None and a.shape != state.shape:
            raise ValueError(
                f"[{op}] {name} and {state_name} must have the same shape, got "
                f"{tuple(a.shape)} and {tuple(state.shape)}"
            )
    return H


def _gates(op, gi, gh, b, G, H):
    if b is not None and tuple(b.shape) != (G * H,):
        raise ValueError(f"[{op}] b must have shape ({G * H},), got {tuple(b.shape)}")
    return gi + gh if b is None else gi + gh + b


def _split(a, H, count):
    return [a[:, k * H : (k + 1) * H] for k in range(count)]


def lstm_cell_forward(gi, gh, b, c):
    # gi, gh (N,4H), b (4H,) or None, c (N,H) -> (h, c_new (N,H), act (N,4H), tanh_c (N,H)).
    op = "lstm_cell_forward"
    H = _check(op, "c", c, {"gi": gi, "gh": gh}, {}, 4)
    xp = _arrays.namespace(gi)
    pre = _split(_gates(op, gi, gh, b, 4, H), H, 4)
    i, f, o = sigmoid_forward(pre[0]), sigmoid_forward(pre[1]), sigmoid_forward(pre[3])
    g = tanh_forward(pre[2])
    c_new = f * c + i * g
    tanh_c = tanh_forward(c_new)
    return o * tanh_c, c_new, xp.concat([i, f, g, o], axis=1), tanh_c


def lstm_cell_backward(act, tanh_c, c, dh, dc):
    # act (N,4H), tanh_c, c, dh, dc (or None) (N,H) -> (dgates (N,4H), dc_prev (N,H)).
    H = _check(
        "lstm_cell_backward", "c", c, {"act": act}, {"tanh_c": tanh_c, "dh": dh, "dc": dc}, 4
    )
    xp = _arrays.namespace(act)
    i, f, g, o = _split(act, H, 4)
    dc_t = dh * o * (1 - tanh_c * tanh_c)
    if dc is not None:
        dc_t = dc + dc_t
    dgates = xp.concat(
        [
            dc_t * g * i * (1 - i),
            dc_t * c * f * (1 - f),
            dc_t * i * (1 - g * g),
            dh * tanh_c * o * (1 - o),
        ],
        axis=1,
    )
    return dgates, dc_t * f


def gru_cell_forward(gi, gh, b, h):
    # gi, gh (N,3H), b (3H,) or None, h (N,H) -> (h_new (N,H), act (N,4H): r, z, n, hn).
    op = "gru_cell_forward"
    H = _check(op, "h", h, {"gi": gi, "gh": gh}, {}, 3)
    xp = _arrays.namespace(gi)
    gates = _gates(op, gi, gh, b, 3, H)
    r, z = sigmoid_forward(gates[:, :H]), sigmoid_forward(gates[:, H : 2 * H])
    hn = gh[:, 2 * H :] if b is None else gh[:, 2 * H :] + b[2 * H :]
    # NOTE: PyTorch's GRU applies r to (W_hn h + b_hn), not to h before the matmul.
    n = tanh_forward(gi[:, 2 * H :] + r * hn)
    return n + z * (h - n), xp.concat([r, z, n, hn], axis=1)


def gru_cell_backward(act, h, dh):
    # act (N,4H), h, dh (N,H) -> (dgi, dgh (N,3H), dh_prev (N,H)).
    H = _check("gru_cell_backward", "h", h, {"act": act}, {"dh": dh}, 4)
    xp = _arrays.namespace(act)
    r, z, n, hn = _split(act, H, 4)
    dn = dh * (1 - z) * (1 - n * n)
    dr = dn * hn * r * (1 - r)
    dz = dh * (h - n) * z * (1 - z)
    return xp.concat([dr, dz, dn], axis=1), xp.concat([dr, dz, dn * r], axis=1), dh * z
