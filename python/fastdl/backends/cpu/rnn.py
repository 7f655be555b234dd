"""cpu backend: the pointwise part of LSTM and GRU steps, forward and backward
(csrc/cpu/rnn.cpp)."""

from __future__ import annotations

import numpy as np

from ... import _C
from ._arrays import f32

__all__ = ["gru_cell_backward", "gru_cell_forward", "lstm_cell_backward", "lstm_cell_forward"]


def _opt(a):
    return None if a is None else f32(a)


def lstm_cell_forward(gi: np.ndarray, gh: np.ndarray, b, c: np.ndarray) -> tuple:
    """gi, gh (N, 4H), b (4H,) or None, c (N, H) -> (h, c_new, act (N, 4H), tanh_c)."""
    return _C.lstm_cell_forward(f32(gi), f32(gh), _opt(b), f32(c))


def lstm_cell_backward(
    act: np.ndarray, tanh_c: np.ndarray, c: np.ndarray, dh: np.ndarray, dc
) -> tuple:
    """act (N, 4H), tanh_c, c, dh, dc (or None) (N, H) -> (dgates (N, 4H), dc_prev (N, H))."""
    return _C.lstm_cell_backward(f32(act), f32(tanh_c), f32(c), f32(dh), _opt(dc))


def gru_cell_forward(gi: np.ndarray, gh: np.ndarray, b, h: np.ndarray) -> tuple:
    """gi, gh (N, 3H), b (3H,) or None, h (N, H) -> (h_new (N, H), act (N, 4H))."""
    return _C.gru_cell_forward(f32(gi), f32(gh), _opt(b), f32(h))


def gru_cell_backward(act: np.ndarray, h: np.ndarray, dh: np.ndarray) -> tuple:
    """act (N, 4H), h, dh (N, H) -> (dgi, dgh (N, 3H), dh_prev (N, H))."""
    return _C.gru_cell_backward(f32(act), f32(h), f32(dh))
