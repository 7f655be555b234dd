"""fastdl.cuda: PyTorch's `torch.cuda` queries, seeding and memory figures.

CUDA tensors need three things: a fastdl built with its CUDA kernels (FASTDL_CUDA=ON), an NVIDIA
GPU that answers, and CuPy (`pip install "fastdl[cuda]"`), which holds their storage. Without
them `is_available()` is False, `device_count()` is what the driver reports, the seeding and
`synchronize()` calls do nothing (as PyTorch's on a machine without a GPU), and making a CUDA
tensor raises a RuntimeError that names what is missing. Nothing here imports CuPy until a CUDA
tensor is made (or `is_available()` finds the rest in place).

>>> import fastdl
>>> device = "cuda" if fastdl.cuda.is_available() else "cpu"
"""

from __future__ import annotations

import importlib.util
from typing import Any, Optional

from . import _C, _devices, _random

__all__ = [
    "current_device",
    "device_count",
    "empty_cache",
    "get_device_capability",
    "get_device_name",
    "is_available",
    "manual_seed",
    "manual_seed_all",
    "memory_allocated",
    "seed",
    "seed_all",
    "synchronize",
    "unavailable_reason",
]


def unavailable_reason() -> Optional[str]:
    """Why CUDA tensors cannot be made here, or None when they can."""
    if not _C.build_config["cuda_built"]:
        return (
            "this fastdl was built without its CUDA kernels (reinstall with "
            "FASTDL_CUDA=ON pip install 'fastdl[cuda]' on a machine with a CUDA toolkit)"
        )
    if _C.cuda_device_count() == 0:
        return "no NVIDIA GPU answers (the CUDA driver reports no device, or there is no driver)"
    if "cuda" not in _devices.DEVICE_TYPES and importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (pip install 'fastdl[cuda]', or fastdl[cuda12] for CUDA 12)"
    return None


def is_available() -> bool:
    """True only when fastdl's CUDA kernels are built, a GPU answers and CuPy is installed."""
    return unavailable_reason() is None


def device_count() -> int:
    """The number of GPUs the CUDA driver reports (0 without a CUDA build or a driver)."""
    return _C.cuda_device_count()


def device_type() -> _devices.DeviceType:
    """The "cuda" device type, registered on first use; a RuntimeError naming what is missing
    when CUDA tensors cannot be made here."""
    found = _devices.DEVICE_TYPES.get("cuda")
    if found is not None:
        return found
    why = unavailable_reason()
    if why is not None:
        raise RuntimeError(f"[cuda] CUDA tensors are not available: {why}")
    import cupy

    from ._cupy import make_device_type

    found = make_device_type(cupy)
    _devices.register(found)
    return found


def _initialised() -> bool:
    return "cuda" in _devices.DEVICE_TYPES


def _cupy() -> Any:
    return _devices.DEVICE_TYPES["cuda"].lib.cp


def current_device() -> int:
    device_type()
    return _cupy().cuda.runtime.getDevice()


def get_device_name(device: Any = None) -> str:
    index = _index(device)  # raises with the reason when there is no GPU
    return _C.cuda.device_info(index)["name"]


def get_device_capability(device: Any = None) -> tuple:
    index = _index(device)
    return tuple(_C.cuda.device_info(index)["capability"])


def _index(device: Any) -> int:
    device_type()  # raises with the reason when there is no GPU
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    from ._tensor import device as device_class

    d = device_class(device)
    return d.index or 0


def synchronize(device: Any = None) -> None:
    """Wait for every kernel launched on the GPU; an error inside one raises here, naming the
    last op launched. Does nothing before any CUDA tensor exists (and without a GPU)."""
    if _initialised():
        _C.cuda.synchronize()


def memory_allocated(device: Any = None) -> int:
    """Bytes of GPU memory held by tensors, from CuPy's memory pool (0 before any CUDA tensor
    exists, as PyTorch's before CUDA starts)."""
    return int(_cupy().get_default_memory_pool().used_bytes()) if _initialised() else 0


def empty_cache() -> None:
    """Return the memory pool's unused blocks to the driver."""
    if _initialised():
        _cupy().get_default_memory_pool().free_all_blocks()


def manual_seed(seed: int) -> None:
    """Accepted for PyTorch's programs: fastdl draws every random number on the CPU (a CUDA
    tensor's random values are drawn there and copied), so fastdl.manual_seed governs them."""
    _random._check_seed(seed, "cuda.manual_seed")


def manual_seed_all(seed: int) -> None:
    """As manual_seed, for every GPU."""
    _random._check_seed(seed, "cuda.manual_seed_all")


def seed() -> None:
    return None


def seed_all() -> None:
    return None
