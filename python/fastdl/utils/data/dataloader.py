"""`torch.utils.data.dataloader`'s path: fastdl.data.dataloader's objects."""

from ...data.dataloader import DataLoader, default_collate, default_convert, get_worker_info

__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info"]
