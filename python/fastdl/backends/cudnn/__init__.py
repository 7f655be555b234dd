"""`torch.backends.cudnn`'s flags, accepted and without effect: fastdl runs on the CPU, where
cuDNN plays no part. Setting them is allowed so that PyTorch programs run unchanged.

    import fastdl
    fastdl.backends.cudnn.deterministic = True   # fastdl's CPU kernels are deterministic anyway
    fastdl.backends.cudnn.benchmark = False
"""

from __future__ import annotations

from typing import Optional

deterministic: bool = False
benchmark: bool = False
enabled: bool = True
allow_tf32: bool = True
benchmark_limit: int = 10


def is_available() -> bool:
    """False: this fastdl has no cuDNN."""
    return False


def version() -> Optional[int]:
    """None: this fastdl has no cuDNN."""
    return None
