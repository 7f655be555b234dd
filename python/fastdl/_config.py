"""Build and runtime information: `fastdl.show_config()` prints it, `fastdl.info()` returns it."""

from __future__ import annotations

import platform

from . import _C, _openmp


def info() -> dict:
    """Version, compiler, OpenMP, threads, SIMD level and CUDA status, as a dict.

    `simd` is the instruction-set build of the kernels in use (baseline, avx2 or avx512: the best
    this processor supports, unless the environment variable FASTDL_SIMD asks for another);
    `simd_supported` lists those the processor can run, best last.
    """
    cfg = dict(_C.build_config)
    features = _C.cpu_features()
    out = {
        "version": cfg["version"],
        "compiler": cfg["compiler"],
        "openmp": cfg["openmp"],
        "threads": _C.get_num_threads(),
        "omp_wait_policy": _openmp.wait_policy,  # passive unless the user chose (fastdl/_openmp.py)
        "simd": _C.simd_level(),
        "simd_supported": ", ".join(_C.supported_isas()),
        "simd_built": cfg["simd"],
        "gemm_kernel": _C.gemm_config()["kernel"],
        "cpu_features": ", ".join(k for k, v in features.items() if v) or "none detected",
        "machine": platform.machine(),
        "malloc_tuning": cfg["malloc_tuning"],  # FASTDL_MALLOC_TUNING=0 turns it off
        "cuda_built": cfg["cuda_built"],
        "cuda_devices": _C.cuda_device_count(),
    }
    note = _C.simd_note()
    if note:
        out["simd_note"] = note  # why FASTDL_SIMD was not honoured
    return out


def show_config() -> None:
    """Print what `info()` returns, one line per item."""
    for key, value in info().items():
        if key == "openmp" and value is not None:
            value = f"yes (OpenMP {value})"
        print(f"{key:>14}: {value}")
