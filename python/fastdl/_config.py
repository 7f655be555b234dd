"""Build and runtime information: `fastdl.show_config()` prints it, `fastdl.info()` returns it."""

from __future__ import annotations

import platform

from . import _C


def info() -> dict:
    """Version, compiler, OpenMP, threads, SIMD level and CUDA status, as a dict."""
    cfg = dict(_C.build_config)
    features = _C.cpu_features()
    return {
        "version": cfg["version"],
        "compiler": cfg["compiler"],
        "openmp": cfg["openmp"],
        "threads": _C.get_num_threads(),
        "simd": cfg["simd"],
        "cpu_features": ", ".join(k for k, v in features.items() if v) or "none detected",
        "machine": platform.machine(),
        "cuda_built": cfg["cuda_built"],
        "cuda_devices": _C.cuda_device_count(),
    }


def show_config() -> None:
    """Print what `info()` returns, one line per item."""
    for key, value in info().items():
        if key == "openmp" and value is not None:
            value = f"yes (OpenMP {value})"
        print(f"{key:>13}: {value}")
