"""reference backend: optim family (not yet written)."""
