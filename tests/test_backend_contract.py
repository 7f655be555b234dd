"""The backend contract: backends/INTERFACE.md lists each backend function with its signature and
each named array-library function the standard lacks; every backend package exports exactly those
functions with the same parameter names and defaults, and every array library implements every
named function (the strict test device's too, so no named function silently falls back to NumPy's).
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from fastdl import _devices
from fastdl.backends import cpu, reference

INTERFACE = Path(__file__).resolve().parents[1] / "python" / "fastdl" / "backends" / "INTERFACE.md"
strict_device = pytest.importorskip("strict_device")

# Sections of INTERFACE.md that are not the kernel functions every backend exports.
ARRAYS = "arrays: what the standard lacks"
NOT_KERNELS = {ARRAYS}


def _sections() -> dict[str, str]:
    """INTERFACE.md's `## ` sections: title -> text."""
    parts = re.split(r"^## (.+)$", INTERFACE.read_text(), flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2])}


def _signatures(text: str, returns: bool = False) -> dict[str, list[tuple[str, object]]]:
    """Every `name(params)` (with `returns`: `name(params) -> result`) in backticks of the bullet
    items of `text`, continuation lines joined: name -> [(parameter, default or
    inspect.Parameter.empty)]."""
    items = re.split(r"^- ", text, flags=re.M)[1:]
    out = {}
    for item in items:
        item = " ".join(line.strip() for line in item.splitlines())
        pattern = r"`(\w+)\(([^`]*?)\)( -> [^`]*)?`"
        for name, params, result in re.findall(pattern, item):
            if returns and not result:
                continue  # a formula such as `op(a)`, not a function
            args = ast.parse(f"def f({params}): pass").body[0].args
            defaults = [inspect.Parameter.empty] * (len(args.args) - len(args.defaults))
            defaults += [ast.literal_eval(d) for d in args.defaults]
            out[name] = [(a.arg, d) for a, d in zip(args.args, defaults)]
    return out


def _kernel_contract():
    contract = {}
    for title, body in _sections().items():
        if title not in NOT_KERNELS:
            contract.update(_signatures(body, returns=True))
    return contract


def _params(fn, skip_self=False):
    params = list(inspect.signature(fn).parameters.values())
    if skip_self:
        params = params[1:]
    return [(p.name, p.default) for p in params]


def test_interface_lists_the_kernels():
    contract = _kernel_contract()
    assert {"matmul", "conv2d_forward", "conv2d_backward", "sgd_step", "adam_step"} <= set(contract)
    assert len(contract) == 35


@pytest.mark.parametrize("backend", [reference, cpu], ids=lambda m: m.name)
def test_backend_exports_exactly_the_contract(backend):
    contract = _kernel_contract()
    exported = {
        name for name, v in vars(backend).items()
        if inspect.isfunction(v) and not name.startswith("_")
    }
    assert exported == set(contract)
    for name, expected in contract.items():
        assert _params(getattr(backend, name)) == expected, f"{backend.name}.{name}"


def test_backends_are_twins():
    for name in _kernel_contract():
        assert _params(getattr(cpu, name)) == _params(getattr(reference, name)), name


def _named_methods(cls) -> set[str]:
    return {
        name for name, v in vars(cls).items()
        if inspect.isfunction(v) and not name.startswith("_")
    }


def test_interface_lists_the_named_array_functions():
    documented = _signatures(_sections()[ARRAYS])
    assert set(documented) == _named_methods(_devices.ArrayLibrary)
    for name, expected in documented.items():
        assert _params(getattr(_devices.ArrayLibrary, name), skip_self=True) == expected, name


def test_strict_library_implements_every_named_function():
    base = _devices.ArrayLibrary
    strict = strict_device.StrictLibrary
    missing = _named_methods(base) - _named_methods(strict)
    assert missing == set(), f"StrictLibrary inherits NumPy's {sorted(missing)}"
    for name in _named_methods(base):
        assert _params(getattr(strict, name), True) == _params(getattr(base, name), True), name


def test_selftest_checks_every_kernel_of_the_contract():
    import numpy as np

    from fastdl.selftest import _cases

    checked = {case[0] for case in _cases(np.random.default_rng(0))}
    assert checked == set(_kernel_contract())
