"""The IDX file format of MNIST and Fashion-MNIST, read with every field validated.

Layout (big-endian): two zero bytes, a type code byte, the number of dimensions D, then D
uint32 sizes, then the values in row-major order. Files may be gzip-compressed (detected from
the content, whatever the name).
"""

from __future__ import annotations

import gzip
import io
import math
import os
import sys
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Tuple, Union

import numpy as np

# type code -> big-endian dtype
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """A malformed IDX file; the message names the file and what was wrong."""


# How far past the declared payload the reader looks for trailing bytes (and, for gzip, for
# the end of the stream, where its checksum is verified). The reader never reads more than the
# header's validated payload size plus this slack, so a small gzip file that inflates to
# gigabytes ("decompression bomb") is refused after reading at most that much.
TRAILING_SLACK = 4096
_CHUNK = 1 << 20


def _numpy_max_ndim() -> int:
    """The most dimensions a NumPy array may have: 32 before NumPy 2, 64 since. An IDX header
    may declare up to 255."""
    try:
        np.empty((1,) * 64)
        return 64
    except ValueError:
        return 32


MAX_NDIM = _numpy_max_ndim()


def read_bytes(path: Union[str, os.PathLike]) -> bytes:
    """The file's bytes, decompressed when it is gzip. This reads the whole stream; prefer
    `read_idx`, which streams and reads no more than the header's sizes need."""
    path = Path(path)
    with _open(path) as f:
        return _read_upto(f, None, str(path))


def _open(path: Path) -> BinaryIO:
    """The file, opened for streaming reads, through a gzip decompressor when it is gzip."""
    raw = open(path, "rb")
    try:
        is_gzip = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
    except BaseException:
        raw.close()
        raise
    if is_gzip:
        raw.close()  # GzipFile does not close a file object it was given; let it own one
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return raw


def _read_upto(f: BinaryIO, n: Optional[int], name: str) -> bytes:
    """Up to `n` bytes of `f` (all of it when None), in bounded chunks; short only at the end
    of the stream. gzip errors become IDXError naming the file."""
    parts = []
    left = n
    try:
        while left is None or left > 0:
            chunk = f.read(_CHUNK if left is None else min(left, _CHUNK))
            if not chunk:
                break
            parts.append(chunk)
            if left is not None:
                left -= len(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise IDXError(f"[IDX] {name}: corrupt or truncated gzip data ({e})") from None
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _read_stream(
    f: BinaryIO,
    name: str,
    magic: Optional[int],
    size: Optional[int] = None,
    check_shape: Optional[Callable[[Tuple[int, ...]], None]] = None,
) -> np.ndarray:
    """Read one IDX array from the stream `f`: the header first, validated, then exactly the
    payload it declares plus at most TRAILING_SLACK bytes to detect trailing data. `size`,
    when known (an uncompressed file), is the stream's total length, checked before reading
    the payload."""
    head = _read_upto(f, 4, name)
    if len(head) < 4:
        raise IDXError(f"[IDX] {name}: {len(head)} bytes is too short for an IDX header (4 bytes)")
    zero, code, ndim = head[0:2], head[2], head[3]
    actual_magic = int.from_bytes(head, "big")
    if zero != b"\x00\x00" or code not in IDX_TYPES:
        raise IDXError(
            f"[IDX] {name}: bad magic number 0x{actual_magic:08X}; "
            "an IDX file starts with 0x0000 and a "
            f"type code in {[hex(c) for c in IDX_TYPES]}"
        )
    if magic is not None and actual_magic != magic:
        raise IDXError(
            f"[IDX] {name}: bad magic number 0x{actual_magic:08X}, expected 0x{magic:08X} "
            f"({_describe(magic)}), got {_describe(actual_magic)}"
        )
    if ndim > MAX_NDIM:
        raise IDXError(
            f"[IDX] {name}: {ndim} dimensions; NumPy arrays have at most {MAX_NDIM}"
        )
    header = 4 + 4 * ndim
    dims = _read_upto(f, 4 * ndim, name)
    if len(dims) < 4 * ndim:
        raise IDXError(
            f"[IDX] {name}: truncated header: {ndim} dimensions need {header} bytes, "
            f"file has {4 + len(dims)}"
        )
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    dtype = IDX_TYPES[code]
    # Python integers: a product of uint32 dims never wraps, so the sizes below are true.
    expected = math.prod(shape) * dtype.itemsize
    addressable = math.prod(d for d in shape if d) * dtype.itemsize
    if addressable > sys.maxsize:
        raise IDXError(
            f"[IDX] {name}: shape {shape} of {dtype.name} is too large: "
            f"{addressable} bytes exceeds the addressable maximum {sys.maxsize}"
        )
    if size is not None and size - header != expected:
        actual = size - header
        what = "truncated" if actual < expected else "has trailing bytes"
        raise IDXError(
            f"[IDX] {name}: {what}: shape {shape} of {dtype.name} needs {expected} data bytes, "
            f"found {actual}"
        )
    if check_shape is not None:
        check_shape(shape)  # the caller's constraints, before any of the payload is read
    payload = _read_upto(f, expected, name)
    if len(payload) < expected:
        raise IDXError(
            f"[IDX] {name}: truncated: shape {shape} of {dtype.name} needs {expected} data bytes, "
            f"found {len(payload)}"
        )
    extra = _read_upto(f, TRAILING_SLACK, name)
    if extra:
        found = (
            f"found {expected + len(extra)}"
            if len(extra) < TRAILING_SLACK
            else f"found at least {expected + len(extra)}"
        )
        raise IDXError(
            f"[IDX] {name}: has trailing bytes: shape {shape} of {dtype.name} needs "
            f"{expected} data bytes, {found}"
        )
    arr = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def parse_idx(data: bytes, name: str = "<bytes>", magic: Optional[int] = None) -> np.ndarray:
    """Parse IDX bytes into a NumPy array in native byte order; `magic`, when given, is the
    exact magic number the file must have (0x00000803: uint8 with 3 dimensions)."""
    return _read_stream(io.BytesIO(data), name, magic, size=len(data))


def _describe(magic: int) -> str:
    dtype = IDX_TYPES.get((magic >> 8) & 0xFF)
    return f"{dtype.name if dtype else 'unknown type'} with {magic & 0xFF} dimension(s)"


def read_idx(
    path: Union[str, os.PathLike],
    magic: Optional[int] = None,
    *,
    check_shape: Optional[Callable[[Tuple[int, ...]], None]] = None,
) -> np.ndarray:
    """Read an IDX file (raw or gzip); `magic` as in `parse_idx`. `check_shape`, when given,
    is called with the header's shape before the payload is read, and may raise to refuse it
    (so a file declaring a shape the caller would reject is never inflated).

    The header is read and validated first; then exactly the payload it declares, plus at
    most TRAILING_SLACK bytes to detect trailing data: never the whole decompressed stream.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny-idx1-ubyte")
    >>> write_idx(path, np.array([3, 1, 4], np.uint8))
    >>> read_idx(path).tolist()
    [3, 1, 4]
    """
    path = Path(path)
    with _open(path) as f:
        size = None if isinstance(f, gzip.GzipFile) else os.fstat(f.fileno()).st_size
        return _read_stream(f, str(path), magic, size, check_shape)


def write_idx(path: Union[str, os.PathLike], array: np.ndarray, compress: bool = False) -> None:
    """Write `array` as an IDX file (for tests and for exporting data in MNIST's format)."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): c for c, dt in IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(
            f"[IDX] cannot store dtype {array.dtype}; IDX holds {[str(d) for d in codes]}"
        )
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape
    )
    payload = header + array.astype(IDX_TYPES[code]).tobytes()
    Path(path).write_bytes(gzip.compress(payload) if compress else payload)
