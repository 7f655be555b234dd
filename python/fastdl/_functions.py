"""fastdl's differentiable ops: one small class per op, forward and chain rule side by side.

Each op works on NumPy arrays (see autograd/function.py's `Op`). Heavy kernels (matmul, conv2d,
maxpool2d, activations, cross-entropy) go through the backend chosen for the array's dtype
(fastdl/_backend.py); light elementwise and reduction math is NumPy, the CPU device's storage.
"""

from __future__ import annotations

import numpy as np

from . import _backend
from .autograd import function as function_module
from .autograd.function import Op
from .autograd.grad_mode import _enabled


def _crosswise(needs):
    """What a product saves: each operand is needed only for the other operand's gradient."""
    return tuple(i for i, other in ((0, 1), (1, 0)) if needs[other])


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


# ---------------------------------------------------------------- unary


class Neg(Op):
    def forward(self, x):
        return -x

    def backward(self, g):
        return (-g,)


class Exp(Op):
    saves_output = True

    def forward(self, x):
        self.y = np.exp(x)
        return self.y

    def backward(self, g):
        return (g * self.y,)


class Log(Op):
    saves = (0,)

    def forward(self, x):
        self.x = x
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    def backward(self, g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g / self.x,)


class Log1p(Op):
    saves = (0,)

    def forward(self, x):
        self.x = x
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log1p(x)

    def backward(self, g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g / (1 + self.x),)


class Sqrt(Op):
    saves_output = True

    def forward(self, x):
        with np.errstate(invalid="ignore"):
            self.y = np.sqrt(x)
        return self.y

    def backward(self, g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g / (2 * self.y),)


class Abs(Op):
    saves = (0,)

    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, g):
        return (g * np.sign(self.x),)


class Sin(Op):
    saves = (0,)

    def forward(self, x):
        self.x = x
        return np.sin(x)

    def backward(self, g):
        return (g * np.cos(self.x),)


class Cos(Op):
    saves = (0,)

    def forward(self, x):
        self.x = x
        return np.cos(x)

    def backward(self, g):
        return (-g * np.sin(self.x),)


class PowScalar(Op):
    saves = (0,)

    def forward(self, x, exponent):
        self.x, self.exponent = x, exponent
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.power(x, x.dtype.type(exponent))

    def backward(self, g):
        e = self.exponent
        if e == 0:
            return (np.zeros_like(g),)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g * e * np.power(self.x, self.x.dtype.type(e - 1)),)


class Clamp(Op):
    saves = (0,)

    def forward(self, x, lo, hi):
        y = x
        if lo is not None:
            y = np.maximum(y, x.dtype.type(lo))
        if hi is not None:
            y = np.minimum(y, x.dtype.type(hi))
        # Gradient flows where the input was inside [lo, hi] (PyTorch's rule at the bounds too).
        self.mask = np.ones(x.shape, bool)
        if lo is not None:
            self.mask &= x >= lo
        if hi is not None:
            self.mask &= x <= hi
        return y

    def backward(self, g):
        return (np.where(self.mask, g, 0).astype(g.dtype, copy=False),)


class Contiguous(Op):
    """A C-contiguous copy (`contiguous()` of a strided tensor); the gradient passes through."""

    def forward(self, x):
        return np.ascontiguousarray(x)

    def backward(self, g):
        return (g,)


class Cast(Op):
    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return (g.astype(self.dtype),)


class ReLU(Op):
    saves_output = True

    def forward(self, x):
        self.y = _backend.get(x.dtype).relu_forward(x)
        return self.y

    def backward(self, g):
        return (_backend.get(g.dtype).relu_backward(g, self.y),)


class Sigmoid(Op):
    saves_output = True

    def forward(self, x):
        self.y = _backend.get(x.dtype).sigmoid_forward(x)
        return self.y

    def backward(self, g):
        return (_backend.get(g.dtype).sigmoid_backward(g, self.y),)


class Tanh(Op):
    saves_output = True

    def forward(self, x):
        self.y = _backend.get(x.dtype).tanh_forward(x)
        return self.y

    def backward(self, g):
        return (_backend.get(g.dtype).tanh_backward(g, self.y),)


class LeakyReLU(Op):
    saves = (0,)

    def forward(self, x, slope):
        self.mask, self.slope = x > 0, slope
        return np.where(self.mask, x, x * x.dtype.type(slope)).astype(x.dtype, copy=False)

    def backward(self, g):
        return (np.where(self.mask, g, g * g.dtype.type(self.slope)),)


class LeakyReLUInplace(LeakyReLU):
    """leaky_relu_: PyTorch saves the result (the written tensor), not the old input."""

    saves = ()
    saves_output = True


class Sign(Op):
    def forward(self, x):
        self.shape = x.shape
        return np.sign(x)

    def backward(self, g):
        return (np.zeros(self.shape, g.dtype),)


class Softmax(Op):
    saves_output = True

    def forward(self, x, dim):
        self.dim = dim
        e = np.exp(x - x.max(axis=dim, keepdims=True, initial=-np.inf))  # initial: empty x
        self.y = np.ascontiguousarray(e / e.sum(axis=dim, keepdims=True))  # PyTorch's layout
        return self.y

    def backward(self, g):
        y = self.y
        return (y * (g - (g * y).sum(axis=self.dim, keepdims=True)),)


class LogSoftmax(Op):
    saves_output = True

    def forward(self, x, dim):
        self.dim = dim
        shifted = x - x.max(axis=dim, keepdims=True, initial=-np.inf)
        with np.errstate(divide="ignore"):  # log(0) = -inf over an empty dim
            log_sum = np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
        self.y = np.ascontiguousarray(shifted - log_sum)  # PyTorch's layout
        return self.y

    def backward(self, g):
        return (g - np.exp(self.y) * g.sum(axis=self.dim, keepdims=True),)


# ---------------------------------------------------------------- binary


class Add(Op):
    ufunc = np.add

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        sa, sb = self.shapes
        return unbroadcast(g, sa), unbroadcast(g, sb)


class Sub(Op):
    ufunc = np.subtract

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        sa, sb = self.shapes
        return unbroadcast(g, sa), unbroadcast(-g, sb)


class Mul(Op):
    ufunc = np.multiply

    @classmethod
    def saved_inputs(cls, needs):
        return _crosswise(needs)

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        da = unbroadcast(g * self.b, self.a.shape) if need_a else None
        db = unbroadcast(g * self.a, self.b.shape) if need_b else None
        return da, db


class Div(Op):
    @classmethod
    def saved_inputs(cls, needs):
        return (0, 1) if needs[1] else (1,)  # b always (da = g / b); a only for db

    def forward(self, a, b):
        self.a, self.b = a, b
        with np.errstate(divide="ignore", invalid="ignore"):
            return a / b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        with np.errstate(divide="ignore", invalid="ignore"):
            da = unbroadcast(g / self.b, self.a.shape) if need_a else None
            db = unbroadcast(-g * self.a / (self.b * self.b), self.b.shape) if need_b else None
        return da, db


class Pow(Op):
    saves = (0, 1)
    saves_output = True

    def forward(self, a, b):
        self.a, self.b = a, b
        with np.errstate(divide="ignore", invalid="ignore"):
            self.y = np.power(a, b)
        return self.y

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        a, b = self.a, self.b
        with np.errstate(divide="ignore", invalid="ignore"):
            da = unbroadcast(g * b * np.power(a, b - 1), a.shape) if need_a else None
            db = None
            if need_b:
                log_a = np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)
                db = unbroadcast(g * self.y * log_a, b.shape)
        return da, db


class Remainder(Op):
    """a % b with the sign of b (Python's and PyTorch's remainder); d/da = 1, d/db = -floor(a/b)."""

    @classmethod
    def saved_inputs(cls, needs):
        return (0, 1) if needs[1] else ()  # only db needs them

    def forward(self, a, b):
        self.a, self.b = a, b
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.mod(a, b)

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        da = unbroadcast(g, self.a.shape) if need_a else None
        db = None
        if need_b:
            with np.errstate(divide="ignore", invalid="ignore"):
                db = unbroadcast(-g * np.floor_divide(self.a, self.b), self.b.shape)
        return da, db


class NoDerivative(Op):
    """An op PyTorch defines no derivative for (a // b, scalar % tensor): recorded, so that
    backward through it raises as PyTorch's does."""

    def forward(self, a, b, ufunc):
        self.name = ufunc.__name__
        with np.errstate(divide="ignore", invalid="ignore"):
            return ufunc(a, b)

    def backward(self, g):
        raise RuntimeError(f"[backward] the derivative for {self.name} is not implemented")


class SquaredError(Op):
    """(a - b)^2 elementwise, one op as PyTorch's mse_loss (it saves both inputs)."""

    saves = (0, 1)

    def forward(self, a, b):
        self.diff = a - b
        return self.diff * self.diff

    def backward(self, g):
        d = 2 * g * self.diff
        return d, -d


class Maximum(Op):
    saves = (0, 1)

    ufunc = np.maximum

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.maximum(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        # Ties split the gradient evenly, as PyTorch does.
        wa = np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0)).astype(g.dtype)
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)


class Minimum(Op):
    saves = (0, 1)

    ufunc = np.minimum

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.minimum(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        wa = np.where(a < b, 1.0, np.where(a == b, 0.5, 0.0)).astype(g.dtype)
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)


class Where(Op):
    saves = (0,)

    def forward(self, cond, a, b):
        self.cond, self.shapes = cond, (a.shape, b.shape)
        return np.where(cond, a, b)

    def backward(self, g):
        sa, sb = self.shapes
        zero = g.dtype.type(0)
        return None, unbroadcast(np.where(self.cond, g, zero), sa), unbroadcast(
            np.where(self.cond, zero, g), sb
        )


def _rows(x):
    """x (..., K) as a matrix (rows, K); unlike reshape(-1, K), also when K is 0."""
    return x.reshape(int(np.prod(x.shape[:-1], dtype=np.int64)), x.shape[-1])


def _batched(x, batch_shape):
    """x is (..., M, K): broadcast its batch dims to batch_shape and flatten them: (B, M, K)."""
    x = np.broadcast_to(x, batch_shape + x.shape[-2:])
    batch = int(np.prod(batch_shape, dtype=np.int64))  # not -1: M or K may be 0
    return np.ascontiguousarray(x.reshape((batch,) + x.shape[-2:]))


class MatMul(Op):
    """a @ b with NumPy's rules: 1-D operands are promoted and the added dim removed; leading
    (batch) dims broadcast. 2-D @ 2-D and N-D @ 2-D run as one GEMM."""

    @classmethod
    def saved_inputs(cls, needs):
        return _crosswise(needs)

    def forward(self, a, b):
        self.a, self.b = a, b
        be = _backend.get(a.dtype)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if b2.ndim == 2:
            y = be.matmul(_rows(a2), b2).reshape(a2.shape[:-1] + b2.shape[-1:])
        else:
            batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
            y = be.matmul(_batched(a2, batch), _batched(b2, batch))
            y = y.reshape(batch + y.shape[-2:])
        if a.ndim == 1:
            y = y.squeeze(-2)
        if b.ndim == 1:
            y = y.squeeze(-1)
        return y

    def backward(self, g):
        a, b = self.a, self.b
        be = _backend.get(g.dtype)
        need_a, need_b = self.needs_input_grad
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if b.ndim == 1:  # first: for 1-D @ 1-D, g is 0-d
            g2 = np.expand_dims(g2, -1)
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        da = db = None
        if b2.ndim == 2:
            gm = _rows(np.ascontiguousarray(g2))
            am = _rows(np.ascontiguousarray(a2))
            if need_a:
                da = be.matmul(gm, b2, trans_b=True).reshape(a2.shape)
            if need_b:
                db = be.matmul(am, gm, trans_a=True)
        else:
            batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
            gb = _batched(g2, batch)
            if need_a:
                da = be.matmul(gb, _batched(b2, batch), trans_b=True)
                da = unbroadcast(da.reshape(batch + da.shape[-2:]), a2.shape)
            if need_b:
                db = be.matmul(_batched(a2, batch), gb, trans_a=True)
                db = unbroadcast(db.reshape(batch + db.shape[-2:]), b2.shape)
        if da is not None:
            da = da.reshape(a.shape)
        if db is not None:
            db = db.reshape(b.shape)
        return da, db


# ---------------------------------------------------------------- reduce


def _axes(dim, ndim):
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(d % ndim if ndim else 0 for d in dims)


def _mean(x, axes, keepdims):
    """x.mean over axes; NaN over an empty set, as in PyTorch (NumPy would also warn)."""
    if x.size:
        return x.mean(axis=axes, keepdims=keepdims)
    with np.errstate(invalid="ignore"):
        return x.sum(axis=axes, keepdims=keepdims) / x.dtype.type(0)


def _expand_to(g, shape, axes, keepdim):
    if axes is not None and not keepdim:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


class Sum(Op):
    def forward(self, x, dim, keepdim):
        self.shape, self.axes, self.keepdim = x.shape, _axes(dim, x.ndim), keepdim
        return np.asarray(x.sum(axis=self.axes, keepdims=keepdim))

    def backward(self, g):
        return (_expand_to(g, self.shape, self.axes, self.keepdim),)


class Prod(Op):
    """Product over all elements (dim None) or along one dim."""

    saves = (0,)

    def forward(self, x, dim, keepdim):
        self.x, self.dim, self.keepdim = x, dim, keepdim
        return np.asarray(x.prod(axis=dim, keepdims=keepdim))

    def backward(self, g):
        x = self.x
        if x.size == 0:
            return (np.zeros(x.shape, g.dtype),)
        # d prod / d x_i is the product of the others: exclusive products from both sides
        # (exact where x has zeros, unlike prod / x_i).
        xm = x.reshape(-1) if self.dim is None else np.moveaxis(x, self.dim, -1)
        ones = np.ones(xm.shape[:-1] + (1,), x.dtype)
        left = np.cumprod(np.concatenate([ones, xm[..., :-1]], axis=-1), axis=-1)
        right = np.cumprod(np.concatenate([ones, xm[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
        others = left * right
        if self.dim is None:
            return ((g * others).reshape(x.shape),)
        if self.keepdim:
            g = np.squeeze(g, self.dim)
        return (np.moveaxis(g[..., None] * others, -1, self.dim),)


class Mean(Op):
    def forward(self, x, dim, keepdim):
        self.shape, self.axes, self.keepdim = x.shape, _axes(dim, x.ndim), keepdim
        y = np.asarray(_mean(x, self.axes, keepdim))
        self.count = x.size // max(y.size, 1) if x.size else 0
        return y

    def backward(self, g):
        g = g / g.dtype.type(max(self.count, 1)) if self.count else g * np.nan
        return (_expand_to(g, self.shape, self.axes, self.keepdim),)


class Var(Op):
    saves = (0,)

    def forward(self, x, dim, correction, keepdim):
        self.x, self.axes, self.keepdim = x, _axes(dim, x.ndim), keepdim
        n = x.size if self.axes is None else int(np.prod([x.shape[a] for a in self.axes]))
        self.denom = max(n - correction, 0)
        self.mean = _mean(x, self.axes, True)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = ((x - self.mean) ** 2).sum(axis=self.axes, keepdims=keepdim) / x.dtype.type(self.denom)
        return np.asarray(y, dtype=x.dtype)

    def backward(self, g):
        g = _expand_to(g, self.x.shape, self.axes, self.keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g * 2 * (self.x - self.mean) / self.x.dtype.type(self.denom),)


class MaxMin(Op):
    """max or min over all elements (ties share the gradient evenly) or along one dim
    (the gradient goes to the returned index)."""

    saves = (0,)
    saves_output = True

    def forward(self, x, dim, keepdim, is_max):
        self.shape, self.dim, self.keepdim = x.shape, dim, keepdim
        if dim is None:
            y = x.max() if is_max else x.min()
            self.mask = x == y
            if np.isnan(y):
                self.mask = np.isnan(x)
            return np.asarray(y)
        arg = np.argmax if is_max else np.argmin
        self.index = np.expand_dims(arg(x, axis=dim), dim)
        # NOTE: argmax/argmin return the first NaN when one is present, so NaN propagates.
        y = np.take_along_axis(x, self.index, axis=dim)
        return y if keepdim else y.squeeze(dim)

    def backward(self, g):
        if self.dim is None:
            return (np.where(self.mask, g / self.mask.sum(), 0).astype(g.dtype),)
        dx = np.zeros(self.shape, g.dtype)
        if not self.keepdim:
            g = np.expand_dims(g, self.dim)
        np.put_along_axis(dx, self.index, g, axis=self.dim)
        return (dx,)


class MaxMinDim(MaxMin):
    """max/min along a dim saves only the indices (PyTorch's rule for the version check)."""

    saves = ()
    saves_output = False


class AMaxMin(Op):
    """amax/amin over `dims`: every tied extreme gets an equal share of the gradient."""

    saves = (0,)
    saves_output = True

    def forward(self, x, dims, keepdim, is_max):
        y = x.max(axis=dims, keepdims=True) if is_max else x.min(axis=dims, keepdims=True)
        self.mask = (x == y) | (np.isnan(x) & np.isnan(y))
        self.count = self.mask.sum(axis=dims, keepdims=True)
        self.dims, self.keepdim = dims, keepdim
        return y if keepdim else np.squeeze(y, axis=dims)

    def backward(self, g):
        if not self.keepdim:
            g = np.expand_dims(g, self.dims)
        return (np.where(self.mask, g / self.count, 0).astype(g.dtype, copy=False),)


class LogSumExp(Op):
    saves = (0,)
    saves_output = True

    def forward(self, x, dim, keepdim):
        self.axes, self.keepdim, self.shape = _axes(dim, x.ndim), keepdim, x.shape
        m = x.max(axis=self.axes, keepdims=True, initial=-np.inf)  # -inf over an empty dim
        m = np.where(np.isfinite(m), m, 0)
        with np.errstate(divide="ignore"):  # log(0) = -inf: an empty dim (or all -inf)
            y = np.log(np.exp(x - m).sum(axis=self.axes, keepdims=True)) + m
        self.p = np.exp(x - y)
        return y if keepdim else np.squeeze(y, axis=self.axes)

    def backward(self, g):
        return (_expand_to(g, self.shape, self.axes, self.keepdim) * self.p,)


# ---------------------------------------------------------------- movement


class ViewOp(Op):
    """An op whose output can share its input's memory (PyTorch's views). When it does, the
    output becomes a view: it shares the base's storage and version counter, and remembers the
    steps from the base, so an in-place write through it can update the base's history."""

    @classmethod
    def apply(cls, x, **params):
        out = super().apply(x, **params)
        if np.may_share_memory(out._data, x._data) or (
            out._data.size == 0 and _root(out._data) is _root(x._data)  # NOTE: NumPy says an
        ):  # empty array shares no memory, but a view of an empty tensor is a view all the same

            base = x if x._base is None else x._base
            out._base = base
            out._vc = x._vc
            out._view_steps = (x._view_steps if x._base is not None else ()) + ((cls, params),)
            # The base's history when this view's own history was made (see refresh_view).
            out._view_src = base._node if _enabled.get() else NO_GRAD_VIEW
        return out


def _root(a: np.ndarray) -> np.ndarray:
    """The array that owns `a`'s memory."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


NO_GRAD_VIEW = object()  # a view made under no_grad: its history is never regenerated


class Reshape(ViewOp):
    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.shape),)


class Permute(ViewOp):
    def forward(self, x, dims):
        self.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    def backward(self, g):
        return (g.transpose(self.inverse),)


class Expand(ViewOp):
    def forward(self, x, shape):
        self.shape = x.shape
        y = np.broadcast_to(x, shape)
        if x.flags.writeable:
            # NOTE: writable, as PyTorch's: a write into a part without repeated elements
            # (e[0] of b.expand(3, 3)) reaches the base; the in-place ops refuse the rest.
            y = np.lib.stride_tricks.as_strided(x, shape=y.shape, strides=y.strides)
        return y

    def backward(self, g):
        return (unbroadcast(g, self.shape),)


class Index(ViewOp):
    """x[index]: basic indices (ints, slices, None, ...) give a view, others a copy."""

    def forward(self, x, index):
        self.shape, self.index = x.shape, index
        y = x[index]
        if not isinstance(y, np.ndarray):  # every dim indexed by an int: a 0-d view, not a scalar
            y = x[(*index, Ellipsis) if isinstance(index, tuple) else (index, Ellipsis)]
        return y

    def backward(self, g):
        dx = np.zeros(self.shape, g.dtype)
        np.add.at(dx, self.index, g)
        return (dx,)


def diagonal_view(x, offset, dim1, dim2):
    """np.diagonal as a writable view where x is writable (NumPy's own is read-only)."""
    d = np.diagonal(x, offset, dim1, dim2)
    if not x.flags.writeable:
        return d
    start = [slice(None)] * x.ndim
    if offset >= 0:
        start[dim2] = slice(offset, None)
    else:
        start[dim1] = slice(-offset, None)
    # The diagonal starts at the first element of this slice: same strides, writable.
    return np.lib.stride_tricks.as_strided(x[tuple(start)], shape=d.shape, strides=d.strides)


class Diagonal(ViewOp):
    """x.diagonal(offset, dim1, dim2): a view, the diagonal as the last dim."""

    def forward(self, x, offset, dim1, dim2):
        self.shape, self.args = x.shape, (offset, dim1, dim2)
        return diagonal_view(x, offset, dim1, dim2)

    def backward(self, g):
        dx = np.zeros(self.shape, g.dtype)
        diagonal_view(dx, *self.args)[...] = g
        return (dx,)


class ViewReplay(Op):
    """base -> the view that `steps` (a view's (op class, params) chain) make of it. Gives a view
    its history anew after its base was modified in place (PyTorch's AsStridedBackward)."""

    def forward(self, x, steps):
        self.ops = []
        for cls, params in steps:
            op = cls()
            x = op.forward(x, **params)
            self.ops.append(op)
        return x

    def backward(self, g):
        for op in reversed(self.ops):
            (g,) = op.backward(g)
        return (g,)


class CopySlices(Op):
    """The base's history after an in-place write into its view `steps`: the view's region
    comes from `value` (the written tensor), everything else from the base's old history.
    The data was written already; forward only returns it."""

    def forward(self, base, value, steps):
        self.steps = steps
        return base

    def backward(self, g):
        replay = ViewReplay()
        g_value = np.array(replay.forward(g, self.steps), order="C")  # keeps 0-d shapes
        (region,) = replay.backward(np.ones(g_value.shape, g.dtype))
        g_base = np.where(region != 0, g.dtype.type(0), g)
        return g_base, g_value


class IndexPut(Op):
    """x with x[index] = value (advanced indices: masks, index arrays); value broadcasts.
    With accumulate, values add at their positions (repeated indices add up)."""

    def forward(self, x, value, index, accumulate):
        self.index, self.value_shape, self.accumulate = index, value.shape, accumulate
        y = x.copy()
        if accumulate:
            np.add.at(y, index, np.broadcast_to(value, y[index].shape))
        else:
            y[index] = value
        return y

    def backward(self, g):
        dx = g.copy()
        if not self.accumulate:
            dx[self.index] = 0
        dvalue = g[self.index]
        if dvalue.shape != self.value_shape:
            dvalue = unbroadcast(dvalue, self.value_shape)
        return dx, dvalue


def refresh_view(t):
    """Bring a view's history up to date: if its base got a new history (an in-place write into
    the base or into another view of it) since the view's history was made, the view's history
    becomes "this region of the base's new history"."""
    base = t._base
    src = t._view_src
    if src is NO_GRAD_VIEW or base._node is src:
        return
    if base._requires_grad:
        replay = ViewReplay()
        replay.forward(base._data, t._view_steps)
        function_module.prepare_record(replay, (base,))
        t._node, t._out_idx, t._requires_grad = replay, 0, True
    t._view_src = base._node


function_module.refresh_view = refresh_view


class Cat(Op):
    def forward(self, *xs, dim):
        self.dim = dim
        self.splits = np.cumsum([x.shape[dim] for x in xs])[:-1]
        return np.concatenate(xs, axis=dim)

    def backward(self, g):
        return tuple(np.split(g, self.splits, axis=self.dim))


class Stack(Op):
    def forward(self, *xs, dim):
        self.dim = dim
        return np.stack(xs, axis=dim)

    def backward(self, g):
        return tuple(np.moveaxis(g, self.dim, 0))


# ---------------------------------------------------------------- nn


class Linear(Op):
    """y = x @ w.T + b; x is (..., in), w is (out, in), b is (out,) or None."""

    @classmethod
    def saved_inputs(cls, needs):
        return _crosswise(needs)

    def forward(self, x, w, b):
        self.x, self.w = x, w
        x2 = _rows(x)
        y = _backend.get(x.dtype).matmul(x2, w, trans_b=True)
        if b is not None:
            y += b
        return y.reshape(x.shape[:-1] + (w.shape[0],))

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        be = _backend.get(g.dtype)
        g2 = _rows(np.ascontiguousarray(g))
        dx = be.matmul(g2, self.w).reshape(self.x.shape) if need_x else None
        dw = be.matmul(g2, _rows(self.x), trans_a=True) if need_w else None
        db = g2.sum(axis=0) if need_b else None
        return dx, dw, db


class Conv2d(Op):
    """x is (N, C, H, W), w is (K, C, R, S), b is (K,) or None; y is (N, K, P, Q)."""

    saves = (0, 1)

    def forward(self, x, w, b, stride, padding):
        self.x, self.w, self.stride, self.padding = x, w, stride, padding
        return _backend.get(x.dtype).conv2d_forward(x, w, b, stride, padding)

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        return _backend.get(g.dtype).conv2d_backward(
            g, self.x, self.w, self.stride, self.padding, need_x, need_w, need_b
        )


class MaxPool2d(Op):
    """x is (N, C, H, W); y is (N, C, P, Q); saves only the argmax indices."""

    saves = (0,)  # PyTorch saves the input too, and checks its version

    def forward(self, x, kernel_size, stride, padding):
        self.shape = x.shape
        y, self.indices = _backend.get(x.dtype).maxpool2d_forward(x, kernel_size, stride, padding)
        return y

    def backward(self, g):
        return (_backend.get(g.dtype).maxpool2d_backward(g, self.indices, self.shape),)


class CrossEntropy(Op):
    """Fused log-softmax + NLL. logits (N, C); target int64 (N,) or probabilities (N, C).

    NOTE: with probability targets the target gets a gradient too (-w * log_softmax), as in
    PyTorch, so a target that requires grad is differentiated."""

    saves = (1,)  # the log-probabilities it keeps are its own; PyTorch checks only the target

    def forward(self, logits, target, weight, reduction, ignore_index):
        be = _backend.get(logits.dtype)
        self.target, self.weight, self.reduction, self.ignore_index = (
            target, weight, reduction, ignore_index,
        )
        if logits.shape[1] == 0:
            return self._no_classes(logits)
        loss, self.log_probs = be.cross_entropy_forward(
            logits, target, weight, reduction, ignore_index
        )
        return loss

    def _no_classes(self, logits):
        """No classes (C = 0; index targets are then all ignore_index): every sample's loss is
        an empty sum, 0, and "mean" divides by no weight: NaN, as in PyTorch (for probability
        targets too)."""
        self.log_probs = logits.copy()
        n = logits.shape[0]
        if self.reduction == "none":
            return np.zeros(n, logits.dtype)
        return np.asarray(np.nan if self.reduction == "mean" else 0.0, logits.dtype)

    def backward(self, g):
        need_logits, need_target, _ = self.needs_input_grad
        if self.log_probs.shape[1] == 0:
            empty = np.zeros(self.log_probs.shape, self.log_probs.dtype)
            return (empty if need_logits else None), (empty if need_target else None), None
        be = _backend.get(self.log_probs.dtype)
        g = np.asarray(g, self.log_probs.dtype)
        dlogits = dtarget = None
        if need_logits:
            dlogits = be.cross_entropy_backward(
                g, self.log_probs, self.target, self.weight, self.reduction, self.ignore_index
            )
        if need_target:
            n = self.log_probs.shape[0]
            scale = g[:, None] if self.reduction == "none" else g / (n if self.reduction == "mean" else 1)
            w = 1 if self.weight is None else self.weight
            dtarget = -scale * w * self.log_probs
        return dlogits, dtarget, None


class NLLLoss(Op):
    """Per-sample loss -w[t] * x[i, t] (0 where t == ignore_index); x (N, C), target (N,)."""

    saves = (0, 1)

    def forward(self, x, target, weight, ignore_index):
        self.shape = x.shape
        keep = target != ignore_index
        self.rows = np.flatnonzero(keep)
        self.cols = target[keep]
        w = np.ones(x.shape[1], x.dtype) if weight is None else weight
        self.w = np.zeros(target.shape, x.dtype)
        self.w[keep] = w[self.cols]
        loss = np.zeros(target.shape, x.dtype)
        loss[keep] = -self.w[keep] * x[self.rows, self.cols]
        return loss

    def backward(self, g):
        dx = np.zeros(self.shape, g.dtype)
        dx[self.rows, self.cols] = -(g * self.w)[self.rows]
        return dx, None


class BinaryCrossEntropy(Op):
    """Elementwise -(y log p + (1-y) log(1-p)), logs clamped at -100 as in PyTorch."""

    saves = (0, 1)

    def forward(self, p, y):
        self.p, self.y = p, y
        with np.errstate(divide="ignore", invalid="ignore"):
            log_p = np.maximum(np.log(p), -100)
            log_1mp = np.maximum(np.log1p(-p), -100)
        return -(y * log_p + (1 - y) * log_1mp)

    def backward(self, g):
        p, y = self.p, self.y
        eps = p.dtype.type(1e-12)
        dp = g * (p - y) / np.maximum((1 - p) * p, eps)
        with np.errstate(divide="ignore", invalid="ignore"):
            dy = g * (np.maximum(np.log1p(-p), -100) - np.maximum(np.log(p), -100))
        return dp, dy


class BinaryCrossEntropyWithLogits(Op):
    """Elementwise -(pw y log s(x) + (1-y) log(1-s(x))), computed without overflow."""

    saves = (0, 1)

    def forward(self, x, y, pos_weight):
        self.x, self.y = x, y
        self.pw = 1 if pos_weight is None else pos_weight
        softplus_neg = np.logaddexp(0, -x)  # log(1 + e^-x) = -log s(x), stable for any x
        return (1 - y) * x + (1 + (self.pw - 1) * y) * softplus_neg

    def backward(self, g):
        x, y, pw = self.x, self.y, self.pw
        e = np.exp(-np.abs(x))
        s = np.where(x >= 0, 1 / (1 + e), e / (1 + e))  # sigmoid(x) without overflow
        dx = g * (s * (pw * y + 1 - y) - pw * y)
        # d/dy of (1-y) x + (1 + (pw-1) y) softplus(-x) = -x + (pw - 1) softplus(-x)
        dy = g * (-x + (pw - 1) * np.logaddexp(0, -x))
        return dx.astype(x.dtype, copy=False), dy.astype(x.dtype, copy=False)


class Dropout(Op):
    def forward(self, x, p, generator):
        keep = generator.random(x.shape) >= p
        self.scale = (keep / (1 - p)).astype(x.dtype) if p < 1 else np.zeros(x.shape, x.dtype)
        return x * self.scale

    def backward(self, g):
        return (g * self.scale,)
