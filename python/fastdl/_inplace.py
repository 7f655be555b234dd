"""Tensor's in-place ops (add_, copy_, __setitem__, ...) and their checks, with PyTorch's rules:
the write goes into the storage, so every alias and view sees it; the storage's version counter
goes up; a write that would cast, broadcast the destination or overlap itself raises. Tensor
inherits the methods from InPlaceOps."""

from __future__ import annotations

import math
from numbers import Number

import numpy as np

from . import _devices
from . import _functions as fn
from ._dtypes import (  # noqa: F401
    dtype, _dtype_named, float32, float64, float16, int64, int32, int16, int8, uint8, bool_, SUPPORTED_DTYPES, _FASTDL_DTYPES, _PY_DTYPES, values_indices, as_dtype, _scalar_dtype, _promote,
)
from ._errors import torch_type_name
from ._storage import (  # noqa: F401
    device, _CPU, _device_type, _default_device, get_default_device, set_default_device, _to_device, _device_of, _storage, _dt, _host, _xp, _CPU_FUNCTIONS, _copy, _write, _writable, _strides, _as_device_dtype, _c_contiguous, _same_device, _has_float64,
)
from .autograd.grad_mode import _enabled as _grad_enabled

_NDARRAY = np.ndarray


class InPlaceOps:
    """Tensor's in-place methods (Tensor is the only subclass)."""

    __slots__ = ()

    # ---- in-place ops ----
    # PyTorch's rules: the write goes into the storage, so every alias and view sees it; the
    # storage's version counter goes up, so backward can refuse a saved tensor that changed;
    # under grad mode the written tensor's history becomes the op's (and, through a view, the
    # base's history becomes "old history, this region replaced": CopySlices).

    @property
    def _version(self) -> int:
        return self._vc[0]

    def _inplace(
        self, name, compute, fast=None, operand=None, keeps_old=False, casts=False,
        overwrites=False, repeats_ok=False,
    ):
        """Write `compute(self)` into this tensor's storage, by PyTorch's in-place rules.

        compute(src) -> Tensor: the new value, computed out of place (recorded if anything
            requires grad); src is this tensor or, when `keeps_old` (the op saves its input),
            a copy of its old value, as PyTorch keeps the original.
        fast(array): the same write straight into the storage, when nothing is recorded.
        operand: the other tensor taking part, if any.
        casts: any result dtype is cast (copy_, fill_); otherwise an in-place result must not
            need a higher kind than the tensor's (float into int, int into bool), as in PyTorch.
        overwrites: the result does not depend on the old value (copy_, fill_): the old history
            still gets its (zero) gradient, as PyTorch's CopyBackwards gives it.
        repeats_ok: the write may go into an expanded tensor, whose repeated elements are one
            memory location (fill_ writes one value: PyTorch allows it).
        """
        other_views = isinstance(operand, Tensor) and (
            operand._requires_grad or operand._base is not None
        )
        record = _grad_enabled.get() and (
            self._requires_grad or self._base is not None or other_views
        )
        if record:
            self._check_inplace_graph(name)
            record = self._requires_grad or other_views
        data = self._data
        _check_writable(name, data, repeats_ok)
        if not overwrites and isinstance(operand, Tensor):
            _check_no_partial_overlap(name, data, operand._data)
        if not record and fast is not None and type(data) is _NDARRAY:
            fast(data)
            self._vc[0] += 1
            return self
        result = compute(self._snapshot() if record and keeps_old else self)
        r = result._data
        if r.dtype != data.dtype and not casts:
            _check_inplace_cast(name, _dt(r), _dt(data))
        if r.shape != data.shape:
            _check_inplace_shape(name, r.shape, data.shape)
        _write(data, r)
        self._vc[0] += 1
        if result._requires_grad or (record and self._requires_grad):
            self._rebase(result, overwrites)
        return self

    def _check_inplace_graph(self, name):
        base = self._base
        if base is None:
            if self._requires_grad and self._node is None:
                raise RuntimeError(
                    f"[{name}] a leaf Variable that requires grad is being used in an in-place "
                    "operation; modify it under fastdl.no_grad(), or work on a clone()"
                )
            return
        if self._view_src is fn.NO_GRAD_VIEW:
            if base._requires_grad:
                raise RuntimeError(
                    f"[{name}] a view was created in no_grad mode and is being modified in place "
                    "with grad mode enabled; clone() the view, or modify it under no_grad"
                )
            return
        fn.refresh_view(self)
        if base._requires_grad and base._node is None:
            raise RuntimeError(
                f"[{name}] a view of a leaf Variable that requires grad is being used in an "
                "in-place operation; modify it under fastdl.no_grad(), or work on a clone()"
            )

    def _snapshot(self) -> "Tensor":
        """This tensor's value now, in fresh memory, with its history."""
        t = Tensor._make(_copy(self._data), self._node, self._out_idx)
        t._requires_grad = self._requires_grad
        return t

    def _rebase(self, result, overwrites=False):
        """After writing `result` into this tensor: its history (or its base's) moves on."""
        base = self._base
        old_node, old_idx = self._node, self._out_idx
        if base is None:
            if result._requires_grad and not (overwrites and self._requires_grad):
                self._node, self._out_idx = result._node, result._out_idx
            else:  # overwritten: the old history gets a zero gradient
                self._node, self._out_idx = fn.CopySlices.apply(self, result, steps=())._node, 0
            self._requires_grad = True
        else:
            written = fn.CopySlices.apply(base, result, steps=self._view_steps)
            if written._node is None:
                return
            base._node, base._out_idx, base._requires_grad = written._node, 0, True
            fn.refresh_view(self)
        if old_node is not None and old_node.retained.get(old_idx) is self:
            # retain_grad() keeps following the tensor: its grad is for its current value
            del old_node.retained[old_idx]
            self._node.retain(self._out_idx, self)
        node = result._node
        if node is not None and node.saved_versions:
            # A saved output of the op is this tensor now, at its new version.
            node.saved_versions = tuple(
                (self._vc, self._vc[0], a) if c is result._vc else (c, v, a)
                for c, v, a in node.saved_versions
            )

    def _inplace_binary(self, name, other, method, ufunc, keeps_old=False):
        """self <op>= other, as `method(self, other)` (the out-of-place op) or `ufunc`."""
        other_t = isinstance(other, Tensor)
        if type(self._data) is not _NDARRAY:  # another device: compute, then write
            return self._inplace(name, lambda src: method(src, other), None, other, keeps_old)
        if _grad_enabled.get() and (
            self._requires_grad or self._base is not None
            or (other_t and (other._requires_grad or other._base is not None))
        ):
            return self._inplace(
                name, lambda src: method(src, other),
                lambda data: _binary_into(name, data, other, ufunc), other, keeps_old,
            )
        # Nothing to record (no_grad, or no tensor that requires grad): one ufunc call into
        # the storage. The same checks as _inplace's, inlined: this is the optimizer-loop path.
        data = self._data
        _check_writable(name, data)
        if other_t:
            _check_no_partial_overlap(name, data, other._data)
        _binary_into(name, data, other, ufunc)
        self._vc[0] += 1
        return self

    def add_(self, other, alpha=1):
        if alpha != 1:
            other = other * alpha
        return self._inplace_binary("add_", other, Tensor.__add__, np.add)

    def sub_(self, other, alpha=1):
        _check_bool_sub(self, other)
        if alpha != 1:
            other = other * alpha
        return self._inplace_binary("sub_", other, Tensor.__sub__, np.subtract)

    def mul_(self, other):
        return self._inplace_binary("mul_", other, Tensor.__mul__, np.multiply, keeps_old=True)

    def div_(self, other):
        return self._inplace_binary(
            "div_", other, Tensor.__truediv__, np.true_divide, keeps_old=True
        )

    def floor_divide_(self, other):
        return self._inplace_binary("floor_divide_", other, Tensor.__floordiv__, np.floor_divide)

    def remainder_(self, other):
        return self._inplace_binary(
            "remainder_", other, Tensor.__mod__, np.remainder, keeps_old=isinstance(other, Tensor)
        )

    def pow_(self, exponent):
        return self._inplace_binary("pow_", exponent, Tensor.__pow__, np.power, keeps_old=True)

    def _inplace_bitwise(self, name, other, ufunc):
        if _dt(self._data).kind not in "iub":
            raise NotImplementedError(
                f"[{name}] expected an integer or bool tensor, got {_dt(self._data)}"
            )
        return self._inplace_binary(
            name, other, lambda a, b: a._bitwise(b, name[:-1]), ufunc
        )

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_
    __ifloordiv__ = floor_divide_
    __imod__ = remainder_
    __ipow__ = pow_

    def __iand__(self, other):
        return self._inplace_bitwise("bitwise_and_", other, np.bitwise_and)

    def __ior__(self, other):
        return self._inplace_bitwise("bitwise_or_", other, np.bitwise_or)

    def __ixor__(self, other):
        return self._inplace_bitwise("bitwise_xor_", other, np.bitwise_xor)

    def relu_(self):
        return self._inplace("relu_", Tensor.relu, lambda d: np.maximum(d, 0, out=d))

    def sigmoid_(self):
        return self._inplace("sigmoid_", Tensor.sigmoid)

    def tanh_(self):
        return self._inplace("tanh_", Tensor.tanh)

    def exp_(self):
        return self._inplace("exp_", Tensor.exp)

    def log_(self):
        return self._inplace("log_", Tensor.log, keeps_old=True)

    def sqrt_(self):
        return self._inplace("sqrt_", Tensor.sqrt)

    def abs_(self):
        return self._inplace("abs_", Tensor.abs, lambda d: np.abs(d, out=d), keeps_old=True)

    def neg_(self):
        return self._inplace("neg_", Tensor.__neg__, lambda d: np.negative(d, out=d))

    def clamp_(self, min=None, max=None):
        if min is None and max is None:
            raise RuntimeError("[clamp_] at least one of min or max must be given")
        return self._inplace(
            "clamp_", lambda src: src.clamp(min, max),
            lambda d: np.clip(d, min, max, out=d), keeps_old=True,
        )

    clip_ = clamp_

    def copy_(self, src, non_blocking=False):
        value = src if isinstance(src, Tensor) else Tensor._make(_from_data(src))
        if type(value._data) is not type(self._data) or (
            type(value._data) is not _NDARRAY and value.device != self.device
        ):
            value = value.to(self.device)  # PyTorch's copy_ copies across devices

        def fast(data):
            np.copyto(data, _broadcast_value("copy_", value._data, data.shape), casting="unsafe")

        def compute(_):
            _broadcast_value("copy_", value._data, self._data.shape)  # the error, if any
            v = value if _dt(value._data) == _dt(self._data) else value.to(_dt(self._data))
            return v.expand(self._data.shape)

        return self._inplace("copy_", compute, fast, value, casts=True, overwrites=True)

    def fill_(self, value):
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise RuntimeError(
                    f"[fill_] only supports a 0-dimension value tensor, got one with "
                    f"{value.ndim} dimensions"
                )
            return self.copy_(value)
        return self._inplace(
            "fill_", lambda _: Tensor._make(
                self._on_my_device(np.full(self._data.shape, value, _dt(self._data)))
            ),
            lambda d: d.fill(value), casts=True, overwrites=True, repeats_ok=True,
        )

    def zero_(self):
        return self.fill_(0)

    def _masked_fill_args(self, mask, value, name):
        mask_t = _as_mask(mask, name)
        _broadcast_value(name, mask_t._data, self._data.shape)
        value_t = _fill_value(value, _dt(self._data), name)
        if type(self._data) is not _NDARRAY:  # masks and values join the tensor's device
            mask_t, value_t = mask_t.to(self.device), value_t.to(self.device)
        return mask_t, value_t

    def masked_fill_(self, mask, value):
        mask_t, value_t = self._masked_fill_args(mask, value, "masked_fill_")

        def fast(data):
            np.copyto(data, value_t._data, where=mask_t._data, casting="unsafe")

        def compute(src):
            return fn.Where.apply(mask_t, value_t, src)

        return self._inplace("masked_fill_", compute, fast, value_t, casts=True)

    def masked_fill(self, mask, value):
        mask_t, value_t = self._masked_fill_args(mask, value, "masked_fill")
        return fn.Where.apply(mask_t, value_t, self).contiguous()  # PyTorch's layout

    def index_put_(self, indices, values, accumulate=False):
        index = _index(tuple(indices) if isinstance(indices, list) else indices)
        value = values if isinstance(values, Tensor) else Tensor._make(
            self._on_my_device(np.asarray(values, _dt(self._data)))
        )

        def fast(data):
            try:
                if accumulate:
                    np.add.at(data, index, np.broadcast_to(value._data, data[index].shape))
                else:
                    data[index] = value._data
            except ValueError as e:
                raise RuntimeError(f"[index_put_] {e}") from None

        def compute(src):
            v = value if _dt(value._data) == _dt(src._data) else value.to(_dt(src._data))
            if type(src._data) is not _NDARRAY:
                v = v.to(src.device)
            try:
                return fn.IndexPut.apply(
                    src, v, index=_index_on(index, src), accumulate=bool(accumulate)
                )
            except ValueError as e:
                raise RuntimeError(f"[index_put_] {e}") from None

        return self._inplace("index_put_", compute, fast, value, casts=True)

    def uniform_(self, a=0.0, b=1.0, generator=None):
        from ._random import numpy_generator

        g = numpy_generator(generator, "uniform_")
        return self.copy_(g.uniform(a, b, self._data.shape))

    def normal_(self, mean=0.0, std=1.0, generator=None):
        from ._random import numpy_generator

        g = numpy_generator(generator, "normal_")
        return self.copy_(g.normal(mean, std, self._data.shape))

    def __setitem__(self, index, value):
        index = _index(index)
        split = _split_int_and_advanced(index)
        if split is not None:  # as in __getitem__: the ints select first (a view)
            self[split[0]][split[1]] = value
            return
        if not _is_basic_index(index):
            self.index_put_(index, value)
            return
        value_t = value if isinstance(value, Tensor) else None
        if _grad_enabled.get() and (
            self._requires_grad or self._base is not None
            or (value_t is not None and value_t._requires_grad)
        ):
            self[index].copy_(value)  # PyTorch's rule: a write into the view x[index]
            return
        data = self._data
        if type(data) is not _NDARRAY:
            index = _index_on(index, self)
            if value_t is not None:
                value = value_t.to(self.device, self.dtype)._data
            elif not isinstance(value, (Number, np.generic)):
                value = self._on_my_device(_from_data(value, _dt(data)))
            elif isinstance(value, np.generic):
                value = value.item()
            value_t = None
        _check_writable("setitem", data, region=data[index] if _has_repeats(data) else None)
        try:
            data[index] = value._data if value_t is not None else value
        except ValueError as e:
            raise RuntimeError(f"[setitem] {e}") from None
        self._vc[0] += 1


# ---- in-place helpers ----



def _no_reduce(reduce, op):
    if reduce is not None:
        raise NotImplementedError(f"[{op}] reduce={reduce!r} is not supported by fastdl")


def _kind_rank(dt: np.dtype) -> int:
    return {"b": 0, "u": 1, "i": 1, "f": 2}.get(dt.kind, 3)


def _check_inplace_cast(name, result: np.dtype, out: np.dtype):
    """PyTorch's rule: an in-place op may cast its result down within a kind (float64 into
    float32), never to a lower kind (float into int, int into bool)."""
    if _kind_rank(result) > _kind_rank(out):
        raise RuntimeError(
            f"[{name}] result type {torch_type_name(result)} can't be cast to the desired "
            f"output type {torch_type_name(out)}"
        )


def _check_inplace_shape(name, result_shape, out_shape):
    try:
        shape = np.broadcast_shapes(result_shape, out_shape)
    except ValueError:
        shape = result_shape
    if tuple(shape) != tuple(out_shape):
        raise RuntimeError(
            f"[{name}] output with shape {list(out_shape)} doesn't match the broadcast shape "
            f"{list(shape)}"
        )


def _has_repeats(data) -> bool:
    """Whether several elements of `data` are one memory location (an expanded tensor)."""
    # NOTE: NumPy gives empty arrays zero strides; an empty tensor has no elements to repeat.
    if type(data) is _NDARRAY:
        strides = data.strides
        if 0 not in strides:  # the common case, answered first
            return False
    elif isinstance(data, np.generic):
        return False  # one element
    else:
        strides = _strides(data)
    return (0 in strides and _numel(data) > 0
            and any(st == 0 and n > 1 for st, n in zip(strides, data.shape)))


def _numel(data) -> int:
    return data.size if type(data) is _NDARRAY else math.prod(data.shape)


def _check_writable(name, data: np.ndarray, repeats_ok=False, region=None):
    """PyTorch's rule for an in-place write: the memory is writable, and no two written
    elements (of `region`, the part written, when given) are one location (an expanded
    tensor), unless one value goes everywhere (fill_)."""
    written = data if region is None else region
    writable = data.flags.writeable if type(data) is _NDARRAY else _writable(data)
    if not writable or (not repeats_ok and _has_repeats(written)):
        _raise_read_only(name, written)


def _raise_read_only(name, data: np.ndarray):
    if _has_repeats(data):
        raise RuntimeError(
            f"[{name}] unsupported operation: more than one element of the written-to tensor "
            "refers to a single memory location (an expanded tensor); clone() it first"
        )
    raise RuntimeError(f"[{name}] the tensor's memory is read-only; clone() it first")


def _binary_into(name, data: np.ndarray, other, ufunc):
    """data <ufunc>= other in place, by PyTorch's dtype, shape and integer-division rules."""
    b = other._data if isinstance(other, Tensor) else other
    if isinstance(b, (list, tuple)):
        b = _from_data(b)
    if type(other) is Tensor and b.dtype == data.dtype:
        rt = data.dtype
    else:
        rt = _result_dtype(data, other)
    if ufunc is np.true_divide and rt.kind != "f":
        rt = float32
    if rt != data.dtype:
        _check_inplace_cast(name, rt, data.dtype)
    if ufunc in (np.floor_divide, np.remainder) and rt.kind in "iub":
        _check_int_divisor(name, b)
    try:
        ufunc(data, b, out=data, casting="unsafe")
    except ValueError:
        _check_inplace_shape(name, np.broadcast_shapes(data.shape, np.shape(b)), data.shape)
        raise


def _check_no_partial_overlap(name, out: np.ndarray, operand: np.ndarray):
    """PyTorch's rule: an operand may be the written tensor itself, but may not share only part
    of its memory (the result would depend on the order of the writes)."""
    if out is operand:
        return
    if type(out) is not _NDARRAY:
        lib = _devices.library(out)
        if type(operand) is type(out) and lib.may_share_memory(out, operand) and not (
            lib.data_ptr(out) == lib.data_ptr(operand)
            and _strides(out) == _strides(operand) and out.shape == operand.shape
        ):
            raise RuntimeError(
                f"[{name}] unsupported operation: some elements of the input tensor and the "
                "written-to tensor refer to a single memory location; clone() the input first"
            )
        return
    if out.base is None and operand.base is None:
        return  # one array, or two that each own their memory
    if not np.may_share_memory(out, operand):
        return
    same = (
        out.__array_interface__["data"][0] == operand.__array_interface__["data"][0]
        and out.strides == operand.strides and out.shape == operand.shape
    )
    if not same and np.shares_memory(out, operand):
        raise RuntimeError(
            f"[{name}] unsupported operation: some elements of the input tensor and the "
            "written-to tensor refer to a single memory location; clone() the input first"
        )


def _result_dtype(data: np.ndarray, other) -> np.dtype:
    """The dtype of `data <op> other` by PyTorch's promotion rules."""
    dtype = data.dtype
    if isinstance(other, Tensor):
        return _promote_arrays(data, other._data)
    if isinstance(other, (Number, np.generic)):
        return _scalar_dtype(other, dtype)
    return _promote(dtype, _from_data(other).dtype)


def _check_int_divisor(name, divisor):
    if type(divisor) is not _NDARRAY and hasattr(divisor, "shape"):
        zero = bool(_xp(divisor).any(divisor == 0))
    else:
        zero = bool(np.any(np.asarray(divisor) == 0))
    if zero:
        raise RuntimeError(f"[{name}] ZeroDivisionError: integer division by zero")


def _broadcast_value(name, value, shape):
    try:
        if type(value) is not _NDARRAY and hasattr(value, "device"):
            # the check only, for another device's array
            if np.broadcast_shapes(tuple(value.shape), tuple(shape)) != tuple(shape):
                raise ValueError("does not broadcast")
            return value
        return np.broadcast_to(value, shape)
    except ValueError:
        raise RuntimeError(
            f"[{name}] a value of shape {list(np.shape(value))} does not broadcast to the "
            f"tensor's shape {list(shape)}"
        ) from None


def _as_mask(mask, name) -> "Tensor":
    m = mask if isinstance(mask, Tensor) else Tensor._make(_from_data(mask))
    if _dt(m._data) != bool_:
        raise RuntimeError(f"[{name}] expected a bool mask, got dtype {_dt(m._data)}")
    return m


def _fill_value(value, dtype, name) -> "Tensor":
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                f"[{name}] only supports a 0-dimension value tensor, got one with "
                f"{value.ndim} dimensions"
            )
        return value if _dt(value._data) == dtype else value.to(dtype)
    if not isinstance(value, (Number, np.generic)):
        raise TypeError(f"[{name}] expected a number or a 0-d tensor, got {type(value).__name__}")
    return Tensor._make(np.asarray(value, dtype))


def _is_basic_index(index) -> bool:
    """Ints, slices, None and Ellipsis only: the index gives a view (PyTorch's and NumPy's)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(
        i is None or i is Ellipsis or isinstance(i, slice)
        or (isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)))
        for i in items
    )


def _bind_tensor_names() -> None:
    """The names this module takes from fastdl._tensor, which imports it first (called once,
    at the end of _tensor.py)."""
    from . import _tensor

    globals().update({name: getattr(_tensor, name) for name in _FROM_TENSOR})


_FROM_TENSOR = (
    "Tensor", "_check_bool_sub", "_from_data", "_index", "_index_on", "_promote_arrays",
    "_split_int_and_advanced",
)
# Placeholders until _bind_tensor_names() runs (no method runs before it does).
Tensor = _check_bool_sub = _from_data = _index = _index_on = _promote_arrays = None
_split_int_and_advanced = None
