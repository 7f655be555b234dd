"""Tensor ops beyond the core set: splitting, gathering and scattering, ordering, rearranging,
norms, einsum and comparisons, with PyTorch's names, signatures and gradients.

The Op classes work on storage arrays of any device, through the array API namespace of their
arrays (`_devices.namespace`) and its library's named functions (`index_get`, `index_add`,
`index_put`); the Tensor-level functions below them check arguments with PyTorch's errors and
are what the thin Tensor methods (fastdl/_tensor.py) and `fastdl.<name>` call. Ops that are
compositions of existing differentiable ops (split, repeat, lerp, einsum, ...) are written as
such, so their gradients come from those ops.
"""

from __future__ import annotations

import math

from .. import _devices, _errors
from .. import _tensor as _T  # NOTE: _tensor imports this module; names are read at call time
from .._functions import _NUMPY_SCALAR, _broadcast_shapes, _zeros, unbroadcast
from ..autograd.function import Op


def _xp(a):
    return _devices.namespace(a)


def _lib(a):
    return _devices.library(a)


def _g(g):
    """A gradient as an array: NumPy's arithmetic on 0-d arrays may give a NumPy scalar."""
    return g[...] if isinstance(g, _NUMPY_SCALAR) else g


def _positions(index, dim):
    """The advanced index (one integer array per dim) of gather's and scatter's positions:
    element i of `index` names x[i_0, ..., index[i], ..., i_n] (index is an int64 array)."""
    xp = _xp(index)
    nd = index.ndim
    parts = []
    for d in range(nd):
        if d == dim:
            parts.append(index)
        else:
            n = index.shape[d]
            ramp = xp.arange(n, dtype=index.dtype, device=index.device)
            parts.append(xp.reshape(ramp, tuple(n if k == d else 1 for k in range(nd))))
    return tuple(parts)


def _region(shape):
    """The basic index of the leading corner of this shape (src sliced to index's shape)."""
    return tuple(slice(0, n) for n in shape)


# ---------------------------------------------------------------- gathering and scattering


class IndexSelect(Op):
    """x.index_select(dim, index): index is a 1-D int64 array."""

    def forward(self, x, index, dim):
        self.shape, self.index, self.dim = x.shape, index, dim
        return _xp(x).take(x, index, axis=dim)

    def backward(self, g):
        g = _g(g)
        dx = _zeros(self.shape, g)
        _lib(g).index_add(dx, (slice(None),) * self.dim + (self.index, Ellipsis), g)
        return (dx,)


class Gather(Op):
    """out[i][j][k] = x[index[i][j][k]][j][k] (dim 0): the gradient adds back at the positions."""

    def forward(self, x, index, dim):
        self.shape, self.positions = x.shape, _positions(index, dim)
        return _lib(x).index_get(x, self.positions)

    def backward(self, g):
        g = _g(g)
        dx = _zeros(self.shape, g)
        _lib(g).index_add(dx, self.positions, g)
        return (dx,)


class Scatter(Op):
    """x with src's leading corner (index's shape) written (or with `add`, added) at the
    positions `index` names along dim; `value` (a number) in place of src when src is None."""

    def forward(self, x, src, index, dim, add, value=None):
        lib = _lib(x)
        self.positions, self.add, self.index_shape = _positions(index, dim), add, index.shape
        self.src_shape = None if src is None else src.shape
        y = _xp(x).asarray(x, copy=True)
        part = value if src is None else src[_region(index.shape)]
        if add:
            if src is None:
                part = _xp(x).full(index.shape, value, dtype=x.dtype, device=x.device)
            lib.index_add(y, self.positions, part)
        else:
            lib.index_put(y, self.positions, part)
        return y

    def backward(self, g):
        g = _g(g)
        lib = _lib(g)
        dx = g
        if not self.add:
            dx = _xp(g).asarray(g, copy=True)
            lib.index_put(dx, self.positions, 0)
        dsrc = None
        if self.src_shape is not None and self.needs_input_grad[1]:
            picked = lib.index_get(g, self.positions)
            if self.src_shape == self.index_shape:
                dsrc = picked
            else:
                dsrc = _zeros(self.src_shape, g)
                dsrc[_region(self.index_shape)] = picked
        return dx, dsrc


# ---------------------------------------------------------------- ordering


class Sort(Op):
    """(values, indices) of x sorted along dim (stable; NaN sorts as the largest, PyTorch's
    rule); with k, only the first k (topk). The gradient goes back to the picked positions."""

    n_outputs = 2
    grad_outputs = (0,)

    def forward(self, x, dim, descending, k=None):
        xp = _xp(x)
        self.shape, self.dim = x.shape, dim
        idx = xp.argsort(x, axis=dim, descending=descending, stable=True)
        if k is not None:
            idx = idx[(slice(None),) * dim + (slice(0, k), Ellipsis)]
        self.idx = xp.astype(idx, xp.int64)
        return xp.take_along_axis(x, self.idx, axis=dim), self.idx

    def backward(self, g):
        if g is None:
            return (None,)
        g = _g(g)
        dx = _zeros(self.shape, g)
        _lib(g).index_add(dx, _positions(self.idx, self.dim), g)
        return (dx,)


def _reverse_cumsum(xp, a, dim):
    """Sums of a from each position to the end along dim (cumsum's backward)."""
    return xp.flip(xp.cumulative_sum(xp.flip(a, axis=dim), axis=dim), axis=dim)


class CumSum(Op):
    def forward(self, x, dim):
        self.dim = dim
        return _xp(x).cumulative_sum(x, axis=dim)

    def backward(self, g):
        g = _g(g)
        return (_reverse_cumsum(_xp(g), g, self.dim),)


class CumProd(Op):
    saves = (0,)
    saves_output = True

    def forward(self, x, dim):
        self.x, self.dim = x, dim
        self.y = _xp(x).cumulative_prod(x, axis=dim)
        return self.y

    def backward(self, g):
        g = _g(g)
        xp, x, dim = _xp(g), self.x, self.dim
        if not bool(xp.any(x == 0)):
            return (_reverse_cumsum(xp, g * self.y, dim) / x,)
        # NOTE: with zeros, y / x is undefined: d y_i / d x_j is the product of x_k (k <= i,
        # k != j), one cumulative product per position j (exact, O(n) array calls).
        n = x.shape[dim]
        pos = xp.reshape(
            xp.arange(n, device=x.device), tuple(n if d == dim else 1 for d in range(x.ndim))
        )
        zero = xp.zeros((), dtype=g.dtype, device=g.device)
        parts = []
        for j in range(n):
            others = xp.cumulative_prod(xp.where(pos == j, xp.ones_like(x), x), axis=dim)
            parts.append(xp.sum(xp.where(pos >= j, g * others, zero), axis=dim, keepdims=True))
        return (xp.astype(xp.concat(parts, axis=dim), g.dtype),)


# ---------------------------------------------------------------- rearranging


class Flip(Op):
    def forward(self, x, dims):
        self.dims = dims
        return _xp(x).flip(x, axis=dims)

    def backward(self, g):
        g = _g(g)
        return (_xp(g).flip(g, axis=self.dims),)


class Roll(Op):
    def forward(self, x, shifts, dims):
        self.shifts, self.dims = shifts, dims
        return _xp(x).roll(x, shift=shifts, axis=dims)

    def backward(self, g):
        g = _g(g)
        return (_xp(g).roll(g, shift=tuple(-s for s in self.shifts), axis=self.dims),)


class Triangle(Op):
    """tril (lower) or triu of the last two dims, from `diagonal` (0 the main one)."""

    def forward(self, x, diagonal, lower):
        xp = _xp(x)
        n, m = x.shape[-2], x.shape[-1]
        rows = xp.reshape(xp.arange(n, device=x.device), (n, 1))
        cols = xp.reshape(xp.arange(m, device=x.device), (1, m))
        self.mask = (cols - rows <= diagonal) if lower else (cols - rows >= diagonal)
        return xp.where(self.mask, x, xp.zeros((), dtype=x.dtype, device=x.device))

    def backward(self, g):
        g = _g(g)
        xp = _xp(g)
        return (xp.where(self.mask, g, xp.zeros((), dtype=g.dtype, device=g.device)),)


# ---------------------------------------------------------------- norms and bounds


class VectorNorm(Op):
    """sum(|x|^p)^(1/p) over dims (None: all), for a finite p > 0; the gradient is 0 where the
    norm is 0 (PyTorch's subgradient)."""

    saves = (0,)
    saves_output = True

    def forward(self, x, p, dims, keepdim):
        xp = _xp(x)
        self.x, self.p, self.dims, self.keepdim = x, p, dims, keepdim
        a = xp.abs(x)
        if p == 0:  # the count of non-zeros; its gradient is 0 (PyTorch's)
            y = xp.sum(xp.astype(x != 0, x.dtype), axis=dims, keepdims=True)
        elif p == 1:
            y = xp.sum(a, axis=dims, keepdims=True)
        elif p == 2:
            y = xp.sqrt(xp.sum(a * a, axis=dims, keepdims=True))
        else:
            y = xp.sum(a**p, axis=dims, keepdims=True) ** (1.0 / p)
        self.y = y
        return y if keepdim or dims is None else xp.squeeze(y, axis=dims)

    def backward(self, g):
        g = _g(g)
        xp, x, p, y = _xp(g), self.x, self.p, self.y
        if not self.keepdim:
            g = xp.reshape(g, y.shape)
        zero = xp.zeros((), dtype=g.dtype, device=g.device)
        with _lib(g).errstate():
            if p == 0:
                dx = xp.zeros(y.shape, dtype=g.dtype, device=g.device)
            elif p == 1:
                dx = xp.sign(x) * g
            elif p == 2:
                dx = xp.where(y == 0, zero, x * (g / y))
            else:
                a = xp.abs(x)
                dx = xp.where(y == 0, zero, xp.sign(x) * a ** (p - 1) * (g / y ** (p - 1)))
        return (xp.broadcast_to(dx, x.shape),)


class ClampTensor(Op):
    """clamp(x, lo, hi) with tensor bounds (either may be None), broadcasting; PyTorch's
    gradients: x where lo <= x <= hi, lo where x < lo < hi, hi where x > hi or hi < lo."""

    saves = (0, 1, 2)

    def forward(self, x, lo, hi):
        xp = _xp(x)
        self.x, self.lo, self.hi = x, lo, hi
        y = x
        if lo is not None:
            y = xp.maximum(y, lo)
        if hi is not None:
            y = xp.minimum(y, hi)
        return y

    def backward(self, g):
        g = _g(g)
        xp, x, lo, hi = _xp(g), self.x, self.lo, self.hi
        zero = xp.zeros((), dtype=g.dtype, device=g.device)
        inside = xp.ones(x.shape, dtype=xp.bool, device=x.device)
        if lo is not None:
            inside = inside & (x >= lo)
        if hi is not None:
            inside = inside & (x <= hi)
        dx = unbroadcast(xp.where(inside, g, zero), x.shape)
        dlo = dhi = None
        if lo is not None and self.needs_input_grad[1]:
            pick = (x < lo) if hi is None else (x < lo) & (lo < hi)
            dlo = unbroadcast(xp.where(pick, g, zero), lo.shape)
        if hi is not None and self.needs_input_grad[2]:
            pick = (x > hi) if lo is None else (x > hi) | (hi < lo)
            dhi = unbroadcast(xp.where(pick, g, zero), hi.shape)
        return dx, dlo, dhi


# ---------------------------------------------------------------- Tensor-level functions
# (what the Tensor methods and fastdl.<name> call: PyTorch's arguments and errors)


def _index_tensor(t, index, op):
    """index as an int64 tensor on t's device (PyTorch's gather and friends want Long)."""
    if not isinstance(index, _T.Tensor):
        raise _errors.ArgumentTypeError(
            f"[{op}] expected index to be a Tensor, got {type(index).__name__}"
        )
    if _T._dt(index._data) != _T.int64:
        raise _errors.ArgumentTypeError(
            f"[{op}] expected index to have dtype int64 (Long), got {index.dtype}"
        )
    _T._same_device(op, t, index)
    return index


def split(t, split_size_or_sections, dim=0):
    """Views of t along dim: pieces of split_size (the last smaller), or of the given sizes."""
    d = _T._dim(dim, t.ndim, "split")
    n = t.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise _errors.ArgumentError(
                f"[split] split_with_sizes expects split_sizes to sum exactly to {n} (input "
                f"tensor's size at dimension {d}), but got split_sizes={sizes}"
            )
    else:
        size = int(split_size_or_sections)
        if size < 0:
            raise _errors.ArgumentError(f"[split] split_size must be non-negative, got {size}")
        if size == 0:
            if n:
                raise _errors.ArgumentError(
                    f"[split] split_size can only be 0 if dimension size is 0, but got "
                    f"dimension size of {n}"
                )
            sizes = [0]
        else:
            sizes = [min(size, n - s) for s in range(0, n, size)] or [0]
    out, start = [], 0
    for s in sizes:
        out.append(t.narrow(d, start, s))
        start += s
    return tuple(out)


def chunk(t, chunks, dim=0):
    """At most `chunks` views of equal size (ceil(n / chunks)), the last smaller (PyTorch's)."""
    chunks = int(chunks)
    if chunks <= 0:
        raise _errors.ArgumentError(f"[chunk] expects `chunks` to be greater than 0, got: {chunks}")
    d = _T._dim(dim, t.ndim, "chunk")
    n = t.shape[d]
    if n == 0:  # PyTorch gives `chunks` empty pieces
        return split(t, [0] * chunks, d)
    return split(t, -(-n // chunks), d)


def unbind(t, dim=0):
    d = _T._dim(dim, t.ndim, "unbind")
    if t.ndim == 0:
        raise _errors.ArgumentIndexError(
            "[unbind] dimension specified as 0 but tensor has no dimensions"
        )
    return tuple(t.select(d, i) for i in range(t.shape[d]))


def index_select(t, dim, index):
    index = _index_tensor(t, index, "index_select")
    if index.ndim > 1:
        raise _errors.ArgumentIndexError(
            "[index_select] index_select(): Index is supposed to be a vector"
        )
    d = _T._dim(dim, t.ndim, "index_select")
    idx = index.reshape(-1)._data
    n = t.shape[d] if t.ndim else 1
    if t.ndim == 0 and idx.size != 1:
        raise _errors.ArgumentError(
            f"[index_select] index_select(): Index to scalar can have only 1 value, got "
            f"{idx.size} value(s)"
        )
    _check_range(idx, n, "index_select")
    x = t.reshape(1) if t.ndim == 0 else t
    out = IndexSelect.apply(x, index=idx, dim=d)
    return out.reshape(()) if t.ndim == 0 else out


def _check_range(idx, n, op):
    if idx.size:
        xp = _xp(idx)
        lo, hi = int(xp.min(idx)), int(xp.max(idx))
        if lo < 0 or hi >= n:
            bad = hi if hi >= n else lo
            raise _errors.ArgumentIndexError(
                f"[{op}] index {bad} is out of bounds for dimension with size {n}"
            )


def _check_gather_shapes(t, index, d, op, src=None):
    if index.ndim != t.ndim:
        raise _errors.ArgumentError(
            f"[{op}] Index tensor must have the same number of dimensions as input tensor "
            f"({index.ndim} vs {t.ndim})"
        )
    for k in range(t.ndim):
        if (k != d and index.shape[k] > t.shape[k]) or (
            src is not None and index.shape[k] > src.shape[k]
        ):
            raise _errors.ArgumentError(
                f"[{op}] expected index {list(index.shape)} to be no larger than self "
                f"{list(t.shape)} apart from dimension {d}"
                + ("" if src is None else f" and to be no larger than src {list(src.shape)}")
            )


def gather(t, dim, index):
    index = _index_tensor(t, index, "gather")
    d = _T._dim(dim, t.ndim, "gather")
    if t.ndim == 0:
        return gather(t.reshape(1), 0, index.reshape(1)).reshape(index.shape)
    _check_gather_shapes(t, index, d, "gather")
    _check_range(index._data, t.shape[d], "gather")
    return Gather.apply(t, index=index._data, dim=d)


def scatter(t, dim, index, src=None, value=None, add=False, op="scatter"):
    index = _index_tensor(t, index, op)
    d = _T._dim(dim, t.ndim, op)
    if isinstance(src, _T.Tensor):
        _T._same_device(op, t, src)
        if _T._dt(src._data) != _T._dt(t._data):
            raise _errors.ArgumentError(
                f"[{op}] Expected self.dtype to be equal to src.dtype, got {t.dtype} and "
                f"{src.dtype}"
            )
        if src.ndim != t.ndim and index.numel():
            raise _errors.ArgumentError(
                f"[{op}] src must have as many dims as self ({t.ndim}), got {src.ndim}"
            )
    elif src is not None:
        value, src = src, None
    if src is None and value is None:
        raise _errors.ArgumentTypeError(f"[{op}] expected src (a Tensor) or value (a number)")
    if t.ndim == 0:
        return scatter(
            t.reshape(1),
            0,
            index.reshape(1),
            None if src is None else src.reshape(1),
            value,
            add,
            op,
        ).reshape(())
    _check_gather_shapes(t, index, d, op, src)
    _check_range(index._data, t.shape[d], op)
    if src is None:
        value = int(value) if _T._dt(t._data).kind in "iub" else float(value)
    return Scatter.apply(t, src, index=index._data, dim=d, add=add, value=value)


def scatter_(t, dim, index, src=None, value=None, add=False, op="scatter_"):
    """In place, through the tensor layer's in-place rules (views, versions, history)."""
    return t._inplace(
        op,
        lambda s: scatter(s, dim, index, src, value, add, op),
        None,
        src if isinstance(src, _T.Tensor) else None,
    )


def masked_select(t, mask):
    mask = _T._as_mask(mask, "masked_select")
    _T._same_device("masked_select", t, mask)
    try:
        shape = _broadcast_shapes(tuple(t.shape), tuple(mask.shape))
    except ValueError:
        raise _errors.ArgumentError(
            f"[masked_select] the mask of shape {list(mask.shape)} does not broadcast with the "
            f"input of shape {list(t.shape)}"
        ) from None
    x = t if t.shape == shape else t.expand(shape)
    m = mask if mask.shape == shape else mask.expand(shape)
    return x[m]


def _sort_dim(t, dim, op):
    return _T._dim(dim, t.ndim, op)


def sort(t, dim=-1, descending=False, stable=False):
    d = _sort_dim(t, dim, "sort")
    x = t.reshape(1) if t.ndim == 0 else t
    values, indices = Sort.apply(x, dim=d, descending=bool(descending))
    if t.ndim == 0:
        values, indices = values.reshape(()), indices.reshape(())
    return _T.values_indices(values, indices)


def argsort(t, dim=-1, descending=False, stable=False):
    return sort(t, dim, descending, stable).indices


def topk(t, k, dim=-1, largest=True, sorted=True):
    d = _sort_dim(t, dim, "topk")
    n = t.shape[d] if t.ndim else 1
    k = int(k)
    if not 0 <= k <= n:
        raise _errors.ArgumentIndexError(
            f"[topk] selected index k out of range: k is {k}, dim {d} has size {n}"
        )
    x = t.reshape(1) if t.ndim == 0 else t
    values, indices = Sort.apply(x, dim=d, descending=bool(largest), k=k)
    if t.ndim == 0:
        values, indices = values.reshape(()), indices.reshape(())
    return _T.values_indices(values, indices)


def _cum_input(t, dtype, op):
    x = t if dtype is None else t.to(dtype)
    if dtype is None and _T._dt(x._data).kind in "iub":
        x = x.to(_T.int64)  # PyTorch's rule: integer and bool cumulative ops are int64
    return x


def cumsum(t, dim, dtype=None):
    x = _cum_input(t, dtype, "cumsum")
    if t.ndim == 0:
        return x.clone()
    return CumSum.apply(x, dim=_T._dim(dim, t.ndim, "cumsum"))


def cumprod(t, dim, dtype=None):
    x = _cum_input(t, dtype, "cumprod")
    if t.ndim == 0:
        return x.clone()
    return CumProd.apply(x, dim=_T._dim(dim, t.ndim, "cumprod"))


def _sizes(sizes):
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
        sizes = tuple(sizes[0])
    return tuple(int(s) for s in sizes)


def repeat(t, *sizes):
    reps = _sizes(sizes)
    if len(reps) < t.ndim:
        raise _errors.ArgumentError(
            "[repeat] Number of dimensions of repeat dims can not be smaller than number of "
            f"dimensions of tensor ({len(reps)} < {t.ndim})"
        )
    if any(r < 0 for r in reps):
        raise _errors.ArgumentError(f"[repeat] repeats must be non-negative, got {list(reps)}")
    shape = (1,) * (len(reps) - t.ndim) + tuple(t.shape)
    inter = tuple(v for s in shape for v in (1, s))
    wide = tuple(v for r, s in zip(reps, shape) for v in (r, s))
    out = t.reshape(inter).expand(wide).reshape(tuple(r * s for r, s in zip(reps, shape)))
    return out.clone() if out._base is not None else out  # a copy, as PyTorch's


def tile(t, *dims):
    reps = _sizes(dims)
    reps = (1,) * (t.ndim - len(reps)) + reps
    return repeat(t, reps)


def _dim_list(dims, ndim, op):
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    out = tuple(_T._dim(d, ndim, op) for d in dims)
    if len(set(out)) != len(out):
        raise _errors.ArgumentError(f"[{op}] dims has duplicates: {list(dims)}")
    return out


def flip(t, *dims):
    dims = _dim_list(_sizes(dims), t.ndim, "flip")
    if t.ndim == 0 or not dims:
        return t.clone()
    return Flip.apply(t, dims=dims)


def roll(t, shifts, dims=None):
    shifts = (shifts,) if isinstance(shifts, int) else tuple(int(s) for s in shifts)
    if dims is None:
        if len(shifts) != 1:
            raise _errors.ArgumentError(
                f"[roll] shifts {list(shifts)} need dims of the same length"
            )
        return Roll.apply(t.reshape(-1), shifts=shifts, dims=(0,)).reshape(t.shape)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(dims) != len(shifts):
        raise _errors.ArgumentError(
            f"[roll] shifts and dimensions must align. shifts: {len(shifts)}, dims: {len(dims)}"
        )
    return Roll.apply(t, shifts=shifts, dims=tuple(_T._dim(d, t.ndim, "roll") for d in dims))


def _triangle(t, diagonal, lower):
    op = "tril" if lower else "triu"
    if t.ndim < 2:
        raise _errors.ArgumentError(
            f"[{op}] input tensor must have at least 2 dimensions, got {t.ndim}"
        )
    return Triangle.apply(t, diagonal=int(diagonal), lower=lower)


def tril(t, diagonal=0):
    return _triangle(t, diagonal, True)


def triu(t, diagonal=0):
    return _triangle(t, diagonal, False)


# ---- linear algebra


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    if _T._dt(x._data).kind != "f":
        raise _errors.ArgumentError(
            f"[linalg.vector_norm] Expected a floating point or complex tensor as input. "
            f"Got {x.dtype}"
        )
    dims = None if dim is None else _dim_list(dim, x.ndim, "linalg.vector_norm")
    if dims is None or dims == () or x.ndim == 0:
        dims = None if x.ndim == 0 else tuple(range(x.ndim))
    ord = float(ord)
    if ord == math.inf or ord == -math.inf:
        if x.numel() == 0 and ord < 0:
            raise _errors.ArgumentError(
                "[linalg.vector_norm] cannot compute the -inf norm on an empty tensor"
            )
        a = x.abs()
        if dims is None:
            y = a.amax() if ord > 0 else a.amin()
            return y.reshape((1,) * x.ndim) if keepdim else y
        return a.amax(dims, keepdim) if ord > 0 else a.amin(dims, keepdim)
    if ord < 0:
        # sum(|x|^p)^(1/p) for p < 0, by composition (an element 0 gives 0, as PyTorch's)
        a = x.abs()
        return (a**ord).sum(dims, keepdim) ** (1.0 / ord)
    return VectorNorm.apply(x, p=ord, dims=dims, keepdim=keepdim)


def norm(t, p="fro", dim=None, keepdim=False, dtype=None):
    """Tensor.norm: the vector p-norm over dim (all elements when None); "fro" is the 2-norm."""
    if p == "fro" or p is None:
        p = 2
    if p == "nuc":
        raise NotImplementedError("[norm] the nuclear norm is not supported by fastdl")
    return vector_norm(t, p, dim, keepdim, dtype=dtype)


def linalg_norm(x, ord=None, dim=None, keepdim=False, *, dtype=None):
    """fastdl.linalg.norm: vector norms, and the Frobenius and 1/inf matrix norms."""
    if isinstance(dim, int):
        dim = (dim,)
    if ord is None:
        if dim is None and x.ndim not in (1, 2):
            return vector_norm(x, 2, None, keepdim, dtype=dtype)
        return vector_norm(x, 2, dim, keepdim, dtype=dtype)
    nd = len(dim) if dim is not None else x.ndim
    if nd == 1:
        return vector_norm(x, ord, dim, keepdim, dtype=dtype)
    if nd != 2:
        raise _errors.ArgumentError(
            "[linalg.norm] If dim is not specified but ord is, the input must be 1D or 2D. "
            f"Got {x.ndim}D"
        )
    d0, d1 = dim if dim is not None else (-2, -1)
    d0, d1 = _T._dim(d0, x.ndim, "linalg.norm"), _T._dim(d1, x.ndim, "linalg.norm")
    if ord == "fro":
        return vector_norm(x, 2, (d0, d1), keepdim, dtype=dtype)
    if ord in (1, -1, math.inf, -math.inf):
        if dtype is not None:
            x = x.to(dtype)
        # 1: max over columns of the column sums; inf: max over rows of the row sums
        summed, other = (d0, d1) if abs(ord) == 1 else (d1, d0)
        s = x.abs().sum(summed, keepdim=True)
        y = s.amax(other, keepdim=True) if ord > 0 else s.amin(other, keepdim=True)
        return y if keepdim else y.squeeze(max(d0, d1)).squeeze(min(d0, d1))
    raise NotImplementedError(f"[linalg.norm] ord={ord!r} matrix norms are not supported by fastdl")


def bmm(a, b):
    if a.ndim != 3 or b.ndim != 3:
        raise _errors.ArgumentError(
            "[bmm] batch1 must be a 3D tensor and batch2 must be a 3D tensor, "
            f"got {a.ndim}D and {b.ndim}D"
        )
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise _errors.ArgumentError(
            f"[bmm] Expected size for first two dimensions of batch2 tensor to be: "
            f"[{a.shape[0]}, {a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}]."
        )
    return _T.matmul(a, b)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    prod = bmm(batch1, batch2)
    if alpha != 1:
        prod = prod * alpha
    if beta == 0:  # PyTorch ignores input then (NaN in it does not propagate)
        return prod
    return (input if beta == 1 else input * beta) + prod


# ---- einsum (permute and reshape onto batched matmul, which runs on the GEMM backend)


def _parse_einsum(equation, operands):
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise _errors.ArgumentError(
            f"[einsum] the equation has {len(terms)} operands but {len(operands)} were given"
        )
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in eq]
    # the dims "..." stands for, right-aligned (they broadcast): the widest operand names all
    ell_n = max(
        (t.ndim - (len(term) - 3) for term, t in zip(terms, operands) if "..." in term), default=0
    )
    out_terms = []
    for term, t in zip(terms, operands):
        if "..." in term:
            k = t.ndim - (len(term) - 3)
            term = term.replace("...", "".join(free[ell_n - k : ell_n]) if k > 0 else "")
        if len(term) != t.ndim or not term.isalpha():
            raise _errors.ArgumentError(
                f"[einsum] the subscripts {term!r} do not match an operand with {t.ndim} dimensions"
            )
        out_terms.append(term)
    ell = "".join(free[:ell_n])
    if arrow:
        out = rhs.replace("...", ell)
    else:
        counts = {}
        for c in "".join(out_terms):
            counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return out_terms, out


def _diagonals(t, term):
    """t with repeated subscripts in its term taken along their diagonal (ii -> i)."""
    while len(set(term)) != len(term):
        c = next(c for c in term if term.count(c) > 1)
        i = term.index(c)
        j = term.index(c, i + 1)
        t = t.diagonal(0, i, j)
        term = term[:i] + term[i + 1 : j] + term[j + 1 :] + c
    return t, term


def _sum_out(t, term, keep):
    """t summed over the subscripts not in keep."""
    drop = [i for i, c in enumerate(term) if c not in keep]
    if drop:
        t = t.sum(tuple(drop))
        term = "".join(c for c in term if c in keep)
    return t, term


def _contract(a, ta, b, tb, keep):
    """a (subscripts ta) times b (tb), summed over the subscripts both have and keep lacks:
    one (batched) matmul. Returns (tensor, subscripts)."""
    batch = [c for c in ta if c in tb and c in keep]
    summed = [c for c in ta if c in tb and c not in keep]
    left = [c for c in ta if c not in tb]
    right = [c for c in tb if c not in ta]
    size = {**dict(zip(ta, a.shape)), **dict(zip(tb, b.shape))}
    for c in batch + summed:
        na, nb = a.shape[ta.index(c)], b.shape[tb.index(c)]
        if na != nb and 1 not in (na, nb):
            raise _errors.ArgumentError(
                f"[einsum] operands do not broadcast: subscript {c!r} has sizes {na} and {nb}"
            )
        size[c] = max(na, nb)
    for c in summed:  # a summed subscript of size 1 on one side: sum the other side first
        na, nb = a.shape[ta.index(c)], b.shape[tb.index(c)]
        if na != nb:
            if na == 1:
                b = b.sum(tb.index(c), keepdim=True)
            else:
                a = a.sum(ta.index(c), keepdim=True)
    pa = a.permute([ta.index(c) for c in batch + left + summed])
    pb = b.permute([tb.index(c) for c in batch + summed + right])
    m = math.prod(size[c] for c in left)
    n = math.prod(size[c] for c in right)
    k = math.prod(a.shape[ta.index(c)] for c in summed)
    pa = pa.reshape(tuple(a.shape[ta.index(c)] for c in batch) + (m, k))
    pb = pb.reshape(tuple(b.shape[tb.index(c)] for c in batch) + (k, n))
    y = _T.matmul(pa, pb)
    y = y.reshape(tuple(size[c] for c in batch + left + right))
    return y, "".join(batch + left + right)


def einsum(equation, *operands):
    """Einstein summation (PyTorch's einsum): pairwise contractions, each one batched matmul."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise _errors.ArgumentError("[einsum] must provide at least one operand")
    terms, out = _parse_einsum(equation, operands)
    ts = list(operands)
    dt = _T._dt(ts[0]._data)
    for t in ts[1:]:
        if _T._dt(t._data) != dt:
            raise _errors.ArgumentError(
                f"[einsum] expected operands of one dtype, got {ts[0].dtype} and {t.dtype}"
            )
    for i, t in enumerate(ts):
        ts[i], terms[i] = _diagonals(t, terms[i])
    for c in out:
        if not any(c in term for term in terms):
            raise _errors.ArgumentError(
                f"[einsum] output subscript {c} does not appear in the input"
            )
    # sum out what only one operand has and neither the output nor the others need
    for i in range(len(ts)):
        others = out + "".join(terms[k] for k in range(len(ts)) if k != i)
        ts[i], terms[i] = _sum_out(ts[i], terms[i], others)
    y, ty = ts[0], terms[0]
    for i in range(1, len(ts)):
        keep = out + "".join(terms[i + 1 :])
        y, ty = _contract(y, ty, ts[i], terms[i], keep)
        y, ty = _sum_out(y, ty, keep)
    y, ty = _sum_out(y, ty, out)
    if ty != out:
        y = y.permute([ty.index(c) for c in out])
    return y


# ---- tests and comparisons


def _flag(t, fn_name):
    xp = _xp(t._data)
    return _T.Tensor._make(getattr(xp, fn_name)(t._data))


def isnan(t):
    return _flag(t, "isnan")


def isinf(t):
    return _flag(t, "isinf")


def isfinite(t):
    return _flag(t, "isfinite")


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    if not isinstance(b, _T.Tensor):
        b = _T.Tensor._make(a._on_my_device(_T._from_data(b)))
    _T._same_device("isclose", a, b)
    if _T._dt(a._data) != _T._dt(b._data):
        raise _errors.ArgumentError(f"[isclose] {a.dtype} did not match {b.dtype}")
    if rtol < 0 or atol < 0:
        raise _errors.ArgumentError(
            f"[isclose] rtol and atol must be non-negative, got {rtol}, {atol}"
        )
    x, y = a._data, b._data
    xp = _xp(x)
    with _lib(x).errstate():
        close = x == y
        if _T._dt(x).kind == "f":
            diff = xp.abs(x - y)
            close = close | (xp.isfinite(diff) & (diff <= atol + rtol * xp.abs(y)))
            if equal_nan:
                close = close | (xp.isnan(x) & xp.isnan(y))
        elif _T._dt(x).kind != "b":
            xf, yf = xp.astype(x, xp.float64), xp.astype(y, xp.float64)
            close = close | (xp.abs(xf - yf) <= atol + rtol * xp.abs(yf))
    return _T.Tensor._make(close)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    return bool(isclose(a, b, rtol, atol, equal_nan).all())


def equal(a, b) -> bool:
    _T._same_device("equal", a, b)
    if tuple(a.shape) != tuple(b.shape):
        return False
    return bool((a == b).all())


def unique(t, sorted=True, return_inverse=False, return_counts=False, dim=None):
    if dim is not None:
        raise NotImplementedError("[unique] dim= is not supported by fastdl")
    data = t._data
    xp = _xp(data)
    flat = xp.reshape(data, (-1,))
    res = xp.unique_all(flat)
    values, inverse, counts = res.values, res.inverse_indices, res.counts
    order = xp.argsort(values, stable=True)
    values, counts = xp.take(values, order), xp.take(counts, order)
    rank = xp.argsort(order, stable=True)
    inverse = xp.take(rank, xp.reshape(inverse, (-1,)))
    out = [_T.Tensor._make(values)]
    if return_inverse:
        out.append(_T.Tensor._make(xp.reshape(xp.astype(inverse, xp.int64), data.shape)))
    if return_counts:
        out.append(_T.Tensor._make(xp.astype(counts, xp.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def clamp(t, min=None, max=None):
    """clamp with tensor bounds (a number bound becomes a tensor of t's dtype)."""

    def bound(b):
        if b is None or isinstance(b, _T.Tensor):
            if b is not None:
                _T._same_device("clamp", t, b)
            return b
        return _T.Tensor._make(t._on_my_device(_T._from_data(b, t.dtype)))

    lo, hi = bound(min), bound(max)
    dt = _T._dt(t._data)
    for b in (lo, hi):
        if b is not None:
            dt = _T._promote(dt, _T._dt(b._data))
    x = t if _T._dt(t._data) == dt else t.to(dt)
    lo = lo if lo is None or _T._dt(lo._data) == dt else lo.to(dt)
    hi = hi if hi is None or _T._dt(hi._data) == dt else hi.to(dt)
    try:
        shape = _broadcast_shapes(
            tuple(x.shape), *(tuple(b.shape) for b in (lo, hi) if b is not None)
        )
    except ValueError:
        raise _errors.ArgumentError("[clamp] the bounds do not broadcast with the input") from None
    if shape != tuple(x.shape):
        x = x.expand(shape)
    return ClampTensor.apply(x, lo, hi)


def lerp(start, end, weight):
    """start + weight * (end - start), with PyTorch's two-sided formula for the numbers."""
    _T._same_device("lerp", start, end)
    if _T._dt(start._data) != _T._dt(end._data):
        raise _errors.ArgumentError(
            f"[lerp] expected dtype {start.dtype} for `end` but got dtype {end.dtype}"
        )
    diff = end - start
    if isinstance(weight, _T.Tensor):
        _T._same_device("lerp", start, weight)
        from .._creation import where

        return where(weight.abs() < 0.5, start + weight * diff, end - diff * (1 - weight))
    w = float(weight)
    return start + w * diff if abs(w) < 0.5 else end - diff * (1 - w)
