"""Which backend runs the kernels of a CPU tensor.

`fastdl.backend("reference")` switches the CPU kernels to the NumPy reference for the code inside
the `with` block (thread- and task-local, through a ContextVar); the default is the C++ `cpu`
backend. Float64 arrays always run on the reference: the C++ kernels are float32 only.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
from types import ModuleType
from typing import Iterator

import numpy as np

BACKENDS = ("cpu", "reference")
_DEFAULT = "cpu"
_current: contextvars.ContextVar[str] = contextvars.ContextVar("fastdl_backend", default=_DEFAULT)
_modules: dict[str, ModuleType] = {}
_F32 = np.dtype(np.float32)


def _load(name: str) -> ModuleType:
    module = _modules.get(name)
    if module is None:
        module = _modules[name] = importlib.import_module(f"fastdl.backends.{name}")
    return module


def current() -> str:
    """The name of the backend that CPU float32 kernels run on in this context."""
    return _current.get()


def get(dtype=np.float32) -> ModuleType:
    """The backend module for arrays of `dtype` in this context."""
    name = _current.get()
    if name == "cpu" and dtype is not _F32 and dtype != np.float32:  # (`is`: the fast common case)
        # NOTE: the C++ kernels are float32 only; float64 (gradient checks) runs on the reference.
        name = "reference"
    return _modules.get(name) or _load(name)  # (a loaded module without a second call)


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    """Run the CPU kernels inside the block on backend `name` ("cpu" or "reference").

    >>> import fastdl
    >>> with fastdl.backend("reference"):
    ...     y = fastdl.ones(3).relu()
    """
    if name not in BACKENDS:
        raise ValueError(f"[backend] expected one of {BACKENDS}, got {name!r}")
    token = _current.set(name)
    try:
        yield
    finally:
        _current.reset(token)
