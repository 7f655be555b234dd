"""SimpleImputer: fill missing values per column with a statistic of the training data."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from ._base import Preprocessor
from ._convert import as_2d, column_names, is_pandas, like_input, to_float, to_numpy

STRATEGIES = ("mean", "median", "most_frequent", "constant")


def _is_nan(value: Any) -> bool:
    """NaN, None or pandas.NA: what counts as missing when missing_values is NaN."""
    if value is None or type(value).__name__ == "NAType":
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def missing_mask(data: np.ndarray, missing_values: Any) -> np.ndarray:
    """True where `data` holds a missing value."""
    by_nan = missing_values is None or _is_nan(missing_values)
    if data.dtype.kind == "f" and by_nan:
        return np.isnan(data)
    if data.dtype.kind in "biuf":
        return np.zeros(data.shape, bool) if by_nan else data == missing_values
    if by_nan:
        return (
            np.vectorize(_is_nan, otypes=[bool])(data) if data.size else np.zeros(data.shape, bool)
        )
    return np.vectorize(lambda v: not _is_nan(v) and v == missing_values, otypes=[bool])(data)


def _python(value: Any) -> Any:
    """NumPy scalars as Python ones, so the statistics save as plain numbers and strings."""
    return value.item() if isinstance(value, np.generic) else value


def _most_frequent(values: list) -> Any:
    """The most common value; ties go to the smallest (as in scikit-learn)."""
    counts = Counter(values)
    top = max(counts.values())
    tied = [v for v, c in counts.items() if c == top]
    try:
        return min(tied)
    except TypeError:  # values that don't compare: the first one seen
        return tied[0]


class SimpleImputer(Preprocessor):
    """Replace missing values (NaN/None by default, or `missing_values`) column by column with
    the training data's mean, median, most frequent value, or a constant `fill_value`.
    "most_frequent" and "constant" also work on non-numeric (e.g. string) columns.

    >>> import numpy as np
    >>> imputer = SimpleImputer(strategy="median").fit(np.array([[1.0], [np.nan], [5.0], [7.0]]))
    >>> imputer.transform(np.array([[np.nan], [2.0]])).tolist()
    [[5.0], [2.0]]
    """

    _params = ("strategy", "fill_value", "missing_values")
    _fitted = ("statistics", "numeric", "n_features", "feature_names")

    def __init__(
        self, strategy: str = "mean", fill_value: Any = None, missing_values: Any = np.nan
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(
                f"[SimpleImputer] strategy must be one of {STRATEGIES}, got {strategy!r}"
            )
        self.strategy, self.fill_value = strategy, fill_value
        self.missing_values = (
            None if missing_values is None or _is_nan(missing_values) else missing_values
        )
        self.statistics = self.numeric = self.n_features = self.feature_names = None

    def _data(self, X: Any) -> np.ndarray:
        numeric_only = self.strategy in ("mean", "median")
        if is_pandas(X) and not numeric_only:
            try:
                arr = to_numpy(X, self.name)  # all columns numeric: NA becomes NaN
            except ValueError:
                arr = X.to_numpy().astype(object)
        else:
            arr = to_numpy(X, self.name, numeric=numeric_only)
        if arr.dtype.kind not in "biufO":
            arr = arr.astype(object)
        return as_2d(arr, self.name)

    def fit(self, X: Any, y: Any = None) -> "SimpleImputer":
        data = self._data(X)
        mask = missing_mask(data, self.missing_values)
        names = column_names(X)
        stats = []
        for j in range(data.shape[1]):
            observed = data[~mask[:, j], j]
            if self.strategy == "constant":
                default = 0 if data.dtype.kind in "biuf" else "missing_value"
                stats.append(default if self.fill_value is None else self.fill_value)
                continue
            if observed.size == 0:
                column = repr(names[j]) if names else str(j)
                raise ValueError(
                    f"[SimpleImputer] column {column} has no observed values to take a "
                    f"{self.strategy} from; use strategy='constant'"
                )
            if self.strategy == "mean":
                stats.append(float(np.mean(observed.astype(np.float64))))
            elif self.strategy == "median":
                stats.append(float(np.median(observed.astype(np.float64))))
            else:
                stats.append(_python(_most_frequent([_python(v) for v in observed])))
        self.statistics = stats
        self.numeric = data.dtype.kind in "biuf"
        self.n_features, self.feature_names = data.shape[1], names
        return self

    def transform(self, X: Any) -> Any:
        self._check_fitted()
        data = self._data(X)
        self._check_features(X, data.shape[1])
        mask = missing_mask(data, self.missing_values)
        numeric = data.dtype.kind in "biuf" and all(
            isinstance(s, (int, float, bool, np.number)) for s in self.statistics
        )
        out = to_float(data).copy() if numeric else data.astype(object)
        for j, value in enumerate(self.statistics):
            out[mask[:, j], j] = value
        return like_input(out, X) if numeric else out

    def _validate_state(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"[SimpleImputer.load_state_dict] unknown strategy {self.strategy!r}")
        if self.is_fitted:
            self.n_features = int(self.n_features)
            self.statistics = list(self.statistics)
            if len(self.statistics) != self.n_features:
                raise ValueError(
                    f"[SimpleImputer.load_state_dict] {len(self.statistics)} statistics for "
                    f"{self.n_features} features"
                )
