"""`fastdl demo autoencoder`: an MLP autoencoder with a 2-D code on the digits, without labels.

Data: scikit-learn's 1,797 digits at 28x28 in [0, 1] (`fastdl.datasets.load_digits`, as the
CNN demo uses), split at random by --seed (not by label): 20% test, then 10% of the rest for
validation. The labels are never shown to the model; they only colour the embedding plot.

Model: encoder 784-256-64-2 and decoder 2-64-256-784 (Linear and ReLU, a Sigmoid on the
pixels), trained with Adam on the MSE between each image and its reconstruction. Reported:
the test MSE per pixel beside two references, the training mean image and a 2-component PCA
fitted on the training images (the best linear code of the same size).

Files written into --out: model.safetensors (the weights), history.json, curves.png,
reconstructions.png (test digits above their reconstructions) and embedding.png (the 2-D
codes of the test digits, coloured by their label).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from ._common import (
    DemoError, RunConfig, check_loss, check_weights, logged, progress, start, write_json,
)

SIZE = 28
PIXELS = SIZE * SIZE


@dataclass
class AutoencoderConfig(RunConfig):
    out: str = "fastdl-demo-autoencoder"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    code: int = 2

    def check(self) -> None:
        super().check()
        if self.code < 1:
            raise DemoError(f"--code must be >= 1, got {self.code}")


def autoencoder(code: int = 2) -> Any:
    """encoder(x (N, 784)) -> (N, code); decoder(z) -> (N, 784) in (0, 1); forward does both."""
    import fastdl.nn as nn

    class Autoencoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(
                nn.Linear(PIXELS, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(),
                nn.Linear(64, code),
            )
            self.decoder = nn.Sequential(
                nn.Linear(code, 64), nn.ReLU(), nn.Linear(64, 256), nn.ReLU(),
                nn.Linear(256, PIXELS), nn.Sigmoid(),
            )

        def forward(self, x: Any) -> Any:
            return self.decoder(self.encoder(x))

    return Autoencoder()


def load_splits(cfg: AutoencoderConfig) -> dict:
    """{"train"|"val"|"test": (images float32 (N, 784) in [0, 1], labels int64)}."""
    from ..data import train_test_split
    from ..datasets import load_digits

    images, labels = load_digits(SIZE)
    images = images.reshape(len(images), PIXELS)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, random_state=cfg.seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_train, y_train, test_size=0.1, random_state=cfg.seed + 1
    )
    splits = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
    if cfg.limit:
        splits = {k: (x[: cfg.limit], y[: cfg.limit]) for k, (x, y) in splits.items()}
    return {k: (np.ascontiguousarray(x, dtype=np.float32), y) for k, (x, y) in splits.items()}


def pca_mse(train: np.ndarray, test: np.ndarray, k: int) -> float:
    """MSE per pixel of the test images rebuilt from their first k principal components,
    fitted on the training images: the best linear autoencoder with a k-number code."""
    mean = train.mean(0, dtype=np.float64)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    basis = vt[:k]
    rebuilt = (test - mean) @ basis.T @ basis + mean
    return float(np.mean((rebuilt - test) ** 2))


def evaluate(model: Any, x: np.ndarray, batch_size: int = 256) -> tuple:
    """(MSE per pixel, codes (N, code), reconstructions (N, 784)) in eval mode."""
    import fastdl

    model.eval()
    codes, rebuilt = [], []
    with fastdl.no_grad():
        for i in range(0, len(x), batch_size):
            z = model.encoder(fastdl.from_numpy(x[i : i + batch_size]))
            codes.append(z.cpu().numpy())
            rebuilt.append(model.decoder(z).cpu().numpy())
    model.train()
    codes, rebuilt = np.concatenate(codes), np.concatenate(rebuilt)
    return float(np.mean((rebuilt.astype(np.float64) - x) ** 2)), codes, rebuilt


def _train_epoch(model: Any, optimizer: Any, loader: Any, cfg: AutoencoderConfig,
                 epoch: int) -> dict:
    import fastdl.nn.functional as F

    loader.set_epoch(epoch)
    model.train()
    seen, loss_sum = 0, 0.0
    bar = progress(loader, cfg, epoch)
    for step, (xb,) in enumerate(bar):
        loss = F.mse_loss(model(xb), xb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = loss.item()
        check_loss(value, epoch, step)
        seen += len(xb)
        loss_sum += value * len(xb)
        if bar is not loader:
            bar.set_postfix(loss=f"{loss_sum / seen:.5f}", refresh=False)
    if bar is not loader:
        bar.close()
    check_weights(model, epoch)
    return {"epoch": epoch + 1, "train_loss": loss_sum / seen}


def run(cfg: AutoencoderConfig, log: Callable[[str], None] = print) -> dict:
    """Train, evaluate and write the demo's files; returns the history dict it saved."""
    import fastdl
    import fastdl.optim as optim

    from ..data import DataLoader, TensorDataset
    from ..summary import summary

    out = start(cfg, "autoencoder", needs=(("sklearn", "scikit-learn ships the digits"),))
    t_start = time.perf_counter()
    splits = load_splits(cfg)
    x = {k: v[0] for k, v in splits.items()}

    fastdl.manual_seed(cfg.seed)
    model = autoencoder(cfg.code)
    optimizer = optim.Adam(model.parameters(), lr=cfg.lr)
    log(str(summary(model, (1, PIXELS))))
    log(
        f"data: digits {SIZE}x{SIZE}, {len(x['train'])} train / {len(x['val'])} validation / "
        f"{len(x['test'])} test images, labels unused; {cfg.code}-number code; "
        f"{fastdl.get_num_threads()} threads"
    )
    loader = DataLoader(
        TensorDataset(x["train"]), batch_size=cfg.batch_size, shuffle=True, generator=cfg.seed
    )
    history: dict = {"config": asdict(cfg), "epochs": []}
    epoch_times = []
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        record = _train_epoch(model, optimizer, loader, cfg, epoch)
        record["val_loss"] = evaluate(model, x["val"])[0]
        record["seconds"] = time.perf_counter() - t0
        epoch_times.append(record["seconds"])
        history["epochs"].append(record)
        if logged(epoch, cfg.epochs):
            log(
                f"epoch {record['epoch']}/{cfg.epochs}: train mse {record['train_loss']:.5f} | "
                f"val mse {record['val_loss']:.5f} | {record['seconds']:.1f} s"
            )

    test_loss, codes, rebuilt = evaluate(model, x["test"])
    mean_image = x["train"].mean(0, dtype=np.float64)
    baseline = float(np.mean((x["test"] - mean_image) ** 2))
    pca = pca_mse(x["train"].astype(np.float64), x["test"].astype(np.float64), cfg.code)
    history.update({
        "test_loss": test_loss,
        "test_loss_mean_image": baseline,
        "test_loss_pca": pca,
        "test_samples": len(x["test"]),
        "seconds_per_epoch": float(np.mean(epoch_times)),
    })
    log(
        f"test reconstruction MSE per pixel: {test_loss:.5f} (the training mean image: "
        f"{baseline:.5f}; PCA with {cfg.code} components: {pca:.5f})"
    )
    from ._plots import plot_autoencoder_curves, plot_embedding, plot_reconstructions

    fastdl.save(model.state_dict(), out / "model.safetensors")
    plot_autoencoder_curves(history, out / "curves.png")
    shown = min(10, len(x["test"]))
    plot_reconstructions(
        x["test"][:shown].reshape(-1, SIZE, SIZE), rebuilt[:shown].reshape(-1, SIZE, SIZE),
        out / "reconstructions.png",
    )
    written = ["model.safetensors", "history.json", "curves.png", "reconstructions.png"]
    if codes.shape[1] == 2:
        plot_embedding(codes, splits["test"][1], out / "embedding.png")
        written.append("embedding.png")
    else:
        log(f"no embedding.png: the code has {codes.shape[1]} numbers, the scatter needs 2")
    history["wall_seconds"] = time.perf_counter() - t_start
    write_json(out / "history.json", history)
    log(f"wall time {history['wall_seconds']:.1f} s; wrote {', '.join(written)} to {out}")
    return history
