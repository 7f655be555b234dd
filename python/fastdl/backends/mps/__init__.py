"""`torch.backends.mps`'s queries: fastdl has no Apple-GPU (MPS) backend, so both are False,
and a program that picks its device with them chooses the CPU.

    device = "mps" if fastdl.backends.mps.is_available() else "cpu"
"""

from __future__ import annotations


def is_available() -> bool:
    """False: this fastdl has no MPS backend."""
    return False


def is_built() -> bool:
    """False: this fastdl was not built with MPS."""
    return False
