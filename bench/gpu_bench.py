"""The GPU bench rows of the CUDA backend, side by side in one run (bench/gpu_check.sh runs it):

- sgemm n = 1024 and 4096, fastdl's kernel against cuBLAS (through CuPy and through PyTorch),
  TF32 off everywhere (goal at 4096: >= 0.8x cuBLAS's throughput);
- fused Adam over 64M parameters against the same run's device-to-device copy bandwidth, Adam
  counted as 28 bytes per parameter (goal: >= 0.8x);
- the founding CNN's train step at batch 64 and 256 against PyTorch CUDA with cuDNN (goal at
  256: no slower).

Times are CUDA-event medians after warm-up, sides interleaved. Prints a table and writes JSON to
the path given (or prints it). Needs a GPU, CuPy and (for its rows) PyTorch with CUDA.
    python -m bench.gpu_bench OUT.json
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import Callable

import numpy as np


def _time(fn: Callable[[], object], cp, reps: int) -> float:
    """Median seconds of fn() on the GPU, by CUDA events around each call."""
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    times = []
    for _ in range(reps):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
    return statistics.median(times)


def _interleaved(sides: dict, cp, reps: int, rounds: int = 5) -> dict:
    for fn in sides.values():  # warm up (and first-call compilation)
        for _ in range(3):
            fn()
    cp.cuda.Device().synchronize()
    samples = {k: [] for k in sides}
    for _ in range(rounds):
        for k, fn in sides.items():
            samples[k].append(_time(fn, cp, reps))
    return {k: statistics.median(v) for k, v in samples.items()}


def sgemm_rows(cp, torch) -> list:
    from fastdl.backends import cuda

    rows = []
    for n in (1024, 4096):
        a = cp.asarray(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
        b = cp.asarray(np.random.default_rng(1).standard_normal((n, n), dtype=np.float32))
        sides = {
            "fastdl": lambda a=a, b=b: cuda.matmul(a, b),
            "cupy (cuBLAS)": lambda a=a, b=b: a @ b,
        }
        if torch is not None:
            torch.backends.cuda.matmul.allow_tf32 = False
            ta, tb = torch.from_dlpack(a), torch.from_dlpack(b)
            sides["torch (cuBLAS)"] = lambda ta=ta, tb=tb: ta @ tb
        t = _interleaved(sides, cp, reps=10 if n == 4096 else 30)
        flop = 2.0 * n**3
        rows.append(
            {
                "row": f"sgemm n={n} (TF32 off)",
                **{f"{k} TFLOP/s": flop / v / 1e12 for k, v in t.items()},
                "fastdl / cuBLAS throughput": t["cupy (cuBLAS)"] / t["fastdl"],
                "goal": ">= 0.8 at n=4096",
            }
        )
    return rows


def adam_row(cp) -> dict:
    from fastdl.backends import cuda

    n = 64 * 1024 * 1024
    p, g, m, v = (cp.random.standard_normal(n, dtype=cp.float32) for _ in range(4))
    v = cp.abs(v)
    src, dst = cp.empty(7 * n, cp.float32), cp.empty(7 * n, cp.float32)
    step = [0]

    def adam():
        step[0] += 1
        cuda.adam_step([p], [g], [m], [v], step[0], 1e-3, 0.9, 0.999, 1e-8)

    t = _interleaved({"adam": adam, "copy": lambda: cp.copyto(dst, src)}, cp, reps=10)
    adam_bw = 28.0 * n / t["adam"]
    copy_bw = 2 * 4.0 * 7 * n / t["copy"]  # bytes read + written
    return {
        "row": "fused Adam, 64M parameters",
        "adam GB/s (28 B/param)": adam_bw / 1e9,
        "device copy GB/s (read+write)": copy_bw / 1e9,
        "adam / copy bandwidth": adam_bw / copy_bw,
        "goal": ">= 0.8",
    }


def cnn_rows(cp, torch) -> list:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.model import build

    rows = []
    for batch in (64, 256):
        sides = {"fastdl": build("fastdl", batch, device="cuda").train_step}
        if torch is not None:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            sides["torch (cuDNN)"] = build("torch", batch, device="cuda").train_step
        t = _interleaved(sides, cp, reps=10)
        row = {
            "row": f"CNN train step, batch {batch}",
            **{f"{k} ms": v * 1e3 for k, v in t.items()},
        }
        if torch is not None:
            row["fastdl / torch time"] = t["fastdl"] / t["torch (cuDNN)"]
            row["goal"] = "<= 1.0 at batch 256"
        rows.append(row)
    return rows


def main(argv: list) -> int:
    import fastdl

    if not fastdl.cuda.is_available():
        print(f"gpu_bench: no GPU rows: {fastdl.cuda.unavailable_reason()}")
        return 1
    import cupy as cp

    try:
        import torch

        torch = torch if torch.cuda.is_available() else None
    except ImportError:
        torch = None
    fastdl.cuda.device_type()
    result = {
        "device": fastdl.info()["cuda"],
        "cupy": cp.__version__,
        "torch": None if torch is None else torch.__version__,
        "rows": [],
    }
    for make in (
        lambda: sgemm_rows(cp, torch),
        lambda: [adam_row(cp)],
        lambda: cnn_rows(cp, torch),
    ):
        done = len(result["rows"])
        try:
            result["rows"] += make()
        except Exception as e:  # one broken row must not hide the others
            result["rows"].append({"row": "error", "error": f"{type(e).__name__}: {e}"})
        for row in result["rows"][done:]:
            print(
                "  ".join(
                    f"{k}: {v:.3g}" if isinstance(v, float) else f"{k}: {v}" for k, v in row.items()
                ),
                flush=True,
            )
    text = json.dumps(result, indent=2)
    if len(argv) > 1:
        with open(argv[1], "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
