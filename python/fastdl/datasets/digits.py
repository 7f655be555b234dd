"""The handwritten digits that scikit-learn ships (1,797 real 8x8 images, UCI's optical
recognition set), resampled to MNIST's 28x28 so MNIST-sized models apply unchanged."""

from __future__ import annotations

import os

import numpy as np

DIGITS_MAX = 16.0  # the 8x8 pixels count ink in 4x4 blocks of a 32x32 bitmap: 0..16


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear-interpolation weights with pixel centres aligned (a pixel covers
    [i, i + 1), so output pixel o samples the input at (o + 0.5) * n_in / n_out - 0.5, clamped
    at the edges). Each row is a convex combination, so values stay within the input's range."""
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1.0)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), lo), 1.0 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resample (N, H, W) images to (N, size, size) with separable linear interpolation."""
    rows = resize_matrix(images.shape[1], size)
    cols = resize_matrix(images.shape[2], size)
    return np.einsum("ph,nhw,qw->npq", rows, images, cols, optimize=True)


def load_digits(image_size: int = 28) -> tuple:
    """(images, labels): images float32 (1797, 1, image_size, image_size) in [0, 1], labels
    int64 in 0..9. Needs scikit-learn (the data ships with it; nothing is downloaded).

    >>> images, labels = load_digits()              # doctest: +SKIP
    >>> images.shape, labels[:5].tolist()           # doctest: +SKIP
    ((1797, 1, 28, 28), [0, 1, 2, 3, 4])
    """
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 8:
        raise ValueError(f"[load_digits] image_size must be an int >= 8, got {image_size!r}")
    raw, labels = _read_sklearn_digits()
    raw = raw / DIGITS_MAX
    images = raw if image_size == 8 else resize_images(raw, image_size)
    images = np.clip(images, 0.0, 1.0).astype(np.float32)[:, None]
    return np.ascontiguousarray(images), labels


def _read_sklearn_digits() -> tuple:
    """(images float64 (1797, 8, 8) in 0..16, labels int64). Reads the CSV that scikit-learn
    ships directly (importing sklearn.datasets takes seconds); falls back to its loader."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "[load_digits] the digits ship with scikit-learn, which is not installed: "
            "pip install 'fastdl[demo]' (or pip install scikit-learn)"
        )
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "datasets", "data", "digits.csv.gz")
        if os.path.isfile(path):
            table = np.loadtxt(path, delimiter=",")
            if table.ndim == 2 and table.shape[1] == 65:
                return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return np.asarray(bunch.images, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)
