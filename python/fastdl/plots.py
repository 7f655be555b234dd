"""PNG plots for the demo: training curves and saliency maps (matplotlib, imported lazily).

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, so no global
backend is switched) and written atomically (temporary file, then rename).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import _atomic_write


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _write_png(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    _atomic_write(Path(path), buffer.getvalue())


def plot_curves(history: dict, path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, with the final test accuracy."""
    epochs = [r["epoch"] for r in history["epochs"]]
    fig = _figure(10, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        ax_loss.plot(epochs, [r[key] for r in history["epochs"]], marker="o", label=label)
    for key, label in (("train_acc", "train"), ("val_acc", "validation")):
        ax_acc.plot(epochs, [100 * r[key] for r in history["epochs"]], marker="o", label=label)
    if history.get("test_acc") is not None:
        ax_acc.axhline(
            100 * history["test_acc"],
            color="gray",
            linestyle="--",
            label=f"test {100 * history['test_acc']:.2f}%",
        )
    ax_loss.set(title="Cross-entropy loss", xlabel="epoch", ylabel="loss")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    data = history.get("config", {}).get("data", "")
    fig.suptitle(f"fastdl demo: founding CNN on {data}")
    _write_png(fig, path)


def plot_saliency(
    model: Any, x: np.ndarray, labels: np.ndarray, raw: np.ndarray, path: Path
) -> None:
    """Each test digit (top row) over its saliency map for the true class (bottom row), with
    the model's prediction."""
    import fastdl
    from .explain import saliency

    xs = fastdl.from_numpy(np.ascontiguousarray(x))
    with fastdl.no_grad():
        predicted = model.eval()(xs).numpy().argmax(1)
    maps = saliency(model, xs, target=fastdl.from_numpy(np.asarray(labels))).numpy()
    n = len(x)
    fig = _figure(1.6 * n, 3.6)
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        axes[0, i].imshow(raw[i, 0], cmap="gray_r", vmin=0, vmax=1)
        axes[0, i].set_title(f"label {labels[i]}\npred {predicted[i]}", fontsize=9)
        axes[1, i].imshow(maps[i], cmap="hot")
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1, 0].set_ylabel("saliency")
    fig.suptitle("Input-gradient saliency |d score / d pixel| for the true class")
    _write_png(fig, path)
