"""Data parallelism on MPI: allreduce bandwidth against message size, beside the copy
bandwidth measured in the same run, and the founding CNN's train step at global batch 64 on one
and two ranks (samples/s and scaling efficiency), with PyTorch's DDP (gloo) as the peer.

Each measurement is a job of its own, `mpiexec -n N python -m bench.distributed MODE ...`, whose
rank 0 prints one JSON line; the section turns those into rows. Needs the `[mpi]` extra.

    allreduce: fastdl.distributed.all_reduce (a non-blocking Iallreduce polled against the
      timeout) and mpi4py's blocking Allreduce on the same buffer, interleaved. GB/s is NCCL's
      "bus bandwidth", bytes x 2(N-1)/N / time: the data each rank moves in a ring allreduce.
    step: one Adam train step of the CNN at global batch 64 (64 / N images per rank, the
      gradients averaged by DistributedDataParallel), in jobs of 1 and 2 ranks alternated.
    model: the ring-allreduce cost model of the README (`python -m bench.distributed model
      64=0.0398 256=0.206`: one machine's step times in seconds by global batch).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .model import PARAMETERS, TRAIN_FLOP_PER_SAMPLE, build
from .rows import Context, new_row
from .timing import CpuMeter, call_times, error_text, summarize

SECTION = "distributed"
REPO_ROOT = Path(__file__).resolve().parent.parent
SIZES = (4 * 2**10, 64 * 2**10, 2**20, 421_642 * 4, 16 * 2**20, 64 * 2**20)  # bytes
BATCH = 64
STEP_CONFIGS = ((1, 1), (1, 2), (2, 1))  # (ranks, threads per rank) of the CNN step rows


# ---------------------------------------------------------------- what each rank runs


def _allreduce_job(sizes: list[int], rounds: int) -> dict:
    import numpy as np

    import fastdl
    import fastdl.distributed as dist

    dist.init_process_group("mpi")
    comm = dist.group.WORLD.comm
    out = {}
    for size in sizes:
        t = fastdl.from_numpy(np.ones(size // 4, np.float32))
        buf = t.numpy()
        sides = {"fastdl": lambda: dist.all_reduce(t), "mpi4py": lambda: comm.Allreduce(
            dist._mpi().IN_PLACE, buf)}
        for fn in sides.values():
            fn()
        start = time.perf_counter()
        sides["fastdl"]()
        reps = comm.bcast(max(1, int(0.02 / max(time.perf_counter() - start, 1e-7))))
        samples: dict = {name: [] for name in sides}
        for _ in range(rounds):
            for name, fn in sides.items():
                comm.Barrier()
                start = time.perf_counter()
                for _ in range(reps):
                    fn()
                samples[name].append((time.perf_counter() - start) / reps)
        out[str(size)] = samples
    dist.destroy_process_group()
    return out


def _torch_group(port: int) -> None:
    import torch.distributed as tdist

    rank, size = int(os.environ.get("PMI_RANK", 0)), int(os.environ.get("PMI_SIZE", 1))
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                             world_size=size)


def _step_job(library: str, threads: int, steps: int, port: int) -> dict:
    import importlib

    lib = importlib.import_module(library)
    lib.set_num_threads(threads)
    ranks = int(os.environ.get("PMI_SIZE", 1))
    wrap = None
    if ranks > 1 and library == "fastdl":
        import fastdl.distributed as dist
        from fastdl.nn.parallel import DistributedDataParallel

        dist.init_process_group("mpi")
        wrap = DistributedDataParallel
    elif ranks > 1:
        from torch.nn.parallel import DistributedDataParallel

        _torch_group(port)
        wrap = DistributedDataParallel
    step = build(library, BATCH // ranks, seed=0, wrap=wrap).train_step
    for _ in range(3):
        step()
    return {"step_s": statistics.median(call_times(step, steps))}


def worker(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "model":  # python -m bench.distributed model 64=0.0398 256=0.206
        print(cost_model({int(k): float(v) for k, v in (a.split("=") for a in argv[1:])}))
        return
    if mode == "allreduce":
        result = _allreduce_job([int(s) for s in argv[1].split(",")], int(argv[2]))
    else:
        result = _step_job(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))
    if int(os.environ.get("PMI_RANK", 0)) == 0:
        print(json.dumps(result), flush=True)


# ---------------------------------------------------------------- the cost model


def ring_allreduce_s(nbytes: float, ranks: int, bytes_per_s: float, latency_s: float = 0.0):
    """Time of a ring allreduce of `nbytes` over `ranks` ranks: each rank sends (and receives)
    2(N-1)/N of the message in 2(N-1) steps (reduce-scatter, then all-gather)."""
    return 2 * (ranks - 1) / ranks * nbytes / bytes_per_s + 2 * (ranks - 1) * latency_s


def cost_model(step_s: dict, gbit: float = 10.0, latency_s: float = 20e-6) -> str:
    """The README's table: the founding CNN's gradient allreduce on a `gbit` Gb/s network and
    the scaling efficiency it leaves, with no overlap (the worst case), for one machine's step
    times `step_s` {global batch: seconds}: efficiency = (t/N) / (t/N + allreduce)."""
    nbytes = PARAMETERS * 4
    lines = [f"gradients: {PARAMETERS:,} fp32 = {nbytes / 1e6:.2f} MB; network {gbit:g} Gb/s, "
             f"{latency_s * 1e6:.0f} us per message",
             "| machines N | allreduce (ms) | " + " | ".join(
                 f"efficiency, batch {b} ({t * 1e3:.0f} ms on one)" for b, t in step_s.items()
             ) + " |", "|---" * (2 + len(step_s)) + "|"]
    for n in (2, 4, 8, 16, 32, 64):
        comm = ring_allreduce_s(nbytes, n, gbit * 1e9 / 8, latency_s)
        cells = [f"{(t / n) / (t / n + comm):.2f}" for t in step_s.values()]
        lines.append(f"| {n} | {comm * 1e3:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- the section


def _mpiexec() -> str | None:
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


def _job(ranks: int, *args: str, timeout: float = 600) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [_mpiexec(), "-n", str(ranks), sys.executable, "-m", "bench.distributed", *args],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout, env=env,
    )
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"mpiexec exited with {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(ctx: Context) -> None:
    import fastdl.distributed as dist

    error = None
    if not dist.is_available():
        error = dist._unavailable_reason()
    elif _mpiexec() is None:
        error = "mpiexec not found"
    allreduce(ctx, error)
    cnn_step(ctx, error)


def allreduce(ctx: Context, error: str | None) -> None:
    sizes = [s for s in SIZES if not ctx.quick or s <= 2**21]
    rows = {}
    for size in sizes:
        label = f"{size / 2**20:.2f} MiB" if size >= 2**20 else f"{size // 2**10} KiB"
        row = new_row(SECTION, f"mpi.allreduce.{size}", f"allreduce of {label} fp32, 2 ranks",
                      "GB/s", peer="mpi4py", work=float(size), work_kind="byte",
                      params={"bytes": size, "ranks": 2, "copy_gbps": ctx.copy_gbps})
        if ctx.wants(row["id"]):
            rows[size] = row
    if not rows:
        return
    meter = CpuMeter()
    try:
        if error:
            raise RuntimeError(error)
        ctx.wait_for_quiet({})
        results = _job(2, "allreduce", ",".join(map(str, rows)), str(ctx.settings.rounds))
    except Exception as exc:  # noqa: BLE001 (every row shows the error)
        results, error = {}, error_text(exc)
    others = meter.others()
    for size, row in rows.items():
        # bus bandwidth: 2(N-1)/N of the message per rank, which is the message for N = 2
        samples = results.get(str(size), {"fastdl": [], "mpi4py": []})
        _fill(ctx, row, samples, error, others)


def _fill(ctx: Context, row: dict, samples: dict, error: str | None, others) -> None:
    from .rows import fill

    sides, ratios = summarize("fastdl", samples)
    fill(row, {"sides": sides, "ratios": ratios})
    row["error"] = error or row["error"]
    row["others_cpu"] = others
    ctx.record(row)


def cnn_step(ctx: Context, error: str | None) -> None:
    """One row per (ranks, threads per rank): ms per global step of 64 images, fastdl against
    PyTorch in jobs alternated round by round; the params hold each side's samples/s and, on
    2 ranks, its scaling efficiency over 1 rank with 1 thread."""
    rows = {}
    for ranks, threads in STEP_CONFIGS:
        row = new_row(
            SECTION, f"mpi.train.b{BATCH}.{ranks}r{threads}t",
            f"CNN train step, global batch {BATCH}, {ranks} rank(s) x {threads} thread(s)", "ms",
            peer="torch", work=float(TRAIN_FLOP_PER_SAMPLE * BATCH), work_kind="flop",
            params={"ranks": ranks, "threads": threads},
        )
        if ctx.wants(row["id"]):
            rows[(ranks, threads)] = row
    if not rows:
        return
    samples = {key: {"fastdl": [], "torch": []} for key in rows}
    errors: dict = {}
    meter = CpuMeter()
    steps = 10 if ctx.quick else 30
    for _ in range(2 if ctx.quick else 5):
        ctx.wait_for_quiet({})
        for key in rows:
            for library in ("fastdl", "torch"):
                try:
                    if error:
                        raise RuntimeError(error)
                    if library == "torch":
                        ctx.need_torch()
                    result = _job(key[0], "step", library, str(key[1]), str(steps),
                                  str(_free_port()))
                    samples[key][library].append(result["step_s"])
                except Exception as exc:  # noqa: BLE001
                    errors.setdefault(key, {})[library] = error_text(exc)
                    samples[key][library].append(None)
    others = meter.others()
    for key, row in rows.items():
        _fill(ctx, row, samples[key], errors.get(key, {}).get("fastdl"), others)
        for library, side in row["sides"].items():
            side["samples_per_s"] = BATCH / side["median"] if side.get("median") else None
            if errors.get(key, {}).get(library):
                side["error"] = errors[key][library]
    one = rows.get((1, 1))
    for (ranks, _), row in rows.items():
        figures = []
        for library, side in row["sides"].items():
            text = f"{library} {side['samples_per_s'] or 0:.0f} samples/s"
            base = one["sides"].get(library, {}).get("samples_per_s") if one else None
            if ranks > 1 and base and side.get("samples_per_s"):
                side["scaling_efficiency"] = side["samples_per_s"] / (ranks * base)
                text += f", scaling efficiency {side['scaling_efficiency']:.2f}"
            figures.append(text)
        row["what"] += f" ({'; '.join(figures)})"


if __name__ == "__main__":
    worker(sys.argv[1:])
