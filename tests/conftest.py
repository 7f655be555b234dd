"""`pytest --device strict` runs the tests on the strict test device (tests/strict_device.py):
every tensor a test makes lives there (fastdl.set_default_device), so every op, backward,
layer and optimizer step runs on array_api_strict arrays, where any NumPy call or any mixing
with CPU arrays raises.

A test reads values back with `.numpy()` or NumPy's functions; on that device, and only for
calls made from the tests themselves, those return a host copy (PyTorch's `numpy()` raises off
the CPU, and so does fastdl's own code calling it).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--device",
        default="cpu",
        choices=("cpu", "strict"),
        help="the device the tests make their tensors on (strict: the array_api_strict "
        "test device)",
    )


def _from_tests(depth: int = 2) -> bool:
    """Whether the caller `depth` frames up is test code, not fastdl's."""
    name = sys._getframe(depth).f_globals.get("__name__", "")
    return not (name == "fastdl" or name.startswith("fastdl."))


def _read_back_on_host() -> None:
    from fastdl import Tensor

    numpy, array = Tensor.numpy, Tensor.__array__

    def host_numpy(self):
        if type(self._data) is not np.ndarray and _from_tests():
            return numpy(self.cpu())
        return numpy(self)

    def host_array(self, dtype=None, copy=None):
        if type(self._data) is not np.ndarray and _from_tests():
            return array(self.detach().cpu(), dtype, copy)
        return array(self, dtype, copy)

    Tensor.numpy, Tensor.__array__ = host_numpy, host_array


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "cpu_only(reason): a test of CPU-specific behaviour, skipped on --device strict"
    )
    if config.getoption("--device") != "strict":
        return
    import fastdl
    import strict_device

    strict_device.register()
    fastdl.set_default_device(strict_device.NAME)
    _read_back_on_host()


def pytest_collection_modifyitems(config, items):
    if config.getoption("--device") != "strict":
        return
    for item in items:
        marker = item.get_closest_marker("cpu_only")
        if marker is not None:
            item.add_marker(pytest.mark.skip(reason=marker.kwargs.get("reason", "CPU only")))


@pytest.fixture
def on_strict_device(request):
    """Whether this run makes tensors on the strict test device."""
    return request.config.getoption("--device") == "strict"


@pytest.fixture
def threads():
    """set_num_threads for the C++ kernels; the count in force before the test is restored."""
    from fastdl import _C

    saved = _C.get_num_threads()
    yield _C.set_num_threads
    _C.set_num_threads(saved)


def _supported_isas() -> list:
    try:
        from fastdl import _C
    except ImportError:  # no compiled kernels: nothing to parametrise over
        return []
    return list(_C.supported_isas())


@pytest.fixture(params=_supported_isas())
def isa(request):
    """Runs the test once with each SIMD build of the kernels that this processor supports, then
    restores the active one."""
    from fastdl import _C

    saved = _C.simd_level()
    _C.set_simd_level(request.param)
    yield request.param
    _C.set_simd_level(saved)


@pytest.fixture
def conv2d_algorithm():
    """A setter of fastdl.backends.cpu.conv2d_algorithm; the test's changes are undone after."""
    from fastdl.backends import cpu

    saved = cpu.conv2d_algorithm

    def set_algorithm(name: str) -> None:
        cpu.conv2d_algorithm = name

    yield set_algorithm
    cpu.conv2d_algorithm = saved
