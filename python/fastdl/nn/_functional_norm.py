"""nn.functional: the norm family (PyTorch's names and signatures); nn/functional.py re-exports
everything in __all__."""

__all__: list = []
