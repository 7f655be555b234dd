"""MNIST and Fashion-MNIST from the four standard IDX files in a local folder (no download).

The files (raw, or gzip with a .gz suffix) are looked for in `root` and in `root/<Name>/raw`
(torchvision's layout), so a folder torchvision downloaded into works as is:

    train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from .._tensor import Tensor
from ..data.dataset import Dataset, _check_index
from .idx import IDXError, read_idx

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801


class MNIST(Dataset):
    """The MNIST digits: `ds[i]` is (image, label), the image a float32 (1, 28, 28) Tensor in
    [0, 1] (after `transform`, if given) and the label an int. `data` holds the uint8 images
    (N, 28, 28) and `targets` the int64 labels.

    >>> ds = MNIST("~/data", train=False)          # doctest: +SKIP
    >>> len(ds), ds[0][0].shape, ds[0][1]          # doctest: +SKIP
    (10000, (1, 28, 28), 7)
    """

    name = "MNIST"
    num_classes = 10
    classes = [str(i) for i in range(10)]

    def __init__(
        self,
        root: Union[str, os.PathLike],
        train: bool = True,
        transform: Optional[Callable[[Any], Any]] = None,
        target_transform: Optional[Callable[[Any], Any]] = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.train = bool(train)
        self.transform, self.target_transform = transform, target_transform
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"[{self.name}] data directory {str(self.root)!r} does not exist; it should hold "
                f"the {self.name} IDX files ({', '.join(self._stems())})"
            )
        prefix = "train" if self.train else "t10k"
        images_path = self._find(f"{prefix}-images-idx3-ubyte")
        labels_path = self._find(f"{prefix}-labels-idx1-ubyte")
        # The shapes are checked from the headers, before any payload is read or inflated.
        def images_shape(shape: tuple) -> None:
            if shape[1:] != (28, 28):
                raise IDXError(
                    f"[{self.name}] {images_path}: expected 28x28 images, "
                    f"got {shape[1]}x{shape[2]}"
                )

        def labels_shape(shape: tuple) -> None:
            if shape[0] != len(self.data):
                raise IDXError(
                    f"[{self.name}] {images_path} holds {len(self.data)} images but "
                    f"{labels_path} holds {shape[0]} labels"
                )

        self.data = self._read(images_path, IMAGES_MAGIC, images_shape)
        self.targets = self._read(labels_path, LABELS_MAGIC, labels_shape).astype(np.int64)
        if self.targets.size and self.targets.max() >= self.num_classes:
            raise IDXError(
                f"[{self.name}] {labels_path}: labels must be in [0, {self.num_classes}), "
                f"got {int(self.targets.max())}"
            )

    @classmethod
    def _stems(cls) -> list:
        return [
            f"{p}-{k}-idx{d}-ubyte"
            for p in ("train", "t10k")
            for k, d in (("images", 3), ("labels", 1))
        ]

    def _find(self, stem: str) -> Path:
        folders = [self.root, self.root / self.name / "raw"]
        for folder in folders:
            for candidate in (folder / stem, folder / f"{stem}.gz"):
                if candidate.is_file():
                    return candidate
        raise FileNotFoundError(
            f"[{self.name}] missing file {stem} (or {stem}.gz) in {str(folders[0])!r} "
            f"(also looked in {str(folders[1])!r})"
        )

    def _read(
        self, path: Path, magic: int, check_shape: Optional[Callable[[tuple], None]] = None
    ) -> np.ndarray:
        try:
            return read_idx(path, magic, check_shape=check_shape)
        except IDXError as e:
            raise IDXError(str(e).replace("[IDX]", f"[{self.name}]", 1)) from None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple:
        i = _check_index(index, len(self), self.name)
        image: Any = Tensor._make(self.data[i][None].astype(np.float32) / 255.0)
        target: Any = int(self.targets[i])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __getattr__(self, name: str) -> Any:
        # get_batch only when every transform can take a whole batch (DataLoader checks hasattr).
        if (
            name == "get_batch"
            and self.__dict__.get("target_transform") is None
            and (
                self.__dict__.get("transform") is None
                or getattr(self.__dict__["transform"], "supports_batches", False)
            )
        ):
            return self._get_batch
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _get_batch(self, indices: np.ndarray) -> tuple:
        images = self.data[indices][:, None].astype(np.float32) / np.float32(255.0)
        if self.transform is not None:
            images = np.asarray(self.transform(images), dtype=np.float32)
        return images, self.targets[indices]

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        return (
            f"Dataset {self.name}\n    Number of datapoints: {len(self)}\n"
            f"    Root location: {self.root}\n    Split: {split}"
        )


class FashionMNIST(MNIST):
    """Fashion-MNIST: Zalando's clothing images in MNIST's exact format (same files, same API).

    >>> ds = FashionMNIST("~/data")                 # doctest: +SKIP
    >>> ds.classes[ds[0][1]]                         # doctest: +SKIP
    'Ankle boot'
    """

    name = "FashionMNIST"
    classes = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
