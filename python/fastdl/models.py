"""The founding CNN, written once for any library with PyTorch's nn API: `CNN` is it on
fastdl.nn; `make_cnn(torch.nn)` builds the same model on PyTorch, so the bench and the parity
tests compare like with like (state_dict keys conv1.weight, ..., fc2.bias are the same on both).

conv 1->32 3x3 pad 1, ReLU, maxpool 2; conv 32->64 3x3 pad 1, ReLU, maxpool 2; flatten;
linear 3136->128, ReLU; linear 128->10 (421,642 parameters at the defaults).
examples/seed_cnn.py writes the same model out by hand on purpose: it is the founding
document's PyTorch code with only its imports changed (tests/test_seed_cnn.py checks that it
builds this model).
"""

from __future__ import annotations

import functools


@functools.cache
def cnn_class(nn) -> type:
    """The founding CNN's class on the nn module `nn` (fastdl.nn or torch.nn)."""

    class CNN(nn.Module):
        """The founding CNN (see fastdl.models). image_size must be a multiple of 4.

        >>> import fastdl
        >>> CNN()(fastdl.zeros(2, 1, 28, 28)).shape
        fastdl.Size([2, 10])
        """

        def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
            super().__init__()
            if image_size % 4:
                raise ValueError(f"[CNN] image_size must be a multiple of 4, got {image_size}")
            side = image_size // 4
            self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=3, stride=1, padding=1)
            self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=1, padding=1)
            self.fc1 = nn.Linear(64 * side * side, 128)
            self.fc2 = nn.Linear(128, num_classes)
            self.relu = nn.ReLU()
            self.max_pool = nn.MaxPool2d(kernel_size=2, stride=2)
            self.flatten = nn.Flatten()

        def forward(self, x):
            x = self.max_pool(self.relu(self.conv1(x)))
            x = self.max_pool(self.relu(self.conv2(x)))
            x = self.flatten(x)
            return self.fc2(self.relu(self.fc1(x)))

    return CNN


def make_cnn(nn, **kwargs):
    """A new founding CNN on `nn`: make_cnn(torch.nn) is PyTorch's twin of fastdl's CNN()."""
    return cnn_class(nn)(**kwargs)


def _fastdl_cnn() -> type:
    from . import nn

    cls = cnn_class(nn)
    cls.__qualname__ = "CNN"  # importable as fastdl.models.CNN (pickle, repr of the class)
    return cls


CNN = _fastdl_cnn()
