"""reference backend: cross_entropy family (not yet written)."""
