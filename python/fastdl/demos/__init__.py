"""The other `fastdl demo` subcommands, beside the default digits CNN (`fastdl.demo`):

- `fastdl demo tabular` (`tabular.py`): Palmer penguins, missing values and categorical
  columns; one MLP with a species head (cross-entropy) and a body-mass head (MSE).
- `fastdl demo autoencoder` (`autoencoder.py`): the digits without their labels; an MLP
  autoencoder with a 2-D code, MSE reconstruction.

Each prints its progress like the CNN demo and writes weights, history.json and plots into --out.
"""
