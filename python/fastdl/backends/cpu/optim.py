"""cpu backend: optim family (not yet written)."""
