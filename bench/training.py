"""Training: whole steps of the founding CNN, fastdl against PyTorch (same architecture, same
loss, Adam lr 1e-3, int64 labels), and inference (forward under no_grad).

A training step is zero_grad, forward, CrossEntropyLoss, backward, Adam step. fastdl on the
NumPy reference backend runs at batch 64 only, for a few rounds (it is slow), and not with --quick.
"""

from __future__ import annotations

import dataclasses

from . import goals
from .model import FORWARD_FLOP_PER_SAMPLE, TRAIN_FLOP_PER_SAMPLE, build
from .rows import Context, new_row
from .timing import local

SECTION = "training"

TRAIN_CHECKS = {
    1: (goals.ratio("G2", 0.25),),
    64: (goals.ratio("G1", 0.35),),
    256: (goals.ratio("G2", 0.4),),
}
INFER_CHECKS = {64: (goals.ratio("G3", 0.35),)}


def run(ctx: Context) -> None:
    batches = (1, 64) if ctx.quick else (1, 64, 256)
    for batch in batches:
        _row(ctx, "train", batch)
    for batch in batches:
        _row(ctx, "infer", batch)
    if not ctx.quick:
        _reference_row(ctx)


def _side(library: str, kind: str, batch: int):
    workload = build(library, batch)
    return workload.train_step if kind == "train" else workload.infer


def _row(ctx: Context, kind: str, batch: int) -> None:
    per_sample = TRAIN_FLOP_PER_SAMPLE if kind == "train" else FORWARD_FLOP_PER_SAMPLE
    what = "train step" if kind == "train" else "inference"
    checks = (TRAIN_CHECKS if kind == "train" else INFER_CHECKS).get(batch, ())
    row = new_row(
        SECTION,
        f"{kind}.b{batch}",
        f"CNN {what}, batch {batch}",
        "ms",
        peer="torch",
        work=float(per_sample * batch),
        work_kind="flop",
        checks=checks,
        params={"kind": kind, "batch": batch},
    )

    def torch():
        ctx.need_torch()
        return _side("torch", kind, batch)

    ctx.add(row, {"fastdl": lambda: _side("fastdl", kind, batch), "torch": torch})


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
