"""nn layers: rnn (PyTorch's names, signatures, defaults, initialisation and state_dict keys)."""

__all__: list = []
