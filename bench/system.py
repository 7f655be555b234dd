"""System: the machine, its measured roofs, and what is not a kernel.

- machine_info: CPU model and ISA flags, library versions, load, date.
- measure_roofs: the fp32 FMA peak (fastdl._C.fma_peak: a register-resident multiply-add loop
  of the ISA build in use, on the bench's threads; every ISA the processor runs is recorded),
  the theoretical one (clock x cores x FMA pipes x lanes x 2) and the copy bandwidth (large
  np.copyto, one thread and two). Goals in "% of peak" or "of copy bandwidth" are judged against
  these, from the same run. A large NumPy/OpenBLAS sgemm is recorded beside the peak as a peer's
  figure, not as the roof.
- run: per-op Python overhead on tiny tensors (G10), `import` time and resident memory in fresh
  processes (G11), peak memory of a training run in a fresh process (G12).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import goals
from .numpy_peer import UNSET
from .worker import REPO_ROOT
from .rows import Context, fill, new_row
from .timing import CpuMeter, call_times, error_text, summarize

SECTION = "system"
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
)
FMA_PIPES = 2  # assumed: two full-width FMA pipes per core (Zen 4 splits a 512-bit FMA over
# its two 256-bit pipes, so there the theoretical AVX-512 figure is twice what the loop measures)


# ---------------------------------------------------------------- the machine


def _cpuinfo() -> dict:
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def _lscpu() -> dict:
    try:
        out = subprocess.run(
            ["lscpu"], check=False, capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    wanted = (
        "Model name",
        "CPU family",
        "Model",
        "Thread(s) per core",
        "Core(s) per socket",
        "L1d cache",
        "L2 cache",
        "L3 cache",
        "Hypervisor vendor",
    )
    pairs = (line.split(":", 1) for line in out.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs if k.strip() in wanted}


def isa_summary(flags: set) -> tuple[str, int]:
    """(name, fp32 lanes per FMA) of the widest vector ISA the CPU reports."""
    if "avx512f" in flags:
        return "AVX-512 (512-bit FMA)", 16
    if "avx2" in flags and "fma" in flags:
        return "AVX2 + FMA (256-bit), no AVX-512", 8
    if "avx" in flags:
        return "AVX (256-bit), no FMA", 8
    return "SSE (128-bit)", 4


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def machine_info() -> dict:
    cpu = _cpuinfo()
    flags = set(cpu.get("flags", "").split())
    isa, lanes = isa_summary(flags)
    cores = len(os.sched_getaffinity(0))
    mhz = float(cpu.get("cpu MHz", "0") or 0)
    theoretical = mhz / 1e3 * cores * FMA_PIPES * lanes * 2 if mhz else None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable), "-m", "bench"] + sys.argv[1:]),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _lscpu(),
        "cores": cores,
        "isa": isa,
        "isa_flags": sorted(f for f in ISA_FLAGS if f in flags),
        "nominal_mhz": mhz or None,
        "theoretical_peak_gflops": theoretical,
        "theoretical_peak_formula": (
            f"{mhz:.0f} MHz x {cores} cores x {FMA_PIPES} FMA pipes x {lanes} fp32 lanes x 2"
            " (nominal clock as /proc/cpuinfo reports it; a VM shows the TSC rate, not boost)"
        )
        if mhz
        else None,
        "loadavg_start": loadavg(),
        "env": {k: os.environ.get(k) for k in UNSET + ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }


def library_versions(torch) -> dict:
    versions = {"numpy": np.__version__}
    try:
        from threadpoolctl import threadpool_info

        versions["numpy_blas_default_env"] = [
            {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for lib in threadpool_info()
            if lib["user_api"] == "blas"
        ]
    except ImportError:
        versions["numpy_blas_default_env"] = "threadpoolctl not installed"
    try:
        import fastdl

        versions["fastdl"] = fastdl.__version__
        versions["fastdl_info"] = fastdl.info()
        simd_level = getattr(fastdl._C, "simd_level", None)  # which ISA build of the kernels runs
        versions["fastdl_simd_level"] = simd_level() if simd_level else None
    except Exception as exc:  # noqa: BLE001
        versions["fastdl"] = f"import failed: {error_text(exc)}"
    if torch is not None:
        versions["torch"] = torch.__version__
        versions["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        versions["torch_mkldnn"] = torch.backends.mkldnn.is_available()
    else:
        versions["torch"] = None
    return versions


# ---------------------------------------------------------------- roofs


def measure_roofs(ctx: Context, roofs: dict | None = None) -> dict:
    """Measures the fp32 FMA peak and the copy bandwidth once more and keeps the best so far in
    ctx.peak_gflops and ctx.copy_gbps. Run at the start and at the end: a roof is what the
    machine can do, and a busy moment of a shared machine should not lower it.
    Returns (and updates) the details for the JSON."""
    roofs = roofs or {"peak": {"runs": []}, "copy": {"runs": []}, "openblas": {"runs": []}}
    ctx.wait_for_quiet(roofs)
    peak, copy, openblas = roofs["peak"], roofs["copy"], roofs["openblas"]
    try:
        peak["runs"].append(fma_peak(ctx.threads, ctx.quick))
        peak["method"] = peak["runs"][-1]["method"] + "; best of the runs"
        peak["kernel"], peak["isa"] = peak["runs"][-1]["kernel"], peak["runs"][-1]["isa"]
    except Exception as exc:  # noqa: BLE001
        peak["runs"].append({"error": error_text(exc)})
    if ctx.numpy is not None:
        n, reps = (1024, 3) if ctx.quick else (2048, 6)
        try:
            openblas["runs"].append(ctx.numpy.peak_gflops(n, reps))
            openblas["method"] = (
                f"best of {reps} np.matmul n={n} fp32 per run, OpenBLAS with "
                f"{' and '.join(UNSET)} unset, {ctx.threads} threads; best of the runs "
                "(a peer's sgemm, not the roof)"
            )
        except Exception as exc:  # noqa: BLE001
            openblas["runs"].append({"error": error_text(exc)})
    try:
        copy["runs"].append(copy_bandwidth(ctx.quick))
        copy["method"] = copy["runs"][-1]["method"] + "; best of the runs"
    except Exception as exc:  # noqa: BLE001
        copy["runs"].append({"error": error_text(exc)})
    for roof, key in ((peak, "gflops"), (openblas, "gflops"), (copy, "gbps")):
        values = [run[key] for run in roof["runs"] if key in run]
        roof[key] = max(values) if values else None
    isas = {isa for run in peak["runs"] for isa in run.get("by_isa", {})}
    peak["by_isa"] = {
        isa: max(run["by_isa"][isa] for run in peak["runs"] if isa in run.get("by_isa", {}))
        for isa in sorted(isas)
    }
    for key in ("one_thread_gbps", "two_threads_gbps"):
        values = [run[key] for run in copy["runs"] if key in run]
        copy[key] = max(values) if values else None
    ctx.peak_gflops, ctx.copy_gbps = peak["gflops"], copy["gbps"]
    latest = peak["runs"][-1].get("gflops") if peak["runs"] else None
    print(
        f"  [roofs] FMA peak {latest} GFLOP/s, OpenBLAS sgemm {openblas.get('gflops')} GFLOP/s, "
        f"copy {copy['runs'][-1].get('gbps')} GB/s",
        file=sys.stderr,
        flush=True,
    )
    return roofs


def fma_peak(threads: int, quick: bool) -> dict:
    """Best GFLOP/s of fastdl's register-resident FMA loop (fastdl._C.fma_peak) on `threads`
    threads, for the ISA build in use ("gflops", the roof) and for every ISA the processor runs
    ("by_isa", so a run with FASTDL_SIMD=avx2 or baseline has its own roof at hand)."""
    from fastdl import _C

    steps, reps = (2_000_000, 3) if quick else (10_000_000, 7)  # ~0.05 s per try at AVX-512
    active = _C.simd_level()
    by_isa = {}
    try:
        for isa in _C.supported_isas():
            _C.set_simd_level(isa)
            by_isa[isa] = max(_C.fma_peak(steps, threads)["gflops"] for _ in range(reps))
    finally:
        _C.set_simd_level(active)
    return {
        "gflops": by_isa[active],
        "by_isa": by_isa,
        "isa": active,
        "kernel": _C.fma_peak(1, 1)["kernel"],
        "method": f"best of {reps} runs of fastdl._C.fma_peak({steps:,} steps) on {threads} "
        "threads: independent multiply-adds on accumulators held in registers",
    }


def copy_bandwidth(quick: bool) -> dict:
    """Best GB/s (bytes read + bytes written) of np.copyto on arrays far larger than the L3,
    with one thread, and with two threads each copying one half (np.copyto releases the GIL)."""
    count = (8 if quick else 32) * 2**20
    src = np.ones(count, dtype=np.float32)
    dst = np.zeros_like(src)  # both written once, so no page fault is timed
    halves = [(dst[: count // 2], src[: count // 2]), (dst[count // 2 :], src[count // 2 :])]
    reps = 3 if quick else 8

    def best(copy) -> float:
        copy()
        return 2 * src.nbytes / min(call_times(copy, reps)) / 1e9

    one = best(lambda: np.copyto(dst, src))
    with ThreadPoolExecutor(2) as pool:
        two = best(lambda: list(pool.map(lambda pair: np.copyto(*pair), halves)))
    return {
        "gbps": max(one, two),
        "one_thread_gbps": one,
        "two_threads_gbps": two,
        "bytes_per_copy": 2 * src.nbytes,
        "method": f"best of {reps} np.copyto of {src.nbytes / 2**20:.0f} MiB per run, "
        "GB/s = (read + written bytes) / time, the better of 1 and 2 threads",
    }


# ---------------------------------------------------------------- rows


def run(ctx: Context) -> None:
    overhead(ctx)
    imports(ctx)
    training_memory(ctx)
    soak(ctx)


def overhead(ctx: Context) -> None:
    """G10: one Python call of a tiny op, so the time is all dispatch and allocation."""
    ops = {
        "add": ("x + y on 4 floats", lambda lib, x, y: lambda: x + y),
        "relu": ("relu(x) on 4 floats", lambda lib, x, y: lambda: lib.relu(x)),
        "add_grad": ("x + y on 4 floats, x requires grad", lambda lib, x, y: lambda: x + y),
        # In place: the storage is written, the version counter bumped (y.add_(x) is y += x).
        "iadd": ("y += x on 4 floats", lambda lib, x, y: lambda: y.add_(x)),
    }
    for op, (what, make) in ops.items():
        # The requires-grad and in-place variants are extra; G10 is about plain ops.
        checks = () if op in ("add_grad", "iadd") else (goals.ratio("G10", 1.0),)
        row = new_row(SECTION, f"overhead.{op}", what, "us", peer="torch", checks=checks)

        def factory(library, op=op, make=make):
            import importlib

            lib = importlib.import_module(library)
            x = lib.from_numpy(np.arange(4, dtype=np.float32))
            y = lib.from_numpy(np.ones(4, dtype=np.float32))
            if op == "add_grad":
                x.requires_grad_(True)
            return make(lib, x, y)

        def torch(factory=factory):
            ctx.need_torch()
            return factory("torch")

        ctx.add(row, {"fastdl": lambda factory=factory: factory("fastdl"), "torch": torch})


def _probe(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.probe", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
    )
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"probe exited with {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _alternate(
    ctx: Context, runs: int, probe_args
) -> tuple[dict[str, list], float, float | None]:
    """Once the machine is quiet, runs x (one fresh process per library, fastdl then torch when
    it is installed); a failing run is an error string. Returns the results, the seconds taken
    and the other processes' CPU use meanwhile (CpuMeter.others)."""
    libraries = ("fastdl", "torch") if ctx.torch is not None else ("fastdl",)
    ctx.wait_for_quiet({})
    started, meter = time.perf_counter(), CpuMeter()
    results: dict[str, list] = {lib: [] for lib in libraries}
    for _ in range(runs):
        for lib in libraries:
            try:
                results[lib].append(_probe(*probe_args(lib)))
            except Exception as exc:  # noqa: BLE001
                results[lib].append(error_text(exc))
    return results, time.perf_counter() - started, meter.others()


def _probe_row(ctx: Context, row: dict, results: dict[str, list], key: str) -> None:
    # Builds a row from probe outputs: side "fastdl" against "torch", values results[..][key].
    samples = {
        lib: [r[key] if isinstance(r, dict) else None for r in runs]
        for lib, runs in results.items()
    }
    sides, ratios = summarize("fastdl", samples)
    fill(row, {"sides": sides, "ratios": ratios})
    for lib, runs in results.items():
        errors = [r for r in runs if isinstance(r, str)]
        if errors:
            row["sides"][lib]["error"] = errors[0]
    if row["sides"]["fastdl"].get("error"):
        row["error"] = row["sides"]["fastdl"]["error"]
    ctx.record(row)


def imports(ctx: Context) -> None:
    """G11: `import fastdl` and `import torch`, each in a fresh process, alternating."""
    if not (ctx.wants("import.time") or ctx.wants("import.rss")):
        return
    runs = 1 if ctx.quick else 5
    results, elapsed, others = _alternate(ctx, runs, lambda lib: ("import", lib))
    for key, row_id, what, unit in (
        ("import_s", "import.time", "import time", "ms"),
        ("rss_bytes", "import.rss", "import resident memory", "MiB"),
    ):
        row = new_row(
            SECTION,
            row_id,
            what,
            unit,
            peer="torch",
            checks=(goals.ratio("G11", 0.25),),
            params={"runs": runs},
        )
        row["elapsed_s"], row["others_cpu"] = elapsed, others
        row["probes"] = results
        if ctx.wants(row_id):
            _probe_row(ctx, row, results, key)
    try:
        ctx.baseline_rss = _probe("baseline")["rss_bytes"]
    except Exception as exc:  # noqa: BLE001
        ctx.baseline_rss = error_text(exc)


def soak(ctx: Context) -> None:
    """Leak check (issue "Hardening"): resident memory of a fresh process after a warm-up,
    after 3,000 training steps at batch 64, and after 500 save/load round trips of the CNN's
    state_dict; each library in its own process. A flat RSS from start to end is the goal."""
    if not ctx.wants("soak"):
        return
    steps, saves = (30, 5) if ctx.quick else (3000, 500)
    results, elapsed, others = _alternate(
        ctx, 1, lambda lib: ("soak", lib, str(steps), str(saves), str(ctx.threads))
    )
    for key, row_id, what in (
        ("rss_start_bytes", "soak.rss_start", "RSS after a 20-step warm-up"),
        ("rss_after_train_bytes", "soak.rss_train", f"RSS after {steps} more train steps b64"),
        ("rss_end_bytes", "soak.rss_end", f"RSS after {saves} save/load round trips too"),
    ):
        if not ctx.wants(row_id):
            continue
        row = new_row(
            SECTION, row_id, what, "MiB", peer="torch", params={"steps": steps, "saves": saves}
        )
        row["elapsed_s"], row["others_cpu"] = elapsed, others
        row["probes"] = results
        _probe_row(ctx, row, results, key)


def training_memory(ctx: Context) -> None:
    """G12: peak RSS of a fresh process running 20 training steps at batch 64.

    The peak is VmHWM, not getrusage's maxrss, which on Linux a child inherits from its parent
    across exec (this process holds hundreds of MiB); the JSON keeps both in "probes"."""
    if not ctx.wants("memory.train"):
        return
    steps, runs = (2, 1) if ctx.quick else (20, 3)
    results, elapsed, others = _alternate(
        ctx, runs, lambda lib: ("train", lib, str(steps), "64", str(ctx.threads))
    )
    row = new_row(
        SECTION,
        "memory.train.b64",
        f"peak RSS, {steps} train steps b64",
        "MiB",
        peer="torch",
        checks=(goals.ratio("G12", 0.5),),
        params={"steps": steps, "runs": runs},
    )
    row["elapsed_s"], row["others_cpu"] = elapsed, others
    row["probes"] = results
    _probe_row(ctx, row, results, "peak_rss_bytes")
