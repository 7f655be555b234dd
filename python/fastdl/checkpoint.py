"""Checkpoints: `fastdl.save(obj, path)` and `fastdl.load(path)` in the safetensors format.

`obj` is a state dict: nested dicts, lists and tuples whose leaves are Tensors, NumPy arrays,
numbers, strings, bools or None (a model's, an optimizer's, a preprocessor's, or a dict of
them). The file is a plain safetensors file:

- every Tensor and array is one safetensors tensor, named by its path in `obj` joined by "."
  (`model.conv1.weight`, `optimizer.state.0.exp_avg`), so a model's state_dict saved alone has
  exactly its state_dict keys and other safetensors tools can read it;
- the structure (dict keys with their types, lists, tuples, the non-tensor leaves) is JSON,
  with references to the tensors by name, kept with a format version and a SHA-256 of the
  structure and every tensor (which `load` checks) in the one metadata entry
  "fastdl.checkpoint". Identical contents give byte-identical files.

Writes are atomic: a temporary file in the same folder, flushed and fsync'ed, then renamed
over the target (and the folder fsync'ed), so a crash mid-save leaves the previous file whole.
Loading never unpickles: it parses JSON and raw tensor bytes only, and validates the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np

from ._tensor import Tensor

META_KEY = "fastdl.checkpoint"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
PathLike = Union[str, os.PathLike]


class CheckpointError(ValueError):
    """A file that is not a valid checkpoint: truncated, corrupted, or not safetensors."""


# ---------------------------------------------------------------- encoding


class _Encoder:
    """Turns a state dict into (JSON tree, {name: array}); tensor names are unique paths."""

    def __init__(self) -> None:
        self.arrays: dict = {}

    def _name(self, path: list) -> str:
        base = ".".join(path) or "_"
        name, k = base, 1
        while name in self.arrays:
            name, k = f"{base}#{k}", k + 1
        return name

    def encode(self, obj: Any, path: list) -> Any:
        where = ".".join(path) or "<root>"
        if isinstance(obj, (Tensor, np.ndarray)):
            arr = obj._data if isinstance(obj, Tensor) else obj
            if arr.dtype.kind not in "biuf":
                raise TypeError(
                    f"[save] array at {where!r} has dtype {arr.dtype}; "
                    "only numeric arrays can be saved"
                )
            name = self._name(path)
            # NOTE: not np.ascontiguousarray, which turns a 0-d array into shape (1,).
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
            return {"dict": items}
        if isinstance(obj, (list, tuple)):
            kind = "tuple" if isinstance(obj, tuple) else "list"
            return {kind: [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]}
        hint = "; save its state_dict() instead" if hasattr(obj, "state_dict") else ""
        raise TypeError(
            f"[save] cannot store a {type(obj).__name__} at {where!r}{hint} (checkpoints hold "
            "Tensors, arrays, numbers, strings, None and dicts/lists/tuples of them; no pickle)"
        )


def _digest(tree: str, arrays: dict) -> str:
    h = hashlib.sha256(tree.encode())
    for name in sorted(arrays):
        arr = arrays[name]
        h.update(f"\0{name}\0{arr.dtype.str}\0{arr.shape}\0".encode())
        h.update(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))
    return h.hexdigest()


def save(obj: Any, path: PathLike) -> None:
    """Write `obj` (a state dict, possibly nested) to `path` atomically, in safetensors format.

    >>> import fastdl, fastdl.nn as nn, os, tempfile
    >>> net = nn.Linear(2, 1)
    >>> path = os.path.join(tempfile.mkdtemp(), "net.safetensors")
    >>> fastdl.save({"model": net.state_dict(), "epoch": 3}, path)
    >>> fastdl.load(path)["epoch"]
    3
    """
    from safetensors.numpy import save as st_save

    encoder = _Encoder()
    tree = json.dumps(encoder.encode(obj, []), separators=(",", ":"))
    # One metadata key: safetensors writes metadata in hash order, and a single key keeps the
    # bytes of a checkpoint a function of its contents (identical runs give identical files).
    meta = {"format_version": FORMAT_VERSION, "sha256": _digest(tree, encoder.arrays), "tree": tree}
    payload = st_save(encoder.arrays, metadata={META_KEY: json.dumps(meta, separators=(",", ":"))})
    _atomic_write(Path(path), payload)


def _atomic_write(path: Path, payload: bytes) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"[save] cannot write {str(path)!r}: folder {str(folder)!r} does not exist"
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# ---------------------------------------------------------------- decoding


def _header(data: bytes, where: str) -> dict:
    """The safetensors JSON header, checked against the file's length."""
    if len(data) < 8:
        raise CheckpointError(
            f"[load] {where} is not a checkpoint: {len(data)} bytes is too short for a "
            "safetensors header (empty or truncated file)"
        )
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(data):
        raise CheckpointError(
            f"[load] {where} is not a safetensors checkpoint (or is truncated): the header "
            f"length field says {n} bytes, the file has {len(data)}"
        )
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(
            f"[load] {where} is not a safetensors checkpoint: its header is not JSON"
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(
            f"[load] {where} is not a safetensors checkpoint: its header is not a JSON object"
        )
    ends = [
        v["data_offsets"][1]
        for k, v in header.items()
        if k != "__metadata__"
        and isinstance(v, dict)
        and isinstance(v.get("data_offsets"), list)
        and len(v["data_offsets"]) == 2
        and isinstance(v["data_offsets"][1], int)
    ]
    need, have = max(ends, default=0), len(data) - 8 - n
    if need > have:
        raise CheckpointError(
            f"[load] {where} is truncated: tensor data needs {need} bytes, the file holds {have}"
        )
    return header


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
            self.used.add(body)
            arr = np.array(self.arrays[body], copy=True, order="C")
            return Tensor._make(arr) if kind == "tensor" else arr
        if kind == "dict" and isinstance(body, list):
            out = {}
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


def load(path: PathLike, map_location: Any = None, weights_only: bool = True) -> Any:
    """Read a checkpoint written by `save` (or any safetensors file, returned as a flat dict of
    Tensors). Raises FileNotFoundError for a missing file and CheckpointError for a file that
    is truncated, corrupted or not a checkpoint. Nothing in the file is ever executed;
    map_location (CPU only) and weights_only are accepted for PyTorch compatibility.

    >>> state = fastdl.load("model.safetensors")     # doctest: +SKIP
    >>> model.load_state_dict(state)                 # doctest: +SKIP
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    if map_location is not None and str(map_location).split(":")[0] != "cpu":
        raise RuntimeError(
            f"[load] map_location={map_location!r}: this fastdl loads onto the CPU only"
        )
    where = repr(str(path))
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"[load] no checkpoint at {where}")
    if p.is_dir():
        raise IsADirectoryError(f"[load] {where} is a folder, not a checkpoint file")
    data = p.read_bytes()
    header = _header(data, where)
    try:
        arrays = st_load(data)
    except (SafetensorError, ValueError, TypeError) as e:
        raise CheckpointError(
            f"[load] {where} is not a valid safetensors checkpoint: {e}"
        ) from None
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or META_KEY not in meta:
        order = sorted(arrays, key=lambda k: header[k]["data_offsets"][0])
        return {k: Tensor._make(np.array(arrays[k], copy=True)) for k in order}
    try:
        info = json.loads(meta[META_KEY])
        version, tree, digest = info["format_version"], info["tree"], info["sha256"]
    except (ValueError, TypeError, KeyError):
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
    except ValueError:
        raise CheckpointError(
            f"[load] {where} is corrupted: its structure is not valid JSON"
        ) from None
    decoder = _Decoder(arrays, where)
    obj = decoder.decode(node)
    unused = sorted(set(arrays) - decoder.used)
    if unused:
        raise decoder.fail(f"tensors {unused[:5]} are not referenced by the structure")
    return obj
