"""Zero-size shapes across the public surface (issue "Hardening", item 9), compared with PyTorch.

Each case names its sizes symbolically (`N`, `C`, ...); the table runs it once per size with that
size set to 0, forward and (where differentiable) backward, on the `cpu` and `reference` backends
in float32 and on float64 (always the reference). Where PyTorch computes, fastdl must give the same
shape, dtype, values and input gradients (shapes included); where PyTorch raises, fastdl must raise
a RuntimeError or ValueError whose message names the op (`[op] ...`).
"""

from __future__ import annotations

import contextlib
import re
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

import fastdl

torch = pytest.importorskip("torch", reason="the zero-size table compares fastdl with PyTorch")

FLOAT = "float"  # a float input: random normal values, requires grad in differentiable cases
POSITIVE = "positive"  # a float input in (0.1, 1.1): log, sqrt, reciprocal, ...
PROB = "prob"  # a float input in (0.05, 0.95): probabilities for binary_cross_entropy
CLASS = "class"  # int64 class indices in [0, C) (C = the case's `classes` size; 0 when C is 0)
BOOL = "bool"  # a bool mask
FIXED = "fixed"  # a float input that never requires grad (weights of a loss, a target)


@dataclass
class Case:
    name: str
    sizes: dict  # symbol -> its non-zero size; the table zeroes each symbol in turn
    inputs: list  # (kind, shape of symbols and ints)
    fn: Callable  # fn(lib, d, *tensors): d maps each symbol to its size in this run
    grad: bool = True  # run backward through the float outputs
    classes: str = "C"  # the symbol that bounds CLASS inputs
    zero: tuple = ()  # the symbols to zero (default: all of `sizes`)
    values: bool = True  # compare values (False for random ops: shape and dtype only)
    marks: list = field(default_factory=list)


def _shape(spec, d):
    return tuple(d[s] if isinstance(s, str) else s for s in spec)


def _arrays(case, d, dtype):
    rng = np.random.default_rng(0)
    out = []
    for kind, spec in case.inputs:
        shape = _shape(spec, d)
        if kind == CLASS:
            n = d[case.classes]
            out.append(rng.integers(0, max(n, 1), shape).astype(np.int64))
        elif kind == BOOL:
            out.append(rng.random(shape) < 0.5)
        elif kind == POSITIVE:
            out.append((rng.random(shape) + 0.1).astype(dtype))
        elif kind == PROB:
            out.append((rng.random(shape) * 0.9 + 0.05).astype(dtype))
        else:
            out.append(rng.standard_normal(shape).astype(dtype))
    return out


def _differentiable(kind):
    return kind in (FLOAT, POSITIVE, PROB)


def _as_list(result):
    if isinstance(result, (tuple, list)):
        return list(result)
    return [result]


def _run(lib, case, d, arrays):
    """Forward and backward of `case` in `lib` (fastdl or torch): outputs and input gradients
    as NumPy arrays (None for no gradient)."""
    tensors = []
    for (kind, _), a in zip(case.inputs, arrays):
        t = lib.tensor(a.copy())
        if case.grad and _differentiable(kind):
            t.requires_grad_(True)
        tensors.append(t)
    with _warnings(lib):
        outputs = _as_list(case.fn(lib, d, *tensors))
    loss = None
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # -inf * g summed: NaN, and NumPy says so
        for o in outputs:
            if isinstance(o, lib.Tensor) and o.requires_grad:
                g = lib.tensor(rng.standard_normal(tuple(o.shape)).astype(_np_dtype(o.dtype)))
                term = (o * g).sum()
                loss = term if loss is None else loss + term
    if case.grad and loss is not None:
        with _warnings(lib):
            loss.backward()
    outs = [_np(o) for o in outputs]
    grads = [_np(t.grad) if t.requires_grad else None for t in tensors]
    return outs, grads


@contextlib.contextmanager
def _warnings(lib):
    """PyTorch's warnings are ignored; fastdl must not leak NumPy's ("divide by zero", "Mean of
    empty slice") on empty inputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if lib is fastdl:
            warnings.simplefilter("error", RuntimeWarning)
        yield


def _np_dtype(dtype):
    return np.dtype(str(dtype).split(".")[-1])


def _np(x):
    if x is None:
        return None
    if isinstance(x, (fastdl.Tensor, torch.Tensor)):
        return x.detach().numpy()
    if isinstance(x, (tuple, list)):  # fastdl.Size / torch.Size
        return tuple(x)
    return x


def _compare(ours, theirs, what, values):
    if isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray), f"{what}: expected an array, got {ours!r}"
        assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch {theirs.shape}"
        assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != torch {theirs.dtype}"
        if values:
            tol = 1e-5 if theirs.dtype == np.float32 else 1e-10
            np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol, equal_nan=True,
                                       err_msg=what)
    else:
        assert ours == theirs, f"{what}: {ours!r} != torch {theirs!r}"


def _variants(case):
    symbols = case.zero or tuple(case.sizes)
    for s in symbols:
        d = dict(case.sizes)
        d[s] = 0
        yield f"{s}=0", d


def _params(cases):
    for case in cases:
        for label, d in _variants(case):
            for run in ("cpu-float32", "reference-float32", "float64"):
                yield pytest.param(case, d, run, id=f"{case.name}-{label}-{run}", marks=case.marks)


def _check(case, d, run):
    dtype = np.float64 if run == "float64" else np.float32
    backend = "reference" if run.startswith("reference") else "cpu"
    arrays = _arrays(case, d, dtype)
    try:
        expected = _run(torch, case, d, arrays)
    except Exception as e:  # noqa: BLE001  (PyTorch refuses: fastdl must refuse too)
        refusal = e
    else:
        refusal = None
    with fastdl.backend(backend):
        if refusal is not None:
            # PyTorch's index errors are IndexError (not a RuntimeError): fastdl's may be too
            allowed = (RuntimeError, ValueError) + ((IndexError,) if isinstance(refusal, IndexError)
                                                    else ())
            with pytest.raises(allowed) as info:
                _run(fastdl, case, d, arrays)
            assert re.search(r"\[[\w.]+\]", str(info.value)), (
                f"fastdl's error does not name the op: {info.value!r} (torch: {refusal!r})"
            )
            return
        outs, grads = _run(fastdl, case, d, arrays)
    t_outs, t_grads = expected
    assert len(outs) == len(t_outs)
    for i, (o, t) in enumerate(zip(outs, t_outs)):
        _compare(o, t, f"output {i}", case.values)
    for i, (g, t) in enumerate(zip(grads, t_grads)):
        if t is None:
            assert g is None or not np.any(g), f"grad {i}: torch has none, fastdl {g!r}"
        else:
            assert g is not None, f"grad {i}: torch has one of shape {t.shape}, fastdl none"
            _compare(g, t, f"grad {i}", case.values)


# ---- the table ---------------------------------------------------------------------------------

ABC = {"A": 2, "B": 3, "C": 4}
X = [(FLOAT, ("A", "B", "C"))]
XP = [(POSITIVE, ("A", "B", "C"))]


def _m(name):
    return lambda lib, d, x: getattr(x, name)()


UNARY = [
    Case(f"Tensor.{n}", ABC, XP if n in ("log", "sqrt", "rsqrt", "reciprocal", "log1p") else X,
         _m(n), grad=n != "sign")
    for n in ("exp", "log", "log1p", "sqrt", "rsqrt", "abs", "sin", "cos", "square", "reciprocal",
              "sign", "neg", "relu", "sigmoid", "tanh", "clone", "contiguous", "detach", "flatten")
] + [
    Case("Tensor.__neg__", ABC, X, lambda lib, d, x: -x),
    Case("Tensor.__abs__", ABC, X, lambda lib, d, x: abs(x)),
    Case("Tensor.__pos__", ABC, X, lambda lib, d, x: +x),
    Case("Tensor.__pow__", ABC, X, lambda lib, d, x: x ** 2),
    Case("Tensor.__rpow__", ABC, X, lambda lib, d, x: 2.0 ** x),
    Case("Tensor.pow", ABC, XP, lambda lib, d, x: x.pow(0.5)),
    Case("Tensor.clamp", ABC, X, lambda lib, d, x: x.clamp(-0.5, 0.5)),
    Case("Tensor.clip", ABC, X, lambda lib, d, x: x.clip(min=-0.5)),
    Case("Tensor.__add__scalar", ABC, X, lambda lib, d, x: x + 1),
    Case("Tensor.__rsub__", ABC, X, lambda lib, d, x: 1 - x),
    Case("Tensor.__rtruediv__", ABC, XP, lambda lib, d, x: 1 / x),
    Case("Tensor.__mul__scalar", ABC, X, lambda lib, d, x: x * 3),
    Case("Tensor.__floordiv__", ABC, X, lambda lib, d, x: x // 0.5, grad=False),
    Case("Tensor.__mod__", ABC, X, lambda lib, d, x: x % 0.5, grad=False),
    Case("Tensor.compare", ABC, X, lambda lib, d, x: [x > 0, x >= 0, x < 0, x <= 0, x == 0,
                                                        x != 0, x.eq(0), x.ne(0)], grad=False),
    Case("Tensor.__invert__", ABC, [(BOOL, ("A", "B", "C"))], lambda lib, d, x: ~x),
    Case("Tensor.to", ABC, X, lambda lib, d, x: [x.to(lib.float64), x.long(), x.int(), x.bool(),
                                                  x.double().float()]),
    Case("Tensor.float", ABC, X, lambda lib, d, x: x.float()),
    Case("Tensor.tolist", ABC, X, lambda lib, d, x: x.tolist(), grad=False),
    Case("Tensor.numel", ABC, X, lambda lib, d, x: [x.numel(), x.nelement(), x.dim(), x.ndim,
                                                     tuple(x.size()), x.stride()], grad=False),
    Case("F.relu", ABC, X, lambda lib, d, x: lib.nn.functional.relu(x)),
    Case("F.sigmoid", ABC, X, lambda lib, d, x: lib.nn.functional.sigmoid(x)),
    Case("F.tanh", ABC, X, lambda lib, d, x: lib.nn.functional.tanh(x)),
    Case("F.leaky_relu", ABC, X, lambda lib, d, x: lib.nn.functional.leaky_relu(x, 0.1)),
    Case("F.dropout.eval", ABC, X, lambda lib, d, x: lib.nn.functional.dropout(x, 0.5, False)),
    Case("F.dropout.p0", ABC, X, lambda lib, d, x: lib.nn.functional.dropout(x, 0.0)),
    Case("F.dropout.p1", ABC, X, lambda lib, d, x: lib.nn.functional.dropout(x, 1.0)),
    Case("F.dropout.train", ABC, X, lambda lib, d, x: lib.nn.functional.dropout(x, 0.5),
         values=False),
]


def _red(name, *args, **kw):
    return lambda lib, d, x: getattr(x, name)(*args, **kw)


REDUCE = []
for _n in ("sum", "mean", "prod", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin",
           "all", "any", "logsumexp"):
    _grad = _n not in ("argmax", "argmin", "all", "any")
    if _n not in ("amax", "amin", "logsumexp"):
        REDUCE.append(Case(f"Tensor.{_n}()", ABC, X, _red(_n), grad=_grad))
    for _dim in (0, -1, (0, 2)):
        if isinstance(_dim, tuple) and _n in ("prod", "max", "min", "argmax", "argmin", "all",
                                                "any"):
            continue
        for _keep in (False, True):
            REDUCE.append(Case(f"Tensor.{_n}(dim={_dim},keepdim={_keep})", ABC, X,
                               _red(_n, _dim, keepdim=_keep), grad=_grad))
REDUCE += [
    Case("Tensor.var(unbiased=False)", ABC, X, _red("var", 1, unbiased=False)),
    Case("Tensor.std(correction=0)", ABC, X, _red("std", None, correction=0)),
    Case("Tensor.softmax(0)", ABC, X, _red("softmax", 0)),
    Case("Tensor.softmax(-1)", ABC, X, _red("softmax", -1)),
    Case("Tensor.log_softmax(1)", ABC, X, _red("log_softmax", 1)),
    Case("F.softmax", ABC, X, lambda lib, d, x: lib.nn.functional.softmax(x, dim=-1)),
    Case("F.log_softmax", ABC, X, lambda lib, d, x: lib.nn.functional.log_softmax(x, dim=0)),
    Case("fastdl.sum", ABC, X, lambda lib, d, x: lib.sum(x, 1)),
    Case("fastdl.logsumexp", ABC, X, lambda lib, d, x: lib.logsumexp(x, 2)),
]

XY = [(FLOAT, ("A", "B", "C")), (FLOAT, ("A", "B", "C"))]
XYB = [(FLOAT, ("A", "B", "C")), (FLOAT, ("B", 1))]
BINARY = []
for _n, _f in {
    "add": lambda lib, d, x, y: x + y,
    "sub": lambda lib, d, x, y: x - y,
    "mul": lambda lib, d, x, y: x * y,
    "div": lambda lib, d, x, y: x / y,
    "pow": lambda lib, d, x, y: x.abs() ** y,
    "maximum": lambda lib, d, x, y: lib.maximum(x, y),
    "minimum": lambda lib, d, x, y: lib.minimum(x, y),
    "fastdl.add": lambda lib, d, x, y: lib.add(x, y, alpha=2),
    "fastdl.sub": lambda lib, d, x, y: lib.sub(x, y),
    "fastdl.mul": lambda lib, d, x, y: lib.mul(x, y),
    "fastdl.div": lambda lib, d, x, y: lib.div(x, y),
    "where": lambda lib, d, x, y: lib.where(x > 0, x, y),
    "lt": lambda lib, d, x, y: x < y,
}.items():
    BINARY.append(Case(f"binary.{_n}", ABC, XY, _f, grad=_n != "lt"))
    BINARY.append(Case(f"binary.{_n}.broadcast", ABC, XYB, _f, grad=_n != "lt"))
BINARY.append(Case("binary.broadcast_mismatch", {"A": 2, "B": 3}, [(FLOAT, ("A", "B")),
                                                                   (FLOAT, (3, "B"))],
                   lambda lib, d, x, y: x + y, zero=("A",)))

MOVE = [
    Case("reshape(-1)", ABC, X, lambda lib, d, x: x.reshape(-1)),
    Case("reshape(A,-1)", ABC, X, lambda lib, d, x: x.reshape(d["A"], -1)),
    Case("reshape(-1,0)", ABC, X, lambda lib, d, x: x.reshape(-1, 0)),
    Case("reshape(AB,C)", ABC, X, lambda lib, d, x: x.reshape(d["A"] * d["B"], d["C"])),
    Case("view", ABC, X, lambda lib, d, x: x.view(d["A"], d["B"] * d["C"])),
    Case("view(-1)", ABC, X, lambda lib, d, x: x.view(-1)),
    Case("reshape_as", ABC, XY, lambda lib, d, x, y: x.reshape_as(y)),
    Case("flatten(1)", ABC, X, lambda lib, d, x: x.flatten(1)),
    Case("fastdl.flatten", ABC, X, lambda lib, d, x: lib.flatten(x, 0, 1)),
    Case("F.flatten", ABC, X, lambda lib, d, x: lib.nn.functional.flatten(x, 1) if lib is fastdl
         else lib.flatten(x, 1)),
    Case("unflatten", ABC, X, lambda lib, d, x: x.unflatten(1, (d["B"], 1))),
    Case("squeeze", {"A": 2, "C": 4}, [(FLOAT, ("A", 1, "C"))], lambda lib, d, x: x.squeeze()),
    Case("squeeze(1)", {"A": 2, "C": 4}, [(FLOAT, ("A", 1, "C"))],
         lambda lib, d, x: x.squeeze(1)),
    Case("squeeze(0)", ABC, X, lambda lib, d, x: x.squeeze(0)),
    Case("unsqueeze", ABC, X, lambda lib, d, x: x.unsqueeze(1)),
    Case("permute", ABC, X, lambda lib, d, x: x.permute(2, 0, 1)),
    Case("transpose", ABC, X, lambda lib, d, x: x.transpose(0, 2)),
    Case("t", {"A": 2, "B": 3}, [(FLOAT, ("A", "B"))], lambda lib, d, x: x.t()),
    Case("T", {"A": 2, "B": 3}, [(FLOAT, ("A", "B"))], lambda lib, d, x: x.T),
    Case("mT", ABC, X, lambda lib, d, x: x.mT),
    Case("expand", {"A": 2, "C": 4}, [(FLOAT, ("A", 1, "C"))],
         lambda lib, d, x: x.expand(d["A"], 3, d["C"])),
    Case("expand_to_zero", {"A": 2, "C": 4}, [(FLOAT, ("A", 1, "C"))],
         lambda lib, d, x: x.expand(-1, 0, -1), zero=("A", "C")),
    Case("expand_as", ABC, XYB[::-1], lambda lib, d, y, x: y.expand_as(x)),
    Case("narrow", ABC, X, lambda lib, d, x: x.narrow(2, 0, min(2, d["C"]))),
    Case("narrow_out_of_range", ABC, X, lambda lib, d, x: x.narrow(0, 1, 1)),
    Case("select", ABC, X, lambda lib, d, x: x.select(1, 0)),
    Case("diagonal", ABC, X, lambda lib, d, x: x.diagonal(0, 0, 1)),
    Case("getitem[0]", ABC, X, lambda lib, d, x: x[0]),
    Case("getitem[:,1:]", ABC, X, lambda lib, d, x: x[:, 1:]),
    Case("getitem[...,::2]", ABC, X, lambda lib, d, x: x[..., ::2]),
    Case("getitem[None,:0]", ABC, X, lambda lib, d, x: x[None, :0]),
    Case("getitem[mask]", ABC, [(FLOAT, ("A", "B", "C")), (BOOL, ("A", "B", "C"))],
         lambda lib, d, x, m: x[m]),
    Case("getitem[index]", ABC, [(FLOAT, ("A", "B", "C")), (CLASS, (5,))],
         lambda lib, d, x, i: x[i], classes="A"),
    Case("getitem[empty index]", ABC, X, lambda lib, d, x: x[lib.zeros(0, dtype=lib.long)]),
    Case("setitem", ABC, XY, lambda lib, d, x, y: _setitem(x, y, (slice(None), slice(1, None)))),
    Case("masked_fill", ABC, [(FLOAT, ("A", "B", "C")), (BOOL, ("A", "B", "C"))],
         lambda lib, d, x, m: x.masked_fill(m, 0.5)),
    Case("fastdl.masked_fill", ABC, [(FLOAT, ("A", "B", "C")), (BOOL, ("B", "C"))],
         lambda lib, d, x, m: lib.masked_fill(x, m, -1.0)),
    Case("cat(0)", ABC, XY, lambda lib, d, x, y: lib.cat([x, y], 0)),
    Case("cat(2)", ABC, XY, lambda lib, d, x, y: lib.cat([x, y], 2)),
    Case("concat", ABC, XY, lambda lib, d, x, y: lib.concat([x, y], dim=1)),
    Case("stack", ABC, XY, lambda lib, d, x, y: lib.stack([x, y], 1)),
    Case("cat_with_empty_1d", {"A": 2, "B": 3}, [(FLOAT, ("A", "B")), (FLOAT, (0,))],
         lambda lib, d, x, y: lib.cat([x, y])),
    Case("iter", {"A": 2, "B": 3}, [(FLOAT, ("A", "B"))], lambda lib, d, x: list(x)),
    Case("len", {"A": 2, "B": 3}, [(FLOAT, ("A", "B"))], lambda lib, d, x: len(x), grad=False),
]


def _setitem(x, y, index):
    z = x * 1
    z[index] = y[index] * 2
    return z


def _inplace(name, *args):
    def f(lib, d, x):
        z = x * 1
        getattr(z, name)(*args)
        return z
    return f


INPLACE = [
    Case(f"Tensor.{n}", ABC, X, _inplace(n, *a), grad=g)
    for n, a, g in [
        ("add_", (1.0,), True), ("sub_", (1.0,), True), ("mul_", (2.0,), True),
        ("div_", (2.0,), True), ("pow_", (2,), True), ("clamp_", (-0.5, 0.5), True),
        ("clip_", (-0.5,), True), ("relu_", (), True), ("sigmoid_", (), True), ("tanh_", (), True),
        ("exp_", (), True), ("neg_", (), True), ("abs_", (), True), ("fill_", (1.5,), True),
        ("zero_", (), True),
    ]
] + [
    Case("Tensor.iadd", ABC, XY, lambda lib, d, x, y: _iop(x, y, "__iadd__")),
    Case("Tensor.imul", ABC, XY, lambda lib, d, x, y: _iop(x, y, "__imul__")),
    Case("Tensor.copy_", ABC, XY, lambda lib, d, x, y: _iop(x, y, "copy_")),
    Case("Tensor.log_", ABC, XP, _inplace("log_")),
    Case("Tensor.sqrt_", ABC, XP, _inplace("sqrt_")),
    Case("Tensor.uniform_", ABC, [(FIXED, ("A", "B", "C"))], lambda lib, d, x: x.uniform_(),
         grad=False, values=False),
    Case("Tensor.normal_", ABC, [(FIXED, ("A", "B", "C"))], lambda lib, d, x: x.normal_(),
         grad=False, values=False),
]


def _iop(x, y, name):
    z = x * 1
    getattr(z, name)(y)
    return z


MN = {"M": 2, "K": 3, "N": 4}
MATMUL = [
    Case("matmul", MN, [(FLOAT, ("M", "K")), (FLOAT, ("K", "N"))],
         lambda lib, d, a, b: a @ b),
    Case("fastdl.matmul", MN, [(FLOAT, ("M", "K")), (FLOAT, ("K", "N"))],
         lambda lib, d, a, b: lib.matmul(a, b)),
    Case("Tensor.matmul.batched", {"B": 2, **MN}, [(FLOAT, ("B", "M", "K")), (FLOAT, ("K", "N"))],
         lambda lib, d, a, b: a.matmul(b)),
    Case("matmul.bmm", {"B": 2, **MN}, [(FLOAT, ("B", "M", "K")), (FLOAT, ("B", "K", "N"))],
         lambda lib, d, a, b: a @ b),
    Case("matmul.vec", {"M": 2, "K": 3}, [(FLOAT, ("M", "K")), (FLOAT, ("K",))],
         lambda lib, d, a, b: a @ b),
    Case("matmul.dot", {"K": 3}, [(FLOAT, ("K",)), (FLOAT, ("K",))],
         lambda lib, d, a, b: a @ b),
    Case("matmul.vecmat", {"K": 3, "N": 4}, [(FLOAT, ("K",)), (FLOAT, ("K", "N"))],
         lambda lib, d, a, b: a @ b),
    Case("matmul.mismatch", {"M": 2, "K": 3}, [(FLOAT, ("M", "K")), (FLOAT, (2, "M"))],
         lambda lib, d, a, b: a @ b, zero=("K",)),
    Case("F.linear", {"N": 2, "I": 3, "O": 4}, [(FLOAT, ("N", "I")), (FLOAT, ("O", "I")),
                                                  (FLOAT, ("O",))],
         lambda lib, d, x, w, b: lib.nn.functional.linear(x, w, b)),
    Case("F.linear.nobias.3d", {"N": 2, "L": 2, "I": 3, "O": 4},
         [(FLOAT, ("N", "L", "I")), (FLOAT, ("O", "I"))],
         lambda lib, d, x, w: lib.nn.functional.linear(x, w)),
]

NCHW = {"N": 2, "C": 2, "H": 5, "W": 5}
def _F(lib):
    return lib.nn.functional


NN_F = [
    Case("F.conv2d", {**NCHW, "K": 3}, [(FLOAT, ("N", "C", "H", "W")), (FLOAT, ("K", "C", 3, 3)),
                                         (FLOAT, ("K",))],
         lambda lib, d, x, w, b: _F(lib).conv2d(x, w, b)),
    Case("F.conv2d.padding", {**NCHW, "K": 3}, [(FLOAT, ("N", "C", "H", "W")),
                                                 (FLOAT, ("K", "C", 3, 3))],
         lambda lib, d, x, w: _F(lib).conv2d(x, w, padding=1)),
    Case("F.conv2d.stride2", {**NCHW, "K": 3}, [(FLOAT, ("N", "C", "H", "W")),
                                                 (FLOAT, ("K", "C", 2, 2)), (FLOAT, ("K",))],
         lambda lib, d, x, w, b: _F(lib).conv2d(x, w, b, stride=2, padding=1)),
    Case("F.max_pool2d", NCHW, [(FLOAT, ("N", "C", "H", "W"))],
         lambda lib, d, x: _F(lib).max_pool2d(x, 2)),
    Case("F.max_pool2d.padding", NCHW, [(FLOAT, ("N", "C", "H", "W"))],
         lambda lib, d, x: _F(lib).max_pool2d(x, 3, 2, 1)),
    Case("F.max_pool2d.3d", {"C": 2, "H": 4, "W": 4}, [(FLOAT, ("C", "H", "W"))],
         lambda lib, d, x: _F(lib).max_pool2d(x, 2)),
    Case("F.max_pool2d_with_indices", NCHW, [(FLOAT, ("N", "C", "H", "W"))],
         lambda lib, d, x: _F(lib).max_pool2d_with_indices(x, 2) if lib is fastdl
         else _F(lib).max_pool2d(x, 2, return_indices=True)),
    Case("F.one_hot", {"N": 3, "C": 4}, [(CLASS, ("N",))],
         lambda lib, d, t: _F(lib).one_hot(t, d["C"])),
    Case("F.one_hot.infer", {"N": 3, "C": 4}, [(CLASS, ("N",))],
         lambda lib, d, t: _F(lib).one_hot(t), zero=("N",)),
]

NCL = {"N": 3, "C": 4}
LOGITS = (FLOAT, ("N", "C"))
REDUCTIONS = ("mean", "sum", "none")
LOSSES = []
for _r in REDUCTIONS:
    LOSSES += [
        Case(f"F.cross_entropy.{_r}", NCL, [LOGITS, (CLASS, ("N",))],
             lambda lib, d, x, t, r=_r: _F(lib).cross_entropy(x, t, reduction=r)),
        Case(f"F.cross_entropy.weight.{_r}", NCL, [LOGITS, (CLASS, ("N",)), (FIXED, ("C",))],
             lambda lib, d, x, t, w, r=_r: _F(lib).cross_entropy(x, t, w.abs(), reduction=r)),
        Case(f"F.cross_entropy.smoothing.{_r}", NCL, [LOGITS, (CLASS, ("N",))],
             lambda lib, d, x, t, r=_r: _F(lib).cross_entropy(x, t, reduction=r,
                                                              label_smoothing=0.1)),
        Case(f"F.cross_entropy.probs.{_r}", NCL, [LOGITS, (FIXED, ("N", "C"))],
             lambda lib, d, x, t, r=_r: _F(lib).cross_entropy(x, t.softmax(1), reduction=r)),
        Case(f"F.cross_entropy.ignore.{_r}", NCL, [LOGITS, (CLASS, ("N",))],
             lambda lib, d, x, t, r=_r: _F(lib).cross_entropy(x, t * 0 - 100, reduction=r)),
        Case(f"F.cross_entropy.4d.{_r}", {"N": 2, "C": 3, "H": 2, "W": 2},
             [(FLOAT, ("N", "C", "H", "W")), (CLASS, ("N", "H", "W"))],
             lambda lib, d, x, t, r=_r: _F(lib).cross_entropy(x, t, reduction=r)),
        Case(f"F.cross_entropy.probs.smoothing.{_r}", NCL, [LOGITS, (FIXED, ("N", "C"))],
             lambda lib, d, x, t, r=_r: _F(lib).cross_entropy(x, t.softmax(1), reduction=r,
                                                              label_smoothing=0.2)),
        Case(f"F.cross_entropy.ignore.smoothing.{_r}", NCL, [LOGITS, (CLASS, ("N",))],
             lambda lib, d, x, t, r=_r: _F(lib).cross_entropy(x, t * 0 - 100, reduction=r,
                                                              label_smoothing=0.2)),
        Case(f"F.cross_entropy.ignore.weight.{_r}", NCL,
             [LOGITS, (CLASS, ("N",)), (FIXED, ("C",))],
             lambda lib, d, x, t, w, r=_r: _F(lib).cross_entropy(x, t * 0 - 100, w.abs(),
                                                                 reduction=r)),
        Case(f"F.nll_loss.{_r}", NCL, [LOGITS, (CLASS, ("N",))],
             lambda lib, d, x, t, r=_r: _F(lib).nll_loss(x.log_softmax(1), t, reduction=r)),
        Case(f"F.mse_loss.{_r}", NCL, [LOGITS, (FIXED, ("N", "C"))],
             lambda lib, d, x, t, r=_r: _F(lib).mse_loss(x, t, reduction=r)),
        Case(f"F.l1_loss.{_r}", NCL, [LOGITS, (FIXED, ("N", "C"))],
             lambda lib, d, x, t, r=_r: _F(lib).l1_loss(x, t, reduction=r)),
        Case(f"F.binary_cross_entropy.{_r}", NCL, [(PROB, ("N", "C")), (FIXED, ("N", "C"))],
             lambda lib, d, x, t, r=_r: _F(lib).binary_cross_entropy(x, t.sigmoid(),
                                                                     reduction=r)),
        Case(f"F.binary_cross_entropy.weight.{_r}", NCL,
             [(PROB, ("N", "C")), (FIXED, ("N", "C")), (FIXED, ("C",))],
             lambda lib, d, x, t, w, r=_r: _F(lib).binary_cross_entropy(
                 x, t.sigmoid(), w.abs(), reduction=r)),
        Case(f"F.binary_cross_entropy_with_logits.{_r}", NCL, [LOGITS, (FIXED, ("N", "C"))],
             lambda lib, d, x, t, r=_r: _F(lib).binary_cross_entropy_with_logits(
                 x, t.sigmoid(), reduction=r)),
        Case(f"F.binary_cross_entropy_with_logits.pos_weight.{_r}", NCL,
             [LOGITS, (FIXED, ("N", "C")), (FIXED, ("C",))],
             lambda lib, d, x, t, w, r=_r: _F(lib).binary_cross_entropy_with_logits(
                 x, t.sigmoid(), pos_weight=w.abs(), reduction=r)),
        Case(f"nn.CrossEntropyLoss.{_r}", NCL, [LOGITS, (CLASS, ("N",))],
             lambda lib, d, x, t, r=_r: lib.nn.CrossEntropyLoss(reduction=r)(x, t)),
        Case(f"nn.NLLLoss.{_r}", NCL, [LOGITS, (CLASS, ("N",))],
             lambda lib, d, x, t, r=_r: lib.nn.NLLLoss(reduction=r)(x, t)),
        Case(f"nn.MSELoss.{_r}", NCL, [LOGITS, (FIXED, ("N", "C"))],
             lambda lib, d, x, t, r=_r: lib.nn.MSELoss(reduction=r)(x, t)),
        Case(f"nn.BCELoss.{_r}", NCL, [(PROB, ("N", "C")), (FIXED, ("N", "C"))],
             lambda lib, d, x, t, r=_r: lib.nn.BCELoss(reduction=r)(x, t.sigmoid())),
        Case(f"nn.BCEWithLogitsLoss.{_r}", NCL, [LOGITS, (FIXED, ("N", "C"))],
             lambda lib, d, x, t, r=_r: lib.nn.BCEWithLogitsLoss(reduction=r)(x, t.sigmoid())),
    ]


def _layer(lib, dtype_of, name, *args, **kwargs):
    """lib.nn.<name>(*args) with deterministic parameters, in the dtype of `dtype_of`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch: "Initializing zero-element tensors is a no-op"
        m = getattr(lib.nn, name)(*args, **kwargs)
    rng = np.random.default_rng(2)
    with lib.no_grad():
        for _, p in m.named_parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
    return m.double() if str(dtype_of.dtype).endswith("float64") else m


def _layer_case(name, sizes, shape, *args, zero=(), **kwargs):
    def f(lib, d, x):
        a = [d[s] if isinstance(s, str) else s for s in args]
        return _layer(lib, x, name, *a, **kwargs)(x)
    return Case(f"nn.{name}" + "".join(f".{k}={v}" for k, v in kwargs.items()), sizes,
                [(FLOAT, shape)], f, zero=zero)


LAYERS = [
    _layer_case("Linear", {"N": 2, "I": 3, "O": 4}, ("N", "I"), "I", "O"),
    _layer_case("Linear", {"N": 2, "I": 3, "O": 4}, ("N", "I"), "I", "O", bias=False),
    _layer_case("Conv2d", {**NCHW, "K": 3}, ("N", "C", "H", "W"), "C", "K", 3),
    _layer_case("Conv2d", {**NCHW, "K": 3}, ("N", "C", "H", "W"), "C", "K", 3, padding=1),
    _layer_case("Conv2d", {**NCHW, "K": 3}, ("N", "C", "H", "W"), "C", "K", 3, padding="same"),
    _layer_case("MaxPool2d", NCHW, ("N", "C", "H", "W"), 2),
    _layer_case("ReLU", ABC, ("A", "B", "C")),
    _layer_case("Sigmoid", ABC, ("A", "B", "C")),
    _layer_case("Tanh", ABC, ("A", "B", "C")),
    _layer_case("Flatten", ABC, ("A", "B", "C")),
    _layer_case("Identity", ABC, ("A", "B", "C")),
    _layer_case("Dropout", ABC, ("A", "B", "C"), 0.0),
    Case("nn.Dropout.eval", ABC, X, lambda lib, d, x: lib.nn.Dropout(0.5).eval()(x)),
    Case("nn.Sequential", {"N": 2, "C": 1, "H": 6, "W": 6, "K": 2},
         [(FLOAT, ("N", "C", "H", "W"))],
         lambda lib, d, x: lib.nn.Sequential(
             _layer(lib, x, "Conv2d", d["C"], d["K"], 3), lib.nn.ReLU(), lib.nn.MaxPool2d(2),
             lib.nn.Flatten(), _layer(lib, x, "Linear", d["K"] * 4, 3))(x)),
]

CREATION = [
    Case("zeros", ABC, [], lambda lib, d: lib.zeros(d["A"], d["B"], d["C"])),
    Case("ones", ABC, [], lambda lib, d: lib.ones((d["A"], d["B"]), dtype=lib.int64)),
    Case("full", ABC, [], lambda lib, d: lib.full((d["A"], d["C"]), 2.5)),
    Case("empty", ABC, [], lambda lib, d: lib.empty(d["A"], d["B"]).shape),
    Case("eye", {"A": 2, "B": 3}, [], lambda lib, d: lib.eye(d["A"], d["B"])),
    Case("arange", {"A": 3}, [], lambda lib, d: lib.arange(d["A"])),
    Case("arange.float", {"A": 3}, [], lambda lib, d: lib.arange(0.0, d["A"] / 2, 0.5)),
    Case("linspace", {"A": 3}, [], lambda lib, d: lib.linspace(0, 1, d["A"])),
    Case("rand", ABC, [], lambda lib, d: lib.rand(d["A"], d["B"]), values=False),
    Case("randn", ABC, [], lambda lib, d: lib.randn(d["A"], d["B"]), values=False),
    Case("randint", ABC, [], lambda lib, d: lib.randint(0, 5, (d["A"], d["B"])), values=False),
    Case("randperm", {"A": 3}, [], lambda lib, d: lib.randperm(d["A"]), values=False),
    Case("like", ABC, X, lambda lib, d, x: [lib.zeros_like(x), lib.ones_like(x),
                                            lib.full_like(x, 2.0), lib.empty_like(x).shape],
         grad=False),
    Case("rand_like", ABC, X, lambda lib, d, x: [lib.rand_like(x), lib.randn_like(x),
                                                 lib.randint_like(x, 3)], grad=False,
         values=False),
    Case("tensor.empty_nested", {"A": 2}, [], lambda lib, d: lib.tensor([[]] * d["A"])),
    Case("from_numpy", ABC, [], lambda lib, d: lib.from_numpy(np.zeros((d["A"], d["B"])))),
    Case("as_tensor", ABC, [], lambda lib, d: lib.as_tensor(np.zeros((d["A"], d["B"]),
                                                                     np.float32))),
]

# fastdl.<name>(t, ...): the module-level forms of the Tensor methods
MODULE = [
    Case(f"fastdl.{n}", ABC, XP if n in ("log", "sqrt", "rsqrt", "log1p") else X,
         lambda lib, d, x, n=n, a=a: getattr(lib, n)(x, *a), grad=n not in ("argmax", "sign"))
    for n, a in [
        ("exp", ()), ("log", ()), ("log1p", ()), ("sqrt", ()), ("rsqrt", ()), ("abs", ()),
        ("sin", ()), ("cos", ()), ("square", ()), ("sign", ()), ("clamp", (-0.5, 0.5)),
        ("relu", ()), ("sigmoid", ()), ("tanh", ()), ("softmax", (1,)), ("log_softmax", (2,)),
        ("sum", (0,)), ("mean", (2,)), ("amax", (1,)), ("argmax", (1,)), ("reshape", ((-1,),)),
        ("flatten", ()), ("squeeze", ()), ("unsqueeze", (0,)), ("permute", ((1, 0, 2),)),
        ("transpose", (1, 2)), ("clone", ()), ("detach", ()), ("prod", (1,)), ("narrow", (2, 0, 0)),
        ("diagonal", (0, 1, 2)), ("pow", (2,)),
    ]
] + [
    Case("Tensor.masked_fill_", ABC, [(FLOAT, ("A", "B", "C")), (BOOL, ("A", "B", "C"))],
         lambda lib, d, x, m: (x * 1).masked_fill_(m, 2.0)),
    Case("Tensor.index_put_", ABC, [(FLOAT, ("A", "B", "C")), (BOOL, ("A", "B", "C"))],
         lambda lib, d, x, m: (x * 1).index_put_((m,), lib.tensor(3.0, dtype=x.dtype))),
    Case("setitem[mask]", ABC, [(FLOAT, ("A", "B", "C")), (BOOL, ("A", "B", "C"))],
         lambda lib, d, x, m: _setitem(x, x, m)),
]

ALL = MODULE + UNARY + REDUCE + BINARY + MOVE + INPLACE + MATMUL + NN_F + LOSSES + LAYERS + CREATION


@pytest.mark.parametrize("case,d,run", list(_params(ALL)))
def test_zero_size_matches_pytorch(case, d, run):
    _check(case, d, run)


# ---- optimizers --------------------------------------------------------------------------------

OPTIMIZERS = {
    "SGD": dict(lr=0.1),
    "SGD.momentum": dict(lr=0.1, momentum=0.9, weight_decay=0.01),
    "SGD.nesterov": dict(lr=0.1, momentum=0.9, nesterov=True),
    "Adam": dict(lr=0.1),
    "Adam.weight_decay": dict(lr=0.1, weight_decay=0.01),
    "AdamW": dict(lr=0.1),
}


def _opt_steps(lib, name, shapes, dtype, steps=2):
    rng = np.random.default_rng(3)
    params = [lib.nn.Parameter(lib.tensor(rng.standard_normal(s).astype(dtype))) for s in shapes]
    opt = getattr(lib.optim, name.split(".")[0])(params, **OPTIMIZERS[name])
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(((p * p).sum() for p in params), lib.tensor(np.zeros((), dtype)))
        loss.backward()
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("run", ["cpu-float32", "reference-float32", "float64"])
@pytest.mark.parametrize("shapes", [[(0,)], [(0, 3)], [(3, 0)], [(0, 3), (2,)]],
                         ids=["0", "0x3", "3x0", "0x3+2"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_steps_on_zero_size_parameters(name, shapes, run):
    dtype = np.float64 if run == "float64" else np.float32
    expected = _opt_steps(torch, name, shapes, dtype)
    with fastdl.backend("reference" if run.startswith("reference") else "cpu"):
        ours = _opt_steps(fastdl, name, shapes, dtype)
    for o, t in zip(ours, expected):
        _compare(o, t, f"{name} parameter", True)
