"""Feature scaling fitted on training data: StandardScaler (mean/std) and MinMaxScaler.

Both take (samples, features) data (or 1-D, one feature) as NumPy arrays, fastdl Tensors or
numeric DataFrames; they return a Tensor for a Tensor and a NumPy array otherwise, in the
input's floating dtype (float32 for integer input). Statistics are kept in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Preprocessor, float_array
from ._convert import as_2d, column_names, like_input, to_float, to_numpy


def _features(X: Any, op: str) -> tuple:
    """(2-D float array, original ndim) for scaler input."""
    arr = to_float(to_numpy(X, op))
    return as_2d(arr, op), arr.ndim


def _fit_data(X: Any, op: str) -> np.ndarray:
    """The float64 (n, features) array a scaler fits on; at least one sample."""
    data, _ = _features(X, op)
    if len(data) == 0:
        raise ValueError(f"[{op}] cannot fit on 0 samples")
    return data.astype(np.float64)


def _nonzero(scale: np.ndarray) -> np.ndarray:
    """Constant features get scale 1, so they map to 0 instead of dividing by zero."""
    return np.where(scale == 0.0, 1.0, scale)


class StandardScaler(Preprocessor):
    """x -> (x - mean) / std per feature, with mean and std (ddof=0) from the training data.
    NaNs are ignored when fitting and stay NaN.

    >>> import numpy as np
    >>> scaler = StandardScaler().fit(np.array([[1.0, 10.0], [3.0, 10.0]]))
    >>> scaler.mean.tolist(), scaler.scale.tolist()
    ([2.0, 10.0], [1.0, 1.0])
    >>> scaler.transform(np.array([[5.0, 10.0]])).tolist()
    [[3.0, 0.0]]
    """

    _params = ("with_mean", "with_std")
    _fitted = ("mean", "scale", "n_features", "feature_names")

    def __init__(self, with_mean: bool = True, with_std: bool = True) -> None:
        self.with_mean, self.with_std = bool(with_mean), bool(with_std)
        self.mean = self.scale = self.n_features = None
        self.feature_names = None

    def fit(self, X: Any, y: Any = None) -> "StandardScaler":
        data = _fit_data(X, self.name)
        n = data.shape[1]
        self.mean = np.nanmean(data, axis=0) if self.with_mean else np.zeros(n)
        self.scale = _nonzero(np.nanstd(data, axis=0)) if self.with_std else np.ones(n)
        self.n_features, self.feature_names = n, column_names(X)
        return self

    def transform(self, X: Any) -> Any:
        self._check_fitted()
        data, ndim = _features(X, self.name)
        self._check_features(X, data.shape[1])
        out = ((data - self.mean) / self.scale).astype(data.dtype)
        return like_input(out if ndim == 2 else out[:, 0], X)

    def inverse_transform(self, X: Any) -> Any:
        self._check_fitted()
        data, ndim = _features(X, self.name)
        self._check_features(X, data.shape[1])
        out = (data * self.scale + self.mean).astype(data.dtype)
        return like_input(out if ndim == 2 else out[:, 0], X)

    def _validate_state(self) -> None:
        if self.is_fitted:
            self.n_features = int(self.n_features)
            self.mean = float_array(self.mean, "mean", self.name, self.n_features)
            self.scale = float_array(self.scale, "scale", self.name, self.n_features)


class MinMaxScaler(Preprocessor):
    """x -> lo + (x - min) * (hi - lo) / (max - min) per feature, min and max from the training
    data; feature_range=(lo, hi). Test data outside the training range maps outside
    [lo, hi] unless clip=True.

    >>> import numpy as np
    >>> scaler = MinMaxScaler().fit(np.array([[0.0], [4.0]]))
    >>> scaler.transform(np.array([[1.0], [8.0]])).tolist()
    [[0.25], [2.0]]
    """

    _params = ("feature_range", "clip")
    _fitted = ("data_min", "data_max", "n_features", "feature_names")

    def __init__(self, feature_range: tuple = (0.0, 1.0), clip: bool = False) -> None:
        lo, hi = (float(v) for v in feature_range)
        if not lo < hi:
            raise ValueError(
                f"[MinMaxScaler] feature_range must be (lo, hi) with lo < hi, got {feature_range}"
            )
        self.feature_range, self.clip = [lo, hi], bool(clip)
        self.data_min = self.data_max = self.n_features = None
        self.feature_names = None

    def fit(self, X: Any, y: Any = None) -> "MinMaxScaler":
        data = _fit_data(X, self.name)
        self.data_min, self.data_max = np.nanmin(data, axis=0), np.nanmax(data, axis=0)
        self.n_features, self.feature_names = data.shape[1], column_names(X)
        return self

    def _scale(self) -> tuple:
        lo, hi = self.feature_range
        scale = (hi - lo) / _nonzero(self.data_max - self.data_min)
        return scale, lo - self.data_min * scale

    def transform(self, X: Any) -> Any:
        self._check_fitted()
        data, ndim = _features(X, self.name)
        self._check_features(X, data.shape[1])
        scale, offset = self._scale()
        out = data * scale + offset
        if self.clip:
            out = np.clip(out, *self.feature_range)
        out = out.astype(data.dtype)
        return like_input(out if ndim == 2 else out[:, 0], X)

    def inverse_transform(self, X: Any) -> Any:
        self._check_fitted()
        data, ndim = _features(X, self.name)
        self._check_features(X, data.shape[1])
        scale, offset = self._scale()
        out = ((data - offset) / scale).astype(data.dtype)
        return like_input(out if ndim == 2 else out[:, 0], X)

    def _validate_state(self) -> None:
        lo, hi = (float(v) for v in self.feature_range)
        self.feature_range = [lo, hi]
        if self.is_fitted:
            self.n_features = int(self.n_features)
            self.data_min = float_array(self.data_min, "data_min", self.name, self.n_features)
            self.data_max = float_array(self.data_max, "data_max", self.name, self.n_features)
