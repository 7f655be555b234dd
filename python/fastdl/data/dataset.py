"""Datasets: anything with `__len__` and `__getitem__`. TensorDataset holds whole arrays and
also serves whole batches at once (`get_batch`), which is how DataLoader stays cheap."""

from __future__ import annotations

import bisect
import itertools
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .._tensor import Tensor
from ._convert import to_numpy


class Dataset:
    """Base class: subclasses define `__getitem__(i)` (one sample) and `__len__`.

    A subclass may also define `get_batch(indices) -> tuple of arrays` that returns a whole
    batch at once (each array stacked along a new first axis); DataLoader then uses it instead
    of collating samples one by one.

    >>> class Squares(Dataset):
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, i):
    ...         return i, i * i
    >>> Squares()[3]
    (3, 9)
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """Base class for datasets that are streams: subclasses define `__iter__` (yielding
    samples); `__len__` is optional. DataLoader batches them in the order they come (no
    shuffle, no sampler, as in PyTorch).

    >>> class Count(IterableDataset):
    ...     def __iter__(self):
    ...         return iter(range(3))
    >>> list(Count())
    [0, 1, 2]
    """

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __len__(self) -> int:
        raise TypeError(f"object of type '{type(self).__name__}' has no len()")

    def __add__(self, other: Any) -> "ChainDataset":
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """The samples of several iterable datasets, one stream after the other.

    >>> class Count(IterableDataset):
    ...     def __iter__(self):
    ...         return iter(range(2))
    >>> list(ChainDataset([Count(), Count()]))
    [0, 1, 0, 1]
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = datasets

    def __iter__(self) -> Iterator[Any]:
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(
                    f"[ChainDataset] expected IterableDatasets, got {type(d).__name__}"
                )
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


def _check_index(index: Any, n: int, op: str) -> int:
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise TypeError(f"[{op}] expected an int index, got {type(index).__name__}")
    i = int(index)
    if not -n <= i < n:
        raise IndexError(f"[{op}] index {i} is out of range for a dataset of {n} samples")
    return i + n if i < 0 else i


def _length_mismatch(items: Sequence[Any]) -> int | None:
    """The index of the first of `items` whose length is not the first's; None if all agree."""
    n = len(items[0])
    return next((i for i, x in enumerate(items) if len(x) != n), None)


def _column_array(x: Any, i: int) -> np.ndarray:
    arr = to_numpy(x, "TensorDataset")
    if arr.ndim == 0:
        raise ValueError(f"[TensorDataset] tensor {i} is a scalar; expected at least one dimension")
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)  # NOTE: the kernels are float32; keep data in it
    return arr


class TensorDatasetSizeError(ValueError, AssertionError):
    """TensorDataset's tensors have different first sizes. Both a ValueError (what fastdl
    raised) and an AssertionError (what PyTorch raises), so either `except` catches it."""


class TensorDataset(Dataset):
    """Samples are rows of the given arrays: `ds[i]` is `(x[i], y[i], ...)` as fastdl Tensors.

    Accepts NumPy arrays, fastdl Tensors and pandas DataFrames/Series (their columns must be
    numeric). NOTE: float64 data is stored as float32, the dtype the kernels compute in.

    >>> import numpy as np
    >>> ds = TensorDataset(np.zeros((5, 3)), np.arange(5))
    >>> len(ds), ds[2][1].item()
    (5, 2)
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("[TensorDataset] expected at least one tensor")
        arrays = [_column_array(t, i) for i, t in enumerate(tensors)]
        i = _length_mismatch(arrays)
        if i is not None:
            raise TensorDatasetSizeError(
                f"[TensorDataset] Size mismatch between tensors: tensor 0 has {len(arrays[0])} "
                f"rows, tensor {i} has {len(arrays[i])}"
            )
        self.arrays = tuple(np.ascontiguousarray(a) for a in arrays)

    @property
    def tensors(self) -> tuple:
        """The whole arrays as fastdl Tensors (sharing memory), like PyTorch's `.tensors`."""
        return tuple(Tensor._make(a) for a in self.arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int) -> tuple:
        i = _check_index(index, len(self), "TensorDataset")
        return tuple(Tensor._make(np.array(a[i])) for a in self.arrays)

    def get_batch(self, indices: np.ndarray) -> tuple:
        """The rows `indices` of every array, stacked: one fancy-indexing copy per array."""
        return tuple(a[indices] for a in self.arrays)


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order.

    >>> import numpy as np
    >>> sub = Subset(TensorDataset(np.arange(10)), [7, 3])
    >>> [sub[i][0].item() for i in range(len(sub))]
    [7, 3]
    """

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= n):
            raise IndexError(
                f"[Subset] indices must be in [0, {n}), got min {self.indices.min()}, "
                f"max {self.indices.max()}"
            )

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[_check_index(index, len(self), "Subset")])]

    def __getattr__(self, name: str) -> Any:
        # get_batch only when the wrapped dataset has one (DataLoader checks with hasattr).
        if name == "get_batch" and hasattr(self.__dict__.get("dataset"), "get_batch"):
            return lambda indices: self.dataset.get_batch(self.indices[indices])
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")


class ConcatDataset(Dataset):
    """The samples of several datasets, one after the other.

    >>> import numpy as np
    >>> ds = ConcatDataset([TensorDataset(np.arange(2)), TensorDataset(np.arange(3))])
    >>> len(ds)
    5
    """

    def __init__(self, datasets: Sequence[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("[ConcatDataset] expected at least one dataset")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError(
                    f"[ConcatDataset] expected map-style datasets, got the IterableDataset "
                    f"{type(d).__name__} (use ChainDataset)"
                )
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, index: int) -> Any:
        i = _check_index(index, len(self), "ConcatDataset")
        k = bisect.bisect_right(self.cumulative_sizes, i)
        start = self.cumulative_sizes[k - 1] if k else 0
        return self.datasets[k][i - start]
