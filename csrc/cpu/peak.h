// The machine's fp32 FMA peak, measured: a register-resident loop of independent multiply-adds
// for the active ISA (csrc/cpu/peak.cpp, bodies in peak_kernels.cpp). It is the roof the
// benchmark judges GEMM and convolution against ("% of peak"); a library's sgemm is a peer.
// Tests: tests/test_kernels_simd.py. Bench: bench/system.py (measure_roofs).
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastdl::cpu {

// Runs `steps` steps of the active ISA's FMA loop on each of `nthreads` threads (OpenMP) and
// returns the multiply-adds' floating-point operations per second over the wall time, in
// GFLOP/s. Each step is kFmaChains vector multiply-adds on independent accumulators.
double fma_peak_gflops(int64_t steps, int nthreads);

// What the active ISA's loop runs, e.g. "avx512 fma, 16 lanes x 12 chains".
const char* fma_peak_name();

// One ISA build's loop: `steps` steps; returns the flops done and writes a checksum to *sink
// (so the compiler keeps the loop).
struct PeakKernels {
  const char* name;  // e.g. "avx512 fma, 16 lanes x 12 chains"
  double (*fma_loop)(int64_t steps, float* sink);
};

}  // namespace fastdl::cpu

FASTDL_PER_ISA(const PeakKernels& peak_kernels())
