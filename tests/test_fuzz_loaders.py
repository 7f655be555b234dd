"""Fuzzing of the three file loaders: fastdl's safetensors checkpoints (fastdl.load), the IDX
reader (raw and gzip) and the PyTorch zip reader (fastdl.load of a torch.save file).

Every case is a seed file damaged by bit flips, truncation, insertion, deletion or overwrites,
or a file crafted field by field (offsets, shapes, dtypes, length fields, nesting, metadata,
IDX magic and dimensions, zip members and pickle opcodes). The property: the loader returns,
or raises its own error (CheckpointError, IDXError) naming the file; nothing else. A damaged
fastdl checkpoint or torch zip that loads must give exactly what the seed holds (checksums and
CRCs catch data damage); an IDX file, which has no checksum, must give what an independent
decoder reads from it. Seeds, oracles and the atheris harness live in tests/fuzz/.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import fastdl

pytest.importorskip("safetensors")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_HARNESS_PATH = Path(__file__).parent / "fuzz" / "fuzz_loaders.py"


def _import_harness():
    spec = importlib.util.spec_from_file_location("fastdl_fuzz_loaders", _HARNESS_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


harness = _import_harness()
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TORCH_REASON = "torch is not installed: the torch.save seed files cannot be made"


# ---------------------------------------------------------------- comparing loaded states


def same(a, b) -> bool:
    """Exactly equal structures: container types and key order, tensor types, dtypes, shapes
    and bytes, plain values (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, fastdl.Tensor) and a.requires_grad != b.requires_grad:
        return False
    if isinstance(a, (fastdl.Tensor, np.ndarray)):
        x = a.detach().numpy() if isinstance(a, fastdl.Tensor) else a
        y = b.detach().numpy() if isinstance(b, fastdl.Tensor) else b
        return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    return a == b


_LEAVES = (type(None), bool, int, float, complex, str, bytes, np.ndarray)


def assert_clean(obj) -> None:
    """What a load may give back: fastdl tensors, NumPy arrays, containers and plain values."""
    if isinstance(obj, fastdl.Tensor):
        assert isinstance(obj.detach().numpy(), np.ndarray)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            assert_clean(k)
            assert_clean(v)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            assert_clean(v)
    else:
        assert type(obj) in _LEAVES, f"load gave back a {type(obj).__name__}"


def assert_loads_clean(data: bytes) -> None:
    """The checkpoint loader on data refuses it (None) or gives back what assert_clean allows."""
    out = harness.run_checkpoint(data)
    if out is not None:
        assert_clean(out)


# ---------------------------------------------------------------- mutations


def _markers(data: bytes, needles) -> set:
    """The offsets of every occurrence of each needle, and of the byte after it."""
    found = set()
    for needle in needles:
        for m in re.finditer(re.escape(needle), data):
            found.update((m.start(), m.end()))
    return found


def interesting_offsets(data: bytes, needles=()) -> list:
    """Offsets where damage means the most: the start, the length field of a safetensors
    file, its header end and tensor boundaries, zip signatures, and named fields."""
    n = len(data)
    points = {0, 1, 2, 3, 4, 5, 7, 8, 9, n - 1, n}
    if n >= 8:
        (header_len,) = struct.unpack("<Q", data[:8])
        if header_len < n:
            points.update((8 + header_len - 1, 8 + header_len, 8 + header_len + 1))
            try:
                header = json.loads(data[8 : 8 + header_len])
                for v in header.values():
                    for end in (v.get("data_offsets") or []) if isinstance(v, dict) else []:
                        points.add(8 + header_len + int(end))
            except (ValueError, TypeError, AttributeError):
                pass
    points |= _markers(data, (b"PK\x01\x02", b"PK\x03\x04", b"PK\x05\x06", *needles))
    return sorted(p for p in points if 0 <= p <= n)


@st.composite
def mutate(draw, data: bytes, needles=()):
    """`data` after one to four mutations: bit flips (one or several), truncation at an
    interesting or any offset, insertion, deletion, and overwrites with extreme bytes."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        n = len(out)
        at = draw(
            st.one_of(
                st.sampled_from(interesting_offsets(bytes(out), needles)).flatmap(
                    lambda p: st.integers(max(0, p - 2), min(n, p + 2))
                ),
                st.integers(0, n),
            )
        )
        kind = draw(st.sampled_from(["flip", "flips", "truncate", "insert", "delete", "put"]))
        if kind in ("flip", "flips") and n:
            for _ in range(1 if kind == "flip" else draw(st.integers(2, 8))):
                bit = draw(st.integers(0, 8 * n - 1)) if kind == "flips" else 8 * min(at, n - 1)
                bit += draw(st.integers(0, 7)) if kind == "flip" else 0
                out[bit // 8] ^= 1 << (bit % 8)
        elif kind == "truncate":
            del out[at:]
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 16))]
        else:
            chunk = draw(st.sampled_from([b"\xff" * 8, b"\x00" * 8, b"\x7f", b"\x80", b"{", b"["]))
            out[at : at + len(chunk)] = chunk
    return bytes(out)


def seeded(seeds: list, needles=()):
    """(index of the seed, mutated bytes) for a list of seed byte strings."""
    return st.integers(0, len(seeds) - 1).flatmap(
        lambda i: st.tuples(st.just(i), mutate(seeds[i], needles))
    )


# ---------------------------------------------------------------- fastdl checkpoints

CHECKPOINTS = harness.checkpoint_seeds()
CHECKPOINT_NEEDLES = (b"fastdl.checkpoint", b"sha256", b"tree", b"data_offsets", b"dtype")


def test_fuzz_checkpoint_seeds_load_exactly_what_was_saved():
    for state, data in CHECKPOINTS:
        assert same(harness.run_checkpoint(data), state)


@pytest.mark.parametrize("which", range(len(CHECKPOINTS)))
def test_fuzz_checkpoint_truncated_at_every_offset_is_refused(which):
    _, data = CHECKPOINTS[which]
    for cut in range(len(data)):
        assert harness.run_checkpoint(data[:cut]) is None, f"loaded when cut at {cut}"


@FUZZ
@given(case=seeded([data for _, data in CHECKPOINTS], CHECKPOINT_NEEDLES))
def test_fuzz_checkpoint_damage_is_refused_or_harmless(case):
    which, data = case
    out = harness.run_checkpoint(data)
    assert out is None or same(out, CHECKPOINTS[which][0]), "damaged file loaded other values"


_ST_DTYPES = ["F32", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F16", "BF16", "F8_E4M3",
              "F8_E5M2", "U16", "U32", "U64", "C64", "f32", "", "F32 ", "F128"]
_BIG = [2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**100, -1, -(2**63)]
_INTS = st.one_of(st.integers(-2, 40), st.sampled_from(_BIG))
_ODD = st.sampled_from([None, "2", 1.5, [], {}, [[2]], True])


@st.composite
def crafted_safetensors(draw):
    """A safetensors file built field by field: tensor entries with any dtype string, shape
    and data_offsets (huge, negative, overlapping, reversed, not integers), metadata that is
    not a dict or holds broken fastdl metadata, and a length field that may lie."""
    entries: dict = {}
    for i in range(draw(st.integers(0, 3))):
        entry = {
            "dtype": draw(st.one_of(st.sampled_from(_ST_DTYPES), st.text(max_size=4), _ODD)),
            "shape": draw(st.one_of(st.lists(_INTS, max_size=4), _ODD)),
            "data_offsets": draw(st.one_of(st.lists(_INTS, min_size=2, max_size=2),
                                           st.lists(_INTS, max_size=3), _ODD)),
        }
        for key in draw(st.sets(st.sampled_from(list(entry)), max_size=1)):
            del entry[key]  # a missing field
        entries[draw(st.sampled_from(["w", "b", f"t{i}", "", "__metadata__"]))] = (
            entry if draw(st.integers(0, 9)) else draw(_ODD)
        )
    meta = draw(st.one_of(
        st.none(),
        _ODD,
        st.dictionaries(st.sampled_from(["fastdl.checkpoint", "fastdl.checkpoinT", "format"]),
                        st.one_of(st.text(max_size=8), _ODD, st.sampled_from([
                            '{"format_version":1,"sha256":"00","tree":"{}"}',
                            '{"format_version":9,"sha256":"00","tree":"{}"}',
                            '{"format_version":"1","sha256":[],"tree":5}',
                            "[]", "{", '{"tree":"[[[["}',
                        ])), max_size=2),
    ))
    if meta is not None:
        entries["__metadata__"] = meta
    size = draw(st.integers(0, 96))
    data = bytes(range(size % 256)) + bytes(max(0, size - 256))
    header = json.dumps(entries)
    header += " " * draw(st.integers(0, 7))
    length = draw(st.one_of(
        st.none(), st.sampled_from([0, 1, 7, 2**63, 2**64 - 1, 100 * 1024 * 1024 + 1]),
        st.integers(-8, 8).map(lambda d: max(0, len(header.encode()) + d)),
    ))
    return harness.safetensors_file(header, data, length)


@FUZZ
@given(data=crafted_safetensors())
def test_fuzz_checkpoint_crafted_headers(data):
    assert_loads_clean(data)


def _fastdl_file(tree: str, arrays: dict) -> bytes:
    """A fastdl checkpoint with the structure `tree` (JSON text) and a checksum that matches,
    so that the structure itself reaches the decoder."""
    digest = fastdl.checkpoint._digest(tree, arrays)
    meta = {"format_version": 2, "sha256": digest, "tree": tree}
    entries: dict = {"__metadata__": {"fastdl.checkpoint": json.dumps(meta)}}
    at, payload = 0, b""
    for name, arr in arrays.items():
        entries[name] = {"dtype": {"f": "F32", "i": "I64"}[arr.dtype.kind],
                         "shape": list(arr.shape), "data_offsets": [at, at + arr.nbytes]}
        at, payload = at + arr.nbytes, payload + arr.tobytes()
    return harness.safetensors_file(entries, payload)


_NODES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3),
              st.sampled_from([{"tensor": "w"}, {"ndarray": "i"}, {"tensor": "missing"},
                               {"tensor": 5}, {"bogus": 1}, [], {}, {"a": 1, "b": 2}])),
    lambda inner: st.one_of(
        st.builds(lambda v: {"list": v}, st.lists(inner, max_size=3)),
        st.builds(lambda v: {"tuple": v}, st.lists(inner, max_size=3)),
        st.builds(lambda k, v: {k: [[x, y] for x, y in v]},
                  st.sampled_from(["dict", "odict"]),
                  st.lists(st.tuples(st.one_of(st.text(max_size=2), st.integers(), st.none()),
                                     inner), max_size=3)),
        st.builds(lambda v: {"dict": v}, st.lists(inner, max_size=2)),
    ),
    max_leaves=8,
)


@FUZZ
@given(tree=_NODES, depth=st.sampled_from([0, 0, 0, 50, 5000, 200_000]))
def test_fuzz_checkpoint_structures_with_valid_checksums(tree, depth):
    arrays = {"w": np.arange(3, dtype="<f4"), "i": np.array([7], "<i8")}
    text = "[" * depth + json.dumps(tree) + "]" * depth if depth else json.dumps(tree)
    assert_loads_clean(_fastdl_file(text, arrays))


@pytest.mark.parametrize("where", ["header", "metadata", "tree"])
@pytest.mark.parametrize("depth", [1000, 100_000])
def test_fuzz_checkpoint_deep_json_nesting(where, depth):
    nested = "[" * depth + "]" * depth
    if where == "header":
        data = harness.safetensors_file('{"a":' + nested + "}")
    elif where == "metadata":
        data = harness.safetensors_file({"__metadata__": {"fastdl.checkpoint": nested}})
    else:
        data = _fastdl_file(nested, {})
    assert harness.run_checkpoint(data) is None


# ---------------------------------------------------------------- IDX


IDX = harness.idx_seeds()
IDX_GZ = [gzip.compress(s, mtime=0) for s in IDX]


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="fastdl-fuzz-") as name:
        yield Path(name)


def test_fuzz_idx_seeds_read_back(folder):
    for raw, packed in zip(IDX, IDX_GZ):
        for data in (raw, packed):
            assert harness.run_idx(data, folder) is not None


def test_fuzz_idx_truncated_at_every_offset_is_refused(folder):
    for data in IDX + IDX_GZ:
        for cut in range(len(data)):
            assert harness.run_idx(data[:cut], folder) is None, f"loaded when cut at {cut}"


@FUZZ
@given(case=seeded(IDX), compress=st.booleans())
def test_fuzz_idx_damaged_raw_and_compressed_structure(folder, case, compress):
    """Damage to the IDX bytes, read raw or inside an intact gzip stream."""
    _, data = case
    harness.run_idx(gzip.compress(data, mtime=0) if compress else data, folder)


@FUZZ
@given(case=seeded(IDX_GZ, (b"\x1f\x8b",)))
def test_fuzz_idx_damaged_gzip_stream(folder, case):
    harness.run_idx(case[1], folder)


_DIM = st.one_of(st.integers(0, 5), st.sampled_from([28, 255, 2**16, 2**31, 2**32 - 1]))


@st.composite
def crafted_idx(draw):
    """An IDX file built field by field: the two zero bytes, any type code and number of
    dimensions, dims up to 2**32-1 (products far past int64), a header cut short, and a
    payload of the declared size, a few bytes off, or absent."""
    zero = draw(st.sampled_from([b"\0\0"] * 6 + [b"\0\x01", b"\x80\0", b"\xff\xff"]))
    code = draw(st.one_of(st.sampled_from(sorted(harness.IDX_SPEC)), st.integers(0, 255)))
    ndim = draw(st.one_of(st.integers(0, 4), st.sampled_from([32, 33, 64, 65, 255])))
    dims = [draw(_DIM) if i < 6 else 1 for i in range(ndim)]
    head = zero + bytes([code, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)
    head = head[: draw(st.one_of(st.just(len(head)), st.integers(0, len(head))))]
    itemsize = np.dtype(harness.IDX_SPEC.get(code, "u1")).itemsize
    need = int(np.prod([float(d) for d in dims])) * itemsize if dims else itemsize
    size = need if need <= 4096 else draw(st.integers(0, 64))
    size = max(0, size + draw(st.sampled_from([0, 0, 0, -1, 1, 4096, 4097])))
    return head + bytes(size % 251 for size in range(size))


@FUZZ
@given(data=crafted_idx(), compress=st.booleans(),
       magic=st.sampled_from([None, None, 0x00000801, 0x00000803]))
def test_fuzz_idx_crafted_headers(folder, data, compress, magic):
    harness.run_idx(gzip.compress(data, mtime=0) if compress else data, folder, magic)


def test_fuzz_idx_more_dims_than_numpy_holds_is_an_idx_error(folder):
    """Regression (found by this fuzzing): an IDX file with more dimensions than NumPy arrays
    can have (65 dims of size 1) raised NumPy's bare ValueError, without the file's name."""
    data = bytes([0, 0, 0x08, 65]) + (1).to_bytes(4, "big") * 65 + b"\x07"
    for payload in (data, gzip.compress(data, mtime=0)):
        assert harness.run_idx(payload, folder) is None


# ---------------------------------------------------------------- PyTorch zip checkpoints

HANDMADE = harness.handmade_torch_seed()
ZIP_NEEDLES = (b"data.pkl", b"data/0", b"byteorder", b"\x80\x02")


@pytest.fixture(scope="module")
def torch_saved():
    """(seed bytes, what fastdl.load gives for it) of files written by torch.save."""
    pytest.importorskip("torch", reason=TORCH_REASON)
    return [(data, harness.run_checkpoint(data)) for data in harness.torch_seeds()[1:]]


def test_fuzz_torch_seeds_load_what_was_saved(torch_saved):
    import torch

    linear, nested = (out for _, out in torch_saved)
    assert isinstance(linear, OrderedDict) and list(linear) == ["weight", "bias"]
    assert isinstance(nested["p"], fastdl.nn.Parameter)
    np.testing.assert_array_equal(nested["w"].numpy(), torch.arange(6.0).reshape(2, 3).t())
    assert nested["i"].numpy().dtype == np.int64 and nested["m"].numpy().tolist() == [True, False]
    assert nested["meta"] == {"epoch": 3, "name": "x", "t": (1, None)}


def test_fuzz_torch_truncated_at_every_offset_is_refused(torch_saved):
    for data in [HANDMADE] + [data for data, _ in torch_saved]:
        for cut in range(len(data)):
            assert harness.run_checkpoint(data[:cut]) is None, f"loaded when cut at {cut}"


@FUZZ
@given(data=mutate(HANDMADE, ZIP_NEEDLES))
def test_fuzz_torch_handmade_zip_damage_is_refused_or_harmless(data):
    out = harness.run_checkpoint(data)
    assert out is None or same(out, harness.run_checkpoint(HANDMADE))


@FUZZ
@given(data=st.data())
def test_fuzz_torch_saved_zip_damage_is_refused_or_harmless(torch_saved, data):
    which, damaged = data.draw(seeded([seed for seed, _ in torch_saved], ZIP_NEEDLES))
    out = harness.run_checkpoint(damaged)
    assert out is None or same(out, torch_saved[which][1]), "damaged zip loaded other values"


def _members(data: bytes) -> list:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def _rezip(members, compression=zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as zf:
        for name, body in members:
            zf.writestr(name, body)
    return out.getvalue()


@FUZZ
@given(data=st.data(), deflate=st.booleans())
def test_fuzz_torch_damaged_members_with_valid_crcs(data, deflate):
    """Damage inside data.pkl, a storage or byteorder of a well-formed archive (the CRCs
    match), so that the unpickler and the tensor rebuild see it; stored or deflated."""
    members = _members(HANDMADE)
    which = data.draw(st.integers(0, len(members) - 1))
    name, body = members[which]
    members[which] = (name, data.draw(mutate(body, (b"c", b"R", b"Q", b"("))))
    assert_loads_clean(_rezip(members, zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED))


_STORAGES = ["FloatStorage", "DoubleStorage", "LongStorage", "BoolStorage", "ByteStorage",
             "HalfStorage", "BFloat16Storage", "UntypedStorage", "QInt8Storage", "Bogus"]
_ARG = st.one_of(_INTS, _ODD)
_SHAPE = st.one_of(st.lists(_INTS, max_size=4).map(tuple), _ODD,
                   st.lists(_INTS, min_size=65, max_size=66).map(tuple))
# opcodes, alone or with arguments; some with lengths or memo indices far past the data
_OPCODES = [b"(", b"t", b"l", b"]", b"}", b"u", b"s", b"a", b"e", b"R", b"b", b"Q", b"0", b"1",
            b"2", b"N", b"\x88", b"\x89", b"\x85", b"\x86", b"\x87", b")", b"d", b"o", b"\x81",
            b"\x92", b"\x93", b"\x94", b"K\x05", b"J\xff\xff\xff\x7f", b"q\x01", b"h\x01",
            b"h\xff", b"r\xff\xff\xff\x7f", b"j\x00\x00\x01\x00", b"X\xff\xff\xff\x7f",
            b"B\xff\xff\xff\xff", b"\x8e" + b"\xff" * 8, b"\x95" + b"\xff" * 8,
            b"\x8c\x03abc", b"\x8a\x05\x00\x00\x00\x00\x80", b"P0\n", b"g0\n", b"p9999999999\n",
            b"iposix\nsystem\n", b"cbuiltins\neval\n", b"ctorch\nFloatStorage\n",
            b"ctorch._utils\n_rebuild_tensor_v2\n", b"ctorch._utils\n_rebuild_parameter\n",
            b"ccollections\nOrderedDict\n", b"cbuiltins\nset\n", b"ctorch\nSize\n",
            b"c_codecs\nencode\n", b"ctorch\nfloat32\n", b"ctorch._tensor\n_rebuild_from_type_v2\n"]


@st.composite
def crafted_torch_zip(draw):
    """A torch zip built member by member: tensors rebuilt from any storage type, numel,
    offset, size and stride (negative, huge, overflowing int64, not integers); storages
    shorter than they say; byteorder, prefix, compression, missing members, a wrong CRC; and
    data.pkl replaced by a soup of odd opcodes."""
    storage_type = draw(st.sampled_from(_STORAGES))
    tensors = [
        (f"t{i}", harness.pickle_tensor(
            "0", storage_type, draw(_ARG), draw(_ARG), draw(_SHAPE), draw(_SHAPE),
            draw(st.sampled_from([False, True, 1, None])),
        ))
        for i in range(draw(st.integers(1, 2)))
    ]
    pickled = harness.pickle_dict(tensors)
    raw = False
    if draw(st.integers(0, 3)) == 0:
        proto = draw(st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05", b"\x80\x09"]))
        pickled = proto + b"".join(draw(st.lists(st.sampled_from(_OPCODES), max_size=24))) + b"."
        raw = True
    storage = bytes(draw(st.integers(0, 128)))
    data = harness.torch_zip(
        None if draw(st.integers(0, 15)) == 0 else pickled,
        [] if draw(st.integers(0, 15)) == 0 else [("0", storage)],
        byteorder=draw(st.sampled_from([b"little", b"little", b"big", None, b"middle", b"\xff"])),
        prefix=draw(st.sampled_from(["archive", "archive", "a/b", ""])),
        compression=draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])),
        raw_pickle=raw,
    )
    if draw(st.integers(0, 7)) == 0:  # a wrong CRC in a central directory entry
        entries = [m.start() for m in re.finditer(b"PK\x01\x02", data)]
        at = draw(st.sampled_from(entries)) + 16
        data = data[:at] + bytes(b ^ 0x5A for b in data[at : at + 4]) + data[at + 4 :]
    return data


@FUZZ
@given(data=crafted_torch_zip())
def test_fuzz_torch_crafted_archives(data):
    assert_loads_clean(data)


# ---------------------------------------------------------------- atheris, briefly


@pytest.mark.parametrize("target", harness.TARGETS)
def test_fuzz_atheris_harness_runs_clean(target, tmp_path):
    """The atheris harness, for a few seconds per loader: libFuzzer exits 0 when no input
    crashed, raised anything but the loader's error, hung or grew past the memory limit."""
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    flags = ["-runs=3000", "-seed=1", "-max_total_time=4", "-timeout=20", "-rss_limit_mb=4096"]
    run = subprocess.run(
        [sys.executable, str(_HARNESS_PATH), target, *flags, str(tmp_path / "corpus")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    done = re.findall(r"Done (\d+) runs", run.stderr)
    print(f"atheris {target}: {done[-1] if done else '?'} runs")
    assert run.returncode == 0, run.stderr[-4000:]
