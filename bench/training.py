"""Training: whole steps of the founding CNN, fastdl against PyTorch (same architecture, same
loss, Adam lr 1e-3, int64 labels), and inference (forward under no_grad).

A training step is zero_grad, forward, CrossEntropyLoss, backward, Adam step. PyTorch runs in
a worker process of its own, with its default OpenMP settings (bench/torch_peer.py says why).
fastdl on the NumPy reference backend runs at batch 64 only, for a few rounds (it is slow), and
not with --quick.
The row train.b64.loaded runs the batch-64 step while a second process keeps one core busy (G13).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from . import goals
from .model import FORWARD_FLOP_PER_SAMPLE, TRAIN_FLOP_PER_SAMPLE, build
from .rows import Context, new_row
from .timing import local

SECTION = "training"

# G1-G3 are met by the eager steps or by the fastdl.compile'd ones (goals.summarize).
TRAIN_CHECKS = {
    1: (goals.ratio("G2", 0.35),),
    64: (goals.ratio("G1", 0.35),),
    256: (goals.ratio("G2", 0.4),),
}
INFER_CHECKS = {1: (goals.ratio("G3", 0.999),), 64: (goals.ratio("G3", 0.3),)}
COMPILED_CHECKS = {
    ("train", 1): TRAIN_CHECKS[1],
    ("train", 64): TRAIN_CHECKS[64],
    ("train", 256): TRAIN_CHECKS[256],
    ("infer", 1): INFER_CHECKS[1],
    ("infer", 64): INFER_CHECKS[64],
}


def run(ctx: Context) -> None:
    batches = (1, 64) if ctx.quick else (1, 64, 256)
    for batch in batches:
        _row(ctx, "train", batch)
    _loaded_row(ctx)
    for batch in batches:
        _row(ctx, "infer", batch)
    for kind, batch in COMPILED_CHECKS:
        if batch in batches:
            _row(ctx, kind, batch, compiled=True)
    if not ctx.quick:
        _reference_row(ctx)


def _side(library: str, kind: str, batch: int, compiled: bool = False):
    workload = build(library, batch, compiled=compiled)
    return workload.train_step if kind == "train" else workload.infer


def _row(ctx: Context, kind: str, batch: int, compiled: bool = False) -> None:
    """fastdl eager against PyTorch eager; compiled: fastdl.compile's plan against PyTorch
    eager (the goal's peer), with fastdl eager and torch.compile as further peers
    (torch.compile's cold time is its compile time)."""
    per_sample = TRAIN_FLOP_PER_SAMPLE if kind == "train" else FORWARD_FLOP_PER_SAMPLE
    what = "train step" if kind == "train" else "inference"
    if compiled:
        checks = COMPILED_CHECKS[(kind, batch)]
    else:
        checks = (TRAIN_CHECKS if kind == "train" else INFER_CHECKS).get(batch, ())
    row = new_row(
        SECTION,
        f"{kind}.b{batch}" + (".compiled" if compiled else ""),
        f"CNN {what}, batch {batch}" + (", fastdl.compile" if compiled else ""),
        "ms",
        peer="torch",
        work=float(per_sample * batch),
        work_kind="flop",
        checks=checks,
        params={"kind": kind, "batch": batch, "compiled": compiled},
    )

    def torch(compiled=False):
        return ctx.need_torch_peer().model_side("", kind, batch, compiled)

    sides = {"fastdl": lambda: _side("fastdl", kind, batch, compiled), "torch": torch}
    if compiled:
        sides["fastdl-eager"] = lambda: _side("fastdl", kind, batch)
        sides["torch.compile"] = lambda: torch(compiled=True)
    ctx.add(row, sides)


def _loaded_row(ctx: Context) -> None:
    """G13: the batch-64 step while another process spins on one core, fastdl and PyTorch under
    the same load, and fastdl's time over its quiet time (the train.b64 row of this run)."""
    row = new_row(
        SECTION,
        "train.b64.loaded",
        "CNN train step, batch 64, one core kept busy by another process",
        "ms",
        peer="torch",
        work=float(TRAIN_FLOP_PER_SAMPLE * 64),
        work_kind="flop",
        checks=(goals.ratio("G13", 1.0), goals.of_quiet("G13", 2.5)),
        params={"kind": "train", "batch": 64, "load": "one process: while True: pass"},
    )
    if not ctx.wants(row["id"]):
        return

    def torch():
        return ctx.need_torch_peer().model_side("", "train", 64)

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    quiet_wait, ctx.quiet_wait_s = ctx.quiet_wait_s, None  # the load is the point: no waiting
    try:
        measured = ctx.add(row, {"fastdl": lambda: _side("fastdl", "train", 64), "torch": torch})
    finally:
        ctx.quiet_wait_s = quiet_wait
        busy.kill()
        busy.wait()
    quiet = next((r for r in ctx.rows if r["id"] == "train.b64"), None)
    if measured is not None and quiet is not None:
        loaded_s = measured["sides"].get("fastdl", {}).get("median")
        quiet_s = quiet["sides"].get("fastdl", {}).get("median")
        if loaded_s and quiet_s:
            measured["quiet_ratio"] = loaded_s / quiet_s
    if measured is not None:
        measured["note"] = "others' CPU includes the busy process (about half the machine)"


def _reference_row(ctx: Context) -> None:
    """fastdl's cpu backend against the same model on the NumPy reference, batch 64."""
    row = new_row(
        SECTION,
        "train.b64.reference",
        "CNN train step, batch 64, vs reference backend",
        "ms",
        peer="reference",
        work=float(TRAIN_FLOP_PER_SAMPLE * 64),
        work_kind="flop",
        params={"kind": "train", "batch": 64},
    )

    def reference():
        import fastdl

        step = _side("fastdl", "train", 64)

        def on_reference():
            with fastdl.backend("reference"):
                return step()

        return local("", on_reference, rounds=3)

    # Few rounds, one call per sample: a reference step takes seconds.
    settings = dataclasses.replace(
        ctx.settings, rounds=min(ctx.settings.rounds, 3), min_sample_s=0.0, warmup_s=0.0
    )
    ctx.add(row, {"fastdl": lambda: _side("fastdl", "train", 64), "reference": reference}, settings)
