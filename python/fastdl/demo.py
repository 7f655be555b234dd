"""`fastdl demo`: train the founding CNN on real digits and write weights, history and plots.

Data: scikit-learn's 1,797 digits resampled to 28x28 (default; stratified 80/20 train/test,
then 10% of train for validation), or MNIST / Fashion-MNIST from local IDX files. Pixels are
normalised with a Normalize fitted on the training images only. Everything random (weights,
splits, batch order) follows --seed, so a run is reproducible, and a run resumed from its
checkpoint continues bit for bit as if never interrupted.

Files written into --out: model.safetensors (the weights, PyTorch's key names),
checkpoint.safetensors (model, optimizer, normaliser, history: what --resume reads),
history.json, curves.png, and saliency.png with --saliency.

Under `mpiexec -n N` (or srun) the demo trains data-parallel: each rank takes its shard of every
global batch (DistributedSampler, --batch-size / N images) and DistributedDataParallel averages
the gradients, so the global batch and the updates are those of one process; rank 0 alone
prints, evaluates and writes the files.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from . import _backend
from .checkpoint import CheckpointError, _atomic_write
from .checkpoint import load as load_checkpoint
from .checkpoint import save as save_checkpoint

CHECKPOINT_KIND = "fastdl-demo-cnn"
VANISH, EXPLODE = 1e-6, 1e3  # per-layer gradient norms flagged by --grad-norms


class DemoError(Exception):
    """Bad input to the demo (data, checkpoint, output folder): a one-line message."""


@dataclass
class DemoConfig:
    data: str = "digits"
    root: Optional[str] = None
    out: str = "fastdl-demo"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    threads: Optional[int] = None
    backend: str = "cpu"
    device: str = "cpu"
    resume: Optional[str] = None
    weight_decay: float = 0.0
    l1: float = 0.0
    patience: Optional[int] = None
    clip_grad: Optional[float] = None
    grad_norms: bool = False
    saliency: bool = False
    limit: Optional[int] = None
    progress: bool = True

    def check(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size}
        for name, value in positive.items():
            if value < 1:
                raise DemoError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise DemoError(f"--lr must be a positive number, got {self.lr}")
        for name in ("weight_decay", "l1"):
            if getattr(self, name) < 0:
                raise DemoError(
                    f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}"
                )
        if self.patience is not None and self.patience < 1:
            raise DemoError(f"--patience must be >= 1, got {self.patience}")
        if self.clip_grad is not None and self.clip_grad <= 0:
            raise DemoError(f"--clip-grad must be > 0, got {self.clip_grad}")
        if self.threads is not None and self.threads < 1:
            raise DemoError(f"--threads must be >= 1, got {self.threads}")
        if self.limit is not None and self.limit < 10:
            raise DemoError(f"--limit must be >= 10, got {self.limit}")
        self._check_device()
        if self.data in ("mnist", "fashion-mnist") and not self.root:
            raise DemoError(
                f"--data {self.data} needs --root DIR, the folder holding the IDX files"
            )

    def _check_device(self) -> None:
        """--device names a device fastdl has here (for cuda: one that answers)."""
        import fastdl

        try:
            kind = fastdl.device(self.device).type
        except (TypeError, ValueError, RuntimeError) as e:
            raise DemoError(f"--device {self.device!r}: {e}") from None
        if kind == "cuda":
            from . import cuda

            why = cuda.unavailable_reason()
            if why is not None:
                raise DemoError(f"--device {self.device}: CUDA is not available here: {why}")


# ---------------------------------------------------------------- data


def _require(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise DemoError(f"{what} needs the '{module}' package: pip install 'fastdl[demo]'")


def load_splits(cfg: DemoConfig) -> dict:
    """{"train"|"val"|"test": (images float32 (N,1,28,28) in [0,1], labels int64)}."""
    from .data import train_test_split

    if cfg.data == "digits":
        _require("sklearn", "--data digits (scikit-learn ships the digits)")
        from .datasets import load_digits

        images, labels = load_digits(28)
        x_train, x_test, y_train, y_test = train_test_split(
            images, labels, test_size=0.2, random_state=cfg.seed, stratify=labels
        )
    else:
        from .datasets import MNIST, FashionMNIST

        cls = MNIST if cfg.data == "mnist" else FashionMNIST
        train, test = cls(cfg.root, train=True), cls(cfg.root, train=False)
        x_train, y_train = train.data[:, None].astype(np.float32) / 255, train.targets
        x_test, y_test = test.data[:, None].astype(np.float32) / 255, test.targets
    x_train, x_val, y_train, y_val = train_test_split(
        x_train, y_train, test_size=0.1, random_state=cfg.seed + 1, stratify=y_train
    )
    splits = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
    if cfg.limit:
        splits = {k: (x[: cfg.limit], y[: cfg.limit]) for k, (x, y) in splits.items()}
    return splits


# ---------------------------------------------------------------- output folder


def prepare_out(out: Path) -> None:
    """Create --out and prove it is writable before any training time is spent."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".fastdl-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise DemoError(f"cannot write to --out {str(out)!r}: {e.strerror or e}") from None


def write_json(path: Path, obj: Any) -> None:
    _atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


# ---------------------------------------------------------------- training


def _evaluate(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int, device: str) -> tuple:
    """(mean loss, accuracy) over x, y in eval mode without gradients, on `device`."""
    import fastdl
    import fastdl.nn.functional as F

    model.eval()
    total_loss, correct = 0.0, 0
    with fastdl.no_grad():
        for start in range(0, len(x), batch_size):
            xb = fastdl.from_numpy(np.ascontiguousarray(x[start : start + batch_size])).to(device)
            yb = fastdl.from_numpy(y[start : start + batch_size]).to(device)
            out = model(xb)
            total_loss += F.cross_entropy(out, yb, reduction="sum").item()
            correct += int((out.cpu().numpy().argmax(1) == yb.cpu().numpy()).sum())
    model.train()
    return total_loss / max(len(x), 1), correct / max(len(x), 1)


def _weights(model: Any) -> list:
    return [p for name, p in model.named_parameters() if name.endswith("weight")]


def _progress(iterable: Any, cfg: DemoConfig, desc: str) -> Any:
    if not cfg.progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    # disable=None: bars on a terminal only, not in logs and pipes
    return tqdm(
        iterable,
        desc=desc,
        unit="batch",
        leave=True,
        file=sys.stderr,
        dynamic_ncols=True,
        disable=None,
    )


class _GradStats:
    """Per-parameter gradient norms over one epoch: mean and max, and vanish/explode flags."""

    def __init__(self, model: Any) -> None:
        self.names = [name for name, _ in model.named_parameters()]
        self.sums = np.zeros(len(self.names))
        self.maxes = np.zeros(len(self.names))
        self.steps = 0

    def add(self, model: Any) -> None:
        for i, (_, p) in enumerate(model.named_parameters()):
            g = 0.0 if p.grad is None else float(np.linalg.norm(p.grad.cpu().numpy().astype(np.float64)))
            self.sums[i] += g
            self.maxes[i] = max(self.maxes[i], g) if math.isfinite(g) else math.inf
        self.steps += 1

    def report(self) -> tuple:
        means = self.sums / max(self.steps, 1)
        rows = {
            n: {"mean": float(m), "max": float(x)} for n, m, x in zip(self.names, means, self.maxes)
        }
        warnings = []
        for name, m in zip(self.names, means):
            if not math.isfinite(m) or m > EXPLODE:
                warnings.append(
                    f"gradient of {name} explodes (mean norm {m:.3g} > {EXPLODE:g}); "
                    "try --clip-grad or a lower --lr"
                )
            elif m < VANISH:
                warnings.append(f"gradient of {name} vanishes (mean norm {m:.3g} < {VANISH:g})")
        return rows, warnings


def _train_epoch(
    model: Any, optimizer: Any, criterion: Any, loader: Any, cfg: DemoConfig, epoch: int
) -> dict:
    """One pass over the training batches; returns the epoch's record (loss, accuracy and,
    with --grad-norms, per-layer gradient norms)."""
    import fastdl.nn as nn

    loader.set_epoch(epoch)  # the batch order of epoch `epoch`, resumed or not
    if hasattr(loader.sampler, "num_replicas"):
        loader.sampler.set_epoch(epoch)  # a DistributedSampler: this epoch's shard
    grads = _GradStats(getattr(model, "module", model)) if cfg.grad_norms else None
    model.train()
    seen = correct = 0
    loss_sum = 0.0
    bar = _progress(loader, cfg, f"epoch {epoch + 1}/{cfg.epochs}")
    for step, (xb, yb) in enumerate(bar if bar is not None else loader):
        xb, yb = xb.to(cfg.device), yb.to(cfg.device)  # the loader's batches are on the CPU
        scores = model(xb)
        loss = criterion(scores, yb)
        objective = loss
        if cfg.l1:
            objective = loss + cfg.l1 * sum(w.abs().sum() for w in _weights(model))
        optimizer.zero_grad()
        objective.backward()
        if grads is not None:
            grads.add(getattr(model, "module", model))
        if cfg.clip_grad:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            raise DemoError(
                f"the loss became {value} at epoch {epoch + 1}, step {step + 1}; "
                "try a lower --lr or --clip-grad"
            )
        seen += len(yb)
        loss_sum += value * len(yb)
        correct += int((scores.detach().cpu().numpy().argmax(1) == yb.cpu().numpy()).sum())
        if bar is not None:
            bar.set_postfix(
                loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.2%}", refresh=False
            )
    if bar is not None:
        bar.close()
    # A finite loss says nothing of the last step's update: check the weights once per epoch.
    for name, p in model.named_parameters():
        if not np.isfinite(p.detach().cpu().numpy()).all():
            raise DemoError(
                f"the weights of {name} became non-finite by epoch {epoch + 1}, step {step + 1}; "
                "try a lower --lr or --clip-grad"
            )
    if getattr(model, "process_group", None) is not None:  # the whole job's figures
        import fastdl
        import fastdl.distributed as dist

        totals = fastdl.tensor([loss_sum, correct, seen], dtype=fastdl.float64)
        dist.all_reduce(totals)
        loss_sum, correct, seen = totals.tolist()
    record = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
              "samples": int(seen)}
    if grads is not None:
        record["grad_norms"], record["grad_warnings"] = grads.report()
    return record


def _log_epoch(record: dict, cfg: DemoConfig, log: Callable[[str], None]) -> None:
    log(
        f"epoch {record['epoch']}/{cfg.epochs}: train loss {record['train_loss']:.4f} "
        f"acc {record['train_acc']:.2%} | val loss {record['val_loss']:.4f} "
        f"acc {record['val_acc']:.2%} | {record['seconds']:.1f} s"
    )
    if "grad_norms" in record:
        norms = ", ".join(f"{k} {v['mean']:.3g}" for k, v in record["grad_norms"].items())
        log(f"  gradient norms (mean over the epoch's steps): {norms}")
        for warning in record["grad_warnings"]:
            log(f"  warning: {warning}")


def _resume(cfg: DemoConfig, model: Any, optimizer: Any, normalize: Any) -> dict:
    """Load --resume into model/optimizer/normalize; return the saved progress."""
    try:
        ck = load_checkpoint(cfg.resume)
    except (OSError, CheckpointError) as e:
        raise DemoError(f"--resume: {e}") from None
    if not isinstance(ck, dict) or ck.get("kind") != CHECKPOINT_KIND:
        raise DemoError(
            f"--resume {cfg.resume!r} is not a `fastdl demo` checkpoint (use the "
            "checkpoint.safetensors that the demo writes into --out)"
        )
    try:
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        normalize.load_state_dict(ck["normalize"])
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        detail = " ".join(str(e).split())
        raise DemoError(
            f"--resume {cfg.resume!r} does not fit the founding CNN: {detail}"
        ) from None
    try:  # the training progress, checked here rather than failing later with a KeyError
        progress = {"epoch": int(ck["epoch"]), "history": list(ck["history"]),
                    "best": dict(ck["best"])}
        if progress["epoch"] < 0:
            raise ValueError(f"epoch {progress['epoch']} is negative")
        for key in ("val_loss", "epoch", "bad_epochs", "state"):
            progress["best"][key]
    except (KeyError, TypeError, ValueError) as e:
        raise DemoError(
            f"--resume {cfg.resume!r} holds no valid training progress ({type(e).__name__}: "
            f"{e}); use the checkpoint.safetensors that the demo writes into --out"
        ) from None
    return {**ck, **progress}


def _end_epoch(cfg, model, optimizer, normalize, x, y, record, history, best, epoch, t0, out,
               log) -> bool:
    """Rank 0's end of an epoch: validate, log, track the best weights (`best`, in place),
    write the checkpoint; returns whether early stopping ends training here."""
    record["val_loss"], record["val_acc"] = _evaluate(model, x["val"], y["val"], 256, cfg.device)
    record["seconds"] = time.perf_counter() - t0
    history["epochs"].append(record)
    _log_epoch(record, cfg, log)
    if record["val_loss"] < best["val_loss"]:
        state = {k: v.cpu().numpy().copy() for k, v in model.state_dict().items()}
        best.update(
            {"val_loss": record["val_loss"], "epoch": epoch + 1, "bad_epochs": 0, "state": state}
        )
    else:
        best["bad_epochs"] += 1
    checkpoint = {
        "kind": CHECKPOINT_KIND,
        "epoch": epoch + 1,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "normalize": normalize.state_dict(),
        "history": history["epochs"],
        "best": best,
        "config": asdict(cfg),
    }
    save_checkpoint(checkpoint, out / "checkpoint.safetensors")
    if cfg.patience and best["bad_epochs"] >= cfg.patience:
        log(
            f"early stopping: validation loss has not improved for {cfg.patience} epochs "
            f"(best {best['val_loss']:.4f} at epoch {best['epoch']})"
        )
        return True
    return False


def _join_job(cfg: DemoConfig) -> tuple:
    """(rank, world size). Under an MPI launcher with more than one process, join the job
    (fastdl.distributed) and, unless --threads says otherwise, give each rank its share of the
    cores of its machine."""
    import fastdl
    from . import distributed as dist

    world = dist.launched_world_size()
    if world == 1:
        return 0, 1
    if not dist.is_available():
        raise DemoError(f"launched as {world} processes, but {dist._unavailable_reason()}")
    if cfg.batch_size % world:
        raise DemoError(
            f"--batch-size {cfg.batch_size} must be a multiple of the {world} ranks (each rank "
            "takes an equal share of every batch)"
        )
    if not dist.is_initialized():
        dist.init_process_group("mpi")
    if cfg.threads is None:
        here = dist.group.WORLD.comm.Split_type(dist._mpi().COMM_TYPE_SHARED)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        fastdl.set_num_threads(max(1, (cores or 1) // here.Get_size()))
        here.Free()
    return dist.get_rank(), dist.get_world_size()


def _rank0_says(flag: bool) -> bool:
    """Rank 0's `flag` on every rank (its early-stopping decision)."""
    import fastdl
    import fastdl.distributed as dist

    t = fastdl.tensor([int(flag)])
    dist.broadcast(t, 0)
    return bool(t.item())


def run(cfg: DemoConfig, log: Callable[[str], None] = print) -> dict:
    """Train, evaluate and write the demo's files; returns the history dict it saved (on
    every rank but 0 of a distributed run, only the training records)."""
    import dataclasses

    import fastdl
    import fastdl.nn as nn
    import fastdl.optim as optim
    from .data import DataLoader, DistributedSampler, Normalize, TensorDataset
    from .models import CNN
    from .summary import summary

    cfg.check()
    rank, world = _join_job(cfg)
    if world > 1 and fastdl.device(cfg.device).type != "cpu":
        raise DemoError(
            f"--device {cfg.device} with {world} ranks: data-parallel training runs on the CPU "
            "only (fastdl.distributed reduces NumPy arrays)"
        )
    main = rank == 0
    if not main:  # rank 0 alone speaks
        log, cfg = (lambda line: None), dataclasses.replace(cfg, progress=False)
    _require("safetensors", "fastdl demo (checkpoints)")
    _require("matplotlib", "fastdl demo (plots)")
    out = Path(cfg.out)
    if main:
        prepare_out(out)
    if cfg.threads:
        fastdl.set_num_threads(cfg.threads)
    t_start = time.perf_counter()

    splits = load_splits(cfg)
    normalize = Normalize().fit(splits["train"][0])
    fastdl.manual_seed(cfg.seed)
    model = CNN().to(cfg.device)  # initialised on the CPU: the same weights on every device
    optimizer = optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    criterion = nn.CrossEntropyLoss()

    history: dict = {"config": asdict(cfg), "epochs": []}
    start_epoch, best = 0, {"val_loss": math.inf, "epoch": 0, "bad_epochs": 0, "state": None}
    if cfg.resume:  # every rank reads the checkpoint rank 0 wrote
        ck = _resume(cfg, model, optimizer, normalize)
        start_epoch, history["epochs"] = int(ck["epoch"]), list(ck["history"])
        best = dict(ck["best"])
        log(f"resumed from {cfg.resume} after epoch {start_epoch}")
        if start_epoch >= cfg.epochs:
            log(
                f"nothing left to train: the checkpoint is at epoch {start_epoch}, "
                f"--epochs is {cfg.epochs}"
            )
    x = {k: normalize.transform(v[0]).astype(np.float32) for k, v in splits.items()}
    y = {k: v[1] for k, v in splits.items()}

    if main:
        log(str(summary(model, (1, 1, 28, 28))))
    ranks = f"; {world} ranks, {cfg.batch_size // world} images each per batch" if world > 1 else ""
    log(
        f"data: {cfg.data}, {len(y['train'])} train / {len(y['val'])} validation / "
        f"{len(y['test'])} test images; device {cfg.device}, backend {cfg.backend}, "
        f"{fastdl.get_num_threads()} "
        f"threads{ranks}"
    )
    train_set = TensorDataset(x["train"], y["train"])
    train_model = model
    if world > 1:
        from .nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model)  # after --resume: rank 0's weights
        sampler = DistributedSampler(train_set, world, rank, shuffle=True, seed=cfg.seed)
        loader = DataLoader(train_set, batch_size=cfg.batch_size // world, sampler=sampler,
                            prefetch=2)
    else:
        loader = DataLoader(
            train_set, batch_size=cfg.batch_size, shuffle=True, generator=cfg.seed, prefetch=2
        )
    epoch_times, train_seconds, trained = [], 0.0, 0
    stopped_early = False
    with _backend.backend(cfg.backend):
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            record = _train_epoch(train_model, optimizer, criterion, loader, cfg, epoch)
            train_seconds += time.perf_counter() - t0
            trained += record["samples"]
            stop = False
            if main:
                stop = _end_epoch(cfg, model, optimizer, normalize, x, y, record, history, best,
                                  epoch, t0, out, log)
                epoch_times.append(record["seconds"])
            if world > 1:
                stop = _rank0_says(stop)
            if stop:
                stopped_early = True
                break
        if not main:
            from . import distributed as dist

            dist.destroy_process_group()
            return history
        if cfg.patience and best["state"] is not None:
            model.load_state_dict(best["state"])
            log(f"restored the weights of epoch {best['epoch']} (lowest validation loss)")
        test_loss, test_acc = _evaluate(model, x["test"], y["test"], 256, cfg.device)

    n_test = len(y["test"])
    history.update(
        {
            "test_loss": test_loss,
            "test_acc": test_acc,
            "test_samples": n_test,
            "stopped_early": stopped_early,
            "seconds_per_epoch": float(np.mean(epoch_times)) if epoch_times else None,
            "ranks": world,
            "samples_per_second": trained / train_seconds if train_seconds else None,
            "normalize": {"mean": normalize.mean.tolist(), "std": normalize.std.tolist()},
        }
    )
    log(
        f"test accuracy: {test_acc:.2%} ({round(test_acc * n_test)}/{n_test}), "
        f"test loss {test_loss:.4f}"
    )
    from .plots import plot_curves, plot_saliency

    model.cpu()  # the saliency maps and the saved weights are made on the CPU
    save_checkpoint(model.state_dict(), out / "model.safetensors")
    plot_curves(history, out / "curves.png")
    written = ["model.safetensors", "checkpoint.safetensors", "history.json", "curves.png"]
    if cfg.saliency:
        plot_saliency(
            model, x["test"][:8], y["test"][:8], splits["test"][0][:8], out / "saliency.png"
        )
        written.append("saliency.png")
    history["wall_seconds"] = time.perf_counter() - t_start
    write_json(out / "history.json", history)
    per_epoch = f", {history['seconds_per_epoch']:.1f} s per epoch" if epoch_times else ""
    if history["samples_per_second"]:
        job = f" on {world} ranks" if world > 1 else ""
        per_epoch += f", training {history['samples_per_second']:.0f} samples/s{job}"
    log(
        f"wall time {history['wall_seconds']:.1f} s{per_epoch}; wrote {', '.join(written)} to {out}"
    )
    if world > 1:
        from . import distributed as dist

        dist.destroy_process_group()
    return history
