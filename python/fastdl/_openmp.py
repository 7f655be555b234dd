"""fastdl's OpenMP threads wait passively: they sleep between parallel regions instead of spinning.

libgomp reads its wait policy once, when it is loaded, and by default a thread that finishes its
share spins for up to ~300,000 iterations (milliseconds) before it sleeps. On a machine where
another process keeps a core busy, those spinning threads take the time slices the working
threads need, and a 2-thread training step ran 5-10x slower. So `fastdl._C` is imported under
OMP_WAIT_POLICY=passive, unless the user chose a policy (OMP_WAIT_POLICY or GOMP_SPINCOUNT set)
or libgomp is already loaded (it has read its settings). The variable is removed again at once,
so child processes do not inherit it.
NOTE: a process has one libgomp (PyTorch loads the same libgomp.so.1), so PyTorch's OpenMP
threads in the same process wait passively too when fastdl is imported first.
Tests: tests/test_config.py. Bench: bench/training.py (the train.b64.loaded row).
"""

from __future__ import annotations

import contextlib
import os

USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")

# What happened at import, for fastdl.info(): "passive (fastdl's default)", "set by the user
# (OMP_WAIT_POLICY=...)" or "libgomp's default (loaded before fastdl)".
wait_policy = "libgomp's default"


def _libgomp_loaded() -> bool:
    try:
        with open("/proc/self/maps") as maps:
            return any("libgomp" in line for line in maps)
    except OSError:  # not Linux: no way to tell, so assume it is not
        return False


@contextlib.contextmanager
def passive_wait():
    """Around the import of fastdl._C: OMP_WAIT_POLICY=passive while libgomp loads (see above)."""
    global wait_policy
    chosen = [f"{name}={os.environ[name]}" for name in USER_VARIABLES if name in os.environ]
    if chosen:
        wait_policy = f"set by the user ({', '.join(chosen)})"
        yield
        return
    if _libgomp_loaded():
        wait_policy = "libgomp's default (libgomp was loaded before fastdl)"
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)
    wait_policy = "passive (fastdl's default)"
