"""The Tensor: a NumPy array on the CPU, plus what autograd needs.

A tensor holds its storage in `_data` (a NumPy array), `requires_grad`, `grad` (a Tensor or
None) and, when an op produced it while recording, `_node`: the op that made it. Methods follow
PyTorch's names and semantics; the math lives in fastdl/_functions.py, one class per op.
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

class dtype:
    """A tensor's element type, as `torch.dtype`: `fastdl.float32`, `fastdl.int64`, ...

    It prints as `fastdl.float32`, compares equal to the NumPy dtype it stands for (and to
    NumPy's type objects and names: `fastdl.float32 == np.float32`), hashes like it, and
    NumPy accepts it wherever a dtype goes (`np.zeros(3, fastdl.float32)`).
    """

    __slots__ = ("dtype", "_name", "kind", "itemsize")

    def __init__(self, np_dtype, name: str):
        self.dtype = np.dtype(np_dtype)  # NumPy reads this attribute to convert it
        self._name = name
        self.kind, self.itemsize = self.dtype.kind, self.dtype.itemsize  # read often: no lookup

    @property
    def is_floating_point(self) -> bool:
        return self.dtype.kind == "f"

    @property
    def is_complex(self) -> bool:
        return False

    @property
    def is_signed(self) -> bool:
        return self.dtype.kind in "fi"

    def __getattr__(self, name):  # kind, char, type, ...: NumPy's
        return getattr(object.__getattribute__(self, "dtype"), name)

    def __eq__(self, other):
        if isinstance(other, dtype):
            return self.dtype == other.dtype
        try:
            return self.dtype == np.dtype(other)
        except TypeError:
            return False

    def __hash__(self):
        return hash(self.dtype)

    def __repr__(self):
        return f"fastdl.{self._name}"

    __str__ = __repr__

    def __reduce__(self):
        return (_dtype_named, (self._name,))


def _dtype_named(name: str) -> dtype:
    return globals()[name]


float32 = dtype(np.float32, "float32")
float64 = dtype(np.float64, "float64")
float16 = dtype(np.float16, "float16")
int64 = dtype(np.int64, "int64")
int32 = dtype(np.int32, "int32")
int16 = dtype(np.int16, "int16")
int8 = dtype(np.int8, "int8")
uint8 = dtype(np.uint8, "uint8")
bool_ = dtype(np.bool_, "bool")
SUPPORTED_DTYPES = (float32, float64, int64, int32, int16, int8, uint8, bool_)
# The fastdl dtype of each NumPy dtype a tensor can hold.
_FASTDL_DTYPES = {d.dtype: d for d in SUPPORTED_DTYPES + (float16,)}

_PY_DTYPES = {builtins.float: float32, builtins.int: int64, builtins.bool: bool_}

values_indices = namedtuple("values_indices", ["values", "indices"])


def as_dtype(spec) -> np.dtype:
    """The NumPy dtype of a fastdl dtype (or NumPy dtype, or Python's float/int/bool, which map
    as in PyTorch)."""
    if spec in _PY_DTYPES:
        return _PY_DTYPES[spec].dtype
    try:
        d = np.dtype(spec)
    except TypeError:
        raise TypeError(f"[dtype] expected a dtype such as fastdl.float32, got {spec!r}") from None
    if d not in SUPPORTED_DTYPES:
        raise TypeError(
            f"[dtype] unsupported dtype {_FASTDL_DTYPES.get(d, d)}; supported: "
            f"{[str(x) for x in SUPPORTED_DTYPES]}"
        )
    return d


class device:
    """Where a tensor lives: "cpu", or "cuda" (with its backend). A device type registered in
    fastdl._devices (a test device) is accepted too."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index
        kind, _, idx = str(spec).partition(":")
        if kind not in ("cpu", "cuda") and kind not in _devices.DEVICE_TYPES:
            raise RuntimeError(
                f"[device] expected a device type such as 'cpu' or 'cuda', got {spec!r}"
            )
        try:
            self.type, self.index = kind, int(idx) if idx else index
        except ValueError:
            raise RuntimeError(f"[device] invalid device string {spec!r}") from None

    def __eq__(self, other):
        try:
            other = device(other)
        except (RuntimeError, TypeError):
            return False
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self):
        return hash((self.type, self.index or 0))

    def __repr__(self):
        return f"device(type='{self.type}')" if self.index is None else (
            f"device(type='{self.type}', index={self.index})"
        )

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"


_CPU = device("cpu")


def _device_type(dev) -> "_devices.DeviceType":
    """The registered device type of `dev` (a device, or a string like "cuda:0"), or
    PyTorch's error when this fastdl cannot use it."""
    d = device(dev)
    device_type = _devices.DEVICE_TYPES.get(d.type)
    if device_type is None:
        raise RuntimeError(
            f"[to] device {d} is not available: this fastdl has no CUDA backend "
            "(fastdl.cuda.is_available() is False)"
        )
    return device_type


_default_device = [None]  # None: the CPU (set_default_device)


def get_default_device() -> device:
    """The device that functions making tensors use when not given one (PyTorch's)."""
    return _default_device[0] or _CPU


def set_default_device(dev) -> None:
    """Make tensors on `dev` by default (None or "cpu": the CPU), as torch.set_default_device.
    from_numpy still shares the NumPy array's memory on the CPU."""
    if dev is None or device(dev).type == "cpu":
        _default_device[0] = None
        return
    _device_type(dev)  # refuses a device this fastdl cannot use
    _default_device[0] = device(dev)


def _to_device(arr, dev):
    """`arr` (any device's storage) on device `dev` (a copy unless it is there already)."""
    if dev is None:
        return arr
    target = _device_type(dev)
    source = _devices.device_type_of(arr)
    if source is target:
        return arr
    host = source.lib.to_numpy(arr)
    return host if target is _devices.CPU else target.lib.from_numpy(host, device(dev).index)


def _device_of(data) -> device:
    if type(data) is _NDARRAY:
        return _CPU
    device_type = _devices.device_type_of(data)
    return device(device_type.name, device_type.lib.device_index(data))


def _storage(data):
    """`data` as a tensor's storage: a registered device's array as it is, anything else (a
    NumPy scalar an op returned) as a NumPy array."""
    if type(data) in _devices._BY_ARRAY_TYPE:
        return data
    return np.asarray(data)


def _dt(data) -> np.dtype:
    """The NumPy dtype (fastdl's dtype identity) of storage `data`, on any device."""
    return data.dtype if type(data) is _NDARRAY else _devices.np_dtype(data)


def _host(data) -> np.ndarray:
    """Storage `data` as a NumPy array (itself on the CPU, a copy from another device): for
    printing and for Python values (item, tolist), never for math."""
    return data if type(data) is _NDARRAY else _devices.library(data).to_numpy(data)


def _xp(data):
    return _devices.namespace(data)


# The CPU namespace's comparisons, looked up once (the hot path of `x == y` and friends).
_CPU_FUNCTIONS = {
    name: getattr(_devices.CPU_XP, name)
    for name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
}


def _copy(data):
    """A copy of storage `data` in fresh memory, on its device (keeping NumPy's layout)."""
    if type(data) is _NDARRAY:
        return data.copy(order="K")
    return _xp(data).asarray(data, copy=True)


def _write(data, value):
    """Write `value` (an array of the same device, or a number) into storage `data`, cast to
    its dtype and broadcast to its shape (np.copyto with casting="unsafe")."""
    if type(data) is _NDARRAY:
        np.copyto(data, value, casting="unsafe")
        return
    xp = _xp(data)
    if hasattr(value, "shape"):
        value = xp.broadcast_to(xp.astype(value, data.dtype), data.shape)
    data[...] = value


def _writable(data) -> bool:
    return data.flags.writeable if type(data) is _NDARRAY else _devices.library(data).writable(data)


def _strides(data) -> tuple:
    """Strides in elements (PyTorch's)."""
    if type(data) is _NDARRAY:
        return tuple(st // data.itemsize for st in data.strides)
    return _devices.library(data).strides(data)


def _as_device_dtype(data, np_dtype):
    """The dtype object of `data`'s array library for the NumPy dtype `np_dtype`."""
    return np_dtype if type(data) is _NDARRAY else _devices.library(data).dtype(np_dtype)


def _c_contiguous(shape, strides) -> bool:
    """Whether `strides` (in elements) lay out `shape` in C order (size-1 dims: any stride)."""
    expected = 1
    for n, st in zip(reversed(shape), reversed(strides)):
        if n != 1 and st != expected:
            return False
        expected *= n
    return True


def _same_device(op, a, b):
    """PyTorch's error when an op mixes tensors of two devices."""
    if type(a._data) is not type(b._data) or (
        type(a._data) is not _NDARRAY and a.device != b.device
    ):
        raise RuntimeError(
            f"[{op}] Expected all tensors to be on the same device, but found at least two "
            f"devices, {a.device} and {b.device}!"
        )


def _has_float64(data) -> bool:
    """Whether a nested sequence holds a float64 NumPy value or array (PyTorch then infers
    float64; Python floats alone give float32)."""
    if isinstance(data, (list, tuple)):
        return any(_has_float64(x) for x in data)
    return isinstance(data, (np.ndarray, np.generic)) and data.dtype == np.float64


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


def _scalar_dtype(value, like: np.dtype) -> np.dtype:
    """The dtype a Python number takes next to a tensor of dtype `like` (PyTorch's rule: the
    tensor's dtype wins within its kind; a float next to an int tensor gives float32)."""
    if isinstance(value, (bool, np.bool_)):
        return like
    if isinstance(value, (int, np.integer)):
        return like if like != bool_ else int64
    return like if like.kind == "f" else float32


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


def _promote(a: np.dtype, b: np.dtype) -> np.dtype:
    if a == b:
        return a
    if a.kind == "f" and b.kind != "f":
        return a
    if b.kind == "f" and a.kind != "f":
        return b
    return np.result_type(a, b)


class Tensor:
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
        self._data = _to_device(arr, _default_device[0])
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
