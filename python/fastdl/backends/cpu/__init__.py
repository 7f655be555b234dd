"""The cpu backend: thin wrappers over fastdl._C's C++ kernels (float32).

Each wrapper makes its inputs C-contiguous float32 (as PyTorch would accept them) and calls the
binding, which checks the rest. See ../INTERFACE.md for the contract every backend implements.

One setting, read on every call (like `torch.backends.cudnn.benchmark`):

    import fastdl
    fastdl.backends.cpu.conv2d_algorithm = "auto"   # the default

`conv2d_algorithm` picks how 3x3 stride-1 convolutions run: "auto" (Winograd for the forward and
the input gradient where it is faster, the implicit GEMM elsewhere and for the weight gradient),
"gemm" (never Winograd), "winograd" (Winograd for all three wherever it applies), or
"winograd_2x2" / "winograd_4x4" (Winograd with that output tile). Other convolutions ignore the
setting. (Winograd's weight gradient turns the exact zero of a tap that only reads zeros into
~1e-9, which Adam's first step amplifies to 0.1 lr: hence not under "auto".) Against the float64 reference (max
error over max |exact|, post-ReLU inputs) the GEMM and F(2x2) reach about 5e-7 and F(4x4) 4e-6
to 1e-5, growing with the channels summed (bench/RESULTS.md, `python -m bench.winograd`).
NOTE: Winograd mixes the pixels of a tile: outputs that read an inf input come out NaN where the
GEMM gives +-inf, and F(4x4) spreads an inf or NaN to every output of the 4x4 tiles that read it
(the GEMM only to the 3x3 window around it).
"""

import sys
import types

from . import conv2d as _conv2d
from .activations import *  # noqa: F401,F403
from .conv2d import *  # noqa: F401,F403
from .cross_entropy import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .fused import *  # noqa: F401,F403
from .gemm import *  # noqa: F401,F403
from .maxpool2d import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403

name = "cpu"


class _CpuBackendModule(types.ModuleType):
    # The package's class: its settings check what they are given (as torch.backends' do).

    @property
    def conv2d_algorithm(self) -> str:
        return _conv2d._get_algorithm()

    @conv2d_algorithm.setter
    def conv2d_algorithm(self, value: str) -> None:
        _conv2d._set_algorithm(value)


sys.modules[__name__].__class__ = _CpuBackendModule
