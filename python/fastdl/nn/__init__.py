"""Layers, losses and the Module system, with PyTorch's names (`import fastdl.nn as nn`)."""

from . import functional, init, utils
from .loss import (
    BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss, HuberLoss, KLDivLoss,
    L1Loss, MSELoss, NLLLoss, SmoothL1Loss,
)
from .module import Module
from .modules import (
    Conv2d,
    Dropout,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from .parameter import Parameter
from . import activation, container, normalization, pooling, rnn, sparse

# The layer families, each in its own module, re-exported here.
for _family in (activation, container, normalization, pooling, rnn, sparse):
    globals().update({name: getattr(_family, name) for name in _family.__all__})

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CosineEmbeddingLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "SmoothL1Loss",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "functional",
    "init",
    "utils",
]
for _family in (activation, container, normalization, pooling, rnn, sparse):
    __all__ += [name for name in _family.__all__ if name not in __all__]
del _family


def __getattr__(name):
    # fastdl.nn.parallel (DistributedDataParallel, torch.nn.parallel's path) imports on first
    # use: it brings fastdl.distributed, which `import fastdl` does not need.
    if name == "parallel":
        import importlib

        return importlib.import_module(".parallel", __name__)
    raise AttributeError(f"module 'fastdl.nn' has no attribute {name!r}")
