"""The cpu backend: thin wrappers over fastdl._C's C++ kernels (float32).

Each wrapper makes its inputs C-contiguous float32 (as PyTorch would accept them) and calls the
binding, which checks the rest. See ../INTERFACE.md for the contract every backend implements.
"""

from .activations import *  # noqa: F401,F403
from .conv2d import *  # noqa: F401,F403
from .cross_entropy import *  # noqa: F401,F403
from .fused import *  # noqa: F401,F403
from .gemm import *  # noqa: F401,F403
from .maxpool2d import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403

name = "cpu"
