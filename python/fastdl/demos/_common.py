"""What the extra demos share: their options, the output folder, progress bars and the
non-finite checks. The output folder, JSON writing and `DemoError` come from `fastdl.demo`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..demo import DemoError, _progress, _require, prepare_out, write_json

__all__ = ["DemoError", "RunConfig", "start", "progress", "check_loss", "check_weights",
           "logged", "write_json"]


@dataclass
class RunConfig:
    """Options every extra demo takes; each demo sets its own defaults."""

    out: str
    epochs: int
    batch_size: int
    lr: float
    seed: int = 0
    threads: Optional[int] = None
    limit: Optional[int] = None
    progress: bool = True

    def check(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                flag = name.replace("_", "-")
                raise DemoError(f"--{flag} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise DemoError(f"--lr must be a positive number, got {self.lr}")
        if self.threads is not None and self.threads < 1:
            raise DemoError(f"--threads must be >= 1, got {self.threads}")
        if self.limit is not None and self.limit < 10:
            raise DemoError(f"--limit must be >= 10, got {self.limit}")


def start(cfg: RunConfig, what: str, needs: tuple = ()) -> Path:
    """Check the options and the packages `needs` ((module, why) pairs), create --out and set
    the threads, before any data is read; returns the output folder."""
    import fastdl

    cfg.check()
    for module, why in (("safetensors", "weights"), ("matplotlib", "plots"), *needs):
        _require(module, f"fastdl demo {what} ({why})")
    out = Path(cfg.out)
    prepare_out(out)
    if cfg.threads:
        fastdl.set_num_threads(cfg.threads)
    return out


def progress(loader: Any, cfg: RunConfig, epoch: int) -> Any:
    """The loader wrapped in a progress bar (on a terminal, tqdm installed), else itself."""
    bar = _progress(loader, cfg, f"epoch {epoch + 1}/{cfg.epochs}")
    return bar if bar is not None else loader


def check_loss(value: float, epoch: int, step: int) -> None:
    if not math.isfinite(value):
        raise DemoError(
            f"the loss became {value} at epoch {epoch + 1}, step {step + 1}; try a lower --lr"
        )


def check_weights(model: Any, epoch: int) -> None:
    """A finite loss says nothing of the last step's update: check the weights once an epoch."""
    for name, p in model.named_parameters():
        if not np.isfinite(p.detach().cpu().numpy()).all():
            raise DemoError(
                f"the weights of {name} became non-finite by epoch {epoch + 1}; try a lower --lr"
            )


def logged(epoch: int, epochs: int) -> bool:
    """Whether epoch `epoch` (0-based) gets a line: all of them up to 20 epochs, else the
    first, the last and about ten between, so a long cheap run stays readable."""
    every = max(1, epochs // 10) if epochs > 20 else 1
    return epoch == 0 or epoch + 1 == epochs or (epoch + 1) % every == 0
