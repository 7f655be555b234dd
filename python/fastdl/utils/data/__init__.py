"""`torch.utils.data`'s names, the same objects as in fastdl.data.

    from fastdl.utils.data import DataLoader, TensorDataset, random_split

    train, val = random_split(TensorDataset(X, y), [0.8, 0.2],
                              generator=fastdl.Generator().manual_seed(0))
    for xb, yb in DataLoader(train, batch_size=64, shuffle=True):
        ...
"""

from ...data.dataloader import DataLoader, default_collate, default_convert, get_worker_info
from ...data.dataset import (
    ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset,
)
from ...data.sampler import (
    BatchSampler, DistributedSampler, RandomSampler, Sampler, SequentialSampler,
    SubsetRandomSampler, WeightedRandomSampler,
)
from ...data.split import random_split
from . import dataloader, dataset, distributed, sampler  # noqa: E402  (torch.utils.data.<module> paths)

__all__ = [
    "BatchSampler",
    "DistributedSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
]
