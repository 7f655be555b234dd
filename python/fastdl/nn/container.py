"""nn layers: container (PyTorch's names, signatures, defaults, initialisation and state_dict keys).

ModuleList/ModuleDict hold submodules and ParameterList/ParameterDict hold Parameters, registered
under their index or key, so `state_dict()` names them as PyTorch does ("layers.0.weight",
"params.0"). Also the shape helper Unflatten.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .._errors import ArgumentError, torch_type_name
from .._tensor import Tensor
from .module import Module, _indent_tail
from .parameter import Parameter

__all__ = ["ModuleDict", "ModuleList", "ParameterDict", "ParameterList", "Unflatten"]


def _abs_index(idx: Any, n: int) -> int:
    """idx (possibly negative) as an index into a container of length n, PyTorch's errors."""
    idx = operator.index(idx)
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range")
    return idx % n


def _renumber(module: Module) -> None:
    """Renames `module`'s submodules 0..n-1, in order (after a deletion)."""
    renumbered = OrderedDict((str(i), m) for i, m in enumerate(module._modules.values()))
    object.__setattr__(module, "_modules", renumbered)


def _update_from_pairs(target: Any, pairs: Any, name: str, method: str) -> None:
    """ModuleDict/ParameterDict.update from an iterable of (key, value) pairs, with PyTorch's
    errors (`name` the class, `method` the caller as the first error names it)."""
    if not isinstance(pairs, Iterable):
        raise TypeError(
            f"{method} should be called with an iterable of key/value pairs, but got "
            + type(pairs).__name__
        )
    for j, pair in enumerate(pairs):
        if not isinstance(pair, Iterable):
            raise TypeError(
                f"{name} update sequence element #{j} should be Iterable; is " + type(pair).__name__
            )
        if len(pair) != 2:
            raise ValueError(
                f"{name} update sequence element #{j} has length {len(pair)}; 2 is required"
            )
        target[pair[0]] = pair[1]


def _tensor_line(p: Any, type_name: str) -> str:
    """'Parameter containing: [fastdl.float32 of size 2x3]', as PyTorch's containers print."""
    if not isinstance(p, Tensor):
        return "Object of type: " + type(p).__name__
    size = "x".join(str(s) for s in p.shape)
    device = "" if p.device.type == "cpu" else f" ({p.device})"
    kind = "Parameter" if isinstance(p, Parameter) else "Tensor"
    return f"{kind} containing: [{type_name} of size {size}{device}]"


# ---------------------------------------------------------------- modules


class ModuleList(Module):
    """A list of modules, each registered under its index.

    >>> import fastdl.nn as nn
    >>> layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    >>> len(layers), list(layers.state_dict())[:2]
    (3, ['0.weight', '0.bias'])
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self += modules

    def __getitem__(self, idx: int | slice) -> Module | ModuleList:
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(_abs_index(idx, len(self)))]

    def __setitem__(self, idx: int, module: Module) -> None:
        self.add_module(str(_abs_index(idx, len(self))), module)

    def __delitem__(self, idx: int | slice) -> None:
        if isinstance(idx, slice):
            for k in range(len(self._modules))[idx]:
                del self._modules[str(k)]
        else:
            del self._modules[str(_abs_index(idx, len(self)))]
        _renumber(self)  # keep the names 0..n-1, as PyTorch does

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        combined = ModuleList()
        for module in list(self) + list(other):
            combined.append(module)
        return combined

    def __dir__(self) -> list:
        return [key for key in super().__dir__() if not key.isdigit()]

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        if not isinstance(modules, Iterable):
            raise TypeError(
                "ModuleList.extend should be called with an iterable, but got "
                + type(modules).__name__
            )
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        for i in range(len(self._modules), index, -1):
            self._modules[str(i)] = self._modules[str(i - 1)]
        self._modules[str(index)] = module

    def pop(self, key: int | slice) -> Module:
        v = self[key]
        del self[key]
        return v

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "Module [ModuleList] is missing the required \"forward\" function"
        )

    def __repr__(self) -> str:
        # PyTorch's: runs of equal reprs print once, as "(0-2): 3 x Linear(...)"
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        blocks: list[list] = []  # [start, end, repr]
        for i, r in enumerate(reprs):
            if blocks and blocks[-1][2] == r:
                blocks[-1][1] = i
            else:
                blocks.append([i, i, r])
        lines = []
        for start, end, r in blocks:
            label = f"({start}): {r}" if start == end else f"({start}-{end}): {end - start + 1} x {r}"
            lines.append(_indent_tail(label, 2))
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """An ordered dict of modules, each registered under its key.

    >>> import fastdl.nn as nn
    >>> heads = nn.ModuleDict({"cls": nn.Linear(4, 3), "reg": nn.Linear(4, 1)})
    >>> list(heads.keys()), "cls.weight" in heads.state_dict()
    (['cls', 'reg'], True)
    """

    def __init__(self, modules: Mapping[str, Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str) -> Module:
        v = self[key]
        del self[key]
        return v

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules: Mapping[str, Module] | Iterable) -> None:
        if isinstance(modules, (OrderedDict, ModuleDict, Mapping)):
            for key, module in modules.items():
                self[key] = module
            return
        _update_from_pairs(self, modules, "ModuleDict", "ModuleDict.update")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "Module [ModuleDict] is missing the required \"forward\" function"
        )


# ---------------------------------------------------------------- parameters


class ParameterList(Module):
    """A list of Parameters, each registered under its index; a plain Tensor becomes one.

    >>> import fastdl
    >>> import fastdl.nn as nn
    >>> params = nn.ParameterList([nn.Parameter(fastdl.zeros(2)) for _ in range(2)])
    >>> list(params.state_dict())
    ['0', '1']
    """

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        super().__init__()
        self._size = 0
        if values is not None:
            self += values

    def __getitem__(self, idx: int | slice) -> Any:
        if isinstance(idx, slice):
            out = type(self)()
            for i in range(*idx.indices(len(self))):
                out.append(self[i])
            return out
        return getattr(self, str(_abs_index(idx, len(self))))

    def __setitem__(self, idx: int, param: Any) -> None:
        idx = _abs_index(idx, len(self))
        if isinstance(param, Tensor) and not isinstance(param, Parameter):
            param = Parameter(param)
        setattr(self, str(idx), param)

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Any]:
        return iter(self[i] for i in range(len(self)))

    def __iadd__(self, parameters: Iterable[Any]) -> ParameterList:
        return self.extend(parameters)

    def __dir__(self) -> list:
        return [key for key in super().__dir__() if not key.isdigit()]

    def append(self, value: Any) -> ParameterList:
        new_idx = len(self)
        self._size += 1
        self[new_idx] = value
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        if not isinstance(values, Iterable) or isinstance(values, Tensor):
            raise TypeError(
                "ParameterList.extend should be called with an iterable, but got "
                + type(values).__name__
            )
        for value in values:
            self.append(value)
        return self

    def extra_repr(self) -> str:
        return "\n".join(
            f"  ({k}): " + _tensor_line(p, str(getattr(p, "dtype", "")))
            for k, p in enumerate(self)
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("ParameterList should not be called.")


class ParameterDict(Module):
    """An ordered dict of Parameters, each registered under its (string) key.

    >>> import fastdl
    >>> import fastdl.nn as nn
    >>> params = nn.ParameterDict({"scale": nn.Parameter(fastdl.ones(3))})
    >>> list(params.state_dict()), params["scale"].shape
    (['scale'], fastdl.Size([3]))
    """

    def __init__(self, parameters: Any = None) -> None:
        super().__init__()
        self._keys: dict = {}
        if parameters is not None:
            self.update(parameters)

    def _key(self, key: Any) -> str:
        if not isinstance(key, str):
            raise TypeError(
                f"parameter name should be a string. Got {type(key).__name__}"
            )
        return key

    def __getitem__(self, key: str) -> Any:
        return getattr(self, self._key(key))

    def __setitem__(self, key: str, value: Any) -> None:
        key = self._key(key)
        self._keys[key] = None
        if isinstance(value, Tensor) and not isinstance(value, Parameter):
            value = Parameter(value)
        setattr(self, key, value)

    def __delitem__(self, key: str) -> None:
        del self._keys[key]
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __reversed__(self) -> Iterator[str]:
        return reversed(list(self._keys))

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def keys(self):
        return self._keys.keys()

    def items(self):
        return ((k, self[k]) for k in self._keys)

    def values(self):
        return (self[k] for k in self._keys)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 (this is get)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: str) -> Any:
        v = self[key]
        del self[key]
        return v

    def popitem(self) -> tuple:
        k, _ = self._keys.popitem()
        self._keys[k] = None  # restored for __delitem__
        val = self[k]
        del self[k]
        return k, val

    def clear(self) -> None:
        for k in list(self._keys):
            del self[k]

    def copy(self) -> ParameterDict:
        return ParameterDict(OrderedDict((k, self[k]) for k in self._keys))

    def update(self, parameters: Any) -> None:
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            for key, value in parameters.items():
                self[key] = value
            return
        if isinstance(parameters, Mapping):
            for key, value in sorted(parameters.items()):  # PyTorch sorts a plain mapping's keys
                self[key] = value
            return
        # "ParametersDict" is PyTorch's spelling in this message.
        _update_from_pairs(self, parameters, "ParameterDict", "ParametersDict.update")

    def extra_repr(self) -> str:
        lines = []
        for k, p in self.items():
            type_name = ""
            if isinstance(p, Tensor):
                type_name = f"fastdl.{torch_type_name(str(p.dtype).split('.')[-1])}Tensor"
            lines.append(f"  ({k}): " + _tensor_line(p, type_name))
        return "\n".join(lines)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("ParameterDict should not be called.")


# ---------------------------------------------------------------- shape helpers


class Unflatten(Module):
    """Expands dim `dim` of the input into `unflattened_size` (the inverse of Flatten).

    >>> import fastdl
    >>> Unflatten(1, (2, 5))(fastdl.zeros(3, 10)).shape
    fastdl.Size([3, 2, 5])
    """

    def __init__(self, dim: int, unflattened_size: Any) -> None:
        super().__init__()
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise TypeError(f"[Unflatten] invalid argument type for dim parameter: {type(dim)}")
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(
                "[Unflatten] unflattened_size must be tuple of ints, but found type "
                f"{type(unflattened_size).__name__}"
            )
        for idx, elem in enumerate(unflattened_size):
            if not isinstance(elem, int) or isinstance(elem, bool):
                raise TypeError(
                    f"[Unflatten] unflattened_size must be tuple of ints, but found element of "
                    f"type {type(elem).__name__} at pos {idx}"
                )
        if list(unflattened_size).count(-1) > 1:
            raise ArgumentError("[Unflatten] only one dimension can be inferred (-1)")
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input: Tensor) -> Tensor:
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
