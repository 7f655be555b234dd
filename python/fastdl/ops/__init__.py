"""Differentiable ops beyond fastdl/_functions.py, one module per family (normalisation,
pooling, activations, tensor ops, ...). Each op is an `autograd.function.Op` written like
_functions.py's: against the array API namespace of its arrays (`fastdl._devices`), with heavy
math on `_devices.kernels(x)`, so it runs on every device."""
