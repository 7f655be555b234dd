"""`torch.utils.data.distributed`'s path: fastdl.data.sampler's DistributedSampler."""

from ...data.sampler import DistributedSampler

__all__ = ["DistributedSampler"]
