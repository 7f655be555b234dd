"""`fastdl demo tabular`: Palmer penguins, species and body mass from one MLP with two heads.

Data: the 344 penguins of the `palmerpenguins` package (a pandas DataFrame), with missing
values and categorical columns. Rows without the regression target (body mass) are dropped;
the rest are split, stratified by species and seeded: 20% test, then 10% of the rest for
validation. Fitted on the training split only: median imputation and standardisation of the
numeric columns, most-frequent imputation and one-hot encoding of the categorical ones, and
the standardisation of the body mass target.

Model: a shared trunk (Linear-ReLU-Dropout-Linear-ReLU) with a species head trained with
cross-entropy and a body-mass head trained with MSE on the standardised mass; the two losses
are summed. Reported: test accuracy, and test RMSE in grams beside the RMSE of always
predicting the training mean.

Files written into --out: model.safetensors (the weights), preprocessing.safetensors (the
fitted imputers, encoder and scalers), history.json, curves.png and predictions.png.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from ._common import (
    DemoError, RunConfig, check_loss, check_weights, logged, progress, start, write_json,
)

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "year"]
CATEGORICAL = ["island", "sex"]
TARGET_CLASS, TARGET_VALUE = "species", "body_mass_g"


# This demo's own options; RunConfig holds what the demos share (autoencoder.py's config is
# alike in shape only).
@dataclass
class TabularConfig(RunConfig):
    out: str = "fastdl-demo-tabular"
    epochs: int = 60
    batch_size: int = 32
    lr: float = 3e-3
    hidden: int = 64
    dropout: float = 0.1

    def check(self) -> None:
        super().check()
        if self.hidden < 1:
            raise DemoError(f"--hidden must be >= 1, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise DemoError(f"--dropout must be in [0, 1), got {self.dropout}")


def penguin_net(n_in: int, n_classes: int, hidden: int = 64, dropout: float = 0.1) -> Any:
    """The demo's MLP: a shared trunk, a species head (logits) and a body-mass head."""
    import fastdl.nn as nn

    class PenguinNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = nn.Sequential(
                nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(hidden, hidden), nn.ReLU(),
            )
            self.species = nn.Linear(hidden, n_classes)
            self.mass = nn.Linear(hidden, 1)

        def forward(self, x: Any) -> tuple:
            h = self.trunk(x)
            return self.species(h), self.mass(h).reshape(-1)

    return PenguinNet()


# ---------------------------------------------------------------- data


def load_frame() -> Any:
    """The penguins DataFrame, with rows lacking the body mass (the target) dropped."""
    import palmerpenguins

    frame = palmerpenguins.load_penguins()
    return frame[frame[TARGET_VALUE].notna()].reset_index(drop=True)


class Preprocess:
    """Imputers, one-hot encoder and scalers, fitted on the training rows only."""

    def __init__(self, train: Any) -> None:
        from ..data import OneHotEncoder, SimpleImputer, StandardScaler

        self.classes = sorted(train[TARGET_CLASS].unique().tolist())
        self.num_imputer = SimpleImputer(strategy="median").fit(train[NUMERIC])
        self.scaler = StandardScaler().fit(self.num_imputer.transform(train[NUMERIC]))
        self.cat_imputer = SimpleImputer(strategy="most_frequent").fit(train[CATEGORICAL])
        self.encoder = OneHotEncoder(handle_unknown="ignore").fit(
            self.cat_imputer.transform(train[CATEGORICAL])
        )
        self.mass = StandardScaler().fit(train[TARGET_VALUE].to_numpy(np.float64))

    def features(self, frame: Any) -> np.ndarray:
        numeric = self.scaler.transform(self.num_imputer.transform(frame[NUMERIC]))
        categorical = self.encoder.transform(self.cat_imputer.transform(frame[CATEGORICAL]))
        return np.ascontiguousarray(np.hstack([numeric, categorical]), dtype=np.float32)

    def feature_names(self) -> list:
        return NUMERIC + self.encoder.get_feature_names_out()

    def targets(self, frame: Any) -> tuple:
        """(species indices int64, standardised mass float32, mass in grams float64)."""
        index = {c: i for i, c in enumerate(self.classes)}
        labels = np.array([index[s] for s in frame[TARGET_CLASS]], np.int64)
        grams = frame[TARGET_VALUE].to_numpy(np.float64)
        return labels, self.mass.transform(grams).astype(np.float32), grams

    def state_dict(self) -> dict:
        return {
            "classes": self.classes,
            "numeric_columns": NUMERIC,
            "categorical_columns": CATEGORICAL,
            "num_imputer": self.num_imputer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "cat_imputer": self.cat_imputer.state_dict(),
            "encoder": self.encoder.state_dict(),
            "mass": self.mass.state_dict(),
        }


def load_splits(cfg: TabularConfig) -> tuple:
    """({"train"|"val"|"test": DataFrame}, number of rows dropped for lacking the target)."""
    import palmerpenguins

    from ..data import train_test_split

    dropped = len(palmerpenguins.load_penguins())
    frame = load_frame()
    dropped -= len(frame)
    train, test = train_test_split(
        frame, test_size=0.2, random_state=cfg.seed, stratify=frame[TARGET_CLASS].to_numpy()
    )
    train, val = train_test_split(
        train, test_size=0.1, random_state=cfg.seed + 1, stratify=train[TARGET_CLASS].to_numpy()
    )
    splits = {"train": train, "val": val, "test": test}
    if cfg.limit:
        splits = {k: v.iloc[: cfg.limit] for k, v in splits.items()}
    return splits, dropped


# ---------------------------------------------------------------- training


def evaluate(model: Any, x: np.ndarray, labels: np.ndarray, mass: np.ndarray,
             grams: np.ndarray, prep: Preprocess) -> dict:
    """Cross-entropy, accuracy, MSE on the standardised mass and RMSE in grams, in eval mode."""
    import fastdl
    import fastdl.nn.functional as F

    model.eval()
    with fastdl.no_grad():
        logits, pred = model(fastdl.from_numpy(x))
        ce = F.cross_entropy(logits, fastdl.from_numpy(labels)).item()
        mse = F.mse_loss(pred, fastdl.from_numpy(mass)).item()
    model.train()
    predicted = pred.cpu().numpy().astype(np.float64)
    grams_pred = prep.mass.inverse_transform(predicted)
    return {
        "ce": ce,
        "mse": mse,
        "acc": float((logits.cpu().numpy().argmax(1) == labels).mean()),
        "rmse_g": float(np.sqrt(np.mean((grams_pred - grams) ** 2))),
        "pred_g": grams_pred,
    }


def _train_epoch(model: Any, optimizer: Any, loader: Any, cfg: TabularConfig, epoch: int,
                 mass_std: float) -> dict:
    import fastdl.nn.functional as F

    loader.set_epoch(epoch)
    model.train()
    seen = correct = 0
    ce_sum = mse_sum = 0.0
    bar = progress(loader, cfg, epoch)
    for step, (xb, yb, mb) in enumerate(bar):
        logits, pred = model(xb)
        ce = F.cross_entropy(logits, yb)
        mse = F.mse_loss(pred, mb)
        loss = ce + mse
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        check_loss(loss.item(), epoch, step)
        n = len(yb)
        seen += n
        ce_sum += ce.item() * n
        mse_sum += mse.item() * n
        correct += int((logits.detach().cpu().numpy().argmax(1) == yb.cpu().numpy()).sum())
        if bar is not loader:
            bar.set_postfix(ce=f"{ce_sum / seen:.4f}", acc=f"{correct / seen:.2%}", refresh=False)
    if bar is not loader:
        bar.close()
    check_weights(model, epoch)
    return {
        "epoch": epoch + 1,
        "train_ce": ce_sum / seen,
        "train_mse": mse_sum / seen,
        "train_acc": correct / seen,
        "train_rmse_g": math.sqrt(mse_sum / seen) * mass_std,
    }


def run(cfg: TabularConfig, log: Callable[[str], None] = print) -> dict:
    """Train, evaluate and write the demo's files; returns the history dict it saved."""
    import fastdl
    import fastdl.optim as optim

    from ..data import DataLoader, TensorDataset
    from ..summary import summary

    out = start(cfg, "tabular", needs=(
        ("pandas", "the penguins DataFrame"), ("palmerpenguins", "the penguins data"),
    ))
    t_start = time.perf_counter()
    splits, dropped = load_splits(cfg)
    prep = Preprocess(splits["train"])
    x = {k: prep.features(v) for k, v in splits.items()}
    y, m, g = {}, {}, {}
    for k, v in splits.items():
        y[k], m[k], g[k] = prep.targets(v)
    mass_std = float(prep.mass.scale[0])

    fastdl.manual_seed(cfg.seed)
    model = penguin_net(x["train"].shape[1], len(prep.classes), cfg.hidden, cfg.dropout)
    optimizer = optim.Adam(model.parameters(), lr=cfg.lr)
    log(str(summary(model, (1, x["train"].shape[1]))))
    missing = {c: int(n) for c, n in splits["train"][NUMERIC + CATEGORICAL].isna().sum().items()
               if n}
    log(
        f"data: penguins, {len(y['train'])} train / {len(y['val'])} validation / "
        f"{len(y['test'])} test rows ({dropped} dropped for lacking {TARGET_VALUE}); "
        f"{x['train'].shape[1]} features from {len(NUMERIC)} numeric and "
        f"{len(CATEGORICAL)} categorical columns; missing in train, imputed: {missing or 'none'}"
    )
    loader = DataLoader(
        TensorDataset(x["train"], y["train"], m["train"]),
        batch_size=cfg.batch_size, shuffle=True, generator=cfg.seed,
    )
    history: dict = {"config": asdict(cfg), "features": prep.feature_names(),
                     "classes": prep.classes, "epochs": []}
    epoch_times = []
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        record = _train_epoch(model, optimizer, loader, cfg, epoch, mass_std)
        val = evaluate(model, x["val"], y["val"], m["val"], g["val"], prep)
        record.update({"val_ce": val["ce"], "val_mse": val["mse"], "val_acc": val["acc"],
                       "val_rmse_g": val["rmse_g"]})
        record["seconds"] = time.perf_counter() - t0
        epoch_times.append(record["seconds"])
        history["epochs"].append(record)
        if logged(epoch, cfg.epochs):
            log(
                f"epoch {record['epoch']}/{cfg.epochs}: train ce {record['train_ce']:.4f} "
                f"acc {record['train_acc']:.2%} rmse {record['train_rmse_g']:.0f} g | "
                f"val ce {record['val_ce']:.4f} acc {record['val_acc']:.2%} "
                f"rmse {record['val_rmse_g']:.0f} g | {record['seconds']:.2f} s"
            )

    test = evaluate(model, x["test"], y["test"], m["test"], g["test"], prep)
    baseline = float(np.sqrt(np.mean((g["test"] - g["train"].mean()) ** 2)))
    n_test = len(y["test"])
    history.update({
        "test_acc": test["acc"],
        "test_ce": test["ce"],
        "test_rmse_g": test["rmse_g"],
        "test_rmse_g_mean_baseline": baseline,
        "test_samples": n_test,
        "seconds_per_epoch": float(np.mean(epoch_times)),
    })
    log(
        f"test accuracy: {test['acc']:.2%} ({round(test['acc'] * n_test)}/{n_test}), "
        f"test body-mass RMSE {test['rmse_g']:.0f} g (predicting the training mean: "
        f"{baseline:.0f} g)"
    )
    from ._plots import plot_tabular_curves, plot_predictions

    fastdl.save(model.state_dict(), out / "model.safetensors")
    fastdl.save(prep.state_dict(), out / "preprocessing.safetensors")
    plot_tabular_curves(history, out / "curves.png")
    plot_predictions(g["test"], test["pred_g"], y["test"], prep.classes, out / "predictions.png")
    history["wall_seconds"] = time.perf_counter() - t_start
    write_json(out / "history.json", history)
    written = ["model.safetensors", "preprocessing.safetensors", "history.json", "curves.png",
               "predictions.png"]
    log(f"wall time {history['wall_seconds']:.1f} s; wrote {', '.join(written)} to {out}")
    return history
