"""nn.functional: the rnn family (PyTorch's names and signatures); nn/functional.py re-exports
everything in __all__.

Empty on purpose: PyTorch's nn.functional has no public recurrent functions. The layers
(nn/rnn.py) compose Tensor ops, one time step at a time.
"""

__all__: list = []
