"""reference backend: gemm family (not yet written)."""
