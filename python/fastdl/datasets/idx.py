"""The IDX file format of MNIST and Fashion-MNIST, read with every field validated.

Layout (big-endian): two zero bytes, a type code byte, the number of dimensions D, then D
uint32 sizes, then the values in row-major order. Files may be gzip-compressed (detected from
the content, whatever the name).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Optional, Union

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


def read_bytes(path: Union[str, os.PathLike]) -> bytes:
    """The file's bytes, decompressed when it is gzip."""
    path = Path(path)
    data = path.read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise IDXError(f"[IDX] {path}: corrupt or truncated gzip data ({e})") from None


def parse_idx(data: bytes, name: str = "<bytes>", magic: Optional[int] = None) -> np.ndarray:
    """Parse IDX bytes into a NumPy array in native byte order; `magic`, when given, is the
    exact magic number the file must have (0x00000803: uint8 with 3 dimensions)."""
    if len(data) < 4:
        raise IDXError(f"[IDX] {name}: {len(data)} bytes is too short for an IDX header (4 bytes)")
    zero, code, ndim = data[0:2], data[2], data[3]
    actual_magic = int.from_bytes(data[:4], "big")
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
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(
            f"[IDX] {name}: truncated header: {ndim} dimensions need {header} bytes, "
            f"file has {len(data)}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise IDXError(
            f"[IDX] {name}: {what}: shape {shape} of {dtype.name} needs {expected} data bytes, "
            f"found {actual}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _describe(magic: int) -> str:
    dtype = IDX_TYPES.get((magic >> 8) & 0xFF)
    return f"{dtype.name if dtype else 'unknown type'} with {magic & 0xFF} dimension(s)"


def read_idx(path: Union[str, os.PathLike], magic: Optional[int] = None) -> np.ndarray:
    """Read an IDX file (raw or gzip); `magic` as in `parse_idx`.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny-idx1-ubyte")
    >>> write_idx(path, np.array([3, 1, 4], np.uint8))
    >>> read_idx(path).tolist()
    [3, 1, 4]
    """
    return parse_idx(read_bytes(path), str(path), magic)


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
