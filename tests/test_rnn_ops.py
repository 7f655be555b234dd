"""The fused recurrent ops of fastdl/ops/rnn.py (cells and whole sequences): every input's
gradient against float64 central differences, with and without bias, forwards and reversed,
with only some outputs used; the no-graph path; PyTorch's in-place rule on what they save.
(tests/test_rnn.py checks the nn layers built on them against PyTorch.) Runs on every device.
"""

from __future__ import annotations

import fastdl
import numpy as np
import pytest
from fastdl.ops import rnn as ops

from gradcheck import numerical_grad

N, H, L = 2, 3, 3
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _host(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _inputs(mode: str, sequence: bool, bias: bool, seed: int = 0) -> list:
    """Float64 arrays (gi, w_hh, b_hh or None, *state)."""
    rng = np.random.default_rng(seed)
    g = GATES[mode] * H
    gi = rng.standard_normal((L, N, g) if sequence else (N, g))
    w = rng.standard_normal((g, H)) * 0.5
    b = rng.standard_normal(g) if bias else None
    states = [rng.standard_normal((N, H)) for _ in range(2 if mode == "LSTM" else 1)]
    return [gi, w, b, *states]


def _outputs(op, tensors, reverse):
    out = op.apply(*tensors, reverse=reverse) if op.sequence else op.apply(*tensors)
    return out if isinstance(out, tuple) else (out,)


CASES = [
    (mode, sequence, bias, reverse)
    for mode in GATES
    for sequence in (False, True)
    for bias in (True, False)
    for reverse in ((False, True) if sequence else (False,))
]


@pytest.mark.parametrize("mode,sequence,bias,reverse", CASES)
@pytest.mark.parametrize("used", ["all", "first"])
def test_gradients_match_finite_differences(mode, sequence, bias, reverse, used):
    op = (ops.SEQUENCE_OPS if sequence else ops.CELL_OPS)[mode]
    arrays = _inputs(mode, sequence, bias)
    tensors = [None if a is None else fastdl.tensor(a, requires_grad=True) for a in arrays]
    outs = _outputs(op, tensors, reverse)
    if used == "first":
        outs = outs[:1]  # the other outputs get no gradient (None in backward)
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal(tuple(o.shape)) for o in outs]
    sum(((o * fastdl.tensor(w)).sum() for o, w in zip(outs, weights)), start=0).backward()

    present = [k for k, a in enumerate(arrays) if a is not None]
    live = [arrays[k] for k in present]

    def loss(*values):
        full = list(arrays)
        for k, v in zip(present, values):
            full[k] = v
        with fastdl.no_grad():
            ys = _outputs(op, [None if a is None else fastdl.tensor(a) for a in full], reverse)
        return sum(float((_host(y) * w).sum()) for y, w in zip(ys, weights))

    for j, k in enumerate(present):
        want = numerical_grad(loss, live, j)
        got = _host(tensors[k].grad)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=f"input {k}")


@pytest.mark.parametrize("mode", list(GATES))
def test_no_graph_path_matches_recorded(mode):
    op = ops.SEQUENCE_OPS[mode]
    arrays = _inputs(mode, True, True)
    plain = _outputs(op, [fastdl.tensor(a) for a in arrays], False)
    recorded = _outputs(op, [fastdl.tensor(a, requires_grad=True) for a in arrays], False)
    assert len(plain) == op.n_outputs
    for p, r in zip(plain, recorded):
        np.testing.assert_array_equal(_host(p), _host(r))
    cell = ops.CELL_OPS[mode]
    out = _outputs(cell, [fastdl.tensor(a[0]) if k == 0 else fastdl.tensor(a)
                          for k, a in enumerate(arrays)], False)
    assert len(out) == (2 if mode == "LSTM" else 1)


@pytest.mark.parametrize("mode", list(GATES))
@pytest.mark.parametrize("sequence", [False, True])
@pytest.mark.parametrize("which", ["w_hh", "h0"])
def test_in_place_change_of_saved_input_is_caught(mode, sequence, which):
    op = (ops.SEQUENCE_OPS if sequence else ops.CELL_OPS)[mode]
    arrays = _inputs(mode, sequence, True)
    tensors = [fastdl.tensor(a, requires_grad=(k == 0)) for k, a in enumerate(arrays)]
    outs = _outputs(op, tensors, False)
    loss = sum((o.sum() for o in outs), start=0)
    tensors[1 if which == "w_hh" else 3].add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_in_place_change_of_rnn_cell_output_is_caught():
    arrays = _inputs("RNN_TANH", False, True)
    tensors = [fastdl.tensor(a, requires_grad=True) for a in arrays]
    (h,) = _outputs(ops.RNNCellOp, tensors, False)
    loss = (h * h).sum()
    h.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize("mode", list(GATES))
def test_in_place_change_of_final_state_leaves_gradient_intact(mode):
    """The sequence ops save none of their outputs: changing one afterwards is allowed."""
    op = ops.SEQUENCE_OPS[mode]
    arrays = _inputs(mode, True, True)

    def grad_of_gi(modify: bool):
        tensors = [fastdl.tensor(a, requires_grad=True) for a in arrays]
        outs = _outputs(op, tensors, False)
        loss = sum((o.sum() for o in outs[:1]), start=0)
        if modify:
            for o in outs:
                o.mul_(3.0)
        loss.backward()
        return _host(tensors[0].grad)

    np.testing.assert_array_equal(grad_of_gi(True), grad_of_gi(False))
