"""Reading PyTorch checkpoints (`torch.save`'s zip format) without torch and without running code.

A `torch.save` file (PyTorch >= 1.6) is an uncompressed zip archive:

    <name>/data.pkl        the object, pickled; each storage is a persistent id
                           ('storage', <storage type>, <key>, <location>, <numel>)
    <name>/data/<key>      the raw bytes of one storage
    <name>/byteorder       "little" or "big" (absent in old files: little)
    <name>/version         the format version (plus a few other small records)

`data.pkl` is read by `_RestrictedUnpickler`, a `pickle.Unpickler` whose `find_class` hands out
only a fixed set of harmless rebuild functions (fastdl's own, never torch's or anything that the
file names) and whose `persistent_load` reads storages from the archive. This is PyTorch's
`weights_only=True` rule: tensors, storages, OrderedDicts and plain containers, nothing else. Any
other global (`os.system`, `builtins.eval`, a model class, ...) stops the load before anything is
called. The result is then rebuilt from scratch by `_Cleaner`, so what the caller gets holds only
fastdl Tensors, dicts, lists, tuples, sets and plain values, whatever the pickle did.

torch itself is never imported.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import pickletools
import struct
import zipfile
import zlib
from collections import OrderedDict
from typing import IO, Any, Callable, NamedTuple

import numpy as np

from ._storage import _c_contiguous
from ._tensor import SUPPORTED_DTYPES, Tensor
from .checkpoint import CheckpointError, looks_like_safetensors

# torch.<X>Storage -> the dtype it holds (torch's names, canonical spelling)
_STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "QInt8Storage": "qint8",
    "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32",
    "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4",
}
# torch.<dtype> attribute names (aliases included) -> canonical name
_TORCH_DTYPES = {
    **{n: n for n in set(_STORAGE_DTYPES.values())},
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "cfloat": "complex64",
    "cdouble": "complex128",
    "complex32": "complex32",
    "chalf": "complex32",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "float8_e4m3fn": "float8_e4m3fn",
    "float8_e5m2": "float8_e5m2",
    "float8_e4m3fnuz": "float8_e4m3fnuz",
    "float8_e5m2fnuz": "float8_e5m2fnuz",
}
# the dtypes fastdl has: canonical torch name -> NumPy dtype in memory
_NATIVE = {
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
    "int64": np.dtype(np.int64),
    "int32": np.dtype(np.int32),
    "int16": np.dtype(np.int16),
    "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8),
    "bool": np.dtype(np.bool_),
}
# ... and of the stored bytes (little-endian; bools are read as bytes, then != 0)
_STORED = {
    name: np.dtype(np.uint8) if name == "bool" else d.newbyteorder("<")
    for name, d in _NATIVE.items()
}
_STORAGE_MODULES = ("torch", "torch.storage")
_MAX_DIMS = 64
_MAX_EXPANDED_BYTES = 1 << 30  # a broadcast (stride 0) tensor bigger than its storage: 1 GiB
_PICKLE_PREFIX = b"\x80"
# torch's legacy (pre-zip) format starts with this magic number, pickled as a LONG1
_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint that asks to call or build something other than tensors and containers."""


# ---------------------------------------------------------------- immutable markers
# NamedTuples: a pickle can neither call them (REDUCE) nor set attributes on them (BUILD).


class _DType(NamedTuple):
    """A `torch.<dtype>` global."""

    name: str


class _StorageType(NamedTuple):
    """A `torch.<X>Storage` / `torch.UntypedStorage` global (the type in a persistent id)."""

    dtype: str


class _TensorType(NamedTuple):
    """`torch.Tensor` or `torch.nn.Parameter`, as named in `_rebuild_from_type_v2`."""

    parameter: bool


class _Unsupported(NamedTuple):
    """A tensor whose dtype fastdl lacks; `_Cleaner` reports it with its key."""

    dtype: str
    shape: tuple


class _Storage(NamedTuple):
    """One storage of the archive: its key, dtype, location and bytes (read-only)."""

    key: str
    dtype: str
    location: str
    data: Any  # bytes-like

    # the few storage methods a map_location callable calls
    def cpu(self) -> "_Storage":
        return self

    def cuda(self, *args: Any, **kwargs: Any) -> "_Storage":
        raise RuntimeError(
            "[load] map_location moved a storage to 'cuda': this fastdl loads onto the CPU only"
        )

    def to(self, device: Any = "cpu", *args: Any, **kwargs: Any) -> "_Storage":
        if str(device).split(":")[0] != "cpu":
            raise RuntimeError(
                f"[load] map_location moved a storage to {str(device)!r}: "
                "this fastdl loads onto the CPU only"
            )
        return self


def apply_map_location(map_location: Any, storage: _Storage, where: str) -> _Storage:
    """What PyTorch does with map_location for one storage, on a CPU-only library: a string,
    device or dict that names a device other than the CPU was refused up front (in `load`);
    a callable is called as `map_location(storage, location)` and must keep the storage on the
    CPU (`None` means "the default": the CPU). Storages saved on another device (e.g. 'cuda:0')
    are loaded onto the CPU."""
    if not callable(map_location) or isinstance(map_location, (str, dict)):
        return storage
    result = map_location(storage, storage.location)
    if result is None:
        return storage
    if not isinstance(result, _Storage):
        raise RuntimeError(
            f"[load] map_location callable returned a {type(result).__name__} for {where}; "
            "on this CPU-only fastdl it must return the storage it was given (or None)"
        )
    return result


# ---------------------------------------------------------------- the unpickler


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles `data.pkl` of a torch zip archive, allowing only tensors, storages, ordered
    dicts and plain containers (see the module docstring)."""

    def __init__(
        self,
        pickled: bytes,
        read_record: Callable[[str], Any],
        where: str,
        byteorder: str,
        map_location: Any,
    ) -> None:
        super().__init__(io.BytesIO(pickled))
        self._read_record = read_record
        self._where = where
        self._byteorder = byteorder
        self._map_location = map_location
        self._storages: dict = {}
        self._handed_out: set = set()  # storages whose memory a tensor holds without a copy
        self.map_location_error: Exception | None = None
        # Bound methods, made once per instance: a pickle cannot change them (BUILD fails).
        v1, v2, v3 = self._rebuild_tensor, self._rebuild_tensor_v2, self._rebuild_tensor_v3
        param, param_state = self._rebuild_parameter, self._rebuild_parameter_with_state
        self._rebuilders = (v1, v2, v3, param, param_state)
        allowed: dict = {
            ("torch._utils", "_rebuild_tensor"): v1,
            ("torch._utils", "_rebuild_tensor_v2"): v2,
            ("torch._utils", "_rebuild_tensor_v3"): v3,
            ("torch._utils", "_rebuild_parameter"): param,
            ("torch._utils", "_rebuild_parameter_with_state"): param_state,
            ("torch._tensor", "_rebuild_from_type_v2"): self._rebuild_from_type,
            ("torch._tensor", "_rebuild_from_type"): self._rebuild_from_type,
            ("torch", "Tensor"): _TensorType(False),
            ("torch._tensor", "Tensor"): _TensorType(False),
            ("torch.nn.parameter", "Parameter"): _TensorType(True),
            ("torch.nn", "Parameter"): _TensorType(True),
            ("torch", "Size"): self._size,
            ("collections", "OrderedDict"): self._ordered_dict,
            ("_codecs", "encode"): self._codecs_encode,
        }
        allowed[("builtins", "set")] = self._set
        allowed[("builtins", "frozenset")] = self._frozenset
        allowed[("builtins", "complex")] = self._complex
        allowed[("builtins", "bytes")] = self._bytes
        for module in _STORAGE_MODULES:
            allowed[(module, "UntypedStorage")] = _StorageType("uint8")
            for name, dtype in _STORAGE_DTYPES.items():
                allowed[(module, name)] = _StorageType(dtype)
        for name, dtype in _TORCH_DTYPES.items():
            allowed[("torch", name)] = _DType(dtype)
        self._allowed = allowed

    # ---- the two hooks

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names, as protocol 2 writes them (what pickle's fix_imports does)
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = self._allowed.get((module, name))
        if found is None:
            raise UnsafeCheckpointError(
                f"[load] refusing to load '{module}.{name}' from {self._where}: only tensors, "
                "storages and plain containers can be loaded (fastdl.load never runs code from "
                "a file; save a state_dict() of plain tensors instead)"
            )
        return found

    def persistent_load(self, pid: Any) -> _Storage:
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and type(pid[0]) is str
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
            and isinstance(pid[3], str)
            and isinstance(pid[4], int)
            and pid[4] >= 0
        ):
            raise self._corrupted(f"unexpected persistent id {str(pid)[:100]}")
        _, storage_type, key, location, numel = pid
        if key in self._storages:
            return self._storages[key]
        data = self._read_record(f"data/{key}")
        if data is None:
            raise self._corrupted(f"storage {key!r} is missing from the archive")
        item = _STORED.get(storage_type.dtype)
        if item is not None and len(data) < numel * item.itemsize:
            raise self._corrupted(
                f"storage {key!r} holds {len(data)} bytes, its header says {numel} elements "
                f"of {storage_type.dtype}"
            )
        storage = _Storage(key, storage_type.dtype, location, data)
        try:
            storage = apply_map_location(self._map_location, storage, self._where)
        except Exception as e:  # the caller's map_location: its errors pass through as they are
            self.map_location_error = e
            raise
        self._storages[key] = storage
        return storage

    # ---- what find_class hands out

    def _rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any) -> Any:
        return self._tensor(storage, offset, size, stride, None)

    def _rebuild_tensor_v2(
        self,
        storage: Any,
        offset: Any,
        size: Any,
        stride: Any,
        requires_grad: Any = False,
        backward_hooks: Any = None,
        metadata: Any = None,
    ) -> Any:
        return self._with_grad(self._tensor(storage, offset, size, stride, None), requires_grad)

    def _rebuild_tensor_v3(
        self,
        storage: Any,
        offset: Any,
        size: Any,
        stride: Any,
        requires_grad: Any,
        backward_hooks: Any,
        dtype: Any,
        metadata: Any = None,
    ) -> Any:
        if not isinstance(dtype, _DType):
            raise self._corrupted(f"expected a torch dtype, got {type(dtype).__name__}")
        t = self._tensor(storage, offset, size, stride, dtype.name)
        return self._with_grad(t, requires_grad)

    def _rebuild_parameter(self, data: Any, requires_grad: Any, backward_hooks: Any) -> Any:
        return self._parameter(data, requires_grad)

    def _rebuild_parameter_with_state(
        self, data: Any, requires_grad: Any, backward_hooks: Any, state: Any
    ) -> Any:
        return self._parameter(data, requires_grad)  # Python attributes are not restored

    def _rebuild_from_type(self, func: Any, new_type: Any, args: Any, state: Any) -> Any:
        known = any(func is f for f in self._rebuilders)
        if not known or not isinstance(new_type, _TensorType):
            raise self._corrupted("a tensor subclass or unknown rebuild function")
        if not isinstance(args, tuple):
            raise self._corrupted("tensor rebuild arguments are not a tuple")
        t = func(*args)
        if new_type.parameter and isinstance(t, Tensor):
            return self._parameter(t, t.requires_grad)
        return t  # Python attributes (`state`) are not restored

    def _size(self, dims: Any = ()) -> tuple:
        return self._ints(dims, "torch.Size")

    def _ordered_dict(self, items: Any = ()) -> OrderedDict:
        if not isinstance(items, (list, tuple, dict)):
            raise CheckpointError("[load] OrderedDict built from an unexpected object")
        return OrderedDict(items)

    def _set(self, items: Any = ()) -> set:
        if not isinstance(items, (list, tuple)):
            raise CheckpointError("[load] set built from an unexpected object")
        return set(items)

    def _frozenset(self, items: Any = ()) -> frozenset:
        if not isinstance(items, (list, tuple)):
            raise CheckpointError("[load] frozenset built from an unexpected object")
        return frozenset(items)

    def _complex(self, real: Any = 0.0, imag: Any = 0.0) -> complex:
        if not all(type(v) in (int, float) for v in (real, imag)):
            raise CheckpointError("[load] complex built from an unexpected object")
        return complex(real, imag)

    def _bytes(self, *args: Any) -> bytes:
        if args:
            raise CheckpointError("[load] bytes built from an unexpected object")
        return b""

    def _codecs_encode(self, text: Any, encoding: Any = "utf-8") -> bytes:
        # protocol 2 pickles bytes as _codecs.encode(str, 'latin1')
        if type(text) is not str or type(encoding) is not str or encoding not in (
            "latin1",
            "latin-1",
        ):
            raise CheckpointError("[load] _codecs.encode called with unexpected arguments")
        return text.encode("latin1")

    # ---- helpers

    def _corrupted(self, what: str) -> CheckpointError:
        return CheckpointError(f"[load] {self._where} is a corrupted PyTorch checkpoint: {what}")

    def _ints(self, values: Any, what: str) -> tuple:
        if not isinstance(values, (tuple, list)) or len(values) > _MAX_DIMS:
            raise self._corrupted(f"{what} is not a short tuple of integers")
        if not all(type(v) is int and v >= 0 for v in values):
            raise self._corrupted(f"{what} {tuple(values)} holds a negative or non-integer value")
        return tuple(values)

    def _tensor(self, storage: Any, offset: Any, size: Any, stride: Any, dtype: Any) -> Any:
        if not isinstance(storage, _Storage):
            raise self._corrupted(f"a tensor's storage is a {type(storage).__name__}")
        dtype = dtype or storage.dtype
        size = self._ints(size, "tensor size")
        stride = self._ints(stride, "tensor stride")
        if type(offset) is not int or offset < 0 or len(stride) != len(size):
            raise self._corrupted(f"tensor offset {offset!r} / stride {stride} do not fit")
        item = _STORED.get(dtype)
        if item is None:
            return _Unsupported(dtype, size)
        if self._byteorder == "big":
            item = item.newbyteorder(">")
        count = len(storage.data) // item.itemsize
        native = _NATIVE[dtype]
        if 0 in size:
            return Tensor._make(np.empty(size, native))
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= count:
            raise self._corrupted(
                f"a tensor of size {size}, stride {stride} and offset {offset} reaches element "
                f"{last} of storage {storage.key!r}, which holds {count}"
            )
        numel = int(np.prod(size, dtype=object))
        if numel > count and numel * item.itemsize > _MAX_EXPANDED_BYTES:
            raise self._corrupted(
                f"a tensor of size {size} and stride {stride} expands storage {storage.key!r} "
                f"of {count} elements to {numel}; fastdl refuses to materialise it"
            )
        flat = np.frombuffer(storage.data, dtype=item, count=count)
        if (
            numel == count
            and offset == 0
            and dtype != "bool"
            and item.isnative
            and flat.flags.writeable
            and storage.key not in self._handed_out
            and _c_contiguous(size, stride)
        ):
            # The tensor is its whole storage, which was read into memory of its own: take it
            # without a copy (once; another tensor of the same storage gets a copy).
            self._handed_out.add(storage.key)
            return Tensor._make(flat.reshape(size))
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=[s * item.itemsize for s in stride], writeable=False
        )
        arr = (view != 0) if dtype == "bool" else view.astype(native, order="C")
        return Tensor._make(arr if arr.flags.c_contiguous else arr.copy(order="C"))

    def _with_grad(self, t: Any, requires_grad: Any) -> Any:
        if not isinstance(requires_grad, bool):
            raise self._corrupted("requires_grad is not a bool")
        if requires_grad and isinstance(t, Tensor):
            if t._data.dtype.kind != "f":
                raise self._corrupted("a non-float tensor requires grad")
            t.requires_grad = True
        return t

    def _parameter(self, data: Any, requires_grad: Any) -> Any:
        if isinstance(data, _Unsupported):
            return data
        if not isinstance(data, Tensor) or not isinstance(requires_grad, bool):
            raise self._corrupted("a Parameter built from something other than a tensor")
        if requires_grad and data._data.dtype.kind != "f":
            raise self._corrupted("a non-float Parameter requires grad")
        return _make_parameter(data._data, requires_grad)


# ---------------------------------------------------------------- cleaning the result


def _make_parameter(arr: np.ndarray, requires_grad: bool) -> Any:
    from .nn.parameter import Parameter

    p = Parameter(arr, requires_grad)
    p._data = arr  # NOTE: Parameter() makes a 0-d array 1-d (np.ascontiguousarray)
    return p


class _Cleaner:
    """Rebuilds the unpickled object from scratch: only fastdl Tensors/Parameters, dicts,
    OrderedDicts (with their `_metadata`), lists, tuples, sets and plain values get through.
    Shared references stay shared; unsupported dtypes are reported with their key."""

    _PLAIN = (type(None), bool, int, float, complex, str, bytes)

    def __init__(self, where: str) -> None:
        self.where, self.memo, self.active = where, {}, set()

    def clean(self, obj: Any, path: tuple = ()) -> Any:
        kind = type(obj)
        if kind in self._PLAIN:
            return obj
        at = ".".join(path) or "<root>"
        if kind is _Unsupported:
            raise CheckpointError(
                f"[load] {self.where}: the tensor at {at!r} has dtype torch.{obj.dtype}, which "
                f"fastdl does not support (it has {', '.join(_NATIVE)}); convert "
                "it in PyTorch (e.g. tensor.float()) and save again"
            )
        if kind is _DType:
            if obj.name not in _NATIVE:
                raise CheckpointError(
                    f"[load] {self.where}: the value at {at!r} is torch.{obj.name}, a dtype "
                    "fastdl does not have"
                )
            return _NATIVE[obj.name]
        ident = id(obj)
        if ident in self.memo:
            return self.memo[ident]
        if ident in self.active:
            raise CheckpointError(
                f"[load] {self.where}: the structure at {at!r} contains itself; fastdl.load "
                "reads trees of containers only"
            )
        self.active.add(ident)
        try:
            out = self._rebuild(obj, kind, path, at)
        finally:
            self.active.discard(ident)
        self.memo[ident] = out
        return out

    def _rebuild(self, obj: Any, kind: type, path: tuple, at: str) -> Any:
        from .nn.parameter import Parameter

        if kind in (Tensor, Parameter):
            arr = getattr(obj, "_data", None)
            if type(arr) is not np.ndarray or arr.dtype not in SUPPORTED_DTYPES:
                raise CheckpointError(f"[load] {self.where}: the tensor at {at!r} is malformed")
            grad = obj._requires_grad is True and arr.dtype.kind == "f"
            if kind is Parameter:
                return _make_parameter(arr, grad)
            t = Tensor._make(arr)
            t._requires_grad = grad
            return t
        if kind in (dict, OrderedDict):
            out = kind()
            for key, value in list(obj.items()):
                out[self.clean(key, path + ("<key>",))] = self.clean(value, path + (str(key),))
            meta = obj.__dict__.get("_metadata") if kind is OrderedDict else None
            if isinstance(meta, dict):
                out._metadata = self.clean(meta, path + ("_metadata",))
            return out
        if kind in (list, tuple):
            values = [self.clean(v, path + (str(i),)) for i, v in enumerate(obj)]
            return values if kind is list else tuple(values)
        if kind in (set, frozenset):
            return kind(self.clean(v, path + ("<item>",)) for v in obj)
        if kind is _Storage:
            raise CheckpointError(
                f"[load] {self.where}: the value at {at!r} is a bare storage; fastdl loads "
                "tensors (save tensors, not storages)"
            )
        raise CheckpointError(
            f"[load] {self.where}: the value at {at!r} is a {kind.__name__}, which fastdl.load "
            "does not read"
        )


# ---------------------------------------------------------------- the archive


def is_zip(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def describe_pickle(data: bytes) -> str | None:
    """If `data` is a raw pickle, why fastdl will not read it; else None (in particular for
    anything shaped like a safetensors file, whose header length 128 + 256*k makes it start with
    the same two bytes 0x80 0x0k as a pickle of protocol k)."""
    if data[:1] != _PICKLE_PREFIX or len(data) < 2 or data[1] > 5:
        return None
    if looks_like_safetensors(data):
        return None
    if data[2:4] == b"\x8a\n" and data[4:14] == _LEGACY_MAGIC:
        return (
            "is in PyTorch's legacy (pre-1.6, non-zip) format, which fastdl does not read; "
            "re-save it with a current PyTorch: "
            "torch.save(torch.load(path, weights_only=True), new_path)"
        )
    return (
        "is a raw pickle, not a safetensors file or a PyTorch zip checkpoint; fastdl never "
        "unpickles raw pickle files (it runs code)"
    )


def _read_stored(src: IO[bytes], size: int, info: zipfile.ZipInfo) -> np.ndarray | None:
    """The bytes of an uncompressed member, read from the file straight into a new (writable,
    aligned) uint8 array, CRC-checked; None when the member is compressed."""
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return None
    at = info.header_offset
    if at < 0 or at + 30 > size:
        return None
    src.seek(at)
    local = src.read(30)
    if len(local) != 30:
        return None
    sig, *_, name_len, extra_len = struct.unpack("<IHHHHHIIIHH", local)
    start = at + 30 + name_len + extra_len
    if sig != 0x04034B50 or start + info.file_size > size:
        return None
    src.seek(start)
    out = np.empty(info.file_size, np.uint8)
    view, got = memoryview(out), 0
    while got < len(view):
        n = src.readinto(view[got:])
        if not n:
            raise zipfile.BadZipFile(f"File {info.filename!r} is truncated")
        got += n
    if zlib.crc32(view) != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
    return out


def _prescan(pickled: bytes, where: str) -> None:
    """Check the opcode stream before unpickling: every opcode whole and within the data, and
    memo indices small (the C unpickler sizes its memo table by the largest index it sees)."""
    limit = len(pickled) + 16
    try:
        for op, arg, _ in pickletools.genops(pickled):
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(arg) > limit:
                raise ValueError(f"memo index {arg} in a pickle of {len(pickled)} bytes")
    except ValueError as e:
        raise CheckpointError(
            f"[load] {where} is a corrupted PyTorch checkpoint: its data.pkl is malformed ({e})"
        ) from None


def load_zip(src: IO[bytes], size: int, where: str, map_location: Any) -> Any:
    """Read a `torch.save` zip checkpoint from `src`, a seekable binary file of `size` bytes.
    Each storage is read once, straight into the array that becomes its tensor when it can."""
    try:
        zf = zipfile.ZipFile(src)
    except MemoryError:
        raise
    except Exception as e:  # zipfile raises many kinds for a damaged archive
        raise CheckpointError(
            f"[load] {where} starts like a zip archive but is not a valid one ({e}); "
            f"read {size} bytes"
        ) from None
    infos = {info.filename: info for info in zf.infolist()}
    pkls = sorted(n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1)
    if not pkls:
        raise CheckpointError(
            f"[load] {where} is a zip archive but not a PyTorch checkpoint (no '<name>/data.pkl'"
            f" inside) and not a safetensors file; read {size} bytes"
        )
    prefix = pkls[0][: -len("data.pkl")]
    if f"{prefix}constants.pkl" in infos or any(n.startswith(f"{prefix}code/") for n in infos):
        raise CheckpointError(
            f"[load] {where} is a TorchScript archive (torch.jit.save), which fastdl does not "
            "read; in PyTorch, torch.save(torch.jit.load(path).state_dict(), new_path)"
        )

    def read_record(name: str) -> Any:
        info = infos.get(prefix + name)
        if info is None:
            return None
        try:
            direct = _read_stored(src, size, info)
            return direct if direct is not None else zf.read(info)
        except MemoryError:
            raise
        except Exception as e:  # zipfile raises many kinds for a damaged member
            raise CheckpointError(
                f"[load] {where} is a corrupted PyTorch checkpoint: cannot read {name!r} ({e})"
            ) from None

    byteorder = read_record("byteorder")
    byteorder = "little" if byteorder is None else bytes(byteorder).decode("ascii", "replace")
    if byteorder not in ("little", "big"):
        raise CheckpointError(
            f"[load] {where} is a corrupted PyTorch checkpoint: byteorder is {byteorder!r}"
        )
    pickled = bytes(read_record("data.pkl"))
    _prescan(pickled, where)
    unpickler = _RestrictedUnpickler(pickled, read_record, where, byteorder, map_location)
    try:
        obj = unpickler.load()
    except CheckpointError:
        raise
    except Exception as e:
        # A malformed pickle raises any of many kinds, MemoryError included (pickle allocates
        # what a corrupted length field says). The caller's map_location errors pass through.
        if e is unpickler.map_location_error:
            raise
        raise CheckpointError(
            f"[load] {where} is a corrupted PyTorch checkpoint: its data.pkl does not unpickle "
            f"({type(e).__name__}: {e})"
        ) from None
    try:
        return _Cleaner(where).clean(obj)
    except RecursionError:
        raise CheckpointError(f"[load] {where}: its structure is nested too deeply") from None
