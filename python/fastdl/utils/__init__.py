"""PyTorch's `torch.utils` path: `fastdl.utils.data` is fastdl.data's PyTorch-named part.

    from fastdl.utils.data import DataLoader, TensorDataset, random_split
"""

from . import data

__all__ = ["data"]
