"""cpu backend: gemm family (not yet written)."""
