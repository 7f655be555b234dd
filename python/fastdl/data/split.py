"""Seeded splits: random_split (datasets, PyTorch's API) and train_test_split (arrays, Tensors
and DataFrames, scikit-learn's API, with optional stratification)."""

from __future__ import annotations

import math
import warnings
from typing import Any, Optional, Sequence, Union

import numpy as np

from .. import _random
from .._args import is_int
from .._tensor import Tensor
from ._convert import is_pandas, to_numpy
from .dataset import Subset, _length_mismatch

Seed = Union[int, "_random.Generator", np.random.Generator, None]


def _rng(seed: Seed, op: str = "train_test_split") -> np.random.Generator:
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)
    if seed is None or isinstance(seed, (_random.Generator, np.random.Generator)):
        return _random.numpy_generator(seed, op)
    raise TypeError(
        f"[{op}] expected an int seed, a fastdl.Generator, a np.random.Generator or None, "
        f"got {type(seed).__name__}"
    )


def _lengths(lengths: Sequence[Union[int, float]], n: int) -> list:
    """Integer lengths summing to n, or fractions summing to 1 (PyTorch's rule: each count is
    rounded down and the remainder handed out one by one from the first split)."""
    lengths = list(lengths)
    total = sum(float(x) for x in lengths)
    if math.isclose(total, 1.0) and total <= 1.0:
        for i, f in enumerate(lengths):
            if not 0.0 <= float(f) <= 1.0:
                raise ValueError(
                    f"[random_split] fractions must be in [0, 1]; fraction at index {i} is {f}"
                )
        counts = [int(math.floor(n * float(f))) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(
                    f"[random_split] length of split at index {i} is 0 (fraction {lengths[i]} "
                    f"of {n} samples): that subset is empty",
                    UserWarning,
                    stacklevel=3,
                )
        return counts
    if not all(is_int(x) for x in lengths):
        raise ValueError(
            f"[random_split] fractions {lengths} must be in [0, 1] and sum to 1 (they sum to "
            f"{total:g})"
        )
    if any(x < 0 for x in lengths) or sum(lengths) != n:
        raise ValueError(
            f"[random_split] lengths {lengths} must be >= 0 and sum to the dataset's length {n}"
        )
    return [int(x) for x in lengths]


def random_split(
    dataset: Any, lengths: Sequence[Union[int, float]], generator: Seed = None
) -> list:
    """Split `dataset` into non-overlapping Subsets of the given lengths, or fractions summing
    to 1. `generator`: a fastdl.Generator, a np.random.Generator, an int seed, or None
    (fastdl's global generator).

    >>> import numpy as np
    >>> import fastdl
    >>> from fastdl.data import TensorDataset
    >>> g = fastdl.Generator().manual_seed(42)
    >>> train, val = random_split(TensorDataset(np.arange(10)), [0.8, 0.2], generator=g)
    >>> len(train), len(val)
    (8, 2)
    """
    counts = _lengths(lengths, len(dataset))
    order = _rng(generator, "random_split").permutation(len(dataset))
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def _sizes(n: int, test_size: Optional[float], train_size: Optional[float]) -> tuple:
    """(n_train, n_test) by scikit-learn's rule: a fraction of test rounds up, of train down."""

    def count(value: Union[int, float], name: str, rounding) -> int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if not 0 <= value <= n:
                raise ValueError(f"[train_test_split] {name}={value} must be in [0, {n}]")
            return int(value)
        if not 0.0 < float(value) < 1.0:
            raise ValueError(f"[train_test_split] {name}={value} must be a fraction in (0, 1)")
        return int(rounding(float(value) * n))

    if test_size is None and train_size is None:
        test_size = 0.25
    n_test = count(test_size, "test_size", math.ceil) if test_size is not None else None
    n_train = count(train_size, "train_size", math.floor) if train_size is not None else None
    if n_test is None:
        n_test = n - n_train
    if n_train is None:
        n_train = n - n_test
    if n_train + n_test > n or n_train == 0 or n_test == 0:
        raise ValueError(
            f"[train_test_split] with {n} samples, test_size={test_size} and "
            f"train_size={train_size} give {n_train} train and {n_test} test samples; "
            "both must be >= 1 and fit"
        )
    return n_train, n_test


def _stratified(labels: np.ndarray, n_train: int, n_test: int, rng: np.random.Generator) -> tuple:
    """Per-class test counts proportional to class sizes (largest remainders settle the
    rounding), then a random choice within each class."""
    classes, y = np.unique(labels, return_inverse=True)
    counts = np.bincount(y)
    ideal = counts * (n_test / len(labels))
    test_counts = np.floor(ideal).astype(np.int64)
    by_remainder = np.argsort(-(ideal - test_counts), kind="stable")
    test_counts[by_remainder[: n_test - test_counts.sum()]] += 1
    train_idx, test_idx = [], []
    for k in range(len(classes)):
        members = rng.permutation(np.flatnonzero(y == k))
        test_idx.append(members[: test_counts[k]])
        train_idx.append(members[test_counts[k] :])
    train_idx = np.concatenate(train_idx)
    test_idx = np.concatenate(test_idx)
    if len(train_idx) > n_train:  # train_size given explicitly: keep a stratified share
        keep = _stratified(labels[train_idx], n_train, len(train_idx) - n_train, rng)[0]
        train_idx = train_idx[keep]
    return rng.permutation(train_idx), rng.permutation(test_idx)


def _take(x: Any, idx: np.ndarray) -> Any:
    if isinstance(x, Tensor):
        return Tensor._make(x._data[idx])
    if is_pandas(x):
        return x.iloc[idx]
    if isinstance(x, np.ndarray):
        return x[idx]
    if isinstance(x, (list, tuple)):
        return [x[int(i)] for i in idx]
    raise TypeError(
        f"[train_test_split] expected arrays, Tensors, DataFrames or lists, got {type(x).__name__}"
    )


def train_test_split(
    *arrays: Any,
    test_size: Optional[float] = None,
    train_size: Optional[float] = None,
    random_state: Seed = None,
    shuffle: bool = True,
    stratify: Any = None,
) -> list:
    """Split arrays (same length) into train and test parts: returns
    [a_train, a_test, b_train, b_test, ...], each of its input's kind (NumPy, Tensor, pandas).

    test_size / train_size are fractions or counts (default test_size 0.25); `stratify`
    (class labels) keeps each class's share equal in both parts; random_state seeds it
    (None: fastdl's global generator).

    >>> import numpy as np
    >>> X, y = np.arange(20).reshape(10, 2), np.array([0, 1] * 5)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0,
    ...                                                     stratify=y)
    >>> sorted(y_test.tolist())
    [0, 1]
    """
    if not arrays:
        raise ValueError("[train_test_split] expected at least one array")
    n = len(arrays[0])
    i = _length_mismatch(arrays)
    if i is not None:
        raise ValueError(
            f"[train_test_split] inconsistent lengths: array 0 has {n} samples, "
            f"array {i} has {len(arrays[i])}"
        )
    n_train, n_test = _sizes(n, test_size, train_size)
    if not shuffle:
        if stratify is not None:
            raise ValueError("[train_test_split] stratify requires shuffle=True")
        train_idx, test_idx = np.arange(n_train), np.arange(n_train, n_train + n_test)
    elif stratify is not None:
        labels = to_numpy(stratify, "train_test_split", numeric=False).reshape(len(stratify), -1)
        if len(labels) != n:
            raise ValueError(f"[train_test_split] stratify has {len(labels)} labels, expected {n}")
        key = labels[:, 0] if labels.shape[1] == 1 else np.array([str(r) for r in labels.tolist()])
        train_idx, test_idx = _stratified(key, n_train, n_test, _rng(random_state))
    else:
        order = _rng(random_state).permutation(n)
        test_idx, train_idx = order[:n_test], order[n_test : n_test + n_train]
    out = []
    for a in arrays:
        out += [_take(a, train_idx), _take(a, test_idx)]
    return out
