"""One-hot encoding: `one_hot` for class labels and `OneHotEncoder` for categorical columns."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor
from ._base import Preprocessor
from ._convert import as_2d, column_names, is_pandas, to_numpy
from .impute import missing_mask


def one_hot(labels: Any, num_classes: int) -> Any:
    """Class indices (any shape) -> float32 one-hot rows with a new last axis of num_classes.
    Returns a Tensor for a Tensor, else a NumPy array. Labels must lie in [0, num_classes).

    >>> one_hot([0, 2], 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    if (
        not isinstance(num_classes, (int, np.integer))
        or isinstance(num_classes, bool)
        or num_classes < 1
    ):
        raise ValueError(f"[one_hot] num_classes must be an int >= 1, got {num_classes!r}")
    arr = to_numpy(labels, "one_hot")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"[one_hot] expected integer class labels, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        bad = arr[(arr < 0) | (arr >= num_classes)].reshape(-1)[0]
        raise ValueError(
            f"[one_hot] labels must be in [0, {num_classes}), got {int(bad)} "
            f"(min {int(arr.min())}, max {int(arr.max())})"
        )
    out = (arr[..., None] == np.arange(num_classes)).astype(np.float32)
    return Tensor._make(out) if isinstance(labels, Tensor) else out


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class OneHotEncoder(Preprocessor):
    """Each categorical column becomes one 0/1 column per category seen in the training data
    (categories sorted). An unseen category at transform time is an error, or all zeros with
    handle_unknown="ignore". Missing values must be filled first (SimpleImputer).

    >>> import numpy as np
    >>> enc = OneHotEncoder().fit(np.array([["red"], ["blue"], ["red"]]))
    >>> enc.categories
    [['blue', 'red']]
    >>> enc.transform(np.array([["red"]])).tolist()
    [[0.0, 1.0]]
    """

    _params = ("handle_unknown",)
    _fitted = ("categories", "n_features", "feature_names")

    def __init__(self, handle_unknown: str = "error") -> None:
        if handle_unknown not in ("error", "ignore"):
            raise ValueError(
                "[OneHotEncoder] handle_unknown must be 'error' or 'ignore', "
                f"got {handle_unknown!r}"
            )
        self.handle_unknown = handle_unknown
        self.categories = self.n_features = self.feature_names = None

    def _data(self, X: Any) -> tuple:
        """(2-D array, column labels for messages)."""
        arr = X.to_numpy() if is_pandas(X) else to_numpy(X, self.name, numeric=False)
        arr = as_2d(arr, self.name)
        names = column_names(X)
        labels = [repr(n) for n in names] if names else [str(j) for j in range(arr.shape[1])]
        mask = missing_mask(arr.astype(object) if arr.dtype.kind not in "biuf" else arr, None)
        if mask.any():
            row, col = np.argwhere(mask)[0]
            raise ValueError(
                f"[{self.name}] column {labels[col]} has a missing value (row {row}); fill it "
                "first, e.g. with SimpleImputer(strategy='most_frequent')"
            )
        return arr, labels

    def fit(self, X: Any, y: Any = None) -> "OneHotEncoder":
        data, labels = self._data(X)
        categories = []
        for j in range(data.shape[1]):
            values = {_python(v) for v in data[:, j]}
            try:
                categories.append(sorted(values))
            except TypeError:
                kinds = sorted({type(v).__name__ for v in values})
                raise ValueError(
                    f"[{self.name}] column {labels[j]} mixes value types {kinds}"
                ) from None
        self.categories = categories
        self.n_features, self.feature_names = data.shape[1], column_names(X)
        return self

    def transform(self, X: Any) -> Any:
        self._check_fitted()
        data, labels = self._data(X)
        self._check_features(X, data.shape[1])
        widths = [len(c) for c in self.categories]
        out = np.zeros((len(data), sum(widths)), np.float32)
        offset = 0
        for j, cats in enumerate(self.categories):
            position = {c: i for i, c in enumerate(cats)}
            for row, value in enumerate(data[:, j]):
                i = position.get(_python(value))
                if i is not None:
                    out[row, offset + i] = 1.0
                elif self.handle_unknown == "error":
                    shown = cats if len(cats) <= 10 else cats[:10] + ["..."]
                    raise ValueError(
                        f"[{self.name}] column {labels[j]} has category {_python(value)!r} "
                        f"(row {row}) not seen in fit; known: {shown}"
                    )
            offset += widths[j]
        return Tensor._make(out) if isinstance(X, Tensor) else out

    def get_feature_names_out(self) -> list:
        """Output column names, "<column>_<category>"."""
        self._check_fitted()
        names = self.feature_names or [f"x{j}" for j in range(self.n_features)]
        return [f"{n}_{c}" for n, cats in zip(names, self.categories) for c in cats]

    def _validate_state(self) -> None:
        if self.is_fitted:
            self.n_features = int(self.n_features)
            self.categories = [list(c) for c in self.categories]
            if len(self.categories) != self.n_features:
                raise ValueError(
                    f"[OneHotEncoder.load_state_dict] {len(self.categories)} category lists for "
                    f"{self.n_features} features"
                )
