"""The global random number generator behind randn, rand, randint, init and dropout."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def generator() -> np.random.Generator:
    return _generator


def manual_seed(seed: int) -> np.random.Generator:
    """Seed fastdl's global generator (fastdl's streams differ from PyTorch's for the same seed)."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"[manual_seed] expected an int seed, got {type(seed).__name__}")
    _generator = np.random.default_rng(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)
    return _generator


def seed() -> int:
    """Seed the global generator from the OS's entropy and return the seed used."""
    s = int(np.random.SeedSequence().entropy) & 0xFFFF_FFFF_FFFF_FFFF
    manual_seed(s)
    return s
