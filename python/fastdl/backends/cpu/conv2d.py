"""cpu backend: conv2d family (not yet written)."""
