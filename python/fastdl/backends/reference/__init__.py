"""The NumPy reference backend: the specification of every kernel.

Written for clarity, not speed; works in float32 and float64. The fast path never imports it.
See ../INTERFACE.md for the contract every backend implements.
"""

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

name = "reference"
