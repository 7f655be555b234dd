"""fastdl's differentiable ops: one small class per op, forward and chain rule side by side.

Each op works on storage arrays of any device (see autograd/function.py's `Op`), written once
against the Python array API standard: `xp = _devices.namespace(x)` is the namespace of the
array's library, and what the standard lacks is a named function of `_devices.library(x)`
(`index_add`, `errstate`, `as_strided`, ...). Heavy kernels (matmul, conv2d, maxpool2d,
activations, cross-entropy) run on `_devices.kernels(x)`, the backend of the array's device,
dtype and backend context.

NOTE: on the CPU (NumPy arrays) a few hot helpers (`_reshape`, `_sum`, `_copy`) call the NumPy
array's own method, which costs a seventh of the namespace function; every other device takes
the standard function.
"""

from __future__ import annotations

import itertools
import math
import operator

from . import _backend, _devices
from .autograd import function as function_module
from .autograd.function import Op
from .autograd.grad_mode import _enabled

_CPU_XP = _devices.CPU_XP
_NDARRAY = _devices.NUMPY.array_type
_NUMPY_SCALAR = _CPU_XP.generic  # what NumPy returns for arithmetic on 0-d arrays
# NumPy's own standard namespace (NumPy >= 2): its creation functions skip array-api-compat's
# wrappers, which cost four times as much on tiny arrays.
_NUMPY_NATIVE = _NDARRAY((0,)).__array_namespace__()


# NOTE: a gradient on the CPU may be a NumPy scalar (NumPy's arithmetic on 0-d arrays gives
# one), so these three accept one as the CPU's.
def _namespace(a):
    """The array API namespace of storage array `a`."""
    if type(a) is _NDARRAY or isinstance(a, _NUMPY_SCALAR):
        return _CPU_XP
    return _devices.namespace(a)


def _library(a):
    """The array library (with the named functions the standard lacks) of `a`."""
    if type(a) is _NDARRAY or isinstance(a, _NUMPY_SCALAR):
        return _devices.NUMPY
    return _devices.library(a)


def _kernels(a):
    """The backend module for heavy ops on `a`: by its device, dtype and backend context."""
    if type(a) is _NDARRAY or isinstance(a, _NUMPY_SCALAR):
        return _backend.get(a.dtype)
    return _devices.kernels(a)


def _crosswise(needs):
    """What a product saves: each operand is needed only for the other operand's gradient."""
    return tuple(i for i, other in ((0, 1), (1, 0)) if needs[other])


def _reshape(x, shape):
    if type(x) is _NDARRAY:
        return x.reshape(shape)
    return _namespace(x).reshape(x, shape)


def _sum(x, axis=None, keepdims=False):
    if type(x) is _NDARRAY:
        return x.sum(axis=axis, keepdims=keepdims)
    return _namespace(x).sum(x, axis=axis, keepdims=keepdims)


def _copy(x):
    """A new (C-ordered on the CPU) copy of x."""
    if type(x) is _NDARRAY:
        return x.copy()
    return _namespace(x).asarray(x, copy=True)


def _array(y, like):
    """y as an array: a full NumPy reduction gives a NumPy scalar; y[...] is its 0-d array."""
    return y if type(y) is type(like) else y[...]


def _zeros(shape, like):
    if type(like) is _NDARRAY:
        return _NUMPY_NATIVE.zeros(shape, dtype=like.dtype)
    return _namespace(like).zeros(shape, dtype=like.dtype, device=like.device)


def _scalar(x, v):
    """Python scalar v in x's kind (PyTorch casts a scalar bound to the tensor's dtype)."""
    return int(v) if _namespace(x).isdtype(x.dtype, "integral") else float(v)


def _keep_shape(shape, axes):
    """shape with the reduced axes kept as 1s (axes None: all)."""
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _max_keep(x, axes):
    """x.max over axes with keepdims, -inf over an empty set (the standard leaves it undefined)."""
    xp = _namespace(x)
    shape = _keep_shape(x.shape, axes)
    if x.size == 0:
        return xp.full(shape, -math.inf, dtype=x.dtype, device=x.device)
    return xp.max(x, axis=axes, keepdims=True)


def _broadcast_shapes(*shapes):
    """NumPy's broadcast_shapes (the standard has broadcast_arrays, not this)."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        size = 1
        for s in shapes:
            d = s[i - ndim + len(s)] if i - ndim + len(s) >= 0 else 1
            if d != 1:
                if size not in (1, d):
                    raise ValueError(f"shapes {shapes} do not broadcast")
                size = d
        out.append(size)
    return tuple(out)


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing broadcasting."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = _sum(grad, axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if axes:
        grad = _sum(grad, axis=axes, keepdims=True)
    return grad


def _is_basic(part):
    return part is None or part is Ellipsis or isinstance(part, (int, slice))


def _getitem(x, index):
    """x[index] with NumPy's indexing rules on every device. `index` comes from the tensor layer
    and may hold the device's index arrays; it stays opaque. Basic indices (ints, slices, None,
    Ellipsis) give a view through the standard's indexing (which wants every dim named or an
    Ellipsis); the rest goes to the library's index_get (the standard takes integer arrays only
    one per dim, and a mask only alone)."""
    if type(x) is _NDARRAY:
        return x[index]
    parts = index if isinstance(index, tuple) else (index,)
    if all(_is_basic(p) for p in parts):
        if not any(p is Ellipsis for p in parts):
            parts = (*parts, Ellipsis)
        return x[parts]
    return _library(x).index_get(x, index)


# ---------------------------------------------------------------- unary


class Neg(Op):
    def forward(self, x):
        return -x

    def backward(self, g):
        return (-g,)


class Exp(Op):
    saves_output = True

    def forward(self, x):
        self.y = _namespace(x).exp(x)
        return self.y

    def backward(self, g):
        return (g * self.y,)


class Log(Op):
    saves = (0,)

    def forward(self, x):
        self.x = x
        with _library(x).errstate():
            return _namespace(x).log(x)

    def backward(self, g):
        with _library(g).errstate():
            return (g / self.x,)


class Log1p(Op):
    saves = (0,)

    def forward(self, x):
        self.x = x
        with _library(x).errstate():
            return _namespace(x).log1p(x)

    def backward(self, g):
        with _library(g).errstate():
            return (g / (1 + self.x),)


class Sqrt(Op):
    saves_output = True

    def forward(self, x):
        with _library(x).errstate():
            self.y = _namespace(x).sqrt(x)
        return self.y

    def backward(self, g):
        with _library(g).errstate():
            return (g / (2 * self.y),)


class Abs(Op):
    saves = (0,)

    def forward(self, x):
        self.x = x
        return _namespace(x).abs(x)

    def backward(self, g):
        return (g * _namespace(g).sign(self.x),)


class Sin(Op):
    saves = (0,)

    def forward(self, x):
        self.x = x
        return _namespace(x).sin(x)

    def backward(self, g):
        return (g * _namespace(g).cos(self.x),)


class Cos(Op):
    saves = (0,)

    def forward(self, x):
        self.x = x
        return _namespace(x).cos(x)

    def backward(self, g):
        return (-g * _namespace(g).sin(self.x),)


class PowScalar(Op):
    saves = (0,)

    def forward(self, x, exponent):
        self.x, self.exponent = x, exponent
        with _library(x).errstate():
            return _namespace(x).pow(x, _scalar(x, exponent))

    def backward(self, g):
        e, x = self.exponent, self.x
        xp = _namespace(g)
        if e == 0:
            return (xp.zeros_like(g),)
        with _library(g).errstate():
            return (g * e * xp.pow(x, _scalar(x, e - 1)),)


class Clamp(Op):
    saves = (0,)

    def forward(self, x, lo, hi):
        xp = _namespace(x)
        y = x
        if lo is not None:
            y = xp.maximum(y, _scalar(x, lo))
        if hi is not None:
            y = xp.minimum(y, _scalar(x, hi))
        # Gradient flows where the input was inside [lo, hi] (PyTorch's rule at the bounds too).
        mask = xp.ones(x.shape, dtype=xp.bool, device=x.device)
        if lo is not None:
            mask = mask & (x >= lo)
        if hi is not None:
            mask = mask & (x <= hi)
        self.mask = mask
        return y

    def backward(self, g):
        xp = _namespace(g)
        return (xp.astype(xp.where(self.mask, g, 0), g.dtype, copy=False),)


class Contiguous(Op):
    """A C-contiguous copy (`contiguous()` of a strided tensor); the gradient passes through."""

    def forward(self, x):
        return _library(x).contiguous(x)

    def backward(self, g):
        return (g,)


class Cast(Op):
    """x in dtype `dtype` (a NumPy dtype: fastdl's dtype identity on every device)."""

    may_give_integers = True  # x.long(): no gradient flows back through an integer

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return _namespace(x).astype(x, _library(x).dtype(dtype))

    def backward(self, g):
        return (_namespace(g).astype(g, self.dtype),)


def _move(a, target, index):
    """Storage `a` on device type `target`, device `index` (a host copy in between)."""
    source = _devices.device_type_of(a)
    if source is target and source.lib.device_index(a) == index:
        return a
    host = source.lib.to_numpy(a)
    return host if target is _devices.CPU else target.lib.from_numpy(host, index)


class ToDevice(Op):
    """x copied onto `device` (a fastdl.device); the gradient goes back to x's device."""

    def forward(self, x, device):
        source = _devices.device_type_of(x)
        self.source = source, source.lib.device_index(x)
        return _move(x, _devices.DEVICE_TYPES[device.type], device.index)

    def backward(self, g):
        return (_move(g, *self.source),)


# ReLU, Sigmoid and Tanh are one class each, the same but for their kernels, on purpose: one
# shared class reading the kernel's name (a getattr per call) measured ~15 ns more per forward, on
# F.relu's ~1.4 us.
class ReLU(Op):
    saves_output = True

    @staticmethod
    def direct(x):
        return _kernels(x).relu_forward(x)

    def forward(self, x):
        self.y = _kernels(x).relu_forward(x)
        return self.y

    def backward(self, g):
        return (_kernels(g).relu_backward(g, self.y),)


class Sigmoid(Op):
    saves_output = True

    @staticmethod
    def direct(x):
        return _kernels(x).sigmoid_forward(x)

    def forward(self, x):
        self.y = _kernels(x).sigmoid_forward(x)
        return self.y

    def backward(self, g):
        return (_kernels(g).sigmoid_backward(g, self.y),)


class Tanh(Op):
    saves_output = True

    @staticmethod
    def direct(x):
        return _kernels(x).tanh_forward(x)

    def forward(self, x):
        self.y = _kernels(x).tanh_forward(x)
        return self.y

    def backward(self, g):
        return (_kernels(g).tanh_backward(g, self.y),)


class LeakyReLU(Op):
    saves = (0,)

    def forward(self, x, slope):
        xp = _namespace(x)
        self.mask, self.slope = x > 0, slope
        return xp.astype(xp.where(self.mask, x, x * _scalar(x, slope)), x.dtype, copy=False)

    def backward(self, g):
        return (_namespace(g).where(self.mask, g, g * float(self.slope)),)


class LeakyReLUInplace(LeakyReLU):
    """leaky_relu_: PyTorch saves the result (the written tensor), not the old input."""

    saves = ()
    saves_output = True


class Sign(Op):
    def forward(self, x):
        self.shape = x.shape
        return _namespace(x).sign(x)

    def backward(self, g):
        return (_zeros(self.shape, g),)


class Softmax(Op):
    saves_output = True

    def forward(self, x, dim):
        self.dim = dim
        xp = _namespace(x)
        e = xp.exp(x - _max_keep(x, (dim % x.ndim,) if x.ndim else None))
        self.y = _library(x).contiguous(e / _sum(e, axis=dim, keepdims=True))  # PyTorch's layout
        return self.y

    def backward(self, g):
        y = self.y
        return (y * (g - _sum(g * y, axis=self.dim, keepdims=True)),)


class LogSoftmax(Op):
    saves_output = True

    def forward(self, x, dim):
        self.dim = dim
        xp = _namespace(x)
        shifted = x - _max_keep(x, (dim % x.ndim,) if x.ndim else None)
        with _library(x).errstate():  # log(0) = -inf over an empty dim
            log_sum = xp.log(_sum(xp.exp(shifted), axis=dim, keepdims=True))
        self.y = _library(x).contiguous(shifted - log_sum)  # PyTorch's layout
        return self.y

    def backward(self, g):
        return (g - _namespace(g).exp(self.y) * _sum(g, axis=self.dim, keepdims=True),)


# ---------------------------------------------------------------- binary


class Add(Op):
    direct = operator.add  # no graph: the array's own operator, on any device

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        sa, sb = self.shapes
        return unbroadcast(g, sa), unbroadcast(g, sb)


class Sub(Op):
    direct = operator.sub  # no graph: the array's own operator, on any device

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        sa, sb = self.shapes
        return unbroadcast(g, sa), unbroadcast(-g, sb)


class Mul(Op):
    direct = operator.mul  # no graph: the array's own operator, on any device

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
        with _library(a).errstate():
            return a / b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        with _library(g).errstate():
            da = unbroadcast(g / self.b, self.a.shape) if need_a else None
            db = unbroadcast(-g * self.a / (self.b * self.b), self.b.shape) if need_b else None
        return da, db


class Pow(Op):
    saves = (0, 1)
    saves_output = True

    def forward(self, a, b):
        self.a, self.b = a, b
        with _library(a).errstate():
            self.y = _namespace(a).pow(a, b)
        return self.y

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        a, b = self.a, self.b
        xp = _namespace(g)
        with _library(g).errstate():
            da = unbroadcast(g * b * xp.pow(a, b - 1), a.shape) if need_a else None
            db = None
            if need_b:
                log_a = xp.where(a > 0, xp.log(xp.where(a > 0, a, 1)), 0)
                db = unbroadcast(g * self.y * log_a, b.shape)
        return da, db


class Remainder(Op):
    """a % b with the sign of b (Python's and PyTorch's remainder); d/da = 1, d/db = -floor(a/b)."""

    @classmethod
    def saved_inputs(cls, needs):
        return (0, 1) if needs[1] else ()  # only db needs them

    def forward(self, a, b):
        self.a, self.b = a, b
        with _library(a).errstate():
            return _namespace(a).remainder(a, b)

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        da = unbroadcast(g, self.a.shape) if need_a else None
        db = None
        if need_b:
            with _library(g).errstate():
                db = unbroadcast(-g * _namespace(g).floor_divide(self.a, self.b), self.b.shape)
        return da, db


# NumPy ufunc names (what the tensor layer passes) -> the standard's names.
_STANDARD_NAMES = {"mod": "remainder", "true_divide": "divide", "power": "pow"}


class NoDerivative(Op):
    """An op PyTorch defines no derivative for (a // b, scalar % tensor): recorded, so that
    backward through it raises as PyTorch's does. `ufunc` names the function: a standard name
    ("floor_divide", "remainder") or a NumPy ufunc with such a name."""

    def forward(self, a, b, ufunc):
        name = ufunc if isinstance(ufunc, str) else ufunc.__name__
        self.name = name
        with _library(a).errstate():
            return getattr(_namespace(a), _STANDARD_NAMES.get(name, name))(a, b)

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


def _tie_weights(g, first, tie):
    """1 where `first`, 0.5 where `tie`, else 0, in g's dtype (ties split evenly, as PyTorch)."""
    xp = _namespace(g)
    return xp.where(first, 1.0, xp.astype(tie, g.dtype) * 0.5)


class Maximum(Op):
    saves = (0, 1)

    @staticmethod
    def direct(a, b):
        return _namespace(a).maximum(a, b)

    def forward(self, a, b):
        self.a, self.b = a, b
        return _namespace(a).maximum(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        wa = _tie_weights(g, a > b, a == b)
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)


class Minimum(Op):
    saves = (0, 1)

    @staticmethod
    def direct(a, b):
        return _namespace(a).minimum(a, b)

    def forward(self, a, b):
        self.a, self.b = a, b
        return _namespace(a).minimum(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        wa = _tie_weights(g, a < b, a == b)
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)


class Where(Op):
    saves = (0,)

    def forward(self, cond, a, b):
        self.cond, self.shapes = cond, (a.shape, b.shape)
        return _namespace(a).where(cond, a, b)

    def backward(self, g):
        sa, sb = self.shapes
        xp = _namespace(g)
        return None, unbroadcast(xp.where(self.cond, g, 0), sa), unbroadcast(
            xp.where(self.cond, 0, g), sb
        )


def _rows(x):
    """x (..., K) as a matrix (rows, K); unlike reshape(-1, K), also when K is 0."""
    return _reshape(x, (math.prod(x.shape[:-1]), x.shape[-1]))


def _batched(x, batch_shape):
    """x is (..., M, K): broadcast its batch dims to batch_shape and flatten them: (B, M, K)."""
    x = _namespace(x).broadcast_to(x, batch_shape + x.shape[-2:])
    batch = math.prod(batch_shape)  # not -1: M or K may be 0
    return _library(x).contiguous(_reshape(x, (batch,) + x.shape[-2:]))


def _squeeze(x, axis):
    if type(x) is _NDARRAY:
        return x.squeeze(axis)
    return _namespace(x).squeeze(x, axis=axis)


class MatMul(Op):
    """a @ b with NumPy's rules: 1-D operands are promoted and the added dim removed; leading
    (batch) dims broadcast. 2-D @ 2-D and N-D @ 2-D run as one GEMM."""

    @classmethod
    def saved_inputs(cls, needs):
        return _crosswise(needs)

    def forward(self, a, b):
        self.a, self.b = a, b
        be = _kernels(a)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if b2.ndim == 2:
            y = _reshape(be.matmul(_rows(a2), b2), a2.shape[:-1] + b2.shape[-1:])
        else:
            batch = _broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
            y = be.matmul(_batched(a2, batch), _batched(b2, batch))
            y = _reshape(y, batch + y.shape[-2:])
        if a.ndim == 1:
            y = _squeeze(y, -2)
        if b.ndim == 1:
            y = _squeeze(y, -1)
        return y

    def backward(self, g):
        a, b = self.a, self.b
        be = _kernels(g)
        contiguous = _library(g).contiguous
        need_a, need_b = self.needs_input_grad
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if b.ndim == 1:  # first: for 1-D @ 1-D, g is 0-d
            g2 = _reshape(g2, g2.shape + (1,))
        if a.ndim == 1:
            g2 = _reshape(g2, g2.shape[:-1] + (1,) + g2.shape[-1:])
        da = db = None
        if b2.ndim == 2:
            gm = _rows(contiguous(g2))
            am = _rows(contiguous(a2))
            if need_a:
                da = _reshape(be.matmul(gm, b2, trans_b=True), a2.shape)
            if need_b:
                db = be.matmul(am, gm, trans_a=True)
        else:
            batch = _broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
            gb = _batched(g2, batch)
            if need_a:
                da = be.matmul(gb, _batched(b2, batch), trans_b=True)
                da = unbroadcast(_reshape(da, batch + da.shape[-2:]), a2.shape)
            if need_b:
                db = be.matmul(_batched(a2, batch), gb, trans_a=True)
                db = unbroadcast(_reshape(db, batch + db.shape[-2:]), b2.shape)
        if da is not None:
            da = _reshape(da, a.shape)
        if db is not None:
            db = _reshape(db, b.shape)
        return da, db


# ---------------------------------------------------------------- reduce


def _axes(dim, ndim):
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(d % ndim if ndim else 0 for d in dims)


def _mean(x, axes, keepdims):
    """x.mean over axes; NaN over an empty set, as in PyTorch (NumPy would also warn)."""
    xp = _namespace(x)
    if x.size:
        return xp.mean(x, axis=axes, keepdims=keepdims)
    with _library(x).errstate():
        return _sum(x, axis=axes, keepdims=keepdims) / 0.0


def _expand_to(g, shape, axes, keepdim):
    if axes is not None and not keepdim:
        g = _reshape(g, _keep_shape(shape, axes))
    return _namespace(g).broadcast_to(g, shape)


class Sum(Op):
    def forward(self, x, dim, keepdim):
        self.shape, self.axes, self.keepdim = x.shape, _axes(dim, x.ndim), keepdim
        return _array(_sum(x, axis=self.axes, keepdims=keepdim), x)

    def backward(self, g):
        return (_expand_to(g, self.shape, self.axes, self.keepdim),)


class Prod(Op):
    """Product over all elements (dim None) or along one dim."""

    saves = (0,)

    def forward(self, x, dim, keepdim):
        self.x, self.dim, self.keepdim = x, dim, keepdim
        return _array(_namespace(x).prod(x, axis=dim, keepdims=keepdim), x)

    def backward(self, g):
        x = self.x
        xp = _namespace(g)
        if x.size == 0:
            return (_zeros(x.shape, g),)
        # d prod / d x_i is the product of the others: exclusive products from both sides
        # (exact where x has zeros, unlike prod / x_i).
        xm = _reshape(x, (-1,)) if self.dim is None else xp.moveaxis(x, self.dim, -1)
        ones = xp.ones(xm.shape[:-1] + (1,), dtype=x.dtype, device=x.device)
        left = xp.cumulative_prod(xp.concat([ones, xm[..., :-1]], axis=-1), axis=-1)
        reverse = xp.flip(xm[..., 1:], axis=-1)
        right = xp.cumulative_prod(xp.concat([ones, reverse], axis=-1), axis=-1)
        others = left * xp.flip(right, axis=-1)
        if self.dim is None:
            return (_reshape(g * others, x.shape),)
        if self.keepdim:
            g = xp.squeeze(g, axis=self.dim)
        return (xp.moveaxis(xp.expand_dims(g, axis=-1) * others, -1, self.dim),)


class Mean(Op):
    def forward(self, x, dim, keepdim):
        self.shape, self.axes, self.keepdim = x.shape, _axes(dim, x.ndim), keepdim
        y = _array(_mean(x, self.axes, keepdim), x)
        self.count = x.size // max(y.size, 1) if x.size else 0
        return y

    def backward(self, g):
        g = g / float(max(self.count, 1)) if self.count else g * math.nan
        return (_expand_to(g, self.shape, self.axes, self.keepdim),)


class Var(Op):
    saves = (0,)

    def forward(self, x, dim, correction, keepdim):
        self.x, self.axes, self.keepdim = x, _axes(dim, x.ndim), keepdim
        n = x.size if self.axes is None else math.prod(x.shape[a] for a in self.axes)
        self.denom = max(n - correction, 0)
        self.mean = _mean(x, self.axes, True)
        with _library(x).errstate():
            y = _sum((x - self.mean) ** 2, axis=self.axes, keepdims=keepdim) / float(self.denom)
        return _namespace(x).astype(_array(y, x), x.dtype, copy=False)

    def backward(self, g):
        g = _expand_to(g, self.x.shape, self.axes, self.keepdim)
        with _library(g).errstate():
            return (g * 2 * (self.x - self.mean) / float(self.denom),)


class MaxMin(Op):
    """max or min over all elements (ties share the gradient evenly) or along one dim
    (the gradient goes to the returned index)."""

    saves = (0,)
    saves_output = True

    def forward(self, x, dim, keepdim, is_max):
        xp = _namespace(x)
        self.shape, self.dim, self.keepdim = x.shape, dim, keepdim
        if dim is None:
            y = _array(xp.max(x) if is_max else xp.min(x), x)
            self.mask = x == y
            if bool(xp.isnan(y)):
                self.mask = xp.isnan(x)
            return y
        arg = xp.argmax if is_max else xp.argmin
        self.index = arg(x, axis=dim, keepdims=True)
        # NOTE: argmax/argmin return the first NaN when one is present, so NaN propagates.
        y = xp.take_along_axis(x, self.index, axis=dim)
        return y if keepdim else xp.squeeze(y, axis=dim)

    def backward(self, g):
        xp = _namespace(g)
        if self.dim is None:
            count = xp.astype(xp.count_nonzero(self.mask), g.dtype)
            return (xp.astype(xp.where(self.mask, g / count, 0), g.dtype),)
        if not self.keepdim:
            g = xp.expand_dims(g, axis=self.dim)
        # g lands at the returned index along dim, zeros elsewhere (NumPy's put_along_axis).
        dim = self.dim % len(self.shape)
        n = self.shape[dim]
        positions = _reshape(
            xp.arange(n, dtype=self.index.dtype, device=g.device),
            tuple(n if i == dim else 1 for i in range(len(self.shape))),
        )
        return (xp.where(positions == self.index, g, 0),)


class MaxMinDim(MaxMin):
    """max/min along a dim saves only the indices (PyTorch's rule for the version check)."""

    saves = ()
    saves_output = False


class AMaxMin(Op):
    """amax/amin over `dims`: every tied extreme gets an equal share of the gradient."""

    saves = (0,)
    saves_output = True

    def forward(self, x, dims, keepdim, is_max):
        xp = _namespace(x)
        y = xp.max(x, axis=dims, keepdims=True) if is_max else xp.min(x, axis=dims, keepdims=True)
        self.mask = (x == y) | (xp.isnan(x) & xp.isnan(y))
        self.dims, self.keepdim, self.shape = dims, keepdim, x.shape
        return y if keepdim else xp.squeeze(y, axis=dims)

    def backward(self, g):
        xp = _namespace(g)
        if not self.keepdim:
            g = _reshape(g, _keep_shape(self.shape, _axes(self.dims, len(self.shape))))
        count = xp.sum(xp.astype(self.mask, g.dtype), axis=self.dims, keepdims=True)
        return (xp.astype(xp.where(self.mask, g / count, 0), g.dtype, copy=False),)


class LogSumExp(Op):
    saves = (0,)
    saves_output = True

    def forward(self, x, dim, keepdim):
        xp = _namespace(x)
        self.axes, self.keepdim, self.shape = _axes(dim, x.ndim), keepdim, x.shape
        m = _max_keep(x, self.axes)  # -inf over an empty dim
        m = xp.where(xp.isfinite(m), m, 0)
        with _library(x).errstate():  # log(0) = -inf: an empty dim (or all -inf)
            y = xp.log(_sum(xp.exp(x - m), axis=self.axes, keepdims=True)) + m
        self.p = xp.exp(x - y)
        if keepdim:
            return y
        return xp.squeeze(y, axis=tuple(range(x.ndim)) if self.axes is None else self.axes)

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
        lib = _library(x._data)
        if lib.may_share_memory(out._data, x._data) or (
            out._data.size == 0 and lib.memory_owner(out._data) is lib.memory_owner(x._data)
        ):  # NOTE: NumPy says an empty array shares no memory, but a view of an empty tensor
            # is a view all the same
            base = x if x._base is None else x._base
            out._base = base
            out._vc = x._vc
            out._view_steps = (x._view_steps if x._base is not None else ()) + ((cls, params),)
            # The base's history when this view's own history was made (see refresh_view).
            out._view_src = base._node if _enabled.get() else NO_GRAD_VIEW
        return out


NO_GRAD_VIEW = object()  # a view made under no_grad: its history is never regenerated


class Reshape(ViewOp):
    def forward(self, x, shape):
        self.shape = x.shape
        return _reshape(x, shape)

    def backward(self, g):
        return (_reshape(g, self.shape),)


def _permute(x, dims):
    if type(x) is _NDARRAY:
        return x.transpose(dims)
    return _namespace(x).permute_dims(x, dims)


class Permute(ViewOp):
    def forward(self, x, dims):
        self.inverse = tuple(sorted(range(len(dims)), key=list(dims).__getitem__))
        return _permute(x, tuple(dims))

    def backward(self, g):
        return (_permute(g, self.inverse),)


class Expand(ViewOp):
    def forward(self, x, shape):
        self.shape = x.shape
        lib = _library(x)
        y = _namespace(x).broadcast_to(x, shape)
        if lib.writable(x):
            # NOTE: writable, as PyTorch's: a write into a part without repeated elements
            # (e[0] of b.expand(3, 3)) reaches the base; the in-place ops refuse the rest.
            y = lib.as_strided(x, y.shape, lib.strides(y))
        return y

    def backward(self, g):
        return (unbroadcast(g, self.shape),)


class Index(ViewOp):
    """x[index]: basic indices (ints, slices, None, ...) give a view, others a copy. `index`
    comes from the tensor layer: it may hold the device's index arrays; it stays opaque."""

    def forward(self, x, index):
        self.shape, self.index = x.shape, index
        y = _getitem(x, index)
        if type(y) is not type(x):  # every dim indexed by an int: a 0-d view, not a scalar
            y = x[(*index, Ellipsis) if isinstance(index, tuple) else (index, Ellipsis)]
        return y

    def backward(self, g):
        dx = _zeros(self.shape, g)
        _library(g).index_add(dx, self.index, g)
        return (dx,)


def diagonal_view(x, offset, dim1, dim2):
    """NumPy's diagonal (dims dim1, dim2 removed, the diagonal last), as a view of x's memory,
    writable where x is (NumPy's own is read-only)."""
    lib = _library(x)
    start = [slice(None)] * x.ndim
    # NOTE: clamped: the array API leaves a slice starting past the end unspecified
    if offset >= 0:
        start[dim2] = slice(min(offset, x.shape[dim2]), None)
    else:
        start[dim1] = slice(min(-offset, x.shape[dim1]), None)
    # The diagonal starts at the first element of this slice and steps along both dims.
    corner = x[tuple(start)]
    length = min(corner.shape[dim1], corner.shape[dim2])
    strides = lib.strides(corner)
    rest = [d for d in range(x.ndim) if d not in (dim1, dim2)]
    return lib.as_strided(
        corner,
        tuple(corner.shape[d] for d in rest) + (length,),
        tuple(strides[d] for d in rest) + (strides[dim1] + strides[dim2],),
    )


class Diagonal(ViewOp):
    """x.diagonal(offset, dim1, dim2): a view, the diagonal as the last dim."""

    def forward(self, x, offset, dim1, dim2):
        self.shape, self.args = x.shape, (offset, dim1, dim2)
        return diagonal_view(x, offset, dim1, dim2)

    def backward(self, g):
        dx = _zeros(self.shape, g)
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
        xp = _namespace(g)
        replay = ViewReplay()
        g_value = _copy(replay.forward(g, self.steps))  # keeps 0-d shapes
        (region,) = replay.backward(xp.ones(g_value.shape, dtype=g.dtype, device=g.device))
        g_base = xp.where(region != 0, 0, g)
        return g_base, g_value


class IndexPut(Op):
    """x with x[index] = value (advanced indices: masks, index arrays); value broadcasts.
    With accumulate, values add at their positions (repeated indices add up)."""

    def forward(self, x, value, index, accumulate):
        self.index, self.value_shape, self.accumulate = index, value.shape, accumulate
        lib = _library(x)
        y = _copy(x)
        if accumulate:
            shape = _getitem(y, index).shape
            lib.index_add(y, index, _namespace(x).broadcast_to(value, shape))
        else:
            lib.index_put(y, index, value)
        return y

    def backward(self, g):
        dx = _copy(g)
        if not self.accumulate:
            _library(g).index_put(dx, self.index, 0)
        dvalue = _getitem(g, self.index)
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


def _take(x, dim, start, stop):
    """x[..., start:stop, ...] along dim."""
    return x[(slice(None),) * dim + (slice(start, stop), Ellipsis)]


class Cat(Op):
    def forward(self, *xs, dim):
        self.dim = dim
        self.bounds = list(itertools.accumulate([0] + [x.shape[dim] for x in xs]))
        return _namespace(xs[0]).concat(xs, axis=dim)

    def backward(self, g):
        b, dim = self.bounds, self.dim % g.ndim
        return tuple(_take(g, dim, start, stop) for start, stop in zip(b[:-1], b[1:]))


class Stack(Op):
    def forward(self, *xs, dim):
        self.dim = dim
        return _namespace(xs[0]).stack(xs, axis=dim)

    def backward(self, g):
        return tuple(_namespace(g).unstack(g, axis=self.dim))


# ---------------------------------------------------------------- nn


class Linear(Op):
    """y = x @ w.T + b; x is (..., in), w is (out, in), b is (out,) or None."""

    @classmethod
    def saved_inputs(cls, needs):
        return _crosswise(needs)

    def forward(self, x, w, b):
        self.x, self.w = x, w
        y = _kernels(x).matmul(_rows(x), w, trans_b=True)
        if b is not None:
            y += b
        return _reshape(y, x.shape[:-1] + (w.shape[0],))

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        be = _kernels(g)
        g2 = _rows(_library(g).contiguous(g))
        dx = _reshape(be.matmul(g2, self.w), self.x.shape) if need_x else None
        dw = be.matmul(g2, _rows(self.x), trans_a=True) if need_w else None
        db = _sum(g2, axis=0) if need_b else None
        return dx, dw, db


class Conv2d(Op):
    """x is (N, C, H, W), w is (K, C, R, S), b is (K,) or None; y is (N, K, P, Q)."""

    saves = (0, 1)

    def forward(self, x, w, b, stride, padding):
        self.x, self.w, self.stride, self.padding = x, w, stride, padding
        return _kernels(x).conv2d_forward(x, w, b, stride, padding)

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        return _kernels(g).conv2d_backward(
            g, self.x, self.w, self.stride, self.padding, need_x, need_w, need_b
        )


class MaxPool2d(Op):
    """x is (N, C, H, W); outputs y (N, C, P, Q) and the argmax indices (int64, no gradient);
    saves only the indices."""

    saves = (0,)  # PyTorch saves the input too, and checks its version
    n_outputs = 2

    @staticmethod
    def direct(x, kernel_size, stride, padding):
        return _kernels(x).maxpool2d_forward(x, kernel_size, stride, padding)

    def forward(self, x, kernel_size, stride, padding):
        self.shape = x.shape
        y, self.indices = _kernels(x).maxpool2d_forward(x, kernel_size, stride, padding)
        return y, self.indices

    def backward(self, g):
        return (_kernels(g).maxpool2d_backward(g, self.indices, self.shape),)


class CrossEntropy(Op):
    """Fused log-softmax + NLL. logits (N, C); target int64 (N,) or probabilities (N, C).

    NOTE: with probability targets the target gets a gradient too (-w * log_softmax), as in
    PyTorch, so a target that requires grad is differentiated."""

    saves = (1,)  # the log-probabilities it keeps are its own; PyTorch checks only the target

    def forward(self, logits, target, weight, reduction, ignore_index):
        be = _kernels(logits)
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
        xp = _namespace(logits)
        self.log_probs = _copy(logits)
        n = logits.shape[0]
        if self.reduction == "none":
            return _zeros((n,), logits)
        value = math.nan if self.reduction == "mean" else 0.0
        return xp.full((), value, dtype=logits.dtype, device=logits.device)

    def backward(self, g):
        need_logits, need_target, _ = self.needs_input_grad
        lp = self.log_probs
        if lp.shape[1] == 0:
            empty = _zeros(lp.shape, lp)
            return (empty if need_logits else None), (empty if need_target else None), None
        be = _kernels(lp)
        if hasattr(g, "dtype"):
            g = _array(g, lp)  # a NumPy scalar: its 0-d array
            if g.dtype != lp.dtype:
                g = _namespace(lp).astype(g, lp.dtype)
        else:
            g = _namespace(lp).asarray(g, dtype=lp.dtype, device=lp.device)
        dlogits = dtarget = None
        if need_logits:
            dlogits = be.cross_entropy_backward(
                g, lp, self.target, self.weight, self.reduction, self.ignore_index
            )
        if need_target:
            n = lp.shape[0]
            scale = g[:, None] if self.reduction == "none" else g / (n if self.reduction == "mean" else 1)
            w = 1 if self.weight is None else self.weight
            dtarget = -scale * w * lp
        return dlogits, dtarget, None


class NLLLoss(Op):
    """Per-sample loss -w[t] * x[i, t] (0 where t == ignore_index); x (N, C), target (N,)."""

    saves = (0, 1)

    def forward(self, x, target, weight, ignore_index):
        xp = _namespace(x)
        self.shape = x.shape
        keep = target != ignore_index
        cols = xp.where(keep, target, 0)
        w = xp.ones(x.shape[1:], dtype=x.dtype, device=x.device) if weight is None else weight
        picked_w = xp.take(w, cols, axis=0) if x.shape[1] else _zeros(target.shape, x)
        self.keep, self.cols = keep, cols
        self.w = xp.where(keep, picked_w, 0)
        if x.shape[1] == 0:  # no classes: every target is ignored
            return _zeros(target.shape, x)
        picked = xp.take_along_axis(x, xp.expand_dims(cols, axis=1), axis=1)[:, 0]
        return xp.where(keep, -self.w * picked, 0)

    def backward(self, g):
        xp = _namespace(g)
        # dx[i, t_i] = -g_i w_i for each kept sample i; zeros elsewhere.
        classes = xp.arange(self.shape[1], dtype=self.cols.dtype, device=g.device)
        hit = (classes == self.cols[:, None]) & self.keep[:, None]
        return xp.where(hit, -(g * self.w)[:, None], 0), None


class BinaryCrossEntropy(Op):
    """Elementwise -(y log p + (1-y) log(1-p)), logs clamped at -100 as in PyTorch."""

    saves = (0, 1)

    def forward(self, p, y):
        xp = _namespace(p)
        self.p, self.y = p, y
        with _library(p).errstate():
            log_p = xp.maximum(xp.log(p), -100)
            log_1mp = xp.maximum(xp.log1p(-p), -100)
        return -(y * log_p + (1 - y) * log_1mp)

    def backward(self, g):
        xp = _namespace(g)
        p, y = self.p, self.y
        dp = g * (p - y) / xp.maximum((1 - p) * p, 1e-12)
        with _library(g).errstate():
            dy = g * (xp.maximum(xp.log1p(-p), -100) - xp.maximum(xp.log(p), -100))
        return dp, dy


class BinaryCrossEntropyWithLogits(Op):
    """Elementwise -(pw y log s(x) + (1-y) log(1-s(x))), computed without overflow."""

    saves = (0, 1)

    def forward(self, x, y, pos_weight):
        xp = _namespace(x)
        self.x, self.y = x, y
        self.pw = 1 if pos_weight is None else pos_weight
        softplus_neg = xp.logaddexp(0, -x)  # log(1 + e^-x) = -log s(x), stable for any x
        return (1 - y) * x + (1 + (self.pw - 1) * y) * softplus_neg

    def backward(self, g):
        xp = _namespace(g)
        x, y, pw = self.x, self.y, self.pw
        e = xp.exp(-xp.abs(x))
        s = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))  # sigmoid(x) without overflow
        dx = g * (s * (pw * y + 1 - y) - pw * y)
        # d/dy of (1-y) x + (1 + (pw-1) y) softplus(-x) = -x + (pw - 1) softplus(-x)
        dy = g * (-x + (pw - 1) * xp.logaddexp(0, -x))
        return xp.astype(dx, x.dtype, copy=False), xp.astype(dy, x.dtype, copy=False)


class Dropout(Op):
    """x * mask / (1 - p); the mask is drawn by `generator` (a NumPy Generator: random numbers
    are made on the host) and copied to x's device."""

    def forward(self, x, p, generator):
        lib = _library(x)
        keep = generator.random(x.shape) >= p
        if p < 1:
            scale = lib.from_numpy((keep / (1 - p)).astype(_devices.np_dtype(x)), lib.device_index(x))
        else:
            scale = _zeros(x.shape, x)
        self.scale = scale
        return x * self.scale

    def backward(self, g):
        return (g * self.scale,)
