"""Build and runtime information: `fastdl.show_config()` prints it, `fastdl.info()` returns it."""

from __future__ import annotations

import platform

from . import _C, _openmp


def info() -> dict:
    """Version, compiler, OpenMP, threads, SIMD level, CUDA status (`cuda`: the GPUs, their
    compute capability, the CUDA runtime and CuPy's version, or why there is none) and MPI status
    (`mpi`), as a dict.

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
        "simd_built": ", ".join(f"{isa} ({what})" for isa, what in cfg["simd_builds"].items()),
        "gemm_kernel": _C.gemm_config()["kernel"],
        "cpu_features": ", ".join(k for k, v in features.items() if v) or "none detected",
        "machine": platform.machine(),
        "malloc_tuning": cfg["malloc_tuning"],  # FASTDL_MALLOC_TUNING=0 turns it off
        "cuda_built": cfg["cuda_built"],
        "cuda_devices": _C.cuda_device_count(),
        "cuda": _cuda_line(),
    }
    from . import distributed

    out["mpi"] = distributed.status()  # fastdl.distributed's engine, or why it is missing
    note = _C.simd_note()
    if note:
        out["simd_note"] = note  # why FASTDL_SIMD was not honoured
    return out


def _cuda_line() -> str:
    """The GPU, its compute capability, the CUDA runtime and driver and CuPy's version; or why
    CUDA tensors are not available here."""
    from . import cuda

    why = cuda.unavailable_reason()
    if why is not None:
        return f"not available: {why}"
    import cupy

    def version(v: int) -> str:
        return f"{v // 1000}.{v % 1000 // 10}"

    lines = []
    for i in range(cuda.device_count()):
        d = _C.cuda.device_info(i)
        lines.append(
            f"cuda:{i} {d['name']}, compute capability {d['capability'][0]}.{d['capability'][1]}"
            f", {d['multiprocessors']} SMs, CUDA runtime {version(d['runtime_version'])}, "
            f"driver {version(d['driver_version'])}, CuPy {cupy.__version__}"
        )
    return "; ".join(lines)


def show_config() -> None:
    """Print what `info()` returns, one line per item."""
    for key, value in info().items():
        if key == "openmp" and value is not None:
            value = f"yes (OpenMP {value})"
        print(f"{key:>14}: {value}")
