"""`torch.nn.parallel`'s path: DistributedDataParallel, data parallelism over fastdl.distributed."""

from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
