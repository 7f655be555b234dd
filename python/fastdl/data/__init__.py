"""Data: datasets, batching, splits and preprocessing (`import fastdl.data`).

    from fastdl.data import DataLoader, TensorDataset, StandardScaler, train_test_split

    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(X_train)          # fit on training data only ...
    train = TensorDataset(scaler.transform(X_train), y_train)
    test = TensorDataset(scaler.transform(X_test), y_test)   # ... and apply it to test data
    for xb, yb in DataLoader(train, batch_size=64, shuffle=True, generator=0):
        ...
    fastdl.save({"model": model.state_dict(), "scaler": scaler.state_dict()}, "ckpt.safetensors")

pandas is optional: DataFrames and Series are accepted wherever arrays are, and pandas is only
imported when one is passed.
"""

from ._base import Preprocessor
from .dataloader import DataLoader, default_collate, default_convert, get_worker_info
from .dataset import ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset
from .encoding import OneHotEncoder, one_hot
from .impute import SimpleImputer
from .preprocessing import MinMaxScaler, StandardScaler
from .sampler import (
    BatchSampler, DistributedSampler, RandomSampler, Sampler, SequentialSampler,
    SubsetRandomSampler, WeightedRandomSampler,
)
from .split import random_split, train_test_split
from .transforms import Compose, Normalize

__all__ = [
    "Dataset",
    "IterableDataset",
    "TensorDataset",
    "Subset",
    "ConcatDataset",
    "ChainDataset",
    "DataLoader",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
    "BatchSampler",
    "DistributedSampler",
    "random_split",
    "train_test_split",
    "Preprocessor",
    "StandardScaler",
    "MinMaxScaler",
    "SimpleImputer",
    "OneHotEncoder",
    "one_hot",
    "Normalize",
    "Compose",
]
