"""Interleaved A/B timing.

A comparison runs its sides (the first is fastdl, the rest its peers) in rounds, A B A B ...:
each side warms up, is calibrated to run enough calls per sample to last `min_sample_s`, then
takes one sample per round. The result is each side's median and the median of the per-round
ratios first-side / peer (so a slow minute of a shared machine hits both sides of a round alike).

Between samples the harness waits until our own processes stop using CPU (settle): idle
OpenMP and OpenBLAS threads spin for a while after a call and would otherwise slow whichever
side runs next. CpuMeter tells how much of the machine other processes took meanwhile.

A side is anything with `run(reps) -> seconds per call`; `local` wraps a Python callable, and
numpy_peer makes sides that time themselves in another process.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Side:
    """One contender: `run(reps)` calls the workload `reps` times, returns seconds per call.

    `rounds` caps the rounds it joins (slow sides such as the NumPy reference); None: all.
    """

    name: str
    run: Callable[[int], float]
    rounds: int | None = None
    fn: Callable[[], object] | None = None  # the workload itself, for sides made by local()


@dataclass
class Settings:
    rounds: int = 10
    min_sample_s: float = 0.02  # a sample runs enough calls to last at least this long
    max_reps: int = 200_000
    warmup_s: float = 0.1  # warm calls per side after the first (cold) one, at least one
    # Between sides, wait (at most this long) until our processes stop using CPU: after a call,
    # libgomp spins its idle threads for milliseconds and OpenBLAS for ~0.1 s, which would
    # steal cores from the next side. See settle().
    settle_max_s: float = 0.4
    settle_window_s: float = 0.02  # idle for this long counts as settled (CPU time ticks: 10 ms)


# Processes of ours besides this one (the NumPy workers), whose CPU time is not "others'".
helper_pids: set[int] = set()
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_jiffies() -> tuple[int, int]:
    # (busy, total) jiffies of the whole machine since boot, from /proc/stat's first line.
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _process_jiffies(pid: str) -> int:
    # utime + stime of every thread of process `pid` (fields 14 and 15 of /proc/PID/stat).
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class CpuMeter:
    """The share of the machine's CPU time that other processes used while we measured:
    0.0 means we had the machine to ourselves, 0.5 that others held one of two cores."""

    def __init__(self) -> None:
        self._start = self._read()

    def _read(self) -> tuple[int, int, int] | None:
        try:
            busy, total = _cpu_jiffies()
            ours = sum(_process_jiffies(str(p)) for p in ("self", *helper_pids))
            waited = os.times()  # children that ran to completion (the system probes)
            ours += round((waited.children_user + waited.children_system) * _CLOCK_TICKS)
            return busy, total, ours
        except (OSError, ValueError, IndexError):
            return None

    def others(self) -> float | None:
        end = self._read()
        if self._start is None or end is None or end[1] <= self._start[1]:
            return None
        busy, total, ours = (e - s for e, s in zip(end, self._start))
        return min(1.0, max(0.0, (busy - ours) / total))


def wait_for_quiet(max_s: float, threshold: float = 0.25, window_s: float = 1.0) -> dict:
    """Waits (at most max_s) for a window in which other processes use at most `threshold` of
    the machine's CPU, so that a measurement on a shared machine starts in a quiet moment.
    Nothing keeps it quiet afterwards: CpuMeter records what others took while we measured."""
    started = time.perf_counter()
    while True:
        meter = CpuMeter()
        time.sleep(window_s)
        others = meter.others()
        waited = time.perf_counter() - started
        quiet = others is not None and others <= threshold
        if quiet or waited >= max_s:
            return {"quiet": quiet, "others_cpu": others, "waited_s": waited}


def settle(max_s: float, window_s: float = 0.02) -> float:
    """Sleeps until this process and the helpers use no CPU for one window (their idle
    threads have stopped spinning), or max_s has passed. Returns the seconds waited."""
    start = time.perf_counter()
    while True:
        try:
            before = sum(_process_jiffies(str(p)) for p in ("self", *helper_pids))
            time.sleep(window_s)
            used = sum(_process_jiffies(str(p)) for p in ("self", *helper_pids)) - before
        except (OSError, ValueError, IndexError):
            time.sleep(window_s)
            used = 0
        waited = time.perf_counter() - start
        if used <= 0 or waited >= max_s:
            return waited


def local(name: str, fn: Callable[[], object], rounds: int | None = None) -> Side:
    """A side that calls `fn()` in this process, with the garbage collector off while timed."""

    def run(reps: int) -> float:
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            return (time.perf_counter() - start) / reps
        finally:
            if enabled:
                gc.enable()

    return Side(name, run, rounds, fn)


def call_times(fn: Callable[[], object], reps: int) -> list[float]:
    """The seconds each of `reps` calls of fn() took, one by one."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def error_text(exc: BaseException) -> str:
    """One short line naming the exception, for the table and the JSON."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _warm_up(side: Side, settings: Settings) -> tuple[float, float]:
    # Returns (cold call seconds, warm seconds per call).
    cold = side.run(1)
    warm = []
    start = time.perf_counter()
    while not warm or (time.perf_counter() - start < settings.warmup_s and len(warm) < 1000):
        warm.append(side.run(1))
    return cold, statistics.median(warm)


def summarize(first: str, samples: dict[str, list[float | None]]) -> tuple[dict, dict]:
    """Per side {median, min, samples}; per peer the median of per-round first/peer ratios.

    samples[name][r] is round r's value of that side, None where it did not run that round.
    """
    sides = {}
    for name, values in samples.items():
        taken = [v for v in values if v is not None]
        sides[name] = {
            "median": statistics.median(taken) if taken else None,
            "min": min(taken) if taken else None,
            "samples": taken,
        }
    ratios = {}
    for name, values in samples.items():
        if name == first:
            continue
        pairs = [
            a / b
            for a, b in zip(samples[first], values)
            if a is not None and b is not None and b > 0
        ]
        ratios[name] = statistics.median(pairs) if pairs else None
    return sides, ratios


def compare(sides: list[Side], settings: Settings) -> dict:
    """Time `sides` interleaved; sides[0] is the one every ratio is taken of.

    Returns {"sides": {name: {median, min, samples, reps, cold, error}}, "ratios": {peer: r}}
    in seconds per call. A side that raises is reported with its error and dropped; the others
    carry on.
    """
    errors: dict[str, str | None] = {s.name: None for s in sides}
    reps: dict[str, int] = {}
    cold: dict[str, float] = {}
    for side in sides:
        try:
            cold[side.name], per_call = _warm_up(side, settings)
        except Exception as exc:  # noqa: BLE001 (a failing kernel is a row error, not a crash)
            errors[side.name] = error_text(exc)
            continue
        wanted = math.ceil(settings.min_sample_s / max(per_call, 1e-9))
        reps[side.name] = max(1, min(settings.max_reps, wanted))
        settle(settings.settle_max_s, settings.settle_window_s)

    samples: dict[str, list[float | None]] = {s.name: [] for s in sides}
    for r in range(settings.rounds):
        for side in sides:
            value = None
            joins = side.rounds is None or r < side.rounds
            if errors[side.name] is None and joins:
                try:
                    value = side.run(reps[side.name])
                except Exception as exc:  # noqa: BLE001
                    errors[side.name] = error_text(exc)
                settle(settings.settle_max_s, settings.settle_window_s)
            samples[side.name].append(value)
        gc.collect()  # between rounds, never inside a sample

    summary, ratios = summarize(sides[0].name, samples)
    for name, entry in summary.items():
        entry.update(reps=reps.get(name), cold=cold.get(name), error=errors[name])
    return {"sides": summary, "ratios": ratios}
