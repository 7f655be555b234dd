"""PNG plots of the extra demos (matplotlib's object API on an Agg canvas, written atomically
by the helpers of `fastdl.plots`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plots import _figure, _write_png


def _epochs(history: dict, key: str) -> list:
    return [r[key] for r in history["epochs"]]


def plot_tabular_curves(history: dict, path: Path) -> None:
    """Cross-entropy, accuracy and body-mass RMSE per epoch, training and validation, with
    the test figures as dashed lines."""
    epochs = _epochs(history, "epoch")
    fig = _figure(14, 4)
    ax_ce, ax_acc, ax_rmse = fig.subplots(1, 3)
    for split, label in (("train", "train"), ("val", "validation")):
        ax_ce.plot(epochs, _epochs(history, f"{split}_ce"), label=label)
        ax_acc.plot(epochs, [100 * a for a in _epochs(history, f"{split}_acc")], label=label)
        ax_rmse.plot(epochs, _epochs(history, f"{split}_rmse_g"), label=label)
    ax_acc.axhline(100 * history["test_acc"], color="gray", linestyle="--",
                   label=f"test {100 * history['test_acc']:.2f}%")
    ax_rmse.axhline(history["test_rmse_g"], color="gray", linestyle="--",
                    label=f"test {history['test_rmse_g']:.0f} g")
    ax_rmse.axhline(history["test_rmse_g_mean_baseline"], color="red", linestyle=":",
                    label=f"mean predictor {history['test_rmse_g_mean_baseline']:.0f} g")
    ax_ce.set(title="Species: cross-entropy", xlabel="epoch", ylabel="loss")
    ax_acc.set(title="Species: accuracy", xlabel="epoch", ylabel="accuracy (%)")
    ax_rmse.set(title="Body mass: RMSE", xlabel="epoch", ylabel="RMSE (g)")
    for ax in (ax_ce, ax_acc, ax_rmse):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("fastdl demo tabular: one MLP, two heads, on Palmer penguins")
    _write_png(fig, path)


def plot_predictions(grams: np.ndarray, predicted: np.ndarray, labels: np.ndarray,
                     classes: list, path: Path) -> None:
    """Predicted against true body mass on the test rows, coloured by species."""
    fig = _figure(5.5, 5)
    ax = fig.subplots()
    for i, name in enumerate(classes):
        rows = labels == i
        ax.scatter(grams[rows], predicted[rows], s=14, alpha=0.8, label=name)
    lo, hi = float(min(grams.min(), predicted.min())), float(max(grams.max(), predicted.max()))
    ax.plot([lo, hi], [lo, hi], color="gray", linestyle="--", linewidth=1)
    ax.set(title="Body mass on the test penguins", xlabel="true (g)", ylabel="predicted (g)")
    ax.grid(alpha=0.3)
    ax.legend()
    _write_png(fig, path)


def plot_reconstructions(originals: np.ndarray, reconstructed: np.ndarray, path: Path) -> None:
    """Originals (top row) above their reconstructions (bottom row); images are (n, H, W)."""
    n = len(originals)
    fig = _figure(1.2 * n, 2.8)
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        axes[0, i].imshow(originals[i], cmap="gray_r", vmin=0, vmax=1)
        axes[1, i].imshow(reconstructed[i], cmap="gray_r", vmin=0, vmax=1)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("decoded")
    fig.suptitle("fastdl demo autoencoder: test digits and their reconstructions")
    _write_png(fig, path)


def plot_embedding(codes: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """The 2-D codes of the test digits, coloured by their label (never seen in training)."""
    fig = _figure(6.5, 5.5)
    ax = fig.subplots()
    points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5,
                        s=10, alpha=0.8)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit (not used in training)")
    ax.set(title="2-D code of the test digits", xlabel="code 1", ylabel="code 2")
    ax.grid(alpha=0.3)
    _write_png(fig, path)


def plot_autoencoder_curves(history: dict, path: Path) -> None:
    """Reconstruction MSE per epoch, training and validation, with the test figure and the
    2-component PCA reconstruction for comparison."""
    epochs = _epochs(history, "epoch")
    fig = _figure(6.5, 4)
    ax = fig.subplots()
    ax.plot(epochs, _epochs(history, "train_loss"), label="train")
    ax.plot(epochs, _epochs(history, "val_loss"), label="validation")
    ax.axhline(history["test_loss"], color="gray", linestyle="--",
               label=f"test {history['test_loss']:.4f}")
    ax.axhline(history["test_loss_pca"], color="red", linestyle=":",
               label=f"PCA, 2 components {history['test_loss_pca']:.4f}")
    ax.set(title="Reconstruction MSE per pixel", xlabel="epoch", ylabel="MSE")
    ax.grid(alpha=0.3)
    ax.legend()
    _write_png(fig, path)
