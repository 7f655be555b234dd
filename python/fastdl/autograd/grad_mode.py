"""Whether ops record the graph: `no_grad`, `enable_grad`, `set_grad_enabled` and
`inference_mode`, as context managers and decorators, with PyTorch's rules.

The mode lives in the ContextVar `_enabled` (thread- and task-local); hot paths read
`_enabled.get()` directly. NOTE: `inference_mode` behaves like `no_grad`: tensors made inside it
are ordinary tensors, not PyTorch's "inference tensors" (which refuse later use in autograd).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from typing import Any, Callable, TypeVar

_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar("fastdl_grad", default=True)
_inference: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "fastdl_inference", default=False
)

F = TypeVar("F", bound=Callable[..., Any])


def is_grad_enabled() -> bool:
    """Whether ops record the graph in this context."""
    return _enabled.get()


def is_inference_mode_enabled() -> bool:
    """Whether this context is inside `inference_mode()` (which also disables recording)."""
    return _inference.get()


def _wrap_generator(make_context: Callable[[], Any], gen_fn: Callable) -> Callable:
    """Run each step of a generator function inside a fresh context, as PyTorch does: the mode
    applies to the generator's own code, not to the code between its yields."""

    @functools.wraps(gen_fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        gen = gen_fn(*args, **kwargs)
        try:
            with make_context():
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with make_context():
                        gen.close()
                    raise
                except BaseException as exc:  # noqa: BLE001 - thrown into the generator
                    with make_context():
                        response = gen.throw(exc)
                else:
                    with make_context():
                        response = gen.send(request)
        except StopIteration as stop:
            return stop.value

    return wrapper


class _DecoratorContext:
    """A context manager that is also a decorator; the decorated function runs in a new
    instance made by `_clone`. Entering the same instance twice (nested) is allowed."""

    def _clone(self) -> "_DecoratorContext":
        return type(self)()

    def _set(self) -> tuple:
        raise NotImplementedError

    def __enter__(self) -> None:
        self.__dict__.setdefault("_tokens", []).append(self._set())

    def __exit__(self, *exc: Any) -> bool:
        for var, token in reversed(self._tokens.pop()):
            var.reset(token)
        return False

    def __call__(self, fn: F) -> F:
        if not callable(fn):
            raise TypeError(
                f"[{type(self).__name__}] expected a function to decorate, got "
                f"{type(fn).__name__}"
            )
        if inspect.isclass(fn):
            raise TypeError(f"[{type(self).__name__}] cannot decorate a class ({fn.__name__})")
        make = self._clone
        if inspect.isgeneratorfunction(fn):
            return _wrap_generator(make, fn)  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with make():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _NoParamContext(_DecoratorContext):
    """Sets the grad mode to `_mode`; usable as `with cls():`, `@cls()` and the bare `@cls`."""

    _mode = True

    def __new__(cls, orig_func: Any = None) -> Any:
        if orig_func is not None:
            return cls()(orig_func)
        self = super().__new__(cls)
        self._tokens = []
        return self

    # NOTE: the hot form (`with no_grad():`) sets one variable, without the generic machinery.
    def __enter__(self) -> None:
        self._tokens.append(_enabled.set(self._mode))

    def __exit__(self, *exc: Any) -> bool:
        _enabled.reset(self._tokens.pop())
        return False


class no_grad(_NoParamContext):
    """Ops inside record no graph; a context manager, `@no_grad()` or bare `@no_grad`.

    >>> import fastdl
    >>> with fastdl.no_grad():
    ...     y = fastdl.ones(2, requires_grad=True) * 2
    >>> y.requires_grad
    False
    >>> @fastdl.no_grad
    ... def predict(x):
    ...     return x * 2
    >>> predict(fastdl.ones(2, requires_grad=True)).requires_grad
    False
    """

    _mode = False


class enable_grad(_NoParamContext):
    """Re-enables recording inside a no_grad block; a context manager, `@enable_grad()` or
    bare `@enable_grad`.

    >>> import fastdl
    >>> with fastdl.no_grad(), fastdl.enable_grad():
    ...     fastdl.is_grad_enabled()
    True
    """

    _mode = True


class set_grad_enabled(_DecoratorContext):
    """Turn recording on or off. As in PyTorch, the call itself sets the mode (so
    `set_grad_enabled(False)` alone switches it off until changed); used with `with`, leaving
    the block restores the mode from before the call; as a decorator `@set_grad_enabled(False)`
    it sets the mode for the function's calls only.

    >>> import fastdl
    >>> with fastdl.set_grad_enabled(False):
    ...     fastdl.is_grad_enabled()
    False
    >>> fastdl.is_grad_enabled()
    True
    """

    def __init__(self, mode: bool) -> None:
        if not isinstance(mode, bool):
            raise TypeError(
                f"[set_grad_enabled] expected mode to be a bool, got {type(mode).__name__}"
            )
        self.mode = mode
        self.prev = _enabled.get()
        _enabled.set(mode)

    def _clone(self) -> "set_grad_enabled":
        # A fresh instance for each call of a decorated function, without touching the mode
        # at construction (the call's own __enter__ sets it).
        clone = object.__new__(set_grad_enabled)
        clone.mode = self.mode
        return clone

    def _set(self) -> tuple:
        return ((_enabled, _enabled.set(self.mode)),)

    def __enter__(self) -> None:
        if "prev" in self.__dict__:
            return None  # the constructor already set the mode; __exit__ restores `prev`
        return super().__enter__()

    def __exit__(self, *exc: Any) -> bool:
        if "prev" in self.__dict__:
            _enabled.set(self.__dict__.pop("prev"))
            return False
        return super().__exit__(*exc)

    def __call__(self, fn: F) -> F:
        # Decorating must not change the mode of the code that defines the function.
        if "prev" in self.__dict__:
            _enabled.set(self.__dict__.pop("prev"))
        return super().__call__(fn)


class inference_mode(_DecoratorContext):
    """`no_grad` for inference: a context manager, `@inference_mode()`, bare
    `@inference_mode`; `inference_mode(False)` leaves it (recording back on, as in PyTorch).

    NOTE: unlike PyTorch, tensors made inside are ordinary tensors (PyTorch makes "inference
    tensors" that autograd later refuses); nothing else differs.

    >>> import fastdl
    >>> with fastdl.inference_mode():
    ...     y = fastdl.ones(2, requires_grad=True) * 2
    >>> y.requires_grad, fastdl.is_inference_mode_enabled()
    (False, False)
    """

    def __new__(cls, mode: Any = True) -> Any:
        if isinstance(mode, bool):
            return super().__new__(cls)
        return cls()(mode)  # bare @inference_mode

    def __init__(self, mode: Any = True) -> None:
        if not isinstance(mode, bool):
            return  # __new__ already returned the decorated function
        self.mode = mode

    def _clone(self) -> "inference_mode":
        return inference_mode(self.mode)

    def _set(self) -> tuple:
        return (
            (_enabled, _enabled.set(not self.mode)),
            (_inference, _inference.set(self.mode)),
        )
