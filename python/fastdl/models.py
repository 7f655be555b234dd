"""Reference models shared by the demo, the tests and the benchmarks."""

from __future__ import annotations

from . import nn
from ._tensor import Tensor


class CNN(nn.Module):
    """The founding CNN: conv 1->32 3x3 pad 1, ReLU, maxpool 2; conv 32->64 3x3 pad 1, ReLU,
    maxpool 2; flatten; linear 3136->128, ReLU; linear 128->10. Its state_dict keys
    (conv1.weight, ..., fc2.bias) are those of the same model written with PyTorch.

    >>> import fastdl
    >>> CNN()(fastdl.zeros(2, 1, 28, 28)).shape
    fastdl.Size([2, 10])
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> None:
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

    def forward(self, x: Tensor) -> Tensor:
        x = self.max_pool(self.relu(self.conv1(x)))
        x = self.max_pool(self.relu(self.conv2(x)))
        x = self.flatten(x)
        return self.fc2(self.relu(self.fc1(x)))
