"""Whether ops record the graph: `no_grad` and `enable_grad`, as context managers and decorators."""

from __future__ import annotations

import contextvars
import functools

_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar("fastdl_grad", default=True)


def is_grad_enabled() -> bool:
    return _enabled.get()


class _GradMode:
    mode = True

    def __enter__(self):
        self._token = _enabled.set(self.mode)
        return self

    def __exit__(self, *exc):
        _enabled.reset(self._token)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Ops inside record no graph (context manager or decorator).

    >>> import fastdl
    >>> with fastdl.no_grad():
    ...     y = fastdl.ones(2, requires_grad=True) * 2
    >>> y.requires_grad
    False
    """

    mode = False


class enable_grad(_GradMode):
    """Re-enables recording inside a no_grad block (context manager or decorator)."""

    mode = True


class set_grad_enabled(_GradMode):
    """`with set_grad_enabled(False): ...` sets recording on or off for the block."""

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper
