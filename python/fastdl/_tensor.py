"""The Tensor: a NumPy array on the CPU, plus what autograd needs.

A tensor holds its storage in `_data` (a NumPy array), `requires_grad`, `grad` (a Tensor or
None) and, when an op produced it while recording, `_node`: the op that made it. Methods follow
PyTorch's names and semantics; the math lives in fastdl/_functions.py, one class per op.
Beside this file: the dtypes and promotion rules (_dtypes.py), devices and the storage helpers
(_storage.py), and the in-place methods with their checks (_inplace.py, a base class of Tensor).
"""

from __future__ import annotations

import builtins
import math
import warnings
from collections import namedtuple
from numbers import Number

import numpy as np

_NDARRAY = np.ndarray  # NOTE: one global lookup on the hot paths, not two
_F32 = np.dtype(np.float32)  # a native float32 array's dtype is this very object

from . import _devices
from ._errors import ArgumentError, torch_type_name
from . import _functions as fn
from .ops import tensor_ops as _tops
from .autograd import engine
from .autograd import function as function_module
from .autograd.grad_mode import _enabled as _grad_enabled
from .autograd.grad_mode import is_grad_enabled

from ._dtypes import (  # noqa: F401  (re-exported: fastdl's modules import them from here)
    dtype, _dtype_named, float32, float64, float16, int64, int32, int16, int8, uint8, bool_,
    SUPPORTED_DTYPES, _FASTDL_DTYPES, _PY_DTYPES, values_indices, as_dtype, _scalar_dtype,
    _promote,
)
from ._storage import (  # noqa: F401  (re-exported: fastdl's modules import them from here)
    device, _CPU, _device_type, _default_device, get_default_device, set_default_device,
    _to_device, _device_of, _storage, _dt, _host, _xp, _CPU_FUNCTIONS, _copy, _write, _writable,
    _strides, _as_device_dtype, _c_contiguous, _same_device, _has_float64,
)
from . import _inplace
from ._inplace import (  # noqa: F401  (re-exported: fastdl's modules import them from here)
    InPlaceOps, _no_reduce, _kind_rank, _check_inplace_cast, _check_inplace_shape, _has_repeats,
    _numel, _check_writable, _raise_read_only, _binary_into, _check_no_partial_overlap,
    _result_dtype, _check_int_divisor, _broadcast_value, _as_mask, _fill_value, _is_basic_index,
)

def _from_data(data, dtype=None) -> np.ndarray:
    """Build a NumPy array from nested sequences, numbers, arrays or Tensors (PyTorch's
    inference: Python floats -> float32, ints -> int64, bools -> bool). Another device's
    tensor gives its own storage (cast to `dtype` there)."""
    if isinstance(data, Tensor) and type(data._data) is not _NDARRAY:
        arr = data._data
        if dtype is not None:
            arr = _xp(arr).astype(arr, _as_device_dtype(arr, as_dtype(dtype)))
        return arr
    if isinstance(data, Tensor):
        arr = data._data
    elif isinstance(data, np.ndarray):
        arr = data
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
            data = [x._data if isinstance(x, Tensor) else x for x in data]
        try:
            arr = np.array(data)
        except ValueError as e:
            raise ValueError(f"[tensor] expected a rectangular nested sequence of numbers: {e}") from None
        if arr.dtype == np.float64 and not isinstance(data, np.generic) and not _has_float64(data):
            arr = arr.astype(np.float32)  # Python floats default to float32, as in PyTorch
    if arr.dtype.kind not in "fiub":
        raise TypeError(
            f"[tensor] expected numeric data (floats, ints or bools), got dtype {arr.dtype}"
        )
    if dtype is not None:
        arr = arr.astype(as_dtype(dtype))
    elif arr.dtype not in SUPPORTED_DTYPES:
        arr = arr.astype(np.float32 if arr.dtype.kind == "f" else np.int64)
    return arr


def _check_bool_sub(a, b):
    """PyTorch refuses subtraction with a bool tensor (it is almost always a mask mistake)."""
    if _dt(a._data) == np.bool_ or (isinstance(b, Tensor) and _dt(b._data) == np.bool_):
        raise RuntimeError(
            "[sub] subtraction, the `-` operator, with a bool tensor is not supported; use `^` "
            "or logical_xor() for two masks, `~` or logical_not() to invert one"
        )


def _promote_arrays(a: np.ndarray, b: np.ndarray) -> np.dtype:
    """PyTorch's result type of two tensors: a 0-d tensor does not change the dtype of one with
    dimensions unless it is of a higher category (bool < integer < float)."""
    da, db = _dt(a), _dt(b)
    if da == db:
        return da
    if (a.ndim == 0) == (b.ndim == 0):
        return _promote(da, db)
    dim, zero = (db, da) if a.ndim == 0 else (da, db)
    if dim.kind == "f":
        return dim
    if dim.kind == "b" or zero.kind == "f":
        return _promote(dim, zero)
    return dim


class Tensor(InPlaceOps):
    """A multi-dimensional array with autograd, PyTorch-style.

    >>> import fastdl
    >>> x = fastdl.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([[2., 4.],
            [6., 8.]])
    """

    # _vc: the storage's version counter, shared by every view and detach() of it.
    # _base: for a view, the tensor that owns its storage (None otherwise); _view_steps and
    # _view_src say how the view was made and from which history of the base (views only).
    __slots__ = (
        "_data", "_requires_grad", "grad", "_node", "_out_idx", "_vc", "_base", "_view_steps",
        "_view_src", "__weakref__", "__dict__",
    )
    __array_priority__ = 1000  # NumPy defers to Tensor's reflected operators

    def __init__(self, *args, dtype=None, requires_grad=False):
        # torch.Tensor(data), torch.Tensor(*sizes) or torch.Tensor(size): always float32
        # (a fresh tensor of sizes is zero-filled here, where PyTorch leaves it uninitialised).
        if not args:
            data = np.zeros((0,), np.float32)
        elif all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args):
            data = np.zeros(tuple(int(a) for a in args), np.float32)
        elif len(args) == 1 and isinstance(args[0], Size):
            data = np.zeros(tuple(args[0]), np.float32)
        elif len(args) == 1 and isinstance(args[0], (list, tuple, np.ndarray, Tensor)):
            data = args[0]
        elif len(args) == 1 and args[0] is None:
            data = np.zeros((0,), np.float32)
        else:
            raise TypeError(
                f"[Tensor] expected data (a sequence, array or tensor) or sizes (ints), got "
                f"{', '.join(type(a).__name__ for a in args)}"
            )
        if isinstance(data, Tensor) and type(data._data) is not _NDARRAY:
            data = _host(data._data)
        arr = _from_data(data, dtype)
        if dtype is None and arr.dtype != np.float32:
            arr = arr.astype(np.float32)  # torch.Tensor(...) is always float32
        self._init_leaf(_to_device(arr, _default_device[0]), requires_grad)

    def _init_leaf(self, data, requires_grad) -> None:
        """Makes this (new) object a leaf around the storage array `data` (Tensor's and
        Parameter's constructors; _make is the fast path for op results)."""
        self._data = data
        self._node = None
        self._out_idx = 0
        self._vc = [0]
        self._base = None
        self.grad = None
        self._requires_grad = False
        self.requires_grad = requires_grad

    @staticmethod
    def _make(data, node=None, out_idx=0):
        """A tensor around `data` (no copy), made by op `node` if given. The fast constructor."""
        t = _new(Tensor)
        t._data = data if type(data) is _NDARRAY else _storage(data)
        t._node = node
        t._out_idx = out_idx
        t._vc = [0]
        t._base = None
        t.grad = None
        t._requires_grad = node is not None
        return t

    # ---- properties ----

    @property
    def requires_grad(self) -> bool:
        if self._base is not None:
            fn.refresh_view(self)
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        value = bool(value)
        if self._node is not None and not value:
            raise RuntimeError(
                "[requires_grad] you can only change requires_grad flags of leaf tensors; "
                "use .detach() for a non-leaf"
            )
        if value and _dt(self._data).kind != "f":
            raise RuntimeError(
                f"[requires_grad] only floating point tensors can require gradients, got {_dt(self._data)}"
            )
        self._requires_grad = value

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        if self._base is not None:
            fn.refresh_view(self)
        return self._node

    @property
    def data(self) -> "Tensor":
        return Tensor._make(self._data)

    @data.setter
    def data(self, value):
        self._data = _from_data(value)

    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim=None):
        return self.shape if dim is None else self._data.shape[dim]

    @property
    def dtype(self) -> dtype:
        d = _dt(self._data)
        return _FASTDL_DTYPES[d] if d in _FASTDL_DTYPES else dtype(d, str(d))

    @property
    def device(self) -> device:
        return _device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return self._data.size

    nelement = numel

    def element_size(self) -> int:
        return _dt(self._data).itemsize

    def is_floating_point(self) -> bool:
        return _dt(self._data).kind == "f"

    def stride(self, dim=None):
        """Strides in elements, as PyTorch's (NumPy's byte strides / itemsize)."""
        strides = _strides(self._data)
        return strides if dim is None else strides[_dim(dim, self.ndim, "stride")]

    def data_ptr(self) -> int:
        data = self._data
        return data.ctypes.data if type(data) is _NDARRAY else _devices.library(data).data_ptr(data)

    def storage_offset(self) -> int:
        """Elements from the start of the base's memory (0 for a tensor that is no view)."""
        if self._base is None:
            return 0
        return (self.data_ptr() - self._base.data_ptr()) // self.element_size()

    def is_contiguous(self) -> bool:
        data = self._data
        if type(data) is _NDARRAY:
            return data.flags.c_contiguous
        return _c_contiguous(data.shape, _strides(data))

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    # ---- conversion ----

    def numpy(self) -> np.ndarray:
        if type(self._data) is not _NDARRAY:
            raise TypeError(
                f"[numpy] can't convert {self.device} device type tensor to numpy. Use "
                "Tensor.cpu() to copy the tensor to host memory first."
            )
        if self._requires_grad:
            raise RuntimeError(
                "[numpy] can't call numpy() on a tensor that requires grad; "
                "use tensor.detach().numpy()"
            )
        return self._data

    def __dlpack__(self, **kwargs):
        """The DLPack capsule of the storage (zero-copy, as PyTorch's): `torch.from_dlpack(t)`,
        `np.from_dlpack(t)` and `cupy.from_dlpack(t)` share this tensor's memory. Keyword
        arguments (stream, max_version, dl_device, copy) go to the storage's own __dlpack__."""
        if self._requires_grad:  # NOTE: BufferError, as PyTorch's (the DLPack protocol's error)
            raise BufferError(
                "[__dlpack__] can't export a tensor that requires grad; use tensor.detach()"
            )
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        """(DLPack device type, device index): (1, 0) on the CPU, (2, index) on a GPU."""
        return self._data.__dlpack_device__()

    def __array__(self, dtype=None, copy=None):
        data = self.numpy() if type(self._data) is not _NDARRAY else self._data
        return data if dtype is None else data.astype(dtype)

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"[item] a tensor with {self._data.size} elements cannot be converted to a scalar"
            )
        return _host(self._data).reshape(()).item()

    def tolist(self):
        return _host(self._data).tolist()

    def __format__(self, spec):
        """f"{loss:.4f}" formats a one-element tensor's value, as in PyTorch."""
        if self._data.ndim == 0 or (spec and self._data.size == 1):
            return format(self.item(), spec)
        if spec:
            raise TypeError(
                f"[format] unsupported format string {spec!r} for a tensor of shape "
                f"{list(self._data.shape)}; format .item() of a one-element tensor"
            )
        return repr(self)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"[bool] the truth value of a tensor with {self._data.size} elements is ambiguous"
            )
        return bool(_host(self._data).reshape(()).item())

    def __index__(self):
        if _dt(self._data).kind not in "iub" or self._data.size != 1:
            raise TypeError("[index] only integer tensors of a single element can be an index")
        return int(self.item())

    def detach(self) -> "Tensor":
        t = Tensor._make(self._data)
        t._vc = self._vc  # shares the storage, so its version too (PyTorch's rule)
        return t

    def detach_(self) -> "Tensor":
        self._node, self._requires_grad = None, False
        return self

    def clone(self) -> "Tensor":
        return _clone(self)

    def contiguous(self) -> "Tensor":
        if self.is_contiguous():
            return self
        if self._requires_grad and is_grad_enabled():
            return fn.Contiguous.apply(self)
        data = self._data
        if type(data) is _NDARRAY:
            return Tensor._make(np.ascontiguousarray(data))
        return Tensor._make(_devices.library(data).contiguous(data))

    def to(self, *args, dtype=None, device=None, copy=False, non_blocking=False):
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, (str, globals()["device"])):
                device = a
            else:
                dtype = a
        out = self
        if device is not None:
            out = self._to_device(device)
        if dtype is not None and as_dtype(dtype) != _dt(out._data):
            out = fn.Cast.apply(out, dtype=as_dtype(dtype))
        return _clone(out) if copy and out is self else out

    def _to_device(self, dev):
        target = _device_type(dev)
        if _devices.device_type_of(self._data) is target:
            return self
        return fn.ToDevice.apply(self, device=globals()["device"](dev))

    def type(self, dtype=None):
        if dtype is None:
            return f"fastdl.{torch_type_name(_dt(self._data))}Tensor"
        return self.to(dtype)

    def cpu(self):
        return self._to_device("cpu")

    def cuda(self, device=None, non_blocking=False):
        return self._to_device("cuda" if device is None else globals()["device"](
            f"cuda:{device}" if isinstance(device, int) else device
        ))

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def long(self):
        return self.to(int64)

    def int(self):
        return self.to(int32)

    def bool(self):
        return self.to(bool_)

    def half(self):
        raise TypeError("[half] float16 tensors are not supported by fastdl")

    # ---- autograd ----

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        if (
            gradient is None and inputs is None and not create_graph and self._base is None
            and self._requires_grad and self._data.size == 1
        ):  # the training loop's loss.backward(), kept short: engine.backward checks the rest
            data = self._data
            if type(data) is _NDARRAY:
                grad = np.ones(data.shape, data.dtype)
            else:
                grad = _xp(data).ones(data.shape, dtype=data.dtype, device=data.device)
            engine.run_backward([self], [grad], bool(retain_graph))
            return
        engine.backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def retain_grad(self):
        if self._base is not None:
            function_module.refresh(self)
        if not self._requires_grad:
            raise RuntimeError(
                "[retain_grad] can't retain_grad on Tensor that has requires_grad=False"
            )
        if self._node is not None:
            self._node.retain(self._out_idx, self)
            self._retains_grad = True

    _retains_grad = False

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    _hooks = None  # a leaf's tensor hooks (register_hook); a non-leaf's live on its node

    def register_hook(self, hook):
        """`hook(grad)` runs when the gradient for this tensor is computed; a non-None result
        replaces it. Returns a handle whose remove() unregisters the hook."""
        if self._base is not None:
            function_module.refresh(self)
        if not self._requires_grad:
            raise RuntimeError(
                "[register_hook] cannot register a hook on a tensor that doesn't require gradient"
            )
        if self._node is None:
            if self._hooks is None:
                self._hooks = {}
            hooks = self._hooks
        else:
            node = self._node
            if not node.hooks:
                node.hooks = {}
            hooks = node.hooks.setdefault(self._out_idx, {})
        return function_module.RemovableHandle(hooks, hook)

    _post_accumulate_hooks = None  # a leaf's register_post_accumulate_grad_hook hooks

    def register_post_accumulate_grad_hook(self, hook):
        """`hook(tensor)` runs once per backward on this leaf, after its .grad holds the
        backward's whole gradient (PyTorch's); its result is ignored. Returns a handle whose
        remove() unregisters the hook."""
        if self._base is not None:
            function_module.refresh(self)
        if self._node is not None:
            raise RuntimeError(
                "[register_post_accumulate_grad_hook] post accumulate grad hooks cannot be "
                "registered on non-leaf tensors"
            )
        if not self._requires_grad:
            raise RuntimeError(
                "[register_post_accumulate_grad_hook] cannot register a hook on a tensor that "
                "doesn't require gradient"
            )
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = {}
        engine.post_accumulate_hooks_seen = True
        return function_module.RemovableHandle(self._post_accumulate_hooks, hook)

    # ---- arithmetic ----

    def _operands(self, other, op):
        """(self, other) as tensors of one dtype on one device, by PyTorch's promotion rules
        (a number or NumPy value joins the tensor's device)."""
        data = self._data
        cpu = type(data) is _NDARRAY
        mine = data.dtype if cpu else _dt(data)
        if isinstance(other, Tensor):
            _same_device(op, self, other)
            dt = _promote_arrays(data, other._data)
        elif isinstance(other, (Number, np.generic)):
            dt = _scalar_dtype(other, mine)
            arr = np.array(other, dtype=dt)
            other = Tensor._make(arr if cpu else _to_device(arr, self.device))
            return (self if mine == dt else self.to(dt)), other
        elif isinstance(other, (np.ndarray, list, tuple)):
            other = Tensor._make(self._on_my_device(_from_data(other)))
            dt = _promote(mine, _dt(other._data))
        else:
            raise TypeError(f"[{op}] unsupported operand type {type(other).__name__}")
        a = self if mine == dt else self.to(dt)
        b = other if _dt(other._data) == dt else other.to(dt)
        return a, b

    def _on_my_device(self, arr: np.ndarray):
        """The NumPy array `arr` (from the caller's data) on this tensor's device."""
        if type(self._data) is _NDARRAY:
            return arr
        return _to_device(arr, self.device)

    def _binary(self, op_cls, other, name, reverse=False):
        da = self._data
        if type(other) is Tensor and type(other._data) is type(da) and other._data.dtype == da.dtype:
            # the common case: no promotion
            if type(da) is not _NDARRAY:
                _same_device(name, self, other)  # one array type, maybe two devices of it
            a, b = (other, self) if reverse else (self, other)
        else:
            a, b = self._operands(other, name)  # (checks the devices)
            if reverse:
                a, b = b, a
        direct = op_cls.direct
        try:
            if direct is not None and not (
                (a._requires_grad or b._requires_grad or a._base is not None or b._base is not None)
                and _grad_enabled.get()
            ):
                # Nothing to record: the op's direct function (Op.apply's no-graph path, inlined
                # for the hottest call in the library).
                return Tensor._make(direct(a._data, b._data))
            return op_cls.apply(a, b)
        except ValueError as e:
            raise RuntimeError(
                f"[{name}] shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast"
            ) from e

    def __add__(self, other):
        return self._binary(fn.Add, other, "add")

    def __radd__(self, other):
        return self._binary(fn.Add, other, "add", reverse=True)

    def __sub__(self, other):
        _check_bool_sub(self, other)
        return self._binary(fn.Sub, other, "sub")

    def __rsub__(self, other):
        _check_bool_sub(self, other)
        return self._binary(fn.Sub, other, "sub", reverse=True)

    def __mul__(self, other):
        return self._binary(fn.Mul, other, "mul")

    def __rmul__(self, other):
        return self._binary(fn.Mul, other, "mul", reverse=True)

    def _true_div(self, other, reverse=False):
        a, b = self._operands(other, "div")
        if _dt(a._data).kind != "f":
            a, b = a.to(float32), b.to(float32)
        if reverse:
            a, b = b, a
        return a._binary(fn.Div, b, "div")

    def __truediv__(self, other):
        return self._true_div(other)

    def __rtruediv__(self, other):
        return self._true_div(other, reverse=True)

    def _int_or_float_op(self, other, name, op_cls, ufunc, reverse=False):
        """floor_divide / remainder: integer division by zero raises (PyTorch's rule); on
        floats they are recorded ops."""
        a, b = self._operands(other, name)
        if reverse:
            a, b = b, a
        if _dt(a._data).kind in "iub":
            _check_int_divisor(name, b._data)
            if type(a._data) is _NDARRAY:
                return Tensor._make(ufunc(a._data, b._data))
            xp = _xp(a._data)
            f = xp.floor_divide if ufunc is np.floor_divide else xp.remainder
            return Tensor._make(f(a._data, b._data))
        if op_cls is fn.NoDerivative:
            return op_cls.apply(a, b, ufunc=ufunc)
        return op_cls.apply(a, b)

    def __floordiv__(self, other):
        return self._int_or_float_op(other, "floor_divide", fn.NoDerivative, np.floor_divide)

    def __rfloordiv__(self, other):
        return self._int_or_float_op(other, "floor_divide", fn.NoDerivative, np.floor_divide, True)

    def __mod__(self, other):
        return self._int_or_float_op(other, "remainder", fn.Remainder, np.mod)

    def __rmod__(self, other):
        # NOTE: PyTorch has no derivative for a number % tensor (backward raises).
        op = fn.Remainder if isinstance(other, Tensor) else fn.NoDerivative
        return self._int_or_float_op(other, "remainder", op, np.mod, True)

    def __pow__(self, exponent):
        if isinstance(exponent, (Number, np.generic)) and not isinstance(exponent, bool):
            kind = _dt(self._data).kind
            if kind != "f" and isinstance(exponent, float):
                return self.to(float32) ** exponent
            if kind == "b":
                return self.to(int64) ** exponent  # PyTorch: bool ** int is int64
            if kind in "iu" and exponent < 0:
                raise ArgumentError(
                    f"[pow] integers to negative integer powers are not allowed (exponent "
                    f"{exponent})"
                )
            return fn.PowScalar.apply(self, exponent=exponent)
        return self._binary(fn.Pow, exponent, "pow")

    def __rpow__(self, base):
        return self._binary(fn.Pow, base, "pow", reverse=True)

    def __neg__(self):
        if _dt(self._data) == np.bool_:
            raise RuntimeError(
                "[neg] negation, the `-` operator, on a bool tensor is not supported; use "
                "`~` or logical_not() instead"
            )
        return fn.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return self.abs()

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(Tensor._make(_from_data(other)), self)

    def _compare(self, other, name):
        """An elementwise comparison, `name` a function of the array API (equal, less, ...)."""
        data = self._data
        if (
            type(other) is Tensor and type(data) is _NDARRAY
            and type(other._data) is _NDARRAY and other._data.dtype == data.dtype
        ):
            return Tensor._make(_CPU_FUNCTIONS[name](data, other._data))
        a, b = self._operands(other, name)
        return Tensor._make(getattr(_xp(a._data), name)(a._data, b._data))

    def __eq__(self, other):
        return self._compare(other, "equal")

    def __ne__(self, other):
        return self._compare(other, "not_equal")

    def __lt__(self, other):
        return self._compare(other, "less")

    def __le__(self, other):
        return self._compare(other, "less_equal")

    def __gt__(self, other):
        return self._compare(other, "greater")

    def __ge__(self, other):
        return self._compare(other, "greater_equal")

    def __and__(self, other):
        return self._bitwise(other, "bitwise_and")

    def __or__(self, other):
        return self._bitwise(other, "bitwise_or")

    def __xor__(self, other):
        return self._bitwise(other, "bitwise_xor")

    def __rand__(self, other):
        return self.__and__(other)

    def __ror__(self, other):
        return self.__or__(other)

    def __rxor__(self, other):
        return self.__xor__(other)

    def _bitwise(self, other, name):
        a, b = self._operands(other, name)
        kind = _dt(a._data).kind
        if kind not in "iub":
            raise NotImplementedError(
                f"[{name}] expected integer or bool tensors, got {a.dtype}"
            )
        if kind == "b":  # the array API's bitwise functions take integers; bools are logical
            name = "logical_" + name[len("bitwise_"):]
        return Tensor._make(getattr(_xp(a._data), name)(a._data, b._data))

    def __invert__(self):
        kind = _dt(self._data).kind
        if kind not in "iub":
            raise NotImplementedError(
                f"[bitwise_not] expected an integer or bool tensor, got {self.dtype}"
            )
        data = self._data
        if type(data) is _NDARRAY:
            return Tensor._make(~data)
        xp = _xp(data)
        return Tensor._make(xp.logical_not(data) if kind == "b" else xp.bitwise_invert(data))

    __hash__ = object.__hash__

    add = __add__
    sub = __sub__
    mul = __mul__
    div = __truediv__
    matmul = __matmul__
    pow = __pow__
    neg = __neg__
    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def maximum(self, other):
        return self._binary(fn.Maximum, other, "maximum")

    def minimum(self, other):
        return self._binary(fn.Minimum, other, "minimum")

    # ---- unary ----

    def _float_input(self, op):
        data = self._data
        if (data.dtype if type(data) is _NDARRAY else _dt(data)).kind != "f":
            return self.to(float32)
        return self

    def exp(self):
        return fn.Exp.apply(self._float_input("exp"))

    def log(self):
        return fn.Log.apply(self._float_input("log"))

    def log1p(self):
        return fn.Log1p.apply(self._float_input("log1p"))

    def sqrt(self):
        return fn.Sqrt.apply(self._float_input("sqrt"))

    def rsqrt(self):
        return 1 / self.sqrt()

    def abs(self):
        return fn.Abs.apply(self)

    def sin(self):
        return fn.Sin.apply(self._float_input("sin"))

    def cos(self):
        return fn.Cos.apply(self._float_input("cos"))

    def square(self):
        return self * self

    def reciprocal(self):
        return 1 / self

    def sign(self):
        return fn.Sign.apply(self)

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise RuntimeError("[clamp] at least one of min or max must be given")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            return _tops.clamp(self, min, max)
        x = self
        if _dt(x._data).kind != "f" and any(isinstance(b, float) for b in (min, max)):
            x = x.to(float32)  # PyTorch's promotion: an int tensor with a float bound is float
        return fn.Clamp.apply(x, lo=min, hi=max)

    clip = clamp

    def _activation(self, op_cls, name):
        data = self._data
        x = self if type(data) is _NDARRAY and data.dtype is _F32 else self._float_input(name)
        if (x._requires_grad or x._base is not None) and _grad_enabled.get():
            return op_cls.apply(x)
        return Tensor._make(op_cls.direct(x._data))  # Op.apply's no-graph path, inlined

    def relu(self):
        return self._activation(fn.ReLU, "relu")

    def sigmoid(self):
        return self._activation(fn.Sigmoid, "sigmoid")

    def tanh(self):
        return self._activation(fn.Tanh, "tanh")

    def softmax(self, dim):
        return fn.Softmax.apply(self._float_input("softmax"), dim=_dim(dim, self.ndim, "softmax"))

    def log_softmax(self, dim):
        return fn.LogSoftmax.apply(
            self._float_input("log_softmax"), dim=_dim(dim, self.ndim, "log_softmax")
        )

    # ---- reduce ----

    def sum(self, dim=None, keepdim=False, dtype=None):
        x = self if dtype is None else self.to(dtype)
        if _dt(x._data).kind in "iub" and dtype is None:
            x = x.to(int64)  # PyTorch's rule: integer and bool sums are int64
        return fn.Sum.apply(x, dim=_dims(dim, self.ndim, "sum"), keepdim=keepdim)

    def prod(self, dim=None, keepdim=False, dtype=None):
        x = self if dtype is None else self.to(dtype)
        if _dt(x._data).kind in "iub" and dtype is None:
            x = x.to(int64)  # PyTorch's rule: integer and bool products are int64
        d = None if dim is None else _dim(dim, self.ndim, "prod")
        return fn.Prod.apply(x, dim=d, keepdim=keepdim)

    def mean(self, dim=None, keepdim=False, dtype=None):
        x = self if dtype is None else self.to(dtype)
        if _dt(x._data).kind != "f":
            raise RuntimeError(
                f"[mean] expected a floating point input (or dtype=), got {_dt(x._data)}"
            )
        return fn.Mean.apply(x, dim=_dims(dim, self.ndim, "mean"), keepdim=keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return fn.Var.apply(
            self._float_input("var"), dim=_dims(dim, self.ndim, "var"), correction=correction,
            keepdim=keepdim,
        )

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def _check_reduced_not_empty(self, dims, name):
        """PyTorch's rule for max/min/argmax and friends: the reduced dims must not be empty
        (other dims may be: the result is then empty too)."""
        if dims is None:
            if self._data.size == 0:
                raise RuntimeError(
                    f"[{name}] expected a non-empty tensor (or a dim to reduce), got shape "
                    f"{tuple(self.shape)}"
                )
            return
        for d in dims if isinstance(dims, tuple) else (dims,):
            if self.ndim and self._data.shape[d] == 0:
                raise RuntimeError(
                    f"[{name}] expected reduction dim {d} to have non-zero size, got shape "
                    f"{tuple(self.shape)}"
                )

    def _max_min(self, dim, keepdim, is_max, name):
        if dim is None:
            self._check_reduced_not_empty(None, name)
            return fn.MaxMin.apply(self, dim=None, keepdim=False, is_max=is_max)
        if isinstance(dim, Tensor):
            return self.maximum(dim) if is_max else self.minimum(dim)
        d = _dim(dim, self.ndim, name)
        self._check_reduced_not_empty(d, name)
        values = fn.MaxMinDim.apply(self, dim=d, keepdim=keepdim, is_max=is_max)
        return values_indices(values, self._arg(is_max, d, keepdim))

    def _arg(self, is_max, dim, keepdim):
        """argmax/argmin (of the flattened tensor when dim is None) as int64."""
        data = self._data
        xp = _xp(data)
        if dim is None:
            data = xp.reshape(data, (-1,))
            dim = 0
        idx = (xp.argmax if is_max else xp.argmin)(data, axis=dim, keepdims=keepdim)
        return Tensor._make(xp.astype(idx, _as_device_dtype(data, np.dtype(np.int64))))

    def max(self, dim=None, keepdim=False):
        return self._max_min(dim, keepdim, True, "max")

    def min(self, dim=None, keepdim=False):
        return self._max_min(dim, keepdim, False, "min")

    def amax(self, dim=None, keepdim=False):
        """max over dims (one or several); ties share the gradient evenly, as in PyTorch."""
        return self._amax_amin(dim, keepdim, True, "amax")

    def amin(self, dim=None, keepdim=False):
        return self._amax_amin(dim, keepdim, False, "amin")

    def _amax_amin(self, dim, keepdim, is_max, name):
        if dim is None or dim == ():
            self._check_reduced_not_empty(None, name)
            return self.max() if is_max else self.min()
        dims = _dims(dim, self.ndim, name)
        dims = dims if isinstance(dims, tuple) else (dims,)
        self._check_reduced_not_empty(dims, name)
        return fn.AMaxMin.apply(self, dims=dims, keepdim=keepdim, is_max=is_max)

    def argmax(self, dim=None, keepdim=False):
        if dim is None:
            self._check_reduced_not_empty(None, "argmax")
            return self._arg(True, None, False)
        d = _dim(dim, self.ndim, "argmax")
        self._check_reduced_not_empty(d, "argmax")
        return self._arg(True, d, keepdim)

    def argmin(self, dim=None, keepdim=False):
        if dim is None:
            self._check_reduced_not_empty(None, "argmin")
            return self._arg(False, None, False)
        d = _dim(dim, self.ndim, "argmin")
        self._check_reduced_not_empty(d, "argmin")
        return self._arg(False, d, keepdim)

    def logsumexp(self, dim, keepdim=False):
        return fn.LogSumExp.apply(
            self._float_input("logsumexp"), dim=_dims(dim, self.ndim, "logsumexp"), keepdim=keepdim
        )

    def all(self, dim=None, keepdim=False):
        """True where every element (along `dim`) is non-zero; True over an empty tensor."""
        axes = None if dim is None else _dims(dim, self.ndim, "all")
        return Tensor._make(_xp(self._data).all(self._data, axis=axes, keepdims=keepdim))

    def any(self, dim=None, keepdim=False):
        """True where some element (along `dim`) is non-zero; False over an empty tensor."""
        axes = None if dim is None else _dims(dim, self.ndim, "any")
        return Tensor._make(_xp(self._data).any(self._data, axis=axes, keepdims=keepdim))

    # ---- movement ----

    def reshape(self, *shape):
        """A view when the strides allow one, else a copy (PyTorch's rule)."""
        new_shape = _resolve_shape(_shape_arg(shape), self._data.size, "reshape")
        return fn.Reshape.apply(self, shape=new_shape)

    def view(self, *shape):
        """Always a view: raises where the strides allow none (use reshape, which copies)."""
        new_shape = _resolve_shape(_shape_arg(shape), self._data.size, "view")
        out = fn.Reshape.apply(self, shape=new_shape)
        if out._base is None and out._data.size:
            raise RuntimeError(
                f"[view] view size is not compatible with input tensor's size and stride (at "
                f"least one dimension spans across two contiguous subspaces): shape "
                f"{list(self._data.shape)} to {list(out._data.shape)}. Use .reshape(...) instead."
            )
        return out

    def view_as(self, other):
        return self.view(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def select(self, dim, index):
        d = _dim(dim, self.ndim, "select")
        n = self._data.shape[d]
        if not -n <= index < n:
            raise IndexError(f"[select] index {index} is out of range for dim {dim} of size {n}")
        return self[(slice(None),) * d + (int(index),)]

    def diagonal(self, offset=0, dim1=0, dim2=1):
        """The diagonal (of dims dim1, dim2) as the last dim: a view, as PyTorch's."""
        if self.ndim < 2:
            raise RuntimeError(f"[diagonal] expected a tensor with >= 2 dims, got {self.ndim}")
        d1, d2 = _dim(dim1, self.ndim, "diagonal"), _dim(dim2, self.ndim, "diagonal")
        if d1 == d2:
            raise RuntimeError(f"[diagonal] dim1 and dim2 must differ, both are {dim1}")
        return fn.Diagonal.apply(self, offset=int(offset), dim1=d1, dim2=d2)

    def narrow(self, dim, start, length):
        d = _dim(dim, self.ndim, "narrow")
        n = self._data.shape[d]
        start = int(start) + (n if start < 0 else 0)
        if not (0 <= start <= n and 0 <= length and start + length <= n):
            raise IndexError(
                f"[narrow] start {start} and length {length} are out of range for dim {dim} "
                f"of size {n}"
            )
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def flatten(self, start_dim=0, end_dim=-1):
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        s, e = _dim(start_dim, nd, "flatten"), _dim(end_dim, nd, "flatten")
        if s > e:
            raise RuntimeError(f"[flatten] start_dim {start_dim} must not come after end_dim {end_dim}")
        shape = self._data.shape
        return self.reshape(shape[:s] + (int(np.prod(shape[s : e + 1])),) + shape[e + 1 :])

    def unflatten(self, dim, sizes):
        d = _dim(dim, self.ndim, "unflatten")
        shape = self._data.shape
        return self.reshape(shape[:d] + tuple(sizes) + shape[d + 1 :])

    def squeeze(self, dim=None):
        shape = self._data.shape
        if dim is None:
            new = tuple(s for s in shape if s != 1)
        else:
            dims = {_dim(d, self.ndim, "squeeze") for d in ((dim,) if isinstance(dim, int) else dim)}
            new = tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1))
        return self.reshape(new)

    def unsqueeze(self, dim):
        d = _dim(dim, self.ndim + 1, "unsqueeze")
        shape = self._data.shape
        return self.reshape(shape[:d] + (1,) + shape[d:])

    def permute(self, *dims):
        dims = _shape_arg(dims)
        if sorted(_dim(d, self.ndim, "permute") for d in dims) != list(range(self.ndim)):
            raise RuntimeError(
                f"[permute] dims {tuple(dims)} are not a permutation of {self.ndim} dimensions"
            )
        return fn.Permute.apply(self, dims=tuple(_dim(d, self.ndim, "permute") for d in dims))

    def transpose(self, dim0, dim1):
        dims = list(range(self.ndim))
        a, b = _dim(dim0, self.ndim, "transpose"), _dim(dim1, self.ndim, "transpose")
        dims[a], dims[b] = dims[b], dims[a]
        return fn.Permute.apply(self, dims=tuple(dims))

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"[t] expects a tensor with <= 2 dimensions, got {self.ndim}")
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        if self.ndim < 2:
            raise ArgumentError(
                f"[mT] tensor.mT is only supported on matrices or batches of matrices; got a "
                f"{self.ndim}-D tensor"
            )
        return self.transpose(-2, -1)

    def expand(self, *sizes):
        sizes = _shape_arg(sizes)
        extra = len(sizes) - self.ndim
        shape = tuple(
            self._data.shape[i - extra] if s == -1 else s for i, s in enumerate(sizes)
        )
        try:
            np.broadcast_shapes(self._data.shape, shape)
        except ValueError:
            raise RuntimeError(
                f"[expand] shape {tuple(self._data.shape)} can't expand to {tuple(sizes)}"
            ) from None
        return fn.Expand.apply(self, shape=shape)

    def expand_as(self, other):
        return self.expand(other.shape)

    def __getitem__(self, index):
        index = _index(index)
        split = _split_int_and_advanced(index)
        if split is not None:  # PyTorch applies the ints first: x[0, :, [1, 2]] is (3, 2)
            return self[split[0]][split[1]]
        if type(self._data) is not _NDARRAY:
            index = _index_on(index, self)
        try:
            return fn.Index.apply(self, index=index)
        except IndexError as e:
            raise IndexError(f"[index] {e} (tensor of shape {list(self._data.shape)})") from None

    # ---- tensor ops (the Op classes and argument checks live in fastdl/ops/tensor_ops.py) ----

    def split(self, split_size, dim=0):
        return _tops.split(self, split_size, dim)

    def chunk(self, chunks, dim=0):
        return _tops.chunk(self, chunks, dim)

    def unbind(self, dim=0):
        return _tops.unbind(self, dim)

    def index_select(self, dim, index):
        return _tops.index_select(self, dim, index)

    def gather(self, dim, index, *, sparse_grad=False):
        return _tops.gather(self, dim, index)

    def scatter(self, dim, index, src=None, value=None, *, reduce=None):
        _no_reduce(reduce, "scatter")
        return _tops.scatter(self, dim, index, src, value)

    def scatter_(self, dim, index, src=None, value=None, *, reduce=None):
        _no_reduce(reduce, "scatter_")
        return _tops.scatter_(self, dim, index, src, value)

    def scatter_add(self, dim, index, src):
        return _tops.scatter(self, dim, index, src, add=True, op="scatter_add")

    def scatter_add_(self, dim, index, src):
        return _tops.scatter_(self, dim, index, src, add=True, op="scatter_add_")

    def masked_select(self, mask):
        return _tops.masked_select(self, mask)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        return _tops.topk(self, k, dim, largest, sorted)

    def sort(self, dim=-1, descending=False, stable=False):
        return _tops.sort(self, dim, descending, stable)

    def argsort(self, dim=-1, descending=False, stable=False):
        return _tops.argsort(self, dim, descending, stable)

    def cumsum(self, dim, dtype=None):
        return _tops.cumsum(self, dim, dtype)

    def cumprod(self, dim, dtype=None):
        return _tops.cumprod(self, dim, dtype)

    def repeat(self, *sizes):
        return _tops.repeat(self, *sizes)

    def tile(self, *dims):
        return _tops.tile(self, *dims)

    def flip(self, *dims):
        return _tops.flip(self, *dims)

    def roll(self, shifts, dims=None):
        return _tops.roll(self, shifts, dims)

    def tril(self, diagonal=0):
        return _tops.tril(self, diagonal)

    def triu(self, diagonal=0):
        return _tops.triu(self, diagonal)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        return _tops.norm(self, p, dim, keepdim, dtype)

    def bmm(self, mat2):
        return _tops.bmm(self, mat2)

    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return _tops.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def isnan(self):
        return _tops.isnan(self)

    def isinf(self):
        return _tops.isinf(self)

    def isfinite(self):
        return _tops.isfinite(self)

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return _tops.isclose(self, other, rtol, atol, equal_nan)

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return _tops.allclose(self, other, rtol, atol, equal_nan)

    def equal(self, other):
        return _tops.equal(self, other)

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        return _tops.unique(self, sorted, return_inverse, return_counts, dim)

    def lerp(self, end, weight):
        return _tops.lerp(self, end, weight)

    # ---- misc ----

    def __repr__(self):
        extras = []
        if type(self._data) is not _NDARRAY:
            extras.append(f"device='{self.device}'")
        if _dt(self._data) not in (float32, int64, bool_):
            extras.append(f"dtype=fastdl.{_dt(self._data)}")
        if self._node is not None:
            extras.append(f"grad_fn=<{type(self._node).__name__}Backward>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + _format_array(_host(self._data)) + "".join(", " + e for e in extras) + ")"

    def __reduce_ex__(self, protocol):
        if type(self._data) is not _NDARRAY:
            return (_rebuild, (_host(self._data), self._requires_grad, str(self.device)))
        return (_rebuild, (self._data, self._requires_grad))


def _format_array(a: np.ndarray) -> str:
    """PyTorch's print style: integral floats as `1.`, others with 4 decimals, scientific
    notation when the magnitudes span more than 1000x or leave [1e-4, 1e8)."""
    kwargs = dict(separator=", ", prefix="tensor(", threshold=1000, edgeitems=3)
    if a.dtype.kind != "f" or a.size == 0:
        return np.array2string(a, **kwargs)
    finite = np.abs(a[np.isfinite(a)])
    if finite.size == 0:
        return np.array2string(a, **kwargs)
    if np.all(finite == np.round(finite)) and finite.max() < 1e8:
        return np.array2string(a, precision=0, floatmode="fixed", **kwargs)
    nonzero = finite[finite > 0]
    lo, hi = (nonzero.min(), nonzero.max()) if nonzero.size else (0.0, 0.0)
    sci = nonzero.size and (hi / lo > 1000 or hi >= 1e8 or lo < 1e-4)
    fmt = (lambda v: f"{v:.4e}") if sci else (lambda v: f"{v:.4f}")
    return np.array2string(a, formatter={"float_kind": fmt}, **kwargs)


_new = object.__new__
# The autograd layer builds tensors through this constructor.
function_module._make = Tensor._make


def _rebuild(data, requires_grad, device=None):
    t = Tensor._make(_to_device(data, device))  # a fresh storage and version counter
    t._requires_grad = requires_grad
    return t


def _clone(t: Tensor) -> Tensor:
    """A differentiable copy (Cast to the same dtype copies, and its backward passes g on)."""
    if t._requires_grad and is_grad_enabled():
        return fn.Cast.apply(t, dtype=_dt(t._data))
    return Tensor._make(_copy(t._data))  # clone keeps the layout, as PyTorch's


class Size(tuple):
    """A tensor's shape: a tuple, as torch.Size."""

    def numel(self):
        return int(np.prod(self))

    def __repr__(self):
        return f"fastdl.Size([{', '.join(str(s) for s in self)}])"


def _dim(dim, ndim, op) -> int:
    n = max(ndim, 1)
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"[{op}] dim must be an int, got {type(dim).__name__}")
    if not -n <= dim < n:
        raise IndexError(f"[{op}] dim {dim} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % n


def _dims(dim, ndim, op):
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        return tuple(_dim(d, ndim, op) for d in dim)
    return _dim(dim, ndim, op)


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
        return tuple(shape[0])
    return tuple(int(s) if isinstance(s, Tensor) else s for s in shape)


def _resolve_shape(shape, size, op):
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise RuntimeError(f"[{op}] only one dimension can be -1, got {shape}")
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1]))
        if known == 0 or size % known:
            raise RuntimeError(f"[{op}] shape {shape} is invalid for input of size {size}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    if any(s < 0 for s in shape) or int(np.prod(shape)) != size:
        raise RuntimeError(f"[{op}] shape {shape} is invalid for input of size {size}")
    return shape


def _index(index):
    """Tensors inside an index become arrays (bool masks and int64 index lists alike)."""
    if isinstance(index, Tensor):
        return _index_array(index._data)
    if isinstance(index, tuple):
        return tuple(_index_array(i._data) if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return _index_array(np.asarray(index))
    return index


def _index_array(a):
    dt = _dt(a)
    if dt == np.uint8:
        warnings.warn(
            "indexing with dtype uint8 is deprecated, please use a dtype bool instead",
            UserWarning, stacklevel=4,
        )
        # PyTorch reads a uint8 index as a mask
        return a.astype(bool) if type(a) is _NDARRAY else _xp(a).astype(
            a, _as_device_dtype(a, np.dtype(np.bool_))
        )
    if dt.kind not in "iub":
        raise IndexError(
            f"[index] tensors used as indices must be long, int, byte or bool tensors, got {dt}"
        )
    return a


def _index_on(index, t):
    """`index` for tensor `t`'s storage: on another device, its arrays (NumPy's, or a CPU
    tensor's, as PyTorch allows for a CUDA tensor) move to that device, and a tuple that does
    not name every dim gets the trailing Ellipsis the array API asks for."""
    if type(t._data) is _NDARRAY:
        return index
    dev = t.device

    def move(i):
        if isinstance(i, (np.ndarray, list)) or (
            type(i) in _devices._BY_ARRAY_TYPE and i.device != t._data.device
        ):
            return _to_device(np.asarray(i) if isinstance(i, list) else _host(i), dev)
        return i

    items = tuple(move(i) for i in index) if isinstance(index, tuple) else (move(index),)
    items = _clamp_slices(items, t._data.shape)
    basic = all(i is None or isinstance(i, (int, slice)) for i in items)  # no Ellipsis, no arrays
    if basic and sum(i is not None for i in items) < t.ndim:
        items += (Ellipsis,)
    return items


def _clamp_slices(items, shape):
    """Slices with starts and stops clamped to their dims (NumPy's and PyTorch's reading of
    x[5:] on a dim of 3, which the array API leaves unspecified), up to the first Ellipsis or
    index array."""
    out, dim = [], 0
    for k, i in enumerate(items):
        if isinstance(i, slice) and (i.step is None or i.step > 0) and dim < len(shape):
            i = slice(*i.indices(shape[dim]))
        elif not (i is None or isinstance(i, (int, slice))):
            return tuple(out) + tuple(items[k:])
        out.append(i)
        dim += i is not None
    return tuple(out)


def _is_advanced(i) -> bool:
    return isinstance(i, (np.ndarray, list)) or type(i) in _devices._BY_ARRAY_TYPE


def _split_int_and_advanced(index):
    """(ints part, rest) when an index mixes ints with advanced indices, else None. NumPy moves
    the advanced dims first when a slice separates them; PyTorch applies each int first as a
    select, so the int and the arrays are never "separated"."""
    if not isinstance(index, tuple) or not any(_is_advanced(i) for i in index):
        return None
    is_int = [
        isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) for i in index
    ]
    if not any(is_int):
        return None
    first = tuple(i if it or i is None or i is Ellipsis else slice(None) for i, it in zip(index, is_int))
    rest = tuple(slice(None) if i is None else i for i, it in zip(index, is_int) if not it)
    return first, rest


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy/PyTorch broadcasting rules (`a @ b`)."""
    if not isinstance(b, Tensor):
        b = Tensor._make(a._on_my_device(_from_data(b)))
    _same_device("matmul", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError("[matmul] both arguments need at least 1 dimension, got a 0-d tensor")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise RuntimeError(
            f"[matmul] shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
            f"({ka} != {kb})"
        )
    if a.ndim > 2 and b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise RuntimeError(
                f"[matmul] batch dims of {tuple(a.shape)} and {tuple(b.shape)} do not broadcast"
            ) from None
    if _dt(a._data) != _dt(b._data):  # PyTorch's rule: no promotion inside matmul
        raise RuntimeError(
            f"[matmul] expected both operands to have the same dtype, got {a.dtype} and {b.dtype}"
        )
    if _dt(a._data).kind != "f":
        return Tensor._make(_xp(a._data).matmul(a._data, b._data))
    return fn.MatMul.apply(a, b)


_inplace._bind_tensor_names()
