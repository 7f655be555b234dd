"""Random number generators: `fastdl.Generator` and the global one behind randn, rand, randint,
randperm, nn.init, dropout, shuffling DataLoaders and random_split.

A fastdl.Generator wraps a NumPy `np.random.Generator` (PCG64). It has PyTorch's API
(`manual_seed`, `seed`, `initial_seed`, `get_state`/`set_state`) and also NumPy's drawing methods
(`random`, `uniform`, `normal`, `integers`, `permutation`, ...), so it can be passed wherever
fastdl code takes a NumPy generator. NOTE: fastdl's streams differ from PyTorch's for the same
seed; the same seed always gives the same stream in fastdl.
"""

from __future__ import annotations

import operator
import struct
from typing import Any, Optional, Union

import numpy as np

_MASK64 = 0xFFFF_FFFF_FFFF_FFFF
# PyTorch seeds every new torch.Generator() with this value; fastdl does the same.
DEFAULT_SEED = 67280421310721
# get_state() layout: magic, version, state (16 bytes), inc (16), has_uint32 (1), uinteger (4),
# initial seed (8), all little-endian.
_MAGIC = b"FDLG"
_VERSION = 1
_STATE_FORMAT = "<4sB16s16sBIQ"
_STATE_SIZE = struct.calcsize(_STATE_FORMAT)


def _check_seed(seed: Any, op: str) -> int:
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"[{op}] expected an int seed, got bool")
    try:
        s = operator.index(seed)  # ints, NumPy integers, 0-d integer tensors
    except TypeError:
        raise TypeError(f"[{op}] expected an int seed, got {type(seed).__name__}") from None
    if not -(1 << 63) <= s <= _MASK64:
        raise ValueError(f"[{op}] seed must be in [-2**63, 2**64), got {s}")
    return s & _MASK64


def _check_device(device: Any) -> None:
    from ._tensor import device as device_type

    try:
        kind = device_type(device if device is not None else "cpu").type
    except (RuntimeError, TypeError, ValueError):
        raise RuntimeError(f"[Generator] expected device 'cpu', got {device!r}") from None
    if kind != "cpu":
        raise RuntimeError(
            f"[Generator] expected device 'cpu', got {device!r}: this fastdl has no CUDA backend"
        )


class Generator:
    """A seeded random number generator with PyTorch's API.

    `manual_seed(s)` makes the stream a function of `s` alone; `get_state()` returns a uint8
    tensor that `set_state` restores exactly. A new Generator starts from seed 67280421310721,
    as PyTorch's does. It also offers NumPy's drawing methods (`random`, `uniform`, `normal`,
    `integers`, `permutation`, `choice`, ...), drawing from the same stream.

    >>> import fastdl
    >>> g = fastdl.Generator().manual_seed(0)
    >>> a = fastdl.randn(3, generator=g)
    >>> fastdl.randn(3, generator=g.manual_seed(0)).tolist() == a.tolist()
    True
    """

    def __init__(self, device: Any = "cpu") -> None:
        _check_device(device)
        self._initial_seed = DEFAULT_SEED
        self._rng = np.random.Generator(np.random.PCG64(DEFAULT_SEED))

    @property
    def device(self) -> Any:
        from ._tensor import device as device_type

        return device_type("cpu")

    # ---- PyTorch's API

    def manual_seed(self, seed: int) -> "Generator":
        """Seed the stream with `seed` (an int in [-2**63, 2**64)); returns this generator."""
        s = _check_seed(seed, "manual_seed")
        # Reseed in place: code holding `numpy()` keeps drawing from this generator's stream.
        self._rng.bit_generator.state = np.random.PCG64(s).state
        self._initial_seed = s
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy; returns the seed used."""
        s = int(np.random.SeedSequence().entropy) & _MASK64
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        """The seed last given to `manual_seed`/`seed` (or the default one)."""
        return self._initial_seed

    def get_state(self) -> Any:
        """The generator's state as a 1-D uint8 tensor (fastdl's own layout, not PyTorch's)."""
        from ._tensor import Tensor

        st = self._rng.bit_generator.state
        packed = struct.pack(
            _STATE_FORMAT,
            _MAGIC,
            _VERSION,
            int(st["state"]["state"]).to_bytes(16, "little"),
            int(st["state"]["inc"]).to_bytes(16, "little"),
            int(st["has_uint32"]),
            int(st["uinteger"]),
            self._initial_seed,
        )
        return Tensor._make(np.frombuffer(packed, dtype=np.uint8).copy())

    def set_state(self, new_state: Any) -> "Generator":
        """Restore a state from `get_state()` (of this or another fastdl Generator)."""
        data = getattr(new_state, "_data", None)
        if data is None or not isinstance(data, np.ndarray) or data.dtype != np.uint8:
            what = getattr(new_state, "dtype", type(new_state).__name__)
            raise TypeError(
                f"[Generator.set_state] expected a uint8 tensor from get_state(), got {what}"
            )
        raw = np.ascontiguousarray(data).reshape(-1).tobytes()
        if len(raw) != _STATE_SIZE or raw[:4] != _MAGIC:
            raise RuntimeError(
                f"[Generator.set_state] expected a fastdl generator state of {_STATE_SIZE} bytes "
                f"starting with {_MAGIC!r}, got {len(raw)} bytes starting with {raw[:4]!r} "
                "(PyTorch's states are not accepted: the streams differ)"
            )
        _, version, state, inc, has_uint32, uinteger, initial = struct.unpack(_STATE_FORMAT, raw)
        if version != _VERSION:
            raise RuntimeError(
                f"[Generator.set_state] expected state version {_VERSION}, got {version}"
            )
        self._rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {
                "state": int.from_bytes(state, "little"),
                "inc": int.from_bytes(inc, "little"),
            },
            "has_uint32": has_uint32,
            "uinteger": uinteger,
        }
        self._initial_seed = initial
        return self

    def numpy(self) -> np.random.Generator:
        """The NumPy generator that draws this generator's stream (shared, not a copy)."""
        return self._rng

    # ---- NumPy's drawing methods, drawing from this generator's stream

    def random(self, *args: Any, **kwargs: Any) -> Any:
        return self._rng.random(*args, **kwargs)

    def uniform(self, *args: Any, **kwargs: Any) -> Any:
        return self._rng.uniform(*args, **kwargs)

    def normal(self, *args: Any, **kwargs: Any) -> Any:
        return self._rng.normal(*args, **kwargs)

    def standard_normal(self, *args: Any, **kwargs: Any) -> Any:
        return self._rng.standard_normal(*args, **kwargs)

    def integers(self, *args: Any, **kwargs: Any) -> Any:
        return self._rng.integers(*args, **kwargs)

    def permutation(self, *args: Any, **kwargs: Any) -> Any:
        return self._rng.permutation(*args, **kwargs)

    def choice(self, *args: Any, **kwargs: Any) -> Any:
        return self._rng.choice(*args, **kwargs)

    def shuffle(self, *args: Any, **kwargs: Any) -> Any:
        return self._rng.shuffle(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Any other NumPy drawing method (exponential, binomial, ...). Private names are not
        # forwarded, so copying and pickling see only this object's own attributes.
        if name.startswith("_"):
            raise AttributeError(f"'Generator' object has no attribute {name!r}")
        return getattr(self._rng, name)

    def __repr__(self) -> str:
        return f"<fastdl.Generator(device='cpu', initial_seed={self._initial_seed})>"


def _entropy_seed() -> int:
    return int(np.random.SeedSequence().entropy) & _MASK64


default_generator = Generator()
# As in PyTorch, the global generator starts from a fresh seed each run.
default_generator.manual_seed(_entropy_seed())

GeneratorLike = Union[Generator, np.random.Generator, None]


def generator() -> np.random.Generator:
    """The NumPy generator behind fastdl's global generator (the same object for the whole
    run: `manual_seed` reseeds it in place)."""
    return default_generator._rng


def numpy_generator(gen: Any, op: str) -> np.random.Generator:
    """The NumPy generator to draw from for a `generator=` argument: None (the global one), a
    fastdl.Generator or a np.random.Generator."""
    if gen is None:
        return default_generator._rng
    if isinstance(gen, Generator):
        return gen._rng
    if isinstance(gen, np.random.Generator):
        return gen
    raise TypeError(
        f"[{op}] generator must be a fastdl.Generator, a np.random.Generator or None, "
        f"got {type(gen).__name__}"
    )


def manual_seed(seed: int) -> Generator:
    """Seed fastdl's global generator and return it (fastdl's streams differ from PyTorch's
    for the same seed)."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the global generator from the OS's entropy and return the seed used."""
    return default_generator.seed()


def initial_seed() -> int:
    """The seed the global generator was last seeded with."""
    return default_generator.initial_seed()


def get_rng_state() -> Any:
    """The global generator's state, a uint8 tensor (see Generator.get_state)."""
    return default_generator.get_state()


def set_rng_state(new_state: Any) -> None:
    """Restore the global generator's state from `get_rng_state()`."""
    default_generator.set_state(new_state)

