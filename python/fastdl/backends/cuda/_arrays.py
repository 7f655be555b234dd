"""What the cuda backend's wrappers share: CuPy (imported on first use), the current stream's
handle, and float32 / int64 C-contiguous views of their inputs."""

from __future__ import annotations

from types import ModuleType

from ... import _C, _args

_cupy: list = []


def cupy() -> ModuleType:
    """The CuPy module, imported on the first call (a plain install never imports it)."""
    if not _cupy:
        import cupy as cp

        _cupy.append(cp)
    return _cupy[0]


def kernels():
    """fastdl._C.cuda, the CUDA kernels' bindings; a clear error when fastdl was built without
    them."""
    c = getattr(_C, "cuda", None)
    if c is None:
        raise RuntimeError(
            "[cuda] this fastdl was built without its CUDA kernels; rebuild with "
            "FASTDL_CUDA=ON pip install '.[cuda]'"
        )
    return c


def stream() -> int:
    """The handle of CuPy's current stream on the current device (0: the legacy default)."""
    return cupy().cuda.get_current_stream().ptr


def f32(a):
    """`a` as a C-contiguous float32 CuPy array (itself when it is one already; a 0-d array
    stays 0-d, which cupy.ascontiguousarray would make 1-d)."""
    return _contiguous(cupy().asarray(a, dtype="float32"))


def i64(a):
    return _contiguous(cupy().asarray(a, dtype="int64"))


def _contiguous(a):
    return a if a.flags.c_contiguous else cupy().ascontiguousarray(a)


def pair(v) -> tuple:
    """An int or a pair of ints -> (int, int) (fastdl._args.pair's rule)."""
    return _args.pair(v, "cuda backend", "size")
