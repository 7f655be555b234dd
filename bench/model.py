"""The founding CNN's training and inference steps for the bench, on fastdl or PyTorch (the model
is fastdl.models.make_cnn, one builder for both libraries).

conv1 1->32 3x3 pad 1, ReLU, maxpool 2; conv2 32->64 3x3 pad 1, ReLU, maxpool 2; flatten;
fc1 3136->128, ReLU; fc2 128->10. 421,642 parameters. Input (batch, 1, 28, 28), int64 labels.

Imports nothing at module level. A process measuring PyTorch also imports fastdl.models (and with
it fastdl), for the one definition of the model.
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


@dataclass
class Workload:
    """The CNN with its loss, Adam optimizer and one batch, ready to step."""

    train_step: Callable[[], object]  # zero_grad, forward, loss, backward, Adam step
    infer: Callable[[], object]  # forward under no_grad
    model: object = None  # the CNN itself (for checkpoint round trips)


def build(
    library: str,
    batch: int,
    seed: int = 0,
    device: str = "cpu",
    compiled: bool = False,
    wrap: Callable | None = None,
) -> Workload:
    """library is "fastdl" or "torch"; the batch is random images and labels, the model, batch
    and optimizer state on `device`. compiled: the model through fastdl.compile (its step() runs
    the training step) or torch.compile (whose first calls compile: the bench's cold time).
    `wrap(model)`, if given, is what the steps run (DistributedDataParallel around the CNN)."""
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
    x, y = lib.from_numpy(images).to(device), lib.from_numpy(labels).to(device)

    from fastdl.models import make_cnn

    model = make_cnn(nn).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)

    if compiled and library == "fastdl":
        fast = lib.compile(model, optimizer=optimizer, loss_fn=criterion)

        def infer():
            with lib.no_grad():
                return fast(x)

        return Workload(lambda: fast.step(x, y), infer, model)
    net = lib.compile(model) if compiled else model
    if wrap is not None:
        net = wrap(net)

    def train_step():
        optimizer.zero_grad()
        loss = criterion(net(x), y)
        loss.backward()
        optimizer.step()
        return loss

    def infer():
        with lib.no_grad():
            return net(x)

    return Workload(train_step, infer, model)
