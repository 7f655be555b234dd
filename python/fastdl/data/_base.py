"""`Preprocessor`: the fit/transform base class whose fitted state saves and loads with a model.

A subclass lists its hyperparameters in `_params` and its fitted attributes in `_fitted`;
`state_dict()` holds both (arrays, numbers, strings, lists: what `fastdl.save` stores) plus
the class name, and `load_state_dict` checks the name and restores them.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._tensor import Tensor
from ._convert import column_names


class Preprocessor:
    """Fit on training data, then transform any data the same way.

    >>> import numpy as np
    >>> from fastdl.data import StandardScaler
    >>> scaler = StandardScaler().fit(np.array([[0.0], [2.0]]))
    >>> scaler.transform(np.array([[4.0]])).tolist()
    [[3.0]]
    """

    _params: tuple = ()
    _fitted: tuple = ()
    supports_batches = False  # True when transform accepts a whole batch (see DataLoader)

    @property
    def name(self) -> str:
        return type(self).__name__

    def fit(self, X: Any, y: Any = None) -> "Preprocessor":
        raise NotImplementedError(f"{self.name} must implement fit")

    def transform(self, X: Any) -> Any:
        raise NotImplementedError(f"{self.name} must implement transform")

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        return self.fit(X, y).transform(X)

    def __call__(self, X: Any) -> Any:
        return self.transform(X)

    @property
    def is_fitted(self) -> bool:
        # The first fitted attribute marks the fit; later ones (feature_names) may be None.
        return bool(self._fitted) and getattr(self, self._fitted[0], None) is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(
                f"[{self.name}] is not fitted: call fit(train_data) first (or load_state_dict), "
                "then transform"
            )

    def _check_features(self, X: Any, n_features: int) -> None:
        """Transform-time input must match what fit saw (count, and names for DataFrames)."""
        expected = getattr(self, "n_features", None)
        if expected is not None and n_features != expected:
            raise ValueError(
                f"[{self.name}] expected {expected} features (as fitted), got {n_features}"
            )
        names, fitted = column_names(X), getattr(self, "feature_names", None)
        if names is not None and fitted is not None and names != fitted:
            raise ValueError(
                f"[{self.name}] DataFrame columns {names} differ from the fitted columns {fitted}"
            )

    # ---------------------------------------------------------------- state

    def state_dict(self) -> dict:
        """Hyperparameters and (once fitted) fitted values, with the class name under "type"."""
        state: dict = {"type": self.name}
        for key in self._params:
            state[key] = getattr(self, key)
        if self.is_fitted:
            for key in self._fitted:
                state[key] = getattr(self, key)
        return state

    def load_state_dict(self, state: dict) -> "Preprocessor":
        """Restore what `state_dict` returned (arrays may come back as Tensors or arrays)."""
        if not isinstance(state, dict):
            raise TypeError(
                f"[{self.name}.load_state_dict] expected a dict, got {type(state).__name__}"
            )
        kind = state.get("type")
        if kind != self.name:
            raise ValueError(
                f"[{self.name}.load_state_dict] the state is for {kind!r}, not {self.name}"
            )
        missing = [k for k in self._params if k not in state]
        if missing:
            raise ValueError(f"[{self.name}.load_state_dict] missing keys {missing}")
        for key in self._params:
            setattr(self, key, _plain(state[key]))
        fitted = [k for k in self._fitted if k in state]
        if fitted and len(fitted) != len(self._fitted):
            lost = [k for k in self._fitted if k not in state]
            raise ValueError(f"[{self.name}.load_state_dict] missing fitted keys {lost}")
        for key in self._fitted:
            setattr(self, key, _plain(state[key]) if fitted else None)
        self._validate_state()
        return self

    def _validate_state(self) -> None:
        """Subclasses check shapes and values after load_state_dict."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._params)
        return f"{self.name}({args})"


def _plain(value: Any) -> Any:
    """Tensors back to NumPy arrays and tuples to lists; everything else as is."""
    if isinstance(value, Tensor):
        return value._data
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def float_array(value: Any, name: str, op: str, length: Optional[int] = None) -> np.ndarray:
    """A 1-D float64 array (checked length) from a list, array or Tensor."""
    arr = np.asarray(_plain(value), dtype=np.float64).reshape(-1)
    if length is not None and arr.size != length:
        raise ValueError(f"[{op}] {name} has {arr.size} values, expected {length}")
    return arr
