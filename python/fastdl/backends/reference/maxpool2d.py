"""reference backend: maxpool2d family (not yet written)."""
