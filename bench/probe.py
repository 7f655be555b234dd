"""What the system section measures in a fresh process; prints one JSON line.

    python -m bench.probe baseline                         RSS of a bare interpreter
    python -m bench.probe import LIB                       time and RSS of `import LIB`
    python -m bench.probe train LIB STEPS BATCH THREADS    peak RSS (VmHWM) of STEPS training steps
    python -m bench.probe soak LIB STEPS SAVES THREADS     RSS before and after STEPS training
                                                           steps and SAVES checkpoint round trips

Only the standard library is imported before the measured part (bench/__init__.py is empty).
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_bytes() -> int:
    """Resident memory now (VmRSS)."""
    return _status("VmRSS")


def peak_rss_bytes() -> int:
    """Peak resident memory of this program (VmHWM, the high-water mark of its address space)."""
    return _status("VmHWM")


def maxrss_bytes() -> int:
    """getrusage's maxrss. NOTE: on Linux it survives exec: a child started from a big process
    reports at least the parent's size, so peak_rss_bytes is the figure to use."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv: list[str]) -> dict:
    what = argv[0]
    if what == "baseline":
        return {"rss_bytes": rss_bytes(), "peak_rss_bytes": peak_rss_bytes()}
    if what == "import":
        before = rss_bytes()
        start = time.perf_counter()
        importlib.import_module(argv[1])
        seconds = time.perf_counter() - start
        return {
            "import_s": seconds,
            "rss_bytes": rss_bytes(),
            "rss_before_bytes": before,
            "peak_rss_bytes": peak_rss_bytes(),
        }
    if what == "train":
        library, steps, batch, threads = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
        lib = importlib.import_module(library)
        lib.set_num_threads(threads)
        after_import = rss_bytes()
        from .model import build

        workload = build(library, batch)
        start = time.perf_counter()
        for _ in range(steps):
            workload.train_step()
        return {
            "peak_rss_bytes": peak_rss_bytes(),
            "maxrss_bytes": maxrss_bytes(),
            "rss_after_import_bytes": after_import,
            "steps": steps,
            "batch": batch,
            "seconds": time.perf_counter() - start,
        }
    if what == "soak":
        return soak(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))
    raise SystemExit(f"unknown probe {what!r}; see {__doc__}")


def soak(library: str, steps: int, saves: int, threads: int) -> dict:
    """A leak check: RSS after warming up, after `steps` more training steps at batch 64, and
    after `saves` save/load round trips of the model's state_dict (flat RSS is the goal)."""
    import os
    import tempfile

    lib = importlib.import_module(library)
    lib.set_num_threads(threads)
    from .model import build

    workload = build(library, 64)
    for _ in range(20):  # warm-up: allocator pools and caches settle first
        workload.train_step()
    start_rss = rss_bytes()
    started = time.perf_counter()
    for _ in range(steps):
        workload.train_step()
    train_rss = rss_bytes()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "soak.ckpt")
        for _ in range(saves):
            lib.save(workload.model.state_dict(), path)
            workload.model.load_state_dict(lib.load(path))
    return {
        "rss_start_bytes": start_rss,
        "rss_after_train_bytes": train_rss,
        "rss_end_bytes": rss_bytes(),
        "steps": steps,
        "saves": saves,
        "seconds": time.perf_counter() - started,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
