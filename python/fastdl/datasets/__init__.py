"""Real datasets, read from local files (nothing is downloaded at run time).

- `MNIST(root, train=True)` and `FashionMNIST(root, train=True)`: the standard IDX files.
- `load_digits(image_size=28)`: scikit-learn's 1,797 handwritten 8x8 digits, resampled.
- `read_idx` / `write_idx`: the IDX format itself.
"""

from .digits import load_digits
from .idx import IDXError, read_idx, write_idx
from .mnist import MNIST, FashionMNIST

__all__ = ["MNIST", "FashionMNIST", "load_digits", "read_idx", "write_idx", "IDXError"]
