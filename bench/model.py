"""The founding CNN, written once for any library with PyTorch's nn API, and its steps.

conv1 1->32 3x3 pad 1, ReLU, maxpool 2; conv2 32->64 3x3 pad 1, ReLU, maxpool 2; flatten;
fc1 3136->128, ReLU; fc2 128->10. 421,642 parameters. Input (batch, 1, 28, 28), int64 labels.

Imports nothing at module level, so a fresh process measuring one library imports only it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

PARAMETERS = 421_642

# FLOPs per sample (2 per multiply-add). conv1 needs no input gradient.
_CONV1 = 2 * 32 * 1 * 9 * 28 * 28
_CONV2 = 2 * 64 * 32 * 9 * 14 * 14
_FC = 2 * (3136 * 128 + 128 * 10)
FORWARD_FLOP_PER_SAMPLE = _CONV1 + _CONV2 + _FC
TRAIN_FLOP_PER_SAMPLE = 2 * _CONV1 + 3 * _CONV2 + 3 * _FC


def make_cnn(nn):
    """The CNN built from `nn` (fastdl.nn or torch.nn)."""

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, kernel_size=3, stride=1, padding=1)
            self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=1, padding=1)
            self.fc1 = nn.Linear(64 * 7 * 7, 128)
            self.fc2 = nn.Linear(128, 10)
            self.relu = nn.ReLU()
            self.max_pool = nn.MaxPool2d(kernel_size=2, stride=2)
            self.flatten = nn.Flatten()

        def forward(self, x):
            x = self.max_pool(self.relu(self.conv1(x)))
            x = self.max_pool(self.relu(self.conv2(x)))
            x = self.flatten(x)
            x = self.relu(self.fc1(x))
            return self.fc2(x)

    return CNN()


@dataclass
class Workload:
    """The CNN with its loss, Adam optimizer and one batch, ready to step."""

    train_step: Callable[[], object]  # zero_grad, forward, loss, backward, Adam step
    infer: Callable[[], object]  # forward under no_grad
    model: object = None  # the CNN itself (for checkpoint round trips)


def build(library: str, batch: int, seed: int = 0, wrap: Callable | None = None) -> Workload:
    """library is "fastdl" or "torch"; the batch is random images and labels. `wrap(model)`,
    if given, is what the steps run (DistributedDataParallel around the CNN)."""
    import importlib

    import numpy as np

    lib = importlib.import_module(library)
    nn, optim = (
        importlib.import_module(f"{library}.nn"),
        importlib.import_module(f"{library}.optim"),
    )
    lib.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, size=batch, dtype=np.int64)
    x, y = lib.from_numpy(images), lib.from_numpy(labels)

    model = make_cnn(nn)
    net = wrap(model) if wrap is not None else model
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        optimizer.zero_grad()
        loss = criterion(net(x), y)
        loss.backward()
        optimizer.step()
        return loss

    def infer():
        with lib.no_grad():
            return model(x)

    return Workload(train_step, infer, model)
