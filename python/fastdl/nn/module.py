"""`Module`, the base class of every layer: registration of parameters, buffers and submodules,
traversal, train/eval, state_dict round trips, dtype/device moves and PyTorch's nested repr."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any, Callable, NamedTuple

import numpy as np

from .._tensor import Tensor
from .._tensor import dtype as fastdl_dtype
from ..autograd import Function, is_grad_enabled, no_grad
from .parameter import Parameter


class _IncompatibleKeys(NamedTuple):
    """What `load_state_dict` returns: the keys it did not find and the keys it did not use."""

    missing_keys: list
    unexpected_keys: list

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (
            f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
            f"unexpected_keys={self.unexpected_keys})"
        )

    __str__ = __repr__


class _HookState:
    """What one call's backward-hook ops share: the module, grad_output once it is known."""

    def __init__(self, module):
        self.module = module
        self.grad_output = None
        self.inputs_wrapped = False
        self.n_inputs = 0

    def call_hooks(self, grad_input):
        for hook in list(self.module._backward_hooks.values()):
            result = hook(self.module, grad_input, self.grad_output)
            if result is not None:
                if not self.inputs_wrapped:
                    if isinstance(result, tuple) and all(r is None for r in result):
                        continue
                    raise RuntimeError(
                        "[register_full_backward_hook] a backward hook of a module whose inputs "
                        "don't require gradients should always return None or None for all "
                        "gradients"
                    )
                result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
                if len(result) != len(grad_input):
                    raise RuntimeError(
                        f"[register_full_backward_hook] hook returned {len(result)} gradients, "
                        f"expected {len(grad_input)}"
                    )
                grad_input = result
        return grad_input


class _InputHook(Function):
    """Identity on the module's tensor inputs; its backward calls the module's backward hooks."""

    @staticmethod
    def forward(ctx, state, *xs):
        ctx.state = state
        return xs

    @staticmethod
    def backward(ctx, *grads):
        needs = ctx.needs_input_grad[1:]
        grad_input = tuple(g if n else None for g, n in zip(grads, needs))
        return (None, *ctx.state.call_hooks(grad_input))


class _OutputHook(Function):
    """Identity on the module's outputs; its backward notes grad_output (and calls the hooks
    when no input needs a gradient: grad_input is then all None)."""

    @staticmethod
    def forward(ctx, state, *ys):
        ctx.state = state
        return ys

    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        state.grad_output = grads
        if not state.inputs_wrapped:
            state.call_hooks((None,) * state.n_inputs)
        return (None, *grads)


class RemovableHandle:
    """Returned by `register_forward_hook`; `handle.remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


def _indent_tail(text: str, spaces: int) -> str:
    """Indent every line of `text` but the first (the first follows a "(name): " label)."""
    first, *rest = text.split("\n")
    if not rest:
        return text
    pad = " " * spaces
    return "\n".join([first] + [pad + line for line in rest])


def _as_tensor(value: Any, key: str) -> Tensor:
    """A state_dict value as a Tensor (no copy): a fastdl Tensor (on any device), a NumPy
    array, or any array-like with `numpy()` (a PyTorch tensor) or `__array__`."""
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return Tensor._make(value)
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a PyTorch tensor
        return Tensor._make(value.detach().cpu().numpy())
    try:
        array = np.asarray(value)  # user input, read on the host
    except (TypeError, ValueError):
        array = None
    if array is None or array.dtype.kind not in "fiub":
        raise TypeError(
            f"[load_state_dict] value for {key!r} must be a numeric Tensor or array, "
            f"got {type(value).__name__}"
        )
    return Tensor._make(array)


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain ".", got: {name}')


class Module:
    """Base class of all layers; subclasses set layers and Parameters as attributes in
    `__init__` and define `forward`.

    >>> import fastdl
    >>> import fastdl.nn as nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         return self.fc(x).relu()
    >>> net = Net()
    >>> list(net.state_dict().keys())
    ['fc.weight', 'fc.bias']
    >>> net(fastdl.randn(3, 4)).shape
    fastdl.Size([3, 2])
    """

    training: bool

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these dicts to exist already.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        if self._backward_hooks:
            return self._call_with_backward_hooks(args, kwargs)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    _backward_hooks = None  # handle id -> hook(module, grad_input, grad_output), set on first use

    def _call_with_backward_hooks(self, args, kwargs):
        """forward with identity ops around it: the one on the tensor inputs sees grad_input,
        the one on the outputs grad_output (PyTorch's BackwardHook)."""
        state = _HookState(self)
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        args = list(args)
        state.n_inputs = len(positions)
        if is_grad_enabled() and any(args[i].requires_grad for i in positions):
            wrapped = _InputHook.apply(state, *[args[i] for i in positions])
            for i, w in zip(positions, wrapped):
                args[i] = w
            state.inputs_wrapped = True
        args = tuple(args)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        single = isinstance(output, Tensor)
        outputs = (output,) if single else output
        if is_grad_enabled() and isinstance(outputs, tuple) and outputs and all(
            isinstance(o, Tensor) for o in outputs
        ) and any(o.requires_grad for o in outputs):
            outputs = _OutputHook.apply(state, *outputs)
            output = outputs[0] if single else outputs
        return output

    def register_full_backward_hook(self, hook: Callable) -> RemovableHandle:
        """`hook(module, grad_input, grad_output)` runs once the gradients for the module's tensor
        inputs are computed; a non-None result replaces grad_input (PyTorch's)."""
        if self._backward_hooks is None:
            object.__setattr__(self, "_backward_hooks", OrderedDict())
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """`hook(module, inputs, output)` runs after forward; a non-None result replaces output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """`hook(module, inputs)` runs before forward; a non-None result replaces the inputs."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    # ---------------------------------------------------------------- registration

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add `param` (a Parameter, or None for an absent one such as `bias=False`)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name("parameter", name)
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__module__}.{type(param).__name__}' object to "
                f"parameter '{name}' (fastdl.nn.Parameter or None required)"
            )
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a Tensor that is state but not a parameter (saved in state_dict if persistent)."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name("buffer", name)
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                "(fastdl.Tensor or None required)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module, reachable as attribute `name`."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        _check_name("module", name)
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        modules = self.__dict__.get("_modules")
        buffers = self.__dict__.get("_buffers")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, keep="_parameters")
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(fastdl.nn.Parameter or None expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, keep="_modules")
            modules[name] = value
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' "
                    "(fastdl.nn.Module or None expected)"
                )
            modules[name] = None
        elif buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                    "(fastdl.Tensor or None expected)"
                )
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: str) -> None:
        """Remove `name` from every place an attribute can live but `keep` (where it is about to
        be re-registered: replacing an entry there keeps its position, as in PyTorch)."""
        self.__dict__.pop(name, None)
        for store in ("_parameters", "_buffers", "_modules"):
            if store != keep:
                self.__dict__[store].pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails. Read the dicts through __dict__ so that a
        # half-built object (copy.deepcopy, pickle) never recurses back into __getattr__.
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            items = d.get(store)
            if items is not None and name in items:
                return items[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in ("_parameters", "_buffers", "_modules"):
            items = self.__dict__.get(store)
            if items is not None and name in items:
                del items[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list:
        extra = list(self._parameters) + list(self._buffers) + list(self._modules)
        return sorted(set(super().__dir__()) | set(extra))

    # ---------------------------------------------------------------- traversal

    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """(name, module) for this module and every descendant, each module once."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub_prefix = f"{prefix}.{name}" if prefix else name
            yield from module.named_modules(memo, sub_prefix, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, store: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        if recurse:
            owners = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        else:
            owners = [(prefix, self)]
        for module_prefix, module in owners:
            for name, value in getattr(module, store).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(name, parameter) pairs named like state_dict keys; a shared parameter appears once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call `fn` on every submodule (children first), then on this module; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------- modes and gradients

    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            # ValueError, not TypeError: PyTorch's choice, kept for compatibility.
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")  # noqa: TRY004
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (or zero it in place when set_to_none=False)."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                with no_grad():
                    param.grad.zero_()

    # ---------------------------------------------------------------- state_dict

    def state_dict(
        self, destination: dict | None = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by dotted name (`conv1.weight`), in an OrderedDict.
        Values are detached Tensors sharing storage with the module (unless keep_vars).

        As in PyTorch, every key is `prefix` + the dotted name (so pass a prefix ending in "."),
        and submodules are walked without removing duplicates: a module reachable under two
        names (`nn.Sequential(l, nn.ReLU(), l)`) has its entries under both ('0.weight' and
        '2.weight'), and so does a parameter shared by two modules; named_parameters() and
        named_modules() list each object once.

        >>> import fastdl.nn as nn
        >>> l = nn.Linear(2, 2)
        >>> list(nn.Sequential(l, nn.ReLU(), l).state_dict())
        ['0.weight', '0.bias', '2.weight', '2.bias']
        """
        if destination is None:
            destination = OrderedDict()
        for name, value in self._state_items():
            destination[prefix + name] = value if keep_vars else value.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(
                    destination=destination, prefix=f"{prefix}{name}.", keep_vars=keep_vars
                )
        return destination

    def _state_items(self) -> Iterator[tuple[str, Tensor]]:
        """This module's own entries of state_dict (no submodules)."""
        for name, param in self._parameters.items():
            if param is not None:
                yield name, param
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                yield name, buf

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> _IncompatibleKeys:
        """Copy `state_dict`'s values (Tensors or NumPy arrays) into this module's parameters and
        buffers, in place, onto each one's device and dtype (PyTorch's rule). Returns
        (missing_keys, unexpected_keys).

        NOTE: unlike PyTorch, nothing is copied when an error is raised (strict mismatch or
        size mismatch): every value is checked before the first one is written.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"[load_state_dict] expected state_dict to be dict-like, got {type(state_dict)}"
            )
        own = self.state_dict(keep_vars=True)
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        errors, copies = [], []
        for key, target in own.items():
            if key not in state_dict:
                continue
            source = _as_tensor(state_dict[key], key)
            if tuple(source.shape) != tuple(target.shape):
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(source.shape)} "
                    f"from checkpoint, the shape in current model is {tuple(target.shape)}."
                )
            copies.append((target, source))
        if strict:
            if unexpected:
                names = ", ".join(f'"{k}"' for k in unexpected)
                errors.insert(0, f"Unexpected key(s) in state_dict: {names}. ")
            if missing:
                names = ", ".join(f'"{k}"' for k in missing)
                errors.insert(0, f"Missing key(s) in state_dict: {names}. ")
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(errors)
            )
        with no_grad():
            for target, source in copies:
                target.copy_(source)  # onto the target's device, cast to its dtype
        return _IncompatibleKeys(missing, unexpected)

    # ---------------------------------------------------------------- dtype and device

    def _apply_to_tensors(self, convert: Callable[[Tensor], Tensor]) -> Module:
        """Replace the storage of every parameter, gradient and buffer by `convert`'s result,
        keeping the same Parameter objects (so optimizers built earlier stay valid)."""
        for module in self.modules():
            for store in (module._parameters, module._buffers):
                for value in store.values():
                    if value is None:
                        continue
                    with no_grad():
                        _replace_storage(value, convert(value))
                        if value.grad is not None:
                            _replace_storage(value.grad, convert(value.grad))
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """`to(device)`, `to(dtype)`, `to(device, dtype)` or `to(tensor)`: moves every parameter
        and buffer (and their gradients); a dtype applies to floating-point ones only, as in
        PyTorch. Parameters stay the same objects: their storage is replaced in place."""
        device, dtype = _parse_to_args(args, kwargs)

        def convert(t: Tensor) -> Tensor:
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            if device is not None:
                t = t.to(device)
            return t

        return self._apply_to_tensors(convert)

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device: Any = None) -> Module:
        return self.to("cuda" if device is None else device)

    def float(self) -> Module:
        return self.to(np.dtype(np.float32))

    def double(self) -> Module:
        return self.to(np.dtype(np.float64))

    # ---------------------------------------------------------------- repr

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in `repr`; layers override it."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({name}): " + _indent_tail(repr(module), 2) for name, module in self._modules.items()
        ]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"


def _replace_storage(tensor: Tensor, new: Tensor) -> None:
    # NOTE: a tensor's device and dtype follow from its `_data` alone (PyTorch's `p.data = ...`).
    if new is not tensor:
        tensor._data = new._data


def _parse_to_args(args: tuple, kwargs: dict) -> tuple[Any, np.dtype | None]:
    """(device, dtype) from the forms of Module.to: (device), (dtype), (device, dtype),
    (tensor), with device= and dtype= keywords."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"[Module.to] unexpected keyword arguments {sorted(kwargs)}")
    if len(args) > 2:
        raise TypeError(f"[Module.to] expected at most 2 positional arguments, got {len(args)}")
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
            device = getattr(arg, "device", None)
        elif _is_dtype(arg):
            dtype = arg
        else:
            device = arg
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind not in "fc":
            raise TypeError(
                "nn.Module.to only accepts floating point or complex dtypes, "
                f"but got desired dtype={dtype}"
            )
    return device, dtype


def _is_dtype(value: Any) -> bool:
    if isinstance(value, str):
        return False
    return bool(
        isinstance(value, (np.dtype, fastdl_dtype))
        or isinstance(value, type) and issubclass(value, np.generic)
    )
