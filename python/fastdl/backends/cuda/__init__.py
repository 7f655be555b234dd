"""The cuda backend: thin wrappers over fastdl._C.cuda's kernels (csrc/cuda/), float32, on CuPy
arrays. Each wrapper allocates its outputs from CuPy's memory pool and launches on CuPy's current
stream; nothing here synchronises. See ../INTERFACE.md for the contract. The families this
backend has no kernel for (norm, pool, embedding, rnn, fused, rmsprop_step, adagrad_step,
nadam_step) run on the reference through `fastdl._devices.WithFallback`, which warns once per op.

Importing this package needs no CuPy and no GPU (CuPy is imported on the first kernel call), so
`fastdl.backends.cuda.matmul.allow_tf32 = True` works anywhere, as PyTorch's switch does:
NOTE: `matmul` is both the backend's function and the holder of the TF32 switch (False by
default, as PyTorch's): with it, matmul's products run on TF32 tensor cores (about 10 bits of
mantissa in the inputs).

Compiled and tested against the reference on the CPU side; not yet run on a GPU.
"""

from .activations import *  # noqa: F401,F403
from .conv2d import *  # noqa: F401,F403
from .cross_entropy import *  # noqa: F401,F403
from .gemm import *  # noqa: F401,F403
from .maxpool2d import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403

name = "cuda"
