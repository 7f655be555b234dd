"""NumPy/OpenBLAS as a peer, in a subprocess that times itself (bench/worker.py).

The benchmark machine's environment sets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which hold
OpenBLAS to a slower kernel. The fair GEMM peer runs with both removed from its environment
(`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`, that subprocess only); a second worker keeps
the default environment, for reference. Each worker reports which OpenBLAS kernel ran
(threadpoolctl: internal_api, architecture, num_threads).

    python -m bench.numpy_peer THREADS     # the worker (started by NumpyPeer)
"""

from __future__ import annotations

import os
import shutil
import sys
import time

from .timing import Side
from .worker import Worker, serve

UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


class NumpyPeer(Worker):
    """A running worker. `unset_env` removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for it."""

    def __init__(self, unset_env: bool, threads: int) -> None:
        self.unset_env = unset_env
        command = [sys.executable, "-m", "bench.numpy_peer", str(threads)]
        env = None
        if unset_env:
            if shutil.which("env"):
                command = ["env"] + [arg for name in UNSET for arg in ("-u", name)] + command
            else:
                env = {k: v for k, v in os.environ.items() if k not in UNSET}
        super().__init__(command, env)

    def gemm_side(
        self, name: str, m: int, n: int, k: int, trans_a: bool, trans_b: bool, batch: int = 0
    ) -> Side:
        """A side computing op(a) @ op(b) with np.matmul on transposed views (no copies)."""
        return self.side(name, m=m, n=n, k=k, trans_a=trans_a, trans_b=trans_b, batch=batch)

    def peak_gflops(self, n: int, reps: int) -> dict:
        return self.request(op="peak", n=n, reps=reps)


# ---------------------------------------------------------------- the worker


def _blas_info() -> list:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl is not installed (pip install threadpoolctl)"}]
    keys = (
        "user_api",
        "internal_api",
        "prefix",
        "version",
        "architecture",
        "num_threads",
        "threading_layer",
    )
    return [{k: lib.get(k) for k in keys} for lib in threadpool_info() if lib["user_api"] == "blas"]


def _serve(threads: int) -> None:
    import numpy as np

    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=threads)  # noqa: F841 (held for the worker's life)
        limited = True
    except ImportError:
        limited = False
    rng = np.random.default_rng(0)

    def matrices(m, n, k, trans_a, trans_b, batch):
        lead = (batch,) if batch else ()
        a = rng.standard_normal(lead + ((k, m) if trans_a else (m, k)), dtype=np.float32)
        b = rng.standard_normal(lead + ((n, k) if trans_b else (k, n)), dtype=np.float32)
        a = np.swapaxes(a, -1, -2) if trans_a else a
        b = np.swapaxes(b, -1, -2) if trans_b else b
        return a, b

    def setup(req: dict):
        a, b = matrices(
            req["m"], req["n"], req["k"], req["trans_a"], req["trans_b"], req.get("batch", 0)
        )
        return lambda: np.matmul(a, b)

    def handle(req: dict) -> dict:
        op = req["op"]
        if op == "info":
            return {
                "numpy": np.__version__,
                "pid": os.getpid(),
                "blas": _blas_info(),
                "threads_limited": limited,
                "env": {name: os.environ.get(name) for name in UNSET},
            }
        if op == "peak":
            n = req["n"]
            a, b = matrices(n, n, n, False, False, 0)
            np.matmul(a, b)  # warm-up
            best = float("inf")
            for _ in range(req["reps"]):
                start = time.perf_counter()
                np.matmul(a, b)
                best = min(best, time.perf_counter() - start)
            return {"n": n, "gflops": 2.0 * n**3 / best / 1e9, "seconds": best}
        raise ValueError(f"unknown op {op!r}")

    serve(setup, handle)


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
