"""A benchmark row: one workload, fastdl against its peers, as a JSON-ready dict.

    {"id", "section", "what", "unit", "work", "work_kind", "peer", "params",
     "sides": {name: {"median", "min", "samples", "reps", "cold", "error", "value", "rate"}},
     "ratios": {peer: median of per-round fastdl/peer}, "checks", "verdicts", "error",
     "reference_error"}

`median`, `min` and `samples` are in the row's measure (seconds per call, or bytes); `value` is
the median in the display unit; `rate` is GFLOP/s or GB/s where the row has work. The first
side is always "fastdl". A row never raises: a failing setup or kernel becomes an error entry.
Where the row has a "reference" side, fastdl's output is compared with it once before timing
(`reference_error`, the largest difference over the largest reference value), so a fast but
wrong kernel shows as a mismatch instead of a win.
"""

from __future__ import annotations

import copy
import sys
import time
from typing import Callable, Union


from fastdl.testing import relative_error

from .goals import Check
from .timing import CpuMeter, Settings, Side, compare, error_text, local, wait_for_quiet

UNITS = ("GFLOP/s", "GB/s", "ms", "us", "MiB")

Factory = Callable[[], Union[Side, Callable[[], object]]]


def new_row(
    section: str,
    row_id: str,
    what: str,
    unit: str,
    *,
    peer: str | None,
    work: float | None = None,
    work_kind: str | None = None,
    checks: tuple[Check, ...] = (),
    params: dict | None = None,
) -> dict:
    assert unit in UNITS, unit
    return {
        "id": row_id,
        "section": section,
        "what": what,
        "unit": unit,
        "work": work,
        "work_kind": work_kind,
        "peer": peer,
        "params": params or {},
        "sides": {},
        "ratios": {},
        "checks": list(checks),
        "verdicts": [],
        "error": None,
        "reference_error": None,
    }


MISMATCH = 1e-3  # reference_error above this marks fastdl's output as wrong


def reference_error(fastdl_fn, reference_fn) -> float | None:
    """max |fastdl - reference| / max |reference| over the outputs; None for in-place kernels."""
    ours = fastdl_fn()
    if ours is None or (isinstance(ours, (tuple, list)) and all(x is None for x in ours)):
        return None  # an in-place kernel (Adam) or a whole step: nothing to compare
    theirs = reference_fn()
    if theirs is None:
        return None
    return relative_error(ours, theirs)


def display(row: dict, median: float | None) -> float | None:
    """The median (seconds or bytes) in the row's unit."""
    if median is None or median <= 0:
        return None
    unit = row["unit"]
    if unit in ("GFLOP/s", "GB/s"):
        return row["work"] / median / 1e9
    return {"ms": 1e3, "us": 1e6, "MiB": 1 / 2**20}[unit] * median


def fill(row: dict, result: dict) -> dict:
    """Adds compare()'s (or timing.summarize()'s) sides and ratios to the row."""
    for name, entry in result["sides"].items():
        entry["value"] = display(row, entry["median"])
        entry["rate"] = None
        if row["work"] and row["unit"] != "MiB" and entry["median"]:
            entry["rate"] = row["work"] / entry["median"] / 1e9
        row["sides"][name] = entry
    row["ratios"] = result["ratios"]
    fastdl = row["sides"].get("fastdl")
    if fastdl is not None and fastdl.get("error"):
        row["error"] = fastdl["error"]
    elif fastdl is not None and fastdl.get("median") is None:
        row["error"] = "fastdl produced no sample"
    return row


def timed_row(row: dict, factories: dict[str, Factory], settings: Settings) -> dict:
    """Builds each side (a failing build is that side's error), times them, fills the row.

    factories maps side name -> a function returning a Side or a zero-argument callable;
    the first entry must be "fastdl".
    """
    started, meter = time.perf_counter(), CpuMeter()
    sides, setup_errors = [], {}
    for name, factory in factories.items():
        try:
            made = factory()
            side = made if isinstance(made, Side) else local(name, made)
            side.name = name
            sides.append(side)
        except Exception as exc:  # noqa: BLE001
            setup_errors[name] = error_text(exc)
    by_name = {side.name: side for side in sides}
    if "fastdl" in by_name and "reference" in by_name and by_name["reference"].fn is not None:
        try:
            row["reference_error"] = reference_error(by_name["fastdl"].fn, by_name["reference"].fn)
        except Exception as exc:  # noqa: BLE001 (the timing below reports the failing side)
            row["reference_error_text"] = error_text(exc)
    if sides:
        fill(row, compare(sides, settings))
    if "fastdl" in setup_errors:
        # The peers' figures still stand; no ratio without fastdl.
        row["error"], row["ratios"] = setup_errors["fastdl"], {}
    for name, err in setup_errors.items():
        row["sides"][name] = {
            "median": None,
            "samples": [],
            "error": err,
            "value": None,
            "rate": None,
        }
    row["elapsed_s"] = time.perf_counter() - started
    row["others_cpu"] = meter.others()
    progress(row)
    return row


def progress(row: dict) -> None:
    """One line per finished row on stderr, so a long run shows where it is."""
    parts = []
    for name, side in row["sides"].items():
        if side.get("error"):
            parts.append(f"{name} ERROR")
        elif side.get("value") is not None:
            parts.append(f"{name} {side['value']:.4g}")
    status = f"ERROR {row['error']}" if row["error"] else ", ".join(parts)
    if (row.get("reference_error") or 0) > MISMATCH:
        status += f", MISMATCH vs reference ({row['reference_error']:.2g})"
    others = row.get("others_cpu")
    load = "" if others is None else f", others' CPU {others:.0%}"
    print(
        f"  [{row['section']}] {row['what']} ({row['unit']}): {status} "
        f"({row.get('elapsed_s', 0):.1f} s{load})",
        file=sys.stderr,
        flush=True,
    )


QUIET = 0.25  # others' CPU share up to which a machine counts as quiet
RETRIES = 2  # with --wait-quiet: extra attempts at a row that others disturbed


class Context:
    """What every section needs: timing settings, the peers, and the row filter.

    numpy is the NumPy worker with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset (the fair GEMM
    peer), numpy_default the one with the default environment; torch_peer the PyTorch worker
    that the training rows time (bench/torch_peer.py); any may be None.
    """

    def __init__(
        self,
        settings: Settings,
        quick: bool,
        threads: int,
        torch=None,
        numpy=None,
        numpy_default=None,
        match: str | None = None,
        torch_peer=None,
    ) -> None:
        self.settings, self.quick, self.threads = settings, quick, threads
        self.torch, self.numpy, self.numpy_default = torch, numpy, numpy_default
        self.torch_peer = torch_peer
        self.match = match
        self.quiet_wait_s: float | None = None  # --wait-quiet: the longest wait before a row
        self.rows: list[dict] = []
        # The measured roofs, filled by system.measure_roofs before any section runs.
        self.peak_gflops: float | None = None
        self.copy_gbps: float | None = None
        self.baseline_rss = None  # RSS of a bare interpreter, set by system.imports

    def need_torch(self):
        if self.torch is None:
            raise RuntimeError("torch is not installed")
        return self.torch

    def need_torch_peer(self):
        self.need_torch()
        if self.torch_peer is None:
            raise RuntimeError("the PyTorch worker did not start (see meta.torch_worker)")
        return self.torch_peer

    def wants(self, row_id: str) -> bool:
        """Whether --match (comma-separated parts of row ids) lets this row run."""
        return self.match is None or any(part in row_id for part in self.match.split(","))

    def add(
        self, row: dict, factories: dict[str, Factory], settings: Settings | None = None
    ) -> dict | None:
        """Times and records the row, unless the --match filter leaves it out.

        With --wait-quiet, a row that other processes disturbed (they took more than a quarter
        of the CPU while it ran) is measured again, up to RETRIES times, and the least
        disturbed attempt is kept; the others' CPU of every attempt stays in the JSON.
        """
        if not self.wants(row["id"]):
            return None
        attempts = []
        for _ in range(1 + (RETRIES if self.quiet_wait_s else 0)):
            if attempts:
                print("  (disturbed by other processes: measuring again)", file=sys.stderr)
            attempt = copy.deepcopy(row)
            self.wait_for_quiet(attempt)
            attempts.append(timed_row(attempt, factories, settings or self.settings))
            if (attempt["others_cpu"] or 0.0) <= QUIET:
                break
        best = min(attempts, key=lambda a: a["others_cpu"] or 0.0)
        best["attempts_others_cpu"] = [a["others_cpu"] for a in attempts]
        self.rows.append(best)
        return best

    def wait_for_quiet(self, row: dict) -> None:
        """With --wait-quiet, waits for other processes to leave the CPU before the row runs."""
        if self.quiet_wait_s:
            row["quiet_wait"] = wait_for_quiet(self.quiet_wait_s, threshold=QUIET)
            if not row["quiet_wait"]["quiet"]:
                others = row["quiet_wait"]["others_cpu"]
                print(
                    f"  (no quiet moment in {self.quiet_wait_s:.0f} s: others' CPU {others:.0%})",
                    file=sys.stderr,
                    flush=True,
                )

    def record(self, row: dict) -> dict:
        """Records a row measured by other means (the system section's subprocesses)."""
        row.setdefault("elapsed_s", 0.0)
        progress(row)
        self.rows.append(row)
        return row
