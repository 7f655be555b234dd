"""Checkpoints: `fastdl.save(obj, f)` and `fastdl.load(f)` in the safetensors format; `load` also
reads PyTorch's `torch.save` files. `f` is a path or a binary file object (io.BytesIO, open(...)).

`obj` is a state dict: nested dicts, lists and tuples whose leaves are Tensors, NumPy arrays,
numbers, strings, bools or None (a model's, an optimizer's, a preprocessor's, or a dict of
them). The file is a plain safetensors file:

- every Tensor and array is one safetensors tensor, named by its path in `obj` joined by "."
  (`model.conv1.weight`, `optimizer.state.0.exp_avg`), so a model's state_dict saved alone has
  exactly its state_dict keys and other safetensors tools can read it;
- the structure (dict keys with their types, which dicts are OrderedDicts, lists, tuples, the
  non-tensor leaves) is JSON, with references to the tensors by name, kept with a format
  version and a SHA-256 of the structure and every tensor (which `load` checks) in the one
  metadata entry "fastdl.checkpoint". Tensors are stored, and checksummed, little-endian (a
  big-endian array is converted). A file whose fastdl metadata is damaged is refused, not read
  unchecked as a plain safetensors file (`load(f, plain_safetensors=True)` reads it anyway). Identical contents give byte-identical files. `load`
  gives back the same containers: an OrderedDict (what `Module.state_dict()` returns) comes
  back as an OrderedDict, a dict as a dict, a tuple as a tuple.

Save and load stream: save writes each tensor's bytes straight from its memory (the files are
byte-identical to safetensors.numpy.save's), and load reads each tensor straight into the
array it returns, so neither holds a copy of the file in memory. A file object that cannot
seek is the exception: load reads it whole first. (safetensors' NumPy API builds and parses
the whole file as one bytes object, and its streaming calls take a path, not a file object;
the format is a length, a JSON header and raw bytes, so fastdl reads and writes it itself,
checking every header rule safetensors checks.)

Writes to a path are atomic: a temporary file in the same folder, flushed and fsync'ed, then
renamed over the target (and the folder fsync'ed), so a crash mid-save leaves the previous file
whole; the next save to the same path removes the temp files that a killed save left. A file
object gets the same bytes written at its current position.

Loading a safetensors file parses JSON and raw tensor bytes only, and validates the file. Loading
a PyTorch zip checkpoint (`.pt`/`.pth`) goes through a restricted unpickler
(fastdl/_torch_pickle.py) that can only rebuild tensors, storages, OrderedDicts and plain
containers and refuses anything else: PyTorch's `weights_only=True` rule, always. Raw pickles
(including PyTorch's legacy pre-1.6 format) are refused without being unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import stat
import struct
import tempfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Callable, NamedTuple, Union

import numpy as np

from ._tensor import Tensor

META_KEY = "fastdl.checkpoint"
# Version 2 added OrderedDicts (node "odict"). A file is written with the lowest version that
# can hold it (1 when it has no OrderedDict), so older fastdl versions still read what they can.
FORMAT_VERSION = 2
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
PathLike = Union[str, os.PathLike]
FileLike = Union[str, os.PathLike, IO[bytes]]


class CheckpointError(ValueError, RuntimeError):
    """A file that is not a valid checkpoint: truncated, corrupted, unsafe or of an unknown
    format. Both a ValueError and a RuntimeError (what PyTorch raises for a bad file)."""


# ---------------------------------------------------------------- encoding


class _Encoder:
    """Turns a state dict into (JSON tree, {name: array}); tensor names are unique paths."""

    def __init__(self) -> None:
        self.arrays: dict = {}
        self.version = 1  # the lowest format version that can hold what was encoded

    def _name(self, path: list) -> str:
        base = ".".join(path) or "_"
        name, k = base, 1
        while name in self.arrays:
            name, k = f"{base}#{k}", k + 1
        return name

    def encode(self, obj: Any, path: list) -> Any:
        where = ".".join(path) or "<root>"
        if isinstance(obj, (Tensor, np.ndarray)):
            # A tensor of another device is saved from its host copy (PyTorch's files record
            # the device; fastdl's load onto the CPU or onto map_location).
            arr = obj.detach().cpu().numpy() if isinstance(obj, Tensor) else obj
            if arr.dtype.kind not in "biuf":
                raise TypeError(
                    f"[save] array at {where!r} has dtype {arr.dtype}; "
                    "only numeric arrays can be saved"
                )
            name = self._name(path)
            # NOTE: not np.ascontiguousarray, which turns a 0-d array into shape (1,).
            # Stored little-endian, as safetensors does and the checksum covers.
            arr = _little_endian(arr)
            self.arrays[name] = arr if arr.flags.c_contiguous else arr.copy(order="C")
            return {"tensor" if isinstance(obj, Tensor) else "ndarray": name}
        if isinstance(obj, np.generic):
            obj = obj.item()
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, Mapping):
            items = []
            for key, value in obj.items():
                if isinstance(key, np.integer):
                    key = int(key)
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise TypeError(
                        f"[save] dict keys must be str or int, got {key!r} at {where!r}"
                    )
                items.append([key, self.encode(value, path + [str(key)])])
            if isinstance(obj, OrderedDict):  # load gives back an OrderedDict, as torch.load
                self.version = max(self.version, 2)
                return {"odict": items}
            return {"dict": items}
        if isinstance(obj, (list, tuple)):
            kind = "tuple" if isinstance(obj, tuple) else "list"
            return {kind: [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]}
        hint = "; save its state_dict() instead" if hasattr(obj, "state_dict") else ""
        raise TypeError(
            f"[save] cannot store a {type(obj).__name__} at {where!r}{hint} (checkpoints hold "
            "Tensors, arrays, numbers, strings, None and dicts/lists/tuples of them; no pickle)"
        )


def _little_endian(arr: np.ndarray) -> np.ndarray:
    """`arr` in little-endian byte order (itself when it already is, or has single bytes)."""
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and not _NATIVE_LITTLE):
        return arr.astype(arr.dtype.newbyteorder("<"))
    return arr


_NATIVE_LITTLE = np.little_endian


def _digest(tree: str, arrays: dict) -> str:
    """SHA-256 of the structure and of every tensor's name, dtype, shape and bytes, over a
    canonical little-endian encoding (what safetensors stores), so an array saved big-endian
    checks out the same when it is read back little-endian."""
    h = hashlib.sha256(tree.encode())
    for name in sorted(arrays):
        arr = _little_endian(np.asarray(arrays[name]))
        h.update(f"\0{name}\0{arr.dtype.str}\0{arr.shape}\0".encode())
        h.update(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))
    return h.hexdigest()


def save(
    obj: Any,
    f: FileLike,
    pickle_module: Any = None,
    pickle_protocol: Any = None,
    _use_new_zipfile_serialization: bool = True,
) -> None:
    """Write `obj` (a state dict, possibly nested) to `f`, a path (atomically) or a binary file
    object, in safetensors format. The other arguments are torch.save's, accepted and ignored
    (nothing is pickled).

    >>> import fastdl, fastdl.nn as nn, io
    >>> buffer = io.BytesIO()
    >>> fastdl.save({"model": nn.Linear(2, 1).state_dict(), "epoch": 3}, buffer)
    >>> _ = buffer.seek(0)
    >>> fastdl.load(buffer)["epoch"]
    3
    """
    if not isinstance(f, (str, os.PathLike)) and not hasattr(f, "write"):
        raise TypeError(
            f"[save] expected a path or a binary file object to write to, got {type(f).__name__}"
        )
    encoder = _Encoder()
    tree = json.dumps(encoder.encode(obj, []), separators=(",", ":"))
    # One metadata key: safetensors writes metadata in hash order, and a single key keeps the
    # bytes of a checkpoint a function of its contents (identical runs give identical files).
    digest = _digest(tree, encoder.arrays)
    meta = {"format_version": encoder.version, "sha256": digest, "tree": tree}
    header, order = _safetensors_header(
        encoder.arrays, {META_KEY: json.dumps(meta, separators=(",", ":"))}
    )
    if isinstance(f, (str, os.PathLike)):
        _atomic_write(Path(f), lambda out: _write_safetensors(out, header, order))
    else:
        try:
            _write_safetensors(f, header, order)
        except TypeError:
            raise TypeError(
                f"[save] {_describe(f)} does not accept bytes; open it in binary mode ('wb')"
            ) from None


# safetensors' dtype names by NumPy (kind, itemsize), and the order in which safetensors lays
# tensors out: larger dtypes (by its enum) first, then by name. Writing the same layout makes
# fastdl's files byte-identical to safetensors.numpy.save's (a test holds it to that).
_ST_NAMES = {
    ("b", 1): "BOOL", ("u", 1): "U8", ("i", 1): "I8", ("i", 2): "I16", ("u", 2): "U16",
    ("f", 2): "F16", ("i", 4): "I32", ("u", 4): "U32", ("f", 4): "F32", ("c", 8): "C64",
    ("f", 8): "F64", ("i", 8): "I64", ("u", 8): "U64",
}
_ST_RANK = {name: rank for rank, name in enumerate(_ST_NAMES.values())}
_ST_DTYPES = {name: np.dtype(f"<{kind}{size}") if kind != "b" else np.dtype(np.bool_)
              for (kind, size), name in _ST_NAMES.items()}


def _safetensors_header(arrays: dict, metadata: dict) -> tuple:
    """(header bytes, names in file order) of a safetensors file holding `arrays` (C-contiguous,
    little-endian) and `metadata`: the 8-byte length, then the JSON padded with spaces to a
    multiple of 8 bytes, as safetensors writes it."""
    names = {}
    for name, arr in arrays.items():
        st = _ST_NAMES.get((arr.dtype.kind, arr.dtype.itemsize))
        if st is None:
            raise TypeError(f"[save] array {name!r} has dtype {arr.dtype}, which safetensors "
                            "cannot store")
        names[name] = st
    order = sorted(arrays, key=lambda k: (-_ST_RANK[names[k]], k))
    entries: dict = {"__metadata__": metadata} if metadata else {}
    at = 0
    for name in order:
        arr = arrays[name]
        entries[name] = {"dtype": names[name], "shape": list(arr.shape),
                         "data_offsets": [at, at + arr.nbytes]}
        at += arr.nbytes
    try:
        text = json.dumps(entries, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"[save] a key is not valid Unicode text ({e})") from None
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, [arrays[k] for k in order]


def _write_safetensors(out: IO[bytes], header: bytes, arrays: list) -> None:
    """Write the header, then each array's bytes straight from its memory (no copy of the
    payload is ever made)."""
    out.write(header)
    for arr in arrays:
        if arr.size:
            out.write(arr.reshape(-1).view(np.uint8).data)


try:
    import fcntl
except ImportError:  # Windows: no advisory locks; stale files are judged by age only
    fcntl = None

# Without locks, a temp file is left to a save that may still be running for this long.
_STALE_AFTER_S = 3600.0


def _temp_pattern(path: Path) -> "re.Pattern":
    """The names of save's temp files for `path`: tempfile.mkstemp's, with the prefix
    ".<name>." and the suffix ".tmp" around its 8 random characters."""
    return re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.tmp")


def _locked_temp_file(path: Path, folder: Path) -> tuple:
    """(fd, name) of a new temp file next to `path`, held under an exclusive flock for the
    whole save, so that a concurrent save's clean-up can tell it from a dead save's leftover."""
    while True:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink > 0:
            return fd, tmp
        os.close(fd)  # another save's clean-up removed it before we locked it: take another


def _remove_stale_temp_files(path: Path, folder: Path) -> None:
    """Remove the temp files that earlier saves to `path` left behind when they were killed:
    only names of save's own pattern for this target, only regular files, and only those no
    running save holds locked (or, without flock, older than _STALE_AFTER_S)."""
    import time

    pattern = _temp_pattern(path)
    try:
        names = [n for n in os.listdir(folder) if pattern.fullmatch(n)]
    except OSError:
        return
    for name in names:
        stale = os.path.join(folder, name)
        with contextlib.suppress(OSError):
            if fcntl is None:
                info = os.lstat(stale)
                if stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime > _STALE_AFTER_S:
                    os.unlink(stale)
                continue
            fd = os.open(stale, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    continue
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError: a save is running
                now = os.lstat(stale)
                if (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino):
                    os.unlink(stale)
            finally:
                os.close(fd)


def _atomic_write(path: Path, payload: Union[bytes, Callable[[IO[bytes]], None]]) -> None:
    """Write `payload` (bytes, or a function that writes to the file it is given) to `path`
    atomically."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"[save] cannot write {str(path)!r}: folder {str(folder)!r} does not exist"
        )
    _remove_stale_temp_files(path, folder)
    fd, tmp = _locked_temp_file(path, folder)
    try:
        # The fd (and its lock) stays open until the rename is done, so that no concurrent
        # save takes this temp file for a dead save's leftover.
        with os.fdopen(fd, "wb", closefd=False) as f:
            os.fchmod(f.fileno(), 0o644)
            if callable(payload):
                payload(f)
            else:
                f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        if fcntl is None:  # Windows cannot rename a file that is open
            os.close(fd)
            fd = -1
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        if fd >= 0:
            os.close(fd)
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# ---------------------------------------------------------------- decoding


def _neither(size: int, where: str) -> CheckpointError:
    return CheckpointError(
        f"[load] {where} is not a safetensors checkpoint, nor a PyTorch zip checkpoint "
        f"(read {size} bytes)"
    )


def looks_like_safetensors(data: bytes) -> bool:
    """Whether `data` (at least the file's first 9 bytes) starts like a safetensors file: an
    8-byte little-endian header length of at most MAX_HEADER_BYTES (so bytes 4-7 are zero),
    then the header's opening "{".

    `_torch_pickle.describe_pickle` checks this before it calls anything a pickle: a header
    length of 128 + 256*k (k <= 5) makes a safetensors file start with the bytes 0x80 0x0k,
    which is also how a pickle of protocol k starts. No real pickle has this shape: a protocol
    4/5 pickle has its 8-byte FRAME length at bytes 3-10 (byte 8 is zero below 2**40 bytes),
    and a protocol 2/3 pickle would need zero bytes 4-7 then "{", which only a leading string
    or bytes object starting with NUL bytes gives; such a file is then refused as a bad
    safetensors file, still without being unpickled."""
    if len(data) < 9 or data[8:9] != b"{":
        return False
    (n,) = struct.unpack("<Q", data[:8])
    return n <= MAX_HEADER_BYTES


# safetensors dtypes that a fastdl Tensor can hold (the others load as NumPy arrays only).
_ST_TENSOR_DTYPES = ("F32", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL")


def _as_tensor(arr: np.ndarray, name: str, where: str) -> Tensor:
    """A fastdl Tensor holding `arr` (a fresh array the loader owns; not copied), or a
    CheckpointError naming the tensor and dtype when fastdl tensors cannot hold that dtype
    (float16, uint16/32/64, complex)."""
    from ._tensor import SUPPORTED_DTYPES

    if arr.dtype not in SUPPORTED_DTYPES:
        if arr.dtype == np.float16:
            hint = (
                "fastdl has no float16 tensors; convert it to float32 before saving "
                "(e.g. tensor.float() in PyTorch)"
            )
        else:
            hint = (
                f"fastdl tensors hold {', '.join(str(d) for d in SUPPORTED_DTYPES)}; "
                "convert it before saving"
            )
        raise CheckpointError(
            f"[load] {where}: the tensor {name[:80]!r} has dtype {arr.dtype}, which fastdl "
            f"does not support: {hint}"
        )
    return Tensor._make(arr)


class _Entry(NamedTuple):
    """One tensor of a safetensors header: its name, NumPy dtype, shape and byte range."""

    name: str
    dtype: np.dtype
    shape: tuple
    begin: int
    end: int


def _header(src: IO[bytes], size: int, where: str) -> tuple:
    """(header, entries in file order) of the safetensors file `src` (positioned just after its
    8-byte length field, which `head` held), every entry checked: a known dtype, a shape of
    non-negative integers, a byte range of exactly that many bytes, and ranges that tile the
    data section with no gap, overlap or trailing bytes (safetensors' own rules). Nothing
    beyond the header is read."""
    src.seek(0)
    head = _read_exact(src, 8, where)
    (n,) = struct.unpack("<Q", head)
    if n > MAX_HEADER_BYTES or 8 + n > size:
        raise CheckpointError(
            f"[load] {where} looks like a safetensors file but is truncated or corrupted: its "
            f"header length field says {n} bytes, the file has {size}"
        )
    try:
        header = json.loads(_read_exact(src, n, where))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(
            f"[load] {where} is not a safetensors checkpoint: its header is not JSON "
            "(or is nested too deeply)"
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(
            f"[load] {where} is not a safetensors checkpoint: its header is not a JSON object"
        )
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(
            f"[load] {where} is corrupted: its metadata is not a JSON object of strings"
        )
    entries = []
    for key, v in header.items():
        if key != "__metadata__":
            entries.append(_entry(key, v, where))
    entries.sort(key=lambda e: (e.begin, e.end))
    at = 0
    for e in entries:
        if e.begin != at:
            raise CheckpointError(
                f"[load] {where} is corrupted: tensor {e.name[:80]!r} starts at byte {e.begin} "
                f"of the data, where {at} was expected (the tensors' ranges overlap or leave "
                "a gap)"
            )
        at = e.end
    have = size - 8 - n
    if at > have:
        raise CheckpointError(
            f"[load] {where} is truncated: tensor data needs {at} bytes, the file holds {have}"
        )
    if at < have:
        raise CheckpointError(
            f"[load] {where} is corrupted: its tensors take {at} bytes, but {have} follow the "
            "header"
        )
    return header, entries


def _entry(key: str, v: Any, where: str) -> _Entry:
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"[load] {where} is corrupted: tensor {key[:80]!r} {what}")

    if not isinstance(v, dict):
        raise bad("has no dtype/shape/data_offsets")
    dtype, shape, offsets = v.get("dtype"), v.get("shape"), v.get("data_offsets")
    if isinstance(dtype, str) and dtype not in _ST_DTYPES:
        raise CheckpointError(
            f"[load] {where}: the tensor {key[:80]!r} has safetensors dtype {dtype[:20]!r}, "
            f"which fastdl does not support (it reads {', '.join(_ST_TENSOR_DTYPES)}); "
            "convert it to float32 before saving"
        )
    if not isinstance(dtype, str):
        raise bad(f"has dtype {str(dtype)[:40]!r}, not a safetensors dtype name")

    def whole(x: Any) -> bool:
        return type(x) is int and x >= 0

    if not isinstance(shape, list) or len(shape) > 64 or not all(whole(d) for d in shape):
        raise bad(f"has shape {str(shape)[:80]}, not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(whole(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise bad(f"has data_offsets {str(offsets)[:80]}, not [begin, end] with begin <= end")
    np_dtype = _ST_DTYPES[dtype]
    nbytes = math.prod(shape) * np_dtype.itemsize  # Python integers: no overflow
    if offsets[1] - offsets[0] != nbytes:
        raise bad(
            f"of dtype {dtype} and shape {shape} needs {nbytes} bytes, its data_offsets "
            f"{offsets} give {offsets[1] - offsets[0]}"
        )
    return _Entry(key, np_dtype, tuple(shape), offsets[0], offsets[1])


def _read_exact(src: IO[bytes], n: int, where: str) -> bytes:
    data = src.read(n)
    if len(data) != n:
        raise CheckpointError(
            f"[load] {where} is truncated: expected {n} more bytes, read {len(data)}"
        )
    return data


def _read_array(src: IO[bytes], e: _Entry, where: str) -> np.ndarray:
    """Read one tensor's bytes from `src` straight into a new array of its dtype and shape."""
    arr = np.empty(e.shape, np.uint8 if e.dtype == np.bool_ else e.dtype)
    buffer = memoryview(arr.reshape(-1).view(np.uint8))
    got = 0
    while got < len(buffer):
        n = src.readinto(buffer[got:])
        if not n:
            raise CheckpointError(
                f"[load] {where} is truncated: tensor {e.name[:80]!r} needs {len(buffer)} "
                f"bytes, the file holds {got}"
            )
        got += n
    if e.dtype == np.bool_:
        if arr.size and arr.max() > 1:
            raise CheckpointError(
                f"[load] {where} is corrupted: the bool tensor {e.name[:80]!r} holds a byte "
                "other than 0 or 1"
            )
        arr = arr.view(np.bool_)
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


class _Decoder:
    def __init__(self, arrays: dict, where: str) -> None:
        self.arrays, self.where, self.used = arrays, where, set()

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"[load] {self.where} is corrupted: {what}")

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list) or not isinstance(node, dict) or len(node) != 1:
            raise self.fail(f"unexpected node {str(node)[:80]!r} in the structure")
        ((kind, body),) = node.items()
        if kind in ("tensor", "ndarray"):
            if not isinstance(body, str) or body not in self.arrays:
                raise self.fail(
                    f"the structure refers to tensor {body!r}, which the file does not hold"
                )
            arr = self.arrays[body]
            if body in self.used:  # referenced twice (fastdl never writes that): no aliasing
                arr = arr.copy()
            self.used.add(body)
            return _as_tensor(arr, body, self.where) if kind == "tensor" else arr
        if kind in ("dict", "odict") and isinstance(body, list):
            out = {} if kind == "dict" else OrderedDict()
            for item in body:
                if not (
                    isinstance(item, list) and len(item) == 2 and isinstance(item[0], (str, int))
                ):
                    raise self.fail(f"bad dict entry {str(item)[:80]!r}")
                out[item[0]] = self.decode(item[1])
            return out
        if kind in ("list", "tuple") and isinstance(body, list):
            values = [self.decode(v) for v in body]
            return tuple(values) if kind == "tuple" else values
        raise self.fail(f"unknown node kind {kind!r}")


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of `a` and `b`, or `limit + 1` when it is larger than `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


# What fastdl's metadata value holds; a value that mentions these looks like fastdl's JSON.
_META_FIELDS = ("format_version", "sha256", "tree")


def _damaged_fastdl_metadata(meta: dict) -> str | None:
    """Why safetensors metadata without a valid "fastdl.checkpoint" entry looks like damaged
    fastdl metadata (None when it does not): a key close to fastdl's (a few edits, or naming
    fastdl), or a value that looks like fastdl's JSON. A file with no metadata, or metadata
    unrelated to fastdl (other tools' keys and values), is a plain safetensors file."""
    for key, value in meta.items():
        if key == META_KEY:
            continue
        if "fastdl" in key.lower() or _edit_distance(key.lower(), META_KEY, 3) <= 3:
            return f"its metadata has key {key[:80]!r} where fastdl writes {META_KEY!r}"
        if isinstance(value, str) and value.lstrip().startswith("{"):
            hits = sum(field in value for field in _META_FIELDS)
            if hits >= 2:
                return (
                    f"its metadata key {key[:80]!r} holds what looks like fastdl's "
                    f"checkpoint metadata, but fastdl writes it under {META_KEY!r}"
                )
    return None


def _describe(f: Any) -> str:
    name = getattr(f, "name", None)
    return repr(name) if isinstance(name, str) else f"<{type(f).__name__}>"


def _map_location_device(map_location: Any) -> Any:
    """The device that `map_location` (a string, a device, or a dict of saved location to
    target) sends the loaded tensors to: None for the CPU (and for a callable, which must keep
    storages on the CPU). Refuses up front a device this fastdl cannot use. A dict maps the
    location "cpu", where fastdl's loaders read every tensor; another location may map to the
    CPU only."""
    from ._tensor import _device_type, device

    if map_location is None or (callable(map_location) and not isinstance(map_location, str)):
        return None
    if isinstance(map_location, Mapping):
        for source, target in map_location.items():
            if str(source).split(":")[0] != "cpu" and str(target).split(":")[0] != "cpu":
                raise RuntimeError(
                    f"[load] map_location={map_location!r} maps {str(source)!r} to "
                    f"{str(target)!r}: tensors saved on another device load onto the CPU only "
                    "(map only 'cpu' to another device)"
                )
        target = map_location.get("cpu", map_location.get(device("cpu"), "cpu"))
    else:
        target = map_location
    try:
        target = device(target)
        _device_type(target)
    except (RuntimeError, TypeError) as e:
        raise RuntimeError(
            f"[load] map_location={map_location!r} asks for device {str(target)!r}, which this "
            "fastdl does not have here, so it loads onto the CPU only (use map_location='cpu' "
            f"or leave it out); {e}"
        ) from None
    return None if target.type == "cpu" else target


def _to_device(obj: Any, target: Any) -> Any:
    """`obj` (a loaded structure) with every Tensor moved onto device `target`; a Parameter
    stays a Parameter."""
    if target is None:
        return obj
    if isinstance(obj, Tensor):
        from .nn.parameter import Parameter

        moved = obj.detach().to(target)
        if isinstance(obj, Parameter):
            return Parameter(moved, obj.requires_grad)
        return moved.requires_grad_(obj.requires_grad) if obj.requires_grad else moved
    if isinstance(obj, Mapping):
        return type(obj)((k, _to_device(v, target)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, target) for v in obj)
    return obj


class _Window:
    """A seekable binary file object seen from its position `start` on: positions are relative
    to `start`, so the loaders read a file object from where the caller left it."""

    def __init__(self, f: Any, start: int, size: int) -> None:
        self.f, self.start, self.size = f, start, size

    def seek(self, pos: int, whence: int = 0) -> int:
        base = (0, self.tell(), self.size)[whence]
        self.f.seek(self.start + base + pos)
        return base + pos

    def tell(self) -> int:
        return self.f.tell() - self.start

    def read(self, n: int = -1) -> bytes:
        return self.f.read(n)

    def readinto(self, buffer: Any) -> int:
        if hasattr(self.f, "readinto"):
            return self.f.readinto(buffer)
        data = self.f.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def _open(f: FileLike) -> Iterator[tuple]:
    """(a seekable source starting at the file's first byte, its size, its description) of a
    path or of a binary file object, read from its current position. A file object that cannot
    seek (a pipe, a socket) is read whole into memory first."""
    if isinstance(f, (str, os.PathLike)):
        where = repr(str(f))
        p = Path(f)
        if not p.exists():
            raise FileNotFoundError(f"[load] no checkpoint at {where}")
        if p.is_dir():
            raise IsADirectoryError(f"[load] {where} is a folder, not a checkpoint file")
        with open(p, "rb") as src:
            yield src, os.fstat(src.fileno()).st_size, where
        return
    if not hasattr(f, "read"):
        raise TypeError(
            f"[load] expected a path or a binary file object, got {type(f).__name__}"
        )
    where = _describe(f)
    seekable = getattr(f, "seekable", None)
    if callable(seekable) and seekable():
        start = f.tell()
        first = f.read(0)
        f.seek(0, 2)
        size = f.tell() - start
        f.seek(start)
        src: Any = _Window(f, start, size)
    else:
        first = f.read()
        size = len(first)
        src = io.BytesIO(first) if isinstance(first, (bytes, bytearray, memoryview)) else None
    if isinstance(first, str):
        raise TypeError(f"[load] {where} is open in text mode; open it with 'rb'")
    yield src, size, where


def load(
    f: FileLike,
    map_location: Any = None,
    pickle_module: Any = None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
    plain_safetensors: bool = False,
    **pickle_load_args: Any,
) -> Any:
    """Read a checkpoint from `f`, a path or a binary file object (io.BytesIO, open(p, "rb")):

    - a file written by `fastdl.save` gives back the saved structure (an OrderedDict, such as
      a state_dict, as an OrderedDict; files of format version 1, from older fastdl versions,
      hold no OrderedDicts and give plain dicts);
    - any other safetensors file gives a flat dict of Tensors;
    - a PyTorch zip checkpoint (`torch.save`, PyTorch >= 1.6) of a state_dict or of nested
      dicts/lists/tuples of tensors, numbers, strings, bools and None gives the same structure
      with fastdl Tensors (a Parameter comes back as fastdl.nn.Parameter). torch is not needed.

    Nothing in the file is ever executed. PyTorch files are read by a restricted unpickler that
    can only rebuild tensors, storages, OrderedDicts and plain containers; anything else (a
    model class, `os.system`, ...) raises an UnpicklingError naming it. `weights_only` is
    accepted for PyTorch compatibility, but weights_only=False does NOT enable arbitrary
    unpickling: fastdl always applies the weights-only rule. Raw pickles and PyTorch's legacy
    (pre-1.6) format are refused. `map_location` may be None, 'cpu', a device, a dict or a
    callable as in PyTorch: the tensors load onto the CPU (also those saved on a GPU), then
    onto the device that a string, device or dict's "cpu" entry names (a device this fastdl
    cannot use raises a RuntimeError); a callable must keep storages on the CPU. Tensors that shared a
    storage in PyTorch come back as separate copies. `pickle_module`, `mmap` and other keyword
    arguments are accepted and ignored.

    A safetensors file whose fastdl metadata is damaged (a metadata key a few edits away from
    "fastdl.checkpoint", or a value that looks like fastdl's JSON under another key) is refused
    rather than read as a plain safetensors file without its checksum; pass
    `plain_safetensors=True` to read any safetensors file (fastdl's too) as a flat dict of
    Tensors, ignoring fastdl's metadata and checksum.

    Raises FileNotFoundError for a missing path and CheckpointError (a ValueError and a
    RuntimeError) for a file that is truncated, corrupted, unsafe or of another format.

    >>> state = fastdl.load("model.safetensors")     # doctest: +SKIP
    >>> model.load_state_dict(state)                 # doctest: +SKIP
    >>> state = fastdl.load("resnet.pth", map_location="cpu")  # doctest: +SKIP
    """
    target = _map_location_device(map_location)
    return _to_device(_load(f, map_location, plain_safetensors), target)


def _load(f: FileLike, map_location: Any, plain_safetensors: bool) -> Any:
    """`load` onto the CPU (map_location's callable and dict checks applied)."""
    from . import _torch_pickle

    if isinstance(map_location, (str, Mapping)) or not callable(map_location):
        map_location = None  # a device was resolved by the caller; the loaders read on the CPU
    with _open(f) as (src, size, where):
        if size == 0:
            raise CheckpointError(f"[load] {where} is empty (read 0 bytes)")
        head = src.read(16)
        if _torch_pickle.is_zip(head):
            return _torch_pickle.load_zip(src, size, where, map_location)
        # describe_pickle tests for a safetensors header first: a valid safetensors file may
        # start with the same two bytes as a pickle (see looks_like_safetensors).
        why = _torch_pickle.describe_pickle(head)
        if why is not None:
            raise CheckpointError(f"[load] {where} {why} (read {size} bytes)")
        if len(head) < 9 or head[8:9] != b"{":  # a safetensors header is a JSON object
            raise _neither(size, where)
        header, entries = _header(src, size, where)
        arrays = {e.name: _read_array(src, e, where) for e in entries}
    for name in arrays:  # a map_location callable sees every tensor, as in PyTorch
        storage = _torch_pickle._Storage(name, str(arrays[name].dtype), "cpu", b"")
        _torch_pickle.apply_map_location(map_location, storage, where)
    meta = header.get("__metadata__") or {}
    if plain_safetensors or META_KEY not in meta:
        damage = None if plain_safetensors else _damaged_fastdl_metadata(meta)
        if damage is not None:
            raise CheckpointError(
                f"[load] {where} is corrupted: {damage}, so its checksum cannot be checked "
                "(pass plain_safetensors=True to read its tensors anyway, unchecked)"
            )
        return {k: _as_tensor(arr, k, where) for k, arr in arrays.items()}
    try:
        info = json.loads(meta[META_KEY])
        version, tree, digest = info["format_version"], info["tree"], info["sha256"]
    except (ValueError, TypeError, KeyError, RecursionError):
        raise CheckpointError(
            f"[load] {where} is corrupted: its fastdl metadata is not valid"
        ) from None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"[load] {where} has checkpoint format version {version!r}; this fastdl reads "
            f"versions up to {FORMAT_VERSION} (upgrade fastdl)"
        )
    if not isinstance(tree, str) or digest != _digest(tree, arrays):
        raise CheckpointError(
            f"[load] {where} is corrupted: its checksum does not match its contents"
        )
    try:
        node = json.loads(tree)
    except (ValueError, RecursionError):
        raise CheckpointError(
            f"[load] {where} is corrupted: its structure is not valid JSON (or is nested too "
            "deeply)"
        ) from None
    decoder = _Decoder(arrays, where)
    try:
        obj = decoder.decode(node)
    except RecursionError:
        raise CheckpointError(
            f"[load] {where}: its structure is nested too deeply to load"
        ) from None
    unused = sorted(set(arrays) - decoder.used)
    if unused:
        raise decoder.fail(f"tensors {unused[:5]} are not referenced by the structure")
    return obj
