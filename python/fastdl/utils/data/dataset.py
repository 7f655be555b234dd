"""`torch.utils.data.dataset`'s path: fastdl.data.dataset's objects, and random_split."""

from ...data.dataset import (
    ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset,
)
from ...data.split import random_split

__all__ = [
    "ChainDataset", "ConcatDataset", "Dataset", "IterableDataset", "Subset", "TensorDataset",
    "random_split",
]
