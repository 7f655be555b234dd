"""Image transforms: Normalize (per-channel mean/std, given or fitted) and Compose."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ._base import Preprocessor, float_array
from ._convert import like_input, to_float, to_numpy


class Normalize(Preprocessor):
    """image -> (image - mean[c]) / std[c] per channel, for (C, H, W) images or (N, C, H, W)
    batches (channels on axis -3). mean/std are given, or fitted from training images.

    >>> import numpy as np
    >>> norm = Normalize(mean=[0.5], std=[0.25])
    >>> norm(np.full((1, 2, 2), 1.0, np.float32))[0, 0].tolist()
    [2.0, 2.0]
    >>> Normalize().fit(np.array([[[[0.0]]], [[[2.0]]]])).mean.tolist()
    [1.0]
    """

    _params = ()
    _fitted = ("mean", "std")
    supports_batches = True

    def __init__(
        self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
    ) -> None:
        if (mean is None) != (std is None):
            raise ValueError("[Normalize] give both mean and std, or neither (then call fit)")
        self.mean = self.std = None
        if mean is not None:
            self.mean, self.std = (
                float_array(mean, "mean", self.name),
                float_array(std, "std", self.name),
            )
            self._validate_state()

    def _images(self, x: Any) -> np.ndarray:
        arr = to_float(to_numpy(x, self.name))
        if arr.ndim < 3:
            raise ValueError(
                f"[{self.name}] expected images (C, H, W) or batches (N, C, H, W), "
                f"got shape {arr.shape}"
            )
        return arr

    def fit(self, X: Any, y: Any = None) -> "Normalize":
        """Per-channel mean and std (ddof=0) over every other axis of the training images."""
        arr = self._images(X)
        axes = tuple(a for a in range(arr.ndim) if a != arr.ndim - 3)
        # float64 accumulation without a float64 copy of the whole image set
        self.mean = arr.mean(axis=axes, dtype=np.float64)
        self.std = arr.std(axis=axes, dtype=np.float64)
        self.std = np.where(self.std == 0.0, 1.0, self.std)
        return self

    def transform(self, X: Any) -> Any:
        self._check_fitted()
        arr = self._images(X)
        channels = arr.shape[-3]
        if len(self.mean) not in (1, channels):
            raise ValueError(
                f"[{self.name}] has {len(self.mean)} channel statistics, "
                f"the images have {channels} channels"
            )
        shape = (-1, 1, 1)
        mean = self.mean.astype(arr.dtype).reshape(shape)
        std = self.std.astype(arr.dtype).reshape(shape)
        return like_input((arr - mean) / std, X)

    def _validate_state(self) -> None:
        if self.is_fitted:
            self.mean = float_array(self.mean, "mean", self.name)
            self.std = float_array(self.std, "std", self.name, len(self.mean))
            if np.any(self.std <= 0) or not np.all(np.isfinite(self.std)):
                raise ValueError(
                    f"[{self.name}] std must be positive and finite, got {self.std.tolist()}"
                )

    def __repr__(self) -> str:
        mean = None if self.mean is None else self.mean.tolist()
        std = None if self.std is None else self.std.tolist()
        return f"Normalize(mean={mean}, std={std})"


class Compose:
    """Apply transforms in order. `fit` fits each fittable one on the output of those before;
    `state_dict` holds the state of every transform that has one.

    >>> import numpy as np
    >>> pipeline = Compose([lambda x: x * 2, Normalize(mean=[1.0], std=[1.0])])
    >>> pipeline(np.ones((1, 1, 1), np.float32)).item()
    1.0
    """

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"[Compose] transform {i} ({type(t).__name__}) is not callable")

    @property
    def supports_batches(self) -> bool:
        return all(getattr(t, "supports_batches", False) for t in self.transforms)

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x

    transform = __call__

    def fit(self, X: Any, y: Any = None) -> "Compose":
        self.fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        for t in self.transforms:
            X = t.fit_transform(X) if hasattr(t, "fit_transform") else t(X)
        return X

    def state_dict(self) -> dict:
        return {
            "type": "Compose",
            "transforms": [
                t.state_dict() if hasattr(t, "state_dict") else None for t in self.transforms
            ],
        }

    def load_state_dict(self, state: dict) -> "Compose":
        saved = state.get("transforms") if isinstance(state, dict) else None
        if state.get("type") != "Compose" or not isinstance(saved, list):
            raise ValueError("[Compose.load_state_dict] the state is not a Compose state")
        if len(saved) != len(self.transforms):
            raise ValueError(
                f"[Compose.load_state_dict] the state has {len(saved)} transforms, this Compose "
                f"has {len(self.transforms)}"
            )
        for t, s in zip(self.transforms, saved):
            if s is not None:
                t.load_state_dict(s)
        return self

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"
